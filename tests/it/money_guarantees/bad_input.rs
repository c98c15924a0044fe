//! Bad input: a clear error and nothing changed. Malformed and unknown ids and bad amounts
//! are checked once over [`Mutating`] for every RPC that takes them; the rest is particular to
//! one RPC.

use creditgate::proto::v1::{
    AuthorizeRequest, GetBalanceRequest, GetHoldRequest, GrantRequest, GrantSource,
    get_hold_request,
};
use tonic::{Code, Status};

use super::named_account::a_named_account_must_own_the_object;
use crate::helpers::TestApp;
use crate::helpers::money::{authorize_request, grant_request, key};
use crate::helpers::mutating::{
    Authorize, ExtendHold, Grant, Mutating, Refund, Release, SetAllowance, SetSpendLimit, Settle,
    UpdateAccount,
};
use crate::helpers::snapshot::Snapshot;
use crate::helpers::status::{assert_invalid_field, assert_refused, metadata, reason};
use crate::helpers::time::timestamp;
use crate::helpers::usage::{Filters, UsageRead};

/// Ids that are no UUID.
pub(super) const MALFORMED_IDS: [&str; 3] =
    ["not-an-id", "123", "00000000-0000-0000-0000-00000000000g"];

/// Bad amounts and what the refusal must say.
const BAD_AMOUNTS: [(&str, &str); 8] = [
    ("-1", "plain decimal"),
    ("0", "greater than zero"),
    ("1.0000000001", "9 decimal places"),
    ("abc", "plain decimal"),
    ("1e3", "plain decimal"),
    (" 1", "plain decimal"),
    ("", "plain decimal"),
    ("1000000000.5", "maximum amount 1000000000"),
];

async fn malformed_ids_are_invalid_argument_naming_the_field<R: Mutating>() {
    let app = TestApp::spawn().await;
    let subject = R::prepare(&app).await;
    let before = Snapshot::of(&app).await;
    for bad in MALFORMED_IDS {
        let naming = R::naming(&subject, &key(), bad).expect("the request names an object");
        let status = R::send(app.clients(), naming.request).await.unwrap_err();
        assert_invalid_field(&status, "INVALID_ARGUMENT", naming.field);
        assert!(
            status.message().contains("UUID"),
            "the message should say an id is a UUID: {status:?}"
        );
    }
    Snapshot::of(&app).await.assert_is(&before, "malformed ids");
    app.finish().await;
}

async fn an_unknown_id_is_not_found<R: Mutating>() {
    let app = TestApp::spawn().await;
    let subject = R::prepare(&app).await;
    let before = Snapshot::of(&app).await;
    let unknown = uuid::Uuid::now_v7().to_string();
    let naming = R::naming(&subject, &key(), &unknown).expect("the request names an object");
    let status = R::send(app.clients(), naming.request).await.unwrap_err();
    assert_refused(&status, Code::NotFound, naming.not_found);
    Snapshot::of(&app).await.assert_is(&before, "an unknown id");
    app.finish().await;
}

#[track_caller]
fn assert_invalid_amount(rpc: &str, field: &str, amount: &str, hint: &str, status: &Status) {
    assert_eq!(
        (status.code(), reason(status).as_deref()),
        (Code::InvalidArgument, Some("INVALID_AMOUNT")),
        "{rpc} with amount {amount:?}: {status:?}"
    );
    assert_eq!(
        metadata(status).get("field").map(String::as_str),
        Some(field),
        "{rpc} with amount {amount:?}: {status:?}"
    );
    assert!(
        status.message().contains(hint),
        "{rpc} with amount {amount:?}: the message should say what is accepted ({hint:?}): {:?}",
        status.message()
    );
}

async fn bad_amounts_are_invalid_amount<R: Mutating>() {
    let app = TestApp::spawn().await;
    let subject = R::prepare(&app).await;
    let before = Snapshot::of(&app).await;
    let bad = BAD_AMOUNTS
        .iter()
        .filter(|(amount, _)| !R::OWN_AMOUNTS.contains(amount));
    for &(amount, hint) in bad {
        let request = R::with_amount(&subject, &key(), amount).expect("the request has an amount");
        let status = R::send(app.clients(), request).await.unwrap_err();
        assert_invalid_amount(R::RPC, R::AMOUNT_FIELD, amount, hint, &status);
    }
    Snapshot::of(&app).await.assert_is(&before, "bad amounts");
    app.finish().await;
}

/// For each RPC, a module with the named tests, each running the body of the same name.
macro_rules! bad_input {
    ($($name:ident: $rpc:ident { $($test:ident),+ };)+) => {
        $(
            mod $name {
                use super::*;
                $(
                    #[tokio::test]
                    async fn $test() {
                        super::$test::<$rpc>().await;
                    }
                )+
            }
        )+
    };
}

bad_input! {
    authorize: Authorize {
        malformed_ids_are_invalid_argument_naming_the_field,
        an_unknown_id_is_not_found,
        bad_amounts_are_invalid_amount
    };
    extend_hold: ExtendHold {
        malformed_ids_are_invalid_argument_naming_the_field,
        an_unknown_id_is_not_found,
        bad_amounts_are_invalid_amount,
        a_named_account_must_own_the_object
    };
    settle: Settle {
        malformed_ids_are_invalid_argument_naming_the_field,
        an_unknown_id_is_not_found,
        bad_amounts_are_invalid_amount,
        a_named_account_must_own_the_object
    };
    release: Release {
        malformed_ids_are_invalid_argument_naming_the_field,
        an_unknown_id_is_not_found,
        a_named_account_must_own_the_object
    };
    refund: Refund {
        malformed_ids_are_invalid_argument_naming_the_field,
        an_unknown_id_is_not_found,
        bad_amounts_are_invalid_amount,
        a_named_account_must_own_the_object
    };
    grant: Grant {
        malformed_ids_are_invalid_argument_naming_the_field,
        an_unknown_id_is_not_found,
        bad_amounts_are_invalid_amount
    };
    update_account: UpdateAccount {
        malformed_ids_are_invalid_argument_naming_the_field,
        an_unknown_id_is_not_found
    };
    set_allowance: SetAllowance {
        malformed_ids_are_invalid_argument_naming_the_field,
        an_unknown_id_is_not_found,
        bad_amounts_are_invalid_amount
    };
    set_spend_limit: SetSpendLimit {
        malformed_ids_are_invalid_argument_naming_the_field,
        an_unknown_id_is_not_found,
        bad_amounts_are_invalid_amount
    };
}

#[tokio::test]
async fn reads_refuse_malformed_ids_naming_the_field_and_unknown_ids_as_not_found() {
    let app = TestApp::spawn().await;
    let (mut credit, mut account) = (app.credit(), app.account_as(Some(&app.key)));
    let get_balance = |account_id: &str| GetBalanceRequest {
        account_id: account_id.to_owned(),
        expiring_within_days: 0,
    };
    let get_hold = |hold_id: &str| GetHoldRequest {
        lookup: Some(get_hold_request::Lookup::HoldId(hold_id.to_owned())),
        ..Default::default()
    };
    for bad in MALFORMED_IDS {
        let status = account.get_balance(get_balance(bad)).await.unwrap_err();
        assert_invalid_field(&status, "INVALID_ARGUMENT", "account_id");
        let status = credit.get_hold(get_hold(bad)).await.unwrap_err();
        assert_invalid_field(&status, "INVALID_ARGUMENT", "hold_id");
        for read in UsageRead::ALL {
            let status = read.send(&app, bad, &Filters::default()).await;
            let status = status
                .err()
                .unwrap_or_else(|| panic!("{read:?} of {bad:?}"));
            assert_invalid_field(&status, "INVALID_ARGUMENT", "account_id");
        }
    }
    let unknown = uuid::Uuid::now_v7().to_string();
    let status = account
        .get_balance(get_balance(&unknown))
        .await
        .unwrap_err();
    assert_refused(&status, Code::NotFound, "ACCOUNT_NOT_FOUND");
    let status = credit.get_hold(get_hold(&unknown)).await.unwrap_err();
    assert_refused(&status, Code::NotFound, "HOLD_NOT_FOUND");
    // GetHold's optional account: malformed is refused; another account's hold is not found.
    let account_id = app.funded_account("10").await;
    let hold_id = app.hold(&account_id, "1").await.hold_id;
    let on = |account_id: &str| GetHoldRequest {
        account_id: account_id.to_owned(),
        ..get_hold(&hold_id)
    };
    for bad in MALFORMED_IDS {
        let status = credit.get_hold(on(bad)).await.unwrap_err();
        assert_invalid_field(&status, "INVALID_ARGUMENT", "account_id");
    }
    let status = credit.get_hold(on(&unknown)).await.unwrap_err();
    assert_refused(&status, Code::NotFound, "HOLD_NOT_FOUND");
    let found = credit.get_hold(on(&account_id)).await.unwrap().into_inner();
    assert_eq!(found.hold.map(|hold| hold.hold_id), Some(hold_id.clone()));
    for read in UsageRead::ALL {
        let status = read.send(&app, &unknown, &Filters::default()).await;
        let status = status
            .err()
            .unwrap_or_else(|| panic!("{read:?} of {unknown}"));
        assert_refused(&status, Code::NotFound, "ACCOUNT_NOT_FOUND");
    }
    app.finish().await;
}

#[tokio::test]
async fn the_smallest_amount_is_accepted_and_a_settle_of_zero_releases_the_hold() {
    let app = TestApp::spawn().await;
    let account_id = app.funded_account("100").await;
    let live = app.hold(&account_id, "10").await.hold_id;
    app.authorize(&account_id, "0.000000001").await.unwrap();
    let zero = app
        .settle(&live, "0", false)
        .await
        .unwrap()
        .settlement
        .unwrap();
    assert_eq!((zero.total.as_str(), zero.released.as_str()), ("0", "10"));
    app.assert_balance(&account_id, "99.999999999", "0.000000001")
        .await;
    app.finish().await;
}

#[tokio::test]
async fn a_hold_ttl_above_the_maximum_is_invalid_argument_and_holds_nothing() {
    let app = TestApp::spawn().await;
    let account_id = app.funded_account("100").await;
    let before = Snapshot::of(&app).await;
    let status = app
        .credit()
        .authorize(AuthorizeRequest {
            ttl_seconds: 86_401,
            ..authorize_request(&account_id, &key(), "1")
        })
        .await
        .unwrap_err();
    assert_invalid_field(&status, "INVALID_ARGUMENT", "ttl_seconds");
    assert!(
        status.message().contains("86400"),
        "the message should give the maximum: {status:?}"
    );
    Snapshot::of(&app).await.assert_is(&before, "refused");
    // The maximum itself is accepted.
    let held = app
        .credit()
        .authorize(AuthorizeRequest {
            ttl_seconds: 86_400,
            ..authorize_request(&account_id, &key(), "1")
        })
        .await
        .unwrap()
        .into_inner();
    assert_eq!(held.available, "99");
    app.finish().await;
}

#[tokio::test]
async fn a_grant_without_source_or_expiring_in_the_past_is_invalid_argument_and_credits_nothing() {
    let app = TestApp::spawn().await;
    let account_id = app.funded_account("100").await;
    let before = Snapshot::of(&app).await;
    let status = app
        .grant_request(GrantRequest {
            source: GrantSource::Unspecified as i32,
            ..grant_request(&account_id, &key(), "10")
        })
        .await
        .unwrap_err();
    assert_invalid_field(&status, "INVALID_ARGUMENT", "source");
    let past = app.now() - chrono::Duration::hours(1);
    let expired_key = key();
    let expired = GrantRequest {
        expires_at: Some(timestamp(past)),
        ..grant_request(&account_id, &expired_key, "10")
    };
    let status = app.grant_request(expired.clone()).await.unwrap_err();
    assert_invalid_field(&status, "INVALID_ARGUMENT", "expires_at");
    Snapshot::of(&app).await.assert_is(&before, "refused");
    // The refused grant kept nothing under its key: the same key with a valid expiry works.
    let future = app.now() + chrono::Duration::days(1);
    let granted = app
        .grant_request(GrantRequest {
            expires_at: Some(timestamp(future)),
            ..expired
        })
        .await
        .unwrap();
    assert_eq!(granted.available, "110");
    app.finish().await;
}

#[tokio::test]
async fn a_grant_time_outside_what_every_store_keeps_is_invalid_argument_and_credits_nothing() {
    let app = TestApp::spawn().await;
    let account_id = app.funded_account("100").await;
    let before = Snapshot::of(&app).await;
    let at = |seconds, nanos| Some(prost_types::Timestamp { seconds, nanos });
    // Before 4714 BC (Postgres's first day), after 9999-12-31, and nanos outside a second.
    let ancient = at(-300_000_000_000, 0);
    let far = at(253_402_300_800, 0);
    let bad_nanos = at(2_000_000_000, 1_000_000_000);
    for (field, effective_at, expires_at) in [
        ("effective_at", ancient, None),
        ("effective_at", bad_nanos, None),
        ("expires_at", None, far),
        ("expires_at", None, at(2_000_000_000, -1)),
    ] {
        let request = GrantRequest {
            effective_at,
            expires_at,
            ..grant_request(&account_id, &key(), "10")
        };
        let status = app.grant_request(request).await.unwrap_err();
        assert_invalid_field(&status, "INVALID_ARGUMENT", field);
        assert!(
            status.message().contains("0001-01-01T00:00:00Z"),
            "{status:?}"
        );
    }
    Snapshot::of(&app).await.assert_is(&before, "refused");
    // The edges themselves are accepted.
    let granted = app
        .grant_request(GrantRequest {
            effective_at: at(-62_135_596_800, 0),
            expires_at: at(253_402_300_799, 999_999_999),
            ..grant_request(&account_id, &key(), "10")
        })
        .await
        .unwrap();
    assert_eq!(granted.available, "110");
    app.finish().await;
}
