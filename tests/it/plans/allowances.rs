//! Allowances: each period's credits are one grant, spent in source order, that expires with
//! the period; a period is granted on the first touch of the account in it (reads count it
//! before any write), once, and only the current one; a replaced or paused rule changes the
//! next period, never the one under way.

mod bad_input;
mod calendar;
mod races;

use chrono::{DateTime, Duration, Utc};
use creditgate::ids::AccountKey;
use creditgate::proto::v1::{
    Allowance, AllowancePeriod, GrantSource, QuoteRequest, QuoteResponse, SetAllowanceRequest,
    Usage,
};
use creditgate::store::book::{LockTarget, LockedBooks};
use rust_decimal::Decimal;

use crate::helpers::TestApp;
use crate::helpers::plans::{allowance_request, available_of, period_grants, recurrence_of};
use crate::helpers::time::time;

use GrantSource::{FreeDaily, Subscription};

/// A second past a period boundary: the clock lands on the boundary's side under test even
/// though it keeps running while a call is answered.
const PAST: Duration = Duration::seconds(1);

/// A Quote for `account_id` of a run that costs exactly 100 credits.
async fn quote_of_100(app: &TestApp, account_id: &str) -> QuoteResponse {
    let quote = app
        .credit()
        .quote(QuoteRequest {
            // 0.05 credits per 10k output tokens, no entitlement required.
            model: "bytedance/seed-1.8".to_owned(),
            usage: Some(Usage {
                output_tokens: 20_000_000,
                ..Usage::default()
            }),
            account_id: account_id.to_owned(),
            ..QuoteRequest::default()
        })
        .await
        .unwrap()
        .into_inner();
    assert_eq!(quote.total, "100");
    quote
}

/// Asserts the account's total available credits and those of FREE_DAILY and SUBSCRIPTION.
async fn assert_available(app: &TestApp, account_id: &str, total: &str, free: &str, paid: &str) {
    let balance = app.balance(account_id).await;
    let found = (
        balance.available.as_str(),
        available_of(&balance, FreeDaily),
        available_of(&balance, Subscription),
    );
    assert_eq!(
        found,
        (total, free.to_owned(), paid.to_owned()),
        "{balance:#?}"
    );
}

/// Authorizes and settles `amount`.
async fn spend(app: &TestApp, account_id: &str, amount: &str) {
    let hold = app.hold(account_id, amount).await;
    app.settle(&hold.hold_id, amount, false).await.unwrap();
}

fn daily_free(account_id: &str, amount: &str) -> SetAllowanceRequest {
    allowance_request(account_id, "free", FreeDaily, amount, AllowancePeriod::Day)
}

fn monthly_subscription(account_id: &str, amount: &str) -> SetAllowanceRequest {
    allowance_request(
        account_id,
        "pro",
        Subscription,
        amount,
        AllowancePeriod::Month,
    )
}

#[tokio::test]
async fn free_credits_go_before_the_subscription_and_each_renews_without_rollover() {
    let app = TestApp::spawn().await;
    let account = app.account().await;
    let free = app.set_allowance(daily_free(&account, "5")).await.unwrap();
    let pro = app
        .set_allowance(monthly_subscription(&account, "100"))
        .await
        .unwrap();
    assert_available(&app, &account, "105", "5", "100").await;

    let hold = app.hold(&account, "7").await;
    let balance = app.balance(&account).await;
    let held: Vec<(i32, &str)> = balance
        .buckets
        .iter()
        .map(|bucket| (bucket.source, bucket.held.as_str()))
        .collect();
    assert_eq!(held, [(FreeDaily as i32, "5"), (Subscription as i32, "2")]);
    app.settle(&hold.hold_id, "7", false).await.unwrap();
    assert_available(&app, &account, "98", "0", "98").await;

    // The next day's credits count before anything is written in it, for GetBalance and Quote.
    let midnight = time(free.next_reset_at.as_ref().unwrap());
    assert_eq!(Some(midnight), app.next_reset(&account, "free").await);
    app.advance_to(midnight - PAST);
    let quote = quote_of_100(&app, &account).await;
    let before = (
        quote.available.as_str(),
        quote.affordable,
        &*quote.denial_reason,
    );
    assert_eq!(before, ("98", false, "INSUFFICIENT_CREDITS"));
    app.advance_to(midnight + PAST);
    assert_available(&app, &account, "103", "5", "98").await;
    let quote = quote_of_100(&app, &account).await;
    assert_eq!((quote.available.as_str(), quote.affordable), ("103", true));
    assert_eq!(period_grants(&app.database, &account).await.len(), 2);

    // What is left of a day's credits expires with it.
    spend(&app, &account, "2").await;
    let second_day = period_grants(&app.database, &account).await[2].clone();
    assert_eq!(
        (second_day.period_start, second_day.amount),
        (midnight, 5.into())
    );
    app.advance_to(midnight + Duration::days(1) + PAST);
    assert_available(&app, &account, "103", "5", "98").await;
    app.sweep().await;
    let expired = journal_expiry(&app, &second_day.grant_id).await;
    assert_eq!(expired, Decimal::from(3));

    subscription_renews_without_rollover(&app, &account, &pro).await;
    app.finish().await;
}

/// Past the month's end, the subscription (98 left) is a fresh 100, not 198, and the day's
/// credits a fresh 5.
async fn subscription_renews_without_rollover(app: &TestApp, account: &str, pro: &Allowance) {
    let month_end = time(pro.next_reset_at.as_ref().unwrap());
    let recurrence = recurrence_of(pro);
    assert_eq!(Some(month_end), recurrence.start_of(1));
    app.advance_to(month_end + PAST);
    assert_available(app, account, "105", "5", "100").await;
    spend(app, account, "1").await;
    let subscriptions: Vec<_> = period_grants(&app.database, account)
        .await
        .into_iter()
        .filter(|grant| grant.source == "SUBSCRIPTION")
        .map(|grant| (grant.effective_at, grant.expires_at, grant.remaining))
        .collect();
    let first_start = recurrence.start_of(0).unwrap();
    let expected = [
        (first_start, Some(month_end), Decimal::ZERO),
        (month_end, recurrence.start_of(2), Decimal::from(100)),
    ];
    assert_eq!(subscriptions, expected);
}

/// Credits of `grant_id` booked as breakage.
async fn journal_expiry(app: &TestApp, grant_id: &str) -> Decimal {
    let client = app.pool.get().await.unwrap();
    let grant: uuid::Uuid = grant_id.parse().unwrap();
    client
        .query_one(
            "SELECT coalesce(sum(amount), 0) FROM journal_entries \
             WHERE kind = 'EXPIRY' AND ledger_account = 'EXPIRED' AND grant_id = $1",
            &[&grant],
        )
        .await
        .unwrap()
        .get::<_, Decimal>(0)
        .normalize()
}

#[tokio::test]
async fn a_replaced_or_paused_allowance_never_changes_a_period_already_granted() {
    let app = TestApp::spawn().await;
    let account = app.account().await;
    let first = app.set_allowance(daily_free(&account, "5")).await.unwrap();
    let second_day = time(first.next_reset_at.as_ref().unwrap());
    let third_day = second_day + Duration::days(1);
    let fourth_day = third_day + Duration::days(1);

    // Replaced mid-day: today keeps its 5, the new amount starts tomorrow.
    let replaced = app.set_allowance(daily_free(&account, "8")).await.unwrap();
    assert_eq!(replaced.allowance_id, first.allowance_id);
    assert_eq!(effective_from(&replaced), Some(second_day));
    assert_available(&app, &account, "5", "5", "0").await;
    app.advance_to(second_day + PAST);
    assert_available(&app, &account, "8", "8", "0").await;
    spend(&app, &account, "1").await;

    // Paused mid-day: today's grant stays, tomorrow gets none.
    let paused = app.set_allowance(paused_free(&account, "8")).await.unwrap();
    assert_eq!(
        paused.next_reset_at, None,
        "a paused allowance does not reset"
    );
    assert_available(&app, &account, "7", "7", "0").await;
    app.advance_to(third_day + PAST);
    assert_available(&app, &account, "0", "0", "0").await;

    // Resumed on a day nothing was granted for: that day is owed, and granted at once.
    let resumed = app.set_allowance(daily_free(&account, "8")).await.unwrap();
    assert_eq!(effective_from(&resumed), Some(third_day));
    assert_available(&app, &account, "8", "8", "0").await;
    // Replaced again the same day: not granted twice, the new amount from tomorrow.
    let raised = app.set_allowance(daily_free(&account, "9")).await.unwrap();
    assert_eq!(effective_from(&raised), Some(fourth_day));
    assert_available(&app, &account, "8", "8", "0").await;
    app.advance_to(fourth_day + PAST);
    assert_available(&app, &account, "9", "9", "0").await;
    spend(&app, &account, "1").await;

    let periods: Vec<_> = period_grants(&app.database, &account)
        .await
        .into_iter()
        .map(|grant| (grant.period_start, grant.amount))
        .collect();
    let first_day = recurrence_of(&first).start_of(0).unwrap();
    let expected = [
        (first_day, 5),
        (second_day, 8),
        (third_day, 8),
        (fourth_day, 9),
    ];
    assert_eq!(
        periods,
        expected.map(|(day, amount)| (day, Decimal::from(amount)))
    );
    app.finish().await;
}

fn paused_free(account_id: &str, amount: &str) -> SetAllowanceRequest {
    SetAllowanceRequest {
        enabled: false,
        ..daily_free(account_id, amount)
    }
}

fn effective_from(allowance: &Allowance) -> Option<DateTime<Utc>> {
    allowance.effective_from.as_ref().map(time)
}

#[tokio::test]
async fn an_account_idle_for_three_months_gets_only_the_current_periods() {
    let app = TestApp::spawn().await;
    let account = app.account().await;
    // Set out of name order: GetAccount lists allowances by name.
    let pro = app
        .set_allowance(monthly_subscription(&account, "100"))
        .await
        .unwrap();
    let free = app.set_allowance(daily_free(&account, "5")).await.unwrap();
    let listed: Vec<String> = app
        .allowances(&account)
        .await
        .into_iter()
        .map(|allowance| allowance.name)
        .collect();
    assert_eq!(listed, ["free", "pro"]);

    let monthly = recurrence_of(&pro);
    let daily = recurrence_of(&free);
    app.advance_to(monthly.start_of(3).unwrap() + Duration::hours(36));
    let now = app.now();
    let month = monthly.period_at(now).unwrap();
    let day = daily.period_at(now).unwrap();
    assert_eq!(month.index, 3);
    assert_eq!(app.next_reset(&account, "pro").await, Some(month.end));
    assert_eq!(app.next_reset(&account, "free").await, Some(day.end));
    assert_available(&app, &account, "105", "5", "100").await;

    spend(&app, &account, "1").await;
    let grants: Vec<_> = period_grants(&app.database, &account)
        .await
        .into_iter()
        .map(|grant| (grant.source, grant.period_start, grant.amount))
        .collect();
    // In period order, then by allowance (the first set first).
    let expected = [
        ("SUBSCRIPTION", monthly.start_of(0).unwrap(), 100),
        ("FREE_DAILY", daily.start_of(0).unwrap(), 5),
        ("SUBSCRIPTION", month.start, 100),
        ("FREE_DAILY", day.start, 5),
    ];
    let expected: Vec<_> = expected
        .into_iter()
        .map(|(source, start, amount)| (source.to_owned(), start, Decimal::from(amount)))
        .collect();
    assert_eq!(grants, expected);
    assert_available(&app, &account, "104", "4", "100").await;
    app.finish().await;
}

/// The account's key, and when its rule may next owe a period (`allowances.due_from`).
async fn due_from(app: &TestApp, account_id: &str) -> (AccountKey, Option<DateTime<Utc>>) {
    let client = app.pool.get().await.unwrap();
    let account: uuid::Uuid = account_id.parse().unwrap();
    let row = client
        .query_one(
            "SELECT a.tenant_id, a.account_id, al.due_from FROM accounts a \
             JOIN allowances al USING (account_id) WHERE a.account_id = $1",
            &[&account],
        )
        .await
        .unwrap();
    let key = AccountKey {
        tenant: row.get("tenant_id"),
        account: row.get("account_id"),
    };
    (key, row.get("due_from"))
}

#[tokio::test]
async fn the_rules_are_read_under_the_lock_from_their_due_time_even_when_it_passed_meanwhile() {
    let app = TestApp::spawn().await;
    let account = app.account().await;
    let free = app.set_allowance(daily_free(&account, "5")).await.unwrap();
    let midnight = time(free.next_reset_at.as_ref().unwrap());
    let (key, due) = due_from(&app, &account).await;
    assert_eq!(due, Some(midnight), "today is granted; tomorrow is due");

    // A transaction told to expect the time an hour before midnight (as a server whose clock
    // lags would) reads no rule, yet decides after midnight: it reads them before deciding.
    app.advance_to(midnight + PAST);
    let target = LockTarget {
        accounts: vec![key],
        ..LockTarget::default()
    };
    let (locked, mut loaded) = LockedBooks::lock(
        &app.pool,
        &target,
        midnight - Duration::hours(1),
        app.clock.as_ref(),
    )
    .await
    .unwrap()
    .unwrap();
    assert!(loaded.allowances_reread, "read again, as it decided later");
    let mut book = loaded.accounts.remove(&key).unwrap().book;
    book.sweep();
    let changes = book.into_changes();
    locked.rollback().await;
    let granted: Vec<_> = changes
        .allowance_grants
        .iter()
        .map(|grant| grant.period_start)
        .collect();
    assert_eq!(granted, [midnight]);

    // Through the API: the day is granted once, and the rule is due next midnight.
    assert_available(&app, &account, "5", "5", "0").await;
    spend(&app, &account, "1").await;
    assert_eq!(period_grants(&app.database, &account).await.len(), 2);
    let (_, due) = due_from(&app, &account).await;
    assert_eq!(due, Some(midnight + Duration::days(1)));

    // Paused: never due.
    app.set_allowance(paused_free(&account, "5")).await.unwrap();
    let (_, due) = due_from(&app, &account).await;
    assert_eq!(due, None);
    app.finish().await;
}
