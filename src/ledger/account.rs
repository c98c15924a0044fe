//! An account's identity and settings, as every layer sees them, and a change to its settings.

use super::model::{AccountStatus, SettlePolicy};
use crate::ids::AccountId;
use crate::money::Credits;
use chrono::{DateTime, Utc};

/// An account: who it is and its settings (its money lives in grants, holds and debt).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Account {
    /// Id.
    pub account_id: AccountId,
    /// The tenant's id for it.
    pub external_id: String,
    /// ORGANIZATION or USER.
    pub kind: String,
    /// Status.
    pub status: AccountStatus,
    /// Above-hold policy.
    pub settle_policy: SettlePolicy,
    /// Entitlements, sorted.
    pub entitlements: Vec<String>,
    /// Low-balance threshold.
    pub low_balance_threshold: Option<Credits>,
    /// Debt.
    pub debt: Credits,
    /// Created.
    pub created_at: DateTime<Utc>,
    /// Last changed.
    pub updated_at: DateTime<Utc>,
}

/// Changes to an account's settings.
#[derive(Debug, Clone, Default)]
pub struct AccountUpdate {
    /// New status.
    pub status: Option<AccountStatus>,
    /// New policy.
    pub settle_policy: Option<SettlePolicy>,
    /// New entitlements.
    pub entitlements: Option<Vec<String>>,
    /// New threshold (`Some(None)` clears it).
    pub low_balance_threshold: Option<Option<Credits>>,
}
