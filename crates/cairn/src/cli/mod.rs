//! The client commands: `cairn topic ...`, `cairn group ...`, `cairn produce`, `cairn consume`,
//! `cairn bench ...`.
//!
//! A small Kafka client on `cairn-protocol`'s codecs and a tokio `TcpStream` (no external
//! Kafka client library), so it speaks to Cairn and to Apache Kafka alike. Bottom up:
//!
//! ```text
//! topic / group / produce / consume   the subcommands (one file each; group speaks the
//!        │            offsets         group APIs to the coordinator over its own connection)
//!        │                            offsets: ListOffsets for a set of partitions
//!        │  bench                     load generator: produce/consume/e2e over many
//!        │                            connections at once (bench/ holds its parts)
//!        ▼
//!     cluster        bootstrap connection, Metadata, connections to partition leaders
//!        ▼
//!      conn          one TCP connection: frames (bounded), correlation ids,
//!                    ApiVersions handshake, per-API version choice
//! pure helpers:      partitioner (Kafka's murmur2), timestamp (RFC 3339),
//!                    error_code (Kafka error names)
//! ```
//!
//! Every failure ends the command with one line on stderr and exit code 1 (see `main.rs`);
//! data goes to stdout, summaries to stderr.

mod bench;
mod broker;
mod cluster;
mod conn;
mod consume;
mod error_code;
mod group;
mod member;
mod offsets;
mod partitioner;
mod produce;
mod record_format;
mod status;
mod timestamp;
mod topic;

use std::future::Future;
use std::time::Duration;

use anyhow::Context as _;

pub use bench::BenchArgs;

/// Where the cluster is and how long to wait for it; every client command takes these.
#[derive(Debug, Clone, clap::Args)]
pub struct ClientArgs {
    /// Broker to bootstrap from; several may be given, separated by commas
    #[arg(
        short = 'b',
        long,
        visible_alias = "bootstrap",
        env = "CAIRN_BOOTSTRAP",
        default_value = "127.0.0.1:9092",
        value_name = "HOST:PORT",
        global = true
    )]
    pub bootstrap_server: String,
    /// Time limit for connecting and for each request, in milliseconds
    #[arg(
        long,
        default_value_t = 30_000,
        value_name = "MS",
        value_parser = clap::value_parser!(u32).range(1..=i32::MAX as i64),
        global = true
    )]
    pub timeout_ms: u32,
}

impl ClientArgs {
    fn timeout(&self) -> Duration {
        Duration::from_millis(u64::from(self.timeout_ms))
    }
}

/// `cairn topic`: topic administration.
#[derive(Debug, clap::Args)]
pub struct TopicArgs {
    #[command(flatten)]
    client: ClientArgs,
    #[command(subcommand)]
    command: TopicCommand,
}

#[derive(Debug, clap::Subcommand)]
enum TopicCommand {
    /// Create a topic (CreateTopics).
    Create {
        /// Topic name
        name: String,
        /// Number of partitions
        #[arg(long, default_value_t = 1, value_parser = clap::value_parser!(i32).range(1..))]
        partitions: i32,
        /// Replicas per partition; -1 (the default) leaves it to the broker (every node
        /// of a cluster, 1 on a single node)
        #[arg(long, default_value_t = -1, allow_negative_numbers = true,
              value_parser = clap::value_parser!(i16).range(-1..))]
        replication_factor: i16,
        /// A topic config, e.g. retention.ms=86400000 (repeatable)
        #[arg(long = "config", value_name = "KEY=VALUE", value_parser = parse_config)]
        configs: Vec<(String, String)>,
        /// Succeed if the topic already exists
        #[arg(long)]
        if_not_exists: bool,
    },
    /// List topic names, one per line, sorted (Metadata).
    List {
        /// Include internal topics
        #[arg(long)]
        all: bool,
        /// table: one name per line; json: an array of {name, partitions, internal}
        #[arg(long, value_enum, default_value_t = Output::Table)]
        output: Output,
    },
    /// Show partitions (leader, leader epoch, log start, high watermark) and non-default
    /// configs (Metadata, ListOffsets, DescribeConfigs).
    Describe {
        /// Topic names
        #[arg(required = true, num_args = 1..)]
        names: Vec<String>,
        /// table: Kafka's kafka-topics.sh layout; json: one array of objects
        #[arg(long, value_enum, default_value_t = Output::Table)]
        output: Output,
    },
    /// Set or remove topic configs (IncrementalAlterConfigs).
    Alter {
        /// Topic name
        name: String,
        /// Set a config, e.g. retention.ms=86400000 (repeatable)
        #[arg(long = "config", value_name = "KEY=VALUE", value_parser = parse_config,
              required_unless_present = "delete_configs")]
        configs: Vec<(String, String)>,
        /// Remove a config override, reverting to the default (repeatable)
        #[arg(long = "delete-config", value_name = "KEY")]
        delete_configs: Vec<String>,
    },
    /// Raise a topic's partition count (CreatePartitions).
    AddPartitions {
        /// Topic name
        name: String,
        /// The new total number of partitions
        #[arg(long, value_parser = clap::value_parser!(i32).range(1..))]
        partitions: i32,
    },
    /// Delete a topic (DeleteTopics).
    Delete {
        /// Topic names (each deleted in turn; the command fails if any could not be)
        #[arg(required = true, num_args = 1..)]
        names: Vec<String>,
        /// Succeed if a topic does not exist
        #[arg(long)]
        if_exists: bool,
    },
}

/// `cairn broker`: a broker's configs.
#[derive(Debug, clap::Args)]
pub struct BrokerArgs {
    #[command(flatten)]
    client: ClientArgs,
    #[command(subcommand)]
    command: BrokerCommand,
}

#[derive(Debug, clap::Subcommand)]
enum BrokerCommand {
    /// Show a broker's configs: those set (statically or dynamically), or --all with their
    /// sources (DescribeConfigs).
    Configs {
        /// Broker id [default: the bootstrap broker]
        #[arg(long, value_name = "ID")]
        broker: Option<i32>,
        /// Every config, defaults included
        #[arg(long)]
        all: bool,
        /// table or json
        #[arg(long, value_enum, default_value_t = Output::Table)]
        output: Output,
    },
    /// Set or remove dynamic broker configs (IncrementalAlterConfigs); they survive
    /// restarts.
    AlterConfig {
        /// Broker id [default: the bootstrap broker]
        #[arg(long, value_name = "ID")]
        broker: Option<i32>,
        /// Set a config, e.g. log.retention.ms=86400000 (repeatable)
        #[arg(long = "config", value_name = "KEY=VALUE", value_parser = parse_config)]
        configs: Vec<(String, String)>,
        /// Remove a dynamic config, reverting to the static or default value (repeatable)
        #[arg(long = "delete-config", value_name = "KEY")]
        delete_configs: Vec<String>,
    },
}

/// Runs `cairn broker ...`.
pub fn broker(args: &BrokerArgs) -> anyhow::Result<()> {
    run(broker::run(&args.client, &args.command))
}

/// `cairn cluster`: the cluster's state.
#[derive(Debug, clap::Args)]
pub struct ClusterArgs {
    #[command(flatten)]
    client: ClientArgs,
    #[command(subcommand)]
    command: ClusterCommand,
}

#[derive(Debug, clap::Subcommand)]
enum ClusterCommand {
    /// Brokers, the controller, partition leaders per broker, and the partitions that are
    /// under-replicated or offline (from one Metadata answer).
    #[command(visible_alias = "status")]
    Info,
    /// Healthy or not, and why: a controller, every replica's node live, no partition
    /// offline or under-replicated. Exits non-zero when unhealthy.
    Health,
}

/// Runs `cairn cluster ...`.
pub fn cluster(args: &ClusterArgs) -> anyhow::Result<()> {
    match args.command {
        ClusterCommand::Info => run(status::info(&args.client)),
        ClusterCommand::Health => run(status::health(&args.client)),
    }
}

/// `cairn group`: consumer group administration.
#[derive(Debug, clap::Args)]
pub struct GroupArgs {
    #[command(flatten)]
    client: ClientArgs,
    #[command(subcommand)]
    command: GroupCommand,
}

#[derive(Debug, clap::Subcommand)]
enum GroupCommand {
    /// List groups: id, state, protocol type (ListGroups, asked of every broker).
    List {
        /// Only groups in this state: Empty, Stable, PreparingRebalance,
        /// CompletingRebalance or Dead, any case (repeatable; the broker must speak
        /// ListGroups v4)
        #[arg(long = "state", value_name = "STATE", value_parser = group::parse_state)]
        states: Vec<String>,
        /// table: group, state, protocol type; json: an array of {group, state,
        /// protocol_type}
        #[arg(long, value_enum, default_value_t = Output::Table)]
        output: Output,
    },
    /// Show a group's state and members (with their assigned partitions), and for each
    /// partition it has committed or been assigned: committed offset, log end offset, lag
    /// and owner (DescribeGroups, OffsetFetch, ListOffsets).
    Describe {
        /// Group id
        group: String,
        /// table: the group, its members, its partitions; json: one object with members
        /// (assignments) and partitions (committed offset, log end offset, lag)
        #[arg(long, value_enum, default_value_t = Output::Table)]
        output: Output,
    },
    /// Compute new committed offsets for one topic and show them; commit them with
    /// --execute (OffsetCommit). The group must be inactive (Empty, or Dead: unknown).
    ResetOffsets {
        /// Group id
        group: String,
        /// Topic whose offsets to reset
        #[arg(long)]
        topic: String,
        /// Reset only this partition (repeatable) [default: every partition]
        #[arg(long = "partition", value_name = "P",
              value_parser = clap::value_parser!(i32).range(0..))]
        partitions: Vec<i32>,
        #[command(flatten)]
        to: ResetTo,
        /// Commit the new offsets; without it nothing changes (a dry run)
        #[arg(long)]
        execute: bool,
    },
    /// Delete a group and its committed offsets (DeleteGroups); it must have no members.
    Delete {
        /// Group id
        group: String,
    },
}

/// Where `group reset-offsets` moves each partition: exactly one of these. Offsets are
/// clamped to the partition's [log start, high watermark].
#[derive(Debug, Clone, clap::Args)]
#[group(required = true, multiple = false)]
struct ResetTo {
    /// The log start offset
    #[arg(long)]
    to_earliest: bool,
    /// The high watermark (nothing left to read)
    #[arg(long)]
    to_latest: bool,
    /// This offset
    #[arg(long, value_name = "N", value_parser = clap::value_parser!(i64).range(0..))]
    to_offset: Option<i64>,
    /// The first record whose timestamp is at or after T (the high watermark if none):
    /// milliseconds since the Unix epoch, or RFC 3339 such as 2024-05-01T12:00:00Z
    #[arg(long, value_name = "T", value_parser = timestamp::parse_timestamp)]
    to_datetime: Option<i64>,
    /// The committed offset plus N (N may be negative)
    #[arg(long, value_name = "N", allow_negative_numbers = true)]
    shift_by: Option<i64>,
}

/// `cairn produce`: stdin lines to records.
#[derive(Debug, clap::Args)]
pub struct ProduceArgs {
    #[command(flatten)]
    client: ClientArgs,
    /// Topic to write to
    topic: String,
    /// Split each line at the first SEP into key and value (a line without SEP gets a
    /// null key); without this flag every line is a value with a null key
    #[arg(long, value_name = "SEP", value_parser = parse_separator)]
    key_sep: Option<String>,
    /// Write every record to this partition [default: by key (Kafka's murmur2
    /// partitioner), round-robin for null keys]
    #[arg(short = 'p', long, value_name = "P", value_parser = clap::value_parser!(i32).range(0..))]
    partition: Option<i32>,
    /// Acknowledgements to wait for: 0 (none; errors go unseen), 1 (leader), all
    #[arg(long, default_value = "all", value_parser = parse_acks)]
    acks: i16,
    /// Compression codec for record batches
    #[arg(long, value_enum, default_value_t = Codec::None)]
    compression: Codec,
    /// How long a batch may wait for more lines before it is sent, in milliseconds
    #[arg(long, default_value_t = 5, value_name = "MS")]
    linger_ms: u64,
    /// Largest record batch per partition, in bytes (before compression)
    #[arg(long, default_value_t = 16_384, value_name = "BYTES",
          value_parser = clap::value_parser!(u32).range(1..=produce::MAX_BATCH_BYTES as i64))]
    batch_size: u32,
    /// Longest accepted input line, in bytes (newline excluded); up to 64 MiB, for topics
    /// whose max.message.bytes allows such records
    #[arg(long, default_value_t = 1_048_576, value_name = "BYTES",
          value_parser = clap::value_parser!(u32).range(1..=produce::MAX_BATCH_BYTES as i64))]
    max_line_bytes: u32,
    /// Add header KEY=VALUE to every record (repeatable)
    #[arg(short = 'H', long = "header", value_name = "KEY=VALUE", value_parser = parse_config)]
    headers: Vec<(String, String)>,
    /// Send an empty value as null (a tombstone, which compaction deletes the key by) and
    /// an empty key as null, as kcat's -Z
    #[arg(short = 'Z', long)]
    null_empty: bool,
}

/// How `list` and `describe` print: for people, or for scripts.
#[derive(Debug, Clone, Copy, PartialEq, Eq, clap::ValueEnum)]
enum Output {
    Table,
    Json,
}

/// Compression codecs of Kafka record batches.
#[derive(Debug, Clone, Copy, PartialEq, Eq, clap::ValueEnum)]
enum Codec {
    None,
    Gzip,
    Snappy,
    Lz4,
    Zstd,
}

/// `cairn consume`: records to stdout lines.
///
/// Stop rule: with `--count N`, after N records (waiting for new ones as long as it takes);
/// with `--follow`, never (Ctrl-C ends it); otherwise once every chosen partition has been
/// read up to its high watermark as it was when the command started (like `kcat -e`), so
/// records produced later are not shown.
#[derive(Debug, clap::Args)]
pub struct ConsumeArgs {
    #[command(flatten)]
    client: ClientArgs,
    /// Topic to read
    topic: String,
    #[command(flatten)]
    start: StartArgs,
    /// Read only this partition [default: all]
    #[arg(short = 'p', long, value_name = "P", value_parser = clap::value_parser!(i32).range(0..))]
    partition: Option<i32>,
    /// Consume as a member of consumer group G: read the partitions the group assigns
    /// (range assignor), from the group's committed offsets (where it has none, from
    /// --offset), committing after each fetch that printed records and when it ends
    #[arg(short = 'g', long, value_name = "G", conflicts_with = "partition")]
    group: Option<String>,
    /// Stop after N records; without it (and without --follow), stop at the high watermarks
    /// as of start
    #[arg(short = 'c', long, value_name = "N", value_parser = clap::value_parser!(u64).range(1..))]
    count: Option<u64>,
    /// Keep waiting for new records after reaching the end, until Ctrl-C (or --count)
    #[arg(short = 'f', long)]
    follow: bool,
    /// Print each record as KEY SEP VALUE (a null key prints as nothing)
    #[arg(long, conflicts_with_all = ["format", "json"])]
    print_key: bool,
    /// Separator for --print-key [default: a tab]; implies --print-key
    #[arg(long, value_name = "SEP", value_parser = parse_separator,
          conflicts_with_all = ["format", "json"])]
    key_sep: Option<String>,
    /// Print each record by this template (kcat's -f, rpk's --format): %k key, %v or %s
    /// value, %K %V length of key and value (-1: null), %t topic, %p partition, %o offset,
    /// %T or %d timestamp (ms), %h headers (k=v,k=v), %% a percent sign; \n \t escapes. No
    /// newline is added: end the template with \n
    #[arg(long, value_name = "FMT", value_parser = record_format::parse_format,
          conflicts_with = "json")]
    format: Option<record_format::Printer>,
    /// Print each record as one JSON object per line: topic, partition, offset, timestamp,
    /// key, value, headers; a key or value that is not UTF-8 is base64 with key_base64 or
    /// value_base64 set
    #[arg(long)]
    json: bool,
    /// Longest time the broker may hold a fetch open waiting for data, in milliseconds
    #[arg(long, default_value_t = 500, value_name = "MS",
          value_parser = clap::value_parser!(u32).range(0..=i32::MAX as i64))]
    max_wait_ms: u32,
}

impl ConsumeArgs {
    /// How records are printed.
    fn printer(&self) -> record_format::Printer {
        if let Some(p) = &self.format {
            return p.clone();
        }
        if self.json {
            return record_format::Printer::Json;
        }
        let key_sep = match (&self.key_sep, self.print_key) {
            (Some(sep), _) => Some(sep.as_bytes().to_vec()),
            (None, true) => Some(b"\t".to_vec()),
            (None, false) => None,
        };
        record_format::Printer::Plain { key_sep }
    }

    /// Where reading starts [default: earliest].
    fn start_at(&self) -> record_format::StartAt {
        use record_format::StartAt;
        if self.start.from_beginning {
            StartAt::Earliest
        } else if let Some(t) = self.start.timestamp {
            StartAt::Timestamp(t)
        } else {
            self.start.offset.unwrap_or(StartAt::Earliest)
        }
    }
}

/// Where `consume` starts: at most one of these [default: earliest].
#[derive(Debug, Clone, clap::Args)]
#[group(required = false, multiple = false)]
struct StartArgs {
    /// Start at each partition's log start offset (the same as --offset earliest)
    #[arg(long)]
    from_beginning: bool,
    /// Where to start in every chosen partition: earliest, latest, an offset N (between log
    /// start and high watermark), -N (N records before the end), or @TIME: milliseconds
    /// since the epoch, RFC 3339 such as @2024-05-01T12:00:00Z, or a time ago such as
    /// @-90s, @-15m, @-1h, @-2d [default: earliest]
    #[arg(short = 'o', long, value_name = "WHERE", value_parser = record_format::parse_start,
          allow_hyphen_values = true)]
    offset: Option<record_format::StartAt>,
    /// Start at the first record whose timestamp is at or after T: milliseconds since the
    /// Unix epoch, or RFC 3339 such as 2024-05-01T12:00:00Z (the same as --offset @T)
    #[arg(long, value_name = "T", value_parser = timestamp::parse_timestamp)]
    timestamp: Option<i64>,
}

/// Runs `cairn topic ...`.
pub fn topic(args: &TopicArgs) -> anyhow::Result<()> {
    run(topic::run(&args.client, &args.command))
}

/// Runs `cairn group ...`.
pub fn group(args: &GroupArgs) -> anyhow::Result<()> {
    run(group::run(&args.client, &args.command))
}

/// Runs `cairn produce`.
pub fn produce(args: &ProduceArgs) -> anyhow::Result<()> {
    run(produce::run(args))
}

/// Runs `cairn consume`.
pub fn consume(args: &ConsumeArgs) -> anyhow::Result<()> {
    run(consume::run(args))
}

/// Runs `cairn bench ...` (on a multi-threaded runtime of its own: many connections at
/// once, each encoding or decoding batches).
pub fn bench(args: &BenchArgs) -> anyhow::Result<()> {
    bench::run(args)
}

/// Runs one command on a single-threaded runtime: a CLI talks to a few brokers one request
/// at a time, so more threads would buy nothing.
fn run(command: impl Future<Output = anyhow::Result<()>>) -> anyhow::Result<()> {
    let runtime = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .context("cannot start the async runtime")?;
    let result = runtime.block_on(command);
    // Nothing of ours is left running; don't wait for anything that is.
    runtime.shutdown_background();
    result
}

/// `KEY=VALUE` of `--config`.
fn parse_config(text: &str) -> Result<(String, String), String> {
    match text.split_once('=') {
        Some((key, value)) if !key.trim().is_empty() => {
            Ok((key.trim().to_string(), value.to_string()))
        }
        _ => Err(format!("expected KEY=VALUE, got {text:?}")),
    }
}

fn parse_separator(text: &str) -> Result<String, String> {
    if text.is_empty() {
        return Err("the separator must not be empty".to_string());
    }
    Ok(text.to_string())
}

/// `--acks`: Kafka's producer `acks` values; `all` is sent as -1.
fn parse_acks(text: &str) -> Result<i16, String> {
    match text {
        "0" => Ok(0),
        "1" => Ok(1),
        "all" | "-1" => Ok(-1),
        _ => Err(format!("expected 0, 1 or all, got {text:?}")),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use clap::Parser;

    #[derive(Debug, Parser)]
    struct Cli {
        #[command(subcommand)]
        command: Command,
    }

    #[derive(Debug, clap::Subcommand)]
    enum Command {
        Topic(TopicArgs),
        Produce(ProduceArgs),
        Consume(ConsumeArgs),
    }

    fn parse(args: &[&str]) -> Result<Command, clap::Error> {
        Cli::try_parse_from(std::iter::once("cairn").chain(args.iter().copied()))
            .map(|cli| cli.command)
    }

    #[test]
    fn config_pairs() {
        assert_eq!(
            parse_config("retention.ms=1000"),
            Ok(("retention.ms".to_string(), "1000".to_string()))
        );
        assert_eq!(
            parse_config("a=b=c"),
            Ok(("a".to_string(), "b=c".to_string()))
        );
        assert_eq!(parse_config("x="), Ok(("x".to_string(), String::new())));
        assert!(parse_config("novalue").is_err());
        assert!(parse_config("=5").is_err());
    }

    #[test]
    fn acks_values() {
        assert_eq!(parse_acks("all"), Ok(-1));
        assert_eq!(parse_acks("-1"), Ok(-1));
        assert_eq!(parse_acks("0"), Ok(0));
        assert_eq!(parse_acks("1"), Ok(1));
        assert!(parse_acks("2").is_err());
    }

    #[test]
    fn command_lines() {
        let Ok(Command::Topic(topic)) = parse(&[
            "topic",
            "create",
            "t",
            "--partitions",
            "3",
            "--config",
            "a=1",
            "--config",
            "b=2",
            "--bootstrap-server",
            "h:1",
        ]) else {
            panic!("topic create parses");
        };
        assert_eq!(topic.client.bootstrap_server, "h:1");
        assert!(matches!(
            topic.command,
            TopicCommand::Create { partitions: 3, replication_factor: -1, ref configs, .. }
                if configs.len() == 2
        ));
        // Global options also work before the nested subcommand.
        assert!(parse(&["topic", "--timeout-ms", "5", "list"]).is_ok());

        let Ok(Command::Produce(produce)) = parse(&["produce", "t"]) else {
            panic!("produce parses");
        };
        assert_eq!(
            (produce.acks, produce.compression, produce.client.timeout_ms),
            (-1, Codec::None, 30_000)
        );

        // consume takes at most one start position, earliest by default.
        let Ok(Command::Consume(consume)) = parse(&["consume", "t"]) else {
            panic!("consume parses");
        };
        assert_eq!(consume.start_at(), record_format::StartAt::Earliest);
        assert!(parse(&["consume", "t", "--from-beginning", "--offset", "3"]).is_err());
        let Ok(Command::Consume(consume)) = parse(&["consume", "t", "-o", "-10", "-f"]) else {
            panic!("consume -o -10 parses");
        };
        assert_eq!(consume.start_at(), record_format::StartAt::FromEnd(10));
        assert!(consume.follow);
        assert!(parse(&["consume", "t", "--json", "--format", "%v"]).is_err());
        assert!(parse(&["consume", "t", "--print-key", "--json"]).is_err());
        assert!(parse(&["consume", "t", "--format", "%q"]).is_err());
        let Ok(Command::Consume(consume)) =
            parse(&["consume", "t", "--timestamp", "1970-01-01T00:00:01Z"])
        else {
            panic!("consume parses");
        };
        assert_eq!(consume.start.timestamp, Some(1000));

        assert!(
            parse(&["topic", "alter", "t"]).is_err(),
            "alter needs a change"
        );
        assert!(parse(&["topic", "alter", "t", "--delete-config", "x"]).is_ok());
        assert!(parse(&["topic", "create", "t", "--partitions", "0"]).is_err());
        assert!(parse(&["produce", "t", "--key-sep", ""]).is_err());
    }
}
