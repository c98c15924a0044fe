//! AccountService: Billing: accounts, grants, allowances, spend limits, balances, ledger and usage.
//! Every RPC is authenticated by `RequireKey`; unserved ones answer UNIMPLEMENTED. Allowances
//! and spend limits are parsed and shown in [`super::plans`].

use std::pin::Pin;

use futures::Stream;
use prost::Message as _;
use tonic::{Request, Response, Status};

use super::{caller, convert, parse, plans, usage};
use crate::ledger::{Account, AccountStatus, AccountUpdate, SettlePolicy};
use crate::proto::v1;
use crate::proto::v1::account_service_server::AccountService;
use crate::proto::v1::get_account_request;
use crate::proto::v1::{
    CreateAccountRequest, CreateAccountResponse, ExportUsageRequest, ExportUsageResponse,
    GetAccountRequest, GetAccountResponse, GetBalanceRequest, GetBalanceResponse,
    GetUsageSummaryRequest, GetUsageSummaryResponse, GrantRequest, GrantResponse,
    ListLedgerRequest, ListLedgerResponse, ListUsageRequest, ListUsageResponse,
    SetAllowanceRequest, SetAllowanceResponse, SetSpendLimitRequest, SetSpendLimitResponse,
    UpdateAccountRequest, UpdateAccountResponse, WatchEventsRequest, WatchEventsResponse,
};
use crate::service::accounts::{self, GrantCommand, GrantOutcome, NewAccount};
use crate::service::holds::Encoder;
use crate::service::idempotency::Rpc;
use crate::service::{Context, ServiceError};

/// A boxed server stream of `T`.
pub(super) type ResponseStream<T> = Pin<Box<dyn Stream<Item = Result<T, Status>> + Send>>;

/// Serves `creditgate.v1.AccountService`.
#[derive(Debug, Clone)]
pub struct AccountApi {
    context: Context,
}

impl AccountApi {
    /// A service over `context`.
    pub fn new(context: Context) -> Self {
        AccountApi { context }
    }
}

/// Largest `expiring_within_days`.
const MAX_EXPIRING_WITHIN_DAYS: u32 = 3_650;
/// Largest grant priority.
const MAX_PRIORITY: u32 = 1_000_000;

fn settle_policy(
    value: i32,
    default: Option<SettlePolicy>,
) -> Result<Option<SettlePolicy>, ServiceError> {
    match v1::SettlePolicy::try_from(value) {
        Ok(v1::SettlePolicy::Unspecified) => Ok(default),
        Ok(v1::SettlePolicy::Debt) => Ok(Some(SettlePolicy::Debt)),
        Ok(v1::SettlePolicy::CapAtHold) => Ok(Some(SettlePolicy::CapAtHold)),
        Err(_) => Err(ServiceError::InvalidArgument {
            field: "settle_policy",
            message: format!("unknown policy {value}"),
        }),
    }
}

fn account_answer<R: prost::Message>(
    build: fn(v1::Account) -> R,
) -> impl FnOnce(&Account) -> Vec<u8> {
    move |row| build(convert::account(row)).encode_to_vec()
}

#[tonic::async_trait]
impl AccountService for AccountApi {
    async fn create_account(
        &self,
        request: Request<CreateAccountRequest>,
    ) -> Result<Response<CreateAccountResponse>, Status> {
        let caller = caller(&request)?;
        let message = request.into_inner();
        let fingerprint =
            parse::fingerprint(&message.idempotency_key, Rpc::CreateAccount, &message)?;
        let kind = match v1::AccountKind::try_from(message.kind) {
            Ok(v1::AccountKind::Organization | v1::AccountKind::User) => {
                v1::AccountKind::try_from(message.kind)
                    .map(|kind| kind.as_str_name())
                    .unwrap_or_default()
            }
            _ => {
                return Err(ServiceError::InvalidArgument {
                    field: "kind",
                    message: "ACCOUNT_KIND_ORGANIZATION or ACCOUNT_KIND_USER is required"
                        .to_owned(),
                }
                .into());
            }
        };
        let account = NewAccount {
            external_id: parse::reference("external_id", &message.external_id, true)?
                .unwrap_or_default(),
            kind: kind.to_owned(),
            settle_policy: settle_policy(message.settle_policy, Some(SettlePolicy::Debt))?
                .unwrap_or(SettlePolicy::Debt),
            entitlements: parse::entitlements(&message.entitlements)?,
            low_balance_threshold: parse::optional_amount(
                "low_balance_threshold",
                &message.low_balance_threshold,
                self.context.limits.max_amount,
                true,
            )?,
        };
        let encode = account_answer(|account| CreateAccountResponse {
            account: Some(account),
        });
        let bytes =
            accounts::create_account(&self.context, caller, account, fingerprint, encode).await?;
        Ok(Response::new(parse::decode(&bytes)?))
    }

    async fn get_account(
        &self,
        request: Request<GetAccountRequest>,
    ) -> Result<Response<GetAccountResponse>, Status> {
        let caller = caller(&request)?;
        let row = match &request.get_ref().lookup {
            Some(get_account_request::Lookup::AccountId(id)) => {
                accounts::get_account(
                    &self.context,
                    caller,
                    Some(parse::id("account_id", id)?),
                    None,
                )
                .await?
            }
            Some(get_account_request::Lookup::ExternalId(external_id)) => {
                let external_id =
                    parse::reference("external_id", external_id, true)?.unwrap_or_default();
                accounts::get_account(&self.context, caller, None, Some(&external_id)).await?
            }
            None => {
                return Err(ServiceError::InvalidArgument {
                    field: "lookup",
                    message: "set account_id or external_id".to_owned(),
                }
                .into());
            }
        };
        let account_id = row.account.account_id;
        Ok(Response::new(GetAccountResponse {
            account: Some(convert::account(&row.account)),
            allowances: row
                .allowances
                .iter()
                .map(|allowance| plans::allowance_of(account_id, allowance, row.now))
                .collect(),
            spend_limits: row
                .spend_limits
                .iter()
                .map(|limit| plans::spend_limit_of(account_id, limit, false))
                .collect(),
            spend_limits_truncated: row.spend_limits_truncated,
        }))
    }

    async fn update_account(
        &self,
        request: Request<UpdateAccountRequest>,
    ) -> Result<Response<UpdateAccountResponse>, Status> {
        let caller = caller(&request)?;
        let message = request.into_inner();
        let fingerprint =
            parse::fingerprint(&message.idempotency_key, Rpc::UpdateAccount, &message)?;
        let account_id = parse::id("account_id", &message.account_id)?;
        let status = match message.status.map(v1::AccountStatus::try_from) {
            None => None,
            Some(Ok(v1::AccountStatus::Active)) => Some(AccountStatus::Active),
            Some(Ok(v1::AccountStatus::Suspended)) => Some(AccountStatus::Suspended),
            Some(Ok(v1::AccountStatus::Closed)) => Some(AccountStatus::Closed),
            Some(_) => {
                return Err(ServiceError::InvalidArgument {
                    field: "status",
                    message: "ACTIVE, SUSPENDED or CLOSED".to_owned(),
                }
                .into());
            }
        };
        let update = AccountUpdate {
            status,
            settle_policy: match message.settle_policy {
                Some(value) => settle_policy(value, None)?,
                None => None,
            },
            entitlements: message
                .entitlements
                .as_ref()
                .map(|list| parse::entitlements(&list.values))
                .transpose()?,
            low_balance_threshold: message
                .low_balance_threshold
                .as_deref()
                .map(|text| {
                    parse::optional_amount(
                        "low_balance_threshold",
                        text,
                        self.context.limits.max_amount,
                        true,
                    )
                })
                .transpose()?,
        };
        let encode = account_answer(|account| UpdateAccountResponse {
            account: Some(account),
        });
        let bytes = accounts::update_account(
            &self.context,
            caller,
            account_id,
            update,
            fingerprint,
            encode,
        )
        .await?;
        Ok(Response::new(parse::decode(&bytes)?))
    }

    async fn grant(
        &self,
        request: Request<GrantRequest>,
    ) -> Result<Response<GrantResponse>, Status> {
        let caller = caller(&request)?;
        let message = request.into_inner();
        let fingerprint = parse::fingerprint(&message.idempotency_key, Rpc::Grant, &message)?;
        let source = v1::GrantSource::try_from(message.source)
            .ok()
            .and_then(convert::grant_source_from)
            .ok_or_else(|| ServiceError::InvalidArgument {
                field: "source",
                message: "a grant source is required (e.g. GRANT_SOURCE_PURCHASE)".to_owned(),
            })?;
        let time = |field: &'static str, value: &Option<prost_types::Timestamp>| {
            value
                .as_ref()
                .map(|timestamp| parse::time(field, timestamp))
                .transpose()
        };
        let priority = match message.priority {
            Some(priority) if priority > MAX_PRIORITY => {
                return Err(ServiceError::InvalidArgument {
                    field: "priority",
                    message: format!("at most {MAX_PRIORITY}"),
                }
                .into());
            }
            Some(priority) => Some(i32::try_from(priority).unwrap_or(i32::MAX)),
            None => None,
        };
        let command = GrantCommand {
            account_id: parse::id("account_id", &message.account_id)?,
            source,
            amount: parse::amount(
                "amount",
                &message.amount,
                self.context.limits.max_amount,
                false,
            )?,
            priority,
            effective_at: time("effective_at", &message.effective_at)?,
            expires_at: time("expires_at", &message.expires_at)?,
            external_ref: parse::reference("external_ref", &message.external_ref, false)?,
        };
        let encode: Encoder<GrantOutcome> = Box::new(|book, outcome| {
            GrantResponse {
                grant: Some(convert::grant(book.account().account_id, &outcome.grant)),
                available: book.available().to_string(),
                debt_repaid: outcome.debt_repaid.to_string(),
            }
            .encode_to_vec()
        });
        let bytes = accounts::grant(&self.context, caller, command, fingerprint, encode).await?;
        Ok(Response::new(parse::decode(&bytes)?))
    }

    async fn get_balance(
        &self,
        request: Request<GetBalanceRequest>,
    ) -> Result<Response<GetBalanceResponse>, Status> {
        let caller = caller(&request)?;
        let message = request.get_ref();
        let account_id = parse::id("account_id", &message.account_id)?;
        let days = match message.expiring_within_days {
            0 => 7,
            days if days > MAX_EXPIRING_WITHIN_DAYS => {
                return Err(ServiceError::InvalidArgument {
                    field: "expiring_within_days",
                    message: format!("at most {MAX_EXPIRING_WITHIN_DAYS}"),
                }
                .into());
            }
            days => days,
        };
        let balance = accounts::balance(
            &self.context,
            caller,
            account_id,
            chrono::Duration::days(i64::from(days)),
        )
        .await?;
        Ok(Response::new(GetBalanceResponse {
            available: balance.available.to_string(),
            held: balance.held.to_string(),
            debt: balance.debt.to_string(),
            buckets: balance
                .buckets
                .iter()
                .map(|bucket| v1::BalanceBucket {
                    source: convert::grant_source(bucket.source) as i32,
                    available: bucket.available.to_string(),
                    held: bucket.held.to_string(),
                    expiring_soon: bucket.expiring_soon.to_string(),
                })
                .collect(),
            as_of: Some(convert::timestamp(self.context.clock.now())),
        }))
    }

    async fn set_allowance(
        &self,
        request: Request<SetAllowanceRequest>,
    ) -> Result<Response<SetAllowanceResponse>, Status> {
        let caller = caller(&request)?;
        let response = plans::set_allowance(&self.context, caller, request.get_ref()).await?;
        Ok(Response::new(response))
    }

    async fn set_spend_limit(
        &self,
        request: Request<SetSpendLimitRequest>,
    ) -> Result<Response<SetSpendLimitResponse>, Status> {
        let caller = caller(&request)?;
        let response = plans::set_spend_limit(&self.context, caller, request.get_ref()).await?;
        Ok(Response::new(response))
    }

    async fn list_ledger(
        &self,
        request: Request<ListLedgerRequest>,
    ) -> Result<Response<ListLedgerResponse>, Status> {
        let caller = caller(&request)?;
        let response = usage::list_ledger(&self.context, caller, request.get_ref()).await?;
        Ok(Response::new(response))
    }

    async fn list_usage(
        &self,
        request: Request<ListUsageRequest>,
    ) -> Result<Response<ListUsageResponse>, Status> {
        let caller = caller(&request)?;
        let response = usage::list_usage(&self.context, caller, request.get_ref()).await?;
        Ok(Response::new(response))
    }

    async fn get_usage_summary(
        &self,
        request: Request<GetUsageSummaryRequest>,
    ) -> Result<Response<GetUsageSummaryResponse>, Status> {
        let caller = caller(&request)?;
        let response = usage::summary(&self.context, caller, request.get_ref()).await?;
        Ok(Response::new(response))
    }

    type ExportUsageStream = ResponseStream<ExportUsageResponse>;

    async fn export_usage(
        &self,
        request: Request<ExportUsageRequest>,
    ) -> Result<Response<Self::ExportUsageStream>, Status> {
        let caller = caller(&request)?;
        let stream = usage::export(&self.context, caller, request.get_ref()).await?;
        Ok(Response::new(stream))
    }

    type WatchEventsStream = ResponseStream<WatchEventsResponse>;

    async fn watch_events(
        &self,
        request: Request<WatchEventsRequest>,
    ) -> Result<Response<Self::WatchEventsStream>, Status> {
        let caller = caller(&request)?;
        let stream = super::events::watch(&self.context, caller, request.get_ref()).await?;
        Ok(Response::new(stream))
    }
}
