//! Authorize keys through the rolling upgrade of 0024–0026: claimed per account in
//! `authorize_keys`, by this version's servers with the hold and by a trigger for older ones
//! until the contract (0026) drops the trigger and the key of `holds` that spanned a tenant.

use creditgate::proto::v1::{GrantSource, Hold};

use super::key_columns;
use crate::helpers::TestApp;
use crate::helpers::money::{authorize_request, key};
use crate::helpers::status::assert_refused;

/// Makes a hold as a server before 0024 did, copying `like` (released, so that it holds
/// nothing): the hold row and its run counted, its Authorize key claimed by nothing but the
/// row's own key.
async fn authorize_as_before(
    app: &TestApp,
    like: &str,
    authorize_key: &str,
) -> Result<uuid::Uuid, tokio_postgres::Error> {
    let hold_id = uuid::Uuid::now_v7();
    let like: uuid::Uuid = like.parse().unwrap();
    let client = app.pool.get().await.unwrap();
    client
        .execute(
            "WITH held AS (INSERT INTO holds (hold_id, tenant_id, account_id, status, amount, \
             captured, expires_at, authorize_key, created_at, resolved_at) \
             SELECT $1, tenant_id, account_id, 'RELEASED', amount, 0, expires_at, $2, created_at, \
             created_at FROM holds WHERE hold_id = $3 RETURNING account_id, created_at) \
             INSERT INTO usage_rollups (account_id, day, task_type, model, runs, captured, refunded, \
             last_run_at) SELECT account_id, (created_at AT TIME ZONE 'UTC')::date, '', '', 1, 0, 0, \
             created_at FROM held ON CONFLICT (account_id, day, task_type, model) DO UPDATE \
             SET runs = usage_rollups.runs + 1, \
             last_run_at = greatest(usage_rollups.last_run_at, EXCLUDED.last_run_at)",
            &[&hold_id, &authorize_key, &like],
        )
        .await?;
    Ok(hold_id)
}

/// The hold claimed by `authorize_key` on `hold_id`'s account, if any.
async fn claimed_hold(app: &TestApp, hold_id: &str, authorize_key: &str) -> Option<uuid::Uuid> {
    let hold_id: uuid::Uuid = hold_id.parse().unwrap();
    let client = app.pool.get().await.unwrap();
    client
        .query_opt(
            "SELECT k.hold_id FROM authorize_keys k JOIN holds h ON h.account_id = k.account_id \
             WHERE h.hold_id = $1 AND k.authorize_key = $2",
            &[&hold_id, &authorize_key],
        )
        .await
        .unwrap()
        .map(|row| row.get(0))
}

/// The Authorize key in hold `hold_id`'s own row.
async fn key_in_hold(app: &TestApp, hold_id: &str) -> Option<String> {
    let hold_id: uuid::Uuid = hold_id.parse().unwrap();
    let client = app.pool.get().await.unwrap();
    client
        .query_one(
            "SELECT authorize_key FROM holds WHERE hold_id = $1",
            &[&hold_id],
        )
        .await
        .unwrap()
        .get(0)
}

/// A hold of 1 on `account_id` made by this version with `authorize_key`, checked claimed.
async fn authorize_claimed(app: &TestApp, account_id: &str, authorize_key: &str) -> Hold {
    let hold = app
        .credit()
        .authorize(authorize_request(account_id, authorize_key, "1"))
        .await
        .unwrap()
        .into_inner()
        .hold
        .unwrap();
    assert_eq!(
        claimed_hold(app, &hold.hold_id, authorize_key).await,
        Some(hold.hold_id.parse().unwrap())
    );
    hold
}

/// Before the contract: this version claims its own keys and writes them in the hold too, for
/// the older servers that read them there (the trigger for older servers finds the claim and
/// adds nothing), an older server's hold is claimed for it, either refuses the key once its
/// record is gone, and the old key still spans the tenant's accounts. Returns a hold of
/// `like`'s.
pub(super) async fn expanded(app: &TestApp, like: &str) -> Hold {
    app.grant(like, GrantSource::Purchase, "5").await;
    let current_key = key();
    let current_hold = authorize_claimed(app, like, &current_key).await;
    assert_eq!(
        key_in_hold(app, &current_hold.hold_id).await,
        Some(current_key.clone())
    );
    let older_key = key();
    let older_hold = authorize_as_before(app, &current_hold.hold_id, &older_key)
        .await
        .unwrap();
    assert_eq!(
        claimed_hold(app, &current_hold.hold_id, &older_key).await,
        Some(older_hold)
    );
    let found = app.get_hold_by_key(&older_key).await.unwrap().hold.unwrap();
    assert_eq!(found.hold_id, older_hold.to_string());
    let reused = app
        .credit()
        .authorize(authorize_request(like, &older_key, "1"))
        .await
        .unwrap_err();
    assert_refused(
        &reused,
        tonic::Code::AlreadyExists,
        "IDEMPOTENCY_KEY_REUSED",
    );
    // An older server cannot reuse this version's key on another account.
    let elsewhere = app.account().await;
    app.grant(&elsewhere, GrantSource::Purchase, "1").await;
    let elsewhere_hold = app.hold(&elsewhere, "1").await;
    authorize_as_before(app, &elsewhere_hold.hold_id, &current_key)
        .await
        .unwrap_err();
    current_hold
}

/// After the contract: the claims alone, per account. No trigger claims for an older server
/// now (what the wait was for), and the key of `holds` is gone.
pub(super) async fn contracted(app: &TestApp, like: &str, like_hold: &Hold) {
    assert!(
        key_columns(&app.database, "holds_tenant_id_authorize_key_key")
            .await
            .is_empty()
    );
    let unclaimed = key();
    authorize_as_before(app, &like_hold.hold_id, &unclaimed)
        .await
        .unwrap();
    assert_eq!(
        claimed_hold(app, &like_hold.hold_id, &unclaimed).await,
        None
    );
    authorize_claimed(app, like, &key()).await;
}
