//! The `torii` command line: argument definitions and dispatch to the commands.
//!
//! Owns the user-facing surface of the binary (docs/operations.md §1: commands and options that
//! scripts rely on, kept working as written); every command's
//! help text is here. It does no work itself beyond parsing and calling into the engine.

use std::net::SocketAddr;
use std::path::PathBuf;

use clap::{Parser, Subcommand};

use crate::mirror::secured::{ChallengeMode, MirrorSecurity, Misbehave};

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
    /// Run a gateway on an embedded demo config in front of built-in secured backends, and
    /// print `curl` commands to try (V1, V2 with the info token, an unsecured backend, API
    /// keys, the token service, a throttled key, WebSocket).
    Demo {
        /// Address of the demo gateway.
        #[arg(long, default_value = "127.0.0.1:8080")]
        listen: SocketAddr,
    },
    /// Write a new PKCS#8 PEM signing key for `[[key_pairs]]` (never overwrites a file).
    Keygen {
        /// Key type: ECDSA P-256 (ES256 tokens) or P-384 (ES384 tokens).
        #[arg(long, value_enum)]
        kind: crate::auth::keygen::KeyKind,
        /// File to create (mode 0600); missing directories above it are created.
        #[arg(long)]
        out: PathBuf,
    },
    /// Run a backend that answers with a JSON description of each request it receives.
    Mirror {
        /// Address to listen on.
        #[arg(long, default_value = "127.0.0.1:9001")]
        listen: SocketAddr,
        /// Worker threads.
        #[arg(long, default_value_t = 1)]
        workers: usize,
        /// Answer Otoroshi's exchange protocol as a secured backend (V1 echo, V2 signed token).
        #[arg(long, value_enum)]
        challenge: Option<ChallengeMode>,
        /// HS512 secret of the exchange protocol (`${env.NAME}` and `${file:/path}` accepted);
        /// also verifies `Otoroshi-Claim` unless --claim-secret is given.
        #[arg(long)]
        secret: Option<String>,
        /// HS512 secret to verify `Otoroshi-Claim` with, when it differs from --secret.
        #[arg(long)]
        claim_secret: Option<String>,
        /// Fail the exchange protocol on purpose (tests and demos).
        #[arg(long, value_enum, default_value = "none")]
        misbehave: Misbehave,
        /// Answer every request with a JSON body of exactly N bytes (at least 10) instead of
        /// the description of the request: benchmarks use it so that every route returns the
        /// same body.
        #[arg(long, value_name = "N")]
        body_bytes: Option<usize>,
    },
}

fn resolve_secret(raw: &str) -> Result<Vec<u8>, String> {
    torii_protocol::secret::resolve(raw, &crate::secure::keys::SystemSecrets)
        .map_err(|e| e.to_string())
}

fn mirror_security(
    challenge: Option<ChallengeMode>,
    secret: Option<String>,
    claim_secret: Option<String>,
    misbehave: Misbehave,
) -> Result<Option<MirrorSecurity>, String> {
    let secret = secret.as_deref().map(resolve_secret).transpose()?;
    let claim_secret = match claim_secret {
        Some(raw) => Some(resolve_secret(&raw)?),
        None => secret.clone(),
    };
    if challenge == Some(ChallengeMode::V2) && secret.is_none() {
        return Err("--challenge v2 needs --secret".to_owned());
    }
    if challenge.is_none() && claim_secret.is_none() {
        return Ok(None);
    }
    Ok(Some(MirrorSecurity {
        challenge,
        secret: secret.unwrap_or_default(),
        claim_secret,
        misbehave,
    }))
}

/// `torii check`: loads the file, then builds a snapshot (which reads key and certificate files)
/// without starting anything. Exit 0 with the summary on stdout and any warnings on stderr
/// (`warning: path: message`), or 1 with every error on stderr: those of the file and those of
/// the files it names (`snapshot::every_error`), under a `PATH: invalid configuration` line; a
/// file that cannot be read is one line (`cannot read PATH: No such file or directory`).
fn check(path: &std::path::Path) -> i32 {
    // Target names go to `[dns] servers` when the file sets them, as in `torii run`.
    let env = crate::upstream::dns::GatewayEnv::new();
    let built = match crate::config::load_file_checked(path, &env) {
        Ok(c) => {
            let locations = c.locations.clone();
            crate::snapshot::Snapshot::build(c, 1).map_err(|e| e.located(&locations))
        }
        Err(crate::config::Rejected::Unreadable(why)) => {
            eprintln!("{why}");
            return 1;
        }
        Err(rejected) => Err(crate::snapshot::every_error(rejected)),
    };
    match built {
        Ok(snap) => {
            println!("{}", snap.config.summary());
            for w in crate::config::warnings(&snap.config, crate::secure::unix_now()) {
                eprintln!("warning: {w}");
            }
            0
        }
        Err(errors) => {
            eprintln!("{}: invalid configuration", path.display());
            eprintln!("{errors}");
            1
        }
    }
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
        Command::Check { config } => check(&config),
        Command::Demo { listen } => match crate::demo::run(listen) {
            Ok(()) => 0,
            Err(e) => {
                eprintln!("torii demo: {e}");
                1
            }
        },
        Command::Keygen { kind, out } => match crate::auth::keygen::run(kind, &out) {
            Ok(line) => {
                println!("{line}");
                0
            }
            Err(e) => {
                eprintln!("torii keygen: {e}");
                1
            }
        },
        Command::Mirror {
            listen,
            workers,
            challenge,
            secret,
            claim_secret,
            misbehave,
            body_bytes,
        } => {
            if body_bytes.is_some_and(|n| n < crate::mirror::MIN_FIXED_BODY) {
                eprintln!(
                    "torii mirror: --body-bytes must be at least {} (the JSON {{\"pad\":\"\"}})",
                    crate::mirror::MIN_FIXED_BODY
                );
                return 2;
            }
            let security = match mirror_security(challenge, secret, claim_secret, misbehave) {
                Ok(s) => s,
                Err(e) => {
                    eprintln!("torii mirror: {e}");
                    return 2;
                }
            };
            match crate::mirror::run(crate::mirror::MirrorOptions {
                listen,
                workers: workers.max(1),
                security,
                fixed_body: body_bytes,
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
