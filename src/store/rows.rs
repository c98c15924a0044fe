//! Mapping between rows and domain state.

use rust_decimal::Decimal;
use tokio_postgres::Row;
use uuid::Uuid;

use super::StoreError;
use crate::ids::{AccountId, HoldId};
use crate::ledger::{
    AccountState, AccountStatus, AllocationState, AllowanceState, Every, GrantSource, GrantState,
    HoldMeta, HoldState, HoldStatus, LimitPeriod, Recurrence, ScopeKind, SettlePolicy,
    SettlementPart, SettlementRecord, SpendLimitState, SpendScope, parse_zone,
};
use crate::money::Credits;
use crate::pricing::quote_token::{QuoteOnHold, unseal};

/// Columns of `grants` read by [`grant`].
pub const GRANT_COLUMNS: &str = "grant_id, source, priority, effective_at, expires_at, created_at, amount, remaining, reserved, external_ref, expiry_warned";
/// Columns of `holds` read by [`hold`].
pub const HOLD_COLUMNS: &str = "account_id, hold_id, status, amount, captured, expires_at, partial_captures, late_settled, \
     created_at, resolved_at, authorize_key, catalog_version, quote_id, quote_token, quote_seal, task_type, tool, model, project, run_id, \
     label_keys, label_values, spend_scope_kind, spend_scope_id";
/// Columns of `allowances` read by [`allowance`].
pub const ALLOWANCE_COLUMNS: &str = "allowance_id, name, source, amount, period, anchor_date, time_zone, enabled, \
     effective_from, granted_period, granted_until, created_at";
/// Columns of `spend_limits` read by [`spend_limit`].
pub const SPEND_LIMIT_COLUMNS: &str = "spend_limit_id, scope_kind, scope_id, period, limit_amount, spent, reserved, period_start, counted_from";
/// Columns of `settlements` read by [`settlement`].
pub const SETTLEMENT_COLUMNS: &str = "settlement_id, hold_id, total, from_hold, from_balance, debt, written_off, \
     released, late, partial, refunded, created_at, line_items";

fn credits(row: &Row, column: &str) -> Credits {
    Credits::from_decimal(row.get::<_, Decimal>(column))
}

fn parse<T>(value: &str, parse: impl Fn(&str) -> Option<T>, what: &str) -> Result<T, StoreError> {
    parse(value)
        .ok_or_else(|| StoreError::Other(format!("unknown {what} {value:?} in the database")))
}

/// The locked account row: `account_id, status, settle_policy, debt`.
pub fn account_state(row: &Row) -> Result<AccountState, StoreError> {
    Ok(AccountState {
        account_id: row.get("account_id"),
        status: parse(
            row.get("status"),
            AccountStatus::from_name,
            "account status",
        )?,
        settle_policy: parse(
            row.get("settle_policy"),
            SettlePolicy::from_name,
            "settle policy",
        )?,
        debt: credits(row, "debt"),
        entitlements: row.get("entitlements"),
        low_balance_threshold: row
            .get::<_, Option<Decimal>>("low_balance_threshold")
            .map(Credits::from_decimal),
    })
}

/// A grant.
pub fn grant(row: &Row) -> Result<GrantState, StoreError> {
    Ok(GrantState {
        grant_id: row.get("grant_id"),
        source: parse(row.get("source"), GrantSource::from_name, "grant source")?,
        priority: row.get("priority"),
        effective_at: row.get("effective_at"),
        expires_at: row.get("expires_at"),
        created_at: row.get("created_at"),
        amount: credits(row, "amount"),
        remaining: credits(row, "remaining"),
        reserved: credits(row, "reserved"),
        external_ref: row.get("external_ref"),
        expiry_warned: row.get("expiry_warned"),
    })
}

/// A hold without its allocations.
pub fn hold(row: &Row) -> Result<HoldState, StoreError> {
    let keys: Vec<String> = row.get("label_keys");
    let values: Vec<String> = row.get("label_values");
    let quote_token = quote_token(
        row.get("hold_id"),
        row.get("quote_token"),
        row.get("quote_seal"),
        quote_on_hold(row, HOLD_QUOTE_COLUMNS, row.get("account_id")),
    );
    Ok(HoldState {
        hold_id: row.get("hold_id"),
        status: parse(row.get("status"), HoldStatus::from_name, "hold status")?,
        amount: credits(row, "amount"),
        captured: credits(row, "captured"),
        expires_at: row.get("expires_at"),
        allocations: Vec::new(),
        partial_captures: row.get("partial_captures"),
        late_settled: row.get("late_settled"),
        created_at: row.get("created_at"),
        resolved_at: row.get("resolved_at"),
        meta: HoldMeta {
            // NULL in holds written once the schema is complete: the key is in
            // `authorize_keys`, and a loaded hold's is never written again.
            authorize_key: row
                .get::<_, Option<String>>("authorize_key")
                .unwrap_or_default(),
            catalog_version: row.get("catalog_version"),
            quote_id: row.get("quote_id"),
            quote_token,
            task_type: row.get("task_type"),
            tool: row.get("tool"),
            model: row.get("model"),
            project: row.get("project"),
            run_id: row.get("run_id"),
            labels: keys.into_iter().zip(values).collect(),
            required_entitlement: None,
            spend_scope: spend_scope(row, "spend_scope_kind", "spend_scope_id")?,
        },
    })
}

/// Hold `hold_id`'s quote token: kept whole, or sealed (migration 0027) and rebuilt with what
/// the hold's row says of its quote (`hold`: none when it names no quote). A seal that does not
/// read back is logged and the quote shown by its id, as holds before tokens show it: the token
/// is only ever shown, and one damaged row must not fail the locked reads of its account (and
/// of the group it is read with). `creditgate verify` reports it.
pub fn quote_token(
    hold_id: HoldId,
    whole: Option<String>,
    sealed: Option<&[u8]>,
    hold: Option<QuoteOnHold<'_>>,
) -> Option<String> {
    let Some(sealed) = sealed else {
        return whole;
    };
    let token = hold.and_then(|hold| unseal(sealed, &hold));
    if token.is_none() {
        tracing::error!(%hold_id, "a hold's sealed quote does not read back against its row");
    }
    token
}

/// The columns of a hold's row read by [`quote_on_hold`]: quote id, catalog version, tool, model.
pub type QuoteColumns = [&'static str; 4];

/// [`QuoteColumns`] as [`HOLD_COLUMNS`] names them.
pub const HOLD_QUOTE_COLUMNS: QuoteColumns = ["quote_id", "catalog_version", "tool", "model"];

/// What a hold's row says of its quote, from its `columns`; none when it names no quote.
pub fn quote_on_hold<'a>(
    row: &'a Row,
    columns: QuoteColumns,
    account_id: AccountId,
) -> Option<QuoteOnHold<'a>> {
    let [quote_id, catalog_version, tool, model] = columns;
    Some(QuoteOnHold {
        quote_id: row.get::<_, Option<Uuid>>(quote_id)?,
        account_id,
        catalog_version: row.get(catalog_version),
        tool: row.get(tool),
        model: row.get(model),
    })
}

/// The scope in columns `kind` and `id`, when set.
fn spend_scope(row: &Row, kind: &str, id: &str) -> Result<Option<SpendScope>, StoreError> {
    let (Some(kind), Some(id)) = (
        row.get::<_, Option<&str>>(kind),
        row.get::<_, Option<String>>(id),
    ) else {
        return Ok(None);
    };
    Ok(Some(SpendScope {
        kind: parse(kind, ScopeKind::from_name, "spend scope kind")?,
        id,
    }))
}

/// An allowance.
pub fn allowance(row: &Row) -> Result<AllowanceState, StoreError> {
    let zone: &str = row.get("time_zone");
    Ok(AllowanceState {
        allowance_id: row.get("allowance_id"),
        name: row.get("name"),
        source: parse(row.get("source"), GrantSource::from_name, "grant source")?,
        amount: credits(row, "amount"),
        recurrence: Recurrence {
            every: parse(row.get("period"), Every::from_name, "allowance period")?,
            anchor: row.get("anchor_date"),
            zone: parse(zone, |zone| parse_zone(zone).ok(), "time zone")?,
        },
        enabled: row.get("enabled"),
        effective_from: row.get("effective_from"),
        granted_period: row.get("granted_period"),
        granted_until: row.get("granted_until"),
        created_at: row.get("created_at"),
    })
}

/// A spend limit.
pub fn spend_limit(row: &Row) -> Result<SpendLimitState, StoreError> {
    let scope = spend_scope(row, "scope_kind", "scope_id")?
        .ok_or_else(|| StoreError::Other("a spend limit without a scope".to_owned()))?;
    Ok(SpendLimitState {
        spend_limit_id: row.get("spend_limit_id"),
        scope,
        period: parse(row.get("period"), LimitPeriod::from_name, "limit period")?,
        limit: credits(row, "limit_amount"),
        spent: credits(row, "spent"),
        reserved: credits(row, "reserved"),
        period_start: row.get("period_start"),
        counted_from: row.get("counted_from"),
    })
}

/// Attaches allocation rows (`hold_id, grant_id, reserved, captured`, in position order).
pub fn attach_allocations(holds: &mut [HoldState], rows: &[Row]) {
    let index: std::collections::HashMap<HoldId, usize> = holds
        .iter()
        .enumerate()
        .map(|(position, hold)| (hold.hold_id, position))
        .collect();
    for row in rows {
        if let Some(&position) = index.get(&row.get::<_, HoldId>("hold_id")) {
            holds[position].allocations.push(AllocationState {
                grant_id: row.get("grant_id"),
                reserved: credits(row, "reserved"),
                captured: credits(row, "captured"),
            });
        }
    }
}

/// A settlement without its parts.
pub fn settlement(row: &Row) -> SettlementRecord {
    SettlementRecord {
        settlement_id: row.get("settlement_id"),
        hold_id: row.get("hold_id"),
        total: credits(row, "total"),
        from_hold: credits(row, "from_hold"),
        from_balance: credits(row, "from_balance"),
        debt: credits(row, "debt"),
        written_off: credits(row, "written_off"),
        released: credits(row, "released"),
        late: row.get("late"),
        partial: row.get("partial"),
        refunded: credits(row, "refunded"),
        parts: Vec::new(),
        line_items: serde_json::from_value(row.get("line_items")).unwrap_or_default(),
        created_at: row.get("created_at"),
    }
}

/// A settlement part (`grant_id, amount, refunded`).
pub fn settlement_part(row: &Row) -> SettlementPart {
    SettlementPart {
        grant_id: row.get("grant_id"),
        amount: credits(row, "amount"),
        refunded: credits(row, "refunded"),
    }
}
