//! The OTLP/gRPC span exporter behind a bounded queue. The SDK's batch processor drops spans
//! when its queue is full but only says how many at exit, so [`Bounded`] keeps the count
//! itself: it admits a span only while fewer than the queue's capacity wait, and counts the
//! rest as dropped (`creditgate_spans_dropped_total`). A collector that is down then costs a
//! request an atomic increment, never a wait.

use std::sync::Arc;
use std::sync::atomic::{AtomicU64, AtomicUsize, Ordering};
use std::time::Duration;

use opentelemetry::trace::TracerProvider as _;
use opentelemetry_sdk::Resource;
use opentelemetry_sdk::error::OTelSdkResult;
use opentelemetry_sdk::trace::{
    BatchConfigBuilder, BatchSpanProcessor, SdkTracerProvider, SpanData, SpanExporter,
    SpanProcessor,
};
use tracing_subscriber::Layer as _;
use tracing_subscriber::filter::Targets;
use tracing_subscriber::registry::LookupSpan;

/// Spans waiting for export at most, unless OTEL_BSP_MAX_QUEUE_SIZE says otherwise; past it
/// they are dropped. At ~3 spans per request this covers the export interval at a few
/// thousand requests per second.
const QUEUE_SPANS: usize = 8_192;
/// The standard variable that sizes the queue.
const QUEUE_VARIABLE: &str = "OTEL_BSP_MAX_QUEUE_SIZE";
/// Spans per export call.
const EXPORT_BATCH_SPANS: usize = 512;
/// Pause between exports.
const EXPORT_INTERVAL: Duration = Duration::from_secs(1);

/// Spans dropped because the queue was full, since start.
pub(crate) static DROPPED_SPANS: AtomicU64 = AtomicU64::new(0);

/// The tracer provider exporting to OTEL_EXPORTER_OTLP_ENDPOINT (and the other standard
/// OTEL_EXPORTER_OTLP_* variables the exporter reads).
pub(super) fn provider() -> Result<SdkTracerProvider, opentelemetry_otlp::ExporterBuildError> {
    let exporter = opentelemetry_otlp::SpanExporter::builder()
        .with_tonic()
        .build()?;
    let capacity = std::env::var(QUEUE_VARIABLE)
        .ok()
        .and_then(|value| value.parse::<usize>().ok())
        .filter(|spans| *spans > 0)
        .unwrap_or(QUEUE_SPANS);
    let waiting = Arc::new(AtomicUsize::new(0));
    let config = BatchConfigBuilder::default()
        .with_max_queue_size(capacity)
        .with_max_export_batch_size(EXPORT_BATCH_SPANS.min(capacity))
        .with_scheduled_delay(EXPORT_INTERVAL)
        .build();
    let batch = BatchSpanProcessor::builder(Counted {
        inner: exporter,
        waiting: Arc::clone(&waiting),
    })
    .with_batch_config(config)
    .build();
    Ok(SdkTracerProvider::builder()
        .with_resource(super::metrics::resource())
        .with_span_processor(Bounded {
            inner: batch,
            waiting,
            capacity,
        })
        .build())
}

/// The `tracing` layer that turns spans into OpenTelemetry spans of `provider`.
pub(super) fn layer<S>(provider: &SdkTracerProvider) -> impl tracing_subscriber::Layer<S>
where
    S: tracing::Subscriber + for<'span> LookupSpan<'span>,
{
    tracing_opentelemetry::layer()
        .with_tracer(provider.tracer("creditgate"))
        // Attributes nobody asked for, each a cost on every span.
        .with_location(false)
        .with_threads(false)
        .with_level(false)
        .with_target(false)
        .with_tracked_inactivity(false)
        // Nothing here calls the OpenTelemetry API inside a span, so entering one need not make
        // its context current: that was a lock and a thread-local push on every poll.
        .with_context_activation(false)
        // Our spans only: the libraries' (h2, tokio-postgres) would cost more than the calls.
        .with_filter(Targets::new().with_target("creditgate", tracing::Level::INFO))
}

/// Admits a span to the batch processor only while its queue has room.
#[derive(Debug)]
struct Bounded {
    inner: BatchSpanProcessor,
    /// Spans handed to `inner` and not yet taken by an export.
    waiting: Arc<AtomicUsize>,
    /// The size of `inner`'s queue.
    capacity: usize,
}

impl SpanProcessor for Bounded {
    fn on_start(&self, span: &mut opentelemetry_sdk::trace::Span, cx: &opentelemetry::Context) {
        self.inner.on_start(span, cx);
    }

    fn on_end(&self, span: SpanData) {
        let admitted = self
            .waiting
            .fetch_update(Ordering::AcqRel, Ordering::Acquire, |waiting| {
                (waiting < self.capacity).then_some(waiting + 1)
            })
            .is_ok();
        if admitted {
            self.inner.on_end(span);
        } else {
            DROPPED_SPANS.fetch_add(1, Ordering::Relaxed);
        }
    }

    fn force_flush(&self) -> OTelSdkResult {
        self.inner.force_flush()
    }

    fn shutdown_with_timeout(&self, timeout: Duration) -> OTelSdkResult {
        self.inner.shutdown_with_timeout(timeout)
    }

    fn set_resource(&mut self, resource: &Resource) {
        self.inner.set_resource(resource);
    }
}

/// The exporter, telling [`Bounded`] when spans leave the queue.
#[derive(Debug)]
struct Counted<E> {
    inner: E,
    waiting: Arc<AtomicUsize>,
}

impl<E: SpanExporter> SpanExporter for Counted<E> {
    async fn export(&self, batch: Vec<SpanData>) -> OTelSdkResult {
        // Taken out of the queue now, whether or not the collector takes them.
        self.waiting.fetch_sub(batch.len(), Ordering::AcqRel);
        self.inner.export(batch).await
    }

    fn shutdown_with_timeout(&self, timeout: Duration) -> OTelSdkResult {
        self.inner.shutdown_with_timeout(timeout)
    }

    fn force_flush(&self) -> OTelSdkResult {
        self.inner.force_flush()
    }

    fn set_resource(&mut self, resource: &Resource) {
        self.inner.set_resource(resource);
    }
}
