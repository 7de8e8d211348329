//! Prometheus metrics, named after the JMX names Kafka's exporters produce
//! (`kafka.server:type=BrokerTopicMetrics,name=BytesInPerSec` becomes
//! `kafka_server_brokertopicmetrics_bytesin_total`), so dashboards built for Kafka find them.
//!
//! Two kinds: counters and a histogram the request path bumps as it goes ([`Metrics`], one
//! per node), and gauges read from the node at scrape time ([`Metrics::render`]: each
//! partition's offsets and size, leaders, under-replicated partitions), which cost nothing
//! between scrapes. The process's memory, CPU and file descriptors come from the
//! `prometheus` crate's process collector. The table of names is in the README.

mod error_counts;

use std::time::Duration;

use cairn_protocol::kafka_protocol::messages::ResponseKind;
use cairn_protocol::ErrorCode;
use prometheus::core::Collector;
use prometheus::{
    Encoder, HistogramOpts, HistogramVec, IntCounterVec, IntGauge, IntGaugeVec, Opts, Registry,
    TextEncoder,
};

use crate::node::Node;

/// Request latency buckets, in seconds: 100 µs to 30 s (long-polling fetches included).
const LATENCY_BUCKETS: &[f64] = &[
    0.0001, 0.00025, 0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5,
    5.0, 10.0, 30.0,
];

/// The counters of one node.
pub(crate) struct Metrics {
    registry: Registry,
    bytes_in: IntCounterVec,
    messages_in: IntCounterVec,
    bytes_out: IntCounterVec,
    requests: IntCounterVec,
    errors: IntCounterVec,
    request_seconds: HistogramVec,
    commit_seconds: HistogramVec,
    fetch_wait_seconds: HistogramVec,
    connections: IntGauge,
}

impl std::fmt::Debug for Metrics {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Metrics").finish_non_exhaustive()
    }
}

fn counter(registry: &Registry, name: &str, help: &str, labels: &[&str]) -> IntCounterVec {
    let c = IntCounterVec::new(Opts::new(name, help), labels).expect("a valid counter");
    registry
        .register(Box::new(c.clone()))
        .expect("a metric registered once");
    c
}

fn histogram(registry: &Registry, name: &str, help: &str, labels: &[&str]) -> HistogramVec {
    let h = HistogramVec::new(
        HistogramOpts::new(name, help).buckets(LATENCY_BUCKETS.to_vec()),
        labels,
    )
    .expect("a valid histogram");
    registry
        .register(Box::new(h.clone()))
        .expect("a metric registered once");
    h
}

impl Metrics {
    pub(crate) fn new() -> Metrics {
        let registry = Registry::new();
        let request_seconds = histogram(
            &registry,
            "kafka_network_requestmetrics_totaltime_seconds",
            "Time from a request's arrival to its response, by Kafka API",
            &["request"],
        );
        let commit_seconds = histogram(
            &registry,
            "cairn_produce_commit_seconds",
            "Time from queueing a partition's produced batches to their acknowledgement \
             (acks=all: committed on a majority, fsynced by the default policy; acks=1: \
             written by the leader), Kafka and HTTP produces alike",
            &["acks"],
        );
        let fetch_wait_seconds = histogram(
            &registry,
            "cairn_fetch_wait_seconds",
            "Time a Fetch spent from its first read to its response: near 0 when data was \
             there, up to max.wait.ms when it long-polled for min.bytes",
            &["kind"],
        );
        let connections = IntGauge::new(
            "kafka_server_socketservermetrics_connection_count",
            "Open Kafka client connections",
        )
        .expect("a valid gauge");
        registry
            .register(Box::new(connections.clone()))
            .expect("a metric registered once");
        #[cfg(target_os = "linux")]
        registry
            .register(Box::new(
                prometheus::process_collector::ProcessCollector::for_self(),
            ))
            .expect("the process collector registered once");
        Metrics {
            bytes_in: counter(
                &registry,
                "kafka_server_brokertopicmetrics_bytesin_total",
                "Bytes of record batches accepted for appending, by topic",
                &["topic"],
            ),
            messages_in: counter(
                &registry,
                "kafka_server_brokertopicmetrics_messagesin_total",
                "Records accepted for appending, by topic",
                &["topic"],
            ),
            bytes_out: counter(
                &registry,
                "kafka_server_brokertopicmetrics_bytesout_total",
                "Bytes of record batches sent to fetching clients, by topic",
                &["topic"],
            ),
            requests: counter(
                &registry,
                "kafka_network_requestmetrics_requests_total",
                "Kafka requests answered, by API and version",
                &["request", "version"],
            ),
            errors: counter(
                &registry,
                "kafka_network_requestmetrics_errors_total",
                "Error codes in Kafka responses, by API and Kafka error name, counted as \
                 Kafka's errorCounts() does (per partition for Produce, ...); NONE included",
                &["request", "error"],
            ),
            request_seconds,
            commit_seconds,
            fetch_wait_seconds,
            connections,
            registry,
        }
    }

    /// A partition's produced batches were acknowledged `took` after they were queued.
    pub(crate) fn committed(&self, acks: &str, took: Duration) {
        self.commit_seconds
            .with_label_values(&[acks])
            .observe(took.as_secs_f64());
    }

    /// A Fetch (`kind`: `consumer` or `follower`) answered `took` after its first read.
    pub(crate) fn fetch_waited(&self, kind: &str, took: Duration) {
        self.fetch_wait_seconds
            .with_label_values(&[kind])
            .observe(took.as_secs_f64());
    }

    /// Batches of `bytes` holding `records` records were accepted for `topic`.
    pub(crate) fn produced(&self, topic: &str, bytes: u64, records: u64) {
        self.bytes_in.with_label_values(&[topic]).inc_by(bytes);
        self.messages_in.with_label_values(&[topic]).inc_by(records);
    }

    /// `bytes` of `topic`'s batches went out in a fetch response.
    pub(crate) fn fetched(&self, topic: &str, bytes: u64) {
        if bytes > 0 {
            self.bytes_out.with_label_values(&[topic]).inc_by(bytes);
        }
    }

    /// A request of `api` (Kafka's name, e.g. `Produce`) and `version` took `took`.
    pub(crate) fn request(&self, api: &str, version: i16, took: Duration) {
        self.requests
            .with_label_values(&[api, &version.to_string()])
            .inc();
        self.request_seconds
            .with_label_values(&[api])
            .observe(took.as_secs_f64());
    }

    /// The response to a request of `api` was `response`: counts each error code in it, as
    /// Kafka's `ErrorsPerSec` does (see [`error_counts`]).
    pub(crate) fn response_errors(&self, api: &str, response: &ResponseKind) {
        let Some(counts) = error_counts::error_counts(response) else {
            return;
        };
        for (code, n) in counts.iter() {
            self.errors
                .with_label_values(&[api, error_counts::error_name(code)])
                .inc_by(n);
        }
    }

    /// A request of `api` was refused with `code` before any handler ran (a version the
    /// broker does not serve).
    pub(crate) fn refused(&self, api: &str, code: ErrorCode) {
        self.errors
            .with_label_values(&[api, error_counts::error_name(code.code())])
            .inc();
    }

    /// A Kafka connection opened (`true`) or closed.
    pub(crate) fn connection(&self, open: bool) {
        if open {
            self.connections.inc();
        } else {
            self.connections.dec();
        }
    }

    /// Everything, in the Prometheus text format: the counters, then the node's state as
    /// gauges read now.
    pub(crate) async fn render(&self, node: &Node) -> String {
        let mut families = self.registry.gather();
        // A gauge no label set was given (no group has a lag yet) collects as a family
        // without metrics, which the encoder refuses; `gather` leaves such families out too.
        families.extend(
            state_gauges(node)
                .await
                .into_iter()
                .filter(|f| !f.get_metric().is_empty()),
        );
        let mut out = Vec::new();
        // Encoding into a Vec fails only on invalid families, which `gather` never yields.
        if let Err(e) = TextEncoder::new().encode(&families, &mut out) {
            tracing::error!(error = %e, "cannot encode metrics");
        }
        String::from_utf8(out).unwrap_or_default()
    }
}

fn gauge(name: &str, help: &str, labels: &[&str]) -> IntGaugeVec {
    IntGaugeVec::new(Opts::new(name, help), labels).expect("a valid gauge")
}

/// The node's partitions as gauges, read at scrape time.
async fn state_gauges(node: &Node) -> Vec<prometheus::proto::MetricFamily> {
    let log_start = gauge(
        "kafka_log_log_logstartoffset",
        "First offset of the partition's log on this node",
        &["topic", "partition"],
    );
    let log_end = gauge(
        "kafka_log_log_logendoffset",
        "Offset after the last record of the partition's log on this node",
        &["topic", "partition"],
    );
    let high_watermark = gauge(
        "kafka_cluster_partition_highwatermark",
        "Offset up to which the partition's records are committed, as this node knows it",
        &["topic", "partition"],
    );
    let size = gauge(
        "kafka_log_log_size",
        "Bytes of the partition's segment files on this node",
        &["topic", "partition"],
    );
    let cleaned_offset = gauge(
        "kafka_log_logcleaner_cleaned_offset",
        "Offset below which a compacted partition's log is cleaned (one record per key)",
        &["topic", "partition"],
    );
    let dirty_ratio = prometheus::GaugeVec::new(
        Opts::new(
            "kafka_log_logcleaner_dirty_ratio",
            "Share of a compacted partition's sealed bytes not cleaned yet (compared with \
             min.cleanable.dirty.ratio)",
        ),
        &["topic", "partition"],
    )
    .expect("a valid gauge");
    let clean_seconds = prometheus::GaugeVec::new(
        Opts::new(
            "kafka_log_logcleaner_last_clean_seconds",
            "Wall time of the partition's last clean",
        ),
        &["topic", "partition"],
    )
    .expect("a valid gauge");
    let clean_bytes = gauge(
        "kafka_log_logcleaner_last_clean_bytes",
        "Bytes of the partition's last clean: read (both passes), and the rewritten \
         segments before and after",
        &["topic", "partition", "kind"],
    );
    let under_replicated = gauge(
        "kafka_cluster_partition_underreplicated",
        "1 if this node leads the partition and a replica is out of sync",
        &["topic", "partition"],
    );
    let term = gauge(
        "cairn_raft_term",
        "The partition's raft term on this node (Kafka's leader epoch)",
        &["topic", "partition"],
    );
    let leader_changes = gauge(
        "cairn_raft_leader_changes",
        "New leaders this node's replica of the partition has seen since it opened \
         (elections and hand-overs; grows only)",
        &["topic", "partition"],
    );
    let active_controller = gauge(
        "kafka_controller_kafkacontroller_activecontrollercount",
        "1 if this node is the controller (leads the metadata quorum), else 0",
        &[],
    );
    let counts = gauge(
        "kafka_server_replicamanager_count",
        "Partitions on this node (kind=partitions), those it leads (kind=leaders) and \
         those it leads with a replica out of sync (kind=underreplicated)",
        &["kind"],
    );
    let me = node.config.node_id;
    let (mut partitions, mut leaders, mut under) = (0i64, 0i64, 0i64);
    for topic in node.topics.list() {
        for d in node.partition_details(&topic).await {
            let v = &d.view;
            let p = v.partition.to_string();
            let labels = [topic.name.as_str(), p.as_str()];
            let offset = |o: u64| i64::try_from(o).unwrap_or(i64::MAX);
            log_start
                .with_label_values(&labels)
                .set(offset(v.log_start_offset));
            log_end
                .with_label_values(&labels)
                .set(offset(v.log_end_offset));
            high_watermark
                .with_label_values(&labels)
                .set(offset(v.high_watermark));
            if let Some(bytes) = d.size_bytes {
                size.with_label_values(&labels).set(offset(bytes));
            }
            if let Some(c) = &d.cleaner {
                cleaned_offset
                    .with_label_values(&labels)
                    .set(offset(c.cleaned_until));
                dirty_ratio.with_label_values(&labels).set(c.dirty_ratio);
                if let Some(run) = &c.last_run {
                    clean_seconds
                        .with_label_values(&labels)
                        .set(run.duration_ms as f64 / 1000.0);
                    for (kind, bytes) in [
                        ("read", run.bytes_read),
                        ("before", run.bytes_before),
                        ("after", run.bytes_after),
                    ] {
                        clean_bytes
                            .with_label_values(&[labels[0], labels[1], kind])
                            .set(offset(bytes));
                    }
                }
            }
            term.with_label_values(&labels)
                .set(i64::from(v.leader_epoch));
            leader_changes
                .with_label_values(&labels)
                .set(offset(d.leader_changes));
            partitions += 1;
            if v.leader == Some(me) {
                leaders += 1;
                let lagging = v.isr.len() < v.replicas.len();
                under += i64::from(lagging);
                under_replicated
                    .with_label_values(&labels)
                    .set(i64::from(lagging));
            }
        }
    }
    active_controller
        .with_label_values::<&str>(&[])
        .set(i64::from(node.controller() == Some(me)));
    counts.with_label_values(&["partitions"]).set(partitions);
    counts.with_label_values(&["leaders"]).set(leaders);
    counts.with_label_values(&["underreplicated"]).set(under);
    [
        log_start,
        log_end,
        high_watermark,
        size,
        under_replicated,
        term,
        leader_changes,
        active_controller,
        counts,
        cleaned_offset,
        clean_bytes,
    ]
    .iter()
    .flat_map(|g| g.collect())
    .chain(dirty_ratio.collect())
    .chain(clean_seconds.collect())
    .chain(group_gauges(node))
    .collect()
}

/// The groups this node coordinates as gauges, read at scrape time.
fn group_gauges(node: &Node) -> Vec<prometheus::proto::MetricFamily> {
    let group_lag = gauge(
        "kafka_consumergroup_lag",
        "Log end offset minus the group's committed offset (groups this node coordinates)",
        &["consumergroup", "topic", "partition"],
    );
    let group_offset = gauge(
        "kafka_consumergroup_current_offset",
        "The group's committed offset",
        &["consumergroup", "topic", "partition"],
    );
    let group_members = gauge(
        "kafka_consumergroup_members",
        "Members of the group",
        &["consumergroup"],
    );
    let group_state = gauge(
        "kafka_consumergroup_state",
        "1 for the group's current state (Empty, Stable, PreparingRebalance, ...)",
        &["consumergroup", "state"],
    );
    for listing in node.list_groups(&[]) {
        let Ok(g) = node.group(&listing.group_id) else {
            continue;
        };
        let id = g.description.group_id.as_str();
        group_members
            .with_label_values(&[id])
            .set(i64::try_from(g.members.len()).unwrap_or(i64::MAX));
        group_state
            .with_label_values(&[id, &g.description.state.to_string()])
            .set(1);
        for o in &g.offsets {
            let p = o.partition.to_string();
            let labels = [id, o.topic.as_str(), p.as_str()];
            group_offset
                .with_label_values(&labels)
                .set(o.committed_offset);
            if let Some(lag) = o.lag {
                group_lag.with_label_values(&labels).set(lag);
            }
        }
    }
    [group_lag, group_offset, group_members, group_state]
        .iter()
        .flat_map(|g| g.collect())
        .collect()
}
