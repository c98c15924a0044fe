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
    creditgate::telemetry::init(cli.log_format == LogFormat::Json);
    let runtime = match tokio::runtime::Runtime::new() {
        Ok(runtime) => runtime,
        Err(error) => {
            eprintln!("error: cannot start the async runtime: {error}");
            return ExitCode::FAILURE;
        }
    };
    match runtime.block_on(creditgate::cli::run(cli)) {
        Ok(()) => ExitCode::SUCCESS,
        Err(error) => {
            eprintln!("error: {error:#}");
            ExitCode::FAILURE
        }
    }
}
