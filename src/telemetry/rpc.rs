//! The RPC layer around every served call: a span named after the method (its parent the
//! caller's W3C `traceparent` when traces are exported), the gRPC code on the span when the
//! answer ends, and the latency histogram by method and code. The code is read where gRPC
//! puts it: the answer's headers (trailers-only errors) or its trailers.

use std::collections::HashMap;
use std::pin::Pin;
use std::sync::OnceLock;
use std::task::{Context, Poll};
use std::time::{Duration, Instant};

use http::{HeaderMap, Request, Response};
use pin_project_lite::pin_project;
use tracing::Span;
use tracing::field::Empty;
use tracing_opentelemetry::OpenTelemetrySpanExt as _;

/// The label of every path that is not a served method, so that a caller cannot grow the
/// label set.
const UNKNOWN_METHOD: &str = "unknown";

/// Served paths (`/package.Service/Method`) and their labels (`package.Service/Method`),
/// fixed by the first server of the process; the same protos are served by every later one.
static METHODS: OnceLock<HashMap<&'static str, &'static str>> = OnceLock::new();

/// Adds [`Traced`] around a service.
#[derive(Debug, Clone, Copy)]
pub struct RpcLayer;

impl RpcLayer {
    /// The layer for a server answering `paths` (`/package.Service/Method`).
    pub fn new(paths: impl IntoIterator<Item = String>) -> RpcLayer {
        METHODS.get_or_init(|| {
            paths
                .into_iter()
                .map(|path| {
                    // Leaked once per process: the labels live as long as the metrics.
                    let path: &'static str = Box::leak(path.into_boxed_str());
                    (path, path.trim_start_matches('/'))
                })
                .collect()
        });
        RpcLayer
    }
}

impl<S> tower::Layer<S> for RpcLayer {
    type Service = Traced<S>;

    fn layer(&self, inner: S) -> Traced<S> {
        Traced { inner }
    }
}

/// A service whose calls are traced and measured.
#[derive(Debug, Clone)]
pub struct Traced<S> {
    inner: S,
}

impl<S, RequestBody, ResponseBody> tower::Service<Request<RequestBody>> for Traced<S>
where
    S: tower::Service<Request<RequestBody>, Response = Response<ResponseBody>>,
{
    type Response = Response<Answer<ResponseBody>>;
    type Error = S::Error;
    type Future = Call<S::Future>;

    fn poll_ready(&mut self, context: &mut Context<'_>) -> Poll<Result<(), Self::Error>> {
        self.inner.poll_ready(context)
    }

    fn call(&mut self, request: Request<RequestBody>) -> Self::Future {
        let started = Instant::now();
        let method = METHODS
            .get()
            .and_then(|methods| methods.get(request.uri().path()).copied())
            .unwrap_or(UNKNOWN_METHOD);
        let exporting = super::exporting_traces();
        let span = if exporting {
            let span = tracing::info_span!(
                "rpc",
                otel.name = method,
                otel.kind = "server",
                otel.status_code = Empty,
                rpc.system = "grpc",
                rpc.method = method,
                rpc.grpc.status_code = Empty,
                tenant_id = Empty,
                account_id = Empty,
                hold_id = Empty,
                settlement_id = Empty,
            );
            let parent = opentelemetry::global::get_text_map_propagator(|propagator| {
                propagator.extract(&Headers(request.headers()))
            });
            let _ = span.set_parent(parent);
            span
        } else {
            // For the log lines alone: the fewest fields to format on every call.
            tracing::info_span!(
                "rpc",
                rpc.method = method,
                tenant_id = Empty,
                account_id = Empty,
                hold_id = Empty,
                settlement_id = Empty,
            )
        };
        let future = span.in_scope(|| self.inner.call(request));
        Call {
            inner: future,
            finish: Some(Finish {
                span,
                started,
                method,
                exporting,
            }),
        }
    }
}

pin_project! {
    /// The inner service's answer, polled in the RPC's span.
    pub struct Call<F> {
        #[pin]
        inner: F,
        finish: Option<Finish>,
    }

    impl<F> PinnedDrop for Call<F> {
        fn drop(this: Pin<&mut Self>) {
            // Dropped before the answer: the caller went away.
            if let Some(mut finish) = this.project().finish.take() {
                finish.record(tonic::Code::Cancelled);
            }
        }
    }
}

impl<F, ResponseBody, Error> Future for Call<F>
where
    F: Future<Output = Result<Response<ResponseBody>, Error>>,
{
    type Output = Result<Response<Answer<ResponseBody>>, Error>;

    fn poll(self: Pin<&mut Self>, context: &mut Context<'_>) -> Poll<Self::Output> {
        let this = self.project();
        let polled = match this.finish {
            Some(finish) => finish.span.in_scope(|| this.inner.poll(context)),
            None => this.inner.poll(context),
        };
        let Poll::Ready(result) = polled else {
            return Poll::Pending;
        };
        let Some(mut finish) = this.finish.take() else {
            return Poll::Ready(result.map(|response| response.map(Answer::done)));
        };
        Poll::Ready(match result {
            Ok(response) => {
                // Trailers-only answers (every error of a unary call) carry the code here.
                let code = status_code(response.headers());
                Ok(response.map(|body| {
                    let mut answer = Answer {
                        inner: body,
                        finish: Some(finish),
                    };
                    if let Some(code) = code {
                        answer.end(code);
                    }
                    answer
                }))
            }
            Err(error) => {
                finish.record(tonic::Code::Unknown);
                Err(error)
            }
        })
    }
}

pin_project! {
    /// An answer's body, which records the RPC when its code is known or when it is dropped
    /// unfinished (the caller went away: CANCELLED).
    pub struct Answer<B> {
        #[pin]
        inner: B,
        finish: Option<Finish>,
    }

    impl<B> PinnedDrop for Answer<B> {
        fn drop(this: Pin<&mut Self>) {
            if let Some(mut finish) = this.project().finish.take() {
                finish.record(tonic::Code::Cancelled);
            }
        }
    }
}

impl<B> Answer<B> {
    fn done(inner: B) -> Answer<B> {
        Answer {
            inner,
            finish: None,
        }
    }

    fn end(&mut self, code: tonic::Code) {
        if let Some(mut finish) = self.finish.take() {
            finish.record(code);
        }
    }
}

impl<B: http_body::Body> http_body::Body for Answer<B> {
    type Data = B::Data;
    type Error = B::Error;

    fn poll_frame(
        self: Pin<&mut Self>,
        context: &mut Context<'_>,
    ) -> Poll<Option<Result<http_body::Frame<Self::Data>, Self::Error>>> {
        let this = self.project();
        let polled = this.inner.poll_frame(context);
        let code = match &polled {
            Poll::Ready(Some(Ok(frame))) => frame.trailers_ref().and_then(status_code),
            Poll::Ready(Some(Err(_))) => Some(tonic::Code::Internal),
            // Ended without trailers: a gRPC answer always has them.
            Poll::Ready(None) => Some(tonic::Code::Unknown),
            Poll::Pending => None,
        };
        if let Some(code) = code
            && let Some(mut finish) = this.finish.take()
        {
            finish.record(code);
        }
        polled
    }

    fn is_end_stream(&self) -> bool {
        self.inner.is_end_stream()
    }

    fn size_hint(&self) -> http_body::SizeHint {
        self.inner.size_hint()
    }
}

/// What an RPC records when its code is known.
struct Finish {
    span: Span,
    started: Instant,
    method: &'static str,
    /// Whether the span is exported, and so wants the code.
    exporting: bool,
}

impl Finish {
    fn record(&mut self, code: tonic::Code) {
        let elapsed: Duration = self.started.elapsed();
        if self.exporting {
            self.span.record("rpc.grpc.status_code", code as i32);
            if server_fault(code) {
                self.span.record("otel.status_code", "ERROR");
            }
        }
        if let Some(metrics) = super::metrics() {
            metrics.rpc(self.method, code_name(code), elapsed);
        }
    }
}

/// The gRPC code in `headers`, if there is one.
fn status_code(headers: &HeaderMap) -> Option<tonic::Code> {
    let value = headers.get("grpc-status")?;
    Some(tonic::Code::from_bytes(value.as_bytes()))
}

/// Codes that mean the server failed, not the caller (OpenTelemetry's gRPC server rule).
fn server_fault(code: tonic::Code) -> bool {
    use tonic::Code;
    matches!(
        code,
        Code::Unknown
            | Code::DeadlineExceeded
            | Code::Unimplemented
            | Code::Internal
            | Code::Unavailable
            | Code::DataLoss
    )
}

/// The code's name as gRPC spells it, a bounded label.
fn code_name(code: tonic::Code) -> &'static str {
    use tonic::Code;
    match code {
        Code::Ok => "OK",
        Code::Cancelled => "CANCELLED",
        Code::Unknown => "UNKNOWN",
        Code::InvalidArgument => "INVALID_ARGUMENT",
        Code::DeadlineExceeded => "DEADLINE_EXCEEDED",
        Code::NotFound => "NOT_FOUND",
        Code::AlreadyExists => "ALREADY_EXISTS",
        Code::PermissionDenied => "PERMISSION_DENIED",
        Code::ResourceExhausted => "RESOURCE_EXHAUSTED",
        Code::FailedPrecondition => "FAILED_PRECONDITION",
        Code::Aborted => "ABORTED",
        Code::OutOfRange => "OUT_OF_RANGE",
        Code::Unimplemented => "UNIMPLEMENTED",
        Code::Internal => "INTERNAL",
        Code::Unavailable => "UNAVAILABLE",
        Code::DataLoss => "DATA_LOSS",
        Code::Unauthenticated => "UNAUTHENTICATED",
    }
}

/// Request headers as the propagator reads them.
struct Headers<'a>(&'a HeaderMap);

impl opentelemetry::propagation::Extractor for Headers<'_> {
    fn get(&self, key: &str) -> Option<&str> {
        self.0.get(key).and_then(|value| value.to_str().ok())
    }

    fn keys(&self) -> Vec<&str> {
        self.0.keys().map(http::HeaderName::as_str).collect()
    }
}
