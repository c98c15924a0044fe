//! The one rounding: exact line items, a total rounded half to even to 9 places.

use super::*;

#[test]
fn total_is_rounded_half_even_to_nine_places() {
    // 0.000005 per 10k tokens: one token is 0.0000000005 credits.
    let catalog = tiny_catalog("0.000005");
    for (input_tokens, total) in [
        (1, "0"),            // 0.0000000005 → 0 (half to even)
        (3, "0.000000002"),  // 0.0000000015 → 0.000000002
        (5, "0.000000002"),  // 0.0000000025 → 0.000000002
        (7, "0.000000004"),  // 0.0000000035 → 0.000000004
        (2, "0.000000001"),  // exact
        (11, "0.000000006"), // 0.0000000055 → 0.000000006
    ] {
        let priced = price(&catalog, None, Some("t/tiny"), &tokens(input_tokens, 0, 0)).unwrap();
        assert_eq!(priced.total.to_string(), total, "{input_tokens} tokens");
        assert_line_items_exact(&priced);
    }
}

#[test]
fn line_items_are_exact_and_the_total_rounded_once() {
    // Two line items of 0.0000000005 each: rounded apart they would be 0 + 0; summed, 0.000000001.
    let catalog = tiny_catalog("0.000005");
    let priced = price(&catalog, None, Some("t/tiny"), &tokens(1, 1, 0)).unwrap();
    assert_eq!(priced.line_items.len(), 2);
    for item in &priced.line_items {
        assert_eq!(item.quantity, d("0.0001"));
        assert_eq!(item.rate, d("0.000005"));
        assert_eq!(item.amount, d("0.0000000005"));
        assert_eq!(item.amount.to_string(), "0.0000000005");
    }
    assert_eq!(priced.total.to_string(), "0.000000001");
}

#[test]
fn line_items_keep_twelve_place_rates_exact() {
    // 123,457 tokens × 0.000000000001 per 10k = 12.3457 × 1e-12
    let catalog = tiny_catalog("0.000000000001");
    let priced = price(&catalog, None, Some("t/tiny"), &tokens(123_457, 0, 0)).unwrap();
    assert_eq!(priced.line_items[0].amount, d("0.0000000000123457"));
    assert_eq!(priced.total.to_string(), "0");
}
