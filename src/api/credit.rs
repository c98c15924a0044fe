//! CreditService: The hot path for workers: Quote, Authorize, ExtendHold, Settle, Release, Refund, GetHold.
//! Every RPC is authenticated by `RequireKey`; unserved ones answer UNIMPLEMENTED.

use deadpool_postgres::Pool;
use tonic::{Request, Response, Status};

use crate::proto::v1::credit_service_server::CreditService;
use crate::proto::v1::{
    AuthorizeRequest, AuthorizeResponse, ExtendHoldRequest, ExtendHoldResponse, GetHoldRequest,
    GetHoldResponse, QuoteRequest, QuoteResponse, RefundRequest, RefundResponse, ReleaseRequest,
    ReleaseResponse, SettleRequest, SettleResponse,
};

/// Serves `creditgate.v1.CreditService`.
#[derive(Debug, Clone)]
pub struct CreditApi {
    #[allow(dead_code)]
    pool: Pool,
}

impl CreditApi {
    /// A service over `pool`.
    pub fn new(pool: Pool) -> Self {
        CreditApi { pool }
    }
}

#[tonic::async_trait]
impl CreditService for CreditApi {
    async fn quote(
        &self,
        request: Request<QuoteRequest>,
    ) -> Result<Response<QuoteResponse>, Status> {
        crate::api::not_implemented(&request, "creditgate.v1.CreditService/Quote")
    }

    async fn authorize(
        &self,
        request: Request<AuthorizeRequest>,
    ) -> Result<Response<AuthorizeResponse>, Status> {
        crate::api::not_implemented(&request, "creditgate.v1.CreditService/Authorize")
    }

    async fn extend_hold(
        &self,
        request: Request<ExtendHoldRequest>,
    ) -> Result<Response<ExtendHoldResponse>, Status> {
        crate::api::not_implemented(&request, "creditgate.v1.CreditService/ExtendHold")
    }

    async fn settle(
        &self,
        request: Request<SettleRequest>,
    ) -> Result<Response<SettleResponse>, Status> {
        crate::api::not_implemented(&request, "creditgate.v1.CreditService/Settle")
    }

    async fn release(
        &self,
        request: Request<ReleaseRequest>,
    ) -> Result<Response<ReleaseResponse>, Status> {
        crate::api::not_implemented(&request, "creditgate.v1.CreditService/Release")
    }

    async fn refund(
        &self,
        request: Request<RefundRequest>,
    ) -> Result<Response<RefundResponse>, Status> {
        crate::api::not_implemented(&request, "creditgate.v1.CreditService/Refund")
    }

    async fn get_hold(
        &self,
        request: Request<GetHoldRequest>,
    ) -> Result<Response<GetHoldResponse>, Status> {
        crate::api::not_implemented(&request, "creditgate.v1.CreditService/GetHold")
    }
}
