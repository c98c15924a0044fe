//! Properties over random token counts: exact totals, more tokens never cost less.

use proptest::prelude::*;

use super::*;

/// A reference model and token counts it can price (zero for rates it lacks).
fn text_usage() -> impl Strategy<Value = (Reference, Usage)> {
    let references = reference_rates();
    (
        0..references.len(),
        0u64..1_000_000_000,
        0u64..1_000_000_000,
        0u64..1_000_000_000,
        0u64..1_000_000_000,
    )
        .prop_map(move |(index, input, output, cached_read, reasoning)| {
            let reference = references[index].clone();
            let usage = Usage {
                input_tokens: if reference.input.is_some() { input } else { 0 },
                output_tokens: if reference.output.is_some() {
                    output
                } else {
                    0
                },
                cached_read_tokens: if reference.cached_read.is_some() {
                    cached_read
                } else {
                    0
                },
                reasoning_tokens: if reference.output.is_some() {
                    reasoning
                } else {
                    0
                },
                ..Usage::default()
            };
            (reference, usage)
        })
}

fn is_empty(usage: &Usage) -> bool {
    usage.input_tokens + usage.output_tokens + usage.cached_read_tokens + usage.reasoning_tokens
        == 0
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(256))]

    #[test]
    fn total_is_the_rounded_sum_of_exact_line_items((reference, usage) in text_usage(), batch in any::<bool>()) {
        let catalog = default_catalog();
        let usage = Usage { multipliers: if batch { vec!["batch".to_owned()] } else { Vec::new() }, ..usage };
        let result = price(&catalog, None, Some(&reference.model), &usage);
        if is_empty(&usage) {
            prop_assert!(matches!(result, Err(PricingError::InvalidUsage(_))));
            return Ok(());
        }
        let priced = result.unwrap();
        let mut exact = Decimal::ZERO;
        for item in &priced.line_items {
            prop_assert_eq!(item.amount, item.quantity * item.rate, "{:?}", item);
            exact += item.amount;
        }
        prop_assert_eq!(priced.total, Credits::round_half_even(exact));
        prop_assert!(priced.total.decimal().normalize().scale() <= 9);
        prop_assert!(priced.total >= Credits::ZERO);
        // Token line items: quantity is tokens / 10k at the sheet's rate.
        let ten_k = Decimal::from(10_000);
        for (kind, tokens, rate) in [
            ("input_tokens", usage.input_tokens, reference.input),
            ("output_tokens", usage.output_tokens, reference.output),
            ("cached_read_tokens", usage.cached_read_tokens, reference.cached_read),
            ("reasoning_tokens", usage.reasoning_tokens, reference.output),
        ] {
            let item = priced.line_items.iter().find(|item| item.kind == kind);
            if tokens == 0 {
                prop_assert!(item.is_none());
            } else {
                let item = item.unwrap();
                prop_assert_eq!(item.quantity, Decimal::from(tokens) / ten_k);
                prop_assert_eq!(Some(item.rate), rate);
            }
        }
        // Without the multiplier the total is the exact sum of token costs, rounded.
        if !batch {
            let expected: Decimal = [
                (usage.input_tokens, reference.input),
                (usage.output_tokens, reference.output),
                (usage.cached_read_tokens, reference.cached_read),
                (usage.reasoning_tokens, reference.output),
            ]
            .into_iter()
            .map(|(tokens, rate)| Decimal::from(tokens) / ten_k * rate.unwrap_or_default())
            .sum();
            prop_assert_eq!(priced.total, Credits::round_half_even(expected));
        }
    }

    #[test]
    fn more_tokens_never_cost_less(
        (reference, usage) in text_usage(),
        extra in (0u64..1_000_000_000, 0u64..1_000_000_000, 0u64..1_000_000_000, 0u64..1_000_000_000),
        batch in any::<bool>(),
    ) {
        let catalog = default_catalog();
        let multipliers = if batch { vec!["batch".to_owned()] } else { Vec::new() };
        let less = Usage { multipliers: multipliers.clone(), ..usage.clone() };
        let more = Usage {
            input_tokens: usage.input_tokens + if reference.input.is_some() { extra.0 } else { 0 },
            output_tokens: usage.output_tokens + if reference.output.is_some() { extra.1 } else { 0 },
            cached_read_tokens: usage.cached_read_tokens + if reference.cached_read.is_some() { extra.2 } else { 0 },
            reasoning_tokens: usage.reasoning_tokens + if reference.output.is_some() { extra.3 } else { 0 },
            multipliers,
            ..Usage::default()
        };
        prop_assume!(!is_empty(&less));
        let less = price(&catalog, None, Some(&reference.model), &less).unwrap();
        let more = price(&catalog, None, Some(&reference.model), &more).unwrap();
        prop_assert!(more.total >= less.total, "{} then {}", less.total, more.total);
    }

    #[test]
    fn one_token_more_never_costs_less(
        (reference, usage) in text_usage(),
        kind in 0usize..4,
    ) {
        let catalog = default_catalog();
        prop_assume!(!is_empty(&usage));
        let mut more = usage.clone();
        match kind {
            0 if reference.input.is_some() => more.input_tokens += 1,
            1 if reference.output.is_some() => more.output_tokens += 1,
            2 if reference.cached_read.is_some() => more.cached_read_tokens += 1,
            _ => more.reasoning_tokens += 1,
        }
        let less = price(&catalog, None, Some(&reference.model), &usage).unwrap();
        let more = price(&catalog, None, Some(&reference.model), &more).unwrap();
        prop_assert!(more.total >= less.total, "{} then {}", less.total, more.total);
    }
}
