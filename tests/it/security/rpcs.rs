//! The table of every creditgate RPC: which scopes the contract lets call it, what it acts
//! on, and one call naming a tenant's objects.

use creditgate::auth::Scope;
use creditgate::proto::v1::{
    AccountKind, AuthorizeRequest, CreateAccountRequest, ExportUsageRequest, ExtendHoldRequest,
    GetAccountRequest, GetBalanceRequest, GetCatalogRequest, GetHoldRequest,
    GetUsageSummaryRequest, GrantRequest, GrantSource, ListLedgerRequest, ListModelsRequest,
    ListUsageRequest, PublishCatalogRequest, QuoteRequest, RefundRequest, ReleaseRequest,
    SetAllowanceRequest, SetSpendLimitRequest, SettleRequest, UpdateAccountRequest, Usage,
    WatchEventsRequest, authorize_request, get_account_request, get_hold_request, settle_request,
};
use futures::future::BoxFuture;
use tonic::Status;

use crate::helpers::Clients;
use crate::helpers::money::{Objects, key};

pub type Call = fn(Clients, Objects) -> BoxFuture<'static, Result<(), Status>>;

/// What a row's RPC does once the caller passes authentication.
#[derive(Clone, Copy, PartialEq, Eq)]
pub enum Target {
    /// Names an account, hold or settlement: another tenant's is NOT_FOUND with this reason.
    Object(&'static str),
    /// Acts on the caller's tenant as a whole (a new account, the catalog).
    Tenant,
    /// UNIMPLEMENTED today: only its authentication is checked.
    Unimplemented,
}

pub struct Row {
    pub rpc: &'static str,
    /// Scopes the contract lets call it, besides `admin`, which passes every check.
    pub accepts: &'static [Scope],
    pub target: Target,
    pub call: Call,
}

const WORKER: &[Scope] = &[Scope::Worker];
const BILLING: &[Scope] = &[Scope::Billing];
const READ: &[Scope] = &[Scope::Reader, Scope::Billing];
const CATALOG_READ: &[Scope] = &[Scope::Reader, Scope::Worker, Scope::Billing];
const ADMIN_ONLY: &[Scope] = &[];

pub fn rows() -> Vec<Row> {
    use Target::{Tenant, Unimplemented};
    const ACCOUNT: Target = Target::Object("ACCOUNT_NOT_FOUND");
    const HOLD: Target = Target::Object("HOLD_NOT_FOUND");
    const SETTLEMENT: Target = Target::Object("SETTLEMENT_NOT_FOUND");
    let row = |rpc: &'static str, accepts: &'static [Scope], target: Target, call: Call| Row {
        rpc,
        accepts,
        target,
        call,
    };
    vec![
        row(
            "CreditService/Quote",
            WORKER,
            ACCOUNT,
            |mut clients, objects| {
                Box::pin(async move {
                    let usage = Some(Usage {
                        input_tokens: 10_000,
                        ..Usage::default()
                    });
                    let request = QuoteRequest {
                        model: "openai/o3-pro".into(),
                        usage,
                        account_id: objects.account_id,
                        ..QuoteRequest::default()
                    };
                    clients.credit.quote(request).await.map(drop)
                })
            },
        ),
        row(
            "CreditService/Authorize",
            WORKER,
            ACCOUNT,
            |mut clients, objects| {
                Box::pin(async move {
                    let price = Some(authorize_request::Price::Amount("1".into()));
                    let request = AuthorizeRequest {
                        account_id: objects.account_id,
                        idempotency_key: key(),
                        price,
                        ..AuthorizeRequest::default()
                    };
                    clients.credit.authorize(request).await.map(drop)
                })
            },
        ),
        row(
            "CreditService/ExtendHold",
            WORKER,
            HOLD,
            |mut clients, objects| {
                Box::pin(async move {
                    let request = ExtendHoldRequest {
                        hold_id: objects.hold_id,
                        idempotency_key: key(),
                        ttl_seconds: 600,
                        ..ExtendHoldRequest::default()
                    };
                    clients.credit.extend_hold(request).await.map(drop)
                })
            },
        ),
        row(
            "CreditService/Settle",
            WORKER,
            HOLD,
            |mut clients, objects| {
                Box::pin(async move {
                    let charge = Some(settle_request::Charge::Amount("0.5".into()));
                    let request = SettleRequest {
                        hold_id: objects.hold_id,
                        idempotency_key: key(),
                        charge,
                        partial: true,
                    };
                    clients.credit.settle(request).await.map(drop)
                })
            },
        ),
        row(
            "CreditService/Refund",
            WORKER,
            SETTLEMENT,
            |mut clients, objects| {
                Box::pin(async move {
                    let request = RefundRequest {
                        settlement_id: objects.settlement_id,
                        idempotency_key: key(),
                        amount: "0.01".into(),
                        ..RefundRequest::default()
                    };
                    clients.credit.refund(request).await.map(drop)
                })
            },
        ),
        row(
            "CreditService/GetHold",
            WORKER,
            HOLD,
            |mut clients, objects| {
                Box::pin(async move {
                    let lookup = Some(get_hold_request::Lookup::HoldId(objects.settled_hold_id));
                    clients
                        .credit
                        .get_hold(GetHoldRequest { lookup })
                        .await
                        .map(drop)
                })
            },
        ),
        // Last of the hold rows: the first allowed Release ends the own hold.
        row(
            "CreditService/Release",
            WORKER,
            HOLD,
            |mut clients, objects| {
                Box::pin(async move {
                    let request = ReleaseRequest {
                        hold_id: objects.hold_id,
                        idempotency_key: key(),
                        ..ReleaseRequest::default()
                    };
                    clients.credit.release(request).await.map(drop)
                })
            },
        ),
        row(
            "AccountService/CreateAccount",
            BILLING,
            Tenant,
            |mut clients, _| {
                Box::pin(async move {
                    let request = CreateAccountRequest {
                        idempotency_key: key(),
                        external_id: key(),
                        kind: AccountKind::Organization as i32,
                        ..CreateAccountRequest::default()
                    };
                    clients.account.create_account(request).await.map(drop)
                })
            },
        ),
        row(
            "AccountService/GetAccount",
            READ,
            ACCOUNT,
            |mut clients, objects| {
                Box::pin(async move {
                    let lookup = Some(get_account_request::Lookup::AccountId(objects.account_id));
                    clients
                        .account
                        .get_account(GetAccountRequest { lookup })
                        .await
                        .map(drop)
                })
            },
        ),
        row(
            "AccountService/UpdateAccount",
            BILLING,
            ACCOUNT,
            |mut clients, objects| {
                Box::pin(async move {
                    let request = UpdateAccountRequest {
                        account_id: objects.account_id,
                        idempotency_key: key(),
                        low_balance_threshold: Some("5".into()),
                        ..UpdateAccountRequest::default()
                    };
                    clients.account.update_account(request).await.map(drop)
                })
            },
        ),
        row(
            "AccountService/Grant",
            BILLING,
            ACCOUNT,
            |mut clients, objects| {
                Box::pin(async move {
                    let request = GrantRequest {
                        account_id: objects.account_id,
                        idempotency_key: key(),
                        source: GrantSource::Purchase as i32,
                        amount: "1".into(),
                        ..GrantRequest::default()
                    };
                    clients.account.grant(request).await.map(drop)
                })
            },
        ),
        row(
            "AccountService/GetBalance",
            READ,
            ACCOUNT,
            |mut clients, objects| {
                Box::pin(async move {
                    clients
                        .account
                        .get_balance(GetBalanceRequest {
                            account_id: objects.account_id,
                            expiring_within_days: 0,
                        })
                        .await
                        .map(drop)
                })
            },
        ),
        row(
            "AccountService/SetAllowance",
            BILLING,
            Unimplemented,
            |mut clients, objects| {
                Box::pin(async move {
                    let request = SetAllowanceRequest {
                        account_id: objects.account_id,
                        idempotency_key: key(),
                        ..SetAllowanceRequest::default()
                    };
                    clients.account.set_allowance(request).await.map(drop)
                })
            },
        ),
        row(
            "AccountService/SetSpendLimit",
            BILLING,
            Unimplemented,
            |mut clients, objects| {
                Box::pin(async move {
                    let request = SetSpendLimitRequest {
                        account_id: objects.account_id,
                        idempotency_key: key(),
                        ..SetSpendLimitRequest::default()
                    };
                    clients.account.set_spend_limit(request).await.map(drop)
                })
            },
        ),
        row(
            "AccountService/ListLedger",
            READ,
            Unimplemented,
            |mut clients, objects| {
                Box::pin(async move {
                    clients
                        .account
                        .list_ledger(ListLedgerRequest {
                            account_id: objects.account_id,
                            ..ListLedgerRequest::default()
                        })
                        .await
                        .map(drop)
                })
            },
        ),
        row(
            "AccountService/ListUsage",
            READ,
            Unimplemented,
            |mut clients, objects| {
                Box::pin(async move {
                    clients
                        .account
                        .list_usage(ListUsageRequest {
                            account_id: objects.account_id,
                            ..ListUsageRequest::default()
                        })
                        .await
                        .map(drop)
                })
            },
        ),
        row(
            "AccountService/GetUsageSummary",
            READ,
            Unimplemented,
            |mut clients, objects| {
                Box::pin(async move {
                    clients
                        .account
                        .get_usage_summary(GetUsageSummaryRequest {
                            account_id: objects.account_id,
                            ..GetUsageSummaryRequest::default()
                        })
                        .await
                        .map(drop)
                })
            },
        ),
        row(
            "AccountService/ExportUsage",
            READ,
            Unimplemented,
            |mut clients, objects| {
                Box::pin(async move {
                    clients
                        .account
                        .export_usage(ExportUsageRequest {
                            account_id: objects.account_id,
                            ..ExportUsageRequest::default()
                        })
                        .await
                        .map(drop)
                })
            },
        ),
        row(
            "AccountService/WatchEvents",
            READ,
            Unimplemented,
            |mut clients, objects| {
                Box::pin(async move {
                    clients
                        .account
                        .watch_events(WatchEventsRequest {
                            account_id: objects.account_id,
                            ..WatchEventsRequest::default()
                        })
                        .await
                        .map(drop)
                })
            },
        ),
        // No catalog: the server refuses the request itself once the caller may publish.
        row(
            "CatalogService/PublishCatalog",
            ADMIN_ONLY,
            Tenant,
            |mut clients, _| {
                Box::pin(async move {
                    clients
                        .catalog
                        .publish_catalog(PublishCatalogRequest {
                            idempotency_key: key(),
                            ..PublishCatalogRequest::default()
                        })
                        .await
                        .map(drop)
                })
            },
        ),
        row(
            "CatalogService/GetCatalog",
            CATALOG_READ,
            Tenant,
            |mut clients, _| {
                Box::pin(async move {
                    clients
                        .catalog
                        .get_catalog(GetCatalogRequest::default())
                        .await
                        .map(drop)
                })
            },
        ),
        row(
            "CatalogService/ListModels",
            CATALOG_READ,
            Tenant,
            |mut clients, _| {
                Box::pin(async move {
                    clients
                        .catalog
                        .list_models(ListModelsRequest::default())
                        .await
                        .map(drop)
                })
            },
        ),
    ]
}
