//! The check after a fault: the books hold every answered operation exactly once and nothing
//! else, each balance follows from the answers, and `creditgate verify` finds no discrepancy.

use std::collections::BTreeMap;

use rust_decimal::Decimal;

use super::TestDatabase;
use super::workload::{Answer, Outcome, decimal};

/// A hold as the answers say it must be stored.
#[derive(Debug, PartialEq)]
struct HoldRow {
    amount: Decimal,
    status: String,
    captured: Decimal,
}

/// A settlement as the answers say it must be stored.
#[derive(Debug, PartialEq)]
struct SettlementRow {
    total: Decimal,
    refunded: Decimal,
}

/// Ledger rows by id.
#[derive(Debug, Default)]
struct Books {
    grants: BTreeMap<String, Decimal>,
    holds: BTreeMap<String, HoldRow>,
    settlements: BTreeMap<String, SettlementRow>,
    refunds: BTreeMap<String, Decimal>,
    /// Available credits per account; held and debt must be zero once every run resolved.
    available: BTreeMap<String, Decimal>,
}

impl Books {
    /// What `answers` (in each client's order) imply.
    fn expected(answers: &[Answer]) -> Books {
        let mut books = Books::default();
        for answer in answers {
            books.apply(answer);
        }
        books
    }

    fn apply(&mut self, answer: &Answer) {
        match answer {
            Answer::Granted {
                account_id,
                grant_id,
                amount,
            } => {
                self.grants.insert(grant_id.clone(), *amount);
                *self.available.entry(account_id.clone()).or_default() += amount;
            }
            Answer::Authorized {
                hold_id, amount, ..
            } => {
                let hold = HoldRow {
                    amount: *amount,
                    status: "ACTIVE".to_owned(),
                    captured: Decimal::ZERO,
                };
                self.holds.insert(hold_id.clone(), hold);
            }
            Answer::Settled {
                account_id,
                hold_id,
                settlement_id,
                total,
            } => {
                let hold = self
                    .holds
                    .get_mut(hold_id)
                    .expect("settled an unknown hold");
                hold.status = "SETTLED".to_owned();
                hold.captured = *total;
                let settlement = SettlementRow {
                    total: *total,
                    refunded: Decimal::ZERO,
                };
                self.settlements.insert(settlement_id.clone(), settlement);
                *self.available.entry(account_id.clone()).or_default() -= total;
            }
            Answer::Released { hold_id } => {
                let hold = self
                    .holds
                    .get_mut(hold_id)
                    .expect("released an unknown hold");
                hold.status = "RELEASED".to_owned();
            }
            Answer::Refunded {
                account_id,
                settlement_id,
                refund_id,
                amount,
            } => {
                let settlement = self.settlements.get_mut(settlement_id).unwrap();
                settlement.refunded += amount;
                self.refunds.insert(refund_id.clone(), *amount);
                *self.available.entry(account_id.clone()).or_default() += amount;
            }
            Answer::Refused { .. } => {}
        }
    }

    /// The rows stored in `database`.
    async fn stored(database: &TestDatabase) -> Books {
        let client = database.pool.get().await.unwrap();
        let query = |sql: &'static str| {
            let client = &client;
            async move { client.query(sql, &[]).await.unwrap() }
        };
        let mut books = Books::default();
        for row in query("SELECT grant_id::text, amount FROM grants").await {
            books.grants.insert(row.get(0), row.get(1));
        }
        for row in query("SELECT hold_id::text, amount, status, captured FROM holds").await {
            let hold = HoldRow {
                amount: row.get(1),
                status: row.get(2),
                captured: row.get(3),
            };
            books.holds.insert(row.get(0), hold);
        }
        for row in query("SELECT settlement_id::text, total, refunded FROM settlements").await {
            let settlement = SettlementRow {
                total: row.get(1),
                refunded: row.get(2),
            };
            books.settlements.insert(row.get(0), settlement);
        }
        for row in query("SELECT refund_id::text, amount FROM refunds").await {
            books.refunds.insert(row.get(0), row.get(1));
        }
        books
    }
}

/// Asserts that the books of `database` are exactly what `outcome`'s answers imply.
pub async fn assert_exactly_once(outcome: &Outcome, database: &TestDatabase) {
    let refused: Vec<String> = outcome
        .answers
        .iter()
        .filter_map(|answer| match answer {
            Answer::Refused { operation, status } => Some(format!("{operation}: {status}")),
            _ => None,
        })
        .collect();
    assert!(refused.is_empty(), "unexpected errors: {refused:#?}");
    let expected = Books::expected(&outcome.answers);
    let stored = Books::stored(database).await;
    let mut differences = Vec::new();
    differences.extend(compare("grant", &stored.grants, &expected.grants));
    differences.extend(compare("hold", &stored.holds, &expected.holds));
    differences.extend(compare(
        "settlement",
        &stored.settlements,
        &expected.settlements,
    ));
    differences.extend(compare("refund", &stored.refunds, &expected.refunds));
    assert!(
        differences.is_empty(),
        "the books differ from the answers:\n{}",
        differences.join("\n")
    );
    for (account_id, balance) in &outcome.balances {
        let found = (
            decimal(&balance.available),
            decimal(&balance.held),
            decimal(&balance.debt),
        );
        let available = expected.available[account_id];
        assert_eq!(
            found,
            (available, Decimal::ZERO, Decimal::ZERO),
            "available, held and debt of {account_id}"
        );
    }
    assert_verify_clean(&database.url()).await;
}

/// Each row expected (here: answered) but not stored (lost), stored but not expected (doubled
/// or made behind the client's back), or stored differently.
pub(super) fn compare<Row: PartialEq + std::fmt::Debug>(
    table: &str,
    stored: &BTreeMap<String, Row>,
    expected: &BTreeMap<String, Row>,
) -> Vec<String> {
    let mut differences = Vec::new();
    for (id, wanted) in expected {
        match stored.get(id) {
            None => differences.push(format!("{table} {id}: expected {wanted:?}, not stored")),
            Some(row) if row != wanted => {
                differences.push(format!("{table} {id}: expected {wanted:?}, stored {row:?}"));
            }
            Some(_) => {}
        }
    }
    for (id, row) in stored {
        if !expected.contains_key(id) {
            differences.push(format!("{table} {id}: stored {row:?}, not expected"));
        }
    }
    differences
}

/// Runs `creditgate verify` against the database, as an operator would after an incident.
async fn assert_verify_clean(database_url: &str) {
    let output = tokio::process::Command::new(env!("CARGO_BIN_EXE_creditgate"))
        .arg("verify")
        .env("DATABASE_URL", database_url)
        .env("RUST_LOG", "error")
        .output()
        .await
        .unwrap();
    let stdout = String::from_utf8_lossy(&output.stdout);
    assert!(
        output.status.success() && stdout.contains(" 0 discrepancies"),
        "verify: {stdout}{}",
        String::from_utf8_lossy(&output.stderr)
    );
}

/// The subjects `creditgate verify` found by the check whose name starts with `check`.
pub fn found_by<'a>(
    found: &'a [creditgate::store::verify::Discrepancy],
    check: &str,
) -> Vec<&'a str> {
    found
        .iter()
        .filter(|found| found.check.starts_with(check))
        .map(|found| found.subject.as_str())
        .collect()
}
