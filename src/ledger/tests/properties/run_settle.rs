//! The Settle and Refund steps of a property run.

use super::ops::{Pick, RefundAmount, Total};
use super::*;

/// Settle: declined unless the hold takes it; else the total splits as the hold, the balance
/// and the policy say, and the hold moves on.
pub(super) fn settle_step(
    book: &mut AccountBook,
    sim: &mut Sim,
    pick: &Pick,
    total: &Total,
    partial: &bool,
) -> Step {
    let now = sim.now;
    let Some(hold_id) = sim.pick_hold(book, *pick) else {
        return Step::Passive;
    };
    let pre = before(book);
    let hold = pre.hold(hold_id).unwrap().clone();
    let outstanding = hold.outstanding();
    let available = pre.available();
    let total = match total {
        Total::Exact => outstanding,
        Total::Below(less) => outstanding - outstanding.min(*less),
        Total::Above(more) => outstanding + *more,
        Total::AboveAll(more) => outstanding + available + *more + dec(1, 9),
        Total::Raw(total) => *total,
    };
    let request = SettleRequest {
        settlement_id: SettlementId::from_uuid(sim.id()),
        hold_id,
        total,
        partial: *partial,
        max_partial_captures: sim.max_partial,
        line_items: Vec::new(),
    };
    let result = book.settle(&request);
    let late = match hold.status {
        HoldStatus::Active => false,
        HoldStatus::Expired if !hold.late_settled && !*partial => true,
        status => {
            assert_eq!(result, Err(Decline::HoldNotActive { status }));
            return Step::Declined;
        }
    };
    if *partial && hold.partial_captures >= sim.max_partial {
        assert_eq!(
            result,
            Err(Decline::PartialCaptureLimit {
                limit: sim.max_partial
            })
        );
        return Step::Declined;
    }
    let record = result.unwrap();
    assert_eq!(record.total, total);
    assert_eq!(record.late, late);
    assert_eq!(record.partial, *partial);
    assert_eq!(
        record.from_hold + record.from_balance + record.debt + record.written_off,
        total,
        "settlement invariant: from_hold + from_balance + debt + written_off = total"
    );
    assert!(
        record.from_hold <= outstanding,
        "took more from the hold than it reserved"
    );
    assert_eq!(record.from_hold, total.min(outstanding));
    assert_eq!(
        record.from_balance,
        (total - record.from_hold).min(available)
    );
    if late {
        assert!(
            record.from_hold.is_zero(),
            "an expired hold reserves nothing"
        );
    }
    match pre.account.settle_policy {
        SettlePolicy::Debt => {
            assert!(record.written_off.is_zero(), "DEBT policy wrote off")
        }
        SettlePolicy::CapAtHold => {
            // Only what the hold authorized and nothing covered is owed; the rest is
            // written off.
            let authorized_left = if hold.amount > hold.captured {
                hold.amount - hold.captured
            } else {
                Credits::ZERO
            };
            let covered = record.from_hold + record.from_balance;
            let within = total.min(authorized_left);
            let owed = if within > covered {
                within - covered
            } else {
                Credits::ZERO
            };
            assert_eq!(
                record.debt, owed,
                "CAP_AT_HOLD owes exactly the uncovered part within the hold"
            );
        }
    }
    let parts: Credits = record.parts.iter().map(|part| part.amount).sum();
    assert_eq!(parts, record.from_hold + record.from_balance);
    let after = book.hold(hold_id).unwrap();
    assert_eq!(after.captured, hold.captured + record.charged());
    if *partial {
        assert_eq!(record.released, Credits::ZERO);
        assert_eq!(
            after.status, hold.status,
            "a partial capture changed the hold's status"
        );
        assert_eq!(after.partial_captures, hold.partial_captures + 1);
        assert_eq!(after.outstanding(), outstanding - record.from_hold);
    } else {
        assert_eq!(record.released, outstanding - record.from_hold);
        assert_eq!(after.outstanding(), Credits::ZERO);
        if late {
            assert_eq!(after.status, HoldStatus::Expired);
            assert!(after.late_settled);
        } else {
            assert_eq!(after.status, HoldStatus::Settled);
            assert_eq!(after.resolved_at, Some(now));
        }
    }
    sim.settlements.insert(record.settlement_id, record);
    Step::Applied
}

/// Refund: declined beyond what is refundable; else debt first, and no credit lost or made.
pub(super) fn refund_step(
    book: &mut AccountBook,
    sim: &mut Sim,
    pick: &usize,
    amount: &RefundAmount,
    expires_in: &i64,
) -> Step {
    let now = sim.now;
    if sim.settlements.is_empty() {
        return Step::Passive;
    }
    let mut settlement = sim
        .settlements
        .values()
        .nth(pick % sim.settlements.len())
        .unwrap()
        .clone();
    let refundable = settlement.charged() - settlement.refunded;
    let requested = match amount {
        RefundAmount::Rest => None,
        RefundAmount::UpToRefundable(amount) => Some((*amount).min(refundable)),
        RefundAmount::Raw(amount) => Some(*amount),
    };
    let request = RefundRequest {
        refund_id: sim.id(),
        amount: requested,
        reason: "property".to_owned(),
        refund_grant_id: GrantId::from_uuid(sim.id()),
        refund_grant_expires_at: now + Duration::minutes(*expires_in),
    };
    let pre = before(book);
    let refunded_before = settlement.refunded;
    let result = book.refund(&mut settlement, &request);
    let amount = requested.unwrap_or(refundable);
    if amount > refundable || !amount.is_positive() {
        assert_eq!(
            result,
            Err(Decline::RefundExceedsCapture {
                requested: amount,
                refundable
            })
        );
        return Step::Declined;
    }
    let record = result.unwrap();
    assert_eq!(record.amount, amount);
    assert_eq!(record.debt_reduced, amount.min(pre.account.debt));
    let new_grant = record.new_grant_id.map_or(Credits::ZERO, |grant_id| {
        let grant = &book.grants[&grant_id];
        assert_eq!(grant.source, GrantSource::Refund);
        grant.amount
    });
    let returned: Credits = record.returned_to.iter().map(|(_, credits)| *credits).sum();
    assert_eq!(
        record.debt_reduced + returned + new_grant,
        amount,
        "refund lost or made credits"
    );
    for (grant_id, _) in &record.returned_to {
        assert!(
            !pre.grants[grant_id].expired_at(now),
            "refunded to an expired grant"
        );
    }
    assert_eq!(settlement.refunded, refunded_before + amount);
    assert!(settlement.refunded <= settlement.charged());
    sim.settlements.insert(settlement.settlement_id, settlement);
    sim.refunds.push(record);
    Step::Applied
}
