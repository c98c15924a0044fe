//! One case against one server: each operation is resolved against what exists, applied to the
//! reference, sent over gRPC, and the answer compared; the touched balances and holds are then
//! read back and compared too.

use chrono::Duration;
use creditgate::clock::Clock as _;
use creditgate::proto::v1::{
    AccountKind, AuthorizeRequest, CreateAccountRequest, ExtendHoldRequest, GrantRequest,
    RefundRequest, ReleaseRequest, SettlePolicy, SettleRequest, authorize_request, settle_request,
};
use rust_decimal::Decimal;

use super::check::{Checked, Expected, compare, same};
use super::ops::{Charge, ExtendAmount, Op, RefundAmount, TICK_SECONDS};
use super::reference::{DEFAULT_TTL_SECONDS, Model, Policy};
use super::wire::{Reply, Request};
use crate::helpers::TestApp;
use crate::helpers::money::key;
use crate::helpers::time::timestamp;

/// A key whose answer the server stored, with what it answered first.
#[derive(Debug, Clone)]
struct Recorded {
    request: Request,
    reply: Reply,
    account: usize,
}

/// The server, the reference, and the server ids of what the reference knows by index.
pub struct Case<'a> {
    pub app: &'a TestApp,
    pub model: Model,
    pub accounts: Vec<String>,
    pub grants: Vec<Option<String>>,
    pub holds: Vec<String>,
    pub settlements: Vec<String>,
    keys: Vec<Recorded>,
    /// Accounts a clock move changed that no operation has touched since.
    stale_accounts: Vec<usize>,
    /// What ran so far, readable, for the failure message.
    pub trace: Vec<String>,
    /// Operations that ran (skipped ones excluded).
    pub executed: usize,
}

fn percent_of(amount: Decimal, percent: u32) -> Decimal {
    (amount * Decimal::from(percent) / Decimal::from(100)).round_dp(3)
}

impl<'a> Case<'a> {
    pub fn new(app: &'a TestApp) -> Self {
        Case {
            app,
            model: Model::default(),
            accounts: Vec::new(),
            grants: Vec::new(),
            holds: Vec::new(),
            settlements: Vec::new(),
            keys: Vec::new(),
            stale_accounts: Vec::new(),
            trace: Vec::new(),
            executed: 0,
        }
    }

    /// Runs one operation and compares everything it touched.
    pub async fn step(&mut self, op: &Op) -> Checked {
        let Some((request, expected, account)) = self.resolve(op) else {
            return match op {
                Op::Advance { ticks, sweep } => self.advance(*ticks, *sweep).await,
                _ => Ok(()),
            };
        };
        self.executed += 1;
        let reply = request.send(self.app).await;
        let step = self.trace.pop().unwrap_or_default();
        self.trace.push(format!(
            "{step} -> {}",
            match &reply {
                Ok(_) => "ok".to_owned(),
                Err(failure) => format!("{:?} {:?}", failure.code, failure.reason),
            }
        ));
        self.grants.resize(self.model.grants.len(), None);
        compare(self, &expected, &reply)?;
        if expected.stored() {
            self.keys.push(Recorded {
                request,
                reply,
                account,
            });
        }
        // A refusal, retry or reused key changes nothing: the next read of the account
        // would show it if it did.
        if expected.changed_state() {
            self.stale_accounts.retain(|stale| *stale != account);
            self.check_account(account).await?;
            if let Some(hold) = expected.hold() {
                self.check_hold(hold).await?;
            }
        }
        Ok(())
    }

    async fn advance(&mut self, ticks: i64, sweep: bool) -> Checked {
        self.executed += 1;
        let seconds = ticks * TICK_SECONDS;
        let advanced = self.model.advance(seconds);
        let order_matters = advanced.order_matters;
        self.app.clock.advance(Duration::seconds(seconds));
        // The background sweeper may bring accounts up to now at any moment; where that
        // changes the outcome (see `Model::advance`) it is run here so the case is determined.
        if sweep || order_matters {
            self.app.sweep().await;
        } else {
            for account in advanced.changed_accounts {
                if !self.stale_accounts.contains(&account) {
                    self.stale_accounts.push(account);
                }
            }
        }
        self.trace.push(format!(
            "advance {ticks} ticks{}",
            if sweep || order_matters {
                ", sweep"
            } else {
                ""
            }
        ));
        for account in 0..self.accounts.len() {
            self.check_account(account).await?;
        }
        Ok(())
    }

    /// Every account and hold, and the journal, once the case is over.
    pub async fn check_all(&mut self) -> Checked {
        for account in 0..self.accounts.len() {
            self.check_account(account).await?;
        }
        for hold in 0..self.holds.len() {
            self.check_hold(hold).await?;
        }
        Ok(())
    }

    /// The request an operation makes, what the reference expects of it, and its account;
    /// `None` when there is nothing to act on (or for a clock move).
    fn resolve(&mut self, op: &Op) -> Option<(Request, Expected, usize)> {
        let model = &mut self.model;
        let resolved = match op {
            Op::CreateAccount { cap_at_hold } => {
                let (policy, wire) = if *cap_at_hold {
                    (Policy::CapAtHold, SettlePolicy::CapAtHold)
                } else {
                    (Policy::Debt, SettlePolicy::Debt)
                };
                let account = model.create_account(policy);
                self.trace
                    .push(format!("create account a{account} {policy:?}"));
                let request = Request::CreateAccount(CreateAccountRequest {
                    idempotency_key: key(),
                    external_id: key(),
                    kind: AccountKind::Organization as i32,
                    settle_policy: wire as i32,
                    ..CreateAccountRequest::default()
                });
                (request, Expected::Account { account }, account)
            }
            Op::Grant {
                account,
                source,
                amount,
                expires_in_ticks,
                priority,
                external_ref,
            } => {
                let account = account.index(self.accounts.len().max(1));
                self.accounts.get(account)?;
                let expires_in = expires_in_ticks.map(|ticks| ticks * TICK_SECONDS);
                let external_ref = external_ref.map(|reference| format!("ref-{reference}"));
                self.trace.push(format!(
                    "grant a{account} {source:?} {amount} expires {expires_in:?} priority {priority:?} ref {external_ref:?}"
                ));
                let request = Request::Grant(GrantRequest {
                    account_id: self.accounts[account].clone(),
                    idempotency_key: key(),
                    source: super::check::source_to_wire(*source) as i32,
                    amount: amount.to_string(),
                    expires_at: expires_in.map(|seconds| {
                        timestamp(self.app.clock.now() + Duration::seconds(seconds))
                    }),
                    priority: *priority,
                    external_ref: external_ref.clone().unwrap_or_default(),
                    effective_at: None,
                });
                let outcome = model.grant(
                    account,
                    *source,
                    *amount,
                    expires_in.map(|seconds| model.now + seconds),
                    *priority,
                    external_ref,
                );
                (request, Expected::Grant { account, outcome }, account)
            }
            Op::Authorize {
                account,
                amount,
                ttl_seconds,
            } => {
                let account = account.index(self.accounts.len().max(1));
                self.accounts.get(account)?;
                self.trace
                    .push(format!("authorize a{account} {amount} ttl {ttl_seconds}"));
                let request = Request::Authorize(AuthorizeRequest {
                    account_id: self.accounts[account].clone(),
                    idempotency_key: key(),
                    price: Some(authorize_request::Price::Amount(amount.to_string())),
                    ttl_seconds: *ttl_seconds,
                    ..AuthorizeRequest::default()
                });
                let ttl = match ttl_seconds {
                    0 => DEFAULT_TTL_SECONDS,
                    seconds => i64::from(*seconds),
                };
                let outcome = model.authorize(account, *amount, ttl);
                (request, Expected::Authorize { account, outcome }, account)
            }
            Op::Extend {
                hold,
                amount,
                ttl_seconds,
            } => {
                let hold = hold.resolve(self.holds.len())?;
                let current = model.holds[hold].amount;
                let new_amount = match amount {
                    ExtendAmount::Unchanged => None,
                    ExtendAmount::Same => Some(current),
                    ExtendAmount::Raise(more) => Some(current + more),
                    ExtendAmount::Lower => {
                        Some(current - Decimal::new(1, 3)).filter(|lower| *lower > Decimal::ZERO)
                    }
                };
                let ttl = ttl_seconds.filter(|seconds| *seconds > 0);
                self.trace
                    .push(format!("extend h{hold} to {new_amount:?} ttl {ttl:?}"));
                let request = Request::Extend(ExtendHoldRequest {
                    hold_id: self.holds[hold].clone(),
                    idempotency_key: key(),
                    amount: new_amount
                        .map(|amount| amount.to_string())
                        .unwrap_or_default(),
                    ttl_seconds: ttl.unwrap_or(0),
                    ..Default::default()
                });
                let outcome = model.extend(hold, new_amount, ttl.map(i64::from));
                let account = model.holds[hold].account;
                (request, Expected::Extend { hold, outcome }, account)
            }
            Op::Settle {
                hold,
                charge,
                partial,
            } => {
                let hold = hold.resolve(self.holds.len())?;
                let state = &model.holds[hold];
                let total = match charge {
                    Charge::OfHold(percent) => {
                        percent_of((state.amount - state.captured).max(Decimal::ZERO), *percent)
                    }
                    Charge::Exact(amount) => *amount,
                };
                let kind = if *partial { "partial" } else { "final" };
                self.trace.push(format!("settle h{hold} {total} {kind}"));
                let request = Request::Settle(SettleRequest {
                    hold_id: self.holds[hold].clone(),
                    idempotency_key: key(),
                    charge: Some(settle_request::Charge::Amount(total.to_string())),
                    partial: *partial,
                    ..Default::default()
                });
                let outcome = model.settle(hold, total, *partial).map(Box::new);
                let account = model.holds[hold].account;
                let expected = Expected::Settle {
                    hold,
                    total,
                    partial: *partial,
                    outcome,
                };
                (request, expected, account)
            }
            Op::Release { hold } => {
                let hold = hold.resolve(self.holds.len())?;
                self.trace.push(format!("release h{hold}"));
                let request = Request::Release(ReleaseRequest {
                    hold_id: self.holds[hold].clone(),
                    idempotency_key: key(),
                    reason: "run failed".to_owned(),
                    ..Default::default()
                });
                let outcome = model.release(hold);
                let account = model.holds[hold].account;
                (request, Expected::Release { hold, outcome }, account)
            }
            Op::Refund { settlement, amount } => {
                let settlement = settlement.resolve(self.settlements.len())?;
                let amount = match amount {
                    RefundAmount::AllLeft => None,
                    RefundAmount::OfLeft(percent) => Some(percent_of(
                        model.settlements[settlement].refundable(),
                        *percent,
                    )),
                    RefundAmount::Exact(amount) => Some(*amount),
                };
                self.trace.push(format!("refund s{settlement} {amount:?}"));
                let request = Request::Refund(RefundRequest {
                    settlement_id: self.settlements[settlement].clone(),
                    idempotency_key: key(),
                    reason: "support".to_owned(),
                    amount: amount.map(|amount| amount.to_string()).unwrap_or_default(),
                    ..Default::default()
                });
                let account = model.settlements[settlement].account;
                let outcome = model.refund(settlement, amount);
                (request, Expected::Refund { outcome }, account)
            }
            Op::Advance { .. } => return None,
            Op::Retry { key } => {
                let recorded = self.keys.get(key.index(self.keys.len().max(1)))?.clone();
                self.trace
                    .push(format!("retry key {:?}", recorded.request.key()));
                let expected = Expected::Replay {
                    first: recorded.reply,
                };
                (recorded.request, expected, recorded.account)
            }
            Op::Reuse { key, other_rpc } => {
                let recorded = self.keys.get(key.index(self.keys.len().max(1)))?.clone();
                let (request, fields) = super::check::changed(
                    &recorded.request,
                    *other_rpc,
                    &self.accounts[recorded.account],
                );
                self.trace.push(format!(
                    "reuse key {:?} changing {fields}",
                    recorded.request.key()
                ));
                (request, Expected::Reused { fields }, recorded.account)
            }
        };
        Some(resolved)
    }

    async fn check_account(&self, account: usize) -> Checked {
        let server = self.app.balance(&self.accounts[account]).await;
        same(
            &format!("GetBalance of a{account}"),
            super::check::balance_of(&server)?,
            self.model.balance(account),
        )
    }

    async fn check_hold(&self, hold: usize) -> Checked {
        let server = super::wire::hold(self.app, &self.holds[hold]).await;
        let server_hold = server.hold.ok_or("GetHold without a hold")?;
        super::check::hold_agrees(self, hold, &server_hold, true)
            .map_err(|error| format!("GetHold of h{hold}: {error}"))
    }
}
