//! The `torii` command line: argument definitions and dispatch to the commands.
//!
//! Owns the user-facing surface of the binary (config-contract.md "Commands"); every command's
//! help text is here. It does no work itself beyond parsing and calling into the engine.

use std::net::SocketAddr;
use std::path::PathBuf;

use clap::{Parser, Subcommand};

/// Torii: a thread-per-core API gateway speaking Otoroshi's exchange protocol.
#[derive(Debug, Parser)]
#[command(name = "torii", version, about, long_about = None)]
pub struct Cli {
    /// Log filter (e.g. `info`, `debug`, `torii_engine=trace`); overrides TORII_LOG.
    #[arg(long, global = true)]
    pub log: Option<String>,
    /// What to do.
    #[command(subcommand)]
    pub command: Command,
}

/// The commands.
#[derive(Debug, Subcommand)]
pub enum Command {
    /// Run the gateway. SIGHUP reloads the config file; SIGTERM/SIGINT drain and exit 0.
    Run {
        /// The TOML configuration file.
        #[arg(long, short)]
        config: PathBuf,
    },
    /// Validate a configuration without starting: exit 0 and a one-line summary, or exit 1 and
    /// every error with its key path.
    Check {
        /// The TOML configuration file.
        #[arg(long, short)]
        config: PathBuf,
    },
    /// Run a backend that answers with a JSON description of each request it receives.
    Mirror {
        /// Address to listen on.
        #[arg(long, default_value = "127.0.0.1:9001")]
        listen: SocketAddr,
        /// Worker threads.
        #[arg(long, default_value_t = 1)]
        workers: usize,
    },
}

/// Parses the command line, sets up logging and runs the command. Returns the exit code.
pub fn main() -> i32 {
    let cli = Cli::parse();
    crate::logging::init(cli.log.as_deref());
    match cli.command {
        Command::Run { config } => match crate::control::run(config) {
            Ok(()) => 0,
            Err(e) => {
                eprintln!("torii: {e}");
                1
            }
        },
        Command::Check { config } => match crate::config::load_file(&config)
            .and_then(|c| crate::snapshot::Snapshot::build(c, 1))
        {
            Ok(snap) => {
                println!("{}", snap.config.summary());
                0
            }
            Err(errors) => {
                eprintln!("{}: invalid configuration", config.display());
                eprintln!("{errors}");
                1
            }
        },
        Command::Mirror { listen, workers } => {
            match crate::mirror::run(crate::mirror::MirrorOptions {
                listen,
                workers: workers.max(1),
            }) {
                Ok(()) => 0,
                Err(e) => {
                    eprintln!("torii mirror: {e}");
                    1
                }
            }
        }
    }
}
