//! `cairn serve`: run one broker node until SIGINT or SIGTERM.
//!
//! Start-up order matters and is designed so that nothing half-starts:
//! 1. load and validate the whole configuration (a bad value exits before the disk is
//!    touched);
//! 2. install signal handlers, before anything announces readiness, so a signal sent the
//!    moment `cairn ready` appears is handled rather than killing the process;
//! 3. create the data directory and lock it;
//! 4. start the broker: bind the HTTP API (`/livez` answers from here on, `/readyz` says
//!    503), open every topic's partitions (recovering them after a crash) and bind the Kafka
//!    listener;
//! 5. log `cairn ready` with the Kafka and HTTP addresses — clients can connect from this
//!    line on, and `/readyz` says 200.
//!
//! Shutdown runs the same steps backwards: `shutting down`, stop accepting and drain
//! connections, flush and close every partition (a clean shutdown: the next start reads no
//! log data), release the lock, `stopped`.

use std::path::{Path, PathBuf};

use anyhow::Context as _;
use tokio::signal::unix::{signal, Signal, SignalKind};
use tracing::{debug, info, warn};

use cairn_broker::{Broker, BrokerConfig, HttpLimits};

use crate::config::{log_settings, Config, ConfigArgs};
use crate::lock::DataDirLock;

/// Runs the broker with configuration from `args` and the environment.
pub fn run(args: &ConfigArgs) -> anyhow::Result<()> {
    let loaded = Config::load(args)?;
    let config = loaded.config;
    config.validate()?;

    if let Some(warning) = crate::logging::init(&config.log_level)? {
        warn!("{warning}");
    }
    for warning in &loaded.warnings {
        warn!("{warning}");
    }
    let log_defaults = log_settings(&config.to_log_config())
        .iter()
        .map(|(name, value)| format!("{name}={value}"))
        .collect::<Vec<_>>()
        .join(" ");
    let config_file = match &loaded.file {
        Some(path) => path.display().to_string(),
        None => "none".to_string(),
    };
    info!(config_file = %config_file, log_defaults, "configuration loaded");

    let runtime = tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
        .context("cannot start the async runtime")?;
    runtime.block_on(serve(&config))
}

async fn serve(config: &Config) -> anyhow::Result<()> {
    let mut signals = ShutdownSignals::install()?;
    let data_dir = prepare_data_dir(&config.data_dir)?;
    let lock = DataDirLock::acquire(&data_dir)?;
    debug!(lock_file = %lock.path().display(), "data directory locked");
    let broker = Broker::start(broker_config(config, &data_dir))
        .await
        .context("cannot start the broker")?;
    let http = match broker.http_addr() {
        Some(addr) => format!("http://{addr}"),
        None => "off".to_string(),
    };
    info!(
        version = env!("CARGO_PKG_VERSION"),
        data_dir = %data_dir.display(),
        listen = %broker.local_addr(),
        advertise = %config.advertise_addr(),
        http = %http,
        cluster_id = broker.cluster_id(),
        "cairn ready"
    );

    let signal = signals.recv().await;
    info!(signal = %signal, "shutting down");
    broker.shutdown().await;
    lock.release();
    info!("stopped");
    Ok(())
}

/// The broker's settings from the node's configuration.
fn broker_config(config: &Config, data_dir: &Path) -> BrokerConfig {
    let mut b = BrokerConfig::new(data_dir.to_path_buf(), config.listen);
    b.advertise = config.advertise_host_port();
    b.node_id = config.broker.node_id;
    b.auto_create_topics = config.broker.auto_create_topics;
    b.num_partitions = config.broker.num_partitions;
    b.max_frame_bytes = config.broker.socket_request_max_bytes;
    b.max_connections = config.broker.max_connections;
    b.fetch_max_bytes = config.broker.fetch_max_bytes;
    let g = &config.broker;
    b.groups.coordinator.group_min_session_timeout_ms = g.group_min_session_timeout_ms;
    b.groups.coordinator.group_max_session_timeout_ms = g.group_max_session_timeout_ms;
    b.groups.coordinator.group_initial_rebalance_delay_ms = g.group_initial_rebalance_delay_ms;
    b.groups.coordinator.group_max_size = g.group_max_size;
    b.groups.coordinator.offsets_retention_ms = g.offsets_retention_minutes * 60_000;
    b.groups.offsets_topic_partitions = g.offsets_topic_num_partitions;
    b.groups.offsets_topic_segment_bytes = g.offsets_topic_segment_bytes;
    b.groups.offset_metadata_max_bytes = g.offset_metadata_max_bytes;
    b.groups.retention_check_interval_ms = g.offsets_retention_check_interval_ms;
    b.storage_min_free_bytes = g.storage_min_free_bytes;
    b.cleaner.enabled = g.log_cleaner_enable;
    b.cleaner.threads = g.log_cleaner_threads;
    b.cleaner.backoff_ms = g.log_cleaner_backoff_ms;
    b.cleaner.settings.dedupe_buffer_bytes = g.log_cleaner_dedupe_buffer_size;
    b.cleaner.settings.io_max_bytes_per_second = g.log_cleaner_io_max_bytes_per_second;
    b.http_listen = config.http_listen.addr();
    b.http = HttpLimits::new(usize::try_from(config.http_max_request_bytes).unwrap_or(usize::MAX));
    b.log = config.to_log_config();
    b.static_configs = config.static_broker_configs.clone();
    let voters = &config.broker.controller_quorum_voters;
    if !voters.is_empty() {
        // Validated when the configuration was read.
        if let Ok(voters) = cairn_broker::ClusterSettings::parse_voters(voters) {
            b.cluster = Some(cairn_broker::ClusterSettings {
                voters,
                listen: config
                    .broker
                    .cluster_listen
                    .as_deref()
                    .and_then(|l| l.parse().ok()),
                cluster_id: config.broker.cluster_id.clone(),
            });
        }
    }
    b
}

/// Creates the data directory if needed and returns its absolute path, which is what the
/// logs show so an operator knows exactly which directory a node uses.
fn prepare_data_dir(dir: &Path) -> anyhow::Result<PathBuf> {
    // Durably, like everything the broker creates in it (`cairn_storage::durable`).
    cairn_storage::durable::create_dir_all(dir)
        .with_context(|| format!("cannot create data directory {}", dir.display()))?;
    dir.canonicalize()
        .with_context(|| format!("cannot resolve data directory {}", dir.display()))
}

/// The signals that stop the node.
#[derive(Debug)]
struct ShutdownSignals {
    interrupt: Signal,
    terminate: Signal,
}

impl ShutdownSignals {
    fn install() -> anyhow::Result<ShutdownSignals> {
        Ok(ShutdownSignals {
            interrupt: signal(SignalKind::interrupt()).context("cannot handle SIGINT")?,
            terminate: signal(SignalKind::terminate()).context("cannot handle SIGTERM")?,
        })
    }

    /// Waits for the first of the signals and names it.
    async fn recv(&mut self) -> &'static str {
        tokio::select! {
            _ = self.interrupt.recv() => "SIGINT",
            _ = self.terminate.recv() => "SIGTERM",
        }
    }
}
