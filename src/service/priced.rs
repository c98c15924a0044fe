//! Turning what a worker sends into credits, before the account lock: an explicit amount, a
//! quote, or usage priced with the catalog (the hold's version for Settle: the price lock).

use super::access::Caller;
use super::{Context, ServiceError, catalog};
use crate::ids::AccountId;
use crate::ledger::{HoldMeta, Reason};
use crate::money::{Credits, LineItem};
use crate::pricing::{self, PricingError, Usage};
use crate::store::holds::HoldRef;

/// How much an Authorize holds.
#[derive(Debug, Clone)]
pub enum HoldPrice {
    /// Explicit credits.
    Amount(Credits),
    /// A quote's total, with its catalog version: the quote's token.
    Quote(String),
    /// A usage estimate priced with the active catalog for the run's tool and model.
    Usage(Usage),
}

/// What a Settle charges.
#[derive(Debug, Clone)]
pub enum Charge {
    /// Explicit credits.
    Amount(Credits),
    /// Metered usage, priced with the hold's catalog version.
    Usage(Usage),
}

fn non_empty(text: &str) -> Option<&str> {
    (!text.is_empty()).then_some(text)
}

/// The amount to hold; records the catalog version, quote, tool, model and required
/// entitlement on the hold.
pub async fn price_hold(
    context: &Context,
    caller: Caller,
    account_id: AccountId,
    price: &HoldPrice,
    meta: &mut HoldMeta,
) -> Result<Credits, ServiceError> {
    let total = match price {
        HoldPrice::Amount(amount) => {
            lock_explicit_hold(context, caller, meta).await?;
            return Ok(*amount);
        }
        HoldPrice::Quote(token) => quoted_hold(context, caller, account_id, token, meta).await?,
        HoldPrice::Usage(usage) => {
            let catalog = catalog::active(context, caller.tenant_id).await?;
            let priced = pricing::price(
                &catalog,
                non_empty(&meta.tool),
                non_empty(&meta.model),
                usage,
            )?;
            meta.catalog_version = catalog.version;
            meta.tool = priced.tool.unwrap_or_default();
            meta.model = priced.model.unwrap_or_default();
            meta.required_entitlement = priced.required_entitlement;
            priced.total
        }
    };
    if !total.is_positive() {
        return Err(PricingError::InvalidUsage(
            "the run prices at 0 credits; authorize an explicit amount instead".to_owned(),
        )
        .into());
    }
    within_limit(context, total)
}

/// A quote's total, checked against the caller, the account and the clock; records the quote,
/// its catalog version, tool, model and required entitlement on the hold.
async fn quoted_hold(
    context: &Context,
    caller: Caller,
    account_id: AccountId,
    token: &str,
    meta: &mut HoldMeta,
) -> Result<Credits, ServiceError> {
    let quote = context
        .quote_key()
        .await?
        .verify(caller.tenant_id, token)
        .ok_or_else(|| ServiceError::NotFound {
            reason: Reason::QuoteNotFound,
            what: "the quote named by quote_id (a quote_id is what Quote returned, \
                   unchanged, to the same tenant)"
                .to_owned(),
        })?;
    if quote
        .account_id
        .is_some_and(|quoted_for| quoted_for != account_id)
    {
        return Err(ServiceError::InvalidArgument {
            field: "quote_id",
            message: "the quote was made for another account".to_owned(),
        });
    }
    if quote.expires_at <= context.clock.now() {
        return Err(ServiceError::Declined {
            reason: Reason::QuoteExpired,
            message: format!(
                "the quote expired at {}; quote again",
                quote.expires_at.to_rfc3339()
            ),
            metadata: vec![("expired_at".to_owned(), quote.expires_at.to_rfc3339())],
        });
    }
    meta.catalog_version = quote.catalog_version;
    meta.quote_id = Some(quote.quote_id);
    meta.quote_token = Some(token.to_owned());
    meta.tool = quote.tool;
    meta.model = quote.model;
    meta.required_entitlement = quote.required_entitlement;
    Ok(quote.total)
}

/// An explicit amount for a run whose tool or model the catalog knows still takes that model's
/// entitlement and the active catalog version, so neither can be bypassed and its usage is
/// priced at today's rates later (the price lock holds for explicit amounts too).
async fn lock_explicit_hold(
    context: &Context,
    caller: Caller,
    meta: &mut HoldMeta,
) -> Result<(), ServiceError> {
    if meta.tool.is_empty() && meta.model.is_empty() {
        return Ok(());
    }
    let catalog = catalog::active(context, caller.tenant_id).await?;
    let tool = non_empty(&meta.tool).and_then(|id| catalog.tool(id));
    let model_id =
        non_empty(&meta.model).or_else(|| tool.and_then(|tool| tool.default_model.as_deref()));
    if tool.is_some() || model_id.is_some_and(|id| catalog.model(id).is_some()) {
        meta.catalog_version = catalog.version;
    }
    meta.required_entitlement = model_id
        .and_then(|id| catalog.model(id))
        .and_then(|model| model.required_entitlement.clone());
    Ok(())
}

/// A priced total must stay within the largest amount accepted, like an explicit one.
pub(super) fn within_limit(context: &Context, total: Credits) -> Result<Credits, ServiceError> {
    if total > context.limits.max_amount {
        return Err(PricingError::InvalidUsage(format!(
            "the run prices at {total} credits, above the maximum amount {}",
            context.limits.max_amount
        ))
        .into());
    }
    Ok(total)
}

/// The total (and line items) a Settle charges. A hold of an explicit amount has no catalog
/// version; its usage is priced with the active catalog.
pub async fn price_charge(
    context: &Context,
    caller: Caller,
    hold: &HoldRef,
    charge: &Charge,
) -> Result<(Credits, Vec<LineItem>), ServiceError> {
    let usage = match charge {
        Charge::Amount(amount) => return Ok((*amount, Vec::new())),
        Charge::Usage(usage) => usage,
    };
    let catalog = if hold.catalog_version > 0 {
        catalog::version(context, caller.tenant_id, hold.catalog_version).await?
    } else {
        catalog::active(context, caller.tenant_id).await?
    };
    let priced = pricing::price(
        &catalog,
        non_empty(&hold.tool),
        non_empty(&hold.model),
        usage,
    )?;
    Ok((within_limit(context, priced.total)?, priced.line_items))
}
