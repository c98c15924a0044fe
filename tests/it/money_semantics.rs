//! Money semantics through the gRPC surface: burn order, settlement (below, above, debt,
//! write-off), partial capture, release, hold and grant expiry, refunds, ExtendHold, GetHold,
//! tenancy and the account lifecycle. Every amount is checked as the exact decimal string.

mod accounts;
mod burn_order;
mod grant_expiry;
mod holds;
mod refunds;
mod settle;

use chrono::{DateTime, Utc};
use creditgate::proto::v1::{
    AuthorizeRequest, AuthorizeResponse, BalanceBucket, ExtendHoldResponse, GetBalanceRequest,
    GetBalanceResponse, GetHoldRequest, GetHoldResponse, GrantRequest, GrantSource, Hold,
    ReleaseResponse, Settlement, get_hold_request,
};
use tonic::Status;

use crate::helpers::TestApp;
use crate::helpers::money::{
    authorize_request, extend_request, grant_request, key, refund, release_request,
};
use crate::helpers::time::timestamp;

/// Grants `amount` from `source` expiring at `expires_at`; returns the grant id.
async fn grant_expiring(
    app: &TestApp,
    account_id: &str,
    source: GrantSource,
    amount: &str,
    expires_at: DateTime<Utc>,
) -> String {
    app.grant_request(GrantRequest {
        source: source as i32,
        expires_at: Some(timestamp(expires_at)),
        ..grant_request(account_id, &key(), amount)
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
            ttl_seconds,
            ..authorize_request(account_id, idempotency_key, amount)
        })
        .await
        .map(tonic::Response::into_inner)
}

/// Settles and returns (settlement, hold after).
async fn settle(app: &TestApp, hold_id: &str, amount: &str, partial: bool) -> (Settlement, Hold) {
    let response = app.settle(hold_id, amount, partial).await.unwrap();
    (response.settlement.unwrap(), response.hold.unwrap())
}

async fn release(app: &TestApp, hold_id: &str) -> Result<ReleaseResponse, Status> {
    app.credit()
        .release(release_request(hold_id, &key(), "run failed"))
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
        .extend_hold(extend_request(hold_id, &key(), amount, ttl_seconds))
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
            ..Default::default()
        })
        .await
        .map(tonic::Response::into_inner)
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
