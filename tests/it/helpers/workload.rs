//! A concurrent money workload that keeps every answer the service gave, retrying a call that
//! got none with the same key and the same request until it gets one.

use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Duration;

use creditgate::proto::v1::account_service_client::AccountServiceClient;
use creditgate::proto::v1::credit_service_client::CreditServiceClient;
use creditgate::proto::v1::{
    AccountKind, AuthorizeRequest, CreateAccountRequest, GetBalanceRequest, GetBalanceResponse,
    GrantRequest, GrantSource, RefundRequest, ReleaseRequest, SettleRequest, authorize_request,
    settle_request,
};
use rust_decimal::Decimal;
use tokio::task::JoinHandle;
use tonic::Status;
use tonic::transport::Endpoint;

use super::money::key;
use super::retry::{Progress, answered};
use super::{Authed, BearerKey, reason};

/// Credits each account starts with.
const OPENING_GRANT: &str = "100";
/// A top-up some runs add; decimals so that any rounding would show.
const TOP_UP: &str = "7.5";
/// What each run authorizes.
const HOLD: &str = "2.25";
/// What a settled run is charged, within its hold.
const CHARGE: &str = "1.125";
/// What is refunded of some settlements.
const REFUND: &str = "0.375";

/// Bound on one call, so that a call to a server that died is abandoned and retried.
const CALL_LIMIT: Duration = Duration::from_secs(15);

/// The shape of the load.
pub struct Workload {
    pub accounts: usize,
    /// Concurrent clients; client `i` works on account `i % accounts`.
    pub tasks: usize,
    /// Runs per client: Authorize, then Settle (sometimes Refund) or Release; a Grant every
    /// third run.
    pub runs_per_task: usize,
}

/// What the service answered.
#[derive(Debug, Clone)]
pub enum Answer {
    Granted {
        account_id: String,
        grant_id: String,
        amount: Decimal,
    },
    Authorized {
        hold_id: String,
        amount: Decimal,
    },
    Settled {
        account_id: String,
        hold_id: String,
        settlement_id: String,
        total: Decimal,
    },
    Released {
        hold_id: String,
    },
    Refunded {
        account_id: String,
        settlement_id: String,
        refund_id: String,
        amount: Decimal,
    },
    /// A definite error: the workload is funded so that none is expected.
    Refused {
        operation: &'static str,
        status: String,
    },
}

#[derive(Clone)]
struct Clients {
    credit: CreditServiceClient<Authed>,
    account: AccountServiceClient<Authed>,
    progress: Arc<Progress>,
}

/// The workload while it runs.
pub struct Running {
    pub accounts: Vec<String>,
    pub progress: Arc<Progress>,
    opening: Vec<Answer>,
    tasks: Vec<JoinHandle<Vec<Answer>>>,
    clients: Clients,
}

/// Every answer of a finished workload, and the balances read after it.
pub struct Outcome {
    /// In the order each client got them; the opening grants first.
    pub answers: Vec<Answer>,
    pub balances: Vec<(String, GetBalanceResponse)>,
}

impl Workload {
    /// Opens the accounts (each funded with `OPENING_GRANT`), then starts the clients.
    pub async fn start(&self, address: SocketAddr, api_key: &str) -> Running {
        let channel = Endpoint::from_shared(format!("http://{address}"))
            .unwrap()
            .connect_timeout(Duration::from_secs(2))
            .timeout(CALL_LIMIT)
            .connect_lazy();
        let bearer = BearerKey(Some(format!("Bearer {api_key}").parse().unwrap()));
        let clients = Clients {
            credit: CreditServiceClient::with_interceptor(channel.clone(), bearer.clone()),
            account: AccountServiceClient::with_interceptor(channel, bearer),
            progress: Arc::new(Progress::default()),
        };
        let mut accounts = Vec::with_capacity(self.accounts);
        let mut opening = Vec::with_capacity(self.accounts);
        for _ in 0..self.accounts {
            let account_id = clients.open_account().await;
            opening.push(clients.grant(&account_id, OPENING_GRANT).await);
            accounts.push(account_id);
        }
        let tasks = (0..self.tasks)
            .map(|task| {
                let clients = clients.clone();
                let account_id = accounts[task % accounts.len()].clone();
                let runs = self.runs_per_task;
                tokio::spawn(async move { clients.run_task(&account_id, task, runs).await })
            })
            .collect();
        Running {
            accounts,
            progress: clients.progress.clone(),
            opening,
            tasks,
            clients,
        }
    }
}

impl Running {
    /// Whether every client has had all its answers.
    pub fn is_finished(&self) -> bool {
        self.tasks.iter().all(JoinHandle::is_finished)
    }

    /// Waits for every client, then reads the balances.
    pub async fn finish(self) -> Outcome {
        let mut answers = self.opening;
        for task in self.tasks {
            answers.extend(task.await.expect("a client failed"));
        }
        let mut balances = Vec::with_capacity(self.accounts.len());
        for account_id in self.accounts {
            let request = GetBalanceRequest {
                account_id: account_id.clone(),
                expiring_within_days: 0,
            };
            let balance = answered(&self.clients.progress, "GetBalance", || {
                let mut client = self.clients.account.clone();
                let request = request.clone();
                async move { client.get_balance(request).await }
            })
            .await
            .unwrap();
            balances.push((account_id, balance));
        }
        Outcome { answers, balances }
    }
}

impl Clients {
    async fn run_task(&self, account_id: &str, task: usize, runs: usize) -> Vec<Answer> {
        let mut answers = Vec::new();
        for run in 0..runs {
            if run % 3 == 0 {
                answers.push(self.grant(account_id, TOP_UP).await);
            }
            let authorized = self.authorize(account_id).await;
            let hold_id = match &authorized {
                Answer::Authorized { hold_id, .. } => Some(hold_id.clone()),
                _ => None,
            };
            answers.push(authorized);
            let Some(hold_id) = hold_id else { continue };
            // A fixed mix, so that every kind of operation is in flight when the fault hits.
            let kind = (task + run) % 4;
            if kind == 3 {
                answers.push(self.release(&hold_id).await);
                continue;
            }
            let settled = self.settle(&hold_id).await;
            let settlement_id = match &settled {
                Answer::Settled { settlement_id, .. } => Some(settlement_id.clone()),
                _ => None,
            };
            answers.push(settled);
            if let (0, Some(settlement_id)) = (kind, settlement_id) {
                answers.push(self.refund(&settlement_id).await);
            }
        }
        answers
    }

    async fn open_account(&self) -> String {
        let request = CreateAccountRequest {
            idempotency_key: key(),
            external_id: key(),
            kind: AccountKind::Organization as i32,
            ..CreateAccountRequest::default()
        };
        let created = answered(&self.progress, "CreateAccount", || {
            let mut client = self.account.clone();
            let request = request.clone();
            async move { client.create_account(request).await }
        })
        .await
        .unwrap();
        created.account.unwrap().account_id
    }

    async fn grant(&self, account_id: &str, amount: &str) -> Answer {
        let request = GrantRequest {
            account_id: account_id.to_owned(),
            idempotency_key: key(),
            source: GrantSource::Purchase as i32,
            amount: amount.to_owned(),
            ..GrantRequest::default()
        };
        let result = answered(&self.progress, "Grant", || {
            let mut client = self.account.clone();
            let request = request.clone();
            async move { client.grant(request).await }
        })
        .await;
        match result {
            Ok(response) => {
                let grant = response.grant.unwrap();
                Answer::Granted {
                    account_id: account_id.to_owned(),
                    grant_id: grant.grant_id,
                    amount: decimal(&grant.amount),
                }
            }
            Err(status) => refused("Grant", &status),
        }
    }

    async fn authorize(&self, account_id: &str) -> Answer {
        let request = AuthorizeRequest {
            account_id: account_id.to_owned(),
            idempotency_key: key(),
            price: Some(authorize_request::Price::Amount(HOLD.to_owned())),
            ..AuthorizeRequest::default()
        };
        let result = answered(&self.progress, "Authorize", || {
            let mut client = self.credit.clone();
            let request = request.clone();
            async move { client.authorize(request).await }
        })
        .await;
        match result {
            Ok(response) => {
                let hold = response.hold.unwrap();
                Answer::Authorized {
                    hold_id: hold.hold_id,
                    amount: decimal(&hold.amount),
                }
            }
            Err(status) => refused("Authorize", &status),
        }
    }

    async fn settle(&self, hold_id: &str) -> Answer {
        let request = SettleRequest {
            hold_id: hold_id.to_owned(),
            idempotency_key: key(),
            charge: Some(settle_request::Charge::Amount(CHARGE.to_owned())),
            partial: false,
            ..Default::default()
        };
        let result = answered(&self.progress, "Settle", || {
            let mut client = self.credit.clone();
            let request = request.clone();
            async move { client.settle(request).await }
        })
        .await;
        match result {
            Ok(response) => {
                let settlement = response.settlement.unwrap();
                Answer::Settled {
                    account_id: settlement.account_id,
                    hold_id: settlement.hold_id,
                    settlement_id: settlement.settlement_id,
                    total: decimal(&settlement.total),
                }
            }
            Err(status) => refused("Settle", &status),
        }
    }

    async fn release(&self, hold_id: &str) -> Answer {
        let request = ReleaseRequest {
            hold_id: hold_id.to_owned(),
            idempotency_key: key(),
            reason: "run failed".to_owned(),
            ..Default::default()
        };
        let result = answered(&self.progress, "Release", || {
            let mut client = self.credit.clone();
            let request = request.clone();
            async move { client.release(request).await }
        })
        .await;
        match result {
            Ok(response) => Answer::Released {
                hold_id: response.hold.unwrap().hold_id,
            },
            Err(status) => refused("Release", &status),
        }
    }

    async fn refund(&self, settlement_id: &str) -> Answer {
        let request = RefundRequest {
            settlement_id: settlement_id.to_owned(),
            idempotency_key: key(),
            reason: "support".to_owned(),
            amount: REFUND.to_owned(),
            ..Default::default()
        };
        let result = answered(&self.progress, "Refund", || {
            let mut client = self.credit.clone();
            let request = request.clone();
            async move { client.refund(request).await }
        })
        .await;
        match result {
            Ok(response) => {
                let refund = response.refund.unwrap();
                Answer::Refunded {
                    account_id: refund.account_id,
                    settlement_id: refund.settlement_id,
                    refund_id: refund.refund_id,
                    amount: decimal(&refund.amount),
                }
            }
            Err(status) => refused("Refund", &status),
        }
    }
}

fn refused(operation: &'static str, status: &Status) -> Answer {
    Answer::Refused {
        operation,
        status: format!(
            "{:?} {:?}: {}",
            status.code(),
            reason(status),
            status.message()
        ),
    }
}

/// A wire amount as a number.
pub fn decimal(amount: &str) -> Decimal {
    amount.parse().unwrap()
}
