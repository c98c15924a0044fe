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

use std::sync::atomic::{AtomicUsize, Ordering};

use proptest::test_runner::{Config, RngAlgorithm, TestCaseError, TestRng, TestRunner};

use crate::helpers::TestApp;
use driver::Case;
use ops::Op;

/// Most operations in one case (a fresh database each); cases average half of it.
const MAX_OPS_PER_CASE: usize = 400;
/// Operations per run unless `CREDITGATE_MODEL_OPS` says otherwise.
const DEFAULT_OPS: usize = 10_000;
/// Shrinking steps before the smallest failure found so far is reported.
const MAX_SHRINK_ITERS: u32 = 2_000;

fn env_number(name: &str) -> Option<u64> {
    std::env::var(name).ok().map(|value| {
        value
            .parse()
            .unwrap_or_else(|_| panic!("{name} must be a whole number, not {value:?}"))
    })
}

/// Runs one case on a fresh server; the error names the mismatch and the steps that led to it.
async fn run_case(ops: &[Op], executed: &AtomicUsize) -> Result<(), String> {
    eprintln!("DEBUG spawn");
    let app = TestApp::spawn().await;
    eprintln!("DEBUG spawned");
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
    executed.fetch_add(case.executed, Ordering::Relaxed);
    let trace = case.trace.join("\n  ");
    outcome.map_err(|error| { let m = format!("{error}\nafter:\n  {trace}"); eprintln!("DEBUGFAIL {m}"); m })
}

#[test]
fn the_server_agrees_with_the_reference_model_of_the_money_path() {
    let total_ops = env_number("CREDITGATE_MODEL_OPS").map_or(DEFAULT_OPS, |ops| ops as usize);
    let cases = total_ops.div_ceil(MAX_OPS_PER_CASE / 2).max(1);
    let config = Config {
        cases: u32::try_from(cases).unwrap(),
        failure_persistence: None,
        max_shrink_iters: MAX_SHRINK_ITERS,
        ..Config::default()
    };
    let seed = env_number("CREDITGATE_MODEL_SEED").unwrap_or_else(rand_seed);
    let mut seed_bytes = [0u8; 32];
    seed_bytes[..8].copy_from_slice(&seed.to_le_bytes());
    let rng = TestRng::from_seed(RngAlgorithm::ChaCha, &seed_bytes);
    let mut runner = TestRunner::new_with_rng(config, rng);
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
        .unwrap();
    let executed = AtomicUsize::new(0);
    let started = std::time::Instant::now();
    let result = runner.run(&ops::case(MAX_OPS_PER_CASE), |sequence| {
        runtime
            .block_on(run_case(&sequence, &executed))
            .map_err(TestCaseError::fail)
    });
    eprintln!(
        "model: {} operations in {cases} cases, seed {seed}, {:.1} s",
        executed.load(Ordering::Relaxed),
        started.elapsed().as_secs_f64()
    );
    if let Err(failure) = result {
        panic!("seed {seed}: {failure}");
    }
}

/// A seed from the clock: each run explores new sequences; the seed is printed to repeat one.
fn rand_seed() -> u64 {
    let nanos = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap_or_default()
        .subsec_nanos();
    u64::from(nanos) ^ u64::from(std::process::id()) << 32
}
