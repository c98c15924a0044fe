//! Authentication for every creditgate RPC, as a tower layer around each service: the key in
//! `authorization: Bearer <key>` must exist and carry a scope the RPC accepts. Health and
//! reflection are not wrapped and stay open.

use std::convert::Infallible;
use std::pin::Pin;
use std::sync::Arc;
use std::task::{Context, Poll};

use http::{Request, Response};
use tonic::body::Body;
use tonic::server::NamedService;
use tower::{Service, ServiceExt as _};

use crate::auth::{Scope, ScopeSet, bearer_key};
use crate::service::ServiceError;
use crate::service::access::Authenticator;

/// Scopes accepted by the RPC at `path` (`/creditgate.v1.AccountService/GetBalance`).
/// Unknown paths accept only `admin`, so a new RPC is closed until it is listed here.
pub fn accepted_scopes(path: &str) -> ScopeSet {
    let mut parts = path.trim_start_matches('/').splitn(2, '/');
    let service = parts.next().unwrap_or_default();
    let method = parts.next().unwrap_or_default();
    let scopes: &[Scope] = match (service, method) {
        ("creditgate.v1.CreditService", _) => &[Scope::Worker],
        (
            "creditgate.v1.AccountService",
            "GetAccount" | "GetBalance" | "ListLedger" | "ListUsage" | "GetUsageSummary"
            | "ExportUsage" | "WatchEvents",
        ) => &[Scope::Reader, Scope::Billing],
        ("creditgate.v1.AccountService", _) => &[Scope::Billing],
        ("creditgate.v1.CatalogService", "GetCatalog" | "ListModels") => {
            &[Scope::Reader, Scope::Worker, Scope::Billing]
        }
        // Endpoints receive every event of the tenant and hold a signing secret.
        ("creditgate.v1.WebhookService", _) => &[Scope::Admin],
        _ => &[Scope::Admin],
    };
    scopes.iter().copied().collect()
}

/// Wraps a generated service so that every call is authenticated first.
#[derive(Debug, Clone)]
pub struct RequireKey<S> {
    inner: S,
    authenticator: Arc<Authenticator>,
}

impl<S> RequireKey<S> {
    /// Wraps `inner`.
    pub fn new(inner: S, authenticator: Arc<Authenticator>) -> Self {
        RequireKey {
            inner,
            authenticator,
        }
    }
}

impl<S: NamedService> NamedService for RequireKey<S> {
    const NAME: &'static str = S::NAME;
}

impl<S> Service<Request<Body>> for RequireKey<S>
where
    S: Service<Request<Body>, Response = Response<Body>, Error = Infallible>
        + Clone
        + Send
        + 'static,
    S::Future: Send + 'static,
{
    type Response = Response<Body>;
    type Error = Infallible;
    type Future = Pin<Box<dyn Future<Output = Result<Response<Body>, Infallible>> + Send>>;

    fn poll_ready(&mut self, _context: &mut Context<'_>) -> Poll<Result<(), Infallible>> {
        // Generated tonic services are always ready; readiness is checked again in `oneshot`.
        Poll::Ready(Ok(()))
    }

    fn call(&mut self, mut request: Request<Body>) -> Self::Future {
        let inner = self.inner.clone();
        let authenticator = Arc::clone(&self.authenticator);
        Box::pin(async move {
            let accepted = accepted_scopes(request.uri().path());
            let key = request
                .headers()
                .get(http::header::AUTHORIZATION)
                .and_then(|value| value.to_str().ok())
                .and_then(bearer_key)
                .ok_or(ServiceError::MissingCredentials);
            let verdict = match key {
                Ok(key) => authenticator.authenticate(key, accepted).await,
                Err(error) => Err(error),
            };
            match verdict {
                Ok(caller) => {
                    tracing::Span::current()
                        .record("tenant_id", tracing::field::display(caller.tenant_id));
                    request.extensions_mut().insert(caller);
                    inner.oneshot(request).await.map(undecodable_is_invalid)
                }
                Err(error) => Ok(tonic::Status::from(error).into_http()),
            }
        })
    }
}

/// A request body that does not decode (not protobuf, text that is not UTF-8) is the caller's
/// error: tonic answers it INTERNAL before any handler runs, so it is rewritten here as
/// INVALID_ARGUMENT with the one error mapping (the decoder's message quotes no request bytes).
fn undecodable_is_invalid(response: Response<Body>) -> Response<Body> {
    let Some(status) = tonic::Status::from_header_map(response.headers()) else {
        return response;
    };
    if status.code() != tonic::Code::Internal
        || !status
            .message()
            .starts_with("failed to decode Protobuf message")
    {
        return response;
    }
    tonic::Status::from(ServiceError::InvalidArgument {
        field: "request",
        message: status.message().to_owned(),
    })
    .into_http()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn each_service_requires_its_scopes() {
        let worker: ScopeSet = [Scope::Worker].into_iter().collect();
        let reader: ScopeSet = [Scope::Reader].into_iter().collect();
        let billing: ScopeSet = [Scope::Billing].into_iter().collect();
        assert!(worker.permits(accepted_scopes("/creditgate.v1.CreditService/Authorize")));
        assert!(!reader.permits(accepted_scopes("/creditgate.v1.CreditService/Authorize")));
        assert!(reader.permits(accepted_scopes("/creditgate.v1.AccountService/GetBalance")));
        assert!(!reader.permits(accepted_scopes("/creditgate.v1.AccountService/Grant")));
        assert!(billing.permits(accepted_scopes("/creditgate.v1.AccountService/Grant")));
        assert!(!billing.permits(accepted_scopes(
            "/creditgate.v1.CatalogService/PublishCatalog"
        )));
        assert!(worker.permits(accepted_scopes("/creditgate.v1.CatalogService/ListModels")));
        assert!(!worker.permits(accepted_scopes("/creditgate.v1.Unknown/Anything")));
    }
}
