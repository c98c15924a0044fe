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
