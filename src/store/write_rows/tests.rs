//! The rows a change adds to the column tables.

use chrono::{TimeZone as _, Utc};

use super::*;
use crate::ledger::{AccountStatus, Changes, SettlePolicy};
use crate::money::Credits;
use crate::store::write_sql::UPDATE_ACCOUNTS;
use crate::store::write_table::WriteRows as _;
use crate::store::writes::{HoldForm, Writes};

fn labels(names: &[&str]) -> Vec<(String, String)> {
    names
        .iter()
        .map(|name| ((*name).to_owned(), format!("{name} value")))
        .collect()
}

#[test]
fn each_hold_names_its_slice_of_the_shared_label_arrays() {
    let mut holds = NewHoldColumns::default();
    holds.push_labels(&labels(&["a", "b"]));
    holds.push_labels(&[]);
    holds.push_labels(&labels(&["c"]));
    assert_eq!(holds.label_first, [1, 3, 3]);
    assert_eq!(holds.label_last, [2, 2, 3]);
    assert_eq!(holds.label_keys, ["a", "b", "c"]);
    assert_eq!(holds.label_values, ["a value", "b value", "c value"]);
}

#[test]
fn only_tables_with_rows_are_written() {
    let now = Utc
        .with_ymd_and_hms(2025, 1, 2, 3, 4, 5)
        .single()
        .unwrap_or_default();
    let account_id = AccountId::from_uuid(Uuid::from_u128(0xacc0));
    let tenant_id = TenantId::from_uuid(Uuid::from_u128(0x7e));
    let mut writes = Writes::new(now, HoldForm::Compatible);
    writes.push(tenant_id, account_id, &Changes::default());
    assert!(writes.statements().is_empty());
    let changes = Changes {
        account: Some(AccountState {
            account_id,
            status: AccountStatus::Active,
            settle_policy: SettlePolicy::Debt,
            debt: Credits::ZERO,
            entitlements: Vec::new(),
            low_balance_threshold: None,
        }),
        ..Changes::default()
    };
    writes.push(tenant_id, account_id, &changes);
    let statements = writes.statements();
    let sql: Vec<_> = statements.iter().map(|(sql, _)| *sql).collect();
    assert_eq!(sql, [UPDATE_ACCOUNTS.as_str()]);
    // The two columns, then the stamp.
    assert_eq!(statements[0].1.len(), 3);
    let mut accounts = AccountColumns::default();
    assert!(accounts.is_empty());
    accounts.push(
        account_id,
        changes.account.as_ref().unwrap_or_else(|| unreachable!()),
    );
    assert_eq!(accounts.params(&now).len(), 3);
}

#[test]
fn line_items_are_stored_as_arrays_and_read_back_like_the_objects_stored_before() {
    let items = vec![
        LineItem {
            kind: "input_tokens".to_owned(),
            description: "vendor/model, \"quoted\" input tokens".to_owned(),
            quantity: "0.1".parse().expect("decimal"),
            unit: "10k tokens".to_owned(),
            rate: "0.00625".parse().expect("decimal"),
            amount: "0.000625".parse().expect("decimal"),
        },
        LineItem {
            kind: "multiplier".to_owned(),
            description: String::new(),
            quantity: "1.5".parse().expect("decimal"),
            unit: "x".to_owned(),
            rate: "0".parse().expect("decimal"),
            amount: "0".parse().expect("decimal"),
        },
    ];
    let stored = stored_line_items(&items);
    assert!(stored[0].is_array(), "{stored}");
    let read: Vec<LineItem> = serde_json::from_value(stored.clone()).expect("reads back");
    assert_eq!(read, items);
    let before = serde_json::to_value(&items).expect("objects");
    assert!(before.to_string().len() > stored.to_string().len() + 100);
    let read_before: Vec<LineItem> = serde_json::from_value(before).expect("objects read");
    assert_eq!(read_before, items);
}
