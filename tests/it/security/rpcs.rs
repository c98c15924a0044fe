//! The table of every creditgate RPC: which scopes the contract lets call it, what it acts
//! on, and one call naming a tenant's objects.

use creditgate::auth::Scope;
use creditgate::proto::v1::{
    ExportUsageRequest, GetAccountRequest, GetBalanceRequest, GetCatalogRequest, GetHoldRequest,
    GetUsageSummaryRequest, ListLedgerRequest, ListModelsRequest, ListUsageRequest,
    PublishCatalogRequest, QuoteRequest, SettleRequest, UpdateAccountRequest, Usage,
    WatchEventsRequest, get_account_request, get_hold_request,
};
use futures::future::BoxFuture;
use tonic::Status;

use crate::helpers::Clients;
use crate::helpers::money::{
    Objects, allowance_request, authorize_request, create_account_request, extend_request,
    grant_request, key, refund_request, release_request, settle_request, spend_limit_request,
};

mod webhooks;

pub type Call = fn(Clients, Objects) -> BoxFuture<'static, Result<(), Status>>;

/// The RPCs of the contract whose method `keep` holds for, as `Service/Method`, sorted.
pub fn contract_rpcs(keep: impl Fn(&prost_reflect::MethodDescriptor) -> bool) -> Vec<String> {
    let descriptors =
        prost_reflect::DescriptorPool::decode(creditgate::proto::FILE_DESCRIPTOR_SET).unwrap();
    let mut rpcs: Vec<String> = descriptors
        .services()
        .filter(|service| service.package_name() == "creditgate.v1")
        .flat_map(|service| service.methods().collect::<Vec<_>>())
        .filter(|method| keep(method))
        .map(|method| format!("{}/{}", method.parent_service().name(), method.name()))
        .collect();
    rpcs.sort();
    rpcs
}

/// What a row's RPC does once the caller passes authentication.
#[derive(Clone, Copy, PartialEq, Eq)]
pub enum Target {
    /// Names an account, hold or settlement: another tenant's is NOT_FOUND with this reason.
    Object(&'static str),
    /// Acts on the caller's tenant as a whole (a new account, the catalog).
    Tenant,
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
pub const ADMIN_ONLY: &[Scope] = &[];

/// A call of the AccountService `$method` with a `$request` naming the account, every other
/// field left at its default.
macro_rules! on_account {
    ($method:ident($request:ident)) => {
        |mut clients, objects| {
            Box::pin(async move {
                let request = $request {
                    account_id: objects.account_id,
                    ..$request::default()
                };
                clients.account.$method(request).await.map(drop)
            })
        }
    };
}

pub fn rows() -> Vec<Row> {
    let mut rows = money_rows();
    rows.extend(webhooks::rows());
    rows
}

fn money_rows() -> Vec<Row> {
    use Target::Tenant;
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
                    let request = authorize_request(&objects.account_id, &key(), "1");
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
                    let request = extend_request(&objects.hold_id, &key(), "", 600);
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
                    let request = SettleRequest {
                        partial: true,
                        ..settle_request(&objects.hold_id, &key(), "0.5")
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
                    let request = refund_request(&objects.settlement_id, &key(), "0.01");
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
                        .get_hold(GetHoldRequest {
                            lookup,
                            ..Default::default()
                        })
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
                    let request = release_request(&objects.hold_id, &key(), "");
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
                    let request = create_account_request(&key(), &key());
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
                    let request = grant_request(&objects.account_id, &key(), "1");
                    clients.account.grant(request).await.map(drop)
                })
            },
        ),
        row(
            "AccountService/GetBalance",
            READ,
            ACCOUNT,
            on_account!(get_balance(GetBalanceRequest)),
        ),
        // One name and one scope: every allowed call replaces the same rule and limit.
        row(
            "AccountService/SetAllowance",
            BILLING,
            ACCOUNT,
            |mut clients, objects| {
                Box::pin(async move {
                    let request = allowance_request(&objects.account_id, &key(), "daily", "1");
                    clients.account.set_allowance(request).await.map(drop)
                })
            },
        ),
        row(
            "AccountService/SetSpendLimit",
            BILLING,
            ACCOUNT,
            |mut clients, objects| {
                Box::pin(async move {
                    let request = spend_limit_request(&objects.account_id, &key(), "alice", "10");
                    clients.account.set_spend_limit(request).await.map(drop)
                })
            },
        ),
        row(
            "AccountService/ListLedger",
            READ,
            ACCOUNT,
            on_account!(list_ledger(ListLedgerRequest)),
        ),
        row(
            "AccountService/ListUsage",
            READ,
            ACCOUNT,
            on_account!(list_usage(ListUsageRequest)),
        ),
        row(
            "AccountService/GetUsageSummary",
            READ,
            ACCOUNT,
            on_account!(get_usage_summary(GetUsageSummaryRequest)),
        ),
        // Read to its end: a refusal may come in the stream.
        row(
            "AccountService/ExportUsage",
            READ,
            ACCOUNT,
            |mut clients, objects| {
                Box::pin(async move {
                    let request = ExportUsageRequest {
                        account_id: objects.account_id,
                        ..ExportUsageRequest::default()
                    };
                    let mut chunks = clients.account.export_usage(request).await?.into_inner();
                    while chunks.message().await?.is_some() {}
                    Ok(())
                })
            },
        ),
        row(
            "AccountService/WatchEvents",
            READ,
            ACCOUNT,
            on_account!(watch_events(WatchEventsRequest)),
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
