//! Allowances through the gRPC surface and as stored: SetAllowance requests, an account's
//! allowances as GetAccount shows them, per-source balances and the grants each period made.

use chrono::{DateTime, Utc};
use creditgate::ledger::{Every, Recurrence, parse_date, parse_zone};
use creditgate::proto::v1::{
    Allowance, AllowancePeriod, GetAccountRequest, GetBalanceResponse, GrantSource,
    SetAllowanceRequest, get_account_request,
};
use rust_decimal::Decimal;
use tonic::Status;

use super::money::key;
use super::time::time;
use super::{TestApp, TestDatabase};

/// A SetAllowance of `amount` from `source` every `period`, enabled, anchored today in UTC.
pub fn allowance_request(
    account_id: &str,
    name: &str,
    source: GrantSource,
    amount: &str,
    period: AllowancePeriod,
) -> SetAllowanceRequest {
    SetAllowanceRequest {
        account_id: account_id.to_owned(),
        idempotency_key: key(),
        name: name.to_owned(),
        source: source as i32,
        amount: amount.to_owned(),
        period: period as i32,
        anchor_date: String::new(),
        time_zone: String::new(),
        enabled: true,
    }
}

/// The periods of `allowance` as the server computes them (to compare with what it shows).
pub fn recurrence_of(allowance: &Allowance) -> Recurrence {
    Recurrence {
        every: match allowance.period() {
            AllowancePeriod::Day => Every::Day,
            AllowancePeriod::Month => Every::Month,
            AllowancePeriod::Unspecified => panic!("an allowance without a period"),
        },
        anchor: parse_date(&allowance.anchor_date).unwrap(),
        zone: parse_zone(&allowance.time_zone).unwrap(),
    }
}

/// Available credits of `source` in `balance` ("0" when it has no bucket).
pub fn available_of(balance: &GetBalanceResponse, source: GrantSource) -> String {
    balance
        .buckets
        .iter()
        .find(|bucket| bucket.source == source as i32)
        .map_or_else(|| "0".to_owned(), |bucket| bucket.available.clone())
}

/// A grant an allowance made for one period, as stored.
#[derive(Debug, Clone, PartialEq)]
pub struct PeriodGrant {
    pub allowance_id: String,
    pub grant_id: String,
    pub period_start: DateTime<Utc>,
    /// The grant's source, as stored ("FREE_DAILY").
    pub source: String,
    pub amount: Decimal,
    pub remaining: Decimal,
    pub effective_at: DateTime<Utc>,
    pub expires_at: Option<DateTime<Utc>>,
}

/// Every grant the allowances of `account_id` made, oldest period first.
pub async fn period_grants(database: &TestDatabase, account_id: &str) -> Vec<PeriodGrant> {
    let client = database.pool.get().await.unwrap();
    let account: uuid::Uuid = account_id.parse().unwrap();
    client
        .query(
            "SELECT ag.allowance_id::text, ag.grant_id::text, ag.period_start, g.source, g.amount, \
             g.remaining, g.effective_at, g.expires_at FROM allowance_grants ag \
             JOIN grants g ON g.grant_id = ag.grant_id \
             WHERE ag.account_id = $1 ORDER BY ag.period_start, ag.allowance_id",
            &[&account],
        )
        .await
        .unwrap()
        .iter()
        .map(|row| PeriodGrant {
            allowance_id: row.get(0),
            grant_id: row.get(1),
            period_start: row.get(2),
            source: row.get(3),
            amount: row.get::<_, Decimal>(4).normalize(),
            remaining: row.get::<_, Decimal>(5).normalize(),
            effective_at: row.get(6),
            expires_at: row.get(7),
        })
        .collect()
}

/// The periods granted more than once: (allowance, period start, grants). Empty when the
/// backstop held.
pub async fn periods_granted_twice(database: &TestDatabase) -> Vec<(String, DateTime<Utc>, i64)> {
    let client = database.pool.get().await.unwrap();
    client
        .query(
            "SELECT allowance_id::text, period_start, count(*) FROM allowance_grants \
             GROUP BY 1, 2 HAVING count(*) > 1",
            &[],
        )
        .await
        .unwrap()
        .iter()
        .map(|row| (row.get(0), row.get(1), row.get(2)))
        .collect()
}

impl TestApp {
    /// Sends a SetAllowance; the allowance as stored.
    pub async fn set_allowance(&self, request: SetAllowanceRequest) -> Result<Allowance, Status> {
        self.account_as(Some(&self.key))
            .set_allowance(request)
            .await
            .map(|response| response.into_inner().allowance.unwrap())
    }

    /// The account's allowances as GetAccount shows them now.
    pub async fn allowances(&self, account_id: &str) -> Vec<Allowance> {
        let lookup = Some(get_account_request::Lookup::AccountId(
            account_id.to_owned(),
        ));
        self.account_as(Some(&self.key))
            .get_account(GetAccountRequest { lookup })
            .await
            .unwrap()
            .into_inner()
            .allowances
    }

    /// When the allowance named `name` resets next, as GetAccount shows it now.
    pub async fn next_reset(&self, account_id: &str, name: &str) -> Option<DateTime<Utc>> {
        let allowances = self.allowances(account_id).await;
        let allowance = allowances
            .iter()
            .find(|allowance| allowance.name == name)
            .unwrap_or_else(|| panic!("no allowance {name:?} in {allowances:#?}"));
        allowance.next_reset_at.as_ref().map(time)
    }
}
