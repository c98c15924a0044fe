//! Edge cases found in review: what a late settle owes under CAP_AT_HOLD, entitlements on
//! explicit amounts, bounds on priced totals and text, keys whose records were pruned.

use creditgate::proto::v1::{
    AccountKind, AuthorizeRequest, CreateAccountRequest, GetHoldRequest, GrantSource, ImageUsage,
    QuoteRequest, RunMetadata, SettlePolicy, SettleRequest, Usage, get_hold_request,
    settle_request,
};
use tonic::Code;

use crate::helpers::TestApp;
use crate::helpers::books::found_by;
use crate::helpers::money::{
    authorize_request, create_account_request, key, refund_request, settle_request,
};
use crate::helpers::status::assert_refused;

fn authorize_on(
    account_id: &str,
    amount: &str,
    ttl_seconds: u32,
    run: Option<RunMetadata>,
) -> AuthorizeRequest {
    AuthorizeRequest {
        ttl_seconds,
        run,
        ..authorize_request(account_id, &key(), amount)
    }
}

#[tokio::test]
async fn a_late_settle_under_cap_at_hold_owes_what_the_hold_authorized() {
    let app = TestApp::spawn().await;
    let account_id = app.account_with(SettlePolicy::CapAtHold).await;
    app.grant(&account_id, GrantSource::Purchase, "10").await;
    let lapsed = app
        .credit()
        .authorize(authorize_on(&account_id, "10", 60, None))
        .await
        .unwrap()
        .into_inner()
        .hold
        .unwrap();
    app.advance(chrono::Duration::seconds(61));
    // Another run spends the credits the lapsed hold gave back.
    let other = app
        .authorize(&account_id, "10")
        .await
        .unwrap()
        .hold
        .unwrap();
    app.settle(&other.hold_id, "10", false).await.unwrap();
    let late = app
        .settle(&lapsed.hold_id, "12", false)
        .await
        .unwrap()
        .settlement
        .unwrap();
    assert!(late.late);
    assert_eq!(
        (late.from_hold.as_str(), late.from_balance.as_str()),
        ("0", "0")
    );
    assert_eq!(
        late.debt, "10",
        "usage within the hold is owed even under CAP_AT_HOLD"
    );
    assert_eq!(
        late.written_off, "2",
        "only usage above the hold is written off"
    );
    assert_eq!(app.balance(&account_id).await.debt, "10");
    app.finish().await;
}

#[tokio::test]
async fn an_explicit_amount_for_a_gated_model_needs_the_entitlement() {
    let app = TestApp::spawn().await;
    let account_id = app.account().await;
    app.grant(&account_id, GrantSource::Purchase, "50").await;
    let run = RunMetadata {
        model: "openai/o3-pro".to_owned(),
        ..RunMetadata::default()
    };
    let refused = app
        .credit()
        .authorize(authorize_on(&account_id, "10", 0, Some(run.clone())))
        .await
        .unwrap_err();
    assert_refused(&refused, Code::PermissionDenied, "ENTITLEMENT_REQUIRED");
    let request = CreateAccountRequest {
        kind: AccountKind::User as i32,
        entitlements: vec!["pro".to_owned()],
        ..create_account_request(&key(), &key())
    };
    let entitled = app.create_account_as(&app.key, request).await;
    app.grant(&entitled, GrantSource::Purchase, "50").await;
    let hold = app
        .credit()
        .authorize(authorize_on(&entitled, "10", 0, Some(run)))
        .await
        .unwrap()
        .into_inner()
        .hold
        .unwrap();
    assert_eq!(
        hold.catalog_version, 1,
        "an explicit hold on a catalog model is price-locked too"
    );
    app.finish().await;
}

#[tokio::test]
async fn a_priced_total_above_the_maximum_amount_is_refused() {
    let app = TestApp::spawn().await;
    let account_id = app.account().await;
    app.grant(&account_id, GrantSource::Purchase, "10").await;
    let hold = app.authorize(&account_id, "1").await.unwrap().hold.unwrap();
    let huge = Usage {
        images: vec![
            ImageUsage {
                count: 1_000_000,
                megapixels: "1000".to_owned(),
                ..ImageUsage::default()
            };
            64
        ],
        ..Usage::default()
    };
    let refused = app
        .credit()
        .settle(SettleRequest {
            charge: Some(settle_request::Charge::Usage(huge.clone())),
            ..settle_request(&hold.hold_id, &key(), "1")
        })
        .await
        .unwrap_err();
    assert_eq!(refused.code(), Code::InvalidArgument);
    let quote = QuoteRequest {
        model: "black-forest-labs/flux-1.1-pro".to_owned(),
        usage: Some(huge),
        ..QuoteRequest::default()
    };
    let refused = app.credit().quote(quote).await.unwrap_err();
    assert_eq!(refused.code(), Code::InvalidArgument);
    assert_eq!(app.balance(&account_id).await.debt, "0");
    app.finish().await;
}

#[tokio::test]
async fn control_characters_in_run_metadata_are_refused_without_writing() {
    let app = TestApp::spawn().await;
    let account_id = app.account().await;
    app.grant(&account_id, GrantSource::Purchase, "10").await;
    let run = RunMetadata {
        project: "a\0b".to_owned(),
        ..RunMetadata::default()
    };
    let refused = app
        .credit()
        .authorize(authorize_on(&account_id, "1", 0, Some(run)))
        .await
        .unwrap_err();
    assert_eq!(refused.code(), Code::InvalidArgument);
    assert_eq!(app.balance(&account_id).await.held, "0");
    app.finish().await;
}

#[tokio::test]
async fn a_retry_after_the_record_was_pruned_is_refused_not_retried_forever() {
    let app = TestApp::spawn().await;
    let account_id = app.account().await;
    app.grant(&account_id, GrantSource::Purchase, "10").await;
    let request = authorize_on(&account_id, "1", 0, None);
    app.credit().authorize(request.clone()).await.unwrap();
    let client = app.pool.get().await.unwrap();
    client
        .execute("DELETE FROM idempotency_records", &[])
        .await
        .unwrap();
    // Sent beside operations of other accounts (which may share its transaction), it is
    // refused up front and fails none of them.
    let mut others = Vec::new();
    for _ in 0..8 {
        let other = app.account().await;
        app.grant(&other, GrantSource::Purchase, "10").await;
        others.push(other);
    }
    let mut retry = app.credit();
    let (refused, neighbours) = tokio::join!(
        retry.authorize(request),
        futures::future::join_all(others.iter().map(|other| app.authorize(other, "2")))
    );
    let refused = refused.unwrap_err();
    assert_refused(&refused, Code::AlreadyExists, "IDEMPOTENCY_KEY_REUSED");
    assert_eq!(
        app.balance(&account_id).await.held,
        "1",
        "the retry made no second hold"
    );
    for (other, answer) in others.iter().zip(neighbours) {
        answer.unwrap();
        assert_eq!(app.balance(other).await.held, "2");
    }
    app.finish().await;
}

#[tokio::test]
async fn an_authorize_key_whose_record_was_pruned_makes_a_hold_on_another_account() {
    let app = TestApp::spawn().await;
    let (first, second) = (app.account().await, app.account().await);
    app.grant(&first, GrantSource::Purchase, "10").await;
    app.grant(&second, GrantSource::Purchase, "10").await;
    let on_first = authorize_on(&first, "1", 0, None);
    let shared_key = on_first.idempotency_key.clone();
    let made = app.credit().authorize(on_first.clone()).await.unwrap();
    let first_hold = made.into_inner().hold.unwrap();
    // With no older server connected, the key is in its claim alone, not in the hold's row.
    let client = app.pool.get().await.unwrap();
    let (in_hold, claimed): (Option<String>, String) = {
        let row = client
            .query_one(
                "SELECT h.authorize_key, k.authorize_key FROM holds h \
                 JOIN authorize_keys k USING (hold_id, account_id) WHERE h.hold_id = $1::text::uuid",
                &[&first_hold.hold_id],
            )
            .await
            .unwrap();
        (row.get(0), row.get(1))
    };
    assert_eq!((in_hold, claimed), (None, shared_key.clone()));
    // Within the record's retention the key is the tenant's: another account's request with it
    // is a reused key.
    let on_second = authorize_request(&second, &shared_key, "2");
    let reused = app.credit().authorize(on_second.clone()).await.unwrap_err();
    assert_refused(&reused, Code::AlreadyExists, "IDEMPOTENCY_KEY_REUSED");
    client
        .execute("DELETE FROM idempotency_records", &[])
        .await
        .unwrap();
    // Past it, the key is unique per account: the hold it made refuses it on its account only.
    let second_hold = app
        .credit()
        .authorize(on_second)
        .await
        .unwrap()
        .into_inner()
        .hold
        .unwrap();
    let retried = app.credit().authorize(on_first).await.unwrap_err();
    assert_refused(&retried, Code::AlreadyExists, "IDEMPOTENCY_KEY_REUSED");
    app.assert_balance(&first, "9", "1").await;
    app.assert_balance(&second, "8", "2").await;
    // GetHold by the key names the newest of its holds.
    let found = app
        .get_hold_by_key(&shared_key)
        .await
        .unwrap()
        .hold
        .unwrap();
    assert_eq!(found, second_hold);
    assert_ne!(found.hold_id, first_hold.hold_id);
    // Naming the account names that account's hold, by the key as by the id.
    for (account_id, hold) in [(&first, &first_hold), (&second, &second_hold)] {
        for lookup in [
            get_hold_request::Lookup::AuthorizeIdempotencyKey(shared_key.clone()),
            get_hold_request::Lookup::HoldId(hold.hold_id.clone()),
        ] {
            let request = GetHoldRequest {
                lookup: Some(lookup),
                account_id: account_id.clone(),
            };
            let found = app.credit().get_hold(request).await.unwrap().into_inner();
            assert_eq!(
                found.hold.as_ref().map(|hold| &hold.hold_id),
                Some(&hold.hold_id)
            );
        }
    }
    let third = app.account().await;
    let elsewhere = GetHoldRequest {
        lookup: Some(get_hold_request::Lookup::AuthorizeIdempotencyKey(
            shared_key,
        )),
        account_id: third,
    };
    let status = app.credit().get_hold(elsewhere).await.unwrap_err();
    assert_refused(&status, Code::NotFound, "HOLD_NOT_FOUND");
    app.finish().await;
}

#[tokio::test]
async fn a_refund_retried_after_its_record_was_pruned_is_refused_and_refunds_once() {
    let app = TestApp::spawn().await;
    let account_id = app.account().await;
    app.grant(&account_id, GrantSource::Purchase, "10").await;
    let hold = app.authorize(&account_id, "4").await.unwrap().hold.unwrap();
    let settled = app.settle(&hold.hold_id, "4", false).await.unwrap();
    let settlement_id = settled.settlement.unwrap().settlement_id;
    let request = refund_request(&settlement_id, &key(), "1");
    app.credit().refund(request.clone()).await.unwrap();
    let client = app.pool.get().await.unwrap();
    client
        .execute("DELETE FROM idempotency_records", &[])
        .await
        .unwrap();
    // The refund itself remembers its key: the late retry refunds nothing more.
    let refused = app.credit().refund(request).await.unwrap_err();
    assert_refused(&refused, Code::AlreadyExists, "IDEMPOTENCY_KEY_REUSED");
    app.assert_balance(&account_id, "7", "0").await;
    app.finish().await;
}

#[tokio::test]
async fn verify_finds_ledger_rows_that_refer_to_missing_or_foreign_rows() {
    let app = TestApp::spawn().await;
    let account_id = app.account().await;
    app.grant(&account_id, GrantSource::Purchase, "10").await;
    let hold = app.authorize(&account_id, "3").await.unwrap().hold.unwrap();
    app.settle(&hold.hold_id, "2", false).await.unwrap();
    app.assert_books_balance().await;

    // A settlement part moved to another account, and an allocation of a hold that is gone.
    let client = app.pool.get().await.unwrap();
    client
        .batch_execute(
            "UPDATE settlement_parts SET account_id = gen_random_uuid(); \
             INSERT INTO hold_allocations (hold_id, grant_id, position, reserved, captured, account_id) \
             SELECT gen_random_uuid(), grant_id, 0, 0, 0, account_id FROM grants",
        )
        .await
        .unwrap();
    let found = creditgate::store::verify::verify(&client).await.unwrap();
    let references = found_by(&found, "every ledger row refers");
    assert_eq!(references.len(), 2, "{found:?}");
    assert!(
        references
            .iter()
            .any(|subject| subject.starts_with("settlement part "))
    );
    assert!(
        references
            .iter()
            .any(|subject| subject.starts_with("allocation "))
    );

    // A grant's id again under another account: its key (id, account) allows it, verify not.
    client
        .batch_execute(
            "INSERT INTO grants (grant_id, tenant_id, account_id, source, priority, amount, remaining, \
             reserved, effective_at, expires_at, external_ref, created_at, expiry_warned) \
             SELECT grant_id, tenant_id, gen_random_uuid(), source, priority, amount, remaining, reserved, \
             effective_at, expires_at, external_ref, created_at, expiry_warned FROM grants",
        )
        .await
        .unwrap();
    let found = creditgate::store::verify::verify(&client).await.unwrap();
    let unique = found_by(&found, "every ledger row's id is unique");
    assert_eq!(unique.len(), 1, "{found:?}");
    assert!(unique[0].starts_with("grant "));
    app.stop().await;
}
