//! Quote: price a usage estimate with the catalog, say whether an account may run it and can
//! afford it, and hand back the quote as a signed token for Authorize. Never touches the
//! account lock and writes nothing.

use chrono::Duration;
use uuid::Uuid;

use super::access::Caller;
use super::{Context, ServiceError, catalog};
use crate::ids::AccountId;
use crate::ledger::{AccountBook, Reason, SpendScope};
use crate::money::{Credits, LineItem};
use crate::pricing::quote_token::QuoteClaims;
use crate::pricing::{Usage, price};
use crate::store::accounts::SnapshotLimits;

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
    pub account_id: Option<AccountId>,
    /// The member, key or project whose spend limits are checked (with `account_id`).
    pub spend_scope: Option<SpendScope>,
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
        Some(account_id) => Some(
            eligibility(
                context,
                caller,
                account_id,
                command.spend_scope.as_ref(),
                &quote,
            )
            .await?,
        ),
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
    account_id: AccountId,
    scope: Option<&SpendScope>,
    quote: &QuoteClaims,
) -> Result<Eligibility, ServiceError> {
    let book = super::accounts::snapshot(context, caller, account_id, SnapshotLimits::Scope(scope))
        .await?;
    Ok(eligibility_of(
        book,
        quote.required_entitlement.as_deref(),
        scope,
        quote.total,
    ))
}

/// What the account's book says of a run that needs `required_entitlement` and costs `total`:
/// Authorize's own refusal, on the state Authorize would decide on (the book brought up to now).
fn eligibility_of(
    mut book: AccountBook,
    required_entitlement: Option<&str>,
    scope: Option<&SpendScope>,
    total: Credits,
) -> Eligibility {
    let available = book.balance(Duration::zero()).available;
    book.sweep();
    let refusal = book.hold_refusal(required_entitlement, scope, total);
    Eligibility {
        allowed: refusal.run.is_none(),
        affordable: refusal.funding.is_none(),
        denial_reason: refusal.first().map(|decline| decline.reason()),
        available,
    }
}

#[cfg(test)]
mod tests {
    use chrono::{DateTime, TimeZone as _, Utc};
    use proptest::prelude::*;
    use rust_decimal::Decimal;

    use super::*;
    use crate::ledger::{
        AccountState, AccountStatus, AllocationState, GrantSource, GrantState, HoldMeta, HoldState,
        HoldStatus, SettlePolicy,
    };

    const ENTITLEMENTS: [&str; 2] = ["pro", "video"];

    fn now() -> DateTime<Utc> {
        Utc.with_ymd_and_hms(2025, 3, 1, 12, 0, 0)
            .single()
            .expect("a time")
    }

    fn cents(value: i64) -> Credits {
        Credits::from_decimal(Decimal::new(value, 2))
    }

    /// A grant of `remaining` spendable credits and `reserved` held by a hold due (or not)
    /// at `now`; `start` and `end` place it before, around or after now (in hours).
    #[derive(Debug, Clone)]
    struct GrantShape {
        remaining: i64,
        reserved: i64,
        start: i64,
        end: Option<i64>,
        hold_due: bool,
    }

    fn grant_shape() -> impl Strategy<Value = GrantShape> {
        (
            0_i64..5_000,
            prop_oneof![Just(0_i64), 1_i64..3_000],
            prop_oneof![Just(-48_i64), Just(1_i64)],
            prop_oneof![
                Just(None),
                Just(Some(-1_i64)),
                Just(Some(0_i64)),
                Just(Some(24))
            ],
            any::<bool>(),
        )
            .prop_map(|(remaining, reserved, start, end, hold_due)| GrantShape {
                remaining,
                reserved,
                start,
                end,
                hold_due,
            })
    }

    fn book(
        status: AccountStatus,
        held: [bool; 2],
        debt: i64,
        shapes: &[GrantShape],
    ) -> AccountBook {
        let now = now();
        let account = AccountState {
            account_id: crate::ids::AccountId::from_uuid(uuid::Uuid::from_u128(1)),
            status,
            settle_policy: SettlePolicy::Debt,
            debt: cents(debt),
            entitlements: ENTITLEMENTS
                .iter()
                .zip(held)
                .filter(|(_, held)| *held)
                .map(|(entitlement, _)| (*entitlement).to_owned())
                .collect(),
            low_balance_threshold: None,
        };
        let mut grants = Vec::new();
        let mut holds = Vec::new();
        for (index, shape) in (0_u128..).zip(shapes) {
            let grant_id = crate::ids::GrantId::from_uuid(uuid::Uuid::from_u128(100 + index));
            let created_at = now + chrono::Duration::hours(shape.start);
            grants.push(GrantState {
                grant_id,
                source: GrantSource::Purchase,
                priority: GrantSource::Purchase.default_priority(),
                effective_at: created_at,
                expires_at: shape.end.map(|end| now + chrono::Duration::hours(end)),
                created_at,
                amount: cents(shape.remaining + shape.reserved),
                remaining: cents(shape.remaining),
                reserved: cents(shape.reserved),
                external_ref: None,
                expiry_warned: false,
            });
            if shape.reserved > 0 {
                let ttl = if shape.hold_due { -1 } else { 1 };
                holds.push(HoldState {
                    hold_id: crate::ids::HoldId::from_uuid(uuid::Uuid::from_u128(200 + index)),
                    status: HoldStatus::Active,
                    amount: cents(shape.reserved),
                    captured: Credits::ZERO,
                    expires_at: now + chrono::Duration::hours(ttl),
                    allocations: vec![AllocationState {
                        grant_id,
                        reserved: cents(shape.reserved),
                        captured: Credits::ZERO,
                    }],
                    partial_captures: 0,
                    late_settled: false,
                    created_at: now - chrono::Duration::hours(2),
                    resolved_at: None,
                    meta: HoldMeta::default(),
                });
            }
        }
        AccountBook::new(account, grants, holds, now)
    }

    proptest! {
        #![proptest_config(ProptestConfig::with_cases(512))]

        /// Quote says what Authorize answers on the same account, and its `allowed` and
        /// `affordable` keep their definitions over the balance GetBalance reports.
        #[test]
        fn quote_and_authorize_agree(
            status in prop_oneof![
                Just(AccountStatus::Active),
                Just(AccountStatus::Suspended),
                Just(AccountStatus::Closed),
            ],
            held in any::<[bool; 2]>(),
            debt in prop_oneof![Just(0_i64), 1_i64..4_000],
            shapes in prop::collection::vec(grant_shape(), 0..4),
            required in prop_oneof![Just(None), Just(Some(0_usize)), Just(Some(1_usize))],
            total in 1_i64..10_000,
        ) {
            let book = book(status, held, debt, &shapes);
            let required = required.map(|index| ENTITLEMENTS[index]);
            let total = cents(total);
            let quoted = eligibility_of(book.clone(), required, None, total);

            let mut authorized = book.clone();
            let hold = HoldState {
                hold_id: crate::ids::HoldId::from_uuid(uuid::Uuid::from_u128(999)),
                status: HoldStatus::Active,
                amount: total,
                captured: Credits::ZERO,
                expires_at: now() + chrono::Duration::hours(1),
                allocations: Vec::new(),
                partial_captures: 0,
                late_settled: false,
                created_at: now(),
                resolved_at: None,
                meta: HoldMeta {
                    required_entitlement: required.map(str::to_owned),
                    ..HoldMeta::default()
                },
            };
            let answered = authorized.authorize(hold).err().map(|decline| decline.reason());
            prop_assert_eq!(quoted.denial_reason, answered);

            let balance = book.balance(Duration::zero());
            let entitled = required
                .is_none_or(|entitlement| book.account().entitlements.iter().any(|held| held == entitlement));
            let active = book.account().status == AccountStatus::Active;
            let solvent = !balance.debt.is_positive();
            let enough = balance.available >= total;
            prop_assert_eq!(quoted.allowed, entitled && active);
            prop_assert_eq!(quoted.affordable, solvent && enough);
            prop_assert_eq!(quoted.available, balance.available);
            let first = [
                (!entitled, Reason::EntitlementRequired),
                (!active, Reason::AccountSuspended),
                (!solvent, Reason::AccountInDebt),
                (!enough, Reason::InsufficientCredits),
            ]
            .into_iter()
            .find_map(|(denied, reason)| denied.then_some(reason));
            prop_assert_eq!(quoted.denial_reason, first);
        }
    }
}
