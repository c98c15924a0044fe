//! Fixtures for the money path: requests, accounts, grants, holds and settlements, through the
//! real gRPC surface.

use creditgate::proto::v1::{
    AccountKind, AllowancePeriod, AuthorizeRequest, AuthorizeResponse, CreateAccountRequest,
    CreateWebhookEndpointRequest, ExtendHoldRequest, GetBalanceRequest, GetBalanceResponse,
    GetHoldRequest, GetHoldResponse, GrantRequest, GrantResponse, GrantSource, Hold, HoldStatus,
    LimitPeriod, RefundRequest, ReleaseRequest, SetAllowanceRequest, SetSpendLimitRequest,
    SettlePolicy, SettleRequest, SettleResponse, SpendScope, SpendScopeKind, authorize_request,
    get_hold_request, settle_request,
};

use creditgate::proto::v1::account_service_client::AccountServiceClient;

use super::{Authed, TestApp};

/// A fresh idempotency key.
pub fn key() -> String {
    uuid::Uuid::now_v7().to_string()
}

/// An Authorize of `amount` on an account.
pub fn authorize_request(
    account_id: &str,
    idempotency_key: &str,
    amount: &str,
) -> AuthorizeRequest {
    AuthorizeRequest {
        account_id: account_id.to_owned(),
        idempotency_key: idempotency_key.to_owned(),
        price: Some(authorize_request::Price::Amount(amount.to_owned())),
        ..AuthorizeRequest::default()
    }
}

/// A final Settle of `amount` on a hold.
pub fn settle_request(hold_id: &str, idempotency_key: &str, amount: &str) -> SettleRequest {
    SettleRequest {
        hold_id: hold_id.to_owned(),
        idempotency_key: idempotency_key.to_owned(),
        charge: Some(settle_request::Charge::Amount(amount.to_owned())),
        partial: false,
        ..Default::default()
    }
}

/// An ExtendHold to `amount` (empty: unchanged) and `ttl_seconds` (0: unchanged).
pub fn extend_request(
    hold_id: &str,
    idempotency_key: &str,
    amount: &str,
    ttl_seconds: u32,
) -> ExtendHoldRequest {
    ExtendHoldRequest {
        hold_id: hold_id.to_owned(),
        idempotency_key: idempotency_key.to_owned(),
        amount: amount.to_owned(),
        ttl_seconds,
        ..Default::default()
    }
}

/// A Release of a hold, for `why`.
pub fn release_request(hold_id: &str, idempotency_key: &str, why: &str) -> ReleaseRequest {
    ReleaseRequest {
        hold_id: hold_id.to_owned(),
        idempotency_key: idempotency_key.to_owned(),
        reason: why.to_owned(),
        ..Default::default()
    }
}

/// A Refund of `amount` (empty: all that is left) of a settlement.
pub fn refund_request(settlement_id: &str, idempotency_key: &str, amount: &str) -> RefundRequest {
    RefundRequest {
        settlement_id: settlement_id.to_owned(),
        idempotency_key: idempotency_key.to_owned(),
        reason: "support".to_owned(),
        amount: amount.to_owned(),
        ..Default::default()
    }
}

/// A never-expiring Grant of `amount` purchased credits.
pub fn grant_request(account_id: &str, idempotency_key: &str, amount: &str) -> GrantRequest {
    GrantRequest {
        account_id: account_id.to_owned(),
        idempotency_key: idempotency_key.to_owned(),
        source: GrantSource::Purchase as i32,
        amount: amount.to_owned(),
        ..GrantRequest::default()
    }
}

/// A SetAllowance of `amount` free daily credits named `name`, from today, in UTC.
pub fn allowance_request(
    account_id: &str,
    idempotency_key: &str,
    name: &str,
    amount: &str,
) -> SetAllowanceRequest {
    SetAllowanceRequest {
        account_id: account_id.to_owned(),
        idempotency_key: idempotency_key.to_owned(),
        name: name.to_owned(),
        source: GrantSource::FreeDaily as i32,
        amount: amount.to_owned(),
        period: AllowancePeriod::Day as i32,
        enabled: true,
        ..SetAllowanceRequest::default()
    }
}

/// A SetSpendLimit of `limit` a UTC day (empty: removed) for the member `member`.
pub fn spend_limit_request(
    account_id: &str,
    idempotency_key: &str,
    member: &str,
    limit: &str,
) -> SetSpendLimitRequest {
    SetSpendLimitRequest {
        account_id: account_id.to_owned(),
        idempotency_key: idempotency_key.to_owned(),
        scope: Some(SpendScope {
            kind: SpendScopeKind::Member as i32,
            scope_id: member.to_owned(),
        }),
        period: LimitPeriod::Day as i32,
        limit: limit.to_owned(),
    }
}

/// A CreateAccount of an organization under the DEBT policy.
pub fn create_account_request(idempotency_key: &str, external_id: &str) -> CreateAccountRequest {
    CreateAccountRequest {
        idempotency_key: idempotency_key.to_owned(),
        external_id: external_id.to_owned(),
        kind: AccountKind::Organization as i32,
        settle_policy: SettlePolicy::Debt as i32,
        ..CreateAccountRequest::default()
    }
}

/// Creates an account with `request` through `account`; returns its id.
pub async fn create_account(
    account: &mut AccountServiceClient<Authed>,
    request: CreateAccountRequest,
) -> String {
    account
        .create_account(request)
        .await
        .unwrap()
        .into_inner()
        .account
        .unwrap()
        .account_id
}

/// A new account (fresh key and external id) made through `account`; its id.
pub async fn new_account(account: &mut AccountServiceClient<Authed>) -> String {
    create_account(account, create_account_request(&key(), &key())).await
}

/// One tenant's objects: an account with credits, two live holds and a settled one.
#[derive(Clone, Debug)]
pub struct Objects {
    pub account_id: String,
    /// A live hold of 10.
    pub hold_id: String,
    /// Another live hold of 10, for requests that name a hold other than `hold_id`.
    pub spare_hold_id: String,
    /// A hold of 10 settled for 5.
    pub settled_hold_id: String,
    /// The settlement of `settled_hold_id` (5 captured).
    pub settlement_id: String,
    /// A webhook endpoint of the tenant.
    pub webhook_endpoint_id: String,
}

/// Refunds `amount` of a settlement ("" = all that is left) under a fresh key.
pub async fn refund(
    app: &TestApp,
    settlement_id: &str,
    amount: &str,
) -> Result<creditgate::proto::v1::RefundResponse, tonic::Status> {
    app.credit()
        .refund(refund_request(settlement_id, &key(), amount))
        .await
        .map(tonic::Response::into_inner)
}

impl TestApp {
    /// Creates an account with `request` through `api_key`'s tenant; returns its id.
    pub async fn create_account_as(&self, api_key: &str, request: CreateAccountRequest) -> String {
        create_account(&mut self.account_as(Some(api_key)), request).await
    }

    /// Creates an account with `policy`; returns its id.
    pub async fn account_with(&self, policy: SettlePolicy) -> String {
        let request = CreateAccountRequest {
            settle_policy: policy as i32,
            ..create_account_request(&key(), &key())
        };
        self.create_account_as(&self.key, request).await
    }

    /// Creates an account with the default policy (DEBT).
    pub async fn account(&self) -> String {
        self.account_with(SettlePolicy::Debt).await
    }

    /// An account holding `amount` purchased credits.
    pub async fn funded_account(&self, amount: &str) -> String {
        let account_id = self.account().await;
        self.grant(&account_id, GrantSource::Purchase, amount).await;
        account_id
    }

    /// [`Objects`] of the tenant of `api_key`, on an account funded with 1000.
    pub async fn objects_of(&self, api_key: &str) -> Objects {
        let mut account = self.account_as(Some(api_key));
        let mut credit = self.credit_as(Some(api_key));
        let account_id = self
            .create_account_as(api_key, create_account_request(&key(), &key()))
            .await;
        account
            .grant(grant_request(&account_id, &key(), "1000"))
            .await
            .unwrap();
        let mut holds = Vec::new();
        for _ in 0..3 {
            let held = credit
                .authorize(authorize_request(&account_id, &key(), "10"))
                .await
                .unwrap()
                .into_inner();
            holds.push(held.hold.unwrap().hold_id);
        }
        let settled = credit
            .settle(settle_request(&holds[2], &key(), "5"))
            .await
            .unwrap()
            .into_inner();
        let endpoint = self
            .webhooks_as(Some(api_key))
            .create_webhook_endpoint(CreateWebhookEndpointRequest {
                idempotency_key: key(),
                url: "http://127.0.0.1:9/hooks".to_owned(),
                ..CreateWebhookEndpointRequest::default()
            })
            .await
            .unwrap()
            .into_inner();
        Objects {
            webhook_endpoint_id: endpoint.endpoint.unwrap().endpoint_id,
            account_id,
            hold_id: holds[0].clone(),
            spare_hold_id: holds[1].clone(),
            settled_hold_id: holds[2].clone(),
            settlement_id: settled.settlement.unwrap().settlement_id,
        }
    }

    /// Grants `amount` from `source`, never expiring.
    pub async fn grant(
        &self,
        account_id: &str,
        source: GrantSource,
        amount: &str,
    ) -> GrantResponse {
        self.grant_request(GrantRequest {
            source: source as i32,
            ..grant_request(account_id, &key(), amount)
        })
        .await
        .unwrap()
    }

    /// Sends a Grant.
    pub async fn grant_request(
        &self,
        request: GrantRequest,
    ) -> Result<GrantResponse, tonic::Status> {
        self.account_as(Some(&self.key))
            .grant(request)
            .await
            .map(tonic::Response::into_inner)
    }

    /// Authorizes `amount` with a fresh key.
    pub async fn authorize(
        &self,
        account_id: &str,
        amount: &str,
    ) -> Result<AuthorizeResponse, tonic::Status> {
        self.credit()
            .authorize(authorize_request(account_id, &key(), amount))
            .await
            .map(tonic::Response::into_inner)
    }

    /// A hold of `amount` (fresh key, default TTL).
    pub async fn hold(&self, account_id: &str, amount: &str) -> Hold {
        self.authorize(account_id, amount)
            .await
            .unwrap()
            .hold
            .unwrap()
    }

    /// Settles `amount` on a hold with a fresh key.
    pub async fn settle(
        &self,
        hold_id: &str,
        amount: &str,
        partial: bool,
    ) -> Result<SettleResponse, tonic::Status> {
        self.credit()
            .settle(SettleRequest {
                partial,
                ..settle_request(hold_id, &key(), amount)
            })
            .await
            .map(tonic::Response::into_inner)
    }

    /// A hold and its settlements, by id.
    pub async fn get_hold(&self, hold_id: &str) -> GetHoldResponse {
        self.credit()
            .get_hold(GetHoldRequest {
                lookup: Some(get_hold_request::Lookup::HoldId(hold_id.to_owned())),
                ..Default::default()
            })
            .await
            .unwrap()
            .into_inner()
    }

    /// A hold and its settlements, by the idempotency key of the Authorize that made it.
    pub async fn get_hold_by_key(&self, key: &str) -> Result<GetHoldResponse, tonic::Status> {
        self.credit()
            .get_hold(GetHoldRequest {
                lookup: Some(get_hold_request::Lookup::AuthorizeIdempotencyKey(
                    key.to_owned(),
                )),
                ..Default::default()
            })
            .await
            .map(tonic::Response::into_inner)
    }

    /// A hold's status.
    pub async fn hold_status(&self, hold_id: &str) -> HoldStatus {
        self.get_hold(hold_id).await.hold.unwrap().status()
    }

    /// The account's balance.
    pub async fn balance(&self, account_id: &str) -> GetBalanceResponse {
        self.account_as(Some(&self.key))
            .get_balance(GetBalanceRequest {
                account_id: account_id.to_owned(),
                expiring_within_days: 0,
            })
            .await
            .unwrap()
            .into_inner()
    }

    /// Asserts the account's available and held credits.
    pub async fn assert_balance(&self, account_id: &str, available: &str, held: &str) {
        let balance = self.balance(account_id).await;
        assert_eq!(
            (balance.available.as_str(), balance.held.as_str()),
            (available, held)
        );
    }
}
