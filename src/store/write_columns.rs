//! The column tables of the write statements: the rows of one transaction's writes, one array
//! per column ready for `unnest`, in parameter order. Every row carries its account (and tenant
//! where the table has one), as a transaction may write several accounts. A column is named
//! here only: the statements' column lists and casts ([`super::write_sql`]) and their
//! parameters come from these tables.

use chrono::{DateTime, NaiveDate, Utc};
use rust_decimal::Decimal;
use uuid::Uuid;

use super::write_table::write_table;
use crate::ids::{AccountId, AllowanceId, GrantId, HoldId, SettlementId, SpendLimitId, TenantId};

write_table! {
    /// Accounts whose debt changed, stamped with the transaction's time.
    AccountColumns stamped updated_at {
        #[key] account_id: AccountId = "uuid",
        debt: Decimal = "numeric",
    }
}

write_table! {
    /// Grants created or changed.
    GrantColumns {
        #[key] grant_id: GrantId = "uuid",
        source: &'static str = "text",
        priority: i32 = "int4",
        amount: Decimal = "numeric",
        #[updated] remaining: Decimal = "numeric",
        #[updated] reserved: Decimal = "numeric",
        effective_at: DateTime<Utc> = "timestamptz",
        expires_at: Option<DateTime<Utc>> = "timestamptz",
        external_ref: Option<String> = "text",
        created_at: DateTime<Utc> = "timestamptz",
        tenant_id: TenantId = "uuid",
        #[key] account_id: AccountId = "uuid",
        #[updated] expiry_warned: bool = "bool",
    }
}

write_table! {
    /// New holds; the labels of all of them travel as two shared arrays, each hold naming its
    /// slice (1-based, inclusive; an empty slice when it has none). Each hold's Authorize key
    /// is claimed in `authorize_keys` (`claimed_key`), and written in the hold's row as well
    /// (`authorize_key`) only while servers that read it there may be connected; its quote
    /// token is written whole (`quote_token`) or sealed (`quote_seal`) alike
    /// ([`super::writes::HoldForm`]).
    NewHoldColumns {
        hold_id: HoldId = "uuid",
        status: &'static str = "text",
        amount: Decimal = "numeric",
        captured: Decimal = "numeric",
        expires_at: DateTime<Utc> = "timestamptz",
        partial_captures: i32 = "int4",
        late_settled: bool = "bool",
        authorize_key: Option<String> = "text",
        catalog_version: i64 = "int8",
        quote_id: Option<Uuid> = "uuid",
        task_type: String = "text",
        tool: String = "text",
        model: String = "text",
        project: String = "text",
        run_id: String = "text",
        #[slice_start] label_first: i32 = "int4",
        created_at: DateTime<Utc> = "timestamptz",
        resolved_at: Option<DateTime<Utc>> = "timestamptz",
        tenant_id: TenantId = "uuid",
        account_id: AccountId = "uuid",
        #[shared] label_keys: String = "text",
        #[shared] label_values: String = "text",
        #[slice_end] label_last: i32 = "int4",
        quote_token: Option<String> = "text",
        quote_seal: Option<Vec<u8>> = "bytea",
        spend_scope_kind: Option<&'static str> = "text",
        spend_scope_id: Option<String> = "text",
        #[aside] claimed_key: String = "text",
    }
}

write_table! {
    /// Existing holds changed.
    HoldColumns {
        #[key] hold_id: HoldId = "uuid",
        status: &'static str = "text",
        amount: Decimal = "numeric",
        captured: Decimal = "numeric",
        expires_at: DateTime<Utc> = "timestamptz",
        partial_captures: i32 = "int4",
        late_settled: bool = "bool",
        resolved_at: Option<DateTime<Utc>> = "timestamptz",
    }
}

write_table! {
    /// The allocations of the holds written, new or changed.
    AllocationColumns {
        #[key] hold_id: HoldId = "uuid",
        #[key] grant_id: GrantId = "uuid",
        position: i32 = "int4",
        #[updated] reserved: Decimal = "numeric",
        #[updated] captured: Decimal = "numeric",
        #[key] account_id: AccountId = "uuid",
    }
}

write_table! {
    /// Settlements created or refunded from.
    SettlementColumns {
        #[key] settlement_id: SettlementId = "uuid",
        hold_id: HoldId = "uuid",
        total: Decimal = "numeric",
        from_hold: Decimal = "numeric",
        from_balance: Decimal = "numeric",
        debt: Decimal = "numeric",
        written_off: Decimal = "numeric",
        released: Decimal = "numeric",
        late: bool = "bool",
        partial: bool = "bool",
        #[updated] refunded: Decimal = "numeric",
        created_at: DateTime<Utc> = "timestamptz",
        line_items: serde_json::Value = "jsonb",
        #[key] account_id: AccountId = "uuid",
        tenant_id: TenantId = "uuid",
    }
}

write_table! {
    /// The parts of the settlements written.
    PartColumns {
        #[key] settlement_id: SettlementId = "uuid",
        #[key] grant_id: GrantId = "uuid",
        position: i32 = "int4",
        amount: Decimal = "numeric",
        #[updated] refunded: Decimal = "numeric",
        #[key] account_id: AccountId = "uuid",
    }
}

write_table! {
    /// Refunds created.
    RefundColumns {
        refund_id: Uuid = "uuid",
        settlement_id: SettlementId = "uuid",
        hold_id: HoldId = "uuid",
        amount: Decimal = "numeric",
        debt_reduced: Decimal = "numeric",
        new_grant_id: Option<GrantId> = "uuid",
        reason: String = "text",
        created_at: DateTime<Utc> = "timestamptz",
        account_id: AccountId = "uuid",
    }
}

write_table! {
    /// Journal entries, stamped with the transaction's time.
    JournalColumns stamped created_at {
        entry_id: Uuid = "uuid",
        ledger_account: &'static str = "text",
        amount: Decimal = "numeric",
        kind: &'static str = "text",
        grant_id: Option<GrantId> = "uuid",
        hold_id: Option<HoldId> = "uuid",
        settlement_id: Option<SettlementId> = "uuid",
        refund_id: Option<Uuid> = "uuid",
        transaction_id: Uuid = "uuid",
        tenant_id: TenantId = "uuid",
        account_id: AccountId = "uuid",
    }
}

write_table! {
    /// Allowances set, or that granted a period.
    AllowanceColumns {
        #[key] allowance_id: AllowanceId = "uuid",
        name: String = "text",
        #[updated] source: &'static str = "text",
        #[updated] amount: Decimal = "numeric",
        #[updated] period: &'static str = "text",
        #[updated] anchor_date: NaiveDate = "date",
        #[updated] time_zone: &'static str = "text",
        #[updated] enabled: bool = "bool",
        #[updated] effective_from: DateTime<Utc> = "timestamptz",
        #[updated] granted_period: Option<DateTime<Utc>> = "timestamptz",
        #[updated] granted_until: Option<DateTime<Utc>> = "timestamptz",
        created_at: DateTime<Utc> = "timestamptz",
        tenant_id: TenantId = "uuid",
        #[key] account_id: AccountId = "uuid",
    }
}

write_table! {
    /// The periods allowances granted: inserted, never upserted, so that a period granted
    /// twice fails the transaction instead of crediting twice.
    AllowanceGrantColumns {
        allowance_id: AllowanceId = "uuid",
        period_start: DateTime<Utc> = "timestamptz",
        grant_id: GrantId = "uuid",
        account_id: AccountId = "uuid",
    }
}

write_table! {
    /// Spend limits created.
    NewLimitColumns {
        spend_limit_id: SpendLimitId = "uuid",
        scope_kind: &'static str = "text",
        scope_id: String = "text",
        period: &'static str = "text",
        limit_amount: Decimal = "numeric",
        spent: Decimal = "numeric",
        reserved: Decimal = "numeric",
        period_start: DateTime<Utc> = "timestamptz",
        counted_from: DateTime<Utc> = "timestamptz",
        tenant_id: TenantId = "uuid",
        account_id: AccountId = "uuid",
    }
}

write_table! {
    /// Existing spend limits changed: an update, not an upsert, as most operations of a
    /// scoped hold move its limits' counters.
    LimitColumns {
        #[key] spend_limit_id: SpendLimitId = "uuid",
        limit_amount: Decimal = "numeric",
        spent: Decimal = "numeric",
        reserved: Decimal = "numeric",
        period_start: DateTime<Utc> = "timestamptz",
    }
}

write_table! {
    /// Spend limits removed.
    RemovedLimitColumns {
        #[key] spend_limit_id: SpendLimitId = "uuid",
        account_id: AccountId = "uuid",
    }
}

write_table! {
    /// What a transaction adds to the usage rollups, one row per (account, day, task type,
    /// model).
    UsageColumns {
        #[key] account_id: AccountId = "uuid",
        #[key] day: NaiveDate = "date",
        #[key] task_type: String = "text",
        #[key] model: String = "text",
        #[added] runs: i64 = "int8",
        #[added] captured: Decimal = "numeric",
        #[added] refunded: Decimal = "numeric",
        #[latest] last_run_at: Option<DateTime<Utc>> = "timestamptz",
    }
}

write_table! {
    /// Events, stamped with the transaction's time; `tx` is filled in by the database. `seq`
    /// numbers them in the transaction, in the order their changes were pushed.
    EventColumns stamped created_at {
        seq: i32 = "int4",
        event_id: Uuid = "uuid",
        tenant_id: TenantId = "uuid",
        account_id: AccountId = "uuid",
        event_type: &'static str = "text",
        attributes: serde_json::Value = "jsonb",
    }
}
