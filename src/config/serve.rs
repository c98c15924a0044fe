//! Settings of `creditgate serve`: the listener, requests, keys, drain, TLS, telemetry, and
//! the money path's limits.

use std::net::SocketAddr;

use clap::Args;

use super::{ConfigError, MAX_REQUEST_BYTES_LIMIT, MoneySettings, check_range};

/// Settings of `creditgate serve`.
#[derive(Debug, Clone, Args)]
pub struct ServeSettings {
    /// Address to serve gRPC on.
    #[arg(long, env = "CREDITGATE_LISTEN", default_value = "127.0.0.1:50051")]
    pub listen: SocketAddr,

    /// Longest a request may take before it fails with DEADLINE_EXCEEDED, in milliseconds.
    #[arg(long, env = "CREDITGATE_REQUEST_TIMEOUT_MS", default_value_t = 10_000)]
    pub request_timeout_ms: u64,

    /// Largest request message accepted, in bytes.
    #[arg(long, env = "CREDITGATE_MAX_REQUEST_BYTES", default_value_t = 1024 * 1024)]
    pub max_request_bytes: usize,

    /// How long a checked API key is trusted before it is looked up again, in seconds (a
    /// revoked key keeps working at most this long).
    #[arg(long, env = "CREDITGATE_KEY_CACHE_SECONDS", default_value_t = 30)]
    pub key_cache_seconds: u64,

    /// Address to serve Prometheus metrics on (`GET /metrics`). Unset: no endpoint, and no
    /// metrics are kept unless OTEL_EXPORTER_OTLP_ENDPOINT is set.
    #[arg(long, env = "CREDITGATE_METRICS_LISTEN")]
    pub metrics_listen: Option<SocketAddr>,

    /// On SIGTERM, how long health answers NOT_SERVING (so load balancers and probes stop
    /// sending) before the server refuses new calls and lets in-flight ones finish, in ms.
    #[arg(long, env = "CREDITGATE_DRAIN_MS", default_value_t = 5_000)]
    pub drain_ms: u64,

    /// Serve gRPC over TLS with this certificate chain (PEM); needs --tls-key. Read at start:
    /// restart to load a renewed certificate.
    #[arg(long, env = "CREDITGATE_TLS_CERT")]
    pub tls_cert: Option<std::path::PathBuf>,

    /// The private key (PEM) of --tls-cert.
    #[arg(long, env = "CREDITGATE_TLS_KEY")]
    pub tls_key: Option<std::path::PathBuf>,

    /// Require client certificates signed by this CA (PEM): mutual TLS. Needs --tls-cert.
    #[arg(long, env = "CREDITGATE_TLS_CLIENT_CA")]
    pub tls_client_ca: Option<std::path::PathBuf>,

    #[command(flatten)]
    pub money: MoneySettings,
}

impl ServeSettings {
    /// Checks every setting against its bounds.
    pub fn validate(&self) -> Result<(), ConfigError> {
        check_range(
            "--request-timeout-ms",
            self.request_timeout_ms,
            100,
            600_000,
        )?;
        check_range(
            "--max-request-bytes",
            self.max_request_bytes,
            1024,
            MAX_REQUEST_BYTES_LIMIT,
        )?;
        check_range("--key-cache-seconds", self.key_cache_seconds, 0, 3_600)?;
        check_range("--drain-ms", self.drain_ms, 0, 600_000)?;
        if self.tls_cert.is_some() != self.tls_key.is_some() {
            return Err(ConfigError(
                "--tls-cert and --tls-key go together: give both or neither".to_owned(),
            ));
        }
        if self.tls_client_ca.is_some() && self.tls_cert.is_none() {
            return Err(ConfigError(
                "--tls-client-ca needs --tls-cert and --tls-key (mutual TLS is TLS)".to_owned(),
            ));
        }
        self.money.limits()?;
        Ok(())
    }
}
