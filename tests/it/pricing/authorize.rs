//! Authorize by quote id (any replica, its tenant only, until it expires) and by usage.

use chrono::Duration;
use creditgate::proto::v1::{
    AuthorizeRequest, Entitlements, GrantSource, HoldStatus, RunMetadata, UpdateAccountRequest,
    Usage, authorize_request,
};
use tonic::Code;

use super::{
    FLASH, GROK, O3_PRO, SEED, account_entitled, authorize_price, authorize_quote, authorize_usage,
    quote, quote_for, tokens,
};
use crate::helpers::TestApp;
use crate::helpers::books::found_by;
use crate::helpers::money::{key, settle_request};
use crate::helpers::status::expect_refused;

#[tokio::test]
async fn a_quote_id_works_on_any_replica_for_its_tenant_only_and_unchanged() {
    let app = TestApp::spawn().await;
    let pro = account_entitled(&app, &app.key, &["pro"]).await;
    app.grant(&pro, GrantSource::Purchase, "10").await;
    let quoted = quote_for(&app, &pro, O3_PRO, tokens(10_000, 10_000, 0))
        .await
        .unwrap();

    // Nothing is looked up: another replica accepts the quote at once.
    let replica = app.replica().await;
    let authorized = authorize_quote(&replica, &pro, &key(), &quoted.quote_id)
        .await
        .unwrap();
    let hold = authorized.hold.unwrap();
    assert_eq!((hold.amount.as_str(), hold.catalog_version), ("2.5", 1));
    assert_eq!(hold.quote_id, quoted.quote_id);

    // Altered, made up or over-long ids are refused, and nothing is held for them.
    let mut altered = quoted.quote_id.clone().into_bytes();
    let middle = altered.len() / 2;
    altered[middle] = if altered[middle] == b'A' { b'B' } else { b'A' };
    let altered = String::from_utf8(altered).unwrap();
    for bad in [altered, uuid::Uuid::now_v7().to_string(), "x".to_owned()] {
        expect_refused(
            authorize_quote(&app, &pro, &key(), &bad).await,
            Code::NotFound,
            "QUOTE_NOT_FOUND",
        );
    }
    expect_refused(
        authorize_quote(&app, &pro, &key(), &"A".repeat(1_025)).await,
        Code::InvalidArgument,
        "INVALID_ARGUMENT",
    );

    // Another tenant cannot use it, even on an account of its own.
    let other_key = app.other_tenant_key().await;
    let foreign = account_entitled(&app, &other_key, &[]).await;
    let unscoped = quote(&app, SEED, tokens(10_000, 0, 0)).await.unwrap();
    expect_refused(
        app.credit_as(Some(&other_key))
            .authorize(AuthorizeRequest {
                account_id: foreign,
                idempotency_key: key(),
                price: Some(authorize_request::Price::QuoteId(unscoped.quote_id)),
                ..AuthorizeRequest::default()
            })
            .await,
        Code::NotFound,
        "QUOTE_NOT_FOUND",
    );

    assert_eq!(app.balance(&pro).await.held, "2.5");
    replica.stop().await;
    app.finish().await;
}

/// A hold keeps its quote sealed (migration 0027): the row's token column is NULL and the
/// seal a third of the token; every answer showing the hold still shows the token whole,
/// replays included (stored by reference to the hold, whose text the seal rebuilds). `verify`
/// finds a sealed hold whose row changed, and a damaged seal, which fails no request.
#[tokio::test]
async fn a_hold_keeps_its_quote_sealed_and_every_answer_shows_it_whole() {
    let app = TestApp::spawn().await;
    let pro = account_entitled(&app, &app.key, &["pro"]).await;
    app.grant(&pro, GrantSource::Purchase, "10").await;
    let unscoped = quote(&app, O3_PRO, tokens(10_000, 10_000, 0)).await;
    let scoped = quote_for(&app, &pro, SEED, tokens(10_000, 0, 0)).await;
    let client = app.pool.get().await.unwrap();
    for quoted in [unscoped.unwrap(), scoped.unwrap()] {
        let authorize_key = key();
        let first = authorize_quote(&app, &pro, &authorize_key, &quoted.quote_id)
            .await
            .unwrap();
        let hold = first.hold.clone().unwrap();
        assert_eq!(hold.quote_id, quoted.quote_id);
        let row = client
            .query_one(
                "SELECT quote_token, octet_length(quote_seal) FROM holds \
                 WHERE hold_id = $1::text::uuid",
                &[&hold.hold_id],
            )
            .await
            .unwrap();
        assert_eq!(row.get::<_, Option<String>>(0), None);
        let sealed = usize::try_from(row.get::<_, i32>(1)).unwrap();
        assert!(
            sealed * 2 < quoted.quote_id.len(),
            "{sealed} of {}",
            quoted.quote_id.len()
        );

        let again = authorize_quote(&app, &pro, &authorize_key, &quoted.quote_id).await;
        assert_eq!(again.unwrap(), first);
        let by_id = app.get_hold(&hold.hold_id).await.hold.unwrap();
        assert_eq!(by_id.quote_id, quoted.quote_id);
        let by_key = app.get_hold_by_key(&authorize_key).await.unwrap();
        assert_eq!(by_key.hold.unwrap().quote_id, quoted.quote_id);
        let settle = settle_request(&hold.hold_id, &key(), "1");
        let settled = app.credit().settle(settle.clone()).await.unwrap();
        let settled = settled.into_inner();
        assert_eq!(settled.hold.as_ref().unwrap().quote_id, quoted.quote_id);
        let replayed = app.credit().settle(settle).await.unwrap().into_inner();
        assert_eq!(replayed, settled);
    }
    // Both answers of each run were stored by reference to their hold.
    let by_reference: i64 = client
        .query_one(
            "SELECT count(*) FROM idempotency_records \
             WHERE account_id = $1::text::uuid AND answer_hold IS NOT NULL",
            &[&pro],
        )
        .await
        .unwrap()
        .get(0);
    assert_eq!(by_reference, 4);
    app.assert_books_balance().await;

    // A sealed hold's row changed since: the token it gives is not the one signed.
    client
        .execute(
            "UPDATE holds SET model = 'openai/o3' WHERE account_id = $1::text::uuid \
             AND model = $2",
            &[&pro, &O3_PRO],
        )
        .await
        .unwrap();
    // A damaged seal fails nothing: its hold settles, shown with the quote's own id.
    let quoted = quote_for(&app, &pro, SEED, tokens(10_000, 0, 0)).await;
    let quoted = quoted.unwrap();
    let damaged = authorize_quote(&app, &pro, &key(), &quoted.quote_id).await;
    let damaged = damaged.unwrap().hold.unwrap();
    client
        .execute(
            "UPDATE holds SET quote_seal = '\\x01'::bytea WHERE hold_id = $1::text::uuid",
            &[&damaged.hold_id],
        )
        .await
        .unwrap();
    let settled = app.settle(&damaged.hold_id, "1", false).await.unwrap();
    let shown = settled.hold.unwrap().quote_id;
    assert!(shown.parse::<uuid::Uuid>().is_ok(), "{shown}");
    let found = creditgate::store::verify::verify(&client).await.unwrap();
    let quotes = found_by(&found, "every hold's quote");
    assert_eq!(quotes.len(), 2, "{found:?}");
    assert!(quotes.contains(&format!("hold {}", damaged.hold_id).as_str()));
    drop(client);
    app.stop().await;
}

#[tokio::test]
async fn authorize_by_quote_holds_the_quote_until_it_expires() {
    let app = TestApp::spawn().await;
    let pro = account_entitled(&app, &app.key, &["pro"]).await;
    app.grant(&pro, GrantSource::Purchase, "10").await;

    let first = quote_for(&app, &pro, O3_PRO, tokens(10_000, 10_000, 0))
        .await
        .unwrap();
    let first_key = key();
    let authorized = authorize_quote(&app, &pro, &first_key, &first.quote_id)
        .await
        .unwrap();
    let hold = authorized.hold.clone().unwrap();
    assert_eq!(hold.amount, "2.5");
    assert_eq!(hold.catalog_version, 1);
    assert_eq!(hold.quote_id, first.quote_id);
    assert_eq!(hold.status(), HoldStatus::Active);
    assert_eq!(hold.run.as_ref().unwrap().model, O3_PRO);
    assert_eq!(authorized.available, "7.5");

    // A quote used after its expiry is refused...
    let second = quote_for(&app, &pro, O3_PRO, tokens(10_000, 10_000, 0))
        .await
        .unwrap();
    app.advance(Duration::minutes(11));
    expect_refused(
        authorize_quote(&app, &pro, &key(), &second.quote_id).await,
        Code::FailedPrecondition,
        "QUOTE_EXPIRED",
    );
    // ...but the retry of an Authorize that succeeded before the expiry gets its hold back.
    let replayed = authorize_quote(&app, &pro, &first_key, &first.quote_id)
        .await
        .unwrap();
    assert_eq!(replayed, authorized);
    let balance = app.balance(&pro).await;
    assert_eq!(balance.available, "7.5");
    assert_eq!(balance.held, "2.5");

    expect_refused(
        authorize_quote(&app, &pro, &key(), &uuid::Uuid::now_v7().to_string()).await,
        Code::NotFound,
        "QUOTE_NOT_FOUND",
    );

    // A "pro" model on an account without the entitlement, by quote and by usage.
    let plain = app.account().await;
    app.grant(&plain, GrantSource::Purchase, "10").await;
    let unscoped = quote(&app, O3_PRO, tokens(10_000, 10_000, 0))
        .await
        .unwrap();
    let by_quote_key = key();
    expect_refused(
        authorize_quote(&app, &plain, &by_quote_key, &unscoped.quote_id).await,
        Code::PermissionDenied,
        "ENTITLEMENT_REQUIRED",
    );
    let by_usage_key = key();
    expect_refused(
        authorize_usage(
            &app,
            &plain,
            &by_usage_key,
            O3_PRO,
            tokens(10_000, 10_000, 0),
        )
        .await,
        Code::PermissionDenied,
        "ENTITLEMENT_REQUIRED",
    );
    // The account gets the entitlement; the declined calls stay declined on retry.
    app.account_as(Some(&app.key))
        .update_account(UpdateAccountRequest {
            account_id: plain.clone(),
            idempotency_key: key(),
            entitlements: Some(Entitlements {
                values: vec!["pro".to_owned()],
            }),
            ..UpdateAccountRequest::default()
        })
        .await
        .unwrap();
    expect_refused(
        authorize_quote(&app, &plain, &by_quote_key, &unscoped.quote_id).await,
        Code::PermissionDenied,
        "ENTITLEMENT_REQUIRED",
    );
    expect_refused(
        authorize_usage(
            &app,
            &plain,
            &by_usage_key,
            O3_PRO,
            tokens(10_000, 10_000, 0),
        )
        .await,
        Code::PermissionDenied,
        "ENTITLEMENT_REQUIRED",
    );
    // A new call is now allowed.
    let fresh = authorize_quote(&app, &plain, &key(), &unscoped.quote_id)
        .await
        .unwrap();
    assert_eq!(fresh.hold.unwrap().amount, "2.5");
    assert_eq!(fresh.available, "7.5");

    app.finish().await;
}

#[tokio::test]
async fn authorize_by_usage_prices_with_the_active_catalog() {
    let app = TestApp::spawn().await;
    let account = app.account().await;
    app.grant(&account, GrantSource::Purchase, "10").await;

    // 2 × 0.125 + 0.4 × 0.625 + 0.8 × 0.03125 = 0.525
    let estimate = tokens(20_000, 4_000, 8_000);
    let quoted = quote(&app, GROK, estimate.clone()).await.unwrap();
    assert_eq!(quoted.total, "0.525");
    let authorized = authorize_usage(&app, &account, &key(), GROK, estimate)
        .await
        .unwrap();
    let hold = authorized.hold.unwrap();
    assert_eq!(hold.amount, "0.525");
    assert_eq!(hold.catalog_version, 1);
    assert_eq!(hold.quote_id, "");
    assert_eq!(hold.run.as_ref().unwrap().model, GROK);
    assert_eq!(authorized.available, "9.475");

    // A tool alone: its default model, fee, surcharge and the batch multiplier.
    let research = Usage {
        searches: 2,
        multipliers: vec!["batch".to_owned()],
        ..tokens(10_000, 10_000, 0)
    };
    let authorized = authorize_price(
        &app,
        &account,
        &key(),
        authorize_request::Price::Usage(research),
        Some(RunMetadata {
            tool: "web-research".to_owned(),
            ..RunMetadata::default()
        }),
    )
    .await
    .unwrap();
    let hold = authorized.hold.unwrap();
    assert_eq!(hold.amount, "0.335");
    assert_eq!(hold.catalog_version, 1);
    let run = hold.run.unwrap();
    assert_eq!(run.tool, "web-research");
    assert_eq!(run.model, FLASH);
    assert_eq!(authorized.available, "9.14");

    // What cannot be priced holds nothing.
    expect_refused(
        authorize_price(
            &app,
            &account,
            &key(),
            authorize_request::Price::Usage(tokens(10_000, 0, 0)),
            None,
        )
        .await,
        Code::InvalidArgument,
        "INVALID_USAGE",
    );
    expect_refused(
        authorize_usage(
            &app,
            &account,
            &key(),
            "acme/no-such-model",
            tokens(10_000, 0, 0),
        )
        .await,
        Code::InvalidArgument,
        "UNKNOWN_MODEL",
    );
    let balance = app.balance(&account).await;
    assert_eq!(balance.available, "9.14");
    assert_eq!(balance.held, "0.86");

    app.finish().await;
}
