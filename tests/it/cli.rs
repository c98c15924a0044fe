//! The command line against DATABASE_URL: tenants and keys made there work on the server.

use creditgate::proto::v1::{QuoteRequest, Usage};
use tokio::process::Command;

use crate::helpers::TestApp;

async fn creditgate(database_url: &str, args: &[&str]) -> std::process::Output {
    Command::new(env!("CARGO_BIN_EXE_creditgate"))
        .args(args)
        .env("DATABASE_URL", database_url)
        .output()
        .await
        .unwrap()
}

#[tokio::test]
async fn a_key_created_on_the_command_line_is_shown_once_and_works() {
    let app = TestApp::spawn().await;
    let url = app.database_url();

    let created = creditgate(&url, &["tenant", "create", "acme"]).await;
    assert!(
        created.status.success(),
        "{}",
        String::from_utf8_lossy(&created.stderr)
    );
    let again = creditgate(&url, &["tenant", "create", "acme"]).await;
    assert!(!again.status.success());
    assert!(String::from_utf8_lossy(&again.stderr).contains("already exists"));

    let key = creditgate(
        &url,
        &[
            "key",
            "create",
            "--tenant",
            "test",
            "--scopes",
            "worker,reader",
        ],
    )
    .await;
    assert!(
        key.status.success(),
        "{}",
        String::from_utf8_lossy(&key.stderr)
    );
    let secret = String::from_utf8(key.stdout).unwrap().trim().to_owned();
    let quote = QuoteRequest {
        model: "openai/o3-pro".to_owned(),
        usage: Some(Usage {
            input_tokens: 10_000,
            ..Usage::default()
        }),
        ..QuoteRequest::default()
    };
    let quoted = app.credit_as(Some(&secret)).quote(quote).await;
    assert_eq!(
        quoted.map(|response| response.into_inner().total).ok(),
        Some("0.5".to_owned()),
        "the new key must authenticate"
    );
    let client = app.pool.get().await.unwrap();
    let stored: i64 = client
        .query_one(
            "SELECT count(*) FROM api_keys WHERE key_hash = sha256(convert_to($1, 'UTF8'))",
            &[&secret],
        )
        .await
        .unwrap()
        .get(0);
    assert_eq!(stored, 1, "the key is stored as its digest");
    app.stop().await;
}

#[tokio::test]
async fn bad_scopes_and_unknown_tenants_are_refused_without_writing() {
    let app = TestApp::spawn().await;
    let url = app.database_url();
    let bad_scope = creditgate(
        &url,
        &[
            "key",
            "create",
            "--tenant",
            "test",
            "--scopes",
            "worker,root",
        ],
    )
    .await;
    assert!(!bad_scope.status.success());
    assert!(String::from_utf8_lossy(&bad_scope.stderr).contains("unknown scope"));
    let no_tenant = creditgate(
        &url,
        &["key", "create", "--tenant", "nobody", "--scopes", "worker"],
    )
    .await;
    assert!(!no_tenant.status.success());
    assert!(String::from_utf8_lossy(&no_tenant.stderr).contains("not found"));
    let client = app.pool.get().await.unwrap();
    let keys: i64 = client
        .query_one("SELECT count(*) FROM api_keys", &[])
        .await
        .unwrap()
        .get(0);
    assert_eq!(keys, 1, "only the harness key exists");
    app.stop().await;
}

#[tokio::test]
async fn keys_are_listed_without_their_secret_and_a_revoked_key_is_refused() {
    let app = TestApp::spawn().await;
    let url = app.database_url();
    let created = creditgate(
        &url,
        &["key", "create", "--tenant", "test", "--scopes", "reader"],
    )
    .await;
    assert!(created.status.success());
    let secret = String::from_utf8(created.stdout).unwrap().trim().to_owned();
    let stderr = String::from_utf8_lossy(&created.stderr).into_owned();
    let key_id = stderr
        .split("created key ")
        .nth(1)
        .and_then(|rest| rest.split_whitespace().next())
        .unwrap_or_else(|| panic!("no key id in {stderr}"))
        .to_owned();
    // Used once: a server looks it up.
    app.account_as(Some(&secret))
        .get_balance(creditgate::proto::v1::GetBalanceRequest {
            account_id: app.account().await,
            ..Default::default()
        })
        .await
        .unwrap();

    let listed = creditgate(&url, &["key", "list", "--tenant", "test"]).await;
    assert!(
        listed.status.success(),
        "{}",
        String::from_utf8_lossy(&listed.stderr)
    );
    let listing = String::from_utf8(listed.stdout).unwrap();
    assert!(!listing.contains(&secret), "the list shows a secret");
    let line = listing
        .lines()
        .find(|line| line.starts_with(&key_id))
        .unwrap_or_else(|| panic!("{key_id} is not listed:\n{listing}"));
    let columns: Vec<&str> = line.split_whitespace().collect();
    assert_eq!(columns[2], "reader");
    assert_ne!(columns[4], "-", "last used is shown: {line}");
    assert_eq!(columns[5], "-", "not revoked yet: {line}");

    let revoked = creditgate(&url, &["key", "revoke", &key_id]).await;
    assert!(
        revoked.status.success(),
        "{}",
        String::from_utf8_lossy(&revoked.stderr)
    );
    let again = creditgate(&url, &["key", "revoke", &key_id]).await;
    assert!(!again.status.success(), "a key is revoked once");
    let listing = String::from_utf8(
        creditgate(&url, &["key", "list", "--tenant", "test"])
            .await
            .stdout,
    )
    .unwrap();
    let line = listing
        .lines()
        .find(|line| line.starts_with(&key_id))
        .unwrap();
    assert_ne!(
        line.split_whitespace().nth(5),
        Some("-"),
        "revoked is shown: {line}"
    );

    // A server that has not cached the key (another replica, or this one after
    // --key-cache-seconds) refuses it.
    let replica = app.replica().await;
    let refused = replica
        .account_as(Some(&secret))
        .get_balance(creditgate::proto::v1::GetBalanceRequest::default())
        .await
        .unwrap_err();
    assert_eq!(refused.code(), tonic::Code::Unauthenticated);
    replica.stop().await;
    app.finish().await;
}
