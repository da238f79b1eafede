//! The `postern` binary: parse the command line, load the configuration,
//! start logging, run the command. Everything else lives in the library
//! (`src/lib.rs`), which black-box tests share.

use std::collections::BTreeMap;
use std::io::IsTerminal as _;
use std::process::ExitCode;

use clap::Parser as _;

use postern::cli::{Cli, Command};
use postern::commands::{self, CommandError};
use postern::config::{self, Config, ConfigError, LogFormat};
use postern::serve;

fn main() -> ExitCode {
    cap_malloc_arenas();
    let cli = Cli::parse();
    let (config, warnings) = match load_config(&cli) {
        Ok(loaded) => loaded,
        Err(e) => {
            eprintln!("postern: configuration error: {e:#}");
            return ExitCode::from(2);
        }
    };
    init_tracing(&config);
    for warning in &warnings {
        tracing::warn!("{warning}");
    }
    let runtime = match tokio::runtime::Runtime::new() {
        Ok(rt) => rt,
        Err(e) => {
            eprintln!("postern: cannot start the async runtime: {e}");
            return ExitCode::FAILURE;
        }
    };
    let result = runtime.block_on(async move {
        match cli.command {
            Command::Serve => serve::serve(config).await.map_err(|e| {
                // A file named by a setting (DKIM key, GeoIP database) is
                // opened at start-up: its mistakes are configuration errors.
                match e.downcast::<ConfigError>() {
                    Ok(e) => CommandError::Invalid(format!("configuration error: {e}")),
                    Err(e) => CommandError::Failed(e),
                }
            }),
            Command::Migrate => commands::migrate(&config).await,
            Command::App { command } => commands::app(command, &config).await,
            Command::Keys { command } => commands::keys(command, &config).await,
            Command::Mail { command } => commands::mail(command, &config).await,
            Command::Admin { command } => commands::admin(command, &config).await,
            Command::Backup { file } => postern::ops::backup(&file, &config).await,
            Command::MasterKey {
                command: postern::cli::MasterKeyCommand::Rotate { new_key_file },
            } => postern::ops::rotate_master_key(&new_key_file, &config).await,
        }
    });
    match result {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("postern: {e:#}");
            ExitCode::from(e.exit_code())
        }
    }
}

/// Loads the configuration from the process environment and working directory.
fn load_config(cli: &Cli) -> anyhow::Result<(Config, Vec<String>)> {
    let mut env = BTreeMap::new();
    for (name, value) in std::env::vars_os() {
        let Some(name) = name.to_str().filter(|n| n.starts_with("POSTERN_")) else {
            continue;
        };
        let value = value
            .into_string()
            .map_err(|_| anyhow::anyhow!("{name} is not valid UTF-8"))?;
        env.insert(name.to_owned(), value);
    }
    let working_dir = std::env::current_dir()?;
    Ok(config::load(&cli.overrides(), &env, &working_dir)?)
}

/// Logs go to stderr: stdout belongs to command output and the stdout mailer.
fn init_tracing(config: &Config) {
    // The filter was checked when the configuration was loaded.
    let filter = tracing_subscriber::EnvFilter::try_new(&config.log)
        .unwrap_or_else(|_| tracing_subscriber::EnvFilter::new("info"));
    let builder = tracing_subscriber::fmt()
        .with_env_filter(filter)
        .with_writer(std::io::stderr);
    match config.log_format {
        LogFormat::Text => builder.with_ansi(std::io::stderr().is_terminal()).init(),
        LogFormat::Json => builder.json().init(),
    }
}

/// glibc's malloc gives each thread that contends for memory an arena of
/// its own, up to eight per core, and memory freed in one arena is not
/// reused by another: under the benchmark the server held 31 MB of
/// anonymous memory, 22–27 MB with two to four arenas, at the same
/// throughput with four (docs/PERFORMANCE.md, round four). Two per core.
#[cfg(all(target_os = "linux", target_env = "gnu"))]
#[allow(unsafe_code)]
fn cap_malloc_arenas() {
    let cores = std::thread::available_parallelism().map_or(1, usize::from);
    let arenas = libc::c_int::try_from(cores * 2).unwrap_or(libc::c_int::MAX);
    // SAFETY: mallopt only sets an allocator parameter; it is called first
    // thing in `main`, before any other thread exists.
    unsafe {
        libc::mallopt(libc::M_ARENA_MAX, arenas);
    }
}

#[cfg(not(all(target_os = "linux", target_env = "gnu")))]
fn cap_malloc_arenas() {}
