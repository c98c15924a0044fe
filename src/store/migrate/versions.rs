//! The list of migrations, embedded in the binary.

use super::{Kind, Migration};

/// Every migration, in order. Never edit an entry once released: add a new one.
pub(super) const MIGRATIONS: &[Migration] = &[
    Migration {
        version: 1,
        name: "tenants",
        sql: include_str!("../../../migrations/0001_tenants.sql"),
        kind: Kind::Ordinary,
    },
    Migration {
        version: 2,
        name: "ledger",
        sql: include_str!("../../../migrations/0002_ledger.sql"),
        kind: Kind::Ordinary,
    },
    Migration {
        version: 3,
        name: "catalog",
        sql: include_str!("../../../migrations/0003_catalog.sql"),
        kind: Kind::Ordinary,
    },
    Migration {
        version: 4,
        name: "grant_account_index",
        sql: include_str!("../../../migrations/0004_grant_account_index.sql"),
        kind: Kind::Ordinary,
    },
    Migration {
        version: 5,
        name: "signing_keys",
        sql: include_str!("../../../migrations/0005_signing_keys.sql"),
        kind: Kind::Ordinary,
    },
    Migration {
        version: 6,
        name: "hot_grant_updates",
        sql: include_str!("../../../migrations/0006_hot_grant_updates.sql"),
        kind: Kind::Ordinary,
    },
    Migration {
        version: 7,
        name: "ledger_references_in_verify",
        sql: include_str!("../../../migrations/0007_ledger_references_in_verify.sql"),
        kind: Kind::Ordinary,
    },
    Migration {
        version: 8,
        name: "allowances_and_spend_limits",
        sql: include_str!("../../../migrations/0008_allowances_and_spend_limits.sql"),
        kind: Kind::Ordinary,
    },
    Migration {
        version: 9,
        name: "usage_history",
        sql: include_str!("../../../migrations/0009_usage_history.sql"),
        kind: Kind::Ordinary,
    },
    Migration {
        version: 10,
        name: "events",
        sql: include_str!("../../../migrations/0010_events.sql"),
        kind: Kind::Ordinary,
    },
    Migration {
        version: 11,
        name: "webhooks",
        sql: include_str!("../../../migrations/0011_webhooks.sql"),
        kind: Kind::Ordinary,
    },
    Migration {
        version: 12,
        name: "key_last_used",
        sql: include_str!("../../../migrations/0012_key_last_used.sql"),
        kind: Kind::Ordinary,
    },
    Migration {
        version: 13,
        name: "lean_writes",
        sql: include_str!("../../../migrations/0013_lean_writes.sql"),
        kind: Kind::Ordinary,
    },
    Migration {
        version: 14,
        name: "usage_months",
        sql: include_str!("../../../migrations/0014_usage_months.sql"),
        kind: Kind::Ordinary,
    },
    Migration {
        version: 15,
        name: "allowances_due",
        sql: include_str!("../../../migrations/0015_allowances_due.sql"),
        kind: Kind::Ordinary,
    },
    Migration {
        version: 16,
        name: "account_keys",
        sql: include_str!("../../../migrations/0016_account_keys.sql"),
        kind: Kind::Online,
    },
    Migration {
        version: 17,
        name: "tenant_keys",
        sql: include_str!("../../../migrations/0017_tenant_keys.sql"),
        kind: Kind::Ordinary,
    },
    Migration {
        version: 18,
        name: "journal_bound",
        sql: include_str!("../../../migrations/0018_journal_bound.sql"),
        kind: Kind::Ordinary,
    },
    Migration {
        version: 19,
        name: "journal_bound_checked",
        sql: include_str!("../../../migrations/0019_journal_bound_checked.sql"),
        kind: Kind::Online,
    },
    Migration {
        version: 20,
        name: "journal_partitions",
        sql: include_str!("../../../migrations/0020_journal_partitions.sql"),
        kind: Kind::Ordinary,
    },
    Migration {
        version: 21,
        name: "account_keys_contract",
        sql: include_str!("../../../migrations/0021_account_keys_contract.sql"),
        kind: Kind::Contract,
    },
    Migration {
        version: 22,
        name: "answer_hold",
        sql: include_str!("../../../migrations/0022_answer_hold.sql"),
        kind: Kind::Ordinary,
    },
    Migration {
        version: 23,
        name: "answers_by_reference",
        sql: include_str!("../../../migrations/0023_answers_by_reference.sql"),
        kind: Kind::Contract,
    },
    Migration {
        version: 24,
        name: "authorize_keys",
        sql: include_str!("../../../migrations/0024_authorize_keys.sql"),
        kind: Kind::Ordinary,
    },
    Migration {
        version: 25,
        name: "authorize_keys_claimed",
        sql: include_str!("../../../migrations/0025_authorize_keys_claimed.sql"),
        kind: Kind::Online,
    },
    Migration {
        version: 26,
        name: "authorize_keys_contract",
        sql: include_str!("../../../migrations/0026_authorize_keys_contract.sql"),
        kind: Kind::Contract,
    },
    Migration {
        version: 27,
        name: "quote_seal",
        sql: include_str!("../../../migrations/0027_quote_seal.sql"),
        kind: Kind::Ordinary,
    },
    Migration {
        version: 28,
        name: "quote_seal_contract",
        sql: include_str!("../../../migrations/0028_quote_seal_contract.sql"),
        kind: Kind::Contract,
    },
    Migration {
        version: 29,
        name: "lean_records",
        sql: include_str!("../../../migrations/0029_lean_records.sql"),
        kind: Kind::Ordinary,
    },
    Migration {
        version: 30,
        name: "lean_records_contract",
        sql: include_str!("../../../migrations/0030_lean_records_contract.sql"),
        kind: Kind::Contract,
    },
];
