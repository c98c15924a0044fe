//! `creditgate serve` as a process of its own on a fixed port, so that a test can kill it with
//! SIGKILL and start it again where its clients keep calling.

use std::net::SocketAddr;
use std::process::Stdio;
use std::time::Duration;

use tokio::io::{AsyncBufReadExt as _, BufReader};
use tokio::process::{Child, Command};

/// Bound on a start, so a broken build fails instead of hanging.
const START_LIMIT: Duration = Duration::from_secs(60);
/// Connections per server: several servers of parallel tests share one cluster.
const POOL_SIZE: &str = "8";

/// A running `creditgate serve` against `DATABASE_URL`.
pub struct ServerProcess {
    child: Child,
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
        let child = spawn(address, database_url).await;
        ServerProcess {
            child,
            address,
            database_url: database_url.to_owned(),
        }
    }

    /// Kills the server with SIGKILL (no drain, no shutdown) and waits for it to be gone.
    pub async fn kill(&mut self) {
        self.child.start_kill().unwrap();
        self.child.wait().await.unwrap();
    }

    /// Starts the server again on the same address and database.
    pub async fn restart(&mut self) {
        self.child = spawn(self.address, &self.database_url).await;
    }

    /// Stops the server with SIGTERM and checks that it drained and exited cleanly.
    pub async fn stop(mut self) {
        let pid = nix::unistd::Pid::from_raw(i32::try_from(self.child.id().unwrap()).unwrap());
        nix::sys::signal::kill(pid, nix::sys::signal::Signal::SIGTERM).unwrap();
        let status = tokio::time::timeout(START_LIMIT, self.child.wait())
            .await
            .expect("serve did not stop in time")
            .unwrap();
        assert!(status.success(), "serve exited with {status}");
    }
}

/// Spawns `serve` and returns once it listens.
async fn spawn(address: SocketAddr, database_url: &str) -> Child {
    let mut child = Command::new(env!("CARGO_BIN_EXE_creditgate"))
        .args(["serve", "--listen", &address.to_string()])
        .args(["--db-pool-size", POOL_SIZE])
        .env("DATABASE_URL", database_url)
        .env("RUST_LOG", "error")
        .stdout(Stdio::piped())
        .stderr(Stdio::null())
        .kill_on_drop(true)
        .spawn()
        .unwrap();
    let mut lines = BufReader::new(child.stdout.take().unwrap()).lines();
    tokio::time::timeout(START_LIMIT, async {
        while let Some(line) = lines.next_line().await.unwrap() {
            if line.starts_with("creditgate listening on ") {
                return;
            }
        }
        panic!("serve on {address} exited before listening");
    })
    .await
    .expect("serve did not start in time");
    // Keep reading so that a full pipe never blocks the server.
    tokio::spawn(async move { while let Ok(Some(_)) = lines.next_line().await {} });
    child
}
