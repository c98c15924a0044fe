//! The step of a property run: one operation applied to the book and its result checked
//! against what the state before it says.

use super::ops::{Change, Op, Pick};
use super::run_settle::{refund_step, settle_step};
use super::*;

/// Applies one operation to `book`, checking its result against what the state before it says.
pub(super) fn run_op(book: &mut AccountBook, op: &Op, sim: &mut Sim) -> Step {
    let now = sim.now;
    book.now = now;
    match op {
        Op::Grant {
            source,
            priority,
            starts_in,
            expires_in,
            amount,
        } => grant_step(book, sim, source, priority, starts_in, expires_in, amount),
        Op::Authorize { amount, ttl } => authorize_step(book, sim, amount, ttl),
        Op::Extend { pick, change, ttl } => extend_step(book, sim, pick, change, ttl),
        Op::Settle {
            pick,
            total,
            partial,
        } => settle_step(book, sim, pick, total, partial),
        Op::Release { pick } => release_step(book, sim, pick),
        Op::Refund {
            pick,
            amount,
            expires_in,
        } => refund_step(book, sim, pick, amount, expires_in),
        Op::Advance { minutes } => {
            sim.now = now + Duration::minutes(*minutes);
            Step::Passive
        }
        Op::Sweep => {
            book.sweep();
            Step::Applied
        }
        Op::Balance => balance_step(book),
    }
}

/// A grant: it never raises the debt.
fn grant_step(
    book: &mut AccountBook,
    sim: &mut Sim,
    source: &GrantSource,
    priority: &Option<i32>,
    starts_in: &i64,
    expires_in: &Option<i64>,
    amount: &Credits,
) -> Step {
    let now = sim.now;
    let grant = GrantState {
        grant_id: GrantId::from_uuid(sim.id()),
        source: *source,
        priority: priority.unwrap_or(source.default_priority()),
        effective_at: now + Duration::minutes(*starts_in),
        expires_at: expires_in.map(|minutes| now + Duration::minutes(minutes)),
        created_at: now,
        amount: *amount,
        remaining: *amount,
        reserved: Credits::ZERO,
        external_ref: None,
        expiry_warned: false,
    };
    let debt_before = book.account.debt;
    book.grant(grant);
    assert!(book.account.debt <= debt_before, "a grant raised the debt");
    sim.granted += *amount;
    Step::Applied
}

/// Authorize: declined for debt, then for credits; else reserved exactly, in burn order.
fn authorize_step(book: &mut AccountBook, sim: &mut Sim, amount: &Credits, ttl: &i64) -> Step {
    let now = sim.now;
    let pre = before(book);
    let available = pre.available();
    let hold = HoldState {
        hold_id: HoldId::from_uuid(sim.id()),
        ..hold_of(*amount, now, Duration::minutes(*ttl))
    };
    let hold_id = hold.hold_id;
    let result = book.authorize(hold);
    if pre.account.debt.is_positive() {
        assert_eq!(
            result,
            Err(Decline::AccountInDebt {
                debt: pre.account.debt
            })
        );
        return Step::Declined;
    }
    if *amount > available {
        assert_eq!(
            result,
            Err(Decline::InsufficientCredits {
                required: *amount,
                available
            })
        );
        assert!(book.hold(hold_id).is_none());
        return Step::Declined;
    }
    assert_eq!(result, Ok(()));
    let hold = book.hold(hold_id).unwrap();
    assert_eq!(
        hold.outstanding(),
        *amount,
        "the hold reserves exactly its amount"
    );
    assert_eq!(
        book.available(),
        available - *amount,
        "authorize reserved more than it took"
    );
    // Reserved in burn order: every grant but the last is drained, and no spendable grant
    // left with credits comes before the last one used.
    let keys: Vec<_> = hold
        .allocations
        .iter()
        .map(|allocation| book.grants[&allocation.grant_id].burn_key())
        .collect();
    assert!(
        keys.windows(2).all(|pair| pair[0] < pair[1]),
        "allocations out of burn order"
    );
    for allocation in hold.allocations.iter().rev().skip(1) {
        assert!(
            book.grants[&allocation.grant_id].remaining.is_zero(),
            "skipped part of a grant"
        );
    }
    if let Some(last) = keys.last() {
        for grant in book.grants.values() {
            if grant.spendable_at(now) && grant.remaining.is_positive() {
                assert!(
                    grant.burn_key() >= *last,
                    "reserved a later grant before an earlier one"
                );
            }
        }
    }
    sim.hold_ids.push(hold_id);
    Step::Applied
}

/// ExtendHold: declined unless active, not lowered, and the raise is fundable.
fn extend_step(
    book: &mut AccountBook,
    sim: &mut Sim,
    pick: &Pick,
    change: &Change,
    ttl: &Option<i64>,
) -> Step {
    let now = sim.now;
    let Some(hold_id) = sim.pick_hold(book, *pick) else {
        return Step::Passive;
    };
    let pre = before(book);
    let hold = pre.hold(hold_id).unwrap();
    let (status, current, outstanding) = (hold.status, hold.amount, hold.outstanding());
    let requested = match change {
        Change::Keep => None,
        Change::Raise(more) => Some(current + *more),
        Change::Lower(less) => Some(current - *less - dec(1, 9)),
    };
    let expires_at = ttl.map(|minutes| now + Duration::minutes(minutes));
    let result = book.extend(hold_id, requested, expires_at);
    if status != HoldStatus::Active {
        assert_eq!(result, Err(Decline::HoldNotActive { status }));
        return Step::Declined;
    }
    let more = requested.map_or(Credits::ZERO, |requested| requested - current);
    if let Some(requested) = requested.filter(|requested| *requested < current) {
        assert_eq!(result, Err(Decline::AmountBelowHold { requested, current }));
        return Step::Declined;
    }
    if more.is_positive() && pre.account.debt.is_positive() {
        assert_eq!(
            result,
            Err(Decline::AccountInDebt {
                debt: pre.account.debt
            })
        );
        return Step::Declined;
    }
    if more > pre.available() {
        assert_eq!(
            result,
            Err(Decline::InsufficientCredits {
                required: more,
                available: pre.available()
            })
        );
        return Step::Declined;
    }
    assert_eq!(result, Ok(()));
    let hold = book.hold(hold_id).unwrap();
    assert_eq!(hold.outstanding(), outstanding + more);
    assert_eq!(hold.amount, current + more);
    if let Some(expires_at) = expires_at {
        assert_eq!(hold.expires_at, expires_at);
    }
    Step::Applied
}

/// Release: declined unless active; else everything outstanding comes back.
fn release_step(book: &mut AccountBook, sim: &mut Sim, pick: &Pick) -> Step {
    let Some(hold_id) = sim.pick_hold(book, *pick) else {
        return Step::Passive;
    };
    let pre = before(book);
    let hold = pre.hold(hold_id).unwrap();
    let (status, outstanding) = (hold.status, hold.outstanding());
    let result = book.release(hold_id);
    if status != HoldStatus::Active {
        assert_eq!(result, Err(Decline::HoldNotActive { status }));
        return Step::Declined;
    }
    assert_eq!(result, Ok(outstanding));
    let after = book.hold(hold_id).unwrap();
    assert_eq!(
        (after.status, after.outstanding()),
        (HoldStatus::Released, Credits::ZERO)
    );
    Step::Applied
}

/// Balance: what a swept copy of the book says.
fn balance_step(book: &AccountBook) -> Step {
    let balance = book.balance(Duration::hours(2));
    let mut view = book.clone();
    view.sweep();
    assert_eq!(balance.available, view.available());
    assert_eq!(
        balance.held,
        view.grants.values().map(|grant| grant.reserved).sum()
    );
    assert_eq!(balance.debt, view.account.debt);
    for bucket in &balance.buckets {
        assert!(bucket.expiring_soon <= bucket.available);
    }
    Step::Passive
}
