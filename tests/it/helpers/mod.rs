//! Test helpers: a throwaway cluster per test run, a fresh database per test (cloned from a
//! migrated template), and a server on port 0 with typed clients.

pub mod books;
pub mod concurrency;
mod database;
pub mod dedicated_cluster;
pub mod events;
pub mod limits;
pub mod money;
pub mod mutating;
pub mod plans;
pub mod receiver;
mod retry;
pub mod server_process;
pub mod snapshot;
pub mod status;
pub mod time;
pub mod usage;
pub mod workload;

use creditgate::auth::{Scope, ScopeSet};
use std::sync::Arc;

use clap::Parser as _;
use creditgate::clock::ShiftedClock;
use creditgate::config::{MoneyLimits, MoneySettings, ServeSettings};
use creditgate::proto::v1::account_service_client::AccountServiceClient;
use creditgate::proto::v1::catalog_service_client::CatalogServiceClient;
use creditgate::proto::v1::credit_service_client::CreditServiceClient;
use creditgate::proto::v1::webhook_service_client::WebhookServiceClient;
use creditgate::service::Context;
use creditgate::service::tenants;
use deadpool_postgres::Pool;
use tokio::sync::oneshot;
use tonic::service::interceptor::InterceptedService;
use tonic::transport::Channel;

pub use database::{TestDatabase, empty_database, fresh_database};
pub use status::reason;

/// A client type whose every call carries a bearer key.
pub type Authed = InterceptedService<Channel, BearerKey>;

/// The clients of every service, all with one caller's key.
#[derive(Clone)]
pub struct Clients {
    pub credit: CreditServiceClient<Authed>,
    pub account: AccountServiceClient<Authed>,
    pub catalog: CatalogServiceClient<Authed>,
    pub webhooks: WebhookServiceClient<Authed>,
}

/// A new tenant named `name` in `database`, and a key of it with every scope.
pub async fn tenant_key(database: &TestDatabase, name: &str) -> String {
    let client = database.pool.get().await.unwrap();
    let tenant = tenants::create_tenant(&client, name).await.unwrap();
    tenants::create_key(&client, tenant.tenant_id, ScopeSet::all())
        .await
        .unwrap()
        .secret
}

/// Adds `authorization: Bearer <key>` to every call.
#[derive(Clone)]
pub struct BearerKey(Option<tonic::metadata::MetadataValue<tonic::metadata::Ascii>>);

impl BearerKey {
    /// Sends `key` with every call.
    pub fn for_key(key: &str) -> Self {
        BearerKey(Some(format!("Bearer {key}").parse().unwrap()))
    }
}

impl tonic::service::Interceptor for BearerKey {
    fn call(
        &mut self,
        mut request: tonic::Request<()>,
    ) -> Result<tonic::Request<()>, tonic::Status> {
        if let Some(value) = &self.0 {
            request
                .metadata_mut()
                .insert("authorization", value.clone());
        }
        Ok(request)
    }
}

/// A running server on its own database.
pub struct TestApp {
    /// Where the server listens.
    pub address: std::net::SocketAddr,
    pub pool: Pool,
    pub database: TestDatabase,
    pub context: Context,
    /// The server's clock; tests move it forward instead of sleeping.
    pub clock: Arc<ShiftedClock>,
    pub channel: Channel,
    pub tenant_id: creditgate::ids::TenantId,
    /// A key with every scope.
    pub key: String,
    shutdown: Option<oneshot::Sender<()>>,
    server: Option<tokio::task::JoinHandle<anyhow::Result<()>>>,
}

impl TestApp {
    /// Starts a server on a fresh database, with tenant `test` and an all-scopes key. Its
    /// webhook worker is off: tests deliver with `deliver_once`.
    pub async fn spawn() -> TestApp {
        Self::spawn_with_limits(|_| {}).await
    }

    /// As [`TestApp::spawn`], with the default money limits adjusted by `adjust` (e.g. fewer
    /// event streams, a smaller stream buffer, a sweeper that runs only at start).
    pub async fn spawn_with_limits(adjust: impl FnOnce(&mut MoneyLimits)) -> TestApp {
        Self::spawn_on(fresh_database().await, adjust).await
    }

    /// As [`TestApp::spawn_with_limits`], on `database` (migrated as the test needs).
    pub async fn spawn_on(
        database: TestDatabase,
        adjust: impl FnOnce(&mut MoneyLimits),
    ) -> TestApp {
        let client = database.pool.get().await.unwrap();
        let tenant = tenants::create_tenant(&client, "test").await.unwrap();
        let key = tenants::create_key(&client, tenant.tenant_id, ScopeSet::all())
            .await
            .unwrap();
        drop(client);
        let mut limits = MoneyDefaults::parse_from(["money"]).money.limits().unwrap();
        // Tests deliver webhooks with `deliver_once`, unless one turns the worker on.
        limits.webhook_interval = std::time::Duration::ZERO;
        // Tests make partitions with `partitions::maintain`, at the times they choose.
        limits.partition_interval = std::time::Duration::ZERO;
        adjust(&mut limits);
        Self::start(database, tenant.tenant_id, key.secret, None, limits).await
    }

    /// A second server (its own pool and clock, this app's limits) on this app's database, as
    /// another replica of the service would be.
    pub async fn replica(&self) -> TestApp {
        let database = self.database.reconnect();
        Self::start(
            database,
            self.tenant_id,
            self.key.clone(),
            None,
            self.context.limits,
        )
        .await
    }

    /// A replica whose server reads `clock` (e.g. one whose system clock is wrong).
    pub async fn replica_with_clock(&self, clock: Arc<dyn creditgate::clock::Clock>) -> TestApp {
        let database = self.database.reconnect();
        Self::start(
            database,
            self.tenant_id,
            self.key.clone(),
            Some(clock),
            self.context.limits,
        )
        .await
    }

    async fn start(
        database: TestDatabase,
        tenant_id: creditgate::ids::TenantId,
        key: String,
        server_clock: Option<Arc<dyn creditgate::clock::Clock>>,
        limits: MoneyLimits,
    ) -> TestApp {
        let pool = database.pool.clone();
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let address = listener.local_addr().unwrap();
        let (shutdown, shutdown_signal) = oneshot::channel::<()>();
        let settings = ServeSettings {
            listen: address,
            request_timeout_ms: 10_000,
            max_request_bytes: 1024 * 1024,
            key_cache_seconds: 30,
            metrics_listen: None,
            drain_ms: 0,
            tls_cert: None,
            tls_key: None,
            tls_client_ca: None,
            money: MoneyDefaults::parse_from(["money"]).money,
        };
        let clock = Arc::new(ShiftedClock::default());
        let mut context = Context::new(
            pool.clone(),
            server_clock.unwrap_or_else(|| clock.clone()),
            limits,
        );
        let (config, tls) = creditgate::store::tls::parse_url(&database.url()).unwrap();
        context.listen = Some((config, creditgate::store::tls::connector(&tls).unwrap()));
        let server_context = context.clone();
        let server = tokio::spawn(async move {
            creditgate::app::serve(listener, server_context, &settings, async {
                let _ = shutdown_signal.await;
            })
            .await
        });
        let channel = Channel::from_shared(format!("http://{address}"))
            .unwrap()
            .connect()
            .await
            .unwrap();
        TestApp {
            address,
            pool,
            database,
            context,
            clock,
            channel,
            tenant_id,
            key,
            shutdown: Some(shutdown),
            server: Some(server),
        }
    }

    /// Ends a test: checks the books (as [`TestApp::assert_books_balance`]) and stops the
    /// server.
    pub async fn finish(self) {
        self.assert_books_balance().await;
        self.stop().await;
    }

    /// Runs `creditgate verify`'s checks and fails the test on any discrepancy.
    pub async fn assert_books_balance(&self) {
        let client = self.pool.get().await.unwrap();
        let found = creditgate::store::verify::verify(&client).await.unwrap();
        assert!(
            found.is_empty(),
            "the journal does not explain the balances: {found:#?}"
        );
    }

    /// Moves the server clock forward.
    pub fn advance(&self, by: chrono::Duration) {
        self.clock.advance(by);
    }

    /// Runs one background sweep now.
    pub async fn sweep(&self) -> creditgate::service::sweeper::SweepReport {
        creditgate::service::sweeper::sweep_once(&self.context)
            .await
            .unwrap()
    }

    /// The app's database as a URL, for the command line.
    pub fn database_url(&self) -> String {
        self.database.url()
    }

    /// A new key of this app's tenant with exactly `scopes`.
    pub async fn key_with(&self, scopes: &[Scope]) -> String {
        let client = self.pool.get().await.unwrap();
        let scopes: ScopeSet = scopes.iter().copied().collect();
        tenants::create_key(&client, self.tenant_id, scopes)
            .await
            .unwrap()
            .secret
    }

    fn bearer(key: Option<&str>) -> BearerKey {
        BearerKey(key.map(|key| format!("Bearer {key}").parse().unwrap()))
    }

    /// CreditService client with `key` (None: no authorization metadata).
    pub fn credit_as(&self, key: Option<&str>) -> CreditServiceClient<Authed> {
        CreditServiceClient::with_interceptor(self.channel.clone(), Self::bearer(key))
    }

    /// AccountService client with `key`.
    pub fn account_as(&self, key: Option<&str>) -> AccountServiceClient<Authed> {
        AccountServiceClient::with_interceptor(self.channel.clone(), Self::bearer(key))
    }

    /// CatalogService client with `key`.
    pub fn catalog_as(&self, key: Option<&str>) -> CatalogServiceClient<Authed> {
        CatalogServiceClient::with_interceptor(self.channel.clone(), Self::bearer(key))
    }

    /// WebhookService client with `key`.
    pub fn webhooks_as(&self, key: Option<&str>) -> WebhookServiceClient<Authed> {
        WebhookServiceClient::with_interceptor(self.channel.clone(), Self::bearer(key))
    }

    /// Every client with `key`.
    pub fn clients_as(&self, key: Option<&str>) -> Clients {
        Clients {
            credit: self.credit_as(key),
            account: self.account_as(key),
            catalog: self.catalog_as(key),
            webhooks: self.webhooks_as(key),
        }
    }

    /// Every client with the all-scopes key.
    pub fn clients(&self) -> Clients {
        self.clients_as(Some(&self.key))
    }

    /// A key with every scope of a second tenant, new at each call.
    pub async fn other_tenant_key(&self) -> String {
        let name = format!("other-{}", uuid::Uuid::now_v7().simple());
        tenant_key(&self.database, &name).await
    }

    /// CreditService client with the all-scopes key.
    pub fn credit(&self) -> CreditServiceClient<Authed> {
        self.credit_as(Some(&self.key))
    }

    /// Stops the server and waits for it to drain.
    pub async fn stop(mut self) {
        if let Some(shutdown) = self.shutdown.take() {
            let _ = shutdown.send(());
        }
        if let Some(server) = self.server.take() {
            server.await.unwrap().unwrap();
        }
    }
}

/// Defaults of the money settings, as `serve` parses them.
#[derive(clap::Parser)]
struct MoneyDefaults {
    #[command(flatten)]
    money: MoneySettings,
}
