//! The `creditgate` binary: parse the command line, set up logging, run the command.

use std::process::ExitCode;

use clap::Parser as _;
use creditgate::cli::{Cli, LogFormat};

// glibc malloc was about a quarter of the server's CPU under load (many small, short-lived
// allocations across threads); mimalloc's thread-local heaps cut that.
#[global_allocator]
static ALLOCATOR: mimalloc::MiMalloc = mimalloc::MiMalloc;

fn main() -> ExitCode {
    let cli = Cli::parse();
    let runtime = match tokio::runtime::Runtime::new() {
        Ok(runtime) => runtime,
        Err(error) => {
            eprintln!("error: cannot start the async runtime: {error}");
            return ExitCode::FAILURE;
        }
    };
    // The OTLP exporters' channels live on the runtime.
    let telemetry = runtime.block_on(async {
        creditgate::telemetry::init(creditgate::telemetry::Options {
            json: cli.log_format == LogFormat::Json,
            prometheus: cli.serves_metrics(),
        })
    });
    let result = runtime.block_on(creditgate::cli::run(cli));
    // Before the runtime stops: the last exports still use it.
    telemetry.shutdown();
    match result {
        Ok(()) => ExitCode::SUCCESS,
        Err(error) => {
            eprintln!("error: {error:#}");
            ExitCode::FAILURE
        }
    }
}
