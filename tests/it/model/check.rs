//! What the reference expects of an answer, and the comparisons of answers, balances and holds
//! with it. Amounts are compared as decimals.

use std::collections::BTreeMap;
use std::fmt::Debug;
use std::str::FromStr as _;

use creditgate::proto::v1::{
    self as wire_v1, CreateAccountRequest, GetBalanceResponse, GrantRequest, GrantSource,
    HoldStatus,
};
use rust_decimal::Decimal;
use tonic::Code;

use super::driver::Case;
use super::reference::{
    Balance, Bucket, GrantAnswer, RefundAnswer, Refusal, SettleAnswer, Source, Status,
};
use super::wire::{Reply, Request, Response};
use crate::helpers::money::key;

pub type Checked = Result<(), String>;

/// What the reference expects of one request.
#[derive(Debug)]
pub enum Expected {
    Account {
        account: usize,
    },
    Grant {
        account: usize,
        outcome: Result<GrantAnswer, Refusal>,
    },
    Authorize {
        account: usize,
        outcome: Result<usize, Refusal>,
    },
    Extend {
        hold: usize,
        outcome: Result<(), Refusal>,
    },
    Settle {
        hold: usize,
        total: Decimal,
        partial: bool,
        outcome: Result<Box<SettleAnswer>, Refusal>,
    },
    Release {
        hold: usize,
        outcome: Result<Decimal, Refusal>,
    },
    Refund {
        outcome: Result<RefundAnswer, Refusal>,
    },
    /// The first answer to this key, exactly.
    Replay {
        first: Reply,
    },
    /// ALREADY_EXISTS / IDEMPOTENCY_KEY_REUSED naming these fields.
    Reused {
        fields: &'static str,
    },
}

impl Expected {
    /// Whether the server keeps the answer with the key: answers and declines, not input errors.
    pub fn stored(&self) -> bool {
        fn kept<T>(outcome: &Result<T, Refusal>) -> bool {
            outcome.as_ref().err().is_none_or(|refusal| refusal.stored)
        }
        match self {
            Expected::Account { .. } => true,
            Expected::Grant { outcome, .. } => kept(outcome),
            Expected::Authorize { outcome, .. } => kept(outcome),
            Expected::Extend { outcome, .. } => kept(outcome),
            Expected::Settle { outcome, .. } => kept(outcome),
            Expected::Release { outcome, .. } => kept(outcome),
            Expected::Refund { outcome } => kept(outcome),
            Expected::Replay { .. } | Expected::Reused { .. } => false,
        }
    }

    /// Whether the server's state changed (as far as the reference knows).
    pub fn changed_state(&self) -> bool {
        fn applied<T>(outcome: &Result<T, Refusal>) -> bool {
            outcome.is_ok()
        }
        match self {
            Expected::Account { .. } => true,
            Expected::Grant { outcome, .. } => applied(outcome),
            Expected::Authorize { outcome, .. } => applied(outcome),
            Expected::Extend { outcome, .. } => applied(outcome),
            Expected::Settle { outcome, .. } => applied(outcome),
            Expected::Release { outcome, .. } => applied(outcome),
            Expected::Refund { outcome } => applied(outcome),
            Expected::Replay { .. } | Expected::Reused { .. } => false,
        }
    }

    /// The hold it touched, if any.
    pub fn hold(&self) -> Option<usize> {
        match self {
            Expected::Authorize {
                outcome: Ok(hold), ..
            } => Some(*hold),
            Expected::Extend { hold, .. }
            | Expected::Settle { hold, .. }
            | Expected::Release { hold, .. } => Some(*hold),
            _ => None,
        }
    }
}

pub fn same<T: PartialEq + Debug>(what: &str, server: T, model: T) -> Checked {
    if server == model {
        Ok(())
    } else {
        Err(format!("{what}:\n  server {server:?}\n  model  {model:?}"))
    }
}

pub fn decimal(text: &str) -> Result<Decimal, String> {
    Decimal::from_str(text).map_err(|error| format!("{text:?} is not a decimal: {error}"))
}

pub fn source_to_wire(source: Source) -> GrantSource {
    match source {
        Source::FreeDaily => GrantSource::FreeDaily,
        Source::Subscription => GrantSource::Subscription,
        Source::Purchase => GrantSource::Purchase,
        Source::Topup => GrantSource::Topup,
        Source::Promo => GrantSource::Promo,
        Source::Refund => GrantSource::Refund,
    }
}

fn status_of(status: HoldStatus) -> Option<Status> {
    match status {
        HoldStatus::Active => Some(Status::Active),
        HoldStatus::Settled => Some(Status::Settled),
        HoldStatus::Released => Some(Status::Released),
        HoldStatus::Expired => Some(Status::Expired),
        HoldStatus::Unspecified => None,
    }
}

/// GetBalance as the reference states balances.
pub fn balance_of(server: &GetBalanceResponse) -> Result<Balance, String> {
    let mut buckets = BTreeMap::new();
    for bucket in &server.buckets {
        let source = Source::ALL
            .into_iter()
            .find(|source| source_to_wire(*source) as i32 == bucket.source)
            .ok_or_else(|| format!("unknown bucket source {}", bucket.source))?;
        let parsed = Bucket {
            available: decimal(&bucket.available)?,
            held: decimal(&bucket.held)?,
            expiring_soon: decimal(&bucket.expiring_soon)?,
        };
        if buckets.insert(source, parsed).is_some() {
            return Err(format!("two buckets of {source:?}"));
        }
    }
    Ok(Balance {
        available: decimal(&server.available)?,
        held: decimal(&server.held)?,
        debt: decimal(&server.debt)?,
        buckets,
    })
}

/// A hold's status, amount, captured (and, while active, its allocations) against the
/// reference. `as_read`: GetHold shows a hold past its expiry as EXPIRED.
pub fn hold_agrees(case: &Case<'_>, hold: usize, server: &wire_v1::Hold, as_read: bool) -> Checked {
    let model = &case.model.holds[hold];
    let status = if as_read {
        case.model.hold_status(hold)
    } else {
        model.status
    };
    same("hold status", status_of(server.status()), Some(status))?;
    same("hold amount", decimal(&server.amount)?, model.amount)?;
    same("hold captured", decimal(&server.captured)?, model.captured)?;
    if status == Status::Active {
        let server_allocations = server
            .allocations
            .iter()
            .map(|allocation| Ok((allocation.grant_id.clone(), decimal(&allocation.amount)?)))
            .collect::<Result<Vec<_>, String>>()?;
        let model_allocations: Vec<(String, Decimal)> = model
            .allocations
            .iter()
            .filter(|allocation| allocation.reserved > Decimal::ZERO)
            .map(|allocation| (grant_id(case, allocation.grant), allocation.reserved))
            .collect();
        same("hold allocations", server_allocations, model_allocations)?;
    }
    Ok(())
}

fn grant_id(case: &Case<'_>, grant: usize) -> String {
    case.grants
        .get(grant)
        .cloned()
        .flatten()
        .unwrap_or_else(|| format!("<grant g{grant} not yet seen>"))
}

fn refused<T: Debug>(reply: &Reply, outcome: &Result<T, Refusal>) -> Checked {
    let server = reply
        .as_ref()
        .err()
        .map(|failure| (failure.code, failure.reason.clone().unwrap_or_default()));
    let model = outcome.as_ref().err().map(|refusal| {
        let code = match refusal.reason {
            "INVALID_AMOUNT" | "INVALID_ARGUMENT" => Code::InvalidArgument,
            _ => Code::FailedPrecondition,
        };
        (code, refusal.reason.to_owned())
    });
    same("refusal (code, reason)", server, model).map_err(|error| match (reply, outcome) {
        (Ok(response), Err(_)) => format!("{error}\n  server answered {response:?}"),
        (Err(_), Ok(answer)) => format!("{error}\n  model answered {answer:?}"),
        _ => error,
    })
}

/// Compares one answer with what the reference expects, learning the ids of what it made.
pub fn compare(case: &mut Case<'_>, expected: &Expected, reply: &Reply) -> Checked {
    match (expected, reply) {
        (Expected::Account { account }, Ok(Response::CreateAccount(response))) => {
            let made = response.account.as_ref().ok_or("no account")?;
            same("account index", case.accounts.len(), *account)?;
            case.accounts.push(made.account_id.clone());
            Ok(())
        }
        (Expected::Grant { account, outcome }, _) => {
            refused(reply, outcome)?;
            let (Ok(Response::Grant(response)), Ok(answer)) = (reply, outcome) else {
                return Ok(());
            };
            let grant = response.grant.as_ref().ok_or("no grant")?;
            bind(&mut case.grants[answer.grant], &grant.grant_id)?;
            let model = &case.model.grants[answer.grant];
            same(
                "grant account",
                grant.account_id.clone(),
                case.accounts[*account].clone(),
            )?;
            same("grant source", grant.source(), source_to_wire(model.source))?;
            same("grant priority", grant.priority, model.priority)?;
            same("grant amount", decimal(&grant.amount)?, model.amount)?;
            same(
                "grant remaining",
                decimal(&grant.remaining)?,
                model.remaining,
            )?;
            same(
                "grant available after",
                decimal(&response.available)?,
                answer.available,
            )?;
            same(
                "grant debt repaid",
                decimal(&response.debt_repaid)?,
                answer.debt_repaid,
            )
        }
        (Expected::Authorize { account, outcome }, _) => {
            refused(reply, outcome)?;
            let (Ok(Response::Authorize(response)), Ok(hold)) = (reply, outcome) else {
                return Ok(());
            };
            let server = response.hold.as_ref().ok_or("no hold")?;
            same("hold index", case.holds.len(), *hold)?;
            case.holds.push(server.hold_id.clone());
            hold_agrees(case, *hold, server, false)?;
            same(
                "available after authorize",
                decimal(&response.available)?,
                case.model.available(*account),
            )
        }
        (Expected::Extend { hold, outcome }, _) => {
            refused(reply, outcome)?;
            let Ok(Response::Extend(response)) = reply else {
                return Ok(());
            };
            hold_agrees(case, *hold, response.hold.as_ref().ok_or("no hold")?, false)?;
            let account = case.model.holds[*hold].account;
            same(
                "available after extend",
                decimal(&response.available)?,
                case.model.available(account),
            )
        }
        (
            Expected::Settle {
                hold,
                total,
                partial,
                outcome,
            },
            _,
        ) => {
            refused(reply, outcome)?;
            let (Ok(Response::Settle(response)), Ok(answer)) = (reply, outcome) else {
                return Ok(());
            };
            let settlement = response.settlement.as_ref().ok_or("no settlement")?;
            same(
                "settlement index",
                case.settlements.len(),
                answer.settlement,
            )?;
            case.settlements.push(settlement.settlement_id.clone());
            let parts = |total: Decimal, answer: &SettleAnswer, late, partial| {
                (
                    total,
                    answer.from_hold,
                    answer.from_balance,
                    answer.debt,
                    answer.written_off,
                    answer.released,
                    late,
                    partial,
                )
            };
            let server_answer = SettleAnswer {
                settlement: answer.settlement,
                from_hold: decimal(&settlement.from_hold)?,
                from_balance: decimal(&settlement.from_balance)?,
                debt: decimal(&settlement.debt)?,
                written_off: decimal(&settlement.written_off)?,
                released: decimal(&settlement.released)?,
                late: settlement.late,
            };
            same(
                "settlement (total, from_hold, from_balance, debt, written_off, released, late, partial)",
                parts(
                    decimal(&settlement.total)?,
                    &server_answer,
                    settlement.late,
                    settlement.partial,
                ),
                parts(*total, answer.as_ref(), answer.late, *partial),
            )?;
            hold_agrees(case, *hold, response.hold.as_ref().ok_or("no hold")?, false)
        }
        (Expected::Release { hold, outcome }, _) => {
            refused(reply, outcome)?;
            let (Ok(Response::Release(response)), Ok(released)) = (reply, outcome) else {
                return Ok(());
            };
            same("released", decimal(&response.released)?, *released)?;
            hold_agrees(case, *hold, response.hold.as_ref().ok_or("no hold")?, false)
        }
        (Expected::Refund { outcome }, _) => {
            refused(reply, outcome)?;
            let (Ok(Response::Refund(response)), Ok(answer)) = (reply, outcome) else {
                return Ok(());
            };
            let refund = response.refund.as_ref().ok_or("no refund")?;
            if let Some(grant) = answer.new_grant {
                bind(&mut case.grants[grant], &refund.new_grant_id)?;
            }
            let server_returned = refund
                .returned_to
                .iter()
                .map(|allocation| Ok((allocation.grant_id.clone(), decimal(&allocation.amount)?)))
                .collect::<Result<Vec<_>, String>>()?;
            let model_returned: Vec<(String, Decimal)> = answer
                .returned_to
                .iter()
                .map(|(grant, amount)| (grant_id(case, *grant), *amount))
                .collect();
            same(
                "refund (amount, debt_reduced, new REFUND grant)",
                (
                    decimal(&refund.amount)?,
                    decimal(&refund.debt_reduced)?,
                    !refund.new_grant_id.is_empty(),
                ),
                (
                    answer.amount,
                    answer.debt_reduced,
                    answer.new_grant.is_some(),
                ),
            )?;
            same("refund returned_to", server_returned, model_returned)
        }
        (Expected::Replay { first }, _) => same("retry answer", reply, first),
        (Expected::Reused { fields }, _) => same(
            "reused key (code, reason, fields)",
            reply
                .as_ref()
                .err()
                .map(|failure| (failure.code, failure.reason.clone(), failure.fields.clone())),
            Some((
                Code::AlreadyExists,
                Some("IDEMPOTENCY_KEY_REUSED".to_owned()),
                Some((*fields).to_owned()),
            )),
        ),
        (Expected::Account { .. }, _) => Err(format!("CreateAccount failed: {reply:?}")),
    }
}

/// Learns a server id, or checks it is the one learned before.
fn bind(slot: &mut Option<String>, server_id: &str) -> Checked {
    match slot {
        Some(known) => same("grant id", server_id, known.as_str()),
        None => {
            *slot = Some(server_id.to_owned());
            Ok(())
        }
    }
}

/// Another valid TTL (the server's maximum is a day).
fn other_ttl(ttl_seconds: u32) -> u32 {
    if ttl_seconds >= 3_600 {
        ttl_seconds - 300
    } else {
        ttl_seconds + 300
    }
}

/// The same key with another request: one field changed, or another RPC.
pub fn changed(request: &Request, other_rpc: bool, account_id: &str) -> (Request, &'static str) {
    let idempotency_key = request.key().to_owned();
    match (request, other_rpc) {
        (Request::CreateAccount(_), true) => (
            Request::Grant(GrantRequest {
                account_id: account_id.to_owned(),
                idempotency_key,
                source: GrantSource::Purchase as i32,
                amount: "1".to_owned(),
                ..GrantRequest::default()
            }),
            "rpc",
        ),
        (_, true) => (
            Request::CreateAccount(CreateAccountRequest {
                idempotency_key,
                external_id: key(),
                kind: wire_v1::AccountKind::User as i32,
                ..CreateAccountRequest::default()
            }),
            "rpc",
        ),
        (Request::CreateAccount(original), false) => {
            let mut request = original.clone();
            request.external_id = key();
            (Request::CreateAccount(request), "external_id")
        }
        (Request::Grant(original), false) => {
            let mut request = original.clone();
            request.amount.push('1');
            (Request::Grant(request), "amount")
        }
        (Request::Authorize(original), false) => {
            let mut request = original.clone();
            request.ttl_seconds = other_ttl(request.ttl_seconds);
            (Request::Authorize(request), "ttl_seconds")
        }
        (Request::Extend(original), false) => {
            let mut request = original.clone();
            request.ttl_seconds = other_ttl(request.ttl_seconds);
            (Request::Extend(request), "ttl_seconds")
        }
        (Request::Settle(original), false) => {
            let mut request = original.clone();
            request.partial = !request.partial;
            (Request::Settle(request), "partial")
        }
        (Request::Release(original), false) => {
            let mut request = original.clone();
            request.reason.push_str(", again");
            (Request::Release(request), "reason")
        }
        (Request::Refund(original), false) => {
            let mut request = original.clone();
            request.reason.push_str(", again");
            (Request::Refund(request), "reason")
        }
    }
}
