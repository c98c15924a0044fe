//! Release and extend of a hold, and the shared refusal of a new hold.

use super::*;

#[test]
fn release_returns_every_reservation_and_only_once() {
    let now = t0();
    let mut book = book_with(
        SettlePolicy::Debt,
        vec![
            grant_of(GrantSource::FreeDaily, c(2), now, None),
            grant_of(GrantSource::Topup, c(10), now, None),
        ],
        now,
    );
    let hold_id = authorize(&mut book, c(7), Duration::minutes(10));
    assert_eq!(book.available(), c(5));
    assert_eq!(book.release(hold_id), Ok(c(7)));
    assert_eq!(book.available(), c(12));
    assert_eq!(book.hold(hold_id).unwrap().status, HoldStatus::Released);
    assert!(book.grants.values().all(|grant| grant.reserved.is_zero()));
    assert_eq!(
        book.release(hold_id),
        Err(Decline::HoldNotActive {
            status: HoldStatus::Released
        })
    );
}

#[test]
fn a_new_hold_is_refused_for_entitlement_then_status_then_debt_then_credits() {
    let now = t0();
    let mut book = book_with(
        SettlePolicy::Debt,
        vec![grant_of(GrantSource::Topup, c(10), now, None)],
        now,
    );
    let hold_id = authorize(&mut book, c(5), Duration::minutes(10));
    book.account.status = AccountStatus::Closed;
    book.account.debt = c(1);
    let suspended = Decline::AccountSuspended { status: "CLOSED" };
    let entitlement = Decline::EntitlementRequired {
        entitlement: "pro".to_owned(),
    };
    let refusal = book.hold_refusal(Some("pro"), None, c(6));
    assert_eq!(refusal.run, Some(entitlement.clone()));
    assert_eq!(refusal.funding, Some(Decline::AccountInDebt { debt: c(1) }));
    assert_eq!(refusal.first(), Some(entitlement));
    assert_eq!(
        book.hold_refusal(None, None, c(6)).first(),
        Some(suspended.clone())
    );
    // ExtendHold raising a hold asks the same, without an entitlement.
    assert_eq!(
        book.clone().extend(hold_id, Some(c(6)), None),
        Err(suspended)
    );

    book.account.status = AccountStatus::Active;
    book.account.debt = Credits::ZERO;
    book.account.entitlements.push("pro".to_owned());
    let refusal = book.hold_refusal(Some("pro"), None, c(6));
    assert_eq!(refusal.run, None);
    assert_eq!(
        refusal.first(),
        Some(Decline::InsufficientCredits {
            required: c(6),
            available: c(5)
        })
    );
    assert_eq!(book.hold_refusal(Some("pro"), None, c(5)).first(), None);
}

#[test]
fn extend_lowering_the_amount_declines_and_raising_reserves_more() {
    let now = t0();
    let mut book = book_with(
        SettlePolicy::Debt,
        vec![grant_of(GrantSource::Topup, c(10), now, None)],
        now,
    );
    let hold_id = authorize(&mut book, c(5), Duration::minutes(10));
    let postings = book.postings.len();

    assert_eq!(
        book.extend(hold_id, Some(dec(4_999_999_999, 9)), None),
        Err(Decline::AmountBelowHold {
            requested: dec(4_999_999_999, 9),
            current: c(5)
        })
    );
    assert_eq!(book.postings.len(), postings);
    assert_eq!(book.hold(hold_id).unwrap().amount, c(5));

    let new_expiry = now + Duration::hours(1);
    book.extend(hold_id, Some(c(8)), Some(new_expiry)).unwrap();
    let hold = book.hold(hold_id).unwrap();
    assert_eq!(
        (hold.amount, hold.outstanding(), hold.expires_at),
        (c(8), c(8), new_expiry)
    );
    assert_eq!(book.available(), c(2));

    assert_eq!(
        book.extend(hold_id, Some(c(11)), None),
        Err(Decline::InsufficientCredits {
            required: c(3),
            available: c(2)
        })
    );
    book.release(hold_id).unwrap();
    assert_eq!(
        book.extend(hold_id, Some(c(9)), None),
        Err(Decline::HoldNotActive {
            status: HoldStatus::Released
        })
    );
}
