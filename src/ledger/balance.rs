//! Balance reads: what an account has, per source bucket, as of now.

use std::collections::BTreeMap;

use chrono::Duration;

use super::book::AccountBook;
use super::model::GrantSource;
use crate::money::Credits;

/// Balance of one grant source.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct BucketBalance {
    /// The source.
    pub source: GrantSource,
    /// Spendable now.
    pub available: Credits,
    /// Reserved by live holds.
    pub held: Credits,
    /// Spendable now but expiring within the window.
    pub expiring_soon: Credits,
}

/// An account's balance as of `now`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Balance {
    /// Spendable now.
    pub available: Credits,
    /// Reserved by live holds.
    pub held: Credits,
    /// Owed.
    pub debt: Credits,
    /// Per source, for sources with any credits.
    pub buckets: Vec<BucketBalance>,
}

impl AccountBook {
    /// The balance as of now, counting a due-but-unswept hold as released.
    pub fn balance(&self, expiring_within: Duration) -> Balance {
        let mut view = self.clone();
        view.sweep();
        let horizon = view.now + expiring_within;
        let mut buckets: BTreeMap<&'static str, BucketBalance> = BTreeMap::new();
        for grant in view.grants.values() {
            let spendable = grant.spendable_at(view.now);
            let bucket = buckets
                .entry(grant.source.as_str())
                .or_insert(BucketBalance {
                    source: grant.source,
                    available: Credits::ZERO,
                    held: Credits::ZERO,
                    expiring_soon: Credits::ZERO,
                });
            bucket.held += grant.reserved;
            if spendable {
                bucket.available += grant.remaining;
                if grant
                    .expires_at
                    .is_some_and(|expires_at| expires_at <= horizon)
                {
                    bucket.expiring_soon += grant.remaining;
                }
            }
        }
        let buckets: Vec<BucketBalance> = buckets
            .into_values()
            .filter(|bucket| bucket.available.is_positive() || bucket.held.is_positive())
            .collect();
        Balance {
            available: buckets.iter().map(|bucket| bucket.available).sum(),
            held: buckets.iter().map(|bucket| bucket.held).sum(),
            debt: view.account.debt,
            buckets,
        }
    }
}
