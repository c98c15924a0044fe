//! Accounts: tenancy and the account lifecycle.

use creditgate::proto::v1::{
    AccountKind, AccountStatus, CreateAccountRequest, Entitlements, GetAccountRequest,
    GetHoldRequest, GrantSource, HoldStatus, SettlePolicy, UpdateAccountRequest,
    get_account_request, get_hold_request,
};
use tonic::Code;

use super::{assert_settlement, assert_totals, authorize_with, extend, settle};
use crate::helpers::money::{create_account_request, key};
use crate::helpers::snapshot::Snapshot;
use crate::helpers::status::expect_refused;
use crate::helpers::{TestApp, reason};

/// Every RPC naming another tenant's account, hold or settlement by id is NOT_FOUND, with the
/// reason, in the security table; here the lookups by the platform's own names.
#[tokio::test]
async fn another_tenant_finds_no_account_by_external_id_nor_hold_by_authorize_key_and_may_reuse_the_external_id()
 {
    let app = TestApp::spawn().await;
    let account = app.account().await;
    app.grant(&account, GrantSource::Purchase, "100").await;
    let authorize_key = key();
    let live = authorize_with(&app, &account, "20", 0, &authorize_key)
        .await
        .unwrap()
        .hold
        .unwrap();
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
    let before = Snapshot::of(&app).await;

    let other_key = app.other_tenant_key().await;
    let mut billing = app.account_as(Some(&other_key));
    let lookup = get_account_request::Lookup::ExternalId(external_id.clone());
    expect_refused(
        billing
            .get_account(GetAccountRequest {
                lookup: Some(lookup),
            })
            .await,
        Code::NotFound,
        "ACCOUNT_NOT_FOUND",
    );
    let lookup = get_hold_request::Lookup::AuthorizeIdempotencyKey(authorize_key);
    expect_refused(
        app.credit_as(Some(&other_key))
            .get_hold(GetHoldRequest {
                lookup: Some(lookup),
                ..Default::default()
            })
            .await,
        Code::NotFound,
        "HOLD_NOT_FOUND",
    );

    Snapshot::of(&app)
        .await
        .assert_is(&before, "the other tenant's lookups");

    // External ids are unique per tenant only: the other tenant may use the same one.
    let mirror = app
        .create_account_as(&other_key, create_account_request(&key(), &external_id))
        .await;
    assert_ne!(mirror, account);
    assert_eq!(app.hold_status(&live.hold_id).await, HoldStatus::Active);
    app.finish().await;
}

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
    expect_refused(
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
    let live = app.hold(&account, "20").await;

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

    expect_refused(
        app.authorize(&account, "1").await,
        Code::FailedPrecondition,
        "ACCOUNT_SUSPENDED",
    );
    expect_refused(
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

    app.finish().await;
}
