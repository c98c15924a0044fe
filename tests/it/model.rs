//! Model-based test of the money path: random sequences of account, grant, hold, settle,
//! release, refund, clock and idempotency operations run against the server and against an
//! in-memory reference of docs/MONEY.md, compared after every step; proptest shrinks a failure
//! to a minimal sequence.
//!
//! `CREDITGATE_MODEL_OPS` sets the operations per run (default 10,000); `CREDITGATE_MODEL_SEED`
//! fixes the random seed (a number) to repeat a run.

mod check;
mod driver;
mod ops;
mod reference;
mod wire;

use std::sync::Mutex;

use proptest::test_runner::{Config, RngAlgorithm, TestCaseError, TestRng, TestRunner};

use crate::helpers::TestApp;
use driver::Case;
use ops::Op;

/// Most operations in one case (a fresh database each); cases average half of it.
const MAX_OPS_PER_CASE: usize = 500;
/// Operations per run unless `CREDITGATE_MODEL_OPS` says otherwise.
const DEFAULT_OPS: usize = 10_000;
/// Cases run side by side: one case waits on round trips most of the time.
const WORKERS: usize = 3;
/// Shrinking steps before the smallest failure found so far is reported.
const MAX_SHRINK_ITERS: u32 = 2_000;

fn env_number(name: &str) -> Option<u64> {
    std::env::var(name).ok().map(|value| {
        value
            .parse()
            .unwrap_or_else(|_| panic!("{name} must be a whole number, not {value:?}"))
    })
}

/// What all cases did, for the summary line.
#[derive(Default)]
struct Totals {
    executed: usize,
}

/// Runs one case on a fresh server; the error names the mismatch and the steps that led to it.
async fn run_case(ops: &[Op], totals: &Mutex<Totals>) -> Result<(), String> {
    let app = TestApp::spawn().await;
    let mut case = Case::new(&app);
    let mut outcome = Ok(());
    for op in ops {
        outcome = case.step(op).await;
        if outcome.is_err() {
            break;
        }
    }
    if outcome.is_ok() {
        outcome = case.check_all().await;
    }
    if outcome.is_ok() {
        app.assert_books_balance().await;
    }
    let mut totals = totals.lock().unwrap();
    totals.executed += case.executed;
    let trace = case.trace.join("\n  ");
    outcome.map_err(|error| format!("{error}\nafter:\n  {trace}"))
}

#[test]
fn the_server_agrees_with_the_reference_model_of_the_money_path() {
    let total_ops = env_number("CREDITGATE_MODEL_OPS").map_or(DEFAULT_OPS, |ops| ops as usize);
    let cases = total_ops.div_ceil(MAX_OPS_PER_CASE / 2).max(1);
    let seed = env_number("CREDITGATE_MODEL_SEED").unwrap_or_else(clock_seed);
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
        .unwrap();
    let totals = Mutex::new(Totals::default());
    let started = std::time::Instant::now();
    let failures: Vec<String> = std::thread::scope(|scope| {
        let workers: Vec<_> = (0..WORKERS)
            .map(|worker| {
                let (runtime, totals) = (&runtime, &totals);
                scope.spawn(move || {
                    let config = Config {
                        cases: u32::try_from(cases.div_ceil(WORKERS)).unwrap(),
                        failure_persistence: None,
                        max_shrink_iters: MAX_SHRINK_ITERS,
                        ..Config::default()
                    };
                    let mut seed_bytes = [0u8; 32];
                    seed_bytes[..8].copy_from_slice(&seed.to_le_bytes());
                    seed_bytes[8] = u8::try_from(worker).unwrap();
                    let rng = TestRng::from_seed(RngAlgorithm::ChaCha, &seed_bytes);
                    TestRunner::new_with_rng(config, rng)
                        .run(&ops::case(MAX_OPS_PER_CASE), |sequence| {
                            runtime
                                .block_on(run_case(&sequence, totals))
                                .map_err(TestCaseError::fail)
                        })
                        .err()
                        .map(|failure| format!("seed {seed}, worker {worker}: {failure}"))
                })
            })
            .collect();
        workers
            .into_iter()
            .filter_map(|worker| worker.join().unwrap())
            .collect()
    });
    let totals = totals.into_inner().unwrap();
    eprintln!(
        "model: {} operations in {} cases, seed {seed}, {:.1} s",
        totals.executed,
        cases.div_ceil(WORKERS) * WORKERS,
        started.elapsed().as_secs_f64(),
    );
    assert!(failures.is_empty(), "{}", failures.join("\n\n"));
}

/// A seed from the clock: each run explores new sequences; the seed is printed to repeat one.
fn clock_seed() -> u64 {
    let nanos = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap_or_default()
        .subsec_nanos();
    u64::from(nanos) ^ (u64::from(std::process::id()) << 32)
}
