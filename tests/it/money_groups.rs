//! Group commit, through the gRPC surface: operations of many accounts share one transaction,
//! yet each keeps its own answer, balance, idempotency record and tenant, and a transaction
//! that fails to commit fails only retryably.

use std::collections::{HashMap, HashSet};
use std::sync::Arc;

use creditgate::proto::v1::credit_service_client::CreditServiceClient;
use creditgate::proto::v1::{
    AuthorizeRequest, AuthorizeResponse, GetBalanceRequest, GetHoldRequest, GrantRequest,
    GrantSource, Hold, HoldStatus, RunMetadata, get_hold_request,
};
use tonic::{Code, Status};

use crate::helpers::concurrency::burst;
use crate::helpers::money::{
    authorize_request, create_account_request, grant_request, key, release_request, settle_request,
};
use crate::helpers::status::{assert_key_reused, assert_refused, metadata};
use crate::helpers::time::timestamp;
use crate::helpers::{Authed, TestApp};

type Credit = CreditServiceClient<Authed>;

/// `count` accounts of the tenant of `api_key`, each holding `amount` purchased credits.
async fn funded_accounts(app: &TestApp, api_key: &str, count: usize, amount: &str) -> Vec<String> {
    let mut client = app.account_as(Some(api_key));
    let mut accounts = Vec::with_capacity(count);
    for _ in 0..count {
        let account_id = app
            .create_account_as(api_key, create_account_request(&key(), &key()))
            .await;
        let grant = grant_request(&account_id, &key(), amount);
        client.grant(grant).await.unwrap();
        accounts.push(account_id);
    }
    accounts
}

type Answer = Result<AuthorizeResponse, Status>;

/// An Authorize of `amount` with a fresh key on each account.
fn fresh_requests(accounts: &[String], amount: &str) -> Vec<AuthorizeRequest> {
    let request = |account_id: &String| authorize_request(account_id, &key(), amount);
    accounts.iter().map(request).collect()
}

async fn authorize(mut client: Credit, request: AuthorizeRequest) -> Answer {
    client
        .authorize(request)
        .await
        .map(tonic::Response::into_inner)
}

/// Sends every request at once; the answers in request order.
async fn authorize_all(client: &Credit, requests: &[AuthorizeRequest]) -> Vec<Answer> {
    let calls = requests
        .iter()
        .map(|one| authorize(client.clone(), one.clone()));
    burst(calls.collect()).await
}

/// The hold as the server has it now (`None`: it does not exist).
async fn stored_hold(app: &TestApp, lookup: get_hold_request::Lookup) -> Option<Hold> {
    let lookup = Some(lookup);
    match app
        .credit()
        .get_hold(GetHoldRequest {
            lookup,
            ..Default::default()
        })
        .await
    {
        Ok(response) => response.into_inner().hold,
        Err(status) => {
            assert_refused(&status, Code::NotFound, "HOLD_NOT_FOUND");
            None
        }
    }
}

/// How many holds match `condition` on `$1`.
async fn holds_where(app: &TestApp, condition: &str, value: &str) -> i64 {
    let client = app.pool.get().await.unwrap();
    let sql = format!("SELECT count(*) FROM holds WHERE {condition}");
    client.query_one(&sql, &[&value]).await.unwrap().get(0)
}

/// Holds claimed by an Authorize key (a hold's own `authorize_key` is NULL once the schema is
/// complete).
const WITH_KEY: &str = "(hold_id, account_id) IN \
     (SELECT hold_id, account_id FROM authorize_keys WHERE authorize_key = $1)";
const ON_ACCOUNT: &str = "account_id = $1::text::uuid";

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn forty_accounts_raced_at_once_each_spend_exactly_their_own_credits() {
    const ACCOUNTS: usize = 40;
    const RUNS: usize = 8;
    let app = TestApp::spawn().await;
    let accounts = funded_accounts(&app, &app.key, ACCOUNTS, "10").await;
    let client = app.credit();
    // Every account gets 8 runs of 2 credits, interleaved; even accounts settle their holds,
    // odd ones release them.
    let runs = (0..ACCOUNTS * RUNS).map(|index| {
        let (account, mut client) = (index % ACCOUNTS, client.clone());
        let account_id = accounts[account].clone();
        async move {
            let request = authorize_request(&account_id, &key(), "2");
            let hold = match client.authorize(request).await {
                Ok(response) => response.into_inner().hold.unwrap(),
                Err(status) => {
                    assert_refused(&status, Code::FailedPrecondition, "INSUFFICIENT_CREDITS");
                    return (account, "declined");
                }
            };
            assert_eq!(hold.account_id, account_id);
            if account % 2 == 1 {
                let release = release_request(&hold.hold_id, &key(), "run failed");
                let released = client.release(release).await.unwrap().into_inner();
                assert_eq!(released.released, "2");
                return (account, "released");
            }
            let settle = settle_request(&hold.hold_id, &key(), "2");
            let settled = client.settle(settle).await.unwrap().into_inner();
            assert_eq!(settled.settlement.unwrap().total, "2");
            (account, "settled")
        }
    });
    let mut tally: HashMap<(usize, &str), usize> = HashMap::new();
    for outcome in burst(runs.collect()).await {
        *tally.entry(outcome).or_default() += 1;
    }
    for (account, account_id) in accounts.iter().enumerate() {
        let runs = |run| tally.get(&(account, run)).copied().unwrap_or_default();
        let balance = app.balance(account_id).await;
        let figures = (&*balance.available, &*balance.held, &*balance.debt);
        if account % 2 == 0 {
            // 10 credits pay for exactly 5 runs of 2.
            let settled = (runs("settled"), runs("declined"));
            assert_eq!(settled, (5, 3), "account {account}");
            assert_eq!(figures, ("0", "0", "0"), "account {account}");
        } else {
            // Released holds give their credits back: at least 5 runs are held, none lost.
            let released = runs("released");
            assert!(released >= 5, "account {account}: {released} released");
            assert_eq!(released + runs("declined"), RUNS, "account {account}");
            assert_eq!(figures, ("10", "0", "0"), "account {account}");
        }
    }
    app.finish().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn one_key_raced_on_several_accounts_holds_once_and_its_neighbours_never_fail() {
    const ROUNDS: usize = 30;
    const SHARING: usize = 3;
    const OTHERS: usize = 17;
    let app = TestApp::spawn().await;
    let accounts = funded_accounts(&app, &app.key, SHARING + OTHERS, "100").await;
    let client = app.credit();
    let mut held = vec![0_u32; accounts.len()];
    for round in 0..ROUNDS {
        // The first accounts get the same key (and amount); the others their own keys.
        let shared = key();
        let mut requests = fresh_requests(&accounts, "2");
        for request in &mut requests[..SHARING] {
            request.idempotency_key.clone_from(&shared);
        }
        let results = authorize_all(&client, &requests).await;
        let mut winners = Vec::new();
        for (index, (request, result)) in requests.iter().zip(results).enumerate() {
            match result {
                Ok(response) => {
                    let hold = response.hold.unwrap();
                    assert_eq!(hold.account_id, request.account_id, "round {round}");
                    if index < SHARING {
                        winners.push(hold.hold_id);
                    }
                    held[index] += 2;
                }
                Err(status) if index < SHARING => assert_key_reused(&status, "account_id"),
                // A transaction that lost the race for the shared key is rerun without the
                // loser: its other operations still commit.
                Err(status) => panic!("round {round}: a neighbour failed: {status:?}"),
            }
        }
        assert_eq!(winners.len(), 1, "round {round}: one account gets the key");
        let made = holds_where(&app, WITH_KEY, &shared).await;
        assert_eq!(made, 1, "round {round}: one hold has the key");
        let lookup = get_hold_request::Lookup::AuthorizeIdempotencyKey(shared);
        let stored = stored_hold(&app, lookup).await.unwrap();
        assert_eq!(stored.hold_id, winners[0], "round {round}");
    }
    for (index, account_id) in accounts.iter().enumerate() {
        let (available, held) = ((100 - held[index]).to_string(), held[index].to_string());
        app.assert_balance(account_id, &available, &held).await;
    }
    app.finish().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn another_tenant_naming_an_account_in_the_same_burst_finds_nothing_and_holds_nothing() {
    const CALLS: usize = 60;
    let app = TestApp::spawn().await;
    let other_key = app.other_tenant_key().await;
    let mine = funded_accounts(&app, &app.key, 1, "100").await.remove(0);
    let theirs = funded_accounts(&app, &other_key, 1, "100").await.remove(0);
    let (client, other) = (app.credit(), app.credit_as(Some(&other_key)));
    // The other tenant sends the very requests (same keys) the owner sends on the owner's
    // account, and some of its own on its account, all at once.
    let keys: Vec<String> = (0..CALLS).map(|_| key()).collect();
    let mut calls = Vec::new();
    for idempotency_key in &keys {
        let request = authorize_request(&mine, idempotency_key, "1");
        calls.push(authorize(client.clone(), request.clone()));
        calls.push(authorize(other.clone(), request));
        let own = authorize_request(&theirs, &key(), "1");
        calls.push(authorize(other.clone(), own));
    }
    let results = burst(calls).await;
    let mut hold_ids = HashSet::new();
    for (index, result) in results.into_iter().enumerate() {
        match index % 3 {
            0 => {
                let hold = result.unwrap().hold.unwrap();
                assert_eq!(hold.account_id, mine);
                hold_ids.insert(hold.hold_id);
            }
            1 => assert_refused(&result.unwrap_err(), Code::NotFound, "ACCOUNT_NOT_FOUND"),
            _ => assert_eq!(result.unwrap().hold.unwrap().account_id, theirs),
        }
    }
    assert_eq!(hold_ids.len(), CALLS, "the owner's holds are distinct");
    app.assert_balance(&mine, "40", "60").await;
    assert_eq!(holds_where(&app, ON_ACCOUNT, &mine).await, 60);
    // The owner's keys made no hold of the other tenant's.
    let lookup = get_hold_request::Lookup::AuthorizeIdempotencyKey(keys[0].clone());
    let lookup = Some(lookup);
    let status = other
        .clone()
        .get_hold(GetHoldRequest {
            lookup,
            ..Default::default()
        })
        .await
        .unwrap_err();
    assert_refused(&status, Code::NotFound, "HOLD_NOT_FOUND");
    // The other tenant's own account holds what it held, in the same bursts.
    assert_eq!(holds_where(&app, ON_ACCOUNT, &theirs).await, 60);
    app.finish().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn a_burst_over_many_accounts_sent_again_returns_the_same_holds_and_holds_nothing_more() {
    const ACCOUNTS: usize = 32;
    let app = TestApp::spawn().await;
    let accounts = funded_accounts(&app, &app.key, ACCOUNTS, "10").await;
    let client = app.credit();
    let requests = fresh_requests(&accounts, "3");
    let first = authorize_all(&client, &requests).await;
    let first: Vec<AuthorizeResponse> = first.into_iter().map(Result::unwrap).collect();
    for (response, account_id) in first.iter().zip(&accounts) {
        assert_eq!(response.hold.as_ref().unwrap().account_id, *account_id);
        assert_eq!(response.available, "7");
    }
    // Each request again, twice, beside a new Authorize on every account, all at once.
    let second = [requests.clone(), requests, fresh_requests(&accounts, "3")].concat();
    let results = authorize_all(&client, &second).await;
    for (index, result) in results.into_iter().enumerate() {
        let response = result.unwrap();
        let before = &first[index % ACCOUNTS];
        if index < 2 * ACCOUNTS {
            assert_eq!(response, *before, "a replay answers as the first time");
        } else {
            // A new key on the account: a new hold.
            let (hold, held) = (response.hold.unwrap(), before.hold.as_ref().unwrap());
            assert_eq!(hold.account_id, held.account_id);
            assert_ne!(hold.hold_id, held.hold_id);
        }
    }
    for account_id in &accounts {
        app.assert_balance(account_id, "4", "6").await;
        assert_eq!(holds_where(&app, ON_ACCOUNT, account_id).await, 2);
    }
    app.finish().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn identical_retries_beside_a_key_raced_on_another_account_agree_on_a_hold_that_exists() {
    const ROUNDS: usize = 150;
    const COPIES: usize = 4;
    const LOAD: usize = 16;
    let app = TestApp::spawn().await;
    let accounts = funded_accounts(&app, &app.key, 2 + LOAD, "1000").await;
    let client = app.credit();
    for round in 0..ROUNDS {
        // Two accounts race one key, each sending its request several times (a client that
        // retries before its first answer); other accounts keep transactions busy meanwhile.
        let shared = key();
        let mut requests = Vec::new();
        for copy in 0..COPIES {
            for account_id in &accounts[..2] {
                requests.push(authorize_request(account_id, &shared, "1"));
            }
            let load = &accounts[2 + copy * LOAD / COPIES..2 + (copy + 1) * LOAD / COPIES];
            requests.extend(load.iter().map(|id| authorize_request(id, &key(), "1")));
        }
        let results = authorize_all(&client, &requests).await;
        let mut answers: HashMap<&str, HashSet<String>> = HashMap::new();
        let mut holds = HashSet::new();
        for (request, result) in requests.iter().zip(results) {
            if request.idempotency_key != shared {
                continue;
            }
            let answer = match result {
                Ok(response) => {
                    let hold = response.hold.unwrap();
                    holds.insert((hold.hold_id.clone(), hold.account_id));
                    format!("hold {}", hold.hold_id)
                }
                Err(status) => {
                    assert_key_reused(&status, "account_id");
                    "reused".to_owned()
                }
            };
            let account = request.account_id.as_str();
            answers.entry(account).or_default().insert(answer);
        }
        // Every hold answered exists, on the account it was answered for.
        for (hold_id, account_id) in &holds {
            let lookup = get_hold_request::Lookup::HoldId(hold_id.clone());
            let stored = stored_hold(&app, lookup).await.unwrap_or_else(|| {
                panic!("round {round}: hold {hold_id} was answered but does not exist: {answers:?}")
            });
            assert_eq!(stored.account_id, *account_id);
            assert_eq!(stored.status, HoldStatus::Active as i32);
        }
        assert_eq!(holds.len(), 1, "round {round}: {answers:?}");
        assert!(
            answers.values().all(|answer| answer.len() == 1),
            "round {round}: identical requests got different answers: {answers:?}"
        );
        let made = holds_where(&app, WITH_KEY, &shared).await;
        assert_eq!(made, 1, "round {round}: one hold has the key");
    }
    app.finish().await;
}

/// Holds written together keep each their own run labels (they travel as one flat array per
/// transaction, each hold naming its slice).
#[tokio::test]
async fn holds_written_in_one_transaction_keep_their_own_labels() {
    let app = TestApp::spawn().await;
    let accounts = funded_accounts(&app, &app.key, 2, "100").await;
    let labelled = |count: usize| -> std::collections::BTreeMap<String, String> {
        (0..count)
            .map(|index| (format!("key-{index}"), format!("value-{index}-{count}")))
            .collect()
    };
    let mut requests = Vec::new();
    for round in 0..24 {
        let account_id = &accounts[round % 2];
        let mut request = authorize_request(account_id, &key(), "1");
        request.run = Some(creditgate::proto::v1::RunMetadata {
            run_id: format!("run-{round}"),
            labels: labelled(round % 4),
            ..creditgate::proto::v1::RunMetadata::default()
        });
        requests.push(request);
    }
    let answers = futures::future::join_all(
        requests
            .iter()
            .cloned()
            .map(|request| authorize(app.credit(), request)),
    )
    .await;
    for (round, answer) in answers.into_iter().enumerate() {
        let hold_id = answer.unwrap().hold.unwrap().hold_id;
        let hold = app
            .credit()
            .get_hold(GetHoldRequest {
                lookup: Some(get_hold_request::Lookup::HoldId(hold_id)),
                ..Default::default()
            })
            .await
            .unwrap()
            .into_inner()
            .hold
            .unwrap();
        let run = hold.run.unwrap();
        assert_eq!(run.run_id, format!("run-{round}"));
        assert_eq!(run.labels, labelled(round % 4), "round {round}");
    }
    app.finish().await;
}

/// Makes the database refuse every hold whose run id is `poison`, as it would refuse a value
/// that no check before the lock foresaw.
async fn refuse_poisoned_holds(app: &TestApp) {
    let client = app.pool.get().await.unwrap();
    client
        .batch_execute(
            "CREATE FUNCTION refuse_poison() RETURNS trigger LANGUAGE plpgsql AS $$ BEGIN \
               IF NEW.run_id = 'poison' THEN \
                 RAISE EXCEPTION 'poisoned hold' USING ERRCODE = '22023'; \
               END IF; RETURN NEW; END $$; \
             CREATE TRIGGER refuse_poison BEFORE INSERT ON holds \
               FOR EACH ROW EXECUTE FUNCTION refuse_poison();",
        )
        .await
        .unwrap();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn an_operation_the_database_refuses_fails_alone_and_everyone_else_in_its_transaction_commits()
 {
    const ROUNDS: usize = 8;
    const ACCOUNTS: usize = 8;
    let app = TestApp::spawn().await;
    let other_key = app.other_tenant_key().await;
    let mine = funded_accounts(&app, &app.key, ACCOUNTS, "100").await;
    let theirs = funded_accounts(&app, &other_key, ACCOUNTS, "100").await;
    refuse_poisoned_holds(&app).await;
    let clients = [app.credit(), app.credit_as(Some(&other_key))];
    let mut poisoned = Vec::new();
    for round in 0..ROUNDS {
        // Every account of both tenants authorizes once; two poisoned requests ride along on
        // accounts of each tenant.
        let mut calls = Vec::new();
        for (tenant, accounts) in [&mine, &theirs].into_iter().enumerate() {
            for account_id in accounts {
                let request = authorize_request(account_id, &key(), "1");
                calls.push((tenant, false, request));
            }
            let mut poison = authorize_request(&accounts[round % ACCOUNTS], &key(), "1");
            poison.run = Some(RunMetadata {
                run_id: "poison".to_owned(),
                ..RunMetadata::default()
            });
            calls.push((tenant, true, poison));
        }
        let futures = calls
            .iter()
            .map(|(tenant, _, request)| authorize(clients[*tenant].clone(), request.clone()));
        let results = burst(futures.collect()).await;
        for ((tenant, poison, request), result) in calls.into_iter().zip(results) {
            if poison {
                let status = result.unwrap_err();
                assert_refused(&status, Code::InvalidArgument, "INVALID_ARGUMENT");
                poisoned.push((tenant, request));
            } else {
                let hold = result
                    .unwrap_or_else(|status| {
                        panic!("round {round}: a neighbour failed: {status:?}")
                    })
                    .hold
                    .unwrap();
                assert_eq!(hold.amount, "1");
                let made = holds_where(&app, WITH_KEY, &request.idempotency_key).await;
                assert_eq!(made, 1, "round {round}: recorded once");
            }
        }
    }
    let held = ROUNDS.to_string();
    let available = (100 - ROUNDS).to_string();
    for (tenant_key, accounts) in [(&app.key, &mine), (&other_key, &theirs)] {
        let mut client = app.account_as(Some(tenant_key));
        for account_id in accounts {
            let request = GetBalanceRequest {
                account_id: account_id.clone(),
                expiring_within_days: 0,
            };
            let balance = client.get_balance(request).await.unwrap().into_inner();
            assert_eq!(
                (balance.available, balance.held),
                (available.clone(), held.clone())
            );
        }
    }
    // The refusal is the key's answer: a retry gets it again even once the database would
    // accept the request, and holds nothing.
    let client = app.pool.get().await.unwrap();
    client
        .batch_execute("DROP TRIGGER refuse_poison ON holds")
        .await
        .unwrap();
    for (tenant, request) in poisoned {
        let status = authorize(clients[tenant].clone(), request.clone())
            .await
            .unwrap_err();
        assert_refused(&status, Code::InvalidArgument, "INVALID_ARGUMENT");
        assert_eq!(
            metadata(&status).get("sqlstate").map(String::as_str),
            Some("22023")
        );
        assert_eq!(
            holds_where(&app, WITH_KEY, &request.idempotency_key).await,
            0
        );
    }
    app.finish().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn holds_written_together_are_inserted_in_key_order() {
    const ACCOUNTS: usize = 40;
    let app = TestApp::spawn().await;
    let accounts = funded_accounts(&app, &app.key, ACCOUNTS, "10").await;
    let client = app.credit();
    for result in authorize_all(&client, &fresh_requests(&accounts, "1")).await {
        result.unwrap();
    }
    // Rows of one transaction share its xmin; a fresh table stores them in insertion order.
    let client = app.pool.get().await.unwrap();
    let rows = client
        .query(
            "SELECT count(*) AS holds, \
               array_agg(k.authorize_key ORDER BY h.ctid) = \
               array_agg(k.authorize_key ORDER BY h.tenant_id, k.authorize_key) AS sorted \
             FROM holds h JOIN authorize_keys k USING (hold_id, account_id) GROUP BY h.xmin::text",
            &[],
        )
        .await
        .unwrap();
    let shared = rows.iter().filter(|row| row.get::<_, i64>("holds") > 1);
    assert!(shared.clone().count() > 0, "no transaction wrote two holds");
    assert!(shared.clone().all(|row| row.get::<_, bool>("sorted")));
    app.finish().await;
}

/// A server clock an hour fast: a replica whose host clock is wrong.
#[derive(Debug)]
struct HourFast;

impl creditgate::clock::Clock for HourFast {
    fn now(&self) -> chrono::DateTime<chrono::Utc> {
        creditgate::clock::SystemClock.now() + chrono::Duration::hours(1)
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn a_replica_with_a_fast_clock_decides_expiry_at_the_database_time() {
    let app = TestApp::spawn().await;
    let fast = app.replica_with_clock(Arc::new(HourFast)).await;
    let account_id = funded_accounts(&app, &app.key, 1, "10").await.remove(0);
    // Credits valid for half an hour, and a hold for fifteen minutes, made by the right clock.
    let half_hour = app.now() + chrono::Duration::minutes(30);
    let grant = GrantRequest {
        source: GrantSource::Promo as i32,
        expires_at: Some(timestamp(half_hour)),
        ..grant_request(&account_id, &key(), "5")
    };
    app.account_as(Some(&app.key)).grant(grant).await.unwrap();
    let hold = authorize(app.credit(), authorize_request(&account_id, &key(), "12"))
        .await
        .unwrap()
        .hold
        .unwrap();
    // Through the fast replica, the hold is live and settles from its reservation; the promo
    // credits are still spendable.
    let settle = settle_request(&hold.hold_id, &key(), "12");
    let settled = fast.credit().settle(settle).await.unwrap().into_inner();
    let settlement = settled.settlement.unwrap();
    assert!(!settlement.late, "{settlement:?}");
    assert_eq!(settlement.from_hold, "12");
    let next = authorize(fast.credit(), authorize_request(&account_id, &key(), "3"))
        .await
        .unwrap();
    assert_eq!(next.available, "0");
    fast.stop().await;
    app.finish().await;
}
