//! Migrations through a rolling upgrade: a contract migration (one that breaks the servers
//! before it) waits while any of them is connected, the servers of the new version work
//! before and after it, and one of them applies it once the last older server has gone.

use std::time::Duration;

use creditgate::proto::v1::{
    AllowancePeriod, GetAccountRequest, GrantSource, LimitPeriod, get_account_request,
};
use creditgate::store::migrate::{self, Waiting, WaitingFor};

use crate::helpers::limits::{limit_request, member, scoped_request};
use crate::helpers::money::{create_account_request, key, refund};
use crate::helpers::plans::allowance_request;
use crate::helpers::{TestApp, TestDatabase, empty_database};

mod authorize_keys;
mod books;
mod lean_records;
mod quote_seal;

/// The first migration that waits for older servers, and its name.
const CONTRACT: (i32, &str) = (21, "account_keys_contract");

/// A connection to `database` that says it is `application_name`.
async fn connect_as(database: &TestDatabase, application_name: &str) -> tokio_postgres::Client {
    let mut config = database.config.clone();
    config.application_name(application_name);
    let (client, driver) = config.connect(tokio_postgres::NoTls).await.unwrap();
    tokio::spawn(driver);
    client
}

/// The key columns of `index` (none when there is no such index).
async fn key_columns(database: &TestDatabase, index: &str) -> Vec<String> {
    let client = database.pool.get().await.unwrap();
    client
        .query(
            "SELECT a.attname::text FROM pg_index x \
             CROSS JOIN LATERAL unnest(x.indkey) WITH ORDINALITY AS k(attnum, ord) \
             JOIN pg_attribute a ON a.attrelid = x.indrelid AND a.attnum = k.attnum \
             WHERE x.indexrelid = to_regclass($1::text) ORDER BY k.ord",
            &[&index],
        )
        .await
        .unwrap()
        .iter()
        .map(|row| row.get(0))
        .collect()
}

/// Plans the upsert a server before 0016 sends for a grant (planning infers the conflict
/// target's unique index, or fails for want of one).
async fn plan_old_grant_upsert(database: &TestDatabase) -> Result<(), tokio_postgres::Error> {
    let client = database.pool.get().await.unwrap();
    client
        .batch_execute(
            "EXPLAIN INSERT INTO grants (grant_id, account_id) \
             VALUES (gen_random_uuid(), gen_random_uuid()) \
             ON CONFLICT (grant_id) DO UPDATE SET remaining = EXCLUDED.remaining",
        )
        .await
}

/// Creates an account as a server before 0016 did, copying `like`: the account row alone, its
/// external id claimed by nothing but the row's own key.
async fn create_account_as_before(
    app: &TestApp,
    like: &str,
    external_id: &str,
) -> Result<String, tokio_postgres::Error> {
    let account_id = uuid::Uuid::now_v7();
    let like: uuid::Uuid = like.parse().unwrap();
    let client = app.pool.get().await.unwrap();
    client
        .execute(
            "INSERT INTO accounts (account_id, tenant_id, external_id, kind, status, settle_policy, \
             entitlements, low_balance_threshold, debt, created_at, updated_at) \
             SELECT $1, tenant_id, $2, kind, status, settle_policy, entitlements, \
             low_balance_threshold, 0, created_at, updated_at FROM accounts WHERE account_id = $3",
            &[&account_id, &external_id, &like],
        )
        .await?;
    Ok(account_id.to_string())
}

/// The id of the account GetAccount finds by `external_id`, or the refusal's code.
async fn account_by_external_id(app: &TestApp, external_id: &str) -> Result<String, tonic::Code> {
    let lookup = Some(get_account_request::Lookup::ExternalId(
        external_id.to_owned(),
    ));
    app.account_as(Some(&app.key))
        .get_account(GetAccountRequest { lookup })
        .await
        .map(|found| found.into_inner().account.unwrap().account_id)
        .map_err(|status| status.code())
}

/// CreateAccount of `external_id` under a fresh key: the code it is refused with, if it is.
async fn create_refused(app: &TestApp, external_id: &str) -> Option<tonic::Code> {
    app.account_as(Some(&app.key))
        .create_account(create_account_request(&key(), external_id))
        .await
        .err()
        .map(|status| status.code())
}

/// Runs what every server runs in the background, checking often, until the waiting contract
/// migration is applied.
async fn finish_waiting(app: &TestApp) {
    let (_stop, stopped) = tokio::sync::watch::channel(false);
    let finished = tokio::time::timeout(
        Duration::from_secs(120),
        migrate::finish_waiting(app.pool.clone(), Duration::from_millis(20), stopped),
    )
    .await
    .expect("the contract migration is applied once nothing holds it back");
    assert!(finished, "it returned with nothing left to apply");
}

/// A run through every table whose key the contract changes: a grant, an allowance and its
/// period's grant, a member's spend limit, a hold's allocations, a settlement's parts and a
/// refund.
async fn write_every_changed_table(app: &TestApp) {
    let account_id = app.account().await;
    app.grant(&account_id, GrantSource::Purchase, "20").await;
    app.set_allowance(allowance_request(
        &account_id,
        "daily",
        GrantSource::FreeDaily,
        "5",
        AllowancePeriod::Day,
    ))
    .await
    .unwrap();
    let alice = member("alice");
    app.set_spend_limit(limit_request(&account_id, &alice, LimitPeriod::Day, "15"))
        .await
        .unwrap();
    let hold = app
        .credit()
        .authorize(scoped_request(&account_id, &alice, "8"))
        .await
        .unwrap()
        .into_inner()
        .hold
        .unwrap();
    let settled = app.settle(&hold.hold_id, "7", false).await.unwrap();
    let settlement_id = settled.settlement.unwrap().settlement_id;
    refund(app, &settlement_id, "2").await.unwrap();
    // 5 free + 20 bought, 7 spent (5 free first), 2 refunded.
    app.assert_balance(&account_id, "20", "0").await;
}

#[tokio::test]
async fn a_contract_migration_waits_for_the_servers_that_predate_it() {
    let database = empty_database().await;
    // Servers before application names carried a version, one that knows only 0020, one of
    // this version, and a tool that is no server at all.
    let before = connect_as(&database, "creditgate").await;
    let knows_20 = connect_as(&database, "creditgate/20").await;
    let _current = connect_as(&database, &migrate::application_name()).await;
    let _tool = connect_as(&database, "psql").await;
    // An older server's event listener, named by its URL.
    let listener = connect_as(&database, "billing").await;
    listener
        .batch_execute("LISTEN creditgate_events")
        .await
        .unwrap();

    // The upgrade's migration Job applies what it can, says what waits, and succeeds.
    let job = tokio::process::Command::new(env!("CARGO_BIN_EXE_creditgate"))
        .arg("migrate")
        .env("DATABASE_URL", database.url())
        .output()
        .await
        .unwrap();
    let said = String::from_utf8_lossy(&job.stdout);
    assert!(job.status.success(), "{said}");
    assert!(
        said.contains("migration 21 (account_keys_contract) waits")
            && said.contains(
                "1 of an event listener named 'billing', 1 of creditgate, 1 of creditgate/20"
            ),
        "{said}"
    );
    let mut client = database.pool.get().await.unwrap();
    let migrated = migrate::migrate(&mut client).await.unwrap();
    assert_eq!(
        migrated.applied, 0,
        "the Job applied every migration it could"
    );
    // Every one but the contract migrations, which wait in order.
    let missing: Vec<i32> = client
        .query_one(
            "SELECT array_agg(v ORDER BY v) FROM generate_series(1, $1) AS v \
             WHERE v NOT IN (SELECT version FROM schema_migrations)",
            &[&migrate::newest_known()],
        )
        .await
        .unwrap()
        .get(0);
    assert_eq!(missing, [CONTRACT.0, 23, 26, 28, 30]);
    assert_eq!(
        migrated.waiting,
        Some(Waiting {
            version: CONTRACT.0,
            name: CONTRACT.1,
            why: WaitingFor::OlderServers(vec![
                ("an event listener named 'billing'".to_owned(), 1),
                ("creditgate".to_owned(), 1),
                ("creditgate/20".to_owned(), 1)
            ]),
        })
    );
    drop(client);
    // Expanded: the old key stays for the older servers, the new index is there for this
    // version's, and this version's server works on it.
    assert_eq!(key_columns(&database, "grants_pkey").await, ["grant_id"]);
    assert_eq!(
        key_columns(&database, "grants_account_key").await,
        ["grant_id", "account_id"]
    );
    plan_old_grant_upsert(&database).await.unwrap();
    let app = TestApp::spawn_on(database, |_| {}).await;
    write_every_changed_table(&app).await;
    // Answers are stored whole while older servers, which could not read them by reference,
    // are connected.
    let client = app.pool.get().await.unwrap();
    let by_reference: i64 = client
        .query_one(
            "SELECT count(*) FROM idempotency_records WHERE answer_hold IS NOT NULL",
            &[],
        )
        .await
        .unwrap()
        .get(0);
    assert_eq!(by_reference, 0);
    drop(client);
    // External ids: an older server's account is claimed for it (and found by its id), and
    // neither version can take an id the other has.
    let like = app.account().await;
    let older = create_account_as_before(&app, &like, "by-older")
        .await
        .unwrap();
    assert_eq!(
        account_by_external_id(&app, "by-older").await,
        Ok(older.clone())
    );
    assert_eq!(
        create_refused(&app, "by-older").await,
        Some(tonic::Code::AlreadyExists)
    );
    let current = app
        .create_account_as(&app.key, create_account_request(&key(), "by-current"))
        .await;
    create_account_as_before(&app, &like, "by-current")
        .await
        .unwrap_err();
    assert_eq!(
        account_by_external_id(&app, "by-current").await,
        Ok(current.clone())
    );
    let current_hold = authorize_keys::expanded(&app, &like).await;
    let quoted_before = quote_seal::expanded(&app, &like).await;
    let settled_before = lean_records::expanded(&app, &like).await;

    // The servers that predate it stop; this version's (here driven directly, with a short
    // interval) applies the contract once they are gone, and then has nothing left to do.
    drop(before);
    drop(knows_20);
    drop(listener);
    finish_waiting(&app).await;
    let mut client = app.pool.get().await.unwrap();
    let again = migrate::migrate(&mut client).await.unwrap();
    assert_eq!((again.applied, again.waiting), (0, None));
    drop(client);

    for (key, columns) in [
        ("grants_pkey", &["grant_id", "account_id"][..]),
        ("holds_pkey", &["hold_id", "account_id"]),
        ("settlements_pkey", &["settlement_id", "account_id"]),
        ("refunds_pkey", &["refund_id", "account_id"]),
        (
            "hold_allocations_pkey",
            &["hold_id", "grant_id", "account_id"],
        ),
        (
            "settlement_parts_pkey",
            &["settlement_id", "grant_id", "account_id"],
        ),
        ("allowances_pkey", &["allowance_id", "account_id"]),
        (
            "allowance_grants_pkey",
            &["allowance_id", "period_start", "account_id"],
        ),
        ("spend_limits_pkey", &["spend_limit_id", "account_id"]),
    ] {
        assert_eq!(key_columns(&app.database, key).await, columns, "{key}");
    }
    // What the wait was for: an older server's upsert no longer finds its key.
    let refused = plan_old_grant_upsert(&app.database).await.unwrap_err();
    let message = refused
        .as_db_error()
        .map(|error| error.message().to_owned());
    assert!(
        message
            .as_deref()
            .is_some_and(|message| message.contains("ON CONFLICT")),
        "{message:?}"
    );
    write_every_changed_table(&app).await;
    // The claims alone keep external ids unique now.
    assert!(
        key_columns(&app.database, "accounts_tenant_id_external_id_key")
            .await
            .is_empty(),
        "the key of accounts is gone"
    );
    assert_eq!(account_by_external_id(&app, "by-older").await, Ok(older));
    assert_eq!(
        account_by_external_id(&app, "by-current").await,
        Ok(current)
    );
    assert_eq!(
        create_refused(&app, "by-older").await,
        Some(tonic::Code::AlreadyExists)
    );
    assert_eq!(
        create_refused(&app, "by-current").await,
        Some(tonic::Code::AlreadyExists)
    );
    assert_eq!(
        account_by_external_id(&app, "nobody").await,
        Err(tonic::Code::NotFound)
    );
    authorize_keys::contracted(&app, &like, &current_hold).await;
    quote_seal::contracted(&app, &like, &quoted_before).await;
    lean_records::contracted(&app, &like, &settled_before).await;
    app.finish().await;
}

#[tokio::test]
async fn a_contract_migration_applied_under_load_fails_no_request() {
    let database = empty_database().await;
    let before = connect_as(&database, "creditgate").await;
    let mut client = database.pool.get().await.unwrap();
    let migrated = migrate::migrate(&mut client).await.unwrap();
    assert_eq!(
        migrated.waiting.map(|waiting| waiting.version),
        Some(CONTRACT.0)
    );
    drop(client);
    // The server's requests wait for locks as long as a server's by default, and no longer.
    let database = database.waiting_at_most(Duration::from_secs(2));
    let app = std::sync::Arc::new(TestApp::spawn_on(database, |_| {}).await);

    // Workers run through every table the contract changes, over and over, until told to
    // stop; any refused request fails the test.
    let stop = std::sync::Arc::new(std::sync::atomic::AtomicBool::new(false));
    let runs = std::sync::Arc::new(tokio::sync::watch::Sender::new(0_usize));
    let workers: Vec<_> = (0..4)
        .map(|_| {
            let (app, stop, runs) = (app.clone(), stop.clone(), runs.clone());
            tokio::spawn(async move {
                while !stop.load(std::sync::atomic::Ordering::SeqCst) {
                    write_every_changed_table(&app).await;
                    runs.send_modify(|runs| *runs += 1);
                }
            })
        })
        .collect();
    drop(before);
    // A long read holds one of its tables: the migration gives up on that lock again and
    // again, each time within its short timeout, and waits for later; the workers' requests
    // behind it wait no longer than that.
    let reader = connect_as(&app.database, "a report").await;
    reader
        .batch_execute("BEGIN; SELECT count(*) FROM settlement_parts")
        .await
        .unwrap();
    let mut client = app.pool.get().await.unwrap();
    let busy = migrate::migrate(&mut client).await.unwrap();
    assert_eq!(
        busy.waiting.map(|waiting| waiting.why),
        Some(WaitingFor::Locks)
    );
    drop(client);
    reader.batch_execute("COMMIT").await.unwrap();
    finish_waiting(&app).await;
    // A few more runs on the contracted schema, then stop.
    let applied_at = *runs.borrow();
    let mut progress = runs.subscribe();
    tokio::time::timeout(
        Duration::from_secs(60),
        progress.wait_for(|runs| *runs >= applied_at + 8),
    )
    .await
    .expect("the workers keep running (none has failed)")
    .unwrap();
    stop.store(true, std::sync::atomic::Ordering::SeqCst);
    for worker in workers {
        worker
            .await
            .expect("no request failed while the contract ran");
    }
    assert_eq!(
        key_columns(&app.database, "grants_pkey").await,
        ["grant_id", "account_id"]
    );
    let Ok(app) = std::sync::Arc::try_unwrap(app) else {
        panic!("the workers are done with the app");
    };
    app.finish().await;
}
