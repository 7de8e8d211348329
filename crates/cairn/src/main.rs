//! `cairn`: a Kafka-compatible, Raft-replicated commit log in one binary.
//!
//! This file only parses the command line and turns an error into one line on stderr and a
//! non-zero exit; each subcommand lives in its own module.

mod cli;
mod config;
mod lock;
mod logging;
mod serve;

use std::process::ExitCode;

/// mimalloc instead of the system allocator: see docs/architecture.md (memory).
#[global_allocator]
static GLOBAL: mimalloc::MiMalloc = mimalloc::MiMalloc;

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
    /// Manage topics: create, list, describe, alter, add-partitions, delete.
    Topic(cli::TopicArgs),
    /// Manage consumer groups: list, describe, reset-offsets, delete.
    Group(cli::GroupArgs),
    /// Write stdin lines to a topic, one record per line.
    Produce(cli::ProduceArgs),
    /// Print a topic's records to stdout, one per line.
    Consume(cli::ConsumeArgs),
    /// Measure a broker: produce, consume or end-to-end throughput and latency percentiles.
    Bench(cli::BenchArgs),
    /// The cluster's state: brokers, controller, leaders, under-replicated partitions.
    Cluster(cli::ClusterArgs),
    /// A broker's configs: show and change them.
    Broker(cli::BrokerArgs),
    /// Print a shell completion script: `source <(cairn completions bash)`, or save it where
    /// your shell loads completions from.
    Completions {
        /// The shell
        #[arg(value_enum)]
        shell: clap_complete::Shell,
    },
}

/// The error and its causes on one line, "cannot x: because y", each said once: an error
/// whose message already quotes its cause (as "cannot listen on A: address in use" does)
/// does not get the cause repeated after it.
fn one_line(err: &anyhow::Error) -> String {
    let mut out = String::new();
    for cause in err.chain() {
        let text = cause.to_string();
        if out.contains(&text) {
            continue;
        }
        if !out.is_empty() {
            out.push_str(": ");
        }
        out.push_str(&text);
    }
    out
}

fn main() -> ExitCode {
    let cli = Cli::parse();
    let result = match cli.command {
        Command::Serve(args) => serve::run(&args),
        Command::Topic(args) => cli::topic(&args),
        Command::Group(args) => cli::group(&args),
        Command::Produce(args) => cli::produce(&args),
        Command::Consume(args) => cli::consume(&args),
        Command::Bench(args) => cli::bench(&args),
        Command::Cluster(args) => cli::cluster(&args),
        Command::Broker(args) => cli::broker(&args),
        Command::Completions { shell } => {
            use clap::CommandFactory as _;
            clap_complete::generate(shell, &mut Cli::command(), "cairn", &mut std::io::stdout());
            Ok(())
        }
    };
    match result {
        Ok(()) => ExitCode::SUCCESS,
        Err(err) => {
            eprintln!("error: {}", one_line(&err));
            ExitCode::FAILURE
        }
    }
}
