//! Domain values to wire messages and back.

use chrono::{DateTime, Utc};
use prost_types::Timestamp;

use crate::ids::AccountId;
use crate::ledger::Account;
use crate::ledger::{
    AccountStatus, GrantSource, GrantState, HoldState, HoldStatus, RefundRecord, SettlePolicy,
    SettlementRecord,
};
use crate::proto::v1;

/// A wire timestamp.
pub fn timestamp(time: DateTime<Utc>) -> Timestamp {
    Timestamp {
        seconds: time.timestamp(),
        nanos: i32::try_from(time.timestamp_subsec_nanos()).unwrap_or(0),
    }
}

/// An optional wire timestamp.
pub fn timestamp_opt(time: Option<DateTime<Utc>>) -> Option<Timestamp> {
    time.map(timestamp)
}

/// Wire account status.
pub fn account_status(status: AccountStatus) -> v1::AccountStatus {
    match status {
        AccountStatus::Active => v1::AccountStatus::Active,
        AccountStatus::Suspended => v1::AccountStatus::Suspended,
        AccountStatus::Closed => v1::AccountStatus::Closed,
    }
}

/// Wire settle policy.
pub fn settle_policy(policy: SettlePolicy) -> v1::SettlePolicy {
    match policy {
        SettlePolicy::Debt => v1::SettlePolicy::Debt,
        SettlePolicy::CapAtHold => v1::SettlePolicy::CapAtHold,
    }
}

/// Wire grant source.
pub fn grant_source(source: GrantSource) -> v1::GrantSource {
    match source {
        GrantSource::FreeDaily => v1::GrantSource::FreeDaily,
        GrantSource::Subscription => v1::GrantSource::Subscription,
        GrantSource::Purchase => v1::GrantSource::Purchase,
        GrantSource::Topup => v1::GrantSource::Topup,
        GrantSource::Promo => v1::GrantSource::Promo,
        GrantSource::Refund => v1::GrantSource::Refund,
    }
}

/// Domain grant source; `None` for UNSPECIFIED.
pub fn grant_source_from(source: v1::GrantSource) -> Option<GrantSource> {
    match source {
        v1::GrantSource::Unspecified => None,
        v1::GrantSource::FreeDaily => Some(GrantSource::FreeDaily),
        v1::GrantSource::Subscription => Some(GrantSource::Subscription),
        v1::GrantSource::Purchase => Some(GrantSource::Purchase),
        v1::GrantSource::Topup => Some(GrantSource::Topup),
        v1::GrantSource::Promo => Some(GrantSource::Promo),
        v1::GrantSource::Refund => Some(GrantSource::Refund),
    }
}

/// Wire hold status.
pub fn hold_status(status: HoldStatus) -> v1::HoldStatus {
    match status {
        HoldStatus::Active => v1::HoldStatus::Active,
        HoldStatus::Settled => v1::HoldStatus::Settled,
        HoldStatus::Released => v1::HoldStatus::Released,
        HoldStatus::Expired => v1::HoldStatus::Expired,
    }
}

/// A wire account.
pub fn account(row: &Account) -> v1::Account {
    let kind = v1::AccountKind::from_str_name(&row.kind).unwrap_or(v1::AccountKind::Unspecified);
    v1::Account {
        account_id: row.account_id.to_string(),
        external_id: row.external_id.clone(),
        kind: kind as i32,
        status: account_status(row.status) as i32,
        settle_policy: settle_policy(row.settle_policy) as i32,
        entitlements: row.entitlements.clone(),
        low_balance_threshold: row
            .low_balance_threshold
            .map(|threshold| threshold.to_string())
            .unwrap_or_default(),
        created_at: Some(timestamp(row.created_at)),
        updated_at: Some(timestamp(row.updated_at)),
    }
}

/// A wire hold.
pub fn hold(account_id: AccountId, hold: &HoldState) -> v1::Hold {
    let meta = &hold.meta;
    let task_type =
        v1::TaskType::from_str_name(&meta.task_type).unwrap_or(v1::TaskType::Unspecified);
    v1::Hold {
        hold_id: hold.hold_id.to_string(),
        account_id: account_id.to_string(),
        status: hold_status(hold.status) as i32,
        amount: hold.amount.to_string(),
        captured: hold.captured.to_string(),
        expires_at: Some(timestamp(hold.expires_at)),
        catalog_version: u64::try_from(meta.catalog_version).unwrap_or(0),
        quote_id: meta
            .quote_token
            .clone()
            .or_else(|| meta.quote_id.map(|quote_id| quote_id.to_string()))
            .unwrap_or_default(),
        allocations: hold
            .allocations
            .iter()
            .filter(|allocation| allocation.reserved.is_positive())
            .map(|allocation| v1::Allocation {
                grant_id: allocation.grant_id.to_string(),
                amount: allocation.reserved.to_string(),
            })
            .collect(),
        run: Some(v1::RunMetadata {
            task_type: task_type as i32,
            tool: meta.tool.clone(),
            model: meta.model.clone(),
            project: meta.project.clone(),
            run_id: meta.run_id.clone(),
            labels: meta.labels.iter().cloned().collect(),
        }),
        spend_scope: meta.spend_scope.as_ref().map(super::plans::scope_of),
        partial_captures: u32::try_from(hold.partial_captures).unwrap_or(0),
        created_at: Some(timestamp(hold.created_at)),
        resolved_at: timestamp_opt(hold.resolved_at),
    }
}

/// A wire settlement.
pub fn settlement(
    account_id: AccountId,
    catalog_version: i64,
    record: &SettlementRecord,
) -> v1::Settlement {
    v1::Settlement {
        settlement_id: record.settlement_id.to_string(),
        hold_id: record.hold_id.to_string(),
        account_id: account_id.to_string(),
        total: record.total.to_string(),
        from_hold: record.from_hold.to_string(),
        from_balance: record.from_balance.to_string(),
        debt: record.debt.to_string(),
        written_off: record.written_off.to_string(),
        released: record.released.to_string(),
        line_items: record
            .line_items
            .iter()
            .map(super::pricing::line_item)
            .collect(),
        late: record.late,
        partial: record.partial,
        refunded: record.refunded.to_string(),
        catalog_version: u64::try_from(catalog_version).unwrap_or(0),
        created_at: Some(timestamp(record.created_at)),
    }
}

/// A wire grant.
pub fn grant(account_id: AccountId, grant: &GrantState) -> v1::Grant {
    v1::Grant {
        grant_id: grant.grant_id.to_string(),
        account_id: account_id.to_string(),
        source: grant_source(grant.source) as i32,
        amount: grant.amount.to_string(),
        remaining: grant.remaining.to_string(),
        priority: u32::try_from(grant.priority).unwrap_or(0),
        effective_at: Some(timestamp(grant.effective_at)),
        expires_at: timestamp_opt(grant.expires_at),
        external_ref: grant.external_ref.clone().unwrap_or_default(),
        created_at: Some(timestamp(grant.created_at)),
    }
}

/// A wire refund.
pub fn refund(account_id: AccountId, record: &RefundRecord) -> v1::Refund {
    v1::Refund {
        refund_id: record.refund_id.to_string(),
        settlement_id: record.settlement_id.to_string(),
        hold_id: record.hold_id.to_string(),
        account_id: account_id.to_string(),
        amount: record.amount.to_string(),
        reason: record.reason.clone(),
        debt_reduced: record.debt_reduced.to_string(),
        returned_to: record
            .returned_to
            .iter()
            .map(|(grant_id, amount)| v1::Allocation {
                grant_id: grant_id.to_string(),
                amount: amount.to_string(),
            })
            .collect(),
        new_grant_id: record
            .new_grant_id
            .map(|grant_id| grant_id.to_string())
            .unwrap_or_default(),
        created_at: Some(timestamp(record.created_at)),
    }
}
