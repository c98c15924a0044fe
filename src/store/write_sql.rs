//! The statements of the write round trip, one per table whatever the number of rows or
//! accounts; rows travel as arrays through `unnest`, each with its own account (and tenant).
//! Each statement's column lists, casts and parameter numbers come from its column table
//! ([`super::write_columns`]); the text is built once.

use std::sync::LazyLock;

use super::write_columns::{
    AccountColumns, AllocationColumns, AllowanceColumns, AllowanceGrantColumns, EventColumns,
    GrantColumns, HoldColumns, JournalColumns, LimitColumns, NewHoldColumns, NewLimitColumns,
    PartColumns, RefundColumns, RemovedLimitColumns, SettlementColumns, UsageColumns,
};
use super::write_table::{Role, Table};

type Sql = LazyLock<String>;

pub(super) static UPDATE_ACCOUNTS: Sql =
    LazyLock::new(|| update("accounts", "a", &AccountColumns::TABLE));

// A row the book made is inserted plainly: a speculative insertion (`ON CONFLICT`) writes a
// confirmation record more to the WAL. A row it loaded is upserted: its conflict target is a
// probe of the key index by construction, where an `UPDATE … FROM unnest` join's generic plan,
// made while the table was nearly empty, may walk a whole index.
pub(super) static INSERT_GRANTS: Sql = LazyLock::new(|| insert("grants", &GrantColumns::TABLE));

pub(super) static UPSERT_GRANTS: Sql = LazyLock::new(|| upsert("grants", &GrantColumns::TABLE));

/// New holds, their Authorize keys claimed in `authorize_keys` by the same statement: its
/// `WITH` part runs before any trigger of the holds' insertion fires, so the trigger that claims
/// for older servers while migration 0026 waits finds the claim and writes nothing. The hold's
/// own `authorize_key` is NULL once 0026 has run ([`super::writes::HoldForm`]). Inserted in
/// (tenant, Authorize key) order like the idempotency records: until 0026 the key of `holds` is
/// unique per tenant across accounts, so two transactions inserting the same keys in different
/// orders could otherwise each wait for the other's uncommitted key (a deadlock). A claim names
/// its account, which is locked: no other transaction inserts it.
pub(super) static INSERT_HOLDS: Sql = LazyLock::new(|| {
    let table = &NewHoldColumns::TABLE;
    let arrays = ["claimed_key", "account_id", "hold_id"].map(|name| {
        let (param, column) = table
            .row_columns()
            .find(|(_, column)| column.name == name)
            .expect("a new hold's column");
        format!("${param}::{}[]", column.pg_type)
    });
    format!(
        "WITH claimed AS (INSERT INTO authorize_keys (authorize_key, account_id, hold_id) \
         SELECT * FROM unnest({})) {}",
        arrays.join(", "),
        insert_ordered(
            "holds",
            "h",
            table,
            "h.tenant_id, h.claimed_key COLLATE \"C\""
        ),
    )
});

pub(super) static UPDATE_HOLDS: Sql = LazyLock::new(|| update("holds", "h", &HoldColumns::TABLE));

pub(super) static INSERT_ALLOCATIONS: Sql =
    LazyLock::new(|| insert("hold_allocations", &AllocationColumns::TABLE));

pub(super) static UPSERT_ALLOCATIONS: Sql =
    LazyLock::new(|| upsert("hold_allocations", &AllocationColumns::TABLE));

pub(super) static INSERT_SETTLEMENTS: Sql =
    LazyLock::new(|| insert("settlements", &SettlementColumns::TABLE));

pub(super) static UPSERT_SETTLEMENTS: Sql =
    LazyLock::new(|| upsert("settlements", &SettlementColumns::TABLE));

pub(super) static INSERT_PARTS: Sql =
    LazyLock::new(|| insert("settlement_parts", &PartColumns::TABLE));

pub(super) static UPSERT_PARTS: Sql =
    LazyLock::new(|| upsert("settlement_parts", &PartColumns::TABLE));

pub(super) static INSERT_REFUNDS: Sql = LazyLock::new(|| insert("refunds", &RefundColumns::TABLE));

pub(super) static UPSERT_ALLOWANCES: Sql =
    LazyLock::new(|| upsert("allowances", &AllowanceColumns::TABLE));

pub(super) static INSERT_ALLOWANCE_GRANTS: Sql =
    LazyLock::new(|| insert("allowance_grants", &AllowanceGrantColumns::TABLE));

pub(super) static INSERT_SPEND_LIMITS: Sql =
    LazyLock::new(|| insert("spend_limits", &NewLimitColumns::TABLE));

pub(super) static UPDATE_SPEND_LIMITS: Sql =
    LazyLock::new(|| update("spend_limits", "l", &LimitColumns::TABLE));

pub(super) static DELETE_SPEND_LIMITS: Sql =
    LazyLock::new(|| delete("spend_limits", "l", &RemovedLimitColumns::TABLE));

/// Usage rollups: each transaction adds its runs, captures and refunds to the rows of their
/// (account, day, task type, model); one row per key, as an upsert may not touch a row twice.
pub(super) static UPSERT_USAGE: Sql =
    LazyLock::new(|| upsert("usage_rollups", &UsageColumns::TABLE));

/// The same rows added to the months that usage_folds says are folded (a refund, or a run
/// resolved after its month was folded), summed per month first, as an upsert may not touch a
/// row twice. Sent only by transactions that add to a day before the current month.
pub(super) static UPSERT_USAGE_MONTHS: Sql = LazyLock::new(|| {
    let table = &UsageColumns::TABLE;
    format!(
        "INSERT INTO usage_months (account_id, month, task_type, model, runs, captured, refunded, last_run_at) \
         SELECT u.account_id, date_trunc('month', u.day::timestamp)::date, u.task_type, u.model, sum(u.runs), \
         sum(u.captured), sum(u.refunded), max(u.last_run_at) FROM {} AS u({}) \
         JOIN usage_folds f ON f.account_id = u.account_id AND u.day < f.folded_before \
         GROUP BY 1, 2, 3, 4 \
         ON CONFLICT (account_id, month, task_type, model) DO UPDATE SET {}",
        unnest(table),
        row_names(table),
        upsert_set("usage_months", table),
    )
});

/// Events: inserted only by transactions that have some (a trigger notifies listeners).
pub(super) static INSERT_EVENTS: Sql =
    LazyLock::new(|| insert_stamped("events", "e", &EventColumns::TABLE));

pub(super) static INSERT_JOURNAL: Sql =
    LazyLock::new(|| insert_stamped("journal_entries", "j", &JournalColumns::TABLE));

/// Every statement a commit may send, to prepare before the lock is taken.
pub(super) fn all_statements() -> [&'static str; 21] {
    [
        &UPDATE_ACCOUNTS,
        &INSERT_GRANTS,
        &UPSERT_GRANTS,
        &INSERT_HOLDS,
        &UPDATE_HOLDS,
        &INSERT_ALLOCATIONS,
        &UPSERT_ALLOCATIONS,
        &INSERT_SETTLEMENTS,
        &UPSERT_SETTLEMENTS,
        &INSERT_PARTS,
        &UPSERT_PARTS,
        &INSERT_REFUNDS,
        &UPSERT_ALLOWANCES,
        &INSERT_ALLOWANCE_GRANTS,
        &DELETE_SPEND_LIMITS,
        &INSERT_SPEND_LIMITS,
        &UPDATE_SPEND_LIMITS,
        &UPSERT_USAGE,
        &UPSERT_USAGE_MONTHS,
        &INSERT_JOURNAL,
        &INSERT_EVENTS,
    ]
    .map(|sql| sql.as_str())
}

fn list(items: impl Iterator<Item = String>) -> String {
    items.collect::<Vec<_>>().join(", ")
}

/// `unnest($1::type[], ...)` over the row columns.
fn unnest(table: &Table) -> String {
    let arrays = table
        .row_columns()
        .map(|(param, column)| format!("${param}::{}[]", column.pg_type));
    format!("unnest({})", list(arrays))
}

/// The row columns' names, as `unnest`'s column aliases.
fn row_names(table: &Table) -> String {
    list(
        table
            .row_columns()
            .map(|(_, column)| column.name.to_owned()),
    )
}

/// `INSERT … SELECT * FROM unnest(…)`.
fn insert(name: &str, table: &Table) -> String {
    format!(
        "INSERT INTO {name} ({}) SELECT * FROM {}",
        row_names(table),
        unnest(table)
    )
}

/// [`insert`], upserting on the key columns: for rows that exist, and for counters whose row
/// may or may not.
fn upsert(name: &str, table: &Table) -> String {
    let mut sql = insert(name, table);
    let keys = list(table.named(Role::Key).map(str::to_owned));
    if !keys.is_empty() {
        sql.push_str(&format!(
            " ON CONFLICT ({keys}) DO UPDATE SET {}",
            upsert_set(name, table)
        ));
    }
    sql
}

/// The `SET` list of an upsert into `name`: updated columns take the new value, added ones
/// the sum, latest ones the greater.
fn upsert_set(name: &str, table: &Table) -> String {
    list(table.columns.iter().filter_map(|column| {
        let column_name = column.name;
        match column.role {
            Role::Updated => Some(format!("{column_name} = EXCLUDED.{column_name}")),
            Role::Added => Some(format!(
                "{column_name} = {name}.{column_name} + EXCLUDED.{column_name}"
            )),
            Role::Latest => Some(format!(
                "{column_name} = greatest({name}.{column_name}, EXCLUDED.{column_name})"
            )),
            _ => None,
        }
    }))
}

/// `INSERT … SELECT alias.*, $stamp FROM unnest(…) AS alias`.
fn insert_stamped(name: &str, alias: &str, table: &Table) -> String {
    let stamp = table.stamp.unwrap_or_default();
    format!(
        "INSERT INTO {name} ({}, {stamp}) SELECT {alias}.*, ${}::timestamptz FROM {} AS {alias}",
        row_names(table),
        table.stamp_param(),
        unnest(table),
    )
}

/// `INSERT … SELECT alias.column, … FROM unnest(…) AS alias(…) ORDER BY order_by`, each row
/// taking its slice of the shared arrays.
fn insert_ordered(name: &str, alias: &str, table: &Table, order_by: &str) -> String {
    let slice = |role| table.named(role).next().unwrap_or_default();
    let (first, last) = (slice(Role::SliceStart), slice(Role::SliceEnd));
    let mut targets = Vec::new();
    let mut values = Vec::new();
    for column in table.columns {
        match column.role {
            Role::Value | Role::Key | Role::Updated | Role::Added | Role::Latest => {
                targets.push(column.name.to_owned());
                values.push(format!("{alias}.{}", column.name));
            }
            Role::SliceStart => {
                for (param, shared) in table.numbered().filter(|(_, c)| c.role == Role::Shared) {
                    targets.push(shared.name.to_owned());
                    values.push(format!(
                        "(${param}::{}[])[{alias}.{first}:{alias}.{last}]",
                        shared.pg_type
                    ));
                }
            }
            Role::Shared | Role::SliceEnd | Role::Aside => {}
        }
    }
    format!(
        "INSERT INTO {name} ({}) SELECT {} FROM {} AS {alias}({}) ORDER BY {order_by}",
        targets.join(", "),
        values.join(", "),
        unnest(table),
        row_names(table),
    )
}

/// `UPDATE … SET column = v.column, … FROM unnest(…) AS v(…) WHERE alias.key = v.key`,
/// setting every column but the key (and the stamp).
fn update(name: &str, alias: &str, table: &Table) -> String {
    let mut set: Vec<String> = table
        .row_columns()
        .filter(|(_, column)| column.role != Role::Key)
        .map(|(_, column)| format!("{0} = v.{0}", column.name))
        .collect();
    if let Some(stamp) = table.stamp {
        set.push(format!("{stamp} = ${}", table.stamp_param()));
    }
    let matches = table
        .named(Role::Key)
        .map(|key| format!("{alias}.{key} = v.{key}"))
        .collect::<Vec<_>>()
        .join(" AND ");
    format!(
        "UPDATE {name} {alias} SET {} FROM {} AS v({}) WHERE {matches}",
        set.join(", "),
        unnest(table),
        row_names(table),
    )
}

/// `DELETE FROM … USING unnest(…) AS v(…) WHERE alias.key = v.key AND alias.column = v.column`
/// for every column (the account too, so a row is only removed from its own account).
fn delete(name: &str, alias: &str, table: &Table) -> String {
    let matches = table
        .row_columns()
        .map(|(_, column)| format!("{alias}.{0} = v.{0}", column.name))
        .collect::<Vec<_>>()
        .join(" AND ");
    format!(
        "DELETE FROM {name} {alias} USING {} AS v({}) WHERE {matches}",
        unnest(table),
        row_names(table),
    )
}

#[cfg(test)]
mod tests;
