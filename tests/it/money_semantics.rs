//! Money semantics through the gRPC surface: burn order, settlement (below, above, debt,
//! write-off), partial capture, release, hold and grant expiry, refunds, ExtendHold, GetHold,
//! tenancy and the account lifecycle. Every amount is checked as the exact decimal string.

use chrono::{DateTime, Duration, TimeZone as _, Utc};
use creditgate::auth::ScopeSet;
use creditgate::clock::Clock as _;
use creditgate::proto::v1::{
    AccountKind, AccountStatus, AuthorizeRequest, AuthorizeResponse, BalanceBucket,
    CreateAccountRequest, Entitlements, ExtendHoldRequest, ExtendHoldResponse, GetAccountRequest,
    GetBalanceRequest, GetBalanceResponse, GetHoldRequest, GetHoldResponse, GrantRequest,
    GrantSource, Hold, HoldStatus, RefundRequest, RefundResponse, ReleaseRequest, ReleaseResponse,
    SettlePolicy, SettleRequest, Settlement, UpdateAccountRequest, authorize_request,
    get_account_request, get_hold_request, settle_request,
};
use creditgate::service::tenants;
use tonic::{Code, Status};

use crate::helpers::money::key;
use crate::helpers::{TestApp, reason};

// ---------------------------------------------------------------------------------------------
// Private fixtures
// ---------------------------------------------------------------------------------------------

fn timestamp(time: DateTime<Utc>) -> prost_types::Timestamp {
    prost_types::Timestamp {
        seconds: time.timestamp(),
        nanos: i32::try_from(time.timestamp_subsec_nanos()).unwrap(),
    }
}

fn time(timestamp: &prost_types::Timestamp) -> DateTime<Utc> {
    Utc.timestamp_opt(timestamp.seconds, u32::try_from(timestamp.nanos).unwrap())
        .single()
        .unwrap()
}

/// The server's "now".
fn now(app: &TestApp) -> DateTime<Utc> {
    app.clock.now()
}

/// Grants `amount` from `source` expiring at `expires_at`; returns the grant id.
async fn grant_expiring(
    app: &TestApp,
    account_id: &str,
    source: GrantSource,
    amount: &str,
    expires_at: DateTime<Utc>,
) -> String {
    app.grant_request(GrantRequest {
        account_id: account_id.to_owned(),
        idempotency_key: key(),
        source: source as i32,
        amount: amount.to_owned(),
        expires_at: Some(timestamp(expires_at)),
        ..GrantRequest::default()
    })
    .await
    .unwrap()
    .grant
    .unwrap()
    .grant_id
}

/// Grants `amount` from `source`, never expiring; returns the grant id.
async fn grant_id(app: &TestApp, account_id: &str, source: GrantSource, amount: &str) -> String {
    app.grant(account_id, source, amount)
        .await
        .grant
        .unwrap()
        .grant_id
}

/// Authorize with an explicit idempotency key and TTL (0 = server default).
async fn authorize_with(
    app: &TestApp,
    account_id: &str,
    amount: &str,
    ttl_seconds: u32,
    idempotency_key: &str,
) -> Result<AuthorizeResponse, Status> {
    app.credit()
        .authorize(AuthorizeRequest {
            account_id: account_id.to_owned(),
            idempotency_key: idempotency_key.to_owned(),
            price: Some(authorize_request::Price::Amount(amount.to_owned())),
            ttl_seconds,
            ..AuthorizeRequest::default()
        })
        .await
        .map(tonic::Response::into_inner)
}

/// Authorizes `amount` (fresh key, default TTL) and returns the hold.
async fn authorize_hold(app: &TestApp, account_id: &str, amount: &str) -> Hold {
    app.authorize(account_id, amount)
        .await
        .unwrap()
        .hold
        .unwrap()
}

/// Settles and returns (settlement, hold after).
async fn settle(app: &TestApp, hold_id: &str, amount: &str, partial: bool) -> (Settlement, Hold) {
    let response = app.settle(hold_id, amount, partial).await.unwrap();
    (response.settlement.unwrap(), response.hold.unwrap())
}

async fn release(app: &TestApp, hold_id: &str) -> Result<ReleaseResponse, Status> {
    app.credit()
        .release(ReleaseRequest {
            hold_id: hold_id.to_owned(),
            idempotency_key: key(),
            reason: "run failed".to_owned(),
        })
        .await
        .map(tonic::Response::into_inner)
}

async fn refund(
    app: &TestApp,
    settlement_id: &str,
    amount: &str,
) -> Result<RefundResponse, Status> {
    app.credit()
        .refund(RefundRequest {
            settlement_id: settlement_id.to_owned(),
            idempotency_key: key(),
            reason: "support".to_owned(),
            amount: amount.to_owned(),
        })
        .await
        .map(tonic::Response::into_inner)
}

async fn extend(
    app: &TestApp,
    hold_id: &str,
    amount: &str,
    ttl_seconds: u32,
) -> Result<ExtendHoldResponse, Status> {
    app.credit()
        .extend_hold(ExtendHoldRequest {
            hold_id: hold_id.to_owned(),
            idempotency_key: key(),
            amount: amount.to_owned(),
            ttl_seconds,
        })
        .await
        .map(tonic::Response::into_inner)
}

async fn get_hold(
    app: &TestApp,
    lookup: get_hold_request::Lookup,
) -> Result<GetHoldResponse, Status> {
    app.credit()
        .get_hold(GetHoldRequest {
            lookup: Some(lookup),
        })
        .await
        .map(tonic::Response::into_inner)
}

async fn get_hold_by_id(app: &TestApp, hold_id: &str) -> GetHoldResponse {
    get_hold(app, get_hold_request::Lookup::HoldId(hold_id.to_owned()))
        .await
        .unwrap()
}

async fn balance_within(app: &TestApp, account_id: &str, days: u32) -> GetBalanceResponse {
    app.account_as(Some(&app.key))
        .get_balance(GetBalanceRequest {
            account_id: account_id.to_owned(),
            expiring_within_days: days,
        })
        .await
        .unwrap()
        .into_inner()
}

/// The bucket of `source`, if the balance lists one.
fn bucket(balance: &GetBalanceResponse, source: GrantSource) -> Option<&BalanceBucket> {
    balance
        .buckets
        .iter()
        .find(|bucket| bucket.source == source as i32)
}

/// Asserts a bucket's (available, held, expiring_soon).
#[track_caller]
fn assert_bucket(
    balance: &GetBalanceResponse,
    source: GrantSource,
    available: &str,
    held: &str,
    expiring_soon: &str,
) {
    let found =
        bucket(balance, source).unwrap_or_else(|| panic!("no {source:?} bucket in {balance:#?}"));
    assert_eq!(
        (
            found.available.as_str(),
            found.held.as_str(),
            found.expiring_soon.as_str()
        ),
        (available, held, expiring_soon),
        "{source:?} bucket (available, held, expiring_soon) in {balance:#?}"
    );
}

/// Asserts the account-level (available, held, debt).
#[track_caller]
fn assert_totals(balance: &GetBalanceResponse, available: &str, held: &str, debt: &str) {
    assert_eq!(
        (
            balance.available.as_str(),
            balance.held.as_str(),
            balance.debt.as_str()
        ),
        (available, held, debt),
        "(available, held, debt) in {balance:#?}"
    );
}

/// A hold's allocations as (grant id, amount) pairs, in order.
fn allocations(hold: &Hold) -> Vec<(String, String)> {
    hold.allocations
        .iter()
        .map(|allocation| (allocation.grant_id.clone(), allocation.amount.clone()))
        .collect()
}

fn pairs(list: &[(&str, &str)]) -> Vec<(String, String)> {
    list.iter()
        .map(|(grant, amount)| ((*grant).to_owned(), (*amount).to_owned()))
        .collect()
}

/// Asserts a settlement's (total, from_hold, from_balance, debt, written_off, released).
#[track_caller]
fn assert_settlement(settlement: &Settlement, expected: [&str; 6]) {
    assert_eq!(
        [
            settlement.total.as_str(),
            settlement.from_hold.as_str(),
            settlement.from_balance.as_str(),
            settlement.debt.as_str(),
            settlement.written_off.as_str(),
            settlement.released.as_str(),
        ],
        expected,
        "[total, from_hold, from_balance, debt, written_off, released] of {settlement:#?}"
    );
}

/// Asserts that `result` failed with `code` and ErrorInfo `expected`; returns the status.
#[track_caller]
fn assert_refused<T: std::fmt::Debug>(
    result: Result<T, Status>,
    code: Code,
    expected: &str,
) -> Status {
    let status = result.expect_err("the call should have been refused");
    assert_eq!(status.code(), code, "{status:?}");
    assert_eq!(reason(&status).as_deref(), Some(expected), "{status:?}");
    status
}

/// Sum of the journal's postings to `ledger_account` of movement `kind` (on `grant_id` if set).
async fn journal_sum(
    app: &TestApp,
    kind: &str,
    ledger_account: &str,
    grant_id: Option<&str>,
) -> String {
    let client = app.pool.get().await.unwrap();
    let grant_id = grant_id.map(|id| uuid::Uuid::parse_str(id).unwrap());
    let row = client
        .query_one(
            "SELECT coalesce(sum(amount), 0)::text AS total FROM journal_entries \
             WHERE kind = $1 AND ledger_account = $2 AND ($3::uuid IS NULL OR grant_id = $3)",
            &[&kind, &ledger_account, &grant_id],
        )
        .await
        .unwrap();
    let total: String = row.get("total");
    // Normalize Postgres NUMERIC text ("20.000000000") to the wire form ("20").
    let normalized = if total.contains('.') {
        total.trim_end_matches('0').trim_end_matches('.').to_owned()
    } else {
        total
    };
    if normalized.is_empty() {
        "0".to_owned()
    } else {
        normalized
    }
}

async fn journal_count(app: &TestApp, kind: &str) -> i64 {
    let client = app.pool.get().await.unwrap();
    client
        .query_one(
            "SELECT count(*) FROM journal_entries WHERE kind = $1",
            &[&kind],
        )
        .await
        .unwrap()
        .get(0)
}

// ---------------------------------------------------------------------------------------------
// 1. Burn order
// ---------------------------------------------------------------------------------------------

#[tokio::test]
async fn authorize_burns_free_then_subscription_then_expiring_purchase_then_never_expiring_purchase_before_topup()
 {
    let app = TestApp::spawn().await;
    let account = app.account().await;
    let in_a_day = now(&app) + Duration::days(1);
    // Created in an order that FIFO alone would not explain: top-up and never-expiring
    // purchase first.
    let topup = grant_id(&app, &account, GrantSource::Topup, "100").await;
    let purchase_forever = grant_id(&app, &account, GrantSource::Purchase, "20").await;
    let purchase_expiring =
        grant_expiring(&app, &account, GrantSource::Purchase, "20", in_a_day).await;
    let subscription = grant_id(&app, &account, GrantSource::Subscription, "10").await;
    let free = grant_id(&app, &account, GrantSource::FreeDaily, "5").await;

    let before = app.balance(&account).await;
    assert_totals(&before, "155", "0", "0");
    assert_bucket(&before, GrantSource::FreeDaily, "5", "0", "0");
    assert_bucket(&before, GrantSource::Subscription, "10", "0", "0");
    assert_bucket(&before, GrantSource::Purchase, "40", "0", "20");
    assert_bucket(&before, GrantSource::Topup, "100", "0", "0");
    assert_eq!(before.buckets.len(), 4, "{before:#?}");

    let response = app.authorize(&account, "40").await.unwrap();
    let hold = response.hold.unwrap();
    assert_eq!(response.available, "115");
    assert_eq!(hold.status(), HoldStatus::Active);
    assert_eq!(hold.amount, "40");
    assert_eq!(hold.captured, "0");
    assert_eq!(hold.account_id, account);
    assert_eq!(
        allocations(&hold),
        pairs(&[
            (&free, "5"),
            (&subscription, "10"),
            (&purchase_expiring, "20"),
            (&purchase_forever, "5"),
        ])
    );
    assert!(!allocations(&hold).iter().any(|(grant, _)| *grant == topup));

    let after = app.balance(&account).await;
    assert_totals(&after, "115", "40", "0");
    assert_bucket(&after, GrantSource::FreeDaily, "0", "5", "0");
    assert_bucket(&after, GrantSource::Subscription, "0", "10", "0");
    // The expiring purchase is fully held: none of what is still spendable expires soon.
    assert_bucket(&after, GrantSource::Purchase, "15", "25", "0");
    assert_bucket(&after, GrantSource::Topup, "100", "0", "0");

    app.assert_books_balance().await;
    app.stop().await;
}

#[tokio::test]
async fn get_balance_reports_what_expires_within_the_requested_window() {
    let app = TestApp::spawn().await;
    let account = app.account().await;
    grant_expiring(
        &app,
        &account,
        GrantSource::Purchase,
        "12.5",
        now(&app) + Duration::days(3),
    )
    .await;
    grant_expiring(
        &app,
        &account,
        GrantSource::Purchase,
        "7.25",
        now(&app) + Duration::days(10),
    )
    .await;
    grant_id(&app, &account, GrantSource::Purchase, "1").await;

    // Default window: 7 days.
    let default_window = app.balance(&account).await;
    assert_totals(&default_window, "20.75", "0", "0");
    assert_bucket(&default_window, GrantSource::Purchase, "20.75", "0", "12.5");
    assert_bucket(
        &balance_within(&app, &account, 1).await,
        GrantSource::Purchase,
        "20.75",
        "0",
        "0",
    );
    assert_bucket(
        &balance_within(&app, &account, 30).await,
        GrantSource::Purchase,
        "20.75",
        "0",
        "19.75",
    );

    app.assert_books_balance().await;
    app.stop().await;
}

// ---------------------------------------------------------------------------------------------
// 2. Settlement below and above the hold; debt and write-off
// ---------------------------------------------------------------------------------------------

#[tokio::test]
async fn settle_below_the_hold_captures_from_the_hold_and_releases_the_rest() {
    let app = TestApp::spawn().await;
    let account = app.account().await;
    app.grant(&account, GrantSource::Purchase, "100").await;
    let hold = authorize_hold(&app, &account, "30").await;
    assert_totals(&app.balance(&account).await, "70", "30", "0");

    let (settlement, after) = settle(&app, &hold.hold_id, "12.25", false).await;
    assert_settlement(&settlement, ["12.25", "12.25", "0", "0", "0", "17.75"]);
    assert!(!settlement.late);
    assert!(!settlement.partial);
    assert_eq!(settlement.hold_id, hold.hold_id);
    assert_eq!(settlement.account_id, account);
    assert_eq!(settlement.refunded, "0");
    assert_eq!(after.status(), HoldStatus::Settled);
    assert_eq!(after.captured, "12.25");
    assert_eq!(after.amount, "30");
    assert!(after.resolved_at.is_some());

    let balance = app.balance(&account).await;
    assert_totals(&balance, "87.75", "0", "0");
    assert_bucket(&balance, GrantSource::Purchase, "87.75", "0", "0");

    app.assert_books_balance().await;
    app.stop().await;
}

#[tokio::test]
async fn settle_above_the_hold_takes_the_excess_from_further_grants() {
    let app = TestApp::spawn().await;
    let account = app.account().await;
    let free = grant_id(&app, &account, GrantSource::FreeDaily, "10").await;
    app.grant(&account, GrantSource::Purchase, "100").await;
    let hold = authorize_hold(&app, &account, "10").await;
    assert_eq!(allocations(&hold), pairs(&[(&free, "10")]));

    let (settlement, after) = settle(&app, &hold.hold_id, "25", false).await;
    assert_settlement(&settlement, ["25", "10", "15", "0", "0", "0"]);
    assert_eq!(after.status(), HoldStatus::Settled);
    assert_eq!(after.captured, "25");

    let balance = app.balance(&account).await;
    assert_totals(&balance, "85", "0", "0");
    assert_bucket(&balance, GrantSource::Purchase, "85", "0", "0");
    assert!(
        bucket(&balance, GrantSource::FreeDaily).is_none(),
        "{balance:#?}"
    );

    app.assert_books_balance().await;
    app.stop().await;
}

#[tokio::test]
async fn settle_beyond_hold_and_balance_under_debt_policy_blocks_authorize_until_a_grant_repays_it()
{
    let app = TestApp::spawn().await;
    let account = app.account().await;
    app.grant(&account, GrantSource::Purchase, "10").await;
    let hold = authorize_hold(&app, &account, "8").await;

    let (settlement, after) = settle(&app, &hold.hold_id, "14.5", false).await;
    assert_settlement(&settlement, ["14.5", "8", "2", "4.5", "0", "0"]);
    assert_eq!(after.status(), HoldStatus::Settled);
    assert_eq!(after.captured, "14.5");
    assert_totals(&app.balance(&account).await, "0", "0", "4.5");

    let status = assert_refused(
        app.authorize(&account, "1").await,
        Code::FailedPrecondition,
        "ACCOUNT_IN_DEBT",
    );
    assert!(status.message().contains("4.5"), "{}", status.message());

    let grant = app.grant(&account, GrantSource::Topup, "10").await;
    assert_eq!(grant.debt_repaid, "4.5");
    assert_eq!(grant.available, "5.5");
    assert_totals(&app.balance(&account).await, "5.5", "0", "0");

    let response = app.authorize(&account, "5.5").await.unwrap();
    assert_eq!(response.available, "0");
    assert_eq!(response.hold.unwrap().status(), HoldStatus::Active);

    app.assert_books_balance().await;
    app.stop().await;
}

#[tokio::test]
async fn settle_beyond_hold_and_balance_under_cap_at_hold_writes_off_and_leaves_no_debt() {
    let app = TestApp::spawn().await;
    let account = app.account_with(SettlePolicy::CapAtHold).await;
    app.grant(&account, GrantSource::Purchase, "10").await;
    let hold = authorize_hold(&app, &account, "8").await;

    let (settlement, after) = settle(&app, &hold.hold_id, "14", false).await;
    assert_settlement(&settlement, ["14", "8", "2", "0", "4", "0"]);
    assert_eq!(after.status(), HoldStatus::Settled);
    // Captured is what was charged; the written-off part is not.
    assert_eq!(after.captured, "10");
    assert_totals(&app.balance(&account).await, "0", "0", "0");

    let grant = app.grant(&account, GrantSource::Topup, "5").await;
    assert_eq!(grant.debt_repaid, "0");
    assert_eq!(grant.available, "5");
    let response = app.authorize(&account, "5").await.unwrap();
    assert_eq!(response.available, "0");

    app.assert_books_balance().await;
    app.stop().await;
}

// ---------------------------------------------------------------------------------------------
// 3. Partial capture
// ---------------------------------------------------------------------------------------------

#[tokio::test]
async fn partial_captures_keep_the_hold_active_and_the_final_settle_releases_the_rest() {
    let app = TestApp::spawn().await;
    let account = app.account().await;
    app.grant(&account, GrantSource::Purchase, "100").await;
    let hold = authorize_hold(&app, &account, "50").await;

    let (first, after_first) = settle(&app, &hold.hold_id, "10", true).await;
    assert_settlement(&first, ["10", "10", "0", "0", "0", "0"]);
    assert!(first.partial);
    assert_eq!(after_first.status(), HoldStatus::Active);
    assert_eq!(after_first.captured, "10");
    assert_eq!(after_first.partial_captures, 1);
    assert!(after_first.resolved_at.is_none());

    let (second, after_second) = settle(&app, &hold.hold_id, "15.5", true).await;
    assert_settlement(&second, ["15.5", "15.5", "0", "0", "0", "0"]);
    assert_eq!(after_second.status(), HoldStatus::Active);
    assert_eq!(after_second.captured, "25.5");
    assert_eq!(after_second.partial_captures, 2);
    assert_totals(&app.balance(&account).await, "50", "24.5", "0");

    let (last, settled) = settle(&app, &hold.hold_id, "4.5", false).await;
    assert_settlement(&last, ["4.5", "4.5", "0", "0", "0", "20"]);
    assert!(!last.partial);
    assert_eq!(settled.status(), HoldStatus::Settled);
    assert_eq!(settled.captured, "30");
    assert_totals(&app.balance(&account).await, "70", "0", "0");

    assert_refused(
        app.settle(&hold.hold_id, "1", false).await,
        Code::FailedPrecondition,
        "HOLD_NOT_ACTIVE",
    );
    assert_refused(
        app.settle(&hold.hold_id, "1", true).await,
        Code::FailedPrecondition,
        "HOLD_NOT_ACTIVE",
    );
    assert_refused(
        release(&app, &hold.hold_id).await,
        Code::FailedPrecondition,
        "HOLD_NOT_ACTIVE",
    );
    let view = get_hold_by_id(&app, &hold.hold_id).await;
    assert_eq!(view.settlements.len(), 3);
    assert_totals(&app.balance(&account).await, "70", "0", "0");

    app.assert_books_balance().await;
    app.stop().await;
}

#[tokio::test]
async fn final_settle_after_a_partial_capture_used_up_one_grant_of_the_hold_releases_the_rest() {
    let app = TestApp::spawn().await;
    let account = app.account().await;
    let free = grant_id(&app, &account, GrantSource::FreeDaily, "5").await;
    let purchase = grant_id(&app, &account, GrantSource::Purchase, "20").await;
    let hold = authorize_hold(&app, &account, "15").await;
    assert_eq!(
        allocations(&hold),
        pairs(&[(&free, "5"), (&purchase, "10")])
    );

    // Captures exactly the free grant's reservation: that grant is now fully spent.
    let (partial, after_partial) = settle(&app, &hold.hold_id, "5", true).await;
    assert_settlement(&partial, ["5", "5", "0", "0", "0", "0"]);
    assert_eq!(after_partial.status(), HoldStatus::Active);
    assert_eq!(allocations(&after_partial), pairs(&[(&purchase, "10")]));

    let (last, settled) = settle(&app, &hold.hold_id, "3", false).await;
    assert_settlement(&last, ["3", "3", "0", "0", "0", "7"]);
    assert_eq!(settled.status(), HoldStatus::Settled);
    assert_eq!(settled.captured, "8");
    let balance = app.balance(&account).await;
    assert_totals(&balance, "17", "0", "0");
    assert_bucket(&balance, GrantSource::Purchase, "17", "0", "0");

    app.assert_books_balance().await;
    app.stop().await;
}

#[tokio::test]
async fn release_after_a_partial_capture_used_up_one_grant_of_the_hold_returns_the_rest() {
    let app = TestApp::spawn().await;
    let account = app.account().await;
    let free = grant_id(&app, &account, GrantSource::FreeDaily, "5").await;
    let purchase = grant_id(&app, &account, GrantSource::Purchase, "20").await;
    let hold = authorize_hold(&app, &account, "15").await;
    assert_eq!(
        allocations(&hold),
        pairs(&[(&free, "5"), (&purchase, "10")])
    );
    settle(&app, &hold.hold_id, "5", true).await;

    let released = release(&app, &hold.hold_id).await.unwrap();
    assert_eq!(released.released, "10");
    let released_hold = released.hold.unwrap();
    assert_eq!(released_hold.status(), HoldStatus::Released);
    assert_eq!(released_hold.captured, "5");
    let balance = app.balance(&account).await;
    assert_totals(&balance, "20", "0", "0");
    assert_bucket(&balance, GrantSource::Purchase, "20", "0", "0");

    app.assert_books_balance().await;
    app.stop().await;
}

#[tokio::test]
async fn a_hold_expiring_after_a_partial_capture_used_up_one_of_its_grants_frees_the_rest() {
    let app = TestApp::spawn().await;
    let account = app.account().await;
    grant_id(&app, &account, GrantSource::FreeDaily, "5").await;
    let purchase = grant_id(&app, &account, GrantSource::Purchase, "20").await;
    let hold = authorize_with(&app, &account, "15", 60, &key())
        .await
        .unwrap()
        .hold
        .unwrap();
    settle(&app, &hold.hold_id, "5", true).await;

    app.advance(Duration::seconds(61));
    assert_totals(&app.balance(&account).await, "20", "0", "0");
    app.sweep().await;
    let expired = get_hold_by_id(&app, &hold.hold_id).await.hold.unwrap();
    assert_eq!(expired.status(), HoldStatus::Expired);
    assert_eq!(expired.captured, "5");
    let next = authorize_hold(&app, &account, "20").await;
    assert_eq!(allocations(&next), pairs(&[(&purchase, "20")]));

    app.assert_books_balance().await;
    app.stop().await;
}

// ---------------------------------------------------------------------------------------------
// 4. Release
// ---------------------------------------------------------------------------------------------

#[tokio::test]
async fn release_returns_the_credits_to_the_grants_they_were_reserved_from() {
    let app = TestApp::spawn().await;
    let account = app.account().await;
    let free = grant_id(&app, &account, GrantSource::FreeDaily, "5").await;
    let purchase = grant_id(&app, &account, GrantSource::Purchase, "50").await;
    let before = app.balance(&account).await;
    assert_totals(&before, "55", "0", "0");

    let hold = authorize_hold(&app, &account, "20").await;
    assert_eq!(
        allocations(&hold),
        pairs(&[(&free, "5"), (&purchase, "15")])
    );
    assert_totals(&app.balance(&account).await, "35", "20", "0");

    let released = release(&app, &hold.hold_id).await.unwrap();
    assert_eq!(released.released, "20");
    let released_hold = released.hold.unwrap();
    assert_eq!(released_hold.status(), HoldStatus::Released);
    assert_eq!(released_hold.captured, "0");
    assert!(released_hold.resolved_at.is_some());

    let after = app.balance(&account).await;
    assert_totals(&after, "55", "0", "0");
    assert_bucket(&after, GrantSource::FreeDaily, "5", "0", "0");
    assert_bucket(&after, GrantSource::Purchase, "50", "0", "0");
    // The free grant got its credits back: it is consumed first again.
    let again = authorize_hold(&app, &account, "6").await;
    assert_eq!(
        allocations(&again),
        pairs(&[(&free, "5"), (&purchase, "1")])
    );

    assert_refused(
        release(&app, &hold.hold_id).await,
        Code::FailedPrecondition,
        "HOLD_NOT_ACTIVE",
    );
    assert_refused(
        app.settle(&hold.hold_id, "1", false).await,
        Code::FailedPrecondition,
        "HOLD_NOT_ACTIVE",
    );
    assert_eq!(
        get_hold_by_id(&app, &hold.hold_id)
            .await
            .hold
            .unwrap()
            .status(),
        HoldStatus::Released
    );

    app.assert_books_balance().await;
    app.stop().await;
}

// ---------------------------------------------------------------------------------------------
// 5. Hold expiry and late settle
// ---------------------------------------------------------------------------------------------

#[tokio::test]
async fn an_expired_hold_frees_its_credits_and_a_late_settle_is_charged_from_the_balance_once() {
    let app = TestApp::spawn().await;
    let account = app.account().await;
    app.grant(&account, GrantSource::Purchase, "100").await;
    let key_of_hold = key();
    let response = authorize_with(&app, &account, "30", 60, &key_of_hold)
        .await
        .unwrap();
    let hold = response.hold.unwrap();
    assert_eq!(response.available, "70");
    let ttl = time(hold.expires_at.as_ref().unwrap()) - time(hold.created_at.as_ref().unwrap());
    assert_eq!(ttl, Duration::seconds(60));

    app.advance(Duration::seconds(61));
    // Whether or not a sweep ran, the hold counts as expired.
    let balance = app.balance(&account).await;
    assert_totals(&balance, "100", "0", "0");
    assert_bucket(&balance, GrantSource::Purchase, "100", "0", "0");
    assert_eq!(
        get_hold_by_id(&app, &hold.hold_id)
            .await
            .hold
            .unwrap()
            .status(),
        HoldStatus::Expired
    );

    app.sweep().await;
    let swept = get_hold_by_id(&app, &hold.hold_id).await.hold.unwrap();
    assert_eq!(swept.status(), HoldStatus::Expired);
    assert!(swept.resolved_at.is_some());
    assert_totals(&app.balance(&account).await, "100", "0", "0");
    app.assert_books_balance().await;

    // Neither released nor extended once expired.
    assert_refused(
        release(&app, &hold.hold_id).await,
        Code::FailedPrecondition,
        "HOLD_NOT_ACTIVE",
    );
    assert_refused(
        extend(&app, &hold.hold_id, "40", 0).await,
        Code::FailedPrecondition,
        "HOLD_NOT_ACTIVE",
    );

    let (late, after) = settle(&app, &hold.hold_id, "40", false).await;
    assert!(late.late);
    assert_settlement(&late, ["40", "0", "40", "0", "0", "0"]);
    assert_eq!(late.hold_id, hold.hold_id);
    assert_eq!(after.status(), HoldStatus::Expired);
    assert_eq!(after.captured, "40");
    assert_totals(&app.balance(&account).await, "60", "0", "0");

    assert_refused(
        app.settle(&hold.hold_id, "5", false).await,
        Code::FailedPrecondition,
        "HOLD_NOT_ACTIVE",
    );
    let view = get_hold(
        &app,
        get_hold_request::Lookup::AuthorizeIdempotencyKey(key_of_hold),
    )
    .await
    .unwrap();
    assert_eq!(view.settlements.len(), 1);
    assert!(view.settlements[0].late);
    assert_eq!(view.settlements[0].settlement_id, late.settlement_id);
    assert_totals(&app.balance(&account).await, "60", "0", "0");

    app.assert_books_balance().await;
    app.stop().await;
}

#[tokio::test]
async fn a_settle_past_the_hold_ttl_is_late_even_before_the_sweep_ran() {
    let app = TestApp::spawn().await;
    let account = app.account().await;
    app.grant(&account, GrantSource::Purchase, "50").await;
    let hold = authorize_with(&app, &account, "20", 60, &key())
        .await
        .unwrap()
        .hold
        .unwrap();
    app.advance(Duration::seconds(61));

    let (late, after) = settle(&app, &hold.hold_id, "15", false).await;
    assert!(late.late);
    assert_settlement(&late, ["15", "0", "15", "0", "0", "0"]);
    assert_eq!(after.status(), HoldStatus::Expired);
    assert_totals(&app.balance(&account).await, "35", "0", "0");

    app.assert_books_balance().await;
    app.stop().await;
}

#[tokio::test]
async fn a_late_settle_after_the_holds_grant_was_spent_by_another_hold_is_charged_from_the_balance()
{
    let app = TestApp::spawn().await;
    let account = app.account().await;
    let purchase = grant_id(&app, &account, GrantSource::Purchase, "10").await;
    app.grant(&account, GrantSource::Topup, "50").await;
    let first = authorize_with(&app, &account, "10", 60, &key())
        .await
        .unwrap()
        .hold
        .unwrap();
    assert_eq!(allocations(&first), pairs(&[(&purchase, "10")]));
    app.advance(Duration::seconds(61));
    app.sweep().await;

    // Another run spends the purchase grant completely.
    let second = authorize_hold(&app, &account, "10").await;
    assert_eq!(allocations(&second), pairs(&[(&purchase, "10")]));
    settle(&app, &second.hold_id, "10", false).await;

    let (late, after) = settle(&app, &first.hold_id, "7", false).await;
    assert!(late.late);
    assert_settlement(&late, ["7", "0", "7", "0", "0", "0"]);
    assert_eq!(after.status(), HoldStatus::Expired);
    let balance = app.balance(&account).await;
    assert_totals(&balance, "43", "0", "0");
    assert_bucket(&balance, GrantSource::Topup, "43", "0", "0");

    app.assert_books_balance().await;
    app.stop().await;
}

// ---------------------------------------------------------------------------------------------
// 6. Grant expiry and breakage
// ---------------------------------------------------------------------------------------------

#[tokio::test]
async fn an_expired_grant_is_not_spendable_and_the_sweep_books_its_breakage() {
    let app = TestApp::spawn().await;
    let account = app.account().await;
    let expiring = grant_expiring(
        &app,
        &account,
        GrantSource::Purchase,
        "30",
        now(&app) + Duration::hours(1),
    )
    .await;
    app.grant(&account, GrantSource::Purchase, "10").await;
    let balance = app.balance(&account).await;
    assert_totals(&balance, "40", "0", "0");
    assert_bucket(&balance, GrantSource::Purchase, "40", "0", "30");

    app.advance(Duration::hours(2));
    let balance = app.balance(&account).await;
    assert_totals(&balance, "10", "0", "0");
    assert_bucket(&balance, GrantSource::Purchase, "10", "0", "0");

    app.sweep().await;
    assert!(journal_count(&app, "EXPIRY").await > 0);
    assert_eq!(
        journal_sum(&app, "EXPIRY", "EXPIRED", Some(&expiring)).await,
        "30"
    );
    app.assert_books_balance().await;

    let status = assert_refused(
        app.authorize(&account, "10.5").await,
        Code::FailedPrecondition,
        "INSUFFICIENT_CREDITS",
    );
    assert!(status.message().contains("10"), "{}", status.message());
    assert_totals(&app.balance(&account).await, "10", "0", "0");

    app.assert_books_balance().await;
    app.stop().await;
}

#[tokio::test]
async fn credits_held_on_a_grant_that_expires_stay_capturable_by_the_hold() {
    let app = TestApp::spawn().await;
    let account = app.account().await;
    let expiring = grant_expiring(
        &app,
        &account,
        GrantSource::Purchase,
        "50",
        now(&app) + Duration::hours(1),
    )
    .await;
    let hold = authorize_with(&app, &account, "30", 3 * 3600, &key())
        .await
        .unwrap()
        .hold
        .unwrap();
    assert_eq!(allocations(&hold), pairs(&[(&expiring, "30")]));

    app.advance(Duration::hours(2));
    let balance = app.balance(&account).await;
    assert_totals(&balance, "0", "30", "0");
    assert_bucket(&balance, GrantSource::Purchase, "0", "30", "0");
    app.sweep().await;
    // Only the unreserved part broke.
    assert_eq!(
        journal_sum(&app, "EXPIRY", "EXPIRED", Some(&expiring)).await,
        "20"
    );
    assert_eq!(
        get_hold_by_id(&app, &hold.hold_id)
            .await
            .hold
            .unwrap()
            .status(),
        HoldStatus::Active
    );

    let (settlement, after) = settle(&app, &hold.hold_id, "30", false).await;
    assert!(!settlement.late);
    assert_settlement(&settlement, ["30", "30", "0", "0", "0", "0"]);
    assert_eq!(after.status(), HoldStatus::Settled);
    assert_totals(&app.balance(&account).await, "0", "0", "0");

    app.assert_books_balance().await;
    app.stop().await;
}

#[tokio::test]
async fn what_a_hold_leaves_of_an_expired_grant_breaks_when_the_hold_resolves() {
    let app = TestApp::spawn().await;
    let account = app.account().await;
    let expiring = grant_expiring(
        &app,
        &account,
        GrantSource::Purchase,
        "50",
        now(&app) + Duration::hours(1),
    )
    .await;
    app.grant(&account, GrantSource::Topup, "5").await;
    let hold = authorize_with(&app, &account, "30", 3 * 3600, &key())
        .await
        .unwrap()
        .hold
        .unwrap();
    app.advance(Duration::hours(2));

    let (settlement, _) = settle(&app, &hold.hold_id, "25", false).await;
    assert_settlement(&settlement, ["25", "25", "0", "0", "0", "5"]);
    // The 5 released went back to an expired grant: breakage, not spendable.
    let balance = app.balance(&account).await;
    assert_totals(&balance, "5", "0", "0");
    assert!(
        bucket(&balance, GrantSource::Purchase).is_none(),
        "{balance:#?}"
    );
    app.sweep().await;
    assert_eq!(
        journal_sum(&app, "EXPIRY", "EXPIRED", Some(&expiring)).await,
        "25"
    );

    app.assert_books_balance().await;
    app.stop().await;
}

// ---------------------------------------------------------------------------------------------
// 7. Refunds
// ---------------------------------------------------------------------------------------------

#[tokio::test]
async fn refunds_return_credits_to_their_grants_up_to_what_was_captured() {
    let app = TestApp::spawn().await;
    let account = app.account().await;
    let free = grant_id(&app, &account, GrantSource::FreeDaily, "5").await;
    let purchase = grant_id(&app, &account, GrantSource::Purchase, "50").await;
    let hold = authorize_hold(&app, &account, "20").await;
    let (settlement, _) = settle(&app, &hold.hold_id, "20", false).await;
    assert_totals(&app.balance(&account).await, "35", "0", "0");

    assert_refused(
        refund(&app, &settlement.settlement_id, "20.000000001").await,
        Code::FailedPrecondition,
        "REFUND_EXCEEDS_CAPTURE",
    );

    let first = refund(&app, &settlement.settlement_id, "8")
        .await
        .unwrap()
        .refund
        .unwrap();
    assert_eq!(first.amount, "8");
    assert_eq!(first.debt_reduced, "0");
    assert_eq!(first.new_grant_id, "");
    assert_eq!(first.settlement_id, settlement.settlement_id);
    assert_eq!(first.hold_id, hold.hold_id);
    assert_eq!(first.reason, "support");
    let returned: Vec<(String, String)> = first
        .returned_to
        .iter()
        .map(|allocation| (allocation.grant_id.clone(), allocation.amount.clone()))
        .collect();
    assert!(
        returned
            .iter()
            .all(|(grant, _)| *grant == free || *grant == purchase),
        "{returned:?}"
    );
    assert_totals(&app.balance(&account).await, "43", "0", "0");

    let rest = refund(&app, &settlement.settlement_id, "")
        .await
        .unwrap()
        .refund
        .unwrap();
    assert_eq!(rest.amount, "12");
    assert_eq!(rest.new_grant_id, "");

    // Every credit went back to the grant it came from.
    let balance = app.balance(&account).await;
    assert_totals(&balance, "55", "0", "0");
    assert_bucket(&balance, GrantSource::FreeDaily, "5", "0", "0");
    assert_bucket(&balance, GrantSource::Purchase, "50", "0", "0");

    assert_refused(
        refund(&app, &settlement.settlement_id, "1").await,
        Code::FailedPrecondition,
        "REFUND_EXCEEDS_CAPTURE",
    );
    assert_refused(
        refund(&app, &settlement.settlement_id, "").await,
        Code::FailedPrecondition,
        "REFUND_EXCEEDS_CAPTURE",
    );
    let view = get_hold_by_id(&app, &hold.hold_id).await;
    assert_eq!(view.settlements.len(), 1);
    assert_eq!(view.settlements[0].refunded, "20");
    assert_totals(&app.balance(&account).await, "55", "0", "0");

    app.assert_books_balance().await;
    app.stop().await;
}

#[tokio::test]
async fn refund_to_a_grant_that_expired_since_creates_a_refund_grant() {
    let app = TestApp::spawn().await;
    let account = app.account().await;
    let expiring = grant_expiring(
        &app,
        &account,
        GrantSource::Purchase,
        "50",
        now(&app) + Duration::hours(1),
    )
    .await;
    let topup = grant_id(&app, &account, GrantSource::Topup, "10").await;
    let hold = authorize_hold(&app, &account, "20").await;
    assert_eq!(allocations(&hold), pairs(&[(&expiring, "20")]));
    let (settlement, _) = settle(&app, &hold.hold_id, "20", false).await;

    app.advance(Duration::hours(2));
    let refunded = refund(&app, &settlement.settlement_id, "")
        .await
        .unwrap()
        .refund
        .unwrap();
    assert_eq!(refunded.amount, "20");
    assert_eq!(refunded.debt_reduced, "0");
    assert_ne!(refunded.new_grant_id, "");
    assert_ne!(refunded.new_grant_id, expiring);
    assert!(
        !refunded
            .returned_to
            .iter()
            .any(|allocation| allocation.grant_id == expiring),
        "{refunded:#?}"
    );

    let balance = app.balance(&account).await;
    assert_totals(&balance, "30", "0", "0");
    assert_bucket(&balance, GrantSource::Refund, "20", "0", "0");
    assert_bucket(&balance, GrantSource::Topup, "10", "0", "0");
    // The REFUND grant is valid for a limited time.
    assert_bucket(
        &balance_within(&app, &account, 3_650).await,
        GrantSource::Refund,
        "20",
        "0",
        "20",
    );

    // And it is spendable, before the top-up (priority 40 < 50).
    let next = authorize_hold(&app, &account, "25").await;
    assert_eq!(
        allocations(&next),
        pairs(&[(&refunded.new_grant_id, "20"), (&topup, "5")])
    );

    app.sweep().await;
    app.assert_books_balance().await;
    app.stop().await;
}

#[tokio::test]
async fn a_refund_while_in_debt_reduces_the_debt_first() {
    let app = TestApp::spawn().await;
    let account = app.account().await;
    let purchase = grant_id(&app, &account, GrantSource::Purchase, "10").await;
    let hold = authorize_hold(&app, &account, "10").await;
    let (settlement, _) = settle(&app, &hold.hold_id, "15", false).await;
    assert_settlement(&settlement, ["15", "10", "0", "5", "0", "0"]);
    assert_totals(&app.balance(&account).await, "0", "0", "5");

    let refunded = refund(&app, &settlement.settlement_id, "8")
        .await
        .unwrap()
        .refund
        .unwrap();
    assert_eq!(refunded.amount, "8");
    assert_eq!(refunded.debt_reduced, "5");
    assert_eq!(refunded.new_grant_id, "");
    assert_eq!(refunded.returned_to.len(), 1, "{refunded:#?}");
    assert_eq!(refunded.returned_to[0].grant_id, purchase);
    assert_eq!(refunded.returned_to[0].amount, "3");
    assert_totals(&app.balance(&account).await, "3", "0", "0");

    // Out of debt: Authorize works again.
    let response = app.authorize(&account, "3").await.unwrap();
    assert_eq!(response.available, "0");

    app.assert_books_balance().await;
    app.stop().await;
}

// ---------------------------------------------------------------------------------------------
// 8. ExtendHold
// ---------------------------------------------------------------------------------------------

#[tokio::test]
async fn extend_hold_raises_the_amount_from_further_grants_and_moves_the_expiry() {
    let app = TestApp::spawn().await;
    let account = app.account().await;
    let free = grant_id(&app, &account, GrantSource::FreeDaily, "5").await;
    let purchase = grant_id(&app, &account, GrantSource::Purchase, "50").await;
    let hold = authorize_hold(&app, &account, "20").await;
    assert_eq!(
        allocations(&hold),
        pairs(&[(&free, "5"), (&purchase, "15")])
    );

    let raised = extend(&app, &hold.hold_id, "35.5", 0).await.unwrap();
    let raised_hold = raised.hold.unwrap();
    assert_eq!(raised.available, "19.5");
    assert_eq!(raised_hold.amount, "35.5");
    assert_eq!(raised_hold.status(), HoldStatus::Active);
    assert_eq!(
        allocations(&raised_hold),
        pairs(&[(&free, "5"), (&purchase, "30.5")])
    );
    assert_eq!(raised_hold.expires_at, hold.expires_at);
    assert_totals(&app.balance(&account).await, "19.5", "35.5", "0");

    let status = assert_refused(
        extend(&app, &hold.hold_id, "60", 0).await,
        Code::FailedPrecondition,
        "INSUFFICIENT_CREDITS",
    );
    assert!(status.message().contains("19.5"), "{}", status.message());
    let unchanged = get_hold_by_id(&app, &hold.hold_id).await.hold.unwrap();
    assert_eq!(unchanged.amount, "35.5");
    assert_eq!(allocations(&unchanged), allocations(&raised_hold));
    assert_totals(&app.balance(&account).await, "19.5", "35.5", "0");

    assert_refused(
        extend(&app, &hold.hold_id, "30", 0).await,
        Code::InvalidArgument,
        "INVALID_AMOUNT",
    );
    assert_eq!(
        get_hold_by_id(&app, &hold.hold_id)
            .await
            .hold
            .unwrap()
            .amount,
        "35.5"
    );

    // TTL: counted from now.
    let before = now(&app);
    let moved = extend(&app, &hold.hold_id, "", 3_600).await.unwrap();
    let after = now(&app);
    let moved_hold = moved.hold.unwrap();
    let expires_at = time(moved_hold.expires_at.as_ref().unwrap());
    assert!(
        before + Duration::seconds(3_600) <= expires_at
            && expires_at <= after + Duration::seconds(3_600),
        "{expires_at} not 1h after [{before}, {after}]"
    );
    assert!(expires_at > time(hold.expires_at.as_ref().unwrap()));
    assert_eq!(moved_hold.amount, "35.5");
    assert_eq!(moved.available, "19.5");

    // Past the original 15 minutes the hold is still live and settles on time.
    app.advance(Duration::minutes(30));
    assert_eq!(
        get_hold_by_id(&app, &hold.hold_id)
            .await
            .hold
            .unwrap()
            .status(),
        HoldStatus::Active
    );
    let (settlement, _) = settle(&app, &hold.hold_id, "35.5", false).await;
    assert!(!settlement.late);
    assert_settlement(&settlement, ["35.5", "35.5", "0", "0", "0", "0"]);
    assert_totals(&app.balance(&account).await, "19.5", "0", "0");

    app.assert_books_balance().await;
    app.stop().await;
}

// ---------------------------------------------------------------------------------------------
// 9. GetHold
// ---------------------------------------------------------------------------------------------

#[tokio::test]
async fn get_hold_finds_a_hold_by_id_or_authorize_key_and_replays_a_declined_authorize() {
    let app = TestApp::spawn().await;
    let account = app.account().await;
    app.grant(&account, GrantSource::Purchase, "100").await;
    let authorize_key = key();
    let hold = authorize_with(&app, &account, "30", 0, &authorize_key)
        .await
        .unwrap()
        .hold
        .unwrap();

    let by_id = get_hold_by_id(&app, &hold.hold_id).await;
    assert_eq!(by_id.hold.as_ref(), Some(&hold));
    assert!(by_id.settlements.is_empty());

    let (partial, _) = settle(&app, &hold.hold_id, "10", true).await;
    let (last, _) = settle(&app, &hold.hold_id, "5", false).await;
    let by_key = get_hold(
        &app,
        get_hold_request::Lookup::AuthorizeIdempotencyKey(authorize_key.clone()),
    )
    .await
    .unwrap();
    let found = by_key.hold.unwrap();
    assert_eq!(found.hold_id, hold.hold_id);
    assert_eq!(found.status(), HoldStatus::Settled);
    assert_eq!(found.captured, "15");
    let settlement_ids: Vec<&str> = by_key
        .settlements
        .iter()
        .map(|settlement| settlement.settlement_id.as_str())
        .collect();
    assert_eq!(
        settlement_ids,
        [partial.settlement_id.as_str(), last.settlement_id.as_str()]
    );
    assert_settlement(&by_key.settlements[0], ["10", "10", "0", "0", "0", "0"]);
    assert!(by_key.settlements[0].partial);
    assert_settlement(&by_key.settlements[1], ["5", "5", "0", "0", "0", "15"]);

    // A declined Authorize: its key answers with the same decline.
    let declined_key = key();
    assert_refused(
        authorize_with(&app, &account, "1000", 0, &declined_key).await,
        Code::FailedPrecondition,
        "INSUFFICIENT_CREDITS",
    );
    assert_refused(
        get_hold(
            &app,
            get_hold_request::Lookup::AuthorizeIdempotencyKey(declined_key),
        )
        .await,
        Code::FailedPrecondition,
        "INSUFFICIENT_CREDITS",
    );

    assert_refused(
        get_hold(
            &app,
            get_hold_request::Lookup::AuthorizeIdempotencyKey(key()),
        )
        .await,
        Code::NotFound,
        "HOLD_NOT_FOUND",
    );
    assert_refused(
        get_hold(&app, get_hold_request::Lookup::HoldId(key())).await,
        Code::NotFound,
        "HOLD_NOT_FOUND",
    );

    app.assert_books_balance().await;
    app.stop().await;
}

// ---------------------------------------------------------------------------------------------
// 10. Tenancy
// ---------------------------------------------------------------------------------------------

#[tokio::test]
async fn another_tenants_account_hold_and_settlement_are_not_found() {
    let app = TestApp::spawn().await;
    let account = app.account().await;
    app.grant(&account, GrantSource::Purchase, "100").await;
    let authorize_key = key();
    let settled = authorize_with(&app, &account, "10", 0, &authorize_key)
        .await
        .unwrap()
        .hold
        .unwrap();
    let (settlement, _) = settle(&app, &settled.hold_id, "10", false).await;
    let live = authorize_hold(&app, &account, "20").await;
    let external_id = app
        .account_as(Some(&app.key))
        .get_account(GetAccountRequest {
            lookup: Some(get_account_request::Lookup::AccountId(account.clone())),
        })
        .await
        .unwrap()
        .into_inner()
        .account
        .unwrap()
        .external_id;

    let other_key = {
        let client = app.pool.get().await.unwrap();
        let tenant = tenants::create_tenant(&client, "other").await.unwrap();
        tenants::create_key(&client, tenant.tenant_id, ScopeSet::all())
            .await
            .unwrap()
            .secret
    };
    let mut billing = app.account_as(Some(&other_key));
    let mut worker = app.credit_as(Some(&other_key));

    assert_refused(
        billing
            .get_account(GetAccountRequest {
                lookup: Some(get_account_request::Lookup::AccountId(account.clone())),
            })
            .await,
        Code::NotFound,
        "ACCOUNT_NOT_FOUND",
    );
    assert_refused(
        billing
            .get_account(GetAccountRequest {
                lookup: Some(get_account_request::Lookup::ExternalId(external_id.clone())),
            })
            .await,
        Code::NotFound,
        "ACCOUNT_NOT_FOUND",
    );
    assert_refused(
        billing
            .get_balance(GetBalanceRequest {
                account_id: account.clone(),
                expiring_within_days: 0,
            })
            .await,
        Code::NotFound,
        "ACCOUNT_NOT_FOUND",
    );
    assert_refused(
        billing
            .grant(GrantRequest {
                account_id: account.clone(),
                idempotency_key: key(),
                source: GrantSource::Purchase as i32,
                amount: "1000".to_owned(),
                ..GrantRequest::default()
            })
            .await,
        Code::NotFound,
        "ACCOUNT_NOT_FOUND",
    );
    assert_refused(
        billing
            .update_account(UpdateAccountRequest {
                account_id: account.clone(),
                idempotency_key: key(),
                status: Some(AccountStatus::Suspended as i32),
                ..UpdateAccountRequest::default()
            })
            .await,
        Code::NotFound,
        "ACCOUNT_NOT_FOUND",
    );
    assert_refused(
        worker
            .authorize(AuthorizeRequest {
                account_id: account.clone(),
                idempotency_key: key(),
                price: Some(authorize_request::Price::Amount("1".to_owned())),
                ..AuthorizeRequest::default()
            })
            .await,
        Code::NotFound,
        "ACCOUNT_NOT_FOUND",
    );
    for lookup in [
        get_hold_request::Lookup::HoldId(live.hold_id.clone()),
        get_hold_request::Lookup::AuthorizeIdempotencyKey(authorize_key.clone()),
    ] {
        assert_refused(
            worker
                .get_hold(GetHoldRequest {
                    lookup: Some(lookup),
                })
                .await,
            Code::NotFound,
            "HOLD_NOT_FOUND",
        );
    }
    assert_refused(
        worker
            .settle(SettleRequest {
                hold_id: live.hold_id.clone(),
                idempotency_key: key(),
                charge: Some(settle_request::Charge::Amount("20".to_owned())),
                partial: false,
            })
            .await,
        Code::NotFound,
        "HOLD_NOT_FOUND",
    );
    assert_refused(
        worker
            .release(ReleaseRequest {
                hold_id: live.hold_id.clone(),
                idempotency_key: key(),
                reason: String::new(),
            })
            .await,
        Code::NotFound,
        "HOLD_NOT_FOUND",
    );
    assert_refused(
        worker
            .extend_hold(ExtendHoldRequest {
                hold_id: live.hold_id.clone(),
                idempotency_key: key(),
                amount: "30".to_owned(),
                ttl_seconds: 0,
            })
            .await,
        Code::NotFound,
        "HOLD_NOT_FOUND",
    );
    assert_refused(
        worker
            .refund(RefundRequest {
                settlement_id: settlement.settlement_id.clone(),
                idempotency_key: key(),
                reason: String::new(),
                amount: String::new(),
            })
            .await,
        Code::NotFound,
        "SETTLEMENT_NOT_FOUND",
    );

    // External ids are unique per tenant only: the other tenant may use the same one.
    let mirror = billing
        .create_account(CreateAccountRequest {
            idempotency_key: key(),
            external_id: external_id.clone(),
            kind: AccountKind::Organization as i32,
            ..CreateAccountRequest::default()
        })
        .await
        .unwrap()
        .into_inner()
        .account
        .unwrap();
    assert_ne!(mirror.account_id, account);

    // Nothing of the first tenant changed.
    let balance = app.balance(&account).await;
    assert_totals(&balance, "70", "20", "0");
    let still_live = get_hold_by_id(&app, &live.hold_id).await.hold.unwrap();
    assert_eq!(still_live.status(), HoldStatus::Active);
    assert_eq!(still_live.amount, "20");
    assert_eq!(
        get_hold_by_id(&app, &settled.hold_id).await.settlements[0].refunded,
        "0"
    );

    app.assert_books_balance().await;
    app.stop().await;
}

// ---------------------------------------------------------------------------------------------
// 11. Account lifecycle
// ---------------------------------------------------------------------------------------------

#[tokio::test]
async fn account_lifecycle_create_read_duplicate_and_suspend_blocks_new_holds_but_not_settles() {
    let app = TestApp::spawn().await;
    let mut billing = app.account_as(Some(&app.key));
    let create = CreateAccountRequest {
        idempotency_key: key(),
        external_id: "customer-42".to_owned(),
        kind: AccountKind::User as i32,
        settle_policy: SettlePolicy::CapAtHold as i32,
        entitlements: vec!["pro".to_owned()],
        low_balance_threshold: "5.50".to_owned(),
    };
    let created = billing
        .create_account(create.clone())
        .await
        .unwrap()
        .into_inner()
        .account
        .unwrap();
    assert!(!created.account_id.is_empty());
    assert_eq!(created.external_id, "customer-42");
    assert_eq!(created.kind(), AccountKind::User);
    assert_eq!(created.status(), AccountStatus::Active);
    assert_eq!(created.settle_policy(), SettlePolicy::CapAtHold);
    assert_eq!(created.entitlements, ["pro"]);
    assert_eq!(created.low_balance_threshold, "5.5");
    let account = created.account_id.clone();

    // A retry with the same key answers the same account.
    let replayed = billing
        .create_account(create.clone())
        .await
        .unwrap()
        .into_inner()
        .account
        .unwrap();
    assert_eq!(replayed, created);

    for lookup in [
        get_account_request::Lookup::AccountId(account.clone()),
        get_account_request::Lookup::ExternalId("customer-42".to_owned()),
    ] {
        let found = billing
            .get_account(GetAccountRequest {
                lookup: Some(lookup),
            })
            .await
            .unwrap()
            .into_inner()
            .account
            .unwrap();
        assert_eq!(found, created);
    }
    assert_refused(
        billing
            .get_account(GetAccountRequest {
                lookup: Some(get_account_request::Lookup::ExternalId(
                    "customer-43".to_owned(),
                )),
            })
            .await,
        Code::NotFound,
        "ACCOUNT_NOT_FOUND",
    );

    let duplicate = billing
        .create_account(CreateAccountRequest {
            idempotency_key: key(),
            ..create.clone()
        })
        .await
        .unwrap_err();
    assert_eq!(duplicate.code(), Code::AlreadyExists, "{duplicate:?}");
    assert_ne!(
        reason(&duplicate).as_deref(),
        Some("IDEMPOTENCY_KEY_REUSED"),
        "{duplicate:?}"
    );

    app.grant(&account, GrantSource::Purchase, "50").await;
    let live = authorize_hold(&app, &account, "20").await;

    let suspended = billing
        .update_account(UpdateAccountRequest {
            account_id: account.clone(),
            idempotency_key: key(),
            status: Some(AccountStatus::Suspended as i32),
            ..UpdateAccountRequest::default()
        })
        .await
        .unwrap()
        .into_inner()
        .account
        .unwrap();
    assert_eq!(suspended.status(), AccountStatus::Suspended);
    // Absent fields are unchanged.
    assert_eq!(suspended.settle_policy(), SettlePolicy::CapAtHold);
    assert_eq!(suspended.entitlements, ["pro"]);
    assert_eq!(suspended.low_balance_threshold, "5.5");

    assert_refused(
        app.authorize(&account, "1").await,
        Code::FailedPrecondition,
        "ACCOUNT_SUSPENDED",
    );
    assert_refused(
        extend(&app, &live.hold_id, "25", 0).await,
        Code::FailedPrecondition,
        "ACCOUNT_SUSPENDED",
    );

    // The run already authorized still settles.
    let (settlement, after) = settle(&app, &live.hold_id, "12", false).await;
    assert_settlement(&settlement, ["12", "12", "0", "0", "0", "8"]);
    assert_eq!(after.status(), HoldStatus::Settled);
    assert_totals(&app.balance(&account).await, "38", "0", "0");

    let reactivated = billing
        .update_account(UpdateAccountRequest {
            account_id: account.clone(),
            idempotency_key: key(),
            status: Some(AccountStatus::Active as i32),
            entitlements: Some(Entitlements { values: Vec::new() }),
            ..UpdateAccountRequest::default()
        })
        .await
        .unwrap()
        .into_inner()
        .account
        .unwrap();
    assert_eq!(reactivated.status(), AccountStatus::Active);
    assert!(reactivated.entitlements.is_empty());
    let response = app.authorize(&account, "38").await.unwrap();
    assert_eq!(response.available, "0");

    app.assert_books_balance().await;
    app.stop().await;
}
