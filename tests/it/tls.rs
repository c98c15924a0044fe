//! TLS with certificates made in the test: gRPC over TLS and mutual TLS from a `creditgate
//! serve` process, and Postgres over TLS on a cluster of the test's own with `ssl = on`, as
//! `sslmode` asks (`require`, `verify-ca`, `verify-full`), from the store and from `serve`.

use std::os::unix::fs::PermissionsExt as _;
use std::path::{Path, PathBuf};

use creditgate::proto::v1::GetBalanceRequest;
use creditgate::proto::v1::account_service_client::AccountServiceClient;
use creditgate::store::tls::{connector, parse_url};
use rcgen::{BasicConstraints, CertificateParams, CertifiedIssuer, IsCa, KeyPair};
use tonic::transport::{Certificate, Channel, ClientTlsConfig, Identity};
use tonic_health::pb::HealthCheckRequest;
use tonic_health::pb::health_client::HealthClient;

use crate::helpers::TestApp;
use crate::helpers::dedicated_cluster::DedicatedCluster;
use crate::helpers::server_process::Serve;

/// A CA and certificates it signed, as PEM files in a folder Postgres can read.
struct Pki {
    folder: tempfile::TempDir,
    issuer: CertifiedIssuer<'static, KeyPair>,
}

impl Pki {
    fn new() -> Pki {
        let folder = tempfile::tempdir().unwrap();
        std::fs::set_permissions(folder.path(), std::fs::Permissions::from_mode(0o755)).unwrap();
        let mut params = CertificateParams::new(Vec::<String>::new()).unwrap();
        params.is_ca = IsCa::Ca(BasicConstraints::Unconstrained);
        let issuer = CertifiedIssuer::self_signed(params, KeyPair::generate().unwrap()).unwrap();
        std::fs::write(folder.path().join("ca.pem"), issuer.pem()).unwrap();
        Pki { folder, issuer }
    }

    fn path(&self, name: &str) -> PathBuf {
        self.folder.path().join(name)
    }

    /// A certificate for `names` signed by the CA: (cert file, key file).
    fn issue(&self, name: &str, names: &[&str]) -> (PathBuf, PathBuf) {
        let key = KeyPair::generate().unwrap();
        let params = CertificateParams::new(
            names
                .iter()
                .map(|name| (*name).to_owned())
                .collect::<Vec<_>>(),
        )
        .unwrap();
        let cert = params.signed_by(&key, &self.issuer).unwrap();
        let (cert_path, key_path) = (
            self.path(&format!("{name}.crt")),
            self.path(&format!("{name}.key")),
        );
        std::fs::write(&cert_path, cert.pem()).unwrap();
        std::fs::write(&key_path, key.serialize_pem()).unwrap();
        std::fs::set_permissions(&key_path, std::fs::Permissions::from_mode(0o600)).unwrap();
        (cert_path, key_path)
    }
}

fn text(path: &Path) -> String {
    path.to_str().unwrap().to_owned()
}

#[tokio::test]
async fn grpc_over_tls_and_mutual_tls_refuse_what_they_must() {
    let app = TestApp::spawn().await;
    let pki = Pki::new();
    let (cert, key) = pki.issue("server", &["localhost", "127.0.0.1"]);
    let (client_cert, client_key) = pki.issue("client", &["worker-1"]);
    let running = Serve::listen("127.0.0.1:0")
        .env("DATABASE_URL", &app.database_url())
        .args([
            "--tls-cert",
            &text(&cert),
            "--tls-key",
            &text(&key),
            "--tls-client-ca",
            &text(&pki.path("ca.pem")),
        ])
        .start()
        .await;
    let ca = Certificate::from_pem(std::fs::read(pki.path("ca.pem")).unwrap());
    let endpoint = |tls: ClientTlsConfig| {
        Channel::from_shared(format!("https://localhost:{}", running.address.port()))
            .unwrap()
            .tls_config(tls)
            .unwrap()
    };
    let identity = Identity::from_pem(
        std::fs::read(&client_cert).unwrap(),
        std::fs::read(&client_key).unwrap(),
    );
    let channel = endpoint(
        ClientTlsConfig::new()
            .ca_certificate(ca.clone())
            .identity(identity)
            .domain_name("localhost"),
    )
    .connect()
    .await
    .expect("mutual TLS with a certificate the CA signed");
    HealthClient::new(channel.clone())
        .check(HealthCheckRequest::default())
        .await
        .unwrap();
    let key = format!("Bearer {}", app.key);
    let mut accounts =
        AccountServiceClient::with_interceptor(channel, move |mut request: tonic::Request<()>| {
            request
                .metadata_mut()
                .insert("authorization", key.parse().unwrap());
            Ok(request)
        });
    accounts
        .get_balance(GetBalanceRequest {
            account_id: app.account().await,
            ..GetBalanceRequest::default()
        })
        .await
        .unwrap();
    // Without a client certificate the handshake is refused.
    let anonymous = endpoint(
        ClientTlsConfig::new()
            .ca_certificate(ca)
            .domain_name("localhost"),
    )
    .connect()
    .await;
    let refused = match anonymous {
        Err(_) => true,
        Ok(channel) => HealthClient::new(channel)
            .check(HealthCheckRequest::default())
            .await
            .is_err(),
    };
    assert!(refused, "a client without a certificate was served");
    // Plaintext is not served.
    let plain = Channel::from_shared(format!("http://127.0.0.1:{}", running.address.port()))
        .unwrap()
        .connect()
        .await;
    let refused = match plain {
        Err(_) => true,
        Ok(channel) => HealthClient::new(channel)
            .check(HealthCheckRequest::default())
            .await
            .is_err(),
    };
    assert!(refused, "plaintext was served");
    running.stop().await;
    app.finish().await;
}

/// Turns `ssl = on` with a certificate for `names`, and returns the cluster's URL parts.
async fn enable_ssl(database: &crate::helpers::TestDatabase, pki: &Pki, names: &[&str]) {
    let (cert, key) = pki.issue("postgres", names);
    if nix::unistd::Uid::effective().is_root() {
        let user = nix::unistd::User::from_name("postgres").unwrap().unwrap();
        for path in [&cert, &key] {
            nix::unistd::chown(path, Some(user.uid), Some(user.gid)).unwrap();
        }
    }
    let client = database.pool.get().await.unwrap();
    for (setting, value) in [
        ("ssl_cert_file", text(&cert)),
        ("ssl_key_file", text(&key)),
        ("ssl", "on".to_owned()),
    ] {
        client
            .batch_execute(&format!("ALTER SYSTEM SET {setting} = '{value}'"))
            .await
            .unwrap();
    }
    client
        .batch_execute("SELECT pg_reload_conf()")
        .await
        .unwrap();
}

async fn uses_tls(url: &str) -> Result<bool, String> {
    let (config, tls) = parse_url(url)?;
    let (client, driver) = config
        .connect(connector(&tls)?.make())
        .await
        .map_err(|error| error.to_string())?;
    tokio::spawn(driver);
    let row = client
        .query_one(
            "SELECT ssl FROM pg_stat_ssl WHERE pid = pg_backend_pid()",
            &[],
        )
        .await
        .map_err(|error| error.to_string())?;
    Ok(row.get(0))
}

#[tokio::test]
async fn postgres_over_tls_follows_sslmode() {
    let (_cluster, database) = DedicatedCluster::start().await;
    let pki = Pki::new();
    // The certificate names another host than the one connected to (127.0.0.1).
    enable_ssl(&database, &pki, &["db.example"]).await;
    let url = database.url();
    let ca = text(&pki.path("ca.pem"));
    let with = |query: &str| format!("{url}{}{query}", if url.contains('?') { "&" } else { "?" });
    // The reload takes a moment to reach new sessions: wait for TLS to be offered.
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(20);
    while uses_tls(&with("sslmode=require")).await != Ok(true) {
        assert!(
            std::time::Instant::now() < deadline,
            "the cluster never offered TLS"
        );
        tokio::task::yield_now().await;
    }
    assert_eq!(uses_tls(&with("sslmode=disable")).await, Ok(false));
    assert_eq!(
        uses_tls(&with(&format!("sslmode=verify-ca&sslrootcert={ca}"))).await,
        Ok(true)
    );
    let wrong_host = uses_tls(&with(&format!("sslmode=verify-full&sslrootcert={ca}"))).await;
    assert!(
        wrong_host.is_err(),
        "verify-full accepted a certificate for another host"
    );
    let other = Pki::new();
    let wrong_ca = uses_tls(&with(&format!(
        "sslmode=verify-ca&sslrootcert={}",
        text(&other.path("ca.pem"))
    )))
    .await;
    assert!(
        wrong_ca.is_err(),
        "verify-ca accepted a certificate another CA signed"
    );
    // `serve` itself, on verify-ca.
    let running = Serve::listen("127.0.0.1:0")
        .env(
            "DATABASE_URL",
            &with(&format!("sslmode=verify-ca&sslrootcert={ca}")),
        )
        .start()
        .await;
    let channel = Channel::from_shared(format!("http://{}", running.address))
        .unwrap()
        .connect()
        .await
        .unwrap();
    HealthClient::new(channel)
        .check(HealthCheckRequest::default())
        .await
        .unwrap();
    running.stop().await;
}
