//! Fixtures for the money path: accounts, grants, holds, through the real gRPC surface.

use creditgate::proto::v1::{
    AccountKind, AuthorizeRequest, AuthorizeResponse, CreateAccountRequest, GetBalanceRequest,
    GetBalanceResponse, GrantRequest, GrantResponse, GrantSource, SettlePolicy, SettleRequest,
    SettleResponse, authorize_request, settle_request,
};

use super::TestApp;

/// A fresh idempotency key.
pub fn key() -> String {
    uuid::Uuid::now_v7().to_string()
}

impl TestApp {
    /// Creates an account with `policy`; returns its id.
    pub async fn account_with(&self, policy: SettlePolicy) -> String {
        let response = self
            .account_as(Some(&self.key))
            .create_account(CreateAccountRequest {
                idempotency_key: key(),
                external_id: key(),
                kind: AccountKind::Organization as i32,
                settle_policy: policy as i32,
                ..CreateAccountRequest::default()
            })
            .await
            .unwrap()
            .into_inner();
        response.account.unwrap().account_id
    }

    /// Creates an account with the default policy (DEBT).
    pub async fn account(&self) -> String {
        self.account_with(SettlePolicy::Debt).await
    }

    /// Grants `amount` from `source`, never expiring.
    pub async fn grant(
        &self,
        account_id: &str,
        source: GrantSource,
        amount: &str,
    ) -> GrantResponse {
        self.grant_request(GrantRequest {
            account_id: account_id.to_owned(),
            idempotency_key: key(),
            source: source as i32,
            amount: amount.to_owned(),
            ..GrantRequest::default()
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
            .authorize(AuthorizeRequest {
                account_id: account_id.to_owned(),
                idempotency_key: key(),
                price: Some(authorize_request::Price::Amount(amount.to_owned())),
                ..AuthorizeRequest::default()
            })
            .await
            .map(tonic::Response::into_inner)
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
                hold_id: hold_id.to_owned(),
                idempotency_key: key(),
                charge: Some(settle_request::Charge::Amount(amount.to_owned())),
                partial,
            })
            .await
            .map(tonic::Response::into_inner)
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
