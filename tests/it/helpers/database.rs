//! One throwaway Postgres cluster per test run (or `DATABASE_URL`), a migrated template
//! database, and a fresh clone of it per test.

use std::sync::OnceLock;

use creditgate::store::cluster::{ClusterOptions, PrivateCluster};
use creditgate::store::{PoolLimits, connect_pool, migrate};
use deadpool_postgres::Pool;
use std::time::Duration;

/// Prefix of the per-run cluster folders under the temp dir; stale ones are removed.
const CLUSTER_DIR_PREFIX: &str = "creditgate-it-";

struct Server {
    admin: tokio_postgres::Config,
    template: String,
}

static SERVER: OnceLock<Server> = OnceLock::new();

fn server() -> &'static Server {
    SERVER.get_or_init(|| {
        // Set up on a thread of its own: tests run on different runtimes, and the cluster and
        // template must not belong to any one of them.
        std::thread::spawn(|| {
            let runtime = tokio::runtime::Builder::new_current_thread()
                .enable_all()
                .build()
                .unwrap();
            runtime.block_on(start_server())
        })
        .join()
        .unwrap()
    })
}

async fn start_server() -> Server {
    let admin = match std::env::var("DATABASE_URL") {
        Ok(url) => url
            .parse::<tokio_postgres::Config>()
            .expect("DATABASE_URL must be a postgres URL"),
        Err(_) => {
            remove_stale_clusters();
            let data_dir =
                std::env::temp_dir().join(format!("{CLUSTER_DIR_PREFIX}{}", std::process::id()));
            let cluster = PrivateCluster::start(&ClusterOptions {
                data_dir,
                bin_dir: None,
                durable: false,
            })
            .await
            .expect("starting the test cluster (is the Postgres server installed?)");
            let config = cluster.connection().config("postgres");
            // The cluster lives as long as this process; its parent-death signal stops it.
            std::mem::forget(cluster);
            config
        }
    };
    let template = format!("creditgate_template_{}", uuid::Uuid::now_v7().simple());
    let (client, driver) = admin.connect(tokio_postgres::NoTls).await.unwrap();
    tokio::spawn(driver);
    client
        .batch_execute(&format!("CREATE DATABASE {template}"))
        .await
        .unwrap();
    let mut config = admin.clone();
    config.dbname(&template);
    let (mut template_client, driver) = config.connect(tokio_postgres::NoTls).await.unwrap();
    let driver = tokio::spawn(driver);
    let migrated = migrate::migrate(&mut template_client).await.unwrap();
    assert_eq!(
        migrated.waiting, None,
        "nothing else is connected to the template"
    );
    drop(template_client);
    // Cloning needs the template to have no connections left.
    let _ = driver.await;
    Server { admin, template }
}

/// A new database: its pool and connection settings.
pub struct TestDatabase {
    pub pool: Pool,
    pub config: tokio_postgres::Config,
}

/// The tests' waits: generous, so that a slow machine fails no test.
const TEST_LOCK_TIMEOUT: Duration = Duration::from_secs(30);

fn test_pool(config: tokio_postgres::Config) -> Pool {
    pool_waiting(config, TEST_LOCK_TIMEOUT)
}

fn pool_waiting(config: tokio_postgres::Config, lock_timeout: Duration) -> Pool {
    connect_pool(
        config,
        PoolLimits {
            max_connections: 16,
            statement_timeout: Duration::from_secs(30),
            lock_timeout,
            acquire_timeout: Duration::from_secs(30),
        },
    )
    .unwrap()
}

impl TestDatabase {
    /// A new pool on the same database whose statements wait at most `lock_timeout` for a
    /// lock (as a server's do, by `--lock-timeout-ms`).
    pub fn waiting_at_most(&self, lock_timeout: Duration) -> TestDatabase {
        TestDatabase {
            pool: pool_waiting(self.config.clone(), lock_timeout),
            config: self.config.clone(),
        }
    }

    /// A new pool on the same database.
    pub fn reconnect(&self) -> TestDatabase {
        TestDatabase {
            pool: test_pool(self.config.clone()),
            config: self.config.clone(),
        }
    }

    /// The database as a `postgres://` URL, for the command line.
    pub fn url(&self) -> String {
        let config = &self.config;
        let host = match config.get_hosts().first() {
            Some(tokio_postgres::config::Host::Tcp(host)) => host.clone(),
            _ => "127.0.0.1".to_owned(),
        };
        let port = config.get_ports().first().copied().unwrap_or(5432);
        let user = config.get_user().unwrap_or("postgres");
        let password = config
            .get_password()
            .map(|password| format!(":{}", String::from_utf8_lossy(password)))
            .unwrap_or_default();
        let database = config.get_dbname().unwrap_or_default();
        format!("postgres://{user}{password}@{host}:{port}/{database}")
    }
}

/// A new database cloned from the migrated template.
pub async fn fresh_database() -> TestDatabase {
    new_database(Some(&server().template)).await
}

/// A new database without any migration.
pub async fn empty_database() -> TestDatabase {
    new_database(None).await
}

async fn new_database(template: Option<&str>) -> TestDatabase {
    let server = server();
    let name = format!("creditgate_test_{}", uuid::Uuid::now_v7().simple());
    let (client, driver) = server.admin.connect(tokio_postgres::NoTls).await.unwrap();
    tokio::spawn(driver);
    let template = template.map_or_else(String::new, |template| format!(" TEMPLATE {template}"));
    client
        .batch_execute(&format!("CREATE DATABASE {name}{template}"))
        .await
        .unwrap();
    let mut config = server.admin.clone();
    config.dbname(&name);
    TestDatabase {
        pool: test_pool(config.clone()),
        config,
    }
}

/// Removes cluster folders of earlier runs whose process is gone.
fn remove_stale_clusters() {
    let Ok(entries) = std::fs::read_dir(std::env::temp_dir()) else {
        return;
    };
    for entry in entries.flatten() {
        let name = entry.file_name();
        let Some(pid) = name
            .to_str()
            .and_then(|name| name.strip_prefix(CLUSTER_DIR_PREFIX))
        else {
            continue;
        };
        let alive = pid
            .parse::<i32>()
            .is_ok_and(|pid| nix::sys::signal::kill(nix::unistd::Pid::from_raw(pid), None).is_ok());
        if !alive {
            let _ = std::fs::remove_dir_all(entry.path());
        }
    }
}
