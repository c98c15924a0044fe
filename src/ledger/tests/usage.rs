//! Usage rollups: what a book's operations add to the runs, captured and refunded credits of the
//! UTC day, task type and model of each run.

use super::*;

const CHAT: &str = "TASK_TYPE_CHAT";
const MODEL: &str = "acme/text-1";

/// 23:50 UTC: a run made then and charged after midnight still counts on its own day.
fn before_midnight() -> DateTime<Utc> {
    Utc.with_ymd_and_hms(2025, 3, 1, 23, 50, 0).unwrap()
}

fn run_key(created_at: DateTime<Utc>, task_type: &str, model: &str) -> UsageKey {
    UsageKey {
        day: created_at.date_naive(),
        task_type: task_type.to_owned(),
        model: model.to_owned(),
    }
}

/// A hold of `amount` for a run of `task_type` on `model`, made at `now`, living an hour.
fn run_of(amount: Credits, now: DateTime<Utc>, task_type: &str, model: &str) -> HoldState {
    HoldState {
        meta: HoldMeta {
            task_type: task_type.to_owned(),
            model: model.to_owned(),
            ..HoldMeta::default()
        },
        ..hold_of(amount, now, Duration::hours(1))
    }
}

fn captured(credits: Credits) -> UsageDelta {
    UsageDelta {
        captured: credits,
        ..UsageDelta::default()
    }
}

/// A stored account with 100 credits and one chat run of 10 made at `now`; the run's hold.
fn stored_run(now: DateTime<Utc>) -> (Store, HoldId) {
    let mut store = Store::new(account(SettlePolicy::Debt));
    let mut book = store.open(now);
    book.grant(grant_of(GrantSource::Purchase, c(100), now, None));
    let hold = run_of(c(10), now, CHAT, MODEL);
    let hold_id = hold.hold_id;
    book.authorize(hold).unwrap();
    store.commit(book);
    (store, hold_id)
}

/// One resolved run with what it captured, made at `created_at`.
fn resolved(captured: Credits, created_at: DateTime<Utc>) -> UsageDelta {
    UsageDelta {
        runs: 1,
        captured,
        refunded: Credits::ZERO,
        last_run_at: Some(created_at),
    }
}

#[test]
fn an_active_run_adds_nothing_until_it_is_resolved() {
    let now = before_midnight();
    let mut book = book_with(
        SettlePolicy::Debt,
        vec![grant_of(GrantSource::Purchase, c(100), now, None)],
        now,
    );
    assert_eq!(book.usage_deltas(), vec![], "a grant is no run");
    book.authorize(run_of(c(1), now, CHAT, MODEL)).unwrap();
    book.authorize(run_of(c(1), now, "", "")).unwrap();
    assert_eq!(book.usage_deltas(), vec![], "active runs");
    // Made and released in one book: one run.
    let later = now + Duration::minutes(1);
    book.now = later;
    let released = run_of(c(1), later, CHAT, MODEL);
    let released_id = released.hold_id;
    book.authorize(released).unwrap();
    book.release(released_id).unwrap();
    assert_eq!(
        book.into_changes().usage,
        vec![(run_key(later, CHAT, MODEL), resolved(Credits::ZERO, later))]
    );
}

#[test]
fn settle_counts_the_run_with_what_it_captured_on_the_day_it_was_made() {
    let (mut store, hold_id) = stored_run(before_midnight());
    let after_midnight = before_midnight() + Duration::minutes(20);
    let mut book = store.open(after_midnight);
    book.settle(&settle_request(hold_id, c(12), false)).unwrap();
    let changes = store.commit(book);
    assert_eq!(store.holds[&hold_id].captured, c(12), "2 above the hold");
    assert_eq!(
        changes.usage,
        vec![(
            run_key(before_midnight(), CHAT, MODEL),
            resolved(c(12), before_midnight())
        )]
    );
}

#[test]
fn partial_settles_count_with_the_run_when_it_is_resolved() {
    let (mut store, hold_id) = stored_run(before_midnight());
    let mut book = store.open(before_midnight());
    book.settle(&settle_request(hold_id, c(2), true)).unwrap();
    book.settle(&settle_request(hold_id, c(3), true)).unwrap();
    assert_eq!(book.usage_deltas(), vec![], "still active");
    store.commit(book);
    // Loaded active with 5 captured: the final settle counts the run with all 6.
    let mut book = store.open(before_midnight());
    book.settle(&settle_request(hold_id, c(1), false)).unwrap();
    assert_eq!(
        store.commit(book).usage,
        vec![(
            run_key(before_midnight(), CHAT, MODEL),
            resolved(c(6), before_midnight())
        )]
    );

    // Made and finally settled in one book: one run with its capture.
    let mut book = store.open(before_midnight());
    let hold = run_of(c(5), before_midnight(), "TASK_TYPE_IMAGE", "");
    let image = hold.hold_id;
    book.authorize(hold).unwrap();
    book.settle(&settle_request(image, c(2), true)).unwrap();
    assert_eq!(book.usage_deltas(), vec![], "made and partly captured");
    book.settle(&settle_request(image, c(1), false)).unwrap();
    assert_eq!(
        book.usage_deltas(),
        vec![(
            run_key(before_midnight(), "TASK_TYPE_IMAGE", ""),
            resolved(c(3), before_midnight())
        )]
    );
}

#[test]
fn refunds_count_when_made_on_the_day_the_run_was_made_even_while_it_is_active() {
    let (mut store, hold_id) = stored_run(before_midnight());
    let mut book = store.open(before_midnight());
    let mut settlement = book.settle(&settle_request(hold_id, c(7), true)).unwrap();
    store.commit(book);
    // Past midnight, before the hold expires: still active.
    let after_midnight = before_midnight() + Duration::minutes(15);
    let mut book = store.open(after_midnight);
    book.refund(
        &mut settlement,
        &refund_request(Some(c(3)), after_midnight + Duration::days(30)),
    )
    .unwrap();
    assert_eq!(store.holds[&hold_id].status, HoldStatus::Active);
    let refunded = UsageDelta {
        refunded: c(3),
        ..UsageDelta::default()
    };
    assert_eq!(
        book.usage_deltas(),
        vec![(run_key(before_midnight(), CHAT, MODEL), refunded)],
        "the refund of an active run's partial capture"
    );
}

#[test]
fn release_and_expiry_count_the_run_and_a_late_settle_its_capture() {
    let (mut store, expiring) = stored_run(before_midnight());
    let mut book = store.open(before_midnight());
    let released = run_of(c(1), before_midnight(), CHAT, MODEL);
    let released_id = released.hold_id;
    book.authorize(released).unwrap();
    store.commit(book);
    let mut book = store.open(before_midnight());
    book.release(released_id).unwrap();
    assert_eq!(
        store.commit(book).usage,
        vec![(
            run_key(before_midnight(), CHAT, MODEL),
            resolved(Credits::ZERO, before_midnight())
        )],
        "a release"
    );

    let mut book = store.open(before_midnight() + Duration::hours(2));
    book.sweep();
    let changes = store.commit(book);
    assert_eq!(store.holds[&expiring].status, HoldStatus::Expired);
    assert_eq!(changes.holds.len(), 1, "the sweep expired the hold");
    assert_eq!(
        changes.usage,
        vec![(
            run_key(before_midnight(), CHAT, MODEL),
            resolved(Credits::ZERO, before_midnight())
        )],
        "an expiry"
    );

    let mut book = store.open(before_midnight() + Duration::hours(3));
    book.settle(&settle_request(expiring, c(4), false)).unwrap();
    assert_eq!(
        book.usage_deltas(),
        vec![(run_key(before_midnight(), CHAT, MODEL), captured(c(4)))],
        "a late settle"
    );
}
