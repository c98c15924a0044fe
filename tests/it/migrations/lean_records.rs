//! Idempotency records through the rolling upgrade of 0029–0030: a record keeps the request's
//! hash and the key's digest while a server before 0029 (which reads the hash) may be
//! connected, and neither once 0030 has run. Either way a retry gets the first answer from
//! every server, and a reused key is refused naming exactly the fields that changed.

use creditgate::proto::v1::{SettleRequest, SettleResponse};
use tonic::Code;

use crate::helpers::TestApp;
use crate::helpers::money::{key, settle_request};
use crate::helpers::status::{assert_refused, metadata};

/// A Settle of a fresh hold of `like`'s, and its answer.
async fn settled(app: &TestApp, like: &str) -> (SettleRequest, SettleResponse) {
    let hold = app.hold(like, "1").await;
    let request = settle_request(&hold.hold_id, &key(), "1");
    let answer = app.credit().settle(request.clone()).await.unwrap();
    (request, answer.into_inner())
}

/// How the run's record keeps its request: the hash's length and the field digests'.
async fn kept(app: &TestApp, run: &(SettleRequest, SettleResponse)) -> (Option<i32>, i32) {
    let client = app.pool.get().await.unwrap();
    let row = client
        .query_one(
            "SELECT octet_length(request_hash), octet_length(request_fields) \
             FROM idempotency_records WHERE idempotency_key = $1",
            &[&run.0.idempotency_key],
        )
        .await
        .unwrap();
    (row.get(0), row.get(1))
}

/// The run retried: the first answer; and its key with another amount: refused naming it.
async fn replayed(app: &TestApp, run: &(SettleRequest, SettleResponse)) {
    let (request, answer) = run;
    let again = app.credit().settle(request.clone()).await.unwrap();
    assert_eq!(&again.into_inner(), answer);
    let changed = settle_request(&request.hold_id, &request.idempotency_key, "0.5");
    let status = app.credit().settle(changed).await.unwrap_err();
    assert_refused(&status, Code::AlreadyExists, "IDEMPOTENCY_KEY_REUSED");
    let fields = metadata(&status).get("fields").cloned();
    assert_eq!(fields.as_deref(), Some("amount"), "{status:?}");
}

/// Before the contract: records keep the hash and the key's digest (three fields: hold, key,
/// amount), for older servers. Returns such a run of `like`'s.
pub(super) async fn expanded(app: &TestApp, like: &str) -> (SettleRequest, SettleResponse) {
    let run = settled(app, like).await;
    assert_eq!(kept(app, &run).await, (Some(32), 27));
    replayed(app, &run).await;
    run
}

/// After the contract: a server that starts now writes lean records (no hash; two digests);
/// each server replays both forms and names what a reused key changed in both.
pub(super) async fn contracted(
    app: &TestApp,
    like: &str,
    before: &(SettleRequest, SettleResponse),
) {
    let replica = app.replica().await;
    let run = settled(&replica, like).await;
    assert_eq!(kept(app, &run).await, (None, 18));
    for server in [app, &replica] {
        replayed(server, before).await;
        replayed(server, &run).await;
    }
    replica.stop().await;
}
