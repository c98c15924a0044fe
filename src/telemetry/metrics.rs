//! The metrics and the one place that records them. Every label is bounded: an RPC method
//! (from the served protos, or `unknown`), a gRPC code, a fixed kind of work; never a tenant,
//! account or key. Until [`install`] runs every record is one atomic load and nothing else.

use std::sync::OnceLock;
use std::sync::atomic::Ordering;
use std::time::Duration;

use opentelemetry::KeyValue;
use opentelemetry::metrics::{Counter, Gauge, Histogram, Meter, MeterProvider as _, UpDownCounter};
use opentelemetry_sdk::Resource;
use opentelemetry_sdk::metrics::{PeriodicReader, SdkMeterProvider};

/// Pause between two pushes of the metrics over OTLP, unless OTEL_METRIC_EXPORT_INTERVAL
/// (milliseconds) says otherwise.
const OTLP_PUSH_INTERVAL: Duration = Duration::from_secs(15);
const PUSH_INTERVAL_VARIABLE: &str = "OTEL_METRIC_EXPORT_INTERVAL";
/// Latency buckets, in seconds: sub-millisecond reads up to the 10 s request timeout.
const SECONDS_BUCKETS: [f64; 15] = [
    0.000_25, 0.000_5, 0.001, 0.002_5, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0,
    10.0,
];
/// Operations or accounts per group-commit transaction.
const BATCH_BUCKETS: [f64; 10] = [1.0, 2.0, 4.0, 8.0, 16.0, 32.0, 64.0, 128.0, 256.0, 512.0];

static INSTRUMENTS: OnceLock<Instruments> = OnceLock::new();
static REGISTRY: OnceLock<prometheus::Registry> = OnceLock::new();

/// The instruments, once installed.
pub fn metrics() -> Option<&'static Instruments> {
    INSTRUMENTS.get()
}

/// The registry the Prometheus endpoint encodes, when it was asked for.
pub fn registry() -> Option<&'static prometheus::Registry> {
    REGISTRY.get()
}

/// The service's name and version, on every span and metric.
pub(super) fn resource() -> Resource {
    Resource::builder()
        .with_service_name("creditgate")
        .with_attribute(KeyValue::new("service.version", env!("CARGO_PKG_VERSION")))
        .build()
}

/// Creates the instruments, read by a Prometheus registry and/or pushed over OTLP.
pub(super) fn install(prometheus: bool, otlp: bool) -> anyhow::Result<SdkMeterProvider> {
    let mut builder = SdkMeterProvider::builder().with_resource(resource());
    if prometheus {
        let registry = prometheus::Registry::new();
        let exporter = opentelemetry_prometheus::exporter()
            .with_registry(registry.clone())
            .scope_info_enabled(false)
            .build()?;
        builder = builder.with_reader(exporter);
        let _ = REGISTRY.set(registry);
    }
    if otlp {
        let exporter = opentelemetry_otlp::MetricExporter::builder()
            .with_tonic()
            .build()?;
        let mut reader = PeriodicReader::builder(exporter);
        // The standard variable, when set, wins over our default.
        if std::env::var_os(PUSH_INTERVAL_VARIABLE).is_none() {
            reader = reader.with_interval(OTLP_PUSH_INTERVAL);
        }
        builder = builder.with_reader(reader.build());
    }
    let provider = builder.build();
    let _ = INSTRUMENTS.set(Instruments::new(&provider.meter("creditgate")));
    Ok(provider)
}

/// Every instrument the service records.
#[derive(Debug)]
pub struct Instruments {
    meter: Meter,
    rpc_duration: Histogram<f64>,
    group_operations: Histogram<u64>,
    group_accounts: Histogram<u64>,
    transactions_in_flight: UpDownCounter<i64>,
    lock_wait: Histogram<f64>,
    commit_duration: Histogram<f64>,
    sweeps: Counter<u64>,
    sweeper_work: Counter<u64>,
    holds_active: Gauge<i64>,
    events_broadcast: Counter<u64>,
    events_lag: Gauge<f64>,
    allowances_reread: Counter<u64>,
}

impl Instruments {
    fn new(meter: &Meter) -> Instruments {
        let seconds = |name: &'static str, description: &'static str| {
            meter
                .f64_histogram(name)
                .with_unit("s")
                .with_description(description)
                .with_boundaries(SECONDS_BUCKETS.to_vec())
                .build()
        };
        let batch = |name: &'static str, description: &'static str| {
            meter
                .u64_histogram(name)
                .with_description(description)
                .with_boundaries(BATCH_BUCKETS.to_vec())
                .build()
        };
        // Observed at each collection for as long as the meter lives, handle or not.
        let _spans_dropped = meter
            .u64_observable_counter("creditgate.spans.dropped")
            .with_description("Spans dropped because the export queue was full")
            .with_callback(|observer| {
                observer.observe(super::traces::DROPPED_SPANS.load(Ordering::Relaxed), &[]);
            })
            .build();
        Instruments {
            rpc_duration: seconds(
                "creditgate.rpc.duration",
                "RPCs by method and gRPC code: latency to the last byte of the answer",
            ),
            group_operations: batch(
                "creditgate.group_commit.operations",
                "Operations per group-commit transaction",
            ),
            group_accounts: batch(
                "creditgate.group_commit.accounts",
                "Accounts per group-commit transaction",
            ),
            transactions_in_flight: meter
                .i64_up_down_counter("creditgate.group_commit.transactions_in_flight")
                .with_description("Group-commit transactions running now")
                .build(),
            lock_wait: seconds(
                "creditgate.lock.duration",
                "Locking a transaction's accounts and loading their books (one round trip)",
            ),
            commit_duration: seconds(
                "creditgate.commit.duration",
                "Writing and committing a transaction's changes (one round trip)",
            ),
            sweeps: meter
                .u64_counter("creditgate.sweeper.runs")
                .with_description("Background sweeps by outcome (ok, error)")
                .build(),
            sweeper_work: meter
                .u64_counter("creditgate.sweeper.work")
                .with_description(
                    "Sweeper work by kind: accounts swept, idempotency records and events pruned",
                )
                .build(),
            holds_active: meter
                .i64_gauge("creditgate.holds.active")
                .with_description("Active holds in the database, counted by the sweeper")
                .build(),
            events_broadcast: meter
                .u64_counter("creditgate.events.broadcast")
                .with_description("Events read from the outbox and broadcast to WatchEvents")
                .build(),
            events_lag: meter
                .f64_gauge("creditgate.events.lag")
                .with_unit("s")
                .with_description(
                    "How long committed events have been waiting to be broadcast (0: caught up)",
                )
                .build(),
            allowances_reread: {
                let counter = meter
                    .u64_counter("creditgate.allowances.reread")
                    .with_description(
                        "Locked transactions that read their allowances again: they decided past \
                         the time the first read was for (this server's clock behind the \
                         database's, or locks waited on for minutes)",
                    )
                    .build();
                // Served from the start, at zero: a rise is what to watch.
                counter.add(0, &[]);
                counter
            },
            meter: meter.clone(),
        }
    }

    /// A locked transaction read its allowances again.
    pub fn allowances_reread(&self) {
        self.allowances_reread.add(1, &[]);
    }

    /// One RPC answered with `code` after `elapsed`.
    pub fn rpc(&self, method: &'static str, code: &'static str, elapsed: Duration) {
        self.rpc_duration.record(
            elapsed.as_secs_f64(),
            &[KeyValue::new("method", method), KeyValue::new("code", code)],
        );
    }

    /// A group-commit transaction starts with `operations` over `accounts`; it counts as in
    /// flight until the returned guard drops.
    pub fn transaction(&self, operations: usize, accounts: usize) -> InFlight {
        self.group_operations.record(count(operations), &[]);
        self.group_accounts.record(count(accounts), &[]);
        self.transactions_in_flight.add(1, &[]);
        InFlight(self.transactions_in_flight.clone())
    }

    /// One lock round trip took `elapsed`.
    pub fn lock_wait(&self, elapsed: Duration) {
        self.lock_wait.record(elapsed.as_secs_f64(), &[]);
    }

    /// One commit round trip took `elapsed`.
    pub fn commit(&self, elapsed: Duration) {
        self.commit_duration.record(elapsed.as_secs_f64(), &[]);
    }

    /// One sweep's outcome and work.
    pub fn sweep(&self, work: Option<SweepWork>) {
        let outcome = if work.is_some() { "ok" } else { "error" };
        self.sweeps.add(1, &[KeyValue::new("outcome", outcome)]);
        let Some(work) = work else { return };
        for (kind, amount) in [
            ("accounts_swept", work.accounts_swept),
            ("idempotency_records_pruned", work.records_pruned),
            ("events_pruned", work.events_pruned),
        ] {
            self.sweeper_work
                .add(amount, &[KeyValue::new("kind", kind)]);
        }
    }

    /// The number of active holds, as just counted.
    pub fn holds_active(&self, holds: i64) {
        self.holds_active.record(holds, &[]);
    }

    /// The event reader broadcast `events`; committed ones have waited `lag` (zero when it
    /// caught up).
    pub fn events(&self, events: usize, lag: Duration) {
        if events > 0 {
            self.events_broadcast.add(count(events), &[]);
        }
        self.events_lag.record(lag.as_secs_f64(), &[]);
    }

    /// Reports `observe()` (connections in use, callers waiting) at every collection.
    pub fn observe_pool(&self, observe: impl Fn() -> PoolUse + Send + Sync + 'static) {
        let observe = std::sync::Arc::new(observe);
        let waiting = std::sync::Arc::clone(&observe);
        // Observed for as long as the meter lives, handle or not.
        let _in_use = self
            .meter
            .u64_observable_gauge("creditgate.db.pool.in_use")
            .with_description("Database connections lent out now")
            .with_callback(move |observer| observer.observe(observe().in_use, &[]))
            .build();
        let _waiting = self
            .meter
            .u64_observable_gauge("creditgate.db.pool.waiting")
            .with_description("Callers waiting for a database connection now")
            .with_callback(move |observer| observer.observe(waiting().waiting, &[]))
            .build();
    }
}

/// What one sweep did.
#[derive(Debug, Clone, Copy, Default)]
pub struct SweepWork {
    /// Accounts whose holds or grants were expired.
    pub accounts_swept: u64,
    /// Idempotency records deleted.
    pub records_pruned: u64,
    /// Events deleted.
    pub events_pruned: u64,
}

/// The database pool's use at one instant.
#[derive(Debug, Clone, Copy, Default)]
pub struct PoolUse {
    /// Connections lent out.
    pub in_use: u64,
    /// Callers waiting for one.
    pub waiting: u64,
}

/// A group-commit transaction in flight; counted out when dropped.
#[derive(Debug)]
#[must_use = "the transaction counts as in flight until this drops"]
pub struct InFlight(UpDownCounter<i64>);

impl Drop for InFlight {
    fn drop(&mut self) {
        self.0.add(-1, &[]);
    }
}

fn count(value: usize) -> u64 {
    u64::try_from(value).unwrap_or(u64::MAX)
}
