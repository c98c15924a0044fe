//! `creditgate serve` in a process of its own, so its whole log can be read.

use std::process::Stdio;
use std::time::Duration;

use tokio::io::{AsyncBufReadExt as _, AsyncReadExt as _, BufReader};
use tokio::process::Command;

/// Bound on the server's start and stop, so a broken build fails instead of hanging.
const PROCESS_LIMIT: Duration = Duration::from_secs(60);

/// `creditgate serve` in a process of its own on the test database, logging at debug level.
pub struct Served {
    child: tokio::process::Child,
    pub channel: tonic::transport::Channel,
    log: tokio::task::JoinHandle<String>,
    /// Kept open: the server prints to stdout and must not see a closed pipe.
    _stdout: tokio::io::Lines<BufReader<tokio::process::ChildStdout>>,
}

impl Served {
    pub async fn start(database_url: &str) -> Served {
        let mut child = Command::new(env!("CARGO_BIN_EXE_creditgate"))
            .args(["serve", "--listen", "127.0.0.1:0"])
            .env("DATABASE_URL", database_url)
            .env("RUST_LOG", "debug")
            .env("NO_COLOR", "1")
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .kill_on_drop(true)
            .spawn()
            .unwrap();
        let mut stderr = child.stderr.take().unwrap();
        let log = tokio::spawn(async move {
            let mut log = String::new();
            stderr.read_to_string(&mut log).await.unwrap();
            log
        });
        let mut stdout = BufReader::new(child.stdout.take().unwrap()).lines();
        let address = tokio::time::timeout(PROCESS_LIMIT, async {
            while let Some(line) = stdout.next_line().await.unwrap() {
                if let Some(address) = line.strip_prefix("creditgate listening on ") {
                    return address.to_owned();
                }
            }
            panic!("serve exited before listening");
        })
        .await
        .expect("serve did not start in time");
        let channel = tonic::transport::Channel::from_shared(format!("http://{address}"))
            .unwrap()
            .connect()
            .await
            .unwrap();
        Served {
            child,
            channel,
            log,
            _stdout: stdout,
        }
    }

    /// Stops the server with SIGTERM and returns everything it logged.
    pub async fn stop(mut self) -> String {
        let pid = nix::unistd::Pid::from_raw(i32::try_from(self.child.id().unwrap()).unwrap());
        nix::sys::signal::kill(pid, nix::sys::signal::Signal::SIGTERM).unwrap();
        let status = tokio::time::timeout(PROCESS_LIMIT, self.child.wait())
            .await
            .unwrap()
            .unwrap();
        assert!(status.success(), "serve exited with {status}");
        self.log.await.unwrap()
    }
}
