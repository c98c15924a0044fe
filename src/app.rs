//! Building and running the server: database (external or private), migrations, the gRPC
//! router with health, reflection and authenticated creditgate services.

use std::future::Future;
use std::path::PathBuf;
use std::sync::Arc;
use std::time::Duration;

use anyhow::Context as _;
use deadpool_postgres::Pool;
use tokio::net::TcpListener;
use tonic::transport::server::TcpIncoming;
use tonic::transport::{Certificate, Identity, Server, ServerTlsConfig};

use crate::api::account::AccountApi;
use crate::api::authentication::RequireKey;
use crate::api::catalog::CatalogApi;
use crate::api::credit::CreditApi;
use crate::api::webhooks::WebhookApi;
use crate::clock::SystemClock;
use crate::config::{DatabaseSettings, ServeSettings};
use crate::proto::v1::account_service_server::AccountServiceServer;
use crate::proto::v1::catalog_service_server::CatalogServiceServer;
use crate::proto::v1::credit_service_server::CreditServiceServer;
use crate::proto::v1::webhook_service_server::WebhookServiceServer;
use crate::service::access::Authenticator;
use crate::service::webhooks::delivery;
use crate::service::{Context, events, sweeper};
use crate::store::cluster::{self, ClusterOptions, PrivateCluster};
use crate::store::{connect_pool_with, migrate};
use crate::telemetry::{self, PoolUse, rpc::RpcLayer};

/// The database the service runs on.
#[derive(Debug)]
pub struct Database {
    /// Pooled connections.
    pub pool: Pool,
    /// The private cluster, when DATABASE_URL was not given.
    pub cluster: Option<Arc<tokio::sync::Mutex<PrivateCluster>>>,
    /// Keeps a joined private cluster running ([`PrivateCluster::keep_running`]).
    pub keeper: Option<tokio::task::JoinHandle<()>>,
    /// The private cluster's data folder.
    pub data_dir: Option<PathBuf>,
    /// How to open a connection of one's own (the event reader's LISTEN).
    pub config: tokio_postgres::Config,
    /// The TLS connector of every connection (plain when the URL's sslmode says so).
    pub connector: crate::store::tls::PgConnector,
    /// The migration that waits for older servers to disconnect, if one does.
    pub waiting: Option<migrate::Waiting>,
}

impl Database {
    /// For a server: keeps the private cluster it joined running ([`keep_running`]). A CLI
    /// command does not, so that its Postgres never outlives a stop for long.
    pub fn keep_cluster_running(&mut self) {
        if let Some(cluster) = &self.cluster {
            self.keeper = Some(tokio::spawn(keep_running(Arc::clone(cluster))));
        }
    }

    /// Stops the private cluster, if we started one (or took it over).
    pub async fn close(self) {
        self.pool.close();
        if let Some(keeper) = self.keeper {
            keeper.abort();
        }
        if let Some(cluster) = self.cluster {
            cluster.lock().await.shut_down().await;
        }
    }
}

/// How often a server checks whether a waiting contract migration can run (the servers that
/// predate it gone). One cheap query when nothing waits, and then no more.
const MIGRATION_RETRY: Duration = Duration::from_secs(15);

/// How often a server that joined a private cluster another process started checks that it
/// still runs.
const CLUSTER_CHECK: Duration = Duration::from_secs(1);

/// Checks every [`CLUSTER_CHECK`] that a private cluster joined still runs, and starts it again
/// when the process that started it stopped it; until the cluster is ours to stop.
async fn keep_running(cluster: Arc<tokio::sync::Mutex<PrivateCluster>>) {
    loop {
        if cluster.lock().await.started_here() {
            return;
        }
        tokio::time::sleep(CLUSTER_CHECK).await;
        if let Err(error) = cluster.lock().await.keep_running().await {
            tracing::warn!(%error, "could not start the private postgres again");
        }
    }
}

/// Connects to DATABASE_URL, or starts the private cluster, then applies migrations.
pub async fn open_database(settings: &DatabaseSettings) -> anyhow::Result<Database> {
    let limits = settings.pool_limits()?;
    let (config, tls, cluster, data_dir) = match &settings.database_url {
        Some(url) => {
            let (config, tls) = crate::store::tls::parse_url(url).map_err(anyhow::Error::msg)?;
            (config, tls, None, None)
        }
        None => {
            let data_dir = settings.data_dir();
            let options = ClusterOptions {
                data_dir: data_dir.clone(),
                bin_dir: settings.pg_bin_dir.clone(),
                durable: true,
            };
            let cluster = PrivateCluster::start(&options).await?;
            let config = cluster.connection().config(cluster::DATABASE);
            let plain = crate::store::tls::PgTls {
                mode: crate::store::tls::PgSslMode::Disable,
                root_cert: None,
            };
            (config, plain, Some(cluster), Some(data_dir))
        }
    };
    let cluster = cluster.map(|cluster| Arc::new(tokio::sync::Mutex::new(cluster)));
    let connector = crate::store::tls::connector(&tls).map_err(anyhow::Error::msg)?;
    let pool = connect_pool_with(config.clone(), connector.clone(), limits)?;
    let mut database = Database {
        pool,
        cluster,
        keeper: None,
        data_dir,
        config,
        connector,
        waiting: None,
    };
    let applied = async {
        let mut client = database.pool.get().await?;
        migrate::migrate(&mut client).await
    }
    .await;
    match applied {
        Ok(migrated) => {
            if migrated.waiting.is_none() {
                tracing::info!(applied = migrated.applied, "schema up to date");
            }
            database.waiting = migrated.waiting;
            Ok(database)
        }
        Err(error) => {
            database.close().await;
            Err(anyhow::Error::new(error).context("migrating the database"))
        }
    }
}

/// The use-case context of a server on `pool` with the system clock.
pub fn context(pool: Pool, settings: &ServeSettings) -> anyhow::Result<Context> {
    Ok(Context::new(
        pool,
        Arc::new(SystemClock),
        settings.money.limits()?,
    ))
}

/// Serves gRPC on `listener` until `shutdown` completes, then drains in-flight calls. The
/// background sweeper and webhook delivery run alongside and stop with it.
pub async fn serve(
    listener: TcpListener,
    context: Context,
    settings: &ServeSettings,
    shutdown: impl Future<Output = ()> + Send,
) -> anyhow::Result<()> {
    let pool = context.pool.clone();
    let (stop_background, background_stopped) = tokio::sync::watch::channel(false);
    let sweeper = tokio::spawn(sweeper::run(
        context.clone(),
        context.limits.sweep_interval,
        background_stopped.clone(),
    ));
    let partition_interval = context.limits.partition_interval;
    let partitions = (!partition_interval.is_zero()).then(|| {
        tokio::spawn(crate::store::partitions::run(
            pool.clone(),
            Arc::clone(&context.clock),
            partition_interval,
            background_stopped.clone(),
        ))
    });
    // Answers by reference, and holds without their key and with their quote sealed, once no
    // older server is connected: known before the first request when the schema is complete,
    // else once the waiting migrations ran.
    let complete = Arc::clone(&context.schema_complete);
    let checked = tokio::time::timeout(Duration::from_secs(2), migrate::up_to_date(&pool)).await;
    if matches!(checked, Ok(Ok(true))) {
        complete.store(true, std::sync::atomic::Ordering::Relaxed);
    }
    let migrations = tokio::spawn({
        let (pool, stopped) = (pool.clone(), background_stopped.clone());
        async move {
            if migrate::finish_waiting(pool, MIGRATION_RETRY, stopped).await {
                complete.store(true, std::sync::atomic::Ordering::Relaxed);
            }
        }
    });
    let webhook_interval = context.limits.webhook_interval;
    let deliveries = (!webhook_interval.is_zero()).then(|| {
        tokio::spawn(delivery::run(
            context.clone(),
            webhook_interval,
            background_stopped.clone(),
        ))
    });
    // Without the database the server still answers (UNAVAILABLE); the reader starts with it.
    if let Err(error) = events::hub::start(&context).await {
        tracing::warn!(%error, "the event reader starts once the database answers");
    }
    let reader = tokio::spawn(events::hub::run(
        context.clone(),
        background_stopped.clone(),
    ));
    let listener_task = context.listen.clone().map(|config| {
        tokio::spawn(events::hub::listen(
            config,
            Arc::clone(&context.events),
            background_stopped,
        ))
    });
    let authenticator = Arc::new(Authenticator::new(
        pool.clone(),
        Duration::from_secs(settings.key_cache_seconds),
    ));
    let (health, health_service) = tonic_health::server::health_reporter();
    health.set_serving::<CreditServiceServer<CreditApi>>().await;
    health
        .set_serving::<AccountServiceServer<AccountApi>>()
        .await;
    health
        .set_serving::<CatalogServiceServer<CatalogApi>>()
        .await;
    health
        .set_serving::<WebhookServiceServer<WebhookApi>>()
        .await;
    observe_pool(&pool);
    let hub = Arc::clone(&context.events);
    let drain = Duration::from_millis(settings.drain_ms);
    let reporter = health.clone();
    // Drain: health turns NOT_SERVING first so probes and load balancers stop sending; event
    // streams (which never end by themselves) end so their clients reconnect elsewhere; after
    // `drain` the server refuses new calls and waits for those in flight.
    let shutdown = async move {
        shutdown.await;
        tracing::info!(
            drain_ms = drain.as_millis(),
            "draining: health is NOT_SERVING"
        );
        reporter
            .set_service_status("", tonic_health::ServingStatus::NotServing)
            .await;
        reporter
            .set_not_serving::<CreditServiceServer<CreditApi>>()
            .await;
        reporter
            .set_not_serving::<AccountServiceServer<AccountApi>>()
            .await;
        reporter
            .set_not_serving::<CatalogServiceServer<CatalogApi>>()
            .await;
        reporter
            .set_not_serving::<WebhookServiceServer<WebhookApi>>()
            .await;
        hub.drain();
        tokio::time::sleep(drain).await;
    };
    let reflection_v1 = reflection_builder().build_v1()?;
    let reflection_v1alpha = reflection_builder().build_v1alpha()?;
    let max_bytes = settings.max_request_bytes;
    let mut server = Server::builder();
    if let Some(tls) = server_tls(settings)? {
        server = server.tls_config(tls)?;
    }
    server
        .timeout(Duration::from_millis(settings.request_timeout_ms))
        .layer(RpcLayer::new(served_paths()?))
        .add_service(health_service)
        .add_service(reflection_v1)
        .add_service(reflection_v1alpha)
        .add_service(RequireKey::new(
            CreditServiceServer::new(CreditApi::new(context.clone()))
                .max_decoding_message_size(max_bytes),
            Arc::clone(&authenticator),
        ))
        .add_service(RequireKey::new(
            AccountServiceServer::new(AccountApi::new(context.clone()))
                .max_decoding_message_size(max_bytes),
            Arc::clone(&authenticator),
        ))
        .add_service(RequireKey::new(
            CatalogServiceServer::new(CatalogApi::new(context.clone()))
                .max_decoding_message_size(max_bytes),
            Arc::clone(&authenticator),
        ))
        .add_service(RequireKey::new(
            WebhookServiceServer::new(WebhookApi::new(context))
                .max_decoding_message_size(max_bytes),
            Arc::clone(&authenticator),
        ))
        .serve_with_incoming_shutdown(
            // Without TCP_NODELAY, Nagle and delayed ACKs add ~40 ms to multi-frame answers.
            TcpIncoming::from(listener).with_nodelay(Some(true)),
            shutdown,
        )
        .await?;
    let _ = stop_background.send(true);
    let _ = sweeper.await;
    let _ = migrations.await;
    if let Some(partitions) = partitions {
        let _ = partitions.await;
    }
    if let Some(deliveries) = deliveries {
        let _ = deliveries.await;
    }
    let _ = reader.await;
    if let Some(task) = listener_task {
        let _ = task.await;
    }
    Ok(())
}

/// Reports the pool's use with the metrics, when they are kept.
fn observe_pool(pool: &Pool) {
    let Some(metrics) = telemetry::metrics() else {
        return;
    };
    let pool = pool.clone();
    metrics.observe_pool(move || {
        let status = pool.status();
        PoolUse {
            in_use: u64::try_from(status.size.saturating_sub(status.available)).unwrap_or(0),
            waiting: u64::try_from(status.waiting).unwrap_or(0),
        }
    });
}

/// Binds the Prometheus endpoint's address (`--metrics-listen`), when it is set.
pub async fn bind_metrics(settings: &ServeSettings) -> anyhow::Result<Option<TcpListener>> {
    let Some(address) = settings.metrics_listen else {
        return Ok(None);
    };
    let listener = TcpListener::bind(address)
        .await
        .with_context(|| format!("binding the metrics address {address}"))?;
    Ok(Some(listener))
}

/// Serves the metrics on `listener` until the task is aborted.
pub fn serve_metrics(listener: TcpListener) -> tokio::task::JoinHandle<()> {
    tokio::spawn(telemetry::endpoint::serve(listener))
}

/// Every path the server answers (`/package.Service/Method`): the RPC metrics' method labels.
fn served_paths() -> anyhow::Result<Vec<String>> {
    let mut paths = vec![
        "/grpc.reflection.v1.ServerReflection/ServerReflectionInfo".to_owned(),
        "/grpc.reflection.v1alpha.ServerReflection/ServerReflectionInfo".to_owned(),
    ];
    for set in [
        crate::proto::FILE_DESCRIPTOR_SET,
        tonic_health::pb::FILE_DESCRIPTOR_SET,
    ] {
        let pool = prost_reflect::DescriptorPool::decode(set)?;
        for service in pool.services() {
            for method in service.methods() {
                paths.push(format!("/{}/{}", service.full_name(), method.name()));
            }
        }
    }
    Ok(paths)
}

/// The server's TLS, when its certificate is configured: files read now.
fn server_tls(settings: &ServeSettings) -> anyhow::Result<Option<ServerTlsConfig>> {
    let (Some(cert), Some(key)) = (&settings.tls_cert, &settings.tls_key) else {
        return Ok(None);
    };
    let read = |path: &std::path::Path| {
        std::fs::read(path).with_context(|| format!("reading {}", path.display()))
    };
    let mut tls = ServerTlsConfig::new().identity(Identity::from_pem(read(cert)?, read(key)?));
    if let Some(ca) = &settings.tls_client_ca {
        tls = tls.client_ca_root(Certificate::from_pem(read(ca)?));
    }
    Ok(Some(tls))
}

/// Reflection over the creditgate and health protos; built twice, for v1 and v1alpha clients.
fn reflection_builder() -> tonic_reflection::server::Builder<'static> {
    tonic_reflection::server::Builder::configure()
        .register_encoded_file_descriptor_set(crate::proto::FILE_DESCRIPTOR_SET)
        .register_encoded_file_descriptor_set(tonic_health::pb::FILE_DESCRIPTOR_SET)
        // So reflection clients can decode the google.rpc.ErrorInfo of every error.
        .register_encoded_file_descriptor_set(tonic_types::pb::FILE_DESCRIPTOR_SET)
}

/// Completes on ctrl-c or SIGTERM. The handlers are installed when this is called, not when the
/// future is first polled, so a signal sent right after "listening on" is printed still drains
/// instead of killing the process.
pub fn shutdown_signal() -> anyhow::Result<impl Future<Output = ()> + Send> {
    use tokio::signal::unix::{SignalKind, signal};
    let mut terminate = signal(SignalKind::terminate()).context("listening for SIGTERM")?;
    let mut interrupt = signal(SignalKind::interrupt()).context("listening for SIGINT")?;
    Ok(async move {
        tokio::select! {
            _ = interrupt.recv() => {},
            _ = terminate.recv() => {},
        }
        tracing::info!("shutting down");
    })
}
