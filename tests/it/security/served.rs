//! `creditgate serve` in a process of its own, so its whole log can be read.

use crate::helpers::server_process::{Running, Serve};

/// `creditgate serve` in a process of its own on the test database, logging at debug level.
pub struct Served {
    running: Running,
    pub channel: tonic::transport::Channel,
}

impl Served {
    pub async fn start(database_url: &str) -> Served {
        let running = Serve::listen("127.0.0.1:0")
            .env("DATABASE_URL", database_url)
            .env("RUST_LOG", "debug")
            .env("NO_COLOR", "1")
            .capture_stderr()
            .start()
            .await;
        let channel = tonic::transport::Channel::from_shared(format!("http://{}", running.address))
            .unwrap()
            .connect()
            .await
            .unwrap();
        Served { running, channel }
    }

    /// Stops the server with SIGTERM and returns everything it logged.
    pub async fn stop(self) -> String {
        self.running.stop().await.expect("stderr is captured")
    }
}
