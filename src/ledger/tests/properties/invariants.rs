//! The invariants checked after every step of a property run.

use super::*;

/// The movements a posting pair may be: (kind, from, to).
const MOVEMENTS: [(MovementKind, LedgerAccount, LedgerAccount); 11] = [
    (
        MovementKind::Grant,
        LedgerAccount::Issued,
        LedgerAccount::Available,
    ),
    (
        MovementKind::Hold,
        LedgerAccount::Available,
        LedgerAccount::Held,
    ),
    (
        MovementKind::Capture,
        LedgerAccount::Held,
        LedgerAccount::Revenue,
    ),
    (
        MovementKind::Capture,
        LedgerAccount::Available,
        LedgerAccount::Revenue,
    ),
    (
        MovementKind::Release,
        LedgerAccount::Held,
        LedgerAccount::Available,
    ),
    (
        MovementKind::Expiry,
        LedgerAccount::Available,
        LedgerAccount::Expired,
    ),
    (
        MovementKind::Refund,
        LedgerAccount::Revenue,
        LedgerAccount::Debt,
    ),
    (
        MovementKind::Refund,
        LedgerAccount::Revenue,
        LedgerAccount::Available,
    ),
    (
        MovementKind::Debt,
        LedgerAccount::Debt,
        LedgerAccount::Revenue,
    ),
    (
        MovementKind::WriteOff,
        LedgerAccount::WrittenOff,
        LedgerAccount::Revenue,
    ),
    (
        MovementKind::DebtRepayment,
        LedgerAccount::Available,
        LedgerAccount::Debt,
    ),
];

/// Every invariant of an account's state against its whole journal and what the test knows.
/// `normalized`: the last thing that happened was an operation that ran `finish` at `sim.now`.
pub(super) fn check_state(
    account: &AccountState,
    grants: &BTreeMap<GrantId, GrantState>,
    holds: &BTreeMap<HoldId, HoldState>,
    journal: &[Posting],
    sim: &Sim,
    normalized: bool,
) {
    // Double entry.
    let sum: Credits = journal.iter().map(|posting| posting.amount).sum();
    assert!(sum.is_zero(), "journal sums to {sum}");
    assert_eq!(journal.len() % 2, 0);
    for pair in journal.chunks(2) {
        let (from, to) = (&pair[0], &pair[1]);
        assert!(
            to.amount.is_positive(),
            "empty or reversed movement {pair:?}"
        );
        assert_eq!(from.amount, -to.amount, "unbalanced pair {pair:?}");
        assert_eq!(
            (
                from.kind,
                from.grant_id,
                from.hold_id,
                from.settlement_id,
                from.refund_id
            ),
            (
                to.kind,
                to.grant_id,
                to.hold_id,
                to.settlement_id,
                to.refund_id
            ),
            "pair with different references"
        );
        assert!(
            MOVEMENTS.contains(&(from.kind, from.ledger, to.ledger)),
            "unexpected movement {pair:?}"
        );
        for posting in pair {
            if matches!(
                posting.ledger,
                LedgerAccount::Available | LedgerAccount::Held
            ) {
                assert!(
                    posting.grant_id.is_some(),
                    "per-grant posting without grant {posting:?}"
                );
            }
            if posting.ledger == LedgerAccount::Held {
                assert!(
                    posting.hold_id.is_some(),
                    "held posting without hold {posting:?}"
                );
            }
        }
    }

    // Grants against holds and journal.
    for grant in grants.values() {
        assert!(
            grant.remaining >= Credits::ZERO,
            "negative remaining {grant:?}"
        );
        assert!(
            grant.reserved >= Credits::ZERO,
            "negative reserved {grant:?}"
        );
        assert!(
            grant.remaining + grant.reserved <= grant.amount,
            "grant holds more than it was given {grant:?}"
        );
        let held_by_holds: Credits = holds
            .values()
            .filter(|hold| hold.status == HoldStatus::Active)
            .flat_map(|hold| &hold.allocations)
            .filter(|allocation| allocation.grant_id == grant.grant_id)
            .map(|allocation| allocation.reserved)
            .sum();
        assert_eq!(
            grant.reserved, held_by_holds,
            "grant reserved differs from its holds' allocations"
        );
        let of_grant = || {
            journal
                .iter()
                .filter(|posting| posting.grant_id == Some(grant.grant_id))
        };
        assert_eq!(
            sum_postings(of_grant(), LedgerAccount::Available),
            grant.remaining,
            "AVAILABLE ≠ remaining"
        );
        assert_eq!(
            sum_postings(of_grant(), LedgerAccount::Held),
            grant.reserved,
            "HELD ≠ reserved"
        );
        if normalized {
            assert!(
                !(grant.expired_at(sim.now) && grant.remaining.is_positive()),
                "unposted breakage {grant:?}"
            );
            if account.debt.is_positive() {
                assert!(
                    !(grant.spendable_at(sim.now) && grant.remaining.is_positive()),
                    "debt left unpaid beside spendable credits"
                );
            }
        }
    }
    for posting in journal {
        if let Some(grant_id) = posting
            .grant_id
            .filter(|_| posting.ledger == LedgerAccount::Available)
        {
            assert!(
                grants.contains_key(&grant_id),
                "posting to an unknown grant"
            );
        }
    }

    // Holds.
    for hold in holds.values() {
        for allocation in &hold.allocations {
            assert!(allocation.reserved >= Credits::ZERO && allocation.captured >= Credits::ZERO);
            if hold.status != HoldStatus::Active {
                assert!(
                    allocation.reserved.is_zero(),
                    "a {} hold still reserves",
                    hold.status.as_str()
                );
            }
            let held: Credits = journal
                .iter()
                .filter(|posting| {
                    posting.ledger == LedgerAccount::Held
                        && posting.grant_id == Some(allocation.grant_id)
                        && posting.hold_id == Some(hold.hold_id)
                })
                .map(|posting| posting.amount)
                .sum();
            assert_eq!(
                held, allocation.reserved,
                "HELD of (hold, grant) ≠ allocation"
            );
        }
        let captured_from_allocations: Credits = hold
            .allocations
            .iter()
            .map(|allocation| allocation.captured)
            .sum();
        if hold.status == HoldStatus::Active {
            assert_eq!(
                hold.outstanding() + captured_from_allocations,
                hold.amount,
                "active hold lost credits"
            );
        } else {
            assert!(captured_from_allocations <= hold.amount);
        }
        let of_hold = || {
            sim.settlements
                .values()
                .filter(|settlement| settlement.hold_id == hold.hold_id)
        };
        assert_eq!(
            hold.captured,
            of_hold().map(SettlementRecord::charged).sum(),
            "hold captured ≠ its settlements"
        );
        assert_eq!(
            captured_from_allocations,
            of_hold().map(|settlement| settlement.from_hold).sum()
        );
    }

    // Settlements and refunds.
    for settlement in sim.settlements.values() {
        assert_eq!(
            settlement.from_hold
                + settlement.from_balance
                + settlement.debt
                + settlement.written_off,
            settlement.total,
            "settlement invariant: from_hold + from_balance + debt + written_off = total"
        );
        assert!(settlement.refunded <= settlement.charged());
        let parts_refunded: Credits = settlement.parts.iter().map(|part| part.refunded).sum();
        assert!(parts_refunded <= settlement.refunded);
        for part in &settlement.parts {
            assert!(part.refunded <= part.amount);
        }
        if account.settle_policy == SettlePolicy::Debt {
            assert!(settlement.written_off.is_zero());
        }
    }

    // Debt.
    assert!(account.debt >= Credits::ZERO, "negative debt");
    assert_eq!(
        account.debt,
        -sum_postings(journal, LedgerAccount::Debt),
        "debt ≠ −DEBT postings"
    );
    match account.settle_policy {
        // CAP_AT_HOLD may owe what a late settle could not cover within its hold.
        SettlePolicy::CapAtHold => {}
        SettlePolicy::Debt => assert!(
            journal
                .iter()
                .all(|posting| posting.kind != MovementKind::WriteOff)
        ),
    }

    // Conservation. All postings sum to zero, so with
    //   granted = −ISSUED, available = AVAILABLE = Σ remaining, held = HELD = Σ reserved,
    //   revenue = REVENUE = Σ settlement totals − Σ refunds, expired = EXPIRED,
    //   written_off = −WRITTEN_OFF = Σ settlement write-offs, debt = −DEBT = account debt:
    //   granted = available + held + expired + (revenue − written_off − debt).
    let granted = -sum_postings(journal, LedgerAccount::Issued);
    assert_eq!(granted, sim.granted, "ISSUED ≠ what was granted");
    let revenue: Credits = sim
        .settlements
        .values()
        .map(|settlement| settlement.total)
        .sum::<Credits>()
        - sim.refunds.iter().map(|refund| refund.amount).sum();
    assert_eq!(
        sum_postings(journal, LedgerAccount::Revenue),
        revenue,
        "REVENUE ≠ settled − refunded"
    );
    let written_off: Credits = sim
        .settlements
        .values()
        .map(|settlement| settlement.written_off)
        .sum();
    assert_eq!(
        -sum_postings(journal, LedgerAccount::WrittenOff),
        written_off,
        "WRITTEN_OFF ≠ write-offs"
    );
    let expired = sum_postings(journal, LedgerAccount::Expired);
    assert!(expired >= Credits::ZERO);
    let available: Credits = grants.values().map(|grant| grant.remaining).sum();
    let held: Credits = grants.values().map(|grant| grant.reserved).sum();
    assert_eq!(
        granted,
        available + held + expired + (revenue - written_off - account.debt),
        "credits not conserved"
    );
}
