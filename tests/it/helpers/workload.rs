//! A concurrent money workload that keeps every answer the service gave, retrying a call that
//! got none with the same key and the same request until it gets one.

use std::future::Future;
use std::net::SocketAddr;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use creditgate::auth::ScopeSet;
use creditgate::proto::v1::account_service_client::AccountServiceClient;
use creditgate::proto::v1::credit_service_client::CreditServiceClient;
use creditgate::proto::v1::{
    AccountKind, AuthorizeRequest, CreateAccountRequest, GetBalanceRequest, GetBalanceResponse,
    GrantRequest, GrantSource, RefundRequest, ReleaseRequest, SettleRequest, authorize_request,
    settle_request,
};
use creditgate::service::tenants;
use rust_decimal::Decimal;
use tokio::sync::Notify;
use tokio::task::JoinHandle;
use tonic::transport::Endpoint;
use tonic::{Code, Status};

use super::money::key;
use super::{Authed, BearerKey, TestDatabase, reason};

/// Credits each account starts with.
pub const OPENING_GRANT: &str = "100";
/// A top-up some runs add; decimals so that any rounding would show.
pub const TOP_UP: &str = "7.5";
/// What each run authorizes.
pub const HOLD: &str = "2.25";
/// What a settled run is charged, within its hold.
pub const CHARGE: &str = "1.125";
/// What is refunded of some settlements.
pub const REFUND: &str = "0.375";

/// How long one operation may go unanswered before the test gives up on it (the service is
/// expected to answer every call once the fault is over).
const ANSWER_LIMIT: Duration = Duration::from_secs(40);
/// Bound on one call, so that a call to a server that died is abandoned and retried.
const CALL_LIMIT: Duration = Duration::from_secs(15);
const FIRST_BACKOFF: Duration = Duration::from_millis(5);
const MAX_BACKOFF: Duration = Duration::from_millis(100);

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

/// Counters the fault injector waits on.
#[derive(Default)]
pub struct Progress {
    answered: AtomicUsize,
    retried: AtomicUsize,
    /// INTERNAL answers: the caller cannot know whether the call took effect.
    internal: Mutex<Vec<String>>,
    changed: Notify,
}

impl Progress {
    fn answered(&self) {
        self.answered.fetch_add(1, Ordering::SeqCst);
        self.changed.notify_waiters();
    }

    /// Calls that got no answer and were sent again.
    pub fn retries(&self) -> usize {
        self.retried.load(Ordering::SeqCst)
    }

    /// The INTERNAL answers received (each call was then sent again until it got a definite
    /// answer, so that the books can still be checked).
    pub fn internal_errors(&self) -> Vec<String> {
        self.internal.lock().unwrap().clone()
    }

    /// Waits until `count` operations have been answered.
    pub async fn wait_for_answers(&self, count: usize) {
        let waited = tokio::time::timeout(ANSWER_LIMIT, async {
            loop {
                let changed = self.changed.notified();
                if self.answered.load(Ordering::SeqCst) >= count {
                    return;
                }
                changed.await;
            }
        })
        .await;
        assert!(waited.is_ok(), "{count} operations were never answered");
    }
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

/// A tenant in `database` and an all-scopes key of it.
pub async fn tenant_key(database: &TestDatabase) -> String {
    let client = database.pool.get().await.unwrap();
    let tenant = tenants::create_tenant(&client, "faults").await.unwrap();
    tenants::create_key(&client, tenant.tenant_id, ScopeSet::all())
        .await
        .unwrap()
        .secret
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

/// Sends `call` until the server answers (success or a definite error), with the same request
/// each time.
async fn answered<Response, Call, Reply>(
    progress: &Progress,
    operation: &'static str,
    mut call: Call,
) -> Result<Response, Status>
where
    Call: FnMut() -> Reply,
    Reply: Future<Output = Result<tonic::Response<Response>, Status>>,
{
    let deadline = Instant::now() + ANSWER_LIMIT;
    let mut backoff = FIRST_BACKOFF;
    loop {
        match call().await {
            Err(status) if no_answer(&status) || status.code() == Code::Internal => {
                if status.code() == Code::Internal {
                    // Outcome unknown, like a lost answer: a careful client retries with the
                    // same key (safe by the idempotency contract), and the test reports it.
                    let answer = format!("{operation}: {}", status.message());
                    progress.internal.lock().unwrap().push(answer);
                }
                progress.retried.fetch_add(1, Ordering::SeqCst);
                assert!(
                    Instant::now() < deadline,
                    "{operation}: no answer within {ANSWER_LIMIT:?}; last error: {status:?}"
                );
                // Spaces retries out while the server or its database comes back; not a wait
                // for any event.
                tokio::time::sleep(backoff).await;
                backoff = (backoff * 2).min(MAX_BACKOFF);
            }
            result => {
                progress.answered();
                return result.map(tonic::Response::into_inner);
            }
        }
    }
}

/// Whether `status` means the call may not have been answered: the service says retry, or
/// the client's own transport failed (such errors carry their cause; the server's never do).
fn no_answer(status: &Status) -> bool {
    matches!(
        status.code(),
        Code::Unavailable | Code::DeadlineExceeded | Code::Cancelled
    ) || std::error::Error::source(status).is_some()
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
