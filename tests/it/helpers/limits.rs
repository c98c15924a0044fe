//! Spend limits through the gRPC surface: scopes, SetSpendLimit, the limits GetAccount lists,
//! holds counted against a scope, what a SPEND_LIMIT_REACHED refusal must say, and the UTC
//! calendar the limits reset on.

use chrono::{DateTime, Datelike as _, Duration, NaiveDate, Utc};
use creditgate::proto::v1::{
    AuthorizeRequest, AuthorizeResponse, GetAccountRequest, Hold, LimitPeriod,
    SetSpendLimitRequest, SpendLimit, SpendScope, SpendScopeKind, get_account_request,
};
use tonic::{Code, Status};

use super::TestApp;
use super::money::{authorize_request, key};
use super::status::{assert_refused, metadata};

/// A scope of `kind` and `id`.
pub fn scope(kind: SpendScopeKind, id: &str) -> SpendScope {
    SpendScope {
        kind: kind as i32,
        scope_id: id.to_owned(),
    }
}

/// The member `id`.
pub fn member(id: &str) -> SpendScope {
    scope(SpendScopeKind::Member, id)
}

/// A SetSpendLimit with a fresh key; `limit` empty removes the limit.
pub fn limit_request(
    account_id: &str,
    scope: &SpendScope,
    period: LimitPeriod,
    limit: &str,
) -> SetSpendLimitRequest {
    SetSpendLimitRequest {
        account_id: account_id.to_owned(),
        idempotency_key: key(),
        scope: Some(scope.clone()),
        period: period as i32,
        limit: limit.to_owned(),
    }
}

/// An Authorize of `amount` counted against `scope`, with a fresh key.
pub fn scoped_request(account_id: &str, scope: &SpendScope, amount: &str) -> AuthorizeRequest {
    AuthorizeRequest {
        spend_scope: Some(scope.clone()),
        ..authorize_request(account_id, &key(), amount)
    }
}

/// A limit's (limit, spent, reserved) as the wire writes them.
pub fn figures(limit: &SpendLimit) -> (&str, &str, &str) {
    (&limit.limit, &limit.spent, &limit.reserved)
}

/// Asserts `status` is FAILED_PRECONDITION / SPEND_LIMIT_REACHED naming the scope, the period
/// and the figures behind the refusal (`limit`, `spent`, `reserved`).
#[track_caller]
pub fn assert_limit_reached(
    status: &Status,
    scope: &SpendScope,
    period: LimitPeriod,
    (limit, spent, reserved): (&str, &str, &str),
) {
    assert_refused(status, Code::FailedPrecondition, "SPEND_LIMIT_REACHED");
    let kind = SpendScopeKind::try_from(scope.kind).unwrap();
    let found = metadata(status);
    let mut keys: Vec<&str> = found.keys().map(String::as_str).collect();
    keys.sort_unstable();
    assert_eq!(
        keys,
        ["limit", "period", "reserved", "scope", "scope_id", "spent"],
        "{status:?}"
    );
    let value = |name: &str| found[name].as_str();
    let kind_name = kind.as_str_name().trim_start_matches("SPEND_SCOPE_KIND_");
    let period_name = period.as_str_name().trim_start_matches("LIMIT_PERIOD_");
    assert_eq!(
        (value("scope"), value("scope_id"), value("period")),
        (kind_name, scope.scope_id.as_str(), period_name),
        "{status:?}"
    );
    assert_eq!(
        (value("limit"), value("spent"), value("reserved")),
        (limit, spent, reserved),
        "{status:?}"
    );
}

/// The first instant of the UTC day after the one `at` is in.
pub fn next_day(at: DateTime<Utc>) -> DateTime<Utc> {
    at.date_naive().and_hms_opt(0, 0, 0).unwrap().and_utc() + Duration::days(1)
}

/// The first instant of the UTC month after the one `at` is in.
pub fn next_month(at: DateTime<Utc>) -> DateTime<Utc> {
    let (year, month) = match at.month() {
        12 => (at.year() + 1, 1),
        month => (at.year(), month + 1),
    };
    NaiveDate::from_ymd_opt(year, month, 1)
        .unwrap()
        .and_hms_opt(0, 0, 0)
        .unwrap()
        .and_utc()
}

impl TestApp {
    /// Moves the server clock forward to `at`.
    pub fn advance_to(&self, at: DateTime<Utc>) {
        let by = at - self.now();
        assert!(by > Duration::zero(), "the clock only moves forward");
        self.advance(by);
    }

    /// Sends a SetSpendLimit; the limit as the response shows it.
    pub async fn set_spend_limit(
        &self,
        request: SetSpendLimitRequest,
    ) -> Result<SpendLimit, Status> {
        self.account_as(Some(&self.key))
            .set_spend_limit(request)
            .await
            .map(|response| response.into_inner().spend_limit.unwrap())
    }

    /// Sets (or with `limit` empty removes) the limit of `scope` and `period`.
    pub async fn limit(
        &self,
        account_id: &str,
        scope: &SpendScope,
        period: LimitPeriod,
        limit: &str,
    ) -> SpendLimit {
        self.set_spend_limit(limit_request(account_id, scope, period, limit))
            .await
            .unwrap()
    }

    /// Every spend limit GetAccount lists for the account.
    pub async fn spend_limits(&self, account_id: &str) -> Vec<SpendLimit> {
        let lookup = Some(get_account_request::Lookup::AccountId(
            account_id.to_owned(),
        ));
        let response = self
            .account_as(Some(&self.key))
            .get_account(GetAccountRequest { lookup })
            .await
            .unwrap()
            .into_inner();
        assert!(!response.spend_limits_truncated);
        response.spend_limits
    }

    /// The limit of `scope` and `period` as GetAccount lists it, if there is one.
    pub async fn listed_limit(
        &self,
        account_id: &str,
        scope: &SpendScope,
        period: LimitPeriod,
    ) -> Option<SpendLimit> {
        self.spend_limits(account_id)
            .await
            .into_iter()
            .find(|limit| limit.scope.as_ref() == Some(scope) && limit.period == period as i32)
    }

    /// Asserts GetAccount lists the limit of `scope` and `period` with these figures
    /// (`limit`, `spent`, `reserved`).
    pub async fn assert_limit(
        &self,
        account_id: &str,
        scope: &SpendScope,
        period: LimitPeriod,
        expected: (&str, &str, &str),
    ) {
        let listed = self
            .listed_limit(account_id, scope, period)
            .await
            .unwrap_or_else(|| panic!("no {period:?} limit listed for {scope:?}"));
        assert_eq!(figures(&listed), expected, "{period:?} limit of {scope:?}");
    }

    /// An Authorize of `amount` counted against `scope`.
    pub async fn scoped_authorize(
        &self,
        account_id: &str,
        scope: &SpendScope,
        amount: &str,
    ) -> Result<AuthorizeResponse, Status> {
        self.credit()
            .authorize(scoped_request(account_id, scope, amount))
            .await
            .map(tonic::Response::into_inner)
    }

    /// A hold of `amount` counted against `scope`, with a TTL of `ttl_seconds` (0: default).
    pub async fn scoped_hold(
        &self,
        account_id: &str,
        scope: &SpendScope,
        amount: &str,
        ttl_seconds: u32,
    ) -> Hold {
        let request = AuthorizeRequest {
            ttl_seconds,
            ..scoped_request(account_id, scope, amount)
        };
        let hold = self
            .credit()
            .authorize(request)
            .await
            .unwrap()
            .into_inner()
            .hold
            .unwrap();
        assert_eq!(
            hold.spend_scope.as_ref(),
            Some(scope),
            "the hold names its scope"
        );
        hold
    }

    /// A hold of `amount` counted against `scope`, settled for all of it; the settlement id.
    pub async fn spend(&self, account_id: &str, scope: &SpendScope, amount: &str) -> String {
        let hold = self.scoped_hold(account_id, scope, amount, 0).await;
        let settled = self.settle(&hold.hold_id, amount, false).await.unwrap();
        settled.settlement.unwrap().settlement_id
    }
}
