//! The `intake` binary: parses the command line, loads the configuration and hands
//! over to `intake::app`.

use std::path::PathBuf;
use std::process::ExitCode;

use clap::{Parser, Subcommand};
use intake::config::{Config, Settings};

/// Exit code for a bad configuration (EX_USAGE).
const EXIT_BAD_CONFIG: u8 = 64;

#[derive(Parser)]
#[command(name = "intake", version, about = "Event-ingestion edge gateway")]
struct Cli {
    /// TOML configuration file (default: config/default.toml when present).
    #[arg(long, global = true)]
    config: Option<PathBuf>,
    #[command(subcommand)]
    command: Option<Command>,
}

#[derive(Subcommand)]
enum Command {
    /// Run the ingest and admin listeners (the default).
    Serve,
    /// Validate the configuration and print the effective settings.
    CheckConfig,
}

fn main() -> ExitCode {
    let cli = Cli::parse();
    let config = match Config::load(cli.config.as_deref(), std::env::vars()) {
        Ok(config) => config,
        Err(error) => {
            for line in &error.0 {
                eprintln!("intake: bad config: {line}");
            }
            return ExitCode::from(EXIT_BAD_CONFIG);
        }
    };
    match cli.command.unwrap_or(Command::Serve) {
        Command::CheckConfig => check_config(config),
        Command::Serve => serve(config),
    }
}

/// Prints the checked settings; `Settings` shows secrets and URL passwords redacted.
fn check_config(config: Settings) -> ExitCode {
    match toml::to_string_pretty(&config) {
        Ok(text) => {
            println!("{text}");
            ExitCode::SUCCESS
        }
        Err(error) => {
            eprintln!("intake: cannot print the config: {error}");
            ExitCode::FAILURE
        }
    }
}

fn serve(config: Settings) -> ExitCode {
    intake::telemetry::init_logging();
    let runtime = match tokio::runtime::Runtime::new() {
        Ok(runtime) => runtime,
        Err(error) => {
            eprintln!("intake: cannot start the runtime: {error}");
            return ExitCode::FAILURE;
        }
    };
    match runtime.block_on(intake::app::run(config)) {
        Ok(()) => ExitCode::SUCCESS,
        Err(error) => {
            tracing::error!("{error:#}");
            eprintln!("intake: {error:#}");
            ExitCode::FAILURE
        }
    }
}
