//! AccountService: Billing: accounts, grants, allowances, spend limits, balances, ledger and usage.
//! Every RPC is authenticated by `RequireKey`; unserved ones answer UNIMPLEMENTED.

use std::pin::Pin;

use deadpool_postgres::Pool;
use futures::Stream;
use tonic::{Request, Response, Status};

use crate::proto::v1::account_service_server::AccountService;
use crate::proto::v1::{
    CreateAccountRequest, CreateAccountResponse, ExportUsageRequest, ExportUsageResponse,
    GetAccountRequest, GetAccountResponse, GetBalanceRequest, GetBalanceResponse,
    GetUsageSummaryRequest, GetUsageSummaryResponse, GrantRequest, GrantResponse,
    ListLedgerRequest, ListLedgerResponse, ListUsageRequest, ListUsageResponse,
    SetAllowanceRequest, SetAllowanceResponse, SetSpendLimitRequest, SetSpendLimitResponse,
    UpdateAccountRequest, UpdateAccountResponse, WatchEventsRequest, WatchEventsResponse,
};

/// A boxed server stream of `T`.
type ResponseStream<T> = Pin<Box<dyn Stream<Item = Result<T, Status>> + Send>>;

/// Serves `creditgate.v1.AccountService`.
#[derive(Debug, Clone)]
pub struct AccountApi {
    #[allow(dead_code)]
    pool: Pool,
}

impl AccountApi {
    /// A service over `pool`.
    pub fn new(pool: Pool) -> Self {
        AccountApi { pool }
    }
}

#[tonic::async_trait]
impl AccountService for AccountApi {
    async fn create_account(
        &self,
        request: Request<CreateAccountRequest>,
    ) -> Result<Response<CreateAccountResponse>, Status> {
        crate::api::not_implemented(&request, "creditgate.v1.AccountService/CreateAccount")
    }

    async fn get_account(
        &self,
        request: Request<GetAccountRequest>,
    ) -> Result<Response<GetAccountResponse>, Status> {
        crate::api::not_implemented(&request, "creditgate.v1.AccountService/GetAccount")
    }

    async fn update_account(
        &self,
        request: Request<UpdateAccountRequest>,
    ) -> Result<Response<UpdateAccountResponse>, Status> {
        crate::api::not_implemented(&request, "creditgate.v1.AccountService/UpdateAccount")
    }

    async fn grant(
        &self,
        request: Request<GrantRequest>,
    ) -> Result<Response<GrantResponse>, Status> {
        crate::api::not_implemented(&request, "creditgate.v1.AccountService/Grant")
    }

    async fn set_allowance(
        &self,
        request: Request<SetAllowanceRequest>,
    ) -> Result<Response<SetAllowanceResponse>, Status> {
        crate::api::not_implemented(&request, "creditgate.v1.AccountService/SetAllowance")
    }

    async fn set_spend_limit(
        &self,
        request: Request<SetSpendLimitRequest>,
    ) -> Result<Response<SetSpendLimitResponse>, Status> {
        crate::api::not_implemented(&request, "creditgate.v1.AccountService/SetSpendLimit")
    }

    async fn get_balance(
        &self,
        request: Request<GetBalanceRequest>,
    ) -> Result<Response<GetBalanceResponse>, Status> {
        crate::api::not_implemented(&request, "creditgate.v1.AccountService/GetBalance")
    }

    async fn list_ledger(
        &self,
        request: Request<ListLedgerRequest>,
    ) -> Result<Response<ListLedgerResponse>, Status> {
        crate::api::not_implemented(&request, "creditgate.v1.AccountService/ListLedger")
    }

    async fn list_usage(
        &self,
        request: Request<ListUsageRequest>,
    ) -> Result<Response<ListUsageResponse>, Status> {
        crate::api::not_implemented(&request, "creditgate.v1.AccountService/ListUsage")
    }

    async fn get_usage_summary(
        &self,
        request: Request<GetUsageSummaryRequest>,
    ) -> Result<Response<GetUsageSummaryResponse>, Status> {
        crate::api::not_implemented(&request, "creditgate.v1.AccountService/GetUsageSummary")
    }

    type ExportUsageStream = ResponseStream<ExportUsageResponse>;

    async fn export_usage(
        &self,
        request: Request<ExportUsageRequest>,
    ) -> Result<Response<Self::ExportUsageStream>, Status> {
        crate::api::not_implemented(&request, "creditgate.v1.AccountService/ExportUsage")
    }

    type WatchEventsStream = ResponseStream<WatchEventsResponse>;

    async fn watch_events(
        &self,
        request: Request<WatchEventsRequest>,
    ) -> Result<Response<Self::WatchEventsStream>, Status> {
        crate::api::not_implemented(&request, "creditgate.v1.AccountService/WatchEvents")
    }
}
