//! `creditgate serve` as a process of its own: [`Serve`] starts one (arguments, environment,
//! data folder, whether its stderr is kept) and waits for its "listening on" line;
//! [`ServerProcess`] is one on a fixed port, so that a test can kill it with SIGKILL and start it
//! again where its clients keep calling.

use std::ffi::OsStr;
use std::net::SocketAddr;
use std::path::Path;
use std::process::Stdio;
use std::time::Duration;

use tokio::io::{AsyncBufReadExt as _, AsyncReadExt as _, BufReader};
use tokio::process::{Child, Command};
use tokio::task::JoinHandle;

/// Default bound on a start and on a stop, so a broken build fails instead of hanging.
const PROCESS_LIMIT: Duration = Duration::from_secs(60);
/// Connections per server: several servers of parallel tests share one cluster.
const POOL_SIZE: &str = "8";
/// What `serve` prints on stdout once it accepts connections, followed by the address.
const LISTENING: &str = "creditgate listening on ";

/// How to start `creditgate serve`: `serve --listen <address>` plus whatever is added.
/// Stdout is read up to the "listening on" line and drained afterwards; stderr is discarded
/// unless [`Serve::capture_stderr`] keeps it.
pub struct Serve {
    command: Command,
    capture_stderr: bool,
    limit: Duration,
}

impl Serve {
    /// `serve` listening on `address` (port 0 for any free port).
    pub fn listen(address: impl ToString) -> Serve {
        let mut command = Command::new(env!("CARGO_BIN_EXE_creditgate"));
        command
            .args(["serve", "--listen", &address.to_string()])
            // Tests stop servers often; a drain test sets its own.
            .env("CREDITGATE_DRAIN_MS", "0")
            .stdout(Stdio::piped())
            .kill_on_drop(true);
        Serve {
            command,
            capture_stderr: false,
            limit: PROCESS_LIMIT,
        }
    }

    pub fn args<I, S>(mut self, args: I) -> Serve
    where
        I: IntoIterator<Item = S>,
        S: AsRef<OsStr>,
    {
        self.command.args(args);
        self
    }

    /// Its own Postgres in `path` (`--data-dir`), with `DATABASE_URL` removed so it is used.
    pub fn data_dir(mut self, path: &Path) -> Serve {
        self.command
            .arg("--data-dir")
            .arg(path)
            .env_remove("DATABASE_URL");
        self
    }

    pub fn env(mut self, key: &str, value: &str) -> Serve {
        self.command.env(key, value);
        self
    }

    /// Keeps everything the server writes to stderr (its log), returned by [`Running::stop`].
    pub fn capture_stderr(mut self) -> Serve {
        self.capture_stderr = true;
        self
    }

    /// Bound on the start and on the stop instead of the default 60 seconds.
    pub fn limit(mut self, limit: Duration) -> Serve {
        self.limit = limit;
        self
    }

    /// Spawns the server and returns once it prints that it listens.
    pub async fn start(mut self) -> Running {
        let stderr = if self.capture_stderr {
            Stdio::piped()
        } else {
            Stdio::null()
        };
        let mut child = self.command.stderr(stderr).spawn().unwrap();
        let log = child.stderr.take().map(|mut stderr| {
            tokio::spawn(async move {
                let mut log = String::new();
                stderr.read_to_string(&mut log).await.unwrap();
                log
            })
        });
        let mut lines = BufReader::new(child.stdout.take().unwrap()).lines();
        let mut stdout = Vec::new();
        let address = tokio::time::timeout(self.limit, async {
            while let Some(line) = lines.next_line().await.unwrap() {
                stdout.push(line.clone());
                if let Some(address) = line.strip_prefix(LISTENING) {
                    return address.parse().unwrap();
                }
            }
            panic!("serve exited before listening; it printed {stdout:?}");
        })
        .await
        .expect("serve did not start in time");
        // Keep reading so that a full or closed pipe never troubles the server.
        tokio::spawn(async move { while let Ok(Some(_)) = lines.next_line().await {} });
        Running {
            child,
            address,
            stdout,
            log,
            limit: self.limit,
        }
    }
}

/// A started `creditgate serve`; killed if dropped.
pub struct Running {
    child: Child,
    /// Where it listens, as it printed.
    pub address: SocketAddr,
    /// What it printed on stdout up to and including the "listening on" line.
    pub stdout: Vec<String>,
    log: Option<JoinHandle<String>>,
    limit: Duration,
}

impl Running {
    /// Kills the server with SIGKILL (no drain, no shutdown) and waits for it to be gone.
    pub async fn kill(&mut self) {
        self.child.start_kill().unwrap();
        self.child.wait().await.unwrap();
    }

    /// Sends SIGTERM (the start of a drain) without waiting.
    pub fn terminate(&self) {
        let pid = nix::unistd::Pid::from_raw(i32::try_from(self.child.id().unwrap()).unwrap());
        nix::sys::signal::kill(pid, nix::sys::signal::Signal::SIGTERM).unwrap();
    }

    /// Stops the server with SIGTERM, checks that it drained and exited cleanly, and returns
    /// its whole stderr if that was captured.
    pub async fn stop(mut self) -> Option<String> {
        self.terminate();
        let status = tokio::time::timeout(self.limit, self.child.wait())
            .await
            .expect("serve did not stop in time")
            .unwrap();
        assert!(status.success(), "serve exited with {status}");
        match self.log {
            Some(log) => Some(log.await.unwrap()),
            None => None,
        }
    }
}

/// A running `creditgate serve` against `DATABASE_URL`.
pub struct ServerProcess {
    running: Running,
    /// Where it listens; the same across restarts.
    pub address: SocketAddr,
    database_url: String,
}

impl ServerProcess {
    /// Starts a server on a free port of the loopback interface.
    pub async fn start(database_url: &str) -> ServerProcess {
        // The port must be fixed before the first start, so that a restart lands where the
        // clients already connect.
        let address = std::net::TcpListener::bind("127.0.0.1:0")
            .unwrap()
            .local_addr()
            .unwrap();
        let running = spawn(address, database_url).await;
        ServerProcess {
            running,
            address,
            database_url: database_url.to_owned(),
        }
    }

    /// Kills the server with SIGKILL (no drain, no shutdown) and waits for it to be gone.
    pub async fn kill(&mut self) {
        self.running.kill().await;
    }

    /// Starts the server again on the same address and database.
    pub async fn restart(&mut self) {
        self.running = spawn(self.address, &self.database_url).await;
    }

    /// Stops the server with SIGTERM and checks that it drained and exited cleanly.
    pub async fn stop(self) {
        self.running.stop().await;
    }
}

/// Spawns `serve` on `address` and returns once it listens.
async fn spawn(address: SocketAddr, database_url: &str) -> Running {
    Serve::listen(address)
        .args(["--db-pool-size", POOL_SIZE])
        .env("DATABASE_URL", database_url)
        .env("RUST_LOG", "error")
        .start()
        .await
}
