//! Spans exported over OTLP/gRPC: one per RPC named after its method, with its code and the
//! ids it touched (never the key), continuing the caller's `traceparent`, with the lock and
//! commit round trips as its children.

use creditgate::proto::v1::account_service_client::AccountServiceClient;
use creditgate::proto::v1::credit_service_client::CreditServiceClient;
use creditgate::proto::v1::{GetBalanceRequest, GetHoldRequest, get_hold_request};
use opentelemetry_proto::tonic::trace::v1::Span;

use super::receiver::{Receiver, attribute};
use crate::helpers::money::{
    authorize_request, create_account_request, key, refund_request, settle_request,
};
use crate::helpers::{BearerKey, fresh_database, tenant_key};

/// The caller's trace and span, as a worker would send them.
const TRACE_ID: &str = "4bf92f3577b34da6a3ce929d0e0e4736";
const CALLER_SPAN_ID: &str = "00f067aa0ba902b7";

/// `request` carrying the caller's `traceparent`.
fn traced<T>(request: T) -> tonic::Request<T> {
    let mut request = tonic::Request::new(request);
    request.metadata_mut().insert(
        "traceparent",
        format!("00-{TRACE_ID}-{CALLER_SPAN_ID}-01")
            .parse()
            .unwrap(),
    );
    request
}

fn named<'a>(spans: &'a [Span], name: &str) -> Vec<&'a Span> {
    spans.iter().filter(|span| span.name == name).collect()
}

#[tokio::test]
async fn rpcs_are_spans_continuing_the_callers_trace_with_their_round_trips() {
    let (receiver, endpoint) = Receiver::start().await;
    let database = fresh_database().await;
    let api_key = tenant_key(&database, "traced").await;
    let (running, channel) = super::serve(&database.url(), |serve| {
        serve
            .env("OTEL_EXPORTER_OTLP_ENDPOINT", &endpoint)
            .env("OTEL_METRIC_EXPORT_INTERVAL", "200")
    })
    .await;
    let mut account =
        AccountServiceClient::with_interceptor(channel.clone(), BearerKey::for_key(&api_key));
    let mut credit = CreditServiceClient::with_interceptor(channel, BearerKey::for_key(&api_key));

    let account_id = super::funded_account(&mut account, "100").await;
    let hold_id = credit
        .authorize(authorize_request(&account_id, &key(), "10"))
        .await
        .unwrap()
        .into_inner()
        .hold
        .unwrap()
        .hold_id;
    let settled = credit
        .settle(traced(settle_request(&hold_id, &key(), "4")))
        .await
        .unwrap()
        .into_inner();
    let settlement_id = settled.settlement.unwrap().settlement_id;
    credit
        .refund(refund_request(&settlement_id, &key(), "1"))
        .await
        .unwrap();
    account
        .get_balance(GetBalanceRequest {
            account_id: account_id.clone(),
            expiring_within_days: 0,
        })
        .await
        .unwrap();
    let missing = credit
        .get_hold(GetHoldRequest {
            lookup: Some(get_hold_request::Lookup::HoldId(
                uuid::Uuid::now_v7().to_string(),
            )),
            ..Default::default()
        })
        .await
        .unwrap_err();
    assert_eq!(missing.code(), tonic::Code::NotFound);

    let spans = receiver
        .wait_for(|spans| {
            !named(spans, "creditgate.v1.CreditService/GetHold").is_empty()
                && !named(spans, "creditgate.v1.AccountService/GetBalance").is_empty()
                && !named(spans, "creditgate.v1.CreditService/Refund").is_empty()
                && named(spans, "commit").len() >= 4
        })
        .await;

    // The Settle continues the caller's trace, under the caller's span.
    let settle = named(&spans, "creditgate.v1.CreditService/Settle");
    assert_eq!(settle.len(), 1, "one span per call");
    let settle = settle[0];
    assert_eq!(hex::encode(&settle.trace_id), TRACE_ID);
    assert_eq!(hex::encode(&settle.parent_span_id), CALLER_SPAN_ID);
    assert_eq!(settle.kind, 2, "a server span");
    assert_eq!(attribute(settle, "rpc.system").as_deref(), Some("grpc"));
    assert_eq!(
        attribute(settle, "rpc.method").as_deref(),
        Some("creditgate.v1.CreditService/Settle")
    );
    assert_eq!(
        attribute(settle, "rpc.grpc.status_code").as_deref(),
        Some("0")
    );
    assert_eq!(attribute(settle, "account_id"), Some(account_id.clone()));
    assert_eq!(attribute(settle, "hold_id"), Some(hold_id));
    assert!(attribute(settle, "tenant_id").is_some());

    // Its lock and commit round trips are its children.
    for round_trip in ["lock", "commit"] {
        let children: Vec<&Span> = named(&spans, round_trip)
            .into_iter()
            .filter(|span| span.parent_span_id == settle.span_id)
            .collect();
        assert_eq!(children.len(), 1, "the settle's {round_trip} round trip");
        assert_eq!(children[0].trace_id, settle.trace_id);
        assert!(children[0].end_time_unix_nano >= children[0].start_time_unix_nano);
    }

    // Without a traceparent a call starts its own trace.
    let authorize = named(&spans, "creditgate.v1.CreditService/Authorize")[0];
    assert!(authorize.parent_span_id.is_empty());
    assert_ne!(hex::encode(&authorize.trace_id), TRACE_ID);

    let refund = named(&spans, "creditgate.v1.CreditService/Refund")[0];
    assert_eq!(attribute(refund, "settlement_id"), Some(settlement_id));

    // A read names its account too.
    let balance = named(&spans, "creditgate.v1.AccountService/GetBalance")[0];
    assert_eq!(attribute(balance, "account_id"), Some(account_id.clone()));

    let get_hold = named(&spans, "creditgate.v1.CreditService/GetHold")[0];
    assert_eq!(
        attribute(get_hold, "rpc.grpc.status_code").as_deref(),
        Some("5")
    );

    // The metrics go the same way.
    receiver.wait_for_metric("creditgate.rpc.duration").await;
    receiver.wait_for_metric("creditgate.commit.duration").await;

    // The key is nowhere, not even in part.
    let secret_part = &api_key[api_key.len() - 16..];
    for span in &spans {
        for attribute in &span.attributes {
            let value = format!("{:?}", attribute.value);
            assert!(
                !value.contains(secret_part),
                "{} carries the key",
                attribute.key
            );
        }
    }
    running.stop().await;
}

#[tokio::test]
async fn a_collector_that_hangs_never_slows_a_call_and_its_spans_are_dropped_and_counted() {
    let database = fresh_database().await;
    let api_key = tenant_key(&database, "untraced").await;
    // Accepts connections and never answers: every export waits for its timeout.
    let collector = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let endpoint = format!("http://{}", collector.local_addr().unwrap());
    let held = tokio::spawn(async move {
        let mut connections = Vec::new();
        while let Ok((connection, _)) = collector.accept().await {
            connections.push(connection);
        }
    });
    let metrics_address = super::free_address();
    let (running, channel) = super::serve(&database.url(), |serve| {
        serve
            .env("OTEL_EXPORTER_OTLP_ENDPOINT", &endpoint)
            .env("OTEL_BSP_MAX_QUEUE_SIZE", "16")
            .args(["--metrics-listen", &metrics_address.to_string()])
    })
    .await;
    let mut account = AccountServiceClient::with_interceptor(channel, BearerKey::for_key(&api_key));
    let started = std::time::Instant::now();
    for _ in 0..40 {
        account
            .create_account(traced(create_account_request(&key(), &key())))
            .await
            .unwrap();
    }
    assert!(
        started.elapsed() < std::time::Duration::from_secs(10),
        "calls waited for the collector: {:?}",
        started.elapsed()
    );
    let scrape = super::metrics::scrape(metrics_address).await;
    let dropped: f64 = scrape
        .samples
        .iter()
        .filter(|sample| sample.metric == "creditgate_spans_dropped_total")
        .map(|sample| match sample.value {
            prometheus_parse::Value::Counter(value) => value,
            _ => 0.0,
        })
        .sum();
    assert!(dropped > 0.0, "40 calls' spans fit a queue of 16");
    running.stop().await;
    held.abort();
}

/// The `operations` attribute of a round trip's span.
fn operations(span: &Span) -> usize {
    attribute(span, "operations").unwrap().parse().unwrap()
}

#[tokio::test]
async fn a_shared_transactions_round_trips_link_to_at_most_sixteen_of_the_calls_it_served() {
    const LINKS: usize = 16;
    const CONCURRENT: usize = 60;
    let (receiver, endpoint) = Receiver::start().await;
    let database = fresh_database().await;
    let api_key = tenant_key(&database, "grouped").await;
    let (running, channel) = super::serve(&database.url(), |serve| {
        serve.env("OTEL_EXPORTER_OTLP_ENDPOINT", &endpoint)
    })
    .await;
    let mut account =
        AccountServiceClient::with_interceptor(channel.clone(), BearerKey::for_key(&api_key));
    let credit = CreditServiceClient::with_interceptor(channel, BearerKey::for_key(&api_key));
    let account_id = super::funded_account(&mut account, "100000").await;

    // Calls sent together on one account share transactions; a few rounds make one that
    // serves more calls than a span keeps links to.
    let mut sent = 0;
    let mut spans = Vec::new();
    for _ in 0..10 {
        futures::future::join_all((0..CONCURRENT).map(|_| {
            let mut credit = credit.clone();
            let request = authorize_request(&account_id, &key(), "1");
            async move { credit.authorize(request).await.unwrap() }
        }))
        .await;
        sent += CONCURRENT;
        spans = receiver
            .wait_for(|spans| {
                named(spans, "creditgate.v1.CreditService/Authorize").len() == sent
                    && named(spans, "commit")
                        .iter()
                        .map(|span| operations(span))
                        .sum::<usize>()
                        >= sent
            })
            .await;
        if named(&spans, "lock")
            .iter()
            .any(|span| operations(span) > LINKS + 1)
        {
            break;
        }
    }
    let round_trips: Vec<&Span> = ["lock", "commit"]
        .into_iter()
        .flat_map(|name| named(&spans, name))
        .collect();
    assert!(
        round_trips.iter().any(|span| operations(span) > LINKS + 1),
        "no transaction served more than {} calls in 10 rounds of {CONCURRENT}",
        LINKS + 1
    );
    // Each is the child of its first call, linked to the next ones, at most 16.
    for span in round_trips {
        assert_eq!(
            span.links.len(),
            (operations(span) - 1).min(LINKS),
            "{} of {} operations",
            span.name,
            operations(span)
        );
    }
    running.stop().await;
}
