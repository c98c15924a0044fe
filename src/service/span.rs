//! The ids a call touched, on its RPC span: the fields the RPC layer declares (on any other
//! span this records nothing). Never a key.

use crate::ids::{AccountId, HoldId, SettlementId};

/// Names the account, hold and settlement the current call touches, as far as known.
pub(crate) fn record_ids(
    account_id: Option<AccountId>,
    hold_id: Option<HoldId>,
    settlement_id: Option<SettlementId>,
) {
    let span = tracing::Span::current();
    if span.is_disabled() {
        return;
    }
    if let Some(account_id) = account_id {
        span.record("account_id", tracing::field::display(account_id));
    }
    if let Some(hold_id) = hold_id {
        span.record("hold_id", tracing::field::display(hold_id));
    }
    if let Some(settlement_id) = settlement_id {
        span.record("settlement_id", tracing::field::display(settlement_id));
    }
}
