//! Answers after a fault: a broken database connection is UNAVAILABLE (retry with the same
//! key), never INTERNAL; a hold the database lost is HOLD_NOT_FOUND on every server.

use std::net::SocketAddr;
use std::time::Duration;

use clap::Parser as _;
use creditgate::config::ServeSettings;
use creditgate::proto::v1::credit_service_client::CreditServiceClient;
use creditgate::proto::v1::{AuthorizeRequest, GrantSource, authorize_request};
use creditgate::store::{PoolLimits, connect_pool};
use tokio::io::AsyncReadExt as _;
use tokio::net::TcpListener;

use crate::helpers::money::key;
use crate::helpers::{TestApp, reason};

#[tokio::test]
async fn a_postgres_crash_is_answered_unavailable_never_internal() {
    let internal = crate::faults::crash_postgres_under_load().await;
    assert_eq!(internal, Vec::<String>::new());
}

/// Settings of `serve`, parsed as the binary parses them.
#[derive(clap::Parser)]
struct Serve {
    #[command(flatten)]
    serve: ServeSettings,
}

/// A "database" that reads the startup message of each connection and then resets it
/// (SO_LINGER 0), as a Postgres killed by an immediate shutdown does.
async fn resetting_database() -> SocketAddr {
    let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let address = listener.local_addr().unwrap();
    tokio::spawn(async move {
        loop {
            let (mut stream, _) = listener.accept().await.unwrap();
            let mut startup = [0_u8; 8];
            let _ = stream.read(&mut startup).await;
            stream.set_zero_linger().unwrap();
        }
    });
    address
}

#[tokio::test]
async fn a_reset_database_connection_is_answered_unavailable() {
    let database = resetting_database().await;
    let mut config = tokio_postgres::Config::new();
    config
        .host("127.0.0.1")
        .port(database.port())
        .user("creditgate")
        .dbname("creditgate");
    let limits = PoolLimits {
        max_connections: 2,
        statement_timeout: Duration::from_secs(5),
        lock_timeout: Duration::from_secs(5),
        acquire_timeout: Duration::from_secs(5),
    };
    let pool = connect_pool(config, limits).unwrap();
    let settings = Serve::parse_from(["serve", "--listen", "127.0.0.1:0"]).serve;
    let context = creditgate::app::context(pool, &settings).unwrap();
    let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let address = listener.local_addr().unwrap();
    tokio::spawn(async move {
        creditgate::app::serve(listener, context, &settings, std::future::pending()).await
    });

    let mut client = CreditServiceClient::connect(format!("http://{address}"))
        .await
        .unwrap();
    let mut request = tonic::Request::new(AuthorizeRequest {
        account_id: uuid::Uuid::now_v7().to_string(),
        idempotency_key: key(),
        price: Some(authorize_request::Price::Amount("1".to_owned())),
        ..AuthorizeRequest::default()
    });
    request
        .metadata_mut()
        .insert("authorization", "Bearer cg_unchecked".parse().unwrap());
    let status = client.authorize(request).await.unwrap_err();
    assert_eq!(
        (status.code(), status.message()),
        (
            tonic::Code::Unavailable,
            "the database is unavailable; retry with the same idempotency key"
        )
    );
}

#[tokio::test]
async fn a_settle_of_a_hold_the_database_lost_is_answered_hold_not_found() {
    let app = TestApp::spawn().await;
    let account_id = app.account().await;
    app.grant(&account_id, GrantSource::Purchase, "10").await;
    let hold_id = app
        .authorize(&account_id, "2")
        .await
        .unwrap()
        .hold
        .unwrap()
        .hold_id;
    // The hold is gone as after a failover to a replica that lagged, or a restore: the
    // server that made it still remembers it.
    let client = app.pool.get().await.unwrap();
    client
        .batch_execute(&format!(
            "DELETE FROM hold_allocations WHERE hold_id = '{hold_id}';
             DELETE FROM holds WHERE hold_id = '{hold_id}';"
        ))
        .await
        .unwrap();

    let elsewhere = app.replica().await.settle(&hold_id, "1", false).await;
    assert_eq!(
        elsewhere.map_err(|status| reason(&status)).err(),
        Some(Some("HOLD_NOT_FOUND".to_owned())),
        "a server that never saw the hold"
    );
    let here = app.settle(&hold_id, "1", false).await;
    assert_eq!(
        here.map_err(|status| reason(&status)).err(),
        Some(Some("HOLD_NOT_FOUND".to_owned())),
        "the server that made the hold"
    );
}
