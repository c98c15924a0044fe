//! Logs, traces and metrics. Logs: `tracing` to stderr, levels from RUST_LOG (default `info`),
//! text or JSON. Traces: OTLP/gRPC when OTEL_EXPORTER_OTLP_ENDPOINT is set, one span per RPC
//! whose parent is the caller's W3C `traceparent`. Metrics: instruments that record nothing
//! until [`init`] is asked for them, read by the Prometheus endpoint ([`endpoint`]) and pushed
//! over OTLP beside the traces.
//!
//! Knows nothing of the rest of the crate: the layers above call in with plain values.

use std::io::IsTerminal as _;
use std::sync::OnceLock;
use std::time::Duration;

use opentelemetry_sdk::metrics::SdkMeterProvider;
use opentelemetry_sdk::propagation::TraceContextPropagator;
use opentelemetry_sdk::trace::SdkTracerProvider;
use tracing_subscriber::layer::SubscriberExt as _;
use tracing_subscriber::util::SubscriberInitExt as _;
use tracing_subscriber::{EnvFilter, Layer as _};

pub mod endpoint;
pub mod metrics;
pub mod rpc;
mod traces;

pub use metrics::{Instruments, PoolUse, SweepWork, metrics};

/// The standard variable naming the OTLP collector; traces and metrics are exported only when
/// it is set.
pub const OTLP_ENDPOINT_VARIABLE: &str = "OTEL_EXPORTER_OTLP_ENDPOINT";
/// Longest the exporters may take to flush at exit, so a collector that is down never holds
/// up a shutdown.
const SHUTDOWN_LIMIT: Duration = Duration::from_secs(5);

/// What to set up.
#[derive(Debug, Clone, Copy, Default)]
pub struct Options {
    /// JSON log lines instead of text.
    pub json: bool,
    /// Keep metrics for the Prometheus endpoint.
    pub prometheus: bool,
}

/// The exporters, flushed by [`Telemetry::shutdown`].
#[derive(Debug, Default)]
#[must_use = "call shutdown at exit, or the last spans are lost"]
pub struct Telemetry {
    tracer: Option<SdkTracerProvider>,
    meter: Option<SdkMeterProvider>,
}

impl Telemetry {
    /// Exports what is buffered (bounded by [`SHUTDOWN_LIMIT`] each) and stops the exporters.
    pub fn shutdown(self) {
        if let Some(tracer) = self.tracer {
            let _ = tracer.shutdown_with_timeout(SHUTDOWN_LIMIT);
        }
        if let Some(meter) = self.meter {
            let _ = meter.shutdown_with_timeout(SHUTDOWN_LIMIT);
        }
    }
}

/// Whether spans are exported, so the RPC layer reads `traceparent` only when it matters.
static TRACING: OnceLock<()> = OnceLock::new();

/// Whether traces are exported.
pub fn exporting_traces() -> bool {
    TRACING.get().is_some()
}

/// Installs the global subscriber and, as asked, the exporters and the metrics; later calls
/// install nothing. With OTEL_EXPORTER_OTLP_ENDPOINT set it must run inside a Tokio runtime
/// (the gRPC exporter's channel lives there); an exporter that cannot be built is logged and
/// left out rather than stopping the server.
pub fn init(options: Options) -> Telemetry {
    let filter = EnvFilter::try_from_default_env()
        .unwrap_or_else(|_| EnvFilter::new("info,tokio_postgres=warn"));
    // Colours only for a terminal: a log file or collector gets plain text, and a span's
    // fields are not wrapped in escape codes on every call.
    let fmt = tracing_subscriber::fmt::layer()
        .with_writer(std::io::stderr)
        .with_ansi(std::io::stderr().is_terminal());
    let fmt = if options.json {
        fmt.json().with_filter(filter).boxed()
    } else {
        fmt.with_filter(filter).boxed()
    };
    let otlp = std::env::var_os(OTLP_ENDPOINT_VARIABLE).is_some_and(|value| !value.is_empty());
    let mut failures = Vec::new();
    let tracer = if otlp {
        traces::provider()
            .map_err(|error| failures.push(format!("traces: {error}")))
            .ok()
    } else {
        None
    };
    let spans = tracer.as_ref().map(traces::layer);
    let installed = tracing_subscriber::registry()
        .with(fmt)
        .with(spans)
        .try_init()
        .is_ok();
    if !installed {
        return Telemetry::default();
    }
    if tracer.is_some() {
        opentelemetry::global::set_text_map_propagator(TraceContextPropagator::new());
        let _ = TRACING.set(());
    }
    let meter = if options.prometheus || otlp {
        match metrics::install(options.prometheus, otlp) {
            Ok(meter) => Some(meter),
            Err(error) => {
                failures.push(format!("metrics: {error}"));
                None
            }
        }
    } else {
        None
    };
    for failure in failures {
        tracing::error!(%failure, "telemetry export is off");
    }
    Telemetry { tracer, meter }
}
