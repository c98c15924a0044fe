//! The gRPC surface: decode a request, call a use case, encode the answer. The only layer that
//! knows gRPC status codes (all chosen in [`error`]).

pub mod account;
pub mod authentication;
pub mod catalog;
mod convert;
pub mod credit;
pub mod error;
mod events;
mod parse;
mod plans;
mod pricing;
mod usage;
pub mod webhooks;

use tonic::Request;

use crate::service::ServiceError;
use crate::service::access::Caller;

/// The caller the authentication layer attached to `request`.
pub fn caller<T>(request: &Request<T>) -> Result<Caller, ServiceError> {
    request
        .extensions()
        .get::<Caller>()
        .copied()
        .ok_or(ServiceError::MissingCredentials)
}

/// The answer of an RPC this server does not serve yet, after authentication has passed.
pub fn not_implemented<T, R>(request: &Request<T>, rpc: &'static str) -> Result<R, tonic::Status> {
    caller(request)?;
    Err(ServiceError::NotImplemented { rpc }.into())
}
