//! An upgrade from the version before partitioned journals and account-named keys (migration
//! 15): the books that version wrote are kept and read by this one.

use creditgate::proto::v1::{GetAccountRequest, get_account_request, get_hold_request};
use creditgate::store::migrate;

use crate::helpers::money::authorize_request;
use crate::helpers::status::assert_refused;
use crate::helpers::{TestApp, empty_database};

#[tokio::test]
async fn an_upgrade_keeps_the_books_of_the_version_before() {
    // A database of the version before (migration 15) with an account that was granted 10:
    // its grant and the grant's two postings, as that version wrote them, and a hold it made
    // and released.
    let database = empty_database().await;
    let mut client = database.pool.get().await.unwrap();
    migrate::migrate_until(&mut client, 15).await.unwrap();
    let hold_id = uuid::Uuid::now_v7();
    let (tenant_id, account_id, grant_id, transaction_id) = (
        uuid::Uuid::now_v7(),
        uuid::Uuid::now_v7(),
        uuid::Uuid::now_v7(),
        uuid::Uuid::now_v7(),
    );
    client
        .execute(
            "WITH tenant AS (INSERT INTO tenants (tenant_id, name) VALUES ($1, 'before')), \
             account AS (INSERT INTO accounts (account_id, tenant_id, external_id, kind, status, \
               settle_policy, created_at, updated_at) \
               VALUES ($2, $1, 'org-before', 'ORGANIZATION', 'ACTIVE', 'DEBT', now(), now())), \
             granted AS (INSERT INTO grants (grant_id, tenant_id, account_id, source, priority, amount, \
               remaining, reserved, effective_at, created_at) \
               VALUES ($3, $1, $2, 'PURCHASE', 3, 10, 10, 0, now(), now())), \
             held AS (INSERT INTO holds (hold_id, tenant_id, account_id, status, amount, captured, \
               expires_at, authorize_key, created_at, resolved_at) \
               VALUES ($5, $1, $2, 'RELEASED', 4, 0, now(), 'held-before', now(), now())), \
             counted AS (INSERT INTO usage_rollups (account_id, day, task_type, model, runs, captured, \
               refunded, last_run_at) VALUES ($2, (now() AT TIME ZONE 'UTC')::date, '', '', 1, 0, 0, now())) \
             INSERT INTO journal_entries (entry_id, transaction_id, tenant_id, account_id, \
               ledger_account, amount, kind, grant_id, created_at) \
             VALUES (gen_random_uuid(), $4, $1, $2, 'ISSUED', -10, 'GRANT', $3, now()), \
               (gen_random_uuid(), $4, $1, $2, 'AVAILABLE', 10, 'GRANT', $3, now())",
            &[&tenant_id, &account_id, &grant_id, &transaction_id, &hold_id],
        )
        .await
        .unwrap();

    let migrated = migrate::migrate(&mut client).await.unwrap();
    // Every migration after 15: none waits, as no older server is connected.
    let after_15 = usize::try_from(migrate::newest_known() - 15).unwrap();
    assert_eq!((migrated.applied, migrated.waiting), (after_15, None));
    // The journal's rows stayed where they were, now its first partition, proven in range.
    let (partitioned, legacy_rows, bound_checked): (bool, i64, bool) = {
        let row = client
            .query_one(
                "SELECT (SELECT relkind = 'p' FROM pg_class WHERE oid = 'journal_entries'::regclass), \
                 (SELECT count(*) FROM journal_entries_legacy), \
                 (SELECT convalidated FROM pg_constraint WHERE conname = 'journal_entries_before_partitions')",
                &[],
            )
            .await
            .unwrap();
        (row.get(0), row.get(1), row.get(2))
    };
    assert_eq!((partitioned, legacy_rows, bound_checked), (true, 2, true));
    // The hold's Authorize key was claimed for its account.
    let claimed: Option<uuid::Uuid> = client
        .query_opt(
            "SELECT hold_id FROM authorize_keys WHERE authorize_key = 'held-before' AND account_id = $1",
            &[&account_id],
        )
        .await
        .unwrap()
        .map(|row| row.get(0));
    assert_eq!(claimed, Some(hold_id));
    // Migrating again finds nothing to do.
    let again = migrate::migrate(&mut client).await.unwrap();
    assert_eq!((again.applied, again.waiting), (0, None));
    let key = creditgate::service::tenants::create_key(
        &client,
        creditgate::ids::TenantId::from_uuid(tenant_id),
        creditgate::auth::ScopeSet::all(),
    )
    .await
    .unwrap()
    .secret;
    drop(client);

    // The account's claim was backfilled: this version finds it by its external id, with its
    // balance and its journal.
    let app = TestApp::spawn_on(database, |_| {}).await;
    let lookup = Some(get_account_request::Lookup::ExternalId(
        "org-before".to_owned(),
    ));
    let found = app
        .account_as(Some(&key))
        .get_account(GetAccountRequest { lookup })
        .await
        .unwrap()
        .into_inner()
        .account
        .unwrap();
    assert_eq!(found.account_id, account_id.to_string());
    assert_eq!(
        app.account_as(Some(&key))
            .get_balance(creditgate::proto::v1::GetBalanceRequest {
                account_id: account_id.to_string(),
                ..Default::default()
            })
            .await
            .unwrap()
            .into_inner()
            .available,
        "10"
    );
    // Its hold is found by its key, and the key still refuses a second hold.
    let found = app
        .credit_as(Some(&key))
        .get_hold(creditgate::proto::v1::GetHoldRequest {
            lookup: Some(get_hold_request::Lookup::AuthorizeIdempotencyKey(
                "held-before".to_owned(),
            )),
            ..Default::default()
        })
        .await
        .unwrap()
        .into_inner()
        .hold
        .unwrap();
    assert_eq!(found.hold_id, hold_id.to_string());
    let again = app
        .credit_as(Some(&key))
        .authorize(authorize_request(
            &account_id.to_string(),
            "held-before",
            "1",
        ))
        .await
        .unwrap_err();
    assert_refused(&again, tonic::Code::AlreadyExists, "IDEMPOTENCY_KEY_REUSED");
    app.finish().await;
}
