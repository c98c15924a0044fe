//! Calls that may go unanswered (a server or database down, a connection cut): sent again with
//! the same key and the same request until a definite answer arrives, and counted.

use std::future::Future;
use std::sync::Mutex;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::{Duration, Instant};

use tokio::sync::Notify;
use tonic::{Code, Status};

/// How long one operation may go unanswered before the test gives up on it (the service is
/// expected to answer every call once the fault is over).
const ANSWER_LIMIT: Duration = Duration::from_secs(40);
const FIRST_BACKOFF: Duration = Duration::from_millis(5);
const MAX_BACKOFF: Duration = Duration::from_millis(100);

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

/// Sends `call` until the server answers (success or a definite error), with the same request
/// each time.
pub async fn answered<Response, Call, Reply>(
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
