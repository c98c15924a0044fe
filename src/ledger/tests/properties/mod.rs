//! Properties over random sequences of operations, checked against the journal after every
//! step.

mod invariants;
mod ops;
mod run;
mod run_settle;
mod usage;

use super::*;
use invariants::check_state;
use ops::{Op, Pick, op};
use run::run_op;

/// What the test knows independently of the book: the clock, the ids it made, every settlement
/// and refund, and the credits it granted.
#[derive(Debug)]
struct Sim {
    now: DateTime<Utc>,
    next_id: u128,
    max_partial: i32,
    hold_ids: Vec<HoldId>,
    settlements: BTreeMap<SettlementId, SettlementRecord>,
    refunds: Vec<RefundRecord>,
    granted: Credits,
}

impl Sim {
    fn new(max_partial: i32) -> Sim {
        Sim {
            now: t0(),
            next_id: 0,
            max_partial,
            hold_ids: Vec::new(),
            settlements: BTreeMap::new(),
            refunds: Vec::new(),
            granted: Credits::ZERO,
        }
    }

    fn id(&mut self) -> Uuid {
        self.next_id += 1;
        Uuid::from_u128(self.next_id)
    }

    fn pick_hold(&self, book: &AccountBook, pick: Pick) -> Option<HoldId> {
        let active: Vec<HoldId> = self
            .hold_ids
            .iter()
            .copied()
            .filter(|hold_id| book.holds[hold_id].status == HoldStatus::Active)
            .collect();
        let from = if pick.active && !active.is_empty() {
            &active
        } else {
            &self.hold_ids
        };
        (!from.is_empty()).then(|| from[pick.index % from.len()])
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Step {
    /// Applied; the book ran `finish`.
    Applied,
    /// Refused with a decline.
    Declined,
    /// Nothing to do, or only time moved / state read.
    Passive,
}

/// A copy of the book with due holds expired: the state an operation acts on.
fn before(book: &AccountBook) -> AccountBook {
    let mut view = book.clone();
    view.begin();
    view
}

fn policy() -> impl Strategy<Value = SettlePolicy> {
    prop_oneof![Just(SettlePolicy::Debt), Just(SettlePolicy::CapAtHold)]
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(256))]

    /// The service's way: every operation opens a fresh book over the persisted state and its
    /// changes are merged back, a decline's too (it stores the decline): a decline changes
    /// nothing but the expiry of due holds.
    #[test]
    fn random_operations_on_reloaded_books_keep_every_ledger_invariant(
        policy in policy(),
        max_partial in 0..4i32,
        ops in prop::collection::vec(op(), 1..60),
    ) {
        let mut sim = Sim::new(max_partial);
        // A threshold inside the amounts the operations move, so crossings happen.
        let mut store = Store::new(AccountState {
            low_balance_threshold: Some(c(10)),
            ..account(policy)
        });
        let mut normalized = true;
        for op in &ops {
            let mut book = store.open(sim.now);
            let step = run_op(&mut book, op, &mut sim);
            match step {
                Step::Applied => {
                    store.commit(book);
                    normalized = true;
                }
                Step::Declined => {
                    let changes = store.commit(book);
                    // A decline keeps only the catch-up to `now`: expired holds and grants, paid debt.
                    prop_assert!(changes.new_holds.is_empty());
                    prop_assert!(changes.settlements.is_empty() && changes.refunds.is_empty());
                    prop_assert!(changes.holds.iter().all(|hold| hold.status == HoldStatus::Expired));
                    prop_assert!(changes.postings.iter().all(|posting| matches!(
                        posting.kind,
                        MovementKind::Release | MovementKind::Expiry | MovementKind::DebtRepayment
                    )));
                    normalized = true;
                }
                Step::Passive => normalized &= !matches!(op, Op::Advance { .. }),
            }
            prop_assert_eq!(&store.settlements, &sim.settlements);
            check_state(&store.account, &store.grants, &store.holds, &store.journal, &sim, normalized);
        }
    }

    /// One long-lived book, time moved by setting `now`: declines are kept too (they may have
    /// expired due holds first), and the book's own journal must explain its state.
    #[test]
    fn random_operations_on_one_book_keep_every_ledger_invariant(
        policy in policy(),
        max_partial in 0..4i32,
        ops in prop::collection::vec(op(), 1..60),
    ) {
        let mut sim = Sim::new(max_partial);
        let mut book = AccountBook::new(account(policy), Vec::new(), Vec::new(), sim.now);
        for op in &ops {
            let step = run_op(&mut book, op, &mut sim);
            let normalized = step == Step::Applied;
            check_state(&book.account, &book.grants, &book.holds, &book.postings, &sim, normalized);
        }
        let postings = book.postings.len();
        let changes = book.into_changes();
        prop_assert_eq!(changes.postings.len(), postings);
    }
}
