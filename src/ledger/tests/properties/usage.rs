//! Usage rollups over random operations: what the changes of every operation add to the
//! rollups equals, after each step, what the stored holds and refunds imply.

use super::*;

/// The rollups the stored holds and refunds imply: per UTC day, task type and model of the
/// runs, the number of resolved runs and what they captured, and what was refunded of any.
fn rollups_of(store: &Store) -> BTreeMap<UsageKey, UsageDelta> {
    let mut rollups: BTreeMap<UsageKey, UsageDelta> = BTreeMap::new();
    for hold in store
        .holds
        .values()
        .filter(|hold| hold.status != HoldStatus::Active)
    {
        let rollup = rollups.entry(UsageKey::of(hold)).or_default();
        rollup.runs += 1;
        rollup.captured += hold.captured;
        rollup.last_run_at = rollup.last_run_at.max(Some(hold.created_at));
    }
    for refund in &store.refunds {
        let hold = &store.holds[&refund.hold_id];
        rollups.entry(UsageKey::of(hold)).or_default().refunded += refund.amount;
    }
    rollups.retain(|_, rollup| rollup.runs != 0 || !rollup.refunded.is_zero());
    rollups
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(256))]

    /// Each operation on a fresh book over the stored state, as the service runs it; its
    /// changes' usage deltas are added up as the store adds them to `usage_rollups`.
    #[test]
    fn the_usage_deltas_of_every_operation_add_up_to_the_stored_holds(
        policy in policy(),
        max_partial in 0..4i32,
        ops in prop::collection::vec(op(), 1..60),
    ) {
        let mut sim = Sim::new(max_partial);
        let mut store = Store::new(account(policy));
        let mut rollups: BTreeMap<UsageKey, UsageDelta> = BTreeMap::new();
        for op in &ops {
            let mut book = store.open(sim.now);
            if run_op(&mut book, op, &mut sim) == Step::Passive {
                continue;
            }
            let changes = store.commit(book);
            for (key, delta) in &changes.usage {
                prop_assert!(
                    delta.runs != 0 || !delta.captured.is_zero() || !delta.refunded.is_zero(),
                    "a delta that adds nothing: {:?}", delta
                );
                rollups.entry(key.clone()).or_default().add(delta);
            }
            prop_assert_eq!(&rollups, &rollups_of(&store));
        }
    }
}
