//! `creditgate serve` with no DATABASE_URL: it runs its own Postgres in the data folder,
//! creates the demo tenant once, reuses the folder on the next start and stops Postgres on
//! shutdown.

use std::os::unix::fs::PermissionsExt as _;
use std::path::Path;
use std::time::Duration;

use creditgate::proto::v1::credit_service_client::CreditServiceClient;
use creditgate::proto::v1::{QuoteRequest, Usage};
use tokio::process::Command;
use tonic_health::pb::HealthCheckRequest;
use tonic_health::pb::health_check_response::ServingStatus;
use tonic_health::pb::health_client::HealthClient;

use crate::helpers::server_process::{Running, Serve};

/// Bound on a start and a stop (a first start initialises a cluster), so a broken build fails
/// instead of hanging.
const START_LIMIT: Duration = Duration::from_secs(120);

async fn start_serve(data_dir: &Path) -> Running {
    Serve::listen("127.0.0.1:0")
        .data_dir(data_dir)
        .limit(START_LIMIT)
        .start()
        .await
}

async fn assert_answers(address: std::net::SocketAddr, key: &str) {
    let channel = tonic::transport::Channel::from_shared(format!("http://{address}"))
        .unwrap()
        .connect()
        .await
        .unwrap();
    let health = HealthClient::new(channel.clone())
        .check(HealthCheckRequest::default())
        .await
        .unwrap()
        .into_inner();
    assert_eq!(health.status(), ServingStatus::Serving);
    let mut credit = CreditServiceClient::new(channel);
    let anonymous = credit.quote(QuoteRequest::default()).await.unwrap_err();
    assert_eq!(anonymous.code(), tonic::Code::Unauthenticated);
    // The demo tenant starts with the default catalog: o3-pro, 10k in + 10k out = 2.5 credits.
    let mut request = tonic::Request::new(QuoteRequest {
        model: "openai/o3-pro".to_owned(),
        usage: Some(Usage {
            input_tokens: 10_000,
            output_tokens: 10_000,
            ..Usage::default()
        }),
        ..QuoteRequest::default()
    });
    request
        .metadata_mut()
        .insert("authorization", format!("Bearer {key}").parse().unwrap());
    let quote = credit.quote(request).await.unwrap().into_inner();
    assert_eq!(quote.total, "2.5");
    assert_eq!(quote.catalog_version, 1);
}

#[tokio::test]
async fn serve_runs_a_private_postgres_and_reuses_it_on_restart() {
    let folder = tempfile::tempdir().unwrap();
    // As root the private Postgres runs as `postgres`, which must be able to enter the folder.
    std::fs::set_permissions(folder.path(), std::fs::Permissions::from_mode(0o755)).unwrap();
    let data_dir = folder.path().join("data");

    let first = start_serve(&data_dir).await;
    assert!(
        first
            .stdout
            .iter()
            .any(|line| line.contains("created tenant `demo`")),
        "{:?}",
        first.stdout
    );
    assert!(
        first
            .stdout
            .iter()
            .any(|line| line.starts_with("try: grpcurl")),
        "{:?}",
        first.stdout
    );
    let key = std::fs::read_to_string(data_dir.join("demo-api-key")).unwrap();
    let key = key.trim().to_owned();
    assert!(first.stdout.iter().any(|line| line.contains(&key)));
    assert_answers(first.address, &key).await;
    first.stop().await;
    assert!(
        !data_dir.join("pgdata/postmaster.pid").exists(),
        "postgres must be stopped when serve exits"
    );

    let second = start_serve(&data_dir).await;
    assert!(
        !second
            .stdout
            .iter()
            .any(|line| line.contains("created tenant")),
        "{:?}",
        second.stdout
    );
    assert_eq!(
        std::fs::read_to_string(data_dir.join("demo-api-key"))
            .unwrap()
            .trim(),
        key
    );
    assert_answers(second.address, &key).await;
    second.stop().await;
}

#[tokio::test]
async fn serve_without_postgres_binaries_says_how_to_install_them() {
    let folder = tempfile::tempdir().unwrap();
    let output = Command::new(env!("CARGO_BIN_EXE_creditgate"))
        .args(["serve", "--listen", "127.0.0.1:0", "--pg-bin-dir"])
        .arg(folder.path())
        .arg("--data-dir")
        .arg(folder.path().join("data"))
        .env_remove("DATABASE_URL")
        .output()
        .await
        .unwrap();
    assert!(!output.status.success());
    let stderr = String::from_utf8_lossy(&output.stderr);
    let error_lines: Vec<&str> = stderr
        .lines()
        .filter(|line| line.starts_with("error:"))
        .collect();
    assert_eq!(error_lines.len(), 1, "{stderr}");
    assert!(
        error_lines[0].contains("apt-get install -y postgresql"),
        "{stderr}"
    );
}

/// A server started while the one before it still drains joins the Postgres that one started;
/// when that one stops it on its way out, the server that joined starts it again on the same
/// port, where its pool finds it, and from then on stops it itself.
#[tokio::test]
async fn a_private_postgres_joined_is_started_again_when_its_starter_stops_it() {
    use creditgate::store::cluster::{self, ClusterOptions, PrivateCluster};
    let folder = tempfile::tempdir().unwrap();
    std::fs::set_permissions(folder.path(), std::fs::Permissions::from_mode(0o755)).unwrap();
    let options = ClusterOptions {
        data_dir: folder.path().join("data"),
        bin_dir: None,
        durable: false,
    };
    let starter = PrivateCluster::start(&options).await.unwrap();
    let mut joined = PrivateCluster::start(&options).await.unwrap();
    assert!(starter.started_here() && !joined.started_here());
    let config = joined.connection().config(cluster::DATABASE);
    let answers = || async {
        let (client, connection) = config.connect(tokio_postgres::NoTls).await?;
        tokio::spawn(connection);
        client.simple_query("SELECT 1").await.map(|_| ())
    };
    answers().await.unwrap();
    starter.stop().await;
    assert!(
        answers().await.is_err(),
        "stopped by the process that started it"
    );
    assert!(joined.keep_running().await.unwrap());
    assert!(joined.started_here());
    answers().await.unwrap();
    assert!(
        !joined.keep_running().await.unwrap(),
        "running: nothing to do"
    );
    joined.stop().await;
    assert!(
        answers().await.is_err(),
        "stopped by the process that runs it now"
    );
}
