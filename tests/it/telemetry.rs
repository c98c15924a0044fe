//! Telemetry of a `creditgate serve` process: the spans it exports over OTLP/gRPC to a
//! receiver run by the test, and the metrics it serves to a Prometheus scrape.

mod metrics;
mod receiver;
mod traces;

use creditgate::proto::v1::account_service_client::AccountServiceClient;

use crate::helpers::Authed;
use crate::helpers::money::{grant_request, key, new_account};
use crate::helpers::server_process::{Running, Serve};

/// A free port of the loopback interface, for an address the server must print nowhere.
fn free_address() -> std::net::SocketAddr {
    std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
}

/// `serve` on `database_url` with `configure` applied, and a channel to it.
async fn serve(
    database_url: &str,
    configure: impl FnOnce(Serve) -> Serve,
) -> (Running, tonic::transport::Channel) {
    let serve = Serve::listen("127.0.0.1:0")
        .args([
            "--db-pool-size",
            "4",
            "--sweep-interval-ms",
            "100",
            "--drain-ms",
            "0",
        ])
        .env("DATABASE_URL", database_url)
        .env("RUST_LOG", "error");
    let running = configure(serve).start().await;
    let channel = tonic::transport::Channel::from_shared(format!("http://{}", running.address))
        .unwrap()
        .connect()
        .await
        .unwrap();
    (running, channel)
}

/// A new account of the key's tenant, holding `credits`.
async fn funded_account(account: &mut AccountServiceClient<Authed>, credits: &str) -> String {
    let account_id = new_account(account).await;
    account
        .grant(grant_request(&account_id, &key(), credits))
        .await
        .unwrap();
    account_id
}
