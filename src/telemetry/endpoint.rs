//! The Prometheus endpoint: `GET /metrics` on a port of its own answers the text exposition
//! format; anything else is 404. Plain HTTP/1.1, one task per connection.

use std::convert::Infallible;

use http::{Method, Request, Response, StatusCode, header};
use hyper::body::Incoming;
use hyper_util::rt::TokioIo;
use prometheus::TextEncoder;
use tokio::net::TcpListener;

/// Serves the registry on `listener` until its task is aborted. Needs the metrics installed
/// with the Prometheus exporter (see [`super::init`]); without them it answers 503.
pub async fn serve(listener: TcpListener) {
    loop {
        let stream = match listener.accept().await {
            Ok((stream, _)) => stream,
            Err(error) => {
                tracing::warn!(%error, "accepting a metrics connection failed");
                continue;
            }
        };
        tokio::spawn(async move {
            let service = hyper::service::service_fn(answer);
            let served = hyper::server::conn::http1::Builder::new()
                .serve_connection(TokioIo::new(stream), service)
                .await;
            if let Err(error) = served {
                tracing::debug!(%error, "a metrics connection failed");
            }
        });
    }
}

async fn answer(request: Request<Incoming>) -> Result<Response<String>, Infallible> {
    if request.method() != Method::GET || request.uri().path() != "/metrics" {
        return Ok(plain(
            StatusCode::NOT_FOUND,
            "not found: try GET /metrics\n",
        ));
    }
    let Some(registry) = super::metrics::registry() else {
        return Ok(plain(
            StatusCode::SERVICE_UNAVAILABLE,
            "metrics are not installed\n",
        ));
    };
    let encoder = TextEncoder::new();
    let mut text = String::new();
    if let Err(error) = encoder.encode_utf8(&registry.gather(), &mut text) {
        tracing::warn!(%error, "encoding the metrics failed");
        return Ok(plain(
            StatusCode::INTERNAL_SERVER_ERROR,
            "encoding failed\n",
        ));
    }
    let mut response = Response::new(text);
    response.headers_mut().insert(
        header::CONTENT_TYPE,
        header::HeaderValue::from_static(prometheus::TEXT_FORMAT),
    );
    Ok(response)
}

fn plain(status: StatusCode, text: &str) -> Response<String> {
    let mut response = Response::new(text.to_owned());
    *response.status_mut() = status;
    response
}
