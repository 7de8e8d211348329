//! `cairn`: a Kafka-compatible, Raft-replicated commit log in one binary.
//!
//! This file only parses the command line and turns an error into one line on stderr and a
//! non-zero exit; each subcommand lives in its own module.

mod config;
mod lock;
mod logging;
mod serve;

use std::process::ExitCode;

use clap::{Parser, Subcommand};

#[derive(Debug, Parser)]
#[command(name = "cairn", version, about, propagate_version = true)]
struct Cli {
    #[command(subcommand)]
    command: Command,
}

#[derive(Debug, Subcommand)]
enum Command {
    /// Run a broker node until SIGINT or SIGTERM.
    Serve(config::ConfigArgs),
}

fn main() -> ExitCode {
    let cli = Cli::parse();
    let result = match cli.command {
        Command::Serve(args) => serve::run(&args),
    };
    match result {
        Ok(()) => ExitCode::SUCCESS,
        Err(err) => {
            // `{:#}` prints the context chain on one line: "cannot x: because y".
            eprintln!("error: {err:#}");
            ExitCode::FAILURE
        }
    }
}
