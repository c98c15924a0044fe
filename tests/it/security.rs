//! The security matrix: every RPC × every kind of caller × own or another tenant's object gets
//! exactly the expected code, another tenant's objects stay untouched, the server's debug log
//! never shows a key or its digest, and a flood of bad keys takes at most a few connections.

pub mod rpcs;
mod served;

use std::sync::Arc;
use std::time::Duration;

use creditgate::auth::{Scope, ScopeSet, hash_key};
use creditgate::proto::v1::{
    GetAccountRequest, GetBalanceRequest, GetHoldRequest, get_account_request, get_hold_request,
};
use creditgate::service::ServiceError;
use creditgate::service::access::{Authenticator, MAX_KEY_LOOKUPS_PER_LANE};
use tonic::{Code, Status};

use self::rpcs::{Row, Target, contract_rpcs, rows};
use self::served::Served;
use crate::helpers::money::Objects;
use crate::helpers::{TestApp, reason};

/// A key of the right shape that no tenant has.
const UNKNOWN_KEY: &str = "cg_5eb63bbbe01eeed093cb22bb8f5acdc3a7bd1e9a5b0c3f1d";

/// Who makes a call.
#[derive(Clone, Copy, Debug)]
enum Caller {
    Scoped(Scope),
    NoKey,
    UnknownKey,
}

/// Whose objects a call names.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Owner {
    Own,
    Other,
}

/// The answer the contract gives.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Expect {
    Unauthenticated,
    ScopeMissing,
    /// NOT_FOUND with this reason.
    NotFound(&'static str),
    /// Reached the RPC, which judged the request: OK or any code that is neither an
    /// authentication refusal, NOT_FOUND, UNIMPLEMENTED nor a failure of the server.
    Reached,
}

fn expected(row: &Row, caller: Caller, owner: Owner) -> Expect {
    let Caller::Scoped(scope) = caller else {
        return Expect::Unauthenticated;
    };
    if scope != Scope::Admin && !row.accepts.contains(&scope) {
        return Expect::ScopeMissing;
    }
    match (row.target, owner) {
        (Target::Object(reason), Owner::Other) => Expect::NotFound(reason),
        (Target::Object(_) | Target::Tenant, _) => Expect::Reached,
    }
}

fn matches(expect: Expect, result: &Result<(), Status>) -> bool {
    let Err(status) = result else {
        return expect == Expect::Reached;
    };
    let scope_missing = status.code() == Code::PermissionDenied
        && reason(status).as_deref() == Some("SCOPE_MISSING");
    match expect {
        Expect::Unauthenticated => status.code() == Code::Unauthenticated,
        Expect::ScopeMissing => scope_missing,
        Expect::NotFound(expected) => {
            status.code() == Code::NotFound && reason(status).as_deref() == Some(expected)
        }
        Expect::Reached => {
            let refused = [
                Code::Unauthenticated,
                Code::NotFound,
                Code::Unimplemented,
                Code::Internal,
                Code::Unknown,
            ];
            !scope_missing && !refused.contains(&status.code())
        }
    }
}

#[tokio::test]
async fn every_rpc_answers_every_caller_as_the_contract_says_and_logs_no_key() {
    let mut app = TestApp::spawn().await;
    let served = Served::start(&app.database_url()).await;
    // Every client of `app` now talks to the separate process, whose log is captured.
    app.channel = served.channel.clone();

    let own = app.objects_of(&app.key).await;
    let other_key = app.other_tenant_key().await;
    let other = app.objects_of(&other_key).await;
    let other_before = snapshot(&app, &other_key, &other).await;

    let mut secrets = vec![app.key.clone(), other_key.clone(), UNKNOWN_KEY.to_owned()];
    let mut callers = vec![
        (Caller::NoKey, None),
        (Caller::UnknownKey, Some(UNKNOWN_KEY.to_owned())),
    ];
    for scope in Scope::ALL {
        let scoped = app.key_with(&[scope]).await;
        secrets.push(scoped.clone());
        callers.push((Caller::Scoped(scope), Some(scoped)));
    }

    let mut mismatches = Vec::new();
    let mut calls = 0;
    for row in rows() {
        for (caller, caller_key) in &callers {
            let clients = app.clients_as(caller_key.as_deref());
            for (owner, objects) in [(Owner::Own, &own), (Owner::Other, &other)] {
                let expect = expected(&row, *caller, owner);
                let result = (row.call)(clients.clone(), objects.clone()).await;
                calls += 1;
                if !matches(expect, &result) {
                    let got = result.err().map_or("OK".to_owned(), |status| {
                        format!(
                            "{:?} {:?} {}",
                            status.code(),
                            reason(&status),
                            status.message()
                        )
                    });
                    mismatches.push(format!(
                        "{} by {caller:?} on {owner:?}: expected {expect:?}, got {got}",
                        row.rpc
                    ));
                }
            }
        }
    }
    assert!(
        mismatches.is_empty(),
        "{} of {calls} calls:\n{}",
        mismatches.len(),
        mismatches.join("\n")
    );
    assert_eq!(
        snapshot(&app, &other_key, &other).await,
        other_before,
        "calls by this tenant's keys changed another tenant's objects"
    );

    let log = served.stop().await;
    // The capture works: the key lookup's parameters are in it, at debug level.
    assert!(
        log.contains("with parameters"),
        "the log holds no query parameters:\n{log}"
    );
    let leaks = leaks(&log, &secrets);
    assert!(leaks.is_empty(), "the server log shows {leaks:?}");
    app.finish().await;
}

#[test]
fn the_table_names_every_rpc_of_the_contract_once() {
    let mut table: Vec<String> = rows().iter().map(|row| row.rpc.to_owned()).collect();
    table.sort();
    assert_eq!(table, contract_rpcs(|_| true));
}

#[test]
fn the_log_check_finds_a_key_or_its_digest_in_any_form_logged() {
    let secret = "cg_0123456789abcdef0123456789abcdef0123456789abcdef";
    let digest = hash_key(secret);
    let hex = hex::encode(digest);
    let logged = [
        format!("authorization: Bearer {secret}"),
        format!("key_hash={}", &hex[..8]),
        format!("KEY {}", hex[..12].to_uppercase()),
        format!(
            "executing statement s1 with parameters: [{:?}]",
            &digest[..]
        ),
    ];
    for line in logged {
        assert!(
            !leaks(&line, &[secret.to_owned()]).is_empty(),
            "missed: {line}"
        );
    }
    assert!(
        leaks(
            "executing statement s1 with parameters: [KeyDigest(..)]",
            &[secret.to_owned()]
        )
        .is_empty()
    );
}

/// The forms of each secret found in `log`: the key, the part of it past the stored display
/// prefix, the first 8 hex digits of its SHA-256 (either case) and the digest's first bytes as
/// `Debug` prints a byte slice (how tokio-postgres logs a `bytea` parameter).
fn leaks(log: &str, secrets: &[String]) -> Vec<String> {
    let lowercase = log.to_lowercase();
    let mut found = Vec::new();
    for secret in secrets {
        let digest = hash_key(secret);
        let needles = [
            secret.clone(),
            secret.chars().skip(9).take(16).collect(),
            hex::encode(&digest[..4]),
            format!("{:?}", &digest[..4])
                .trim_end_matches(']')
                .to_owned(),
        ];
        for needle in needles {
            if lowercase.contains(&needle.to_lowercase()) {
                found.push(needle);
            }
        }
    }
    found
}

#[tokio::test]
async fn a_flood_of_bad_keys_takes_at_most_a_few_connections_and_one_query_per_key() {
    let app = TestApp::spawn().await;
    // Fresh pools: the connections each one opens are the lookups that ran at once.
    let flooded = app.database.reconnect();
    let authenticator = Arc::new(Authenticator::new(
        flooded.pool.clone(),
        Duration::from_secs(30),
    ));
    let distinct: Vec<String> = (0..200).map(|index| format!("cg_{index:048x}")).collect();
    assert!(all_unknown(&authenticator, distinct).await);
    let opened = flooded.pool.status().size;
    assert!(
        opened <= MAX_KEY_LOOKUPS_PER_LANE,
        "{opened} connections for key lookups"
    );

    let repeated = app.database.reconnect();
    let authenticator = Arc::new(Authenticator::new(
        repeated.pool.clone(),
        Duration::from_secs(30),
    ));
    assert!(all_unknown(&authenticator, vec![UNKNOWN_KEY.to_owned(); 200]).await);
    assert_eq!(
        repeated.pool.status().size,
        1,
        "concurrent checks of one key share one query"
    );
    // A key that exists still passes, and a new one works at once.
    let caller = authenticator
        .authenticate(&app.key, ScopeSet::all())
        .await
        .unwrap();
    assert_eq!(caller.tenant_id, app.tenant_id);
    let fresh = app.key_with(&[Scope::Reader]).await;
    assert!(
        authenticator
            .authenticate(&fresh, ScopeSet::all())
            .await
            .is_ok()
    );
    app.stop().await;
}

/// Checks every key at once; true when every one was refused as unknown.
async fn all_unknown(authenticator: &Arc<Authenticator>, keys: Vec<String>) -> bool {
    let mut checks = tokio::task::JoinSet::new();
    for key in keys {
        let authenticator = Arc::clone(authenticator);
        checks.spawn(async move { authenticator.authenticate(&key, ScopeSet::all()).await });
    }
    checks
        .join_all()
        .await
        .iter()
        .all(|verdict| matches!(verdict, Err(ServiceError::UnknownKey)))
}

/// Everything the other tenant can read about its objects, as its own key sees it.
async fn snapshot(app: &TestApp, tenant_key: &str, objects: &Objects) -> Vec<String> {
    let mut account = app.account_as(Some(tenant_key));
    let mut credit = app.credit_as(Some(tenant_key));
    let lookup = Some(get_account_request::Lookup::AccountId(
        objects.account_id.clone(),
    ));
    let stored = account
        .get_account(GetAccountRequest { lookup })
        .await
        .unwrap()
        .into_inner();
    let balance = account
        .get_balance(GetBalanceRequest {
            account_id: objects.account_id.clone(),
            expiring_within_days: 0,
        })
        .await
        .unwrap()
        .into_inner();
    let mut seen = vec![
        format!("{stored:?}"),
        format!("{} {} {}", balance.available, balance.held, balance.debt),
    ];
    for hold_id in [&objects.hold_id, &objects.settled_hold_id] {
        let lookup = Some(get_hold_request::Lookup::HoldId(hold_id.clone()));
        let hold = credit
            .get_hold(GetHoldRequest {
                lookup,
                ..Default::default()
            })
            .await
            .unwrap()
            .into_inner();
        seen.push(format!("{hold:?}"));
    }
    seen
}
