//! The optional account of a request that names a hold or a settlement: the object must be
//! that account's, whether the server remembers the hold or reads it from the database, and a
//! wrong account changes nothing; a retry with or without it is the same request.

use tonic::Code;

use super::bad_input::MALFORMED_IDS;
use crate::helpers::TestApp;
use crate::helpers::money::key;
use crate::helpers::mutating::{Mutating, assert_applied_once};
use crate::helpers::snapshot::Snapshot;
use crate::helpers::status::{assert_invalid_field, assert_refused};

pub async fn a_named_account_must_own_the_object<R: Mutating>() {
    let app = TestApp::spawn().await;
    let subject = R::prepare(&app).await;
    // A second server on the database remembers none of the holds, so it reads them.
    let replica = app.replica().await;
    let other = app.funded_account("100").await;
    let not_found = R::naming(&subject, &key(), "")
        .expect("the request names an object")
        .not_found;
    let before = Snapshot::of(&app).await;
    for bad in MALFORMED_IDS {
        let request = R::on_account(&subject, &key(), Some(bad)).expect("an optional account");
        let status = R::send(app.clients(), request).await.unwrap_err();
        assert_invalid_field(&status, "INVALID_ARGUMENT", "account_id");
    }
    let unknown = uuid::Uuid::now_v7().to_string();
    for account_id in [&other, &unknown] {
        for server in [&app, &replica] {
            let request = R::on_account(&subject, &key(), Some(account_id)).unwrap();
            let status = R::send(server.clients(), request).await.unwrap_err();
            assert_refused(&status, Code::NotFound, not_found);
            assert!(status.message().contains(account_id.as_str()), "{status:?}");
        }
    }
    Snapshot::of(&app)
        .await
        .assert_is(&before, "another account named");

    // Its own account: applied once, by the server that reads the database, and the same
    // answer again from the other one.
    let key = key();
    let request = R::on_account(&subject, &key, None).unwrap();
    let answer = R::send(replica.clients(), request.clone()).await.unwrap();
    let again = R::send(app.clients(), request).await.unwrap();
    assert_eq!(again, answer, "{}: a replay answers alike", R::RPC);
    // The account says where the object is, not what to do: a retry without it is the same
    // request (as it is to a server that predates the field), and so is one naming it again.
    let without = R::send(replica.clients(), R::request(&subject, &key)).await;
    assert_eq!(
        without.unwrap(),
        answer,
        "{}: a retry without the account",
        R::RPC
    );
    let after = Snapshot::of(&app).await;
    assert_applied_once::<R>(&before, &after, &subject, &answer);
    replica.stop().await;
    app.finish().await;
}
