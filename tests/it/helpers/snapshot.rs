//! Everything a call may change, read at one moment: every account of the app's tenant as
//! GetAccount (with its allowances and spend limits) and GetBalance answer, every hold,
//! settlement, grant and refund row, the grants allowances made by period, how many
//! catalog versions the app's tenant has (a new tenant gets its first), and how many
//! idempotency records and journal entries there are. A refused call must leave it as it was;
//! an applied one must change exactly what the call says.

use std::collections::BTreeMap;
use std::str::FromStr as _;

use chrono::{DateTime, SecondsFormat, Utc};
use creditgate::proto::v1::{
    Account, Allowance, GetAccountRequest, SpendLimit, get_account_request,
};
use rust_decimal::Decimal;

use super::TestApp;
use super::books::compare;

/// An account as the API reads it.
#[derive(Debug, Clone, PartialEq)]
pub struct AccountState {
    pub account: Account,
    /// By name, as GetAccount lists them.
    pub allowances: Vec<Allowance>,
    /// By scope and period, as GetAccount lists them.
    pub spend_limits: Vec<SpendLimit>,
    pub available: String,
    pub held: String,
    pub debt: String,
}

impl AccountState {
    /// A new account as created: no credits, allowances nor limits.
    pub fn new(account: Account) -> AccountState {
        AccountState {
            account,
            allowances: Vec::new(),
            spend_limits: Vec::new(),
            available: "0".to_owned(),
            held: "0".to_owned(),
            debt: "0".to_owned(),
        }
    }

    /// Adds `available` and `held` (signed decimals) to the balance.
    pub fn shift(&mut self, available: &str, held: &str) {
        self.available = plus(&self.available, available);
        self.held = plus(&self.held, held);
    }
}

/// A hold row.
#[derive(Debug, Clone, PartialEq)]
pub struct HoldRow {
    pub status: String,
    pub amount: String,
    pub captured: String,
}

impl HoldRow {
    /// A new ACTIVE hold of `amount`.
    pub fn active(amount: &str) -> HoldRow {
        HoldRow {
            status: "ACTIVE".to_owned(),
            amount: amount.to_owned(),
            captured: "0".to_owned(),
        }
    }
}

/// A settlement row.
#[derive(Debug, Clone, PartialEq)]
pub struct SettlementRow {
    pub total: String,
    pub refunded: String,
}

/// See the module documentation.
#[derive(Debug, Clone, PartialEq)]
pub struct Snapshot {
    pub accounts: BTreeMap<String, AccountState>,
    pub holds: BTreeMap<String, HoldRow>,
    pub settlements: BTreeMap<String, SettlementRow>,
    /// Grant amounts by grant id, but for the grants allowances made.
    pub grants: BTreeMap<String, String>,
    /// The amounts of the grants allowances made, by [`allowance_grant`] (no answer names
    /// their grant ids).
    pub allowance_grants: BTreeMap<String, String>,
    /// Refund amounts by refund id.
    pub refunds: BTreeMap<String, String>,
    pub catalog_versions: i64,
    pub webhook_endpoints: i64,
    pub idempotency_records: i64,
    pub journal_entries: i64,
}

impl Snapshot {
    /// Reads everything now.
    pub async fn of(app: &TestApp) -> Snapshot {
        let client = app.pool.get().await.unwrap();
        let rows = |sql: &'static str| {
            let client = &client;
            async move { client.query(sql, &[]).await.unwrap() }
        };
        let count = |sql: &'static str| {
            let client = &client;
            async move { client.query_one(sql, &[]).await.unwrap().get::<_, i64>(0) }
        };
        let mut accounts = BTreeMap::new();
        let ids = client
            .query(
                "SELECT account_id::text FROM accounts WHERE tenant_id = $1",
                &[&app.tenant_id],
            )
            .await
            .unwrap();
        let mut reader = app.account_as(Some(&app.key));
        for row in ids {
            let account_id: String = row.get(0);
            let lookup = Some(get_account_request::Lookup::AccountId(account_id.clone()));
            let read = reader
                .get_account(GetAccountRequest { lookup })
                .await
                .unwrap()
                .into_inner();
            let balance = app.balance(&account_id).await;
            let state = AccountState {
                account: read.account.unwrap(),
                allowances: read.allowances,
                spend_limits: read.spend_limits,
                available: balance.available,
                held: balance.held,
                debt: balance.debt,
            };
            accounts.insert(account_id, state);
        }
        let mut holds = BTreeMap::new();
        for row in rows("SELECT hold_id::text, status, amount, captured FROM holds").await {
            let hold = HoldRow {
                status: row.get(1),
                amount: wire(row.get(2)),
                captured: wire(row.get(3)),
            };
            holds.insert(row.get(0), hold);
        }
        let mut settlements = BTreeMap::new();
        for row in rows("SELECT settlement_id::text, total, refunded FROM settlements").await {
            let settlement = SettlementRow {
                total: wire(row.get(1)),
                refunded: wire(row.get(2)),
            };
            settlements.insert(row.get(0), settlement);
        }
        let amounts = |found: Vec<tokio_postgres::Row>| -> BTreeMap<String, String> {
            found
                .iter()
                .map(|row| (row.get(0), wire(row.get(1))))
                .collect()
        };
        Snapshot {
            accounts,
            holds,
            settlements,
            grants: amounts(
                rows(
                    "SELECT grant_id::text, amount FROM grants \
                     WHERE grant_id NOT IN (SELECT grant_id FROM allowance_grants)",
                )
                .await,
            ),
            allowance_grants: rows(
                "SELECT allowance_id::text, period_start, amount \
                 FROM allowance_grants JOIN grants USING (grant_id)",
            )
            .await
            .iter()
            .map(|row| (allowance_grant(row.get(0), row.get(1)), wire(row.get(2))))
            .collect(),
            refunds: amounts(rows("SELECT refund_id::text, amount FROM refunds").await),
            catalog_versions: client
                .query_one(
                    "SELECT count(*) FROM catalog_versions WHERE tenant_id = $1",
                    &[&app.tenant_id],
                )
                .await
                .unwrap()
                .get(0),
            webhook_endpoints: count("SELECT count(*) FROM webhook_endpoints").await,
            idempotency_records: count("SELECT count(*) FROM idempotency_records").await,
            journal_entries: count("SELECT count(*) FROM journal_entries").await,
        }
    }

    /// The account `account_id` as read.
    pub fn account(&self, account_id: &str) -> &AccountState {
        self.accounts
            .get(account_id)
            .unwrap_or_else(|| panic!("no account {account_id} in the books"))
    }

    /// The account `account_id`, to change what is expected of it.
    pub fn account_mut(&mut self, account_id: &str) -> &mut AccountState {
        self.accounts
            .get_mut(account_id)
            .unwrap_or_else(|| panic!("no account {account_id} in the books"))
    }

    /// The hold `hold_id`, to change what is expected of it.
    pub fn hold_mut(&mut self, hold_id: &str) -> &mut HoldRow {
        self.holds
            .get_mut(hold_id)
            .unwrap_or_else(|| panic!("no hold {hold_id} in the books"))
    }

    /// Asserts these books are `expected`, listing every difference.
    #[track_caller]
    pub fn assert_is(&self, expected: &Snapshot, what: &str) {
        let mut differences = Vec::new();
        differences.extend(compare("account", &self.accounts, &expected.accounts));
        differences.extend(compare("hold", &self.holds, &expected.holds));
        let settlements = compare("settlement", &self.settlements, &expected.settlements);
        differences.extend(settlements);
        differences.extend(compare("grant", &self.grants, &expected.grants));
        let by_allowance = compare(
            "allowance grant",
            &self.allowance_grants,
            &expected.allowance_grants,
        );
        differences.extend(by_allowance);
        differences.extend(compare("refund", &self.refunds, &expected.refunds));
        let counts = [
            (
                "catalog versions",
                self.catalog_versions,
                expected.catalog_versions,
            ),
            (
                "webhook endpoints",
                self.webhook_endpoints,
                expected.webhook_endpoints,
            ),
            (
                "idempotency records",
                self.idempotency_records,
                expected.idempotency_records,
            ),
            (
                "journal entries",
                self.journal_entries,
                expected.journal_entries,
            ),
        ];
        for (table, found, wanted) in counts {
            if found != wanted {
                differences.push(format!("{table}: {found}, expected {wanted}"));
            }
        }
        assert!(
            differences.is_empty(),
            "{what}: the books differ from what is expected:\n{}",
            differences.join("\n")
        );
    }
}

/// The key of the grant the allowance `allowance_id` made for the period from `period_start`.
pub fn allowance_grant(allowance_id: &str, period_start: DateTime<Utc>) -> String {
    let start = period_start.to_rfc3339_opts(SecondsFormat::AutoSi, true);
    format!("{allowance_id} from {start}")
}

/// `a + b` of two wire decimals, written as the wire writes it.
pub fn plus(a: &str, b: &str) -> String {
    wire(Decimal::from_str(a).unwrap() + Decimal::from_str(b).unwrap())
}

/// A stored amount as the wire writes it ("10.000000000" as "10").
fn wire(amount: Decimal) -> String {
    amount.normalize().to_string()
}
