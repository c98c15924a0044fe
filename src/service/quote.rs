//! Quote: price a usage estimate with the catalog, say whether an account may run it and can
//! afford it, and hand back the quote as a signed token for Authorize. Never touches the
//! account lock and writes nothing.

use chrono::Duration;
use uuid::Uuid;

use super::access::Caller;
use super::quote_token::QuoteClaims;
use super::{Context, ServiceError, catalog};
use crate::ledger::{AccountStatus, Reason};
use crate::money::{Credits, LineItem};
use crate::pricing::{Usage, price};

/// What to quote.
#[derive(Debug, Clone)]
pub struct QuoteCommand {
    /// Tool.
    pub tool: Option<String>,
    /// Model (the tool's default when `None`).
    pub model: Option<String>,
    /// The estimate.
    pub usage: Usage,
    /// The account that would run it.
    pub account_id: Option<Uuid>,
    /// Catalog version; the active one when `None`.
    pub catalog_version: Option<i64>,
}

/// Whether the account may run the quoted run and can afford it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Eligibility {
    /// Entitled and active.
    pub allowed: bool,
    /// Not in debt, and enough available.
    pub affordable: bool,
    /// The first reason it would be refused, as Authorize would say it.
    pub denial_reason: Option<Reason>,
    /// Spendable now.
    pub available: Credits,
}

/// A quote and, with an account, its eligibility.
#[derive(Debug, Clone)]
pub struct QuoteOutcome {
    /// What the quote says.
    pub quote: QuoteClaims,
    /// Its id: the signed token Authorize takes.
    pub token: String,
    /// How the total was made.
    pub line_items: Vec<LineItem>,
    /// For the account asked about.
    pub eligibility: Option<Eligibility>,
}

/// Prices a quote and signs it.
pub async fn quote(
    context: &Context,
    caller: Caller,
    command: QuoteCommand,
) -> Result<QuoteOutcome, ServiceError> {
    // Only the version in effect prices new runs: an old one would undercut today's prices,
    // a future one is not in effect yet.
    let catalog = catalog::active(context, caller.tenant_id).await?;
    if let Some(version) = command
        .catalog_version
        .filter(|version| *version != catalog.version)
    {
        return Err(ServiceError::InvalidArgument {
            field: "catalog_version",
            message: format!(
                "version {version} is not the active catalog version ({}); leave it 0",
                catalog.version
            ),
        });
    }
    let priced = price(
        &catalog,
        command.tool.as_deref(),
        command.model.as_deref(),
        &command.usage,
    )?;
    super::priced::within_limit(context, priced.total)?;
    let now = context.clock.now();
    let quote = QuoteClaims {
        quote_id: Uuid::now_v7(),
        account_id: command.account_id,
        catalog_version: catalog.version,
        tool: priced.tool.unwrap_or_default(),
        model: priced.model.unwrap_or_default(),
        required_entitlement: priced.required_entitlement,
        total: priced.total,
        expires_at: now + context.limits.quote_ttl,
    };
    let eligibility = match command.account_id {
        Some(account_id) => Some(eligibility(context, caller, account_id, &quote).await?),
        None => None,
    };
    let token = context
        .quote_key()
        .await?
        .sign(caller.tenant_id, &quote)
        .ok_or_else(|| {
            ServiceError::Internal(crate::store::StoreError::Other(
                "the catalog names a tool, model or entitlement too long to fit in a quote id"
                    .to_owned(),
            ))
        })?;
    Ok(QuoteOutcome {
        quote,
        token,
        line_items: priced.line_items,
        eligibility,
    })
}

async fn eligibility(
    context: &Context,
    caller: Caller,
    account_id: Uuid,
    quote: &QuoteClaims,
) -> Result<Eligibility, ServiceError> {
    let book = super::accounts::snapshot(context, caller, account_id).await?;
    let balance = book.balance(Duration::zero());
    let account = book.account();
    let entitled = quote
        .required_entitlement
        .as_ref()
        .is_none_or(|entitlement| account.entitlements.contains(entitlement));
    let active = account.status == AccountStatus::Active;
    let solvent = !balance.debt.is_positive();
    let enough = balance.available >= quote.total;
    let denial_reason = [
        (!entitled, Reason::EntitlementRequired),
        (!active, Reason::AccountSuspended),
        (!solvent, Reason::AccountInDebt),
        (!enough, Reason::InsufficientCredits),
    ]
    .into_iter()
    .find_map(|(denied, reason)| denied.then_some(reason));
    Ok(Eligibility {
        allowed: entitled && active,
        affordable: solvent && enough,
        denial_reason,
        available: balance.available,
    })
}
