//! The Prometheus endpoint: every family there, parsed as Prometheus parses it, moving with
//! the calls, and no label that names a tenant, an account or a key.

use std::collections::BTreeSet;
use std::time::Duration;

use creditgate::proto::v1::account_service_client::AccountServiceClient;
use creditgate::proto::v1::credit_service_client::CreditServiceClient;
use prometheus_parse::{Sample, Scrape, Value};
use tokio::io::{AsyncReadExt as _, AsyncWriteExt as _};

use crate::helpers::money::{authorize_request, key};
use crate::helpers::{BearerKey, fresh_database, tenant_key};

/// Every family the endpoint must serve.
const FAMILIES: &[&str] = &[
    "creditgate_rpc_duration_seconds",
    "creditgate_group_commit_operations",
    "creditgate_group_commit_accounts",
    "creditgate_group_commit_transactions_in_flight",
    "creditgate_lock_duration_seconds",
    "creditgate_commit_duration_seconds",
    "creditgate_db_pool_in_use",
    "creditgate_db_pool_waiting",
    "creditgate_holds_active",
    "creditgate_sweeper_runs_total",
    "creditgate_sweeper_work_total",
    "creditgate_events_broadcast_total",
    "creditgate_events_lag_seconds",
    "creditgate_spans_dropped_total",
    "creditgate_allowances_reread_total",
];
/// The only labels a creditgate sample may carry: bounded sets.
const BOUNDED_LABELS: &[&str] = &["method", "code", "outcome", "kind"];

/// `GET /metrics` over HTTP/1.0, parsed.
pub(super) async fn scrape(address: std::net::SocketAddr) -> Scrape {
    let mut stream = tokio::net::TcpStream::connect(address).await.unwrap();
    stream
        .write_all(b"GET /metrics HTTP/1.0\r\nHost: creditgate\r\n\r\n")
        .await
        .unwrap();
    let mut answer = String::new();
    stream.read_to_string(&mut answer).await.unwrap();
    let (head, body) = answer.split_once("\r\n\r\n").unwrap();
    assert!(
        head.starts_with("HTTP/1.0 200") || head.starts_with("HTTP/1.1 200"),
        "{head}"
    );
    assert!(
        head.to_lowercase()
            .contains("content-type: text/plain; version=0.0.4")
    );
    Scrape::parse(body.lines().map(|line| Ok(line.to_owned()))).unwrap()
}

/// How many RPCs of `method` answered `code` (the histogram's count).
fn rpcs(scrape: &Scrape, method: &str, code: &str) -> f64 {
    scrape
        .samples
        .iter()
        .filter(|sample| sample.metric == "creditgate_rpc_duration_seconds")
        .filter(|sample| {
            sample.labels.get("method") == Some(method) && sample.labels.get("code") == Some(code)
        })
        .map(histogram_count)
        .sum()
}

fn histogram_count(sample: &Sample) -> f64 {
    match &sample.value {
        Value::Histogram(buckets) => buckets
            .iter()
            .map(|bucket| bucket.count)
            .fold(0.0, f64::max),
        other => panic!("{} is not a histogram: {other:?}", sample.metric),
    }
}

fn value(scrape: &Scrape, metric: &str, label: Option<(&str, &str)>) -> f64 {
    scrape
        .samples
        .iter()
        .filter(|sample| sample.metric == metric)
        .filter(|sample| label.is_none_or(|(name, value)| sample.labels.get(name) == Some(value)))
        .map(|sample| match &sample.value {
            Value::Counter(value) | Value::Gauge(value) | Value::Untyped(value) => *value,
            Value::Histogram(_) => histogram_count(sample),
            Value::Summary(_) => panic!("{metric} is a summary"),
        })
        .sum()
}

#[tokio::test]
async fn the_endpoint_serves_every_family_and_counters_move_with_calls() {
    let database = fresh_database().await;
    let api_key = tenant_key(&database, "measured").await;
    let metrics_address = super::free_address();
    let (running, channel) = super::serve(&database.url(), |serve| {
        serve.args(["--metrics-listen", &metrics_address.to_string()])
    })
    .await;
    let mut account =
        AccountServiceClient::with_interceptor(channel.clone(), BearerKey::for_key(&api_key));
    let mut credit = CreditServiceClient::with_interceptor(channel, BearerKey::for_key(&api_key));
    let authorize_path = "creditgate.v1.CreditService/Authorize";
    let before = scrape(metrics_address).await;

    let account_id = super::funded_account(&mut account, "100").await;
    for _ in 0..3 {
        credit
            .authorize(authorize_request(&account_id, &key(), "10"))
            .await
            .unwrap();
    }
    let refused = credit
        .authorize(authorize_request(&account_id, &key(), "not an amount"))
        .await
        .unwrap_err();
    assert_eq!(refused.code(), tonic::Code::InvalidArgument);
    // The sweeper (every 100 ms here) and the event reader report on their own pace.
    tokio::time::sleep(Duration::from_millis(1_500)).await;
    let after = scrape(metrics_address).await;

    let present: BTreeSet<&str> = after
        .samples
        .iter()
        .map(|sample| sample.metric.as_str())
        .collect();
    for family in FAMILIES {
        assert!(
            present.contains(family),
            "{family} missing from {present:?}"
        );
    }
    assert_eq!(
        rpcs(&after, authorize_path, "OK") - rpcs(&before, authorize_path, "OK"),
        3.0
    );
    assert_eq!(
        rpcs(&after, authorize_path, "INVALID_ARGUMENT")
            - rpcs(&before, authorize_path, "INVALID_ARGUMENT"),
        1.0
    );
    let transactions = |scrape: &Scrape| value(scrape, "creditgate_commit_duration_seconds", None);
    assert!(transactions(&after) >= transactions(&before) + 4.0);
    assert!(value(&after, "creditgate_group_commit_operations", None) >= 4.0);
    assert!(
        value(
            &after,
            "creditgate_sweeper_runs_total",
            Some(("outcome", "ok"))
        ) > 0.0
    );
    assert!(value(&after, "creditgate_events_broadcast_total", None) > 0.0);
    assert!(value(&after, "creditgate_holds_active", None) >= 0.0);

    for sample in after
        .samples
        .iter()
        .filter(|sample| sample.metric.starts_with("creditgate_"))
    {
        for (label, _) in sample.labels.iter() {
            assert!(
                BOUNDED_LABELS.contains(&label.as_str()),
                "{} has the label {label}",
                sample.metric
            );
        }
    }
    running.stop().await;
}
