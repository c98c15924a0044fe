//! The Node example (examples/node, @grpc/grpc-js with stubs loaded from proto/) against a real
//! server: it quotes, authorizes, settles and reads the balance, and its numbers must agree with
//! the server's. Needs `node` (and `npm` when examples/node/node_modules is missing); on a
//! machine without them the test prints why on stderr and passes.

use std::path::{Path, PathBuf};
use std::process::Output;
use std::time::Duration;

use creditgate::auth::Scope;
use creditgate::proto::v1::{GetBalanceRequest, QuoteRequest, Usage};
use rust_decimal::Decimal;
use tokio::process::Command;

use crate::helpers::TestApp;

/// `npm ci` downloads two packages and their few dependencies; a cold cache on a slow link.
const NPM_CI_TIMEOUT: Duration = Duration::from_secs(300);
/// The example makes five calls; it starts in well under a second.
const EXAMPLE_TIMEOUT: Duration = Duration::from_secs(60);

fn example_dir() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("examples/node")
}

/// Runs `program args` in `dir`; None when the program is not installed.
async fn run(program: &str, args: &[&str], dir: &Path, timeout: Duration) -> Option<Output> {
    let child = Command::new(program)
        .args(args)
        .current_dir(dir)
        .kill_on_drop(true)
        .output();
    match tokio::time::timeout(timeout, child).await {
        Err(_) => panic!(
            "`{program} {}` did not finish in {timeout:?}",
            args.join(" ")
        ),
        Ok(Err(error)) if error.kind() == std::io::ErrorKind::NotFound => None,
        Ok(Err(error)) => panic!("`{program}` could not start: {error}"),
        Ok(Ok(output)) => Some(output),
    }
}

fn assert_success(what: &str, output: &Output) {
    assert!(
        output.status.success(),
        "{what} failed ({}):\n{}\n{}",
        output.status,
        String::from_utf8_lossy(&output.stdout),
        String::from_utf8_lossy(&output.stderr)
    );
}

/// Installs the example's locked dependencies unless they are there; false when npm is absent.
async fn node_modules(dir: &Path) -> bool {
    if dir.join("node_modules/@grpc/grpc-js").is_dir()
        && dir.join("node_modules/@grpc/proto-loader").is_dir()
    {
        return true;
    }
    let args = ["ci", "--no-audit", "--no-fund", "--loglevel=error"];
    match run("npm", &args, dir, NPM_CI_TIMEOUT).await {
        None => false,
        Some(output) => {
            assert_success("npm ci", &output);
            true
        }
    }
}

fn decimal(result: &serde_json::Value, field: &str) -> Decimal {
    result[field]
        .as_str()
        .unwrap_or_else(|| panic!("result has no string {field}: {result}"))
        .parse()
        .unwrap()
}

#[tokio::test]
async fn the_node_client_quotes_authorizes_settles_and_reads_the_balance() {
    let dir = example_dir();
    if run("node", &["--version"], &dir, EXAMPLE_TIMEOUT)
        .await
        .is_none()
    {
        eprintln!("node_client: skipped, `node` is not installed");
        return;
    }
    if !node_modules(&dir).await {
        eprintln!(
            "node_client: skipped, `npm` is not installed and examples/node/node_modules is missing"
        );
        return;
    }
    let app = TestApp::spawn().await;
    // Exactly the scopes the example needs: accounts and grants, the money path, the balance.
    let key = app
        .key_with(&[Scope::Billing, Scope::Worker, Scope::Reader])
        .await;
    let address = app.address.to_string();
    let args = [
        "quote_to_settle.js",
        "--address",
        address.as_str(),
        "--key",
        key.as_str(),
    ];
    let output = run("node", &args, &dir, EXAMPLE_TIMEOUT).await.unwrap();
    assert_success("node quote_to_settle.js", &output);
    let stdout = String::from_utf8(output.stdout).unwrap();
    let result: serde_json::Value = stdout
        .lines()
        .find_map(|line| line.strip_prefix("result: "))
        .map(|json| serde_json::from_str(json).unwrap())
        .unwrap_or_else(|| panic!("no `result:` line in:\n{stdout}"));

    // The same usage quoted by the Rust client: the Node client priced and settled it alike.
    let settled_usage = Usage {
        input_tokens: 25_000,
        output_tokens: 5_000,
        ..Usage::default()
    };
    let expected = app
        .credit()
        .quote(QuoteRequest {
            model: "xai/grok-3-fast".to_owned(),
            usage: Some(settled_usage),
            ..QuoteRequest::default()
        })
        .await
        .unwrap()
        .into_inner()
        .total
        .parse::<Decimal>()
        .unwrap();
    assert_eq!(decimal(&result, "settled_total"), expected, "{stdout}");
    assert_eq!(
        decimal(&result, "hold_amount"),
        decimal(&result, "quote_total")
    );
    assert_eq!(
        decimal(&result, "available"),
        decimal(&result, "granted") - expected,
        "{stdout}"
    );
    assert_eq!(decimal(&result, "held"), Decimal::ZERO);

    // What the Node client read is what the server holds.
    let balance = app
        .clients()
        .account
        .get_balance(GetBalanceRequest {
            account_id: result["account_id"].as_str().unwrap().to_owned(),
            ..GetBalanceRequest::default()
        })
        .await
        .unwrap()
        .into_inner();
    assert_eq!(
        balance.available.parse::<Decimal>().unwrap(),
        decimal(&result, "available")
    );
    app.finish().await;
}
