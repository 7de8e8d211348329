//! Process-wide logging: `tracing` events formatted to stderr.

use std::io::IsTerminal as _;

use tracing_subscriber::EnvFilter;

/// Installs the global subscriber. `RUST_LOG`, when set, wins over `log_level` (the
/// configured level), as it does for most Rust programs; returns a warning if it was set but
/// could not be parsed and `log_level` was used instead.
pub fn init(log_level: &str) -> anyhow::Result<Option<String>> {
    let mut warning = None;
    let filter = match std::env::var("RUST_LOG") {
        Ok(directives) if !directives.trim().is_empty() => match EnvFilter::try_new(&directives) {
            Ok(filter) => filter,
            Err(err) => {
                warning = Some(format!("ignoring RUST_LOG={directives:?}: {err}"));
                EnvFilter::try_new(log_level)?
            }
        },
        _ => EnvFilter::try_new(log_level)?,
    };
    tracing_subscriber::fmt()
        .with_env_filter(filter)
        .with_writer(std::io::stderr)
        // Colour codes would break tools (and tests) that read the log from a pipe.
        .with_ansi(std::io::stderr().is_terminal())
        .try_init()
        .map_err(|err| anyhow::anyhow!("cannot install the logger: {err}"))?;
    Ok(warning)
}
