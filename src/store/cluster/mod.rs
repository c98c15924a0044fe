//! A private Postgres cluster run from the installed server binaries, for a one-command start
//! and for tests. The postmaster runs as a child of a dedicated thread with a parent-death
//! signal, so it stops with us even if we crash; as root it runs as the `postgres` user,
//! because Postgres refuses to run as root.

mod layout;

use std::fs;
use std::path::{Path, PathBuf};
use std::process::Command;
use std::sync::{PoisonError, mpsc};
use std::time::{Duration, Instant};

use layout::Layout;
use nix::sys::signal::{Signal, kill};
use nix::unistd::{Pid, Uid, User};

/// Superuser created by initdb and used by creditgate.
const SUPERUSER: &str = "creditgate";
/// The application database inside the cluster.
pub const DATABASE: &str = "creditgate";
/// How long the postmaster may take to accept connections.
const START_TIMEOUT: Duration = Duration::from_secs(60);
/// How long a fast shutdown may take before we force an immediate one.
const STOP_TIMEOUT: Duration = Duration::from_secs(30);
/// Attempts at a free port, in case another process takes the one we picked.
const PORT_ATTEMPTS: usize = 3;
/// The unprivileged user the postmaster runs as when we are root.
const ROOT_RUN_AS: &str = "postgres";

/// How to run the cluster.
#[derive(Debug, Clone)]
pub struct ClusterOptions {
    /// Folder holding the cluster (`pgdata/`), its password and the demo key.
    pub data_dir: PathBuf,
    /// Folder with `initdb` and `postgres`; found automatically when `None`.
    pub bin_dir: Option<PathBuf>,
    /// `false` turns off fsync and synchronous commit: for throwaway test clusters only.
    pub durable: bool,
}

/// Why the cluster could not be started.
#[derive(Debug, thiserror::Error)]
pub enum ClusterError {
    /// No server binaries were found.
    #[error(
        "no Postgres server binaries found (looked for initdb and postgres in {searched}); install them with `apt-get install -y postgresql`, point --pg-bin-dir at them, or set DATABASE_URL"
    )]
    BinariesMissing {
        /// Where we looked.
        searched: String,
    },
    /// Running as root without a `postgres` user to run the server as.
    #[error(
        "running as root, but there is no unprivileged user `postgres` to run the private Postgres as; create one (`useradd --system postgres`) or run creditgate as a normal user"
    )]
    NoUnprivilegedUser,
    /// The unprivileged user cannot reach the data folder.
    #[error(
        "the private Postgres runs as user `postgres`, which cannot enter {0}; choose a --data-dir it can reach, such as /var/lib/creditgate"
    )]
    Unreachable(PathBuf),
    /// A step failed; the message says which and why.
    #[error("{0}")]
    Failed(String),
}

impl ClusterError {
    fn io(what: &str, path: &Path, error: &std::io::Error) -> Self {
        ClusterError::Failed(format!("{what} {}: {error}", path.display()))
    }
}

/// How to connect to the cluster.
#[derive(Debug, Clone)]
pub struct ConnectionInfo {
    /// TCP port on 127.0.0.1.
    pub port: u16,
    /// The superuser's password.
    pub password: String,
}

impl ConnectionInfo {
    /// Connection settings for `database`.
    pub fn config(&self, database: &str) -> tokio_postgres::Config {
        let mut config = tokio_postgres::Config::new();
        config
            .host("127.0.0.1")
            .port(self.port)
            .user(SUPERUSER)
            .password(self.password.as_str())
            .dbname(database);
        config
    }
}

/// A running private cluster. Dropping it asks the postmaster to stop without waiting; call
/// [`PrivateCluster::stop`] to wait for a clean shutdown.
#[derive(Debug)]
pub struct PrivateCluster {
    connection: ConnectionInfo,
    /// Present when we started the postmaster (not when we joined one already running).
    postmaster: Option<Postmaster>,
    /// How it was started, to start it again ([`PrivateCluster::keep_running`]).
    options: ClusterOptions,
    /// Its `pgdata` folder.
    pgdata: PathBuf,
    /// Whether we said it runs on a port other than ours.
    moved_told: bool,
}

#[derive(Debug)]
struct Postmaster {
    pid: Pid,
    /// Says when the postmaster has exited (behind a lock, so the cluster can be shared).
    exited: std::sync::Mutex<mpsc::Receiver<()>>,
}

impl Postmaster {
    fn has_exited(&self) -> bool {
        let exited = self.exited.lock().unwrap_or_else(PoisonError::into_inner);
        exited.try_recv().is_ok()
    }
}

impl PrivateCluster {
    /// Starts the cluster in `options.data_dir`, creating it on first use, or joins the one
    /// already running there (for example a `creditgate serve` while a CLI command runs).
    pub async fn start(options: &ClusterOptions) -> Result<Self, ClusterError> {
        let bin_dir = find_bin_dir(options.bin_dir.as_deref())?;
        let run_as = unprivileged_user()?;
        let layout = Layout::create(&options.data_dir, run_as.as_ref())?;
        let password = layout.password()?;
        if let Some(port) = layout.running_port() {
            let connection = ConnectionInfo {
                port,
                password: password.clone(),
            };
            if can_connect(&connection).await {
                tracing::info!(port, "joined the private postgres already running");
                return Ok(PrivateCluster {
                    connection,
                    postmaster: None,
                    options: options.clone(),
                    pgdata: layout.pgdata.clone(),
                    moved_told: false,
                });
            }
        }
        if !layout.pgdata.join("PG_VERSION").exists() {
            layout.initdb(&bin_dir, run_as.as_ref(), &password, options.durable)?;
        }
        let mut last_error = None;
        for _ in 0..PORT_ATTEMPTS {
            let port = free_port()?;
            let postmaster = layout.spawn(&bin_dir, run_as.as_ref(), port, options.durable)?;
            let cluster = PrivateCluster {
                connection: ConnectionInfo {
                    port,
                    password: password.clone(),
                },
                postmaster: Some(postmaster),
                options: options.clone(),
                pgdata: layout.pgdata.clone(),
                moved_told: false,
            };
            match cluster.wait_until_ready(&layout).await {
                Ok(()) => {
                    tracing::info!(port, data_dir = %options.data_dir.display(), "private postgres started");
                    return Ok(cluster);
                }
                Err(error) => last_error = Some(error),
            }
        }
        Err(last_error.unwrap_or_else(|| ClusterError::Failed("postgres did not start".into())))
    }

    /// How to connect.
    pub fn connection(&self) -> &ConnectionInfo {
        &self.connection
    }

    async fn wait_until_ready(&self, layout: &Layout) -> Result<(), ClusterError> {
        let deadline = Instant::now() + START_TIMEOUT;
        let postmaster = self.postmaster.as_ref();
        loop {
            if postmaster.is_some_and(Postmaster::has_exited) {
                return Err(ClusterError::Failed(format!(
                    "postgres exited during start; last lines of {}:\n{}",
                    layout.log.display(),
                    layout.log_tail()
                )));
            }
            if can_connect(&self.connection).await {
                return ensure_database(&self.connection).await;
            }
            if Instant::now() > deadline {
                return Err(ClusterError::Failed(format!(
                    "postgres did not accept connections within {START_TIMEOUT:?}; see {}",
                    layout.log.display()
                )));
            }
            // Polling a starting server is the only readiness signal Postgres offers.
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
    }

    /// Whether this process started the postmaster (rather than joined one running).
    pub fn started_here(&self) -> bool {
        self.postmaster.is_some()
    }

    /// Keeps a cluster we joined running: when the process that started it has stopped it (it
    /// exited: a server restarted while the one before it still drained, say), starts it again
    /// on the same port, where our pool's connections find it, and from then on it stops with
    /// us. Whether it started it; nothing to do for a postmaster we started or one running.
    pub async fn keep_running(&mut self) -> Result<bool, ClusterError> {
        if self.postmaster.is_some() {
            return Ok(false);
        }
        let port = self.connection.port;
        match layout::running(&self.pgdata) {
            Some((_, running)) if running == port => return Ok(false),
            Some((_, running)) => {
                // Another process started it again first, on a port our pool does not know.
                if !std::mem::replace(&mut self.moved_told, true) {
                    tracing::error!(
                        port,
                        running,
                        "the private postgres this process joined runs on another port now; restart this process"
                    );
                }
                return Ok(false);
            }
            None => {}
        }
        let bin_dir = find_bin_dir(self.options.bin_dir.as_deref())?;
        let run_as = unprivileged_user()?;
        let layout = Layout::create(&self.options.data_dir, run_as.as_ref())?;
        let spawned = layout.spawn(&bin_dir, run_as.as_ref(), port, self.options.durable)?;
        let pid = spawned.pid;
        self.postmaster = Some(spawned);
        let ready = self.wait_until_ready(&layout).await;
        // Postgres allows one postmaster per folder: when another process started it at the
        // same moment, ours exits and theirs is the one that answered.
        let ours = layout::running(&self.pgdata).is_some_and(|(running, _)| running == pid);
        if ready.is_ok() && ours {
            tracing::warn!(
                port,
                "the private postgres this process had joined stopped; started it again"
            );
            return Ok(true);
        }
        if let Some(postmaster) = self.postmaster.take() {
            if !postmaster.has_exited() {
                let _ = kill(postmaster.pid, Signal::SIGINT);
            }
        }
        ready.map(|()| false)
    }

    /// Stops the postmaster we started (fast shutdown) and waits for it to exit.
    pub async fn stop(mut self) {
        self.shut_down().await;
    }

    /// [`PrivateCluster::stop`] in place: afterwards the cluster is one we do not run.
    pub async fn shut_down(&mut self) {
        let Some(postmaster) = self.postmaster.take() else {
            return;
        };
        let _ = kill(postmaster.pid, Signal::SIGINT);
        let exited = tokio::task::spawn_blocking(move || {
            let pid = postmaster.pid;
            let exited = postmaster
                .exited
                .into_inner()
                .unwrap_or_else(PoisonError::into_inner);
            let clean = exited.recv_timeout(STOP_TIMEOUT).is_ok();
            if !clean {
                let _ = kill(pid, Signal::SIGQUIT);
                let _ = exited.recv_timeout(STOP_TIMEOUT);
            }
            clean
        })
        .await;
        match exited {
            Ok(true) => tracing::info!("private postgres stopped"),
            _ => tracing::warn!("private postgres needed an immediate shutdown"),
        }
    }
}

impl Drop for PrivateCluster {
    fn drop(&mut self) {
        if let Some(postmaster) = &self.postmaster {
            let _ = kill(postmaster.pid, Signal::SIGINT);
        }
    }
}

async fn can_connect(connection: &ConnectionInfo) -> bool {
    let mut config = connection.config("postgres");
    config.connect_timeout(Duration::from_secs(2));
    match config.connect(tokio_postgres::NoTls).await {
        Ok((client, driver)) => {
            tokio::spawn(driver);
            client.simple_query("SELECT 1").await.is_ok()
        }
        Err(_) => false,
    }
}

async fn ensure_database(connection: &ConnectionInfo) -> Result<(), ClusterError> {
    let failed = |error: tokio_postgres::Error| {
        ClusterError::Failed(format!("creating database {DATABASE}: {error}"))
    };
    let (client, driver) = connection
        .config("postgres")
        .connect(tokio_postgres::NoTls)
        .await
        .map_err(failed)?;
    tokio::spawn(driver);
    let exists = client
        .query_opt("SELECT 1 FROM pg_database WHERE datname = $1", &[&DATABASE])
        .await
        .map_err(failed)?
        .is_some();
    if !exists {
        client
            .batch_execute(&format!("CREATE DATABASE {DATABASE}"))
            .await
            .map_err(failed)?;
    }
    Ok(())
}

/// The unprivileged user to run Postgres as, when we are root.
fn unprivileged_user() -> Result<Option<User>, ClusterError> {
    if !Uid::effective().is_root() {
        return Ok(None);
    }
    match User::from_name(ROOT_RUN_AS) {
        Ok(Some(user)) => Ok(Some(user)),
        _ => Err(ClusterError::NoUnprivilegedUser),
    }
}

/// Finds the folder with `initdb` and `postgres`: the given one, then `pg_config --bindir`,
/// then the newest `/usr/lib/postgresql/*/bin` (Debian's layout).
pub fn find_bin_dir(given: Option<&Path>) -> Result<PathBuf, ClusterError> {
    let has_server = |dir: &Path| dir.join("initdb").is_file() && dir.join("postgres").is_file();
    if let Some(dir) = given {
        return if has_server(dir) {
            Ok(dir.to_path_buf())
        } else {
            Err(ClusterError::BinariesMissing {
                searched: dir.display().to_string(),
            })
        };
    }
    let mut candidates = Vec::new();
    if let Ok(output) = Command::new("pg_config").arg("--bindir").output() {
        candidates.push(PathBuf::from(
            String::from_utf8_lossy(&output.stdout).trim(),
        ));
    }
    let mut versioned: Vec<(u32, PathBuf)> = fs::read_dir("/usr/lib/postgresql")
        .into_iter()
        .flatten()
        .flatten()
        .filter_map(|entry| {
            let version = entry.file_name().to_str()?.parse::<u32>().ok()?;
            Some((version, entry.path().join("bin")))
        })
        .collect();
    versioned.sort_by_key(|(version, _)| std::cmp::Reverse(*version));
    candidates.extend(versioned.into_iter().map(|(_, dir)| dir));
    candidates
        .iter()
        .find(|dir| has_server(dir))
        .cloned()
        .ok_or_else(|| ClusterError::BinariesMissing {
            searched: "pg_config --bindir, /usr/lib/postgresql/*/bin".to_owned(),
        })
}

fn free_port() -> Result<u16, ClusterError> {
    std::net::TcpListener::bind("127.0.0.1:0")
        .and_then(|listener| listener.local_addr())
        .map(|address| address.port())
        .map_err(|error| ClusterError::Failed(format!("finding a free port: {error}")))
}
