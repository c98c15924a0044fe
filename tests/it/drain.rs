//! SIGTERM drains a server: health turns NOT_SERVING at once for the server and each service,
//! event streams end with UNAVAILABLE / SERVER_DRAINING so their clients resume elsewhere,
//! calls are still answered until the drain period ends, then the process exits cleanly.

use std::time::Duration;

use creditgate::proto::v1::account_service_client::AccountServiceClient;
use creditgate::proto::v1::{GetBalanceRequest, WatchEventsRequest};
use tonic::transport::Channel;
use tonic_health::pb::HealthCheckRequest;
use tonic_health::pb::health_check_response::ServingStatus;
use tonic_health::pb::health_client::HealthClient;

use crate::helpers::TestApp;
use crate::helpers::server_process::Serve;
use crate::helpers::status::reason;

/// Long enough to observe the drain window, short enough for the suite.
const DRAIN_MS: &str = "3000";

async fn status(health: &mut HealthClient<Channel>, service: &str) -> ServingStatus {
    health
        .check(HealthCheckRequest {
            service: service.to_owned(),
        })
        .await
        .unwrap()
        .into_inner()
        .status()
}

#[tokio::test]
async fn sigterm_turns_health_not_serving_ends_streams_then_exits() {
    let app = TestApp::spawn().await;
    let account_id = app.account().await;
    let running = Serve::listen("127.0.0.1:0")
        .env("DATABASE_URL", &app.database_url())
        .env("CREDITGATE_DRAIN_MS", DRAIN_MS)
        .env("RUST_LOG", "error")
        .start()
        .await;
    let channel = Channel::from_shared(format!("http://{}", running.address))
        .unwrap()
        .connect()
        .await
        .unwrap();
    let mut health = HealthClient::new(channel.clone());
    assert_eq!(status(&mut health, "").await, ServingStatus::Serving);
    let key = format!("Bearer {}", app.key);
    let mut accounts =
        AccountServiceClient::with_interceptor(channel, move |mut request: tonic::Request<()>| {
            request
                .metadata_mut()
                .insert("authorization", key.parse().unwrap());
            Ok(request)
        });
    let mut stream = accounts
        .watch_events(WatchEventsRequest::default())
        .await
        .unwrap()
        .into_inner();

    running.terminate();
    // The stream ends first, telling its client to resume elsewhere.
    let ended = tokio::time::timeout(Duration::from_secs(10), stream.message())
        .await
        .expect("the stream did not end on SIGTERM")
        .unwrap_err();
    assert_eq!(ended.code(), tonic::Code::Unavailable);
    assert_eq!(reason(&ended).as_deref(), Some("SERVER_DRAINING"));
    // Health is NOT_SERVING for the server and each service, while calls are still answered.
    for service in [
        "",
        "creditgate.v1.CreditService",
        "creditgate.v1.AccountService",
    ] {
        assert_eq!(
            status(&mut health, service).await,
            ServingStatus::NotServing,
            "{service:?}"
        );
    }
    accounts
        .get_balance(GetBalanceRequest {
            account_id: account_id.clone(),
            ..GetBalanceRequest::default()
        })
        .await
        .expect("calls are answered during the drain period");
    // Then it exits cleanly (stop checks the exit status; its SIGTERM is a repeat).
    running.stop().await;
    app.finish().await;
}
