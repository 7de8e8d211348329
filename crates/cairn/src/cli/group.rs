//! `cairn group list|describe|reset-offsets|delete`: consumer group administration, in the
//! manner of Kafka's `kafka-consumer-groups.sh`.
//!
//! Routing: `list` asks every broker of the cluster (each answers for the groups it
//! coordinates) and merges; the other commands ask the bootstrap broker for the group's
//! coordinator (FindCoordinator, key type 0) and talk to it, looking it up again when it
//! answers NOT_COORDINATOR or COORDINATOR_NOT_AVAILABLE and asking again on
//! COORDINATOR_LOAD_IN_PROGRESS, until `--timeout-ms` has passed. Log offsets (ListOffsets)
//! come from the partition leaders through [`Cluster`].
//!
//! Transport: [`Connection`], whose `CLIENT_APIS` table lists the group APIs with the
//! others.
//!
//! `reset-offsets` works like Kafka's tool: it refuses unless the group is Empty or Dead
//! (no members, so no consumer will overwrite the new offsets), computes each partition's
//! new offset ([`ResetSpec::new_offset`]), prints them, and commits only with `--execute`,
//! as an admin ("simple") commit: generation -1, empty member id.
//!
//! `list` and `describe` print tables, or with `--output json` the same facts as JSON
//! (`json`).

mod json;

use std::collections::{BTreeMap, BTreeSet};
use std::fmt::Write as _;
use std::time::{Duration, Instant};

use anyhow::{anyhow, bail, Context as _};
use bytes::{Buf as _, Bytes};
use cairn_protocol::kafka_protocol::messages::offset_commit_request::{
    OffsetCommitRequestPartition, OffsetCommitRequestTopic,
};
use cairn_protocol::kafka_protocol::messages::offset_fetch_request::{
    OffsetFetchRequestGroup, OffsetFetchRequestTopic, OffsetFetchRequestTopics,
};
use cairn_protocol::kafka_protocol::messages::{
    ApiKey, ConsumerProtocolAssignment, DeleteGroupsRequest, DeleteGroupsResponse,
    DescribeGroupsRequest, DescribeGroupsResponse, FindCoordinatorRequest, FindCoordinatorResponse,
    GroupId, ListGroupsRequest, ListGroupsResponse, OffsetCommitRequest, OffsetCommitResponse,
    OffsetFetchRequest, OffsetFetchResponse,
};
use cairn_protocol::kafka_protocol::protocol::{Decodable as _, Message as _, StrBytes};
use cairn_protocol::ErrorCode;

use super::cluster::{metadata_request, topic_name, Cluster};
use super::conn::{Call, Connection};
use super::error_code::KafkaError;
use super::offsets::{list_offsets, list_offsets_or_fail, EARLIEST, LATEST};
use super::{ClientArgs, GroupCommand, Output, ResetTo};

/// Pause before asking again while the coordinator is moving or loading.
const COORDINATOR_BACKOFF: Duration = Duration::from_millis(100);
/// FindCoordinator's key type of a consumer group.
const KEY_TYPE_GROUP: i8 = 0;
/// The protocol type of Kafka consumers, whose assignments [`decode_assignment`] reads.
const CONSUMER_PROTOCOL: &str = "consumer";
/// The group states (classic protocol) `--state` accepts, as Kafka spells them.
const STATES: [&str; 5] = [
    "Empty",
    "Stable",
    "PreparingRebalance",
    "CompletingRebalance",
    "Dead",
];

pub(crate) async fn run(client: &ClientArgs, command: &GroupCommand) -> anyhow::Result<()> {
    let mut cluster = Cluster::connect(client).await?;
    match command {
        GroupCommand::List { states, output } => list(&mut cluster, client, states, *output).await,
        GroupCommand::Describe { group, output } => {
            describe(&mut cluster, client, group, *output).await
        }
        GroupCommand::ResetOffsets {
            group,
            topic,
            partitions,
            to,
            execute,
        } => {
            let spec = ResetSpec::from_args(to)?;
            reset_offsets(
                &mut cluster,
                client,
                group,
                topic,
                partitions,
                spec,
                *execute,
            )
            .await
        }
        GroupCommand::Delete { group } => delete(&mut cluster, client, group).await,
    }
}

// --- list ---------------------------------------------------------------------------------

/// One row of `group list`.
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord)]
pub(crate) struct ListedGroup {
    pub id: String,
    /// `None` when the broker does not say (ListGroups before v4).
    pub state: Option<String>,
    pub protocol_type: String,
}

async fn list(
    cluster: &mut Cluster,
    client: &ClientArgs,
    states: &[String],
    output: Output,
) -> anyhow::Result<()> {
    let metadata = cluster
        .admin()
        .call(|v| metadata_request(v, Some(&[] as &[&str])))
        .await?;
    let mut brokers: Vec<(i32, String)> = metadata
        .brokers
        .iter()
        .map(|b| (b.node_id.0, format!("{}:{}", b.host.as_str(), b.port)))
        .collect();
    if brokers.is_empty() {
        brokers.push((-1, cluster.admin().addr().to_string()));
    }
    let mut groups = BTreeSet::new();
    let mut errors = Vec::new();
    for (node, addr) in brokers {
        match list_on(&addr, client.timeout(), states).await {
            Ok(found) => groups.extend(found),
            Err(e) => {
                errors.push(e.context(format!("cannot list the groups of broker {node} ({addr})")))
            }
        }
    }
    // What the other brokers answered is still shown.
    match output {
        Output::Table => print!("{}", format_group_list(&groups)),
        Output::Json => println!("{}", json::group_list(&groups)),
    }
    match errors.len() {
        0 => Ok(()),
        1 => Err(errors.remove(0)),
        n => Err(errors
            .remove(0)
            .context(format!("{n} brokers failed; the first"))),
    }
}

async fn list_on(
    addr: &str,
    timeout: Duration,
    states: &[String],
) -> anyhow::Result<Vec<ListedGroup>> {
    let mut conn = Connection::open(addr, timeout).await?;
    let version = conn.version(ApiKey::ListGroups)?;
    if !states.is_empty() && version < 4 {
        bail!("it speaks ListGroups up to v{version}, which cannot filter by state (v4 can)");
    }
    let deadline = Instant::now() + timeout;
    let response: ListGroupsResponse = call_retrying(
        &mut conn,
        deadline,
        |v| list_groups_request(v, states),
        |r| r.error_code,
    )
    .await?;
    KafkaError::check(response.error_code, None).map_err(anyhow::Error::new)?;
    Ok(response
        .groups
        .iter()
        .map(|g| ListedGroup {
            id: g.group_id.0.to_string(),
            state: (version >= 4).then(|| g.group_state.to_string()),
            protocol_type: g.protocol_type.to_string(),
        })
        .collect())
}

/// `group list`'s table, sorted by group id.
pub(crate) fn format_group_list<'a>(groups: impl IntoIterator<Item = &'a ListedGroup>) -> String {
    let rows: Vec<Vec<String>> = groups
        .into_iter()
        .map(|g| {
            vec![
                g.id.clone(),
                g.state.clone().unwrap_or_else(|| "-".to_string()),
                dash_if_empty(&g.protocol_type),
            ]
        })
        .collect();
    format_table(&["GROUP", "STATE", "PROTOCOL-TYPE"], &rows)
}

/// `--state`: a group state in any case, as Kafka spells it.
pub(crate) fn parse_state(text: &str) -> Result<String, String> {
    STATES
        .iter()
        .find(|s| s.eq_ignore_ascii_case(text.trim()))
        .map(|s| (*s).to_string())
        .ok_or_else(|| format!("{text:?} is not a group state ({})", STATES.join(", ")))
}

// --- describe -----------------------------------------------------------------------------

/// A group as DescribeGroups describes it, assignments decoded.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct GroupInfo {
    pub id: String,
    pub state: String,
    pub protocol_type: String,
    pub protocol: String,
    pub members: Vec<MemberInfo>,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct MemberInfo {
    pub member_id: String,
    pub instance_id: Option<String>,
    pub client_id: String,
    pub host: String,
    /// `(topic, partition)`, sorted; `Err` when the assignment does not decode.
    pub assignment: Result<Vec<(String, i32)>, String>,
}

impl GroupInfo {
    /// Whether no consumer can be committing: Kafka's condition for resetting offsets.
    fn is_inactive(&self) -> bool {
        self.state == "Empty" || self.state == "Dead"
    }
}

/// One row of `group describe`'s partition table.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct PartitionRow {
    pub topic: String,
    pub partition: i32,
    pub committed: Option<i64>,
    pub log_end: Option<i64>,
    pub owner: Option<String>,
}

impl PartitionRow {
    /// Log end minus committed offset, when both are known.
    pub fn lag(&self) -> Option<i64> {
        Some(self.log_end? - self.committed?)
    }
}

async fn describe(
    cluster: &mut Cluster,
    client: &ClientArgs,
    group: &str,
    output: Output,
) -> anyhow::Result<()> {
    let mut coordinator = Coordinator::find(cluster, group, client.timeout()).await?;
    let info = coordinator.describe_group().await?;
    let committed = coordinator.committed_offsets(None).await?;
    if info.state == "Dead" && info.members.is_empty() && committed.is_empty() {
        return Err(anyhow!(KafkaError {
            code: ErrorCode::GroupIdNotFound.code(),
            message: Some(format!("group {group} does not exist")),
        }));
    }
    let mut owners: BTreeMap<(String, i32), String> = BTreeMap::new();
    for member in &info.members {
        for tp in member.assignment.iter().flatten() {
            owners.insert(tp.clone(), member.member_id.clone());
        }
    }
    let mut by_topic: BTreeMap<String, BTreeSet<i32>> = BTreeMap::new();
    for (topic, partition) in committed.keys().chain(owners.keys()) {
        by_topic
            .entry(topic.clone())
            .or_default()
            .insert(*partition);
    }
    let mut rows = Vec::new();
    for (topic, partitions) in by_topic {
        let partitions: Vec<i32> = partitions.into_iter().collect();
        // A deleted topic (or one without leaders) still shows its committed offsets.
        let ends = match cluster.topic(&topic).await {
            Ok(info) => {
                let known: Vec<i32> = partitions
                    .iter()
                    .copied()
                    .filter(|p| info.partition(*p).is_ok())
                    .collect();
                list_offsets(cluster, &info, &known, LATEST).await?
            }
            Err(_) => BTreeMap::new(),
        };
        for partition in partitions {
            let key = (topic.clone(), partition);
            rows.push(PartitionRow {
                topic: topic.clone(),
                partition,
                committed: committed.get(&key).copied(),
                log_end: ends.get(&partition).and_then(|r| r.as_ref().ok().copied()),
                owner: owners.get(&key).cloned(),
            });
        }
    }
    match output {
        Output::Table => print!(
            "{}",
            format_description(&info, coordinator.describe_node(), &rows)
        ),
        Output::Json => println!(
            "{}",
            json::description(&info, (coordinator.node, coordinator.conn.addr()), &rows)
        ),
    }
    Ok(())
}

/// `group describe`'s output: a line about the group, its members, its partitions; each
/// a table with a header (an empty table is just its header). Unknown values print as `-`.
pub(crate) fn format_description(
    info: &GroupInfo,
    coordinator: String,
    rows: &[PartitionRow],
) -> String {
    let mut out = format_table(
        &[
            "GROUP",
            "STATE",
            "PROTOCOL-TYPE",
            "PROTOCOL",
            "MEMBERS",
            "COORDINATOR",
        ],
        &[vec![
            info.id.clone(),
            info.state.clone(),
            dash_if_empty(&info.protocol_type),
            dash_if_empty(&info.protocol),
            info.members.len().to_string(),
            coordinator,
        ]],
    );
    let members: Vec<Vec<String>> = info
        .members
        .iter()
        .map(|m| {
            vec![
                m.member_id.clone(),
                m.instance_id.clone().unwrap_or_else(|| "-".to_string()),
                dash_if_empty(&m.client_id),
                dash_if_empty(&m.host),
                match &m.assignment {
                    Ok(partitions) => format_assignment(partitions),
                    Err(_) => "(undecodable)".to_string(),
                },
            ]
        })
        .collect();
    out.push('\n');
    out.push_str(&format_table(
        &[
            "MEMBER-ID",
            "INSTANCE-ID",
            "CLIENT-ID",
            "HOST",
            "ASSIGNMENT",
        ],
        &members,
    ));
    let show = |value: Option<i64>| value.map_or_else(|| "-".to_string(), |v| v.to_string());
    let partitions: Vec<Vec<String>> = rows
        .iter()
        .map(|r| {
            vec![
                r.topic.clone(),
                r.partition.to_string(),
                show(r.committed),
                show(r.log_end),
                show(r.lag()),
                r.owner.clone().unwrap_or_else(|| "-".to_string()),
            ]
        })
        .collect();
    out.push('\n');
    out.push_str(&format_table(
        &[
            "TOPIC",
            "PARTITION",
            "COMMITTED-OFFSET",
            "LOG-END-OFFSET",
            "LAG",
            "MEMBER-ID",
        ],
        &partitions,
    ));
    out
}

/// `orders(0,1,2),payments(0)`, or `-` for no partitions; `partitions` sorted.
pub(crate) fn format_assignment(partitions: &[(String, i32)]) -> String {
    if partitions.is_empty() {
        return "-".to_string();
    }
    let mut by_topic: BTreeMap<&str, Vec<String>> = BTreeMap::new();
    for (topic, partition) in partitions {
        by_topic
            .entry(topic)
            .or_default()
            .push(partition.to_string());
    }
    by_topic
        .into_iter()
        .map(|(topic, list)| format!("{topic}({})", list.join(",")))
        .collect::<Vec<_>>()
        .join(",")
}

/// A consumer-protocol assignment (`ConsumerProtocolAssignment`: an i16 version, then the
/// body) as sorted `(topic, partition)` pairs. Empty bytes (a member that has not synced
/// yet) assign nothing. A version newer than kafka-protocol knows is read as the newest it
/// knows, as Kafka's `ConsumerProtocol` does: newer versions only append fields.
pub(crate) fn decode_assignment(bytes: &[u8]) -> Result<Vec<(String, i32)>, String> {
    if bytes.is_empty() {
        return Ok(Vec::new());
    }
    let mut buf = Bytes::copy_from_slice(bytes);
    if buf.remaining() < 2 {
        return Err("the assignment is truncated".to_string());
    }
    let version = buf.get_i16();
    if version < 0 {
        return Err(format!("the assignment has version {version}"));
    }
    let version = version.min(ConsumerProtocolAssignment::VERSIONS.max);
    let assignment = ConsumerProtocolAssignment::decode(&mut buf, version)
        .map_err(|e| format!("the assignment does not decode: {e:#}"))?;
    let mut partitions: Vec<(String, i32)> = assignment
        .assigned_partitions
        .iter()
        .flat_map(|t| {
            t.partitions
                .iter()
                .map(move |p| (t.topic.0.to_string(), *p))
        })
        .collect();
    partitions.sort();
    partitions.dedup();
    Ok(partitions)
}

// --- reset-offsets ------------------------------------------------------------------------

/// Where `reset-offsets` moves each partition.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum ResetSpec {
    Earliest,
    Latest,
    Offset(i64),
    /// Milliseconds since the epoch.
    Datetime(i64),
    ShiftBy(i64),
}

/// What is known of one partition when its new offset is computed.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct PartitionOffsets {
    /// The group's committed offset, if any.
    pub committed: Option<i64>,
    /// Log start offset.
    pub earliest: i64,
    /// High watermark.
    pub latest: i64,
    /// With [`ResetSpec::Datetime`]: ListOffsets' answer for the time (-1: no record at or
    /// after it).
    pub by_time: Option<i64>,
}

impl ResetSpec {
    fn from_args(to: &ResetTo) -> anyhow::Result<ResetSpec> {
        Ok(if to.to_earliest {
            ResetSpec::Earliest
        } else if to.to_latest {
            ResetSpec::Latest
        } else if let Some(offset) = to.to_offset {
            ResetSpec::Offset(offset)
        } else if let Some(timestamp) = to.to_datetime {
            ResetSpec::Datetime(timestamp)
        } else if let Some(shift) = to.shift_by {
            ResetSpec::ShiftBy(shift)
        } else {
            bail!("internal error: no reset target (clap requires one)");
        })
    }

    /// The partition's new offset, inside [earliest, latest]. `--to-datetime` past the
    /// last record yields the high watermark; `--shift-by` needs a committed offset.
    pub fn new_offset(self, p: PartitionOffsets) -> Result<i64, String> {
        let clamp = |offset: i64| offset.max(p.earliest).min(p.latest.max(p.earliest));
        Ok(match self {
            ResetSpec::Earliest => p.earliest,
            ResetSpec::Latest => p.latest,
            ResetSpec::Offset(offset) => clamp(offset),
            ResetSpec::Datetime(_) => match p.by_time {
                Some(offset) if offset >= 0 => clamp(offset),
                _ => p.latest,
            },
            ResetSpec::ShiftBy(shift) => {
                let Some(committed) = p.committed else {
                    return Err("there is no committed offset to shift".to_string());
                };
                clamp(committed.saturating_add(shift))
            }
        })
    }
}

async fn reset_offsets(
    cluster: &mut Cluster,
    client: &ClientArgs,
    group: &str,
    topic_name: &str,
    only: &[i32],
    spec: ResetSpec,
    execute: bool,
) -> anyhow::Result<()> {
    let mut coordinator = Coordinator::find(cluster, group, client.timeout()).await?;
    let info = coordinator.describe_group().await?;
    if !info.is_inactive() {
        bail!(
            "cannot reset the offsets of group {group}: it is {} with {} member(s); offsets \
             can be reset only while the group is inactive (Empty), so stop its consumers \
             first",
            info.state,
            info.members.len()
        );
    }
    let only = (!only.is_empty()).then_some(only);
    let topic = cluster.topic_with_leaders(topic_name, only).await?;
    let mut partitions: Vec<i32> = match only {
        Some(list) => list
            .iter()
            .map(|p| topic.partition(*p).map(|p| p.index))
            .collect::<anyhow::Result<_>>()?,
        None => topic.partitions.iter().map(|p| p.index).collect(),
    };
    partitions.sort_unstable();
    partitions.dedup();
    let committed = coordinator
        .committed_offsets(Some((topic_name, &partitions)))
        .await?;
    let earliest = list_offsets_or_fail(cluster, &topic, &partitions, EARLIEST).await?;
    let latest = list_offsets_or_fail(cluster, &topic, &partitions, LATEST).await?;
    let by_time = match spec {
        ResetSpec::Datetime(timestamp) => {
            Some(list_offsets_or_fail(cluster, &topic, &partitions, timestamp).await?)
        }
        _ => None,
    };
    let mut plan = Vec::new();
    for &partition in &partitions {
        let offsets = PartitionOffsets {
            committed: committed.get(&(topic_name.to_string(), partition)).copied(),
            earliest: earliest[&partition],
            latest: latest[&partition],
            by_time: by_time.as_ref().map(|m| m[&partition]),
        };
        let new = spec
            .new_offset(offsets)
            .map_err(|why| anyhow!("cannot reset partition {partition} of {topic_name}: {why}"))?;
        plan.push((partition, offsets.committed, new));
    }
    print!("{}", format_reset_plan(topic_name, &plan));
    if !execute {
        eprintln!("dry run: nothing changed; add --execute to apply");
        return Ok(());
    }
    let commits: Vec<(i32, i64)> = plan.iter().map(|&(p, _, new)| (p, new)).collect();
    coordinator.commit(topic_name, &commits).await?;
    eprintln!(
        "committed new offsets of group {group} for {} partition(s) of {topic_name}",
        commits.len()
    );
    Ok(())
}

/// `reset-offsets`' table: `(partition, committed, new offset)` per partition.
pub(crate) fn format_reset_plan(topic: &str, plan: &[(i32, Option<i64>, i64)]) -> String {
    let rows: Vec<Vec<String>> = plan
        .iter()
        .map(|(partition, current, new)| {
            vec![
                topic.to_string(),
                partition.to_string(),
                current.map_or_else(|| "-".to_string(), |c| c.to_string()),
                new.to_string(),
            ]
        })
        .collect();
    format_table(
        &["TOPIC", "PARTITION", "CURRENT-OFFSET", "NEW-OFFSET"],
        &rows,
    )
}

// --- delete -------------------------------------------------------------------------------

async fn delete(cluster: &mut Cluster, client: &ClientArgs, group: &str) -> anyhow::Result<()> {
    let mut coordinator = Coordinator::find(cluster, group, client.timeout()).await?;
    let response: DeleteGroupsResponse = coordinator
        .call(
            |v| delete_groups_request(v, group),
            |r| delete_result(r, group).unwrap_or(0),
        )
        .await?;
    let code = delete_result(&response, group)
        .ok_or_else(|| anyhow!("the broker's DeleteGroups answer left out group {group}"))?;
    match KafkaError::check(code, None) {
        Ok(()) => {
            eprintln!("deleted group {group}");
            Ok(())
        }
        Err(e) => {
            let hint = if e.code == ErrorCode::NonEmptyGroup.code() {
                " (it has active members; stop its consumers first)"
            } else if e.code == ErrorCode::GroupIdNotFound.code() {
                " (no such group)"
            } else {
                ""
            };
            Err(anyhow!(e).context(format!("cannot delete group {group}{hint}")))
        }
    }
}

fn delete_result(response: &DeleteGroupsResponse, group: &str) -> Option<i16> {
    response
        .results
        .iter()
        .find(|r| r.group_id.0.as_str() == group)
        .map(|r| r.error_code)
}

// --- the coordinator ----------------------------------------------------------------------

/// A connection to a group's coordinator.
#[derive(Debug)]
struct Coordinator {
    group: String,
    /// Where FindCoordinator is asked.
    bootstrap: String,
    node: i32,
    conn: Connection,
    timeout: Duration,
}

impl Coordinator {
    /// Asks the cluster's bootstrap broker for `group`'s coordinator and connects to it.
    async fn find(
        cluster: &mut Cluster,
        group: &str,
        timeout: Duration,
    ) -> anyhow::Result<Coordinator> {
        let bootstrap = cluster.admin().addr().to_string();
        Coordinator::find_at(&bootstrap, group, timeout).await
    }

    async fn find_at(
        bootstrap: &str,
        group: &str,
        timeout: Duration,
    ) -> anyhow::Result<Coordinator> {
        let deadline = Instant::now() + timeout;
        let mut conn = Connection::open(bootstrap, timeout).await?;
        loop {
            let response = conn.call(|v| find_coordinator_request(v, group)).await?;
            match coordinator_of(&response, group) {
                Ok((node, addr)) => {
                    let conn = if addr == conn.addr() {
                        conn
                    } else {
                        Connection::open(&addr, timeout).await.with_context(|| {
                            format!("the coordinator of group {group} (broker {node} at {addr})")
                        })?
                    };
                    return Ok(Coordinator {
                        group: group.to_string(),
                        bootstrap: bootstrap.to_string(),
                        node,
                        conn,
                        timeout,
                    });
                }
                Err(e) if is_coordinator_retriable(e.code) && Instant::now() < deadline => {
                    tokio::time::sleep(COORDINATOR_BACKOFF).await;
                }
                Err(e) => {
                    return Err(
                        anyhow!(e).context(format!("cannot find the coordinator of group {group}"))
                    )
                }
            }
        }
    }

    /// `node (host:port)`, for `describe`.
    fn describe_node(&self) -> String {
        format!("{} ({})", self.node, self.conn.addr())
    }

    /// Sends the request `build` makes; while `error` of the answer says the coordinator
    /// is loading or has moved, asks again (finding it anew if it moved) until the time
    /// limit.
    async fn call<R: Call>(
        &mut self,
        build: impl Fn(i16) -> R,
        error: impl Fn(&R::Response) -> i16,
    ) -> anyhow::Result<R::Response> {
        let deadline = Instant::now() + self.timeout;
        loop {
            let response = self.conn.call(&build).await?;
            let code = error(&response);
            if !is_coordinator_retriable(code) || Instant::now() >= deadline {
                return Ok(response);
            }
            tokio::time::sleep(COORDINATOR_BACKOFF).await;
            if code != ErrorCode::CoordinatorLoadInProgress.code() {
                *self = Coordinator::find_at(&self.bootstrap, &self.group, self.timeout).await?;
            }
        }
    }

    async fn describe_group(&mut self) -> anyhow::Result<GroupInfo> {
        let group = self.group.clone();
        let response: DescribeGroupsResponse = self
            .call(
                |v| describe_groups_request(v, &group),
                |r| r.groups.first().map_or(0, |g| g.error_code),
            )
            .await?;
        group_info(&response, &group)
            .map_err(|e| e.context(format!("cannot describe group {group}")))
    }

    /// The group's committed offsets: of `only`'s partitions, or of every partition.
    /// Partitions without one are left out.
    async fn committed_offsets(
        &mut self,
        only: Option<(&str, &[i32])>,
    ) -> anyhow::Result<BTreeMap<(String, i32), i64>> {
        let group = self.group.clone();
        let response: OffsetFetchResponse = self
            .call(
                |v| offset_fetch_request(v, &group, only),
                offset_fetch_group_error,
            )
            .await?;
        committed_offsets(&response).map_err(|e| {
            anyhow!(e).context(format!(
                "cannot read the committed offsets of group {group}"
            ))
        })
    }

    /// Commits `(partition, offset)`s of `topic` as an admin (generation -1, no member).
    async fn commit(&mut self, topic: &str, offsets: &[(i32, i64)]) -> anyhow::Result<()> {
        let group = self.group.clone();
        let response: OffsetCommitResponse = self
            .call(
                |v| offset_commit_request(v, &group, topic, offsets),
                |r| {
                    r.topics
                        .iter()
                        .flat_map(|t| &t.partitions)
                        .map(|p| p.error_code)
                        .find(|c| *c != 0)
                        .unwrap_or(0)
                },
            )
            .await?;
        let mut answered = BTreeSet::new();
        for t in response
            .topics
            .iter()
            .filter(|t| t.name.0.as_str() == topic)
        {
            for p in &t.partitions {
                KafkaError::check(p.error_code, None).map_err(|e| {
                    anyhow!(e).context(format!(
                        "cannot commit the offset of partition {} of {topic} for group {group}",
                        p.partition_index
                    ))
                })?;
                answered.insert(p.partition_index);
            }
        }
        if let Some((missing, _)) = offsets.iter().find(|(p, _)| !answered.contains(p)) {
            bail!("the broker's OffsetCommit answer left out partition {missing} of {topic}");
        }
        Ok(())
    }
}

/// Errors after which the same request may succeed at the (possibly new) coordinator.
pub(crate) fn is_coordinator_retriable(code: i16) -> bool {
    [
        ErrorCode::CoordinatorLoadInProgress,
        ErrorCode::CoordinatorNotAvailable,
        ErrorCode::NotCoordinator,
    ]
    .iter()
    .any(|c| c.code() == code)
}

/// Sends a request to `conn`, asking again while the answer says COORDINATOR_LOAD_IN_PROGRESS.
async fn call_retrying<R: Call>(
    conn: &mut Connection,
    deadline: Instant,
    build: impl Fn(i16) -> R,
    error: impl Fn(&R::Response) -> i16,
) -> anyhow::Result<R::Response> {
    loop {
        let response = conn.call(&build).await?;
        if error(&response) != ErrorCode::CoordinatorLoadInProgress.code()
            || Instant::now() >= deadline
        {
            return Ok(response);
        }
        tokio::time::sleep(COORDINATOR_BACKOFF).await;
    }
}

/// The coordinator's node id and `host:port` from a FindCoordinator answer.
pub(crate) fn coordinator_of(
    response: &FindCoordinatorResponse,
    group: &str,
) -> Result<(i32, String), KafkaError> {
    // v4+ answers per key; earlier versions at the top level.
    let (code, message, node, host, port) = match response
        .coordinators
        .iter()
        .find(|c| c.key.as_str() == group)
    {
        Some(c) => (
            c.error_code,
            c.error_message.as_ref(),
            c.node_id.0,
            &c.host,
            c.port,
        ),
        None => (
            response.error_code,
            response.error_message.as_ref(),
            response.node_id.0,
            &response.host,
            response.port,
        ),
    };
    KafkaError::check(code, message)?;
    if node < 0 || host.is_empty() {
        return Err(KafkaError {
            code: ErrorCode::CoordinatorNotAvailable.code(),
            message: Some("the broker named no coordinator".to_string()),
        });
    }
    Ok((node, format!("{}:{port}", host.as_str())))
}

/// The described group out of a DescribeGroups answer.
pub(crate) fn group_info(
    response: &DescribeGroupsResponse,
    group: &str,
) -> anyhow::Result<GroupInfo> {
    let described = response
        .groups
        .iter()
        .find(|g| g.group_id.0.as_str() == group)
        .ok_or_else(|| anyhow!("the broker's DescribeGroups answer left out group {group}"))?;
    KafkaError::check(described.error_code, described.error_message.as_ref())
        .map_err(anyhow::Error::new)?;
    let consumer = described.protocol_type.as_str() == CONSUMER_PROTOCOL;
    let mut members: Vec<MemberInfo> = described
        .members
        .iter()
        .map(|m| MemberInfo {
            member_id: m.member_id.to_string(),
            instance_id: m.group_instance_id.as_ref().map(|s| s.to_string()),
            client_id: m.client_id.to_string(),
            host: m.client_host.to_string(),
            // Other protocols' assignments (Connect's, say) are opaque here.
            assignment: if consumer {
                decode_assignment(&m.member_assignment)
            } else {
                Ok(Vec::new())
            },
        })
        .collect();
    members.sort_by(|a, b| a.member_id.cmp(&b.member_id));
    Ok(GroupInfo {
        id: group.to_string(),
        state: described.group_state.to_string(),
        protocol_type: described.protocol_type.to_string(),
        protocol: described.protocol_data.to_string(),
        members,
    })
}

/// The OffsetFetch answer's group-level error code (v2+ top level, v8+ per group).
fn offset_fetch_group_error(response: &OffsetFetchResponse) -> i16 {
    match response.groups.first() {
        Some(g) => g.error_code,
        None => response.error_code,
    }
}

/// Committed offsets (`-1`, "none", left out) from an OffsetFetch answer of any version.
pub(crate) fn committed_offsets(
    response: &OffsetFetchResponse,
) -> Result<BTreeMap<(String, i32), i64>, KafkaError> {
    KafkaError::check(offset_fetch_group_error(response), None)?;
    let mut offsets = BTreeMap::new();
    let mut add = |topic: &str, partition: i32, offset: i64, code: i16| {
        KafkaError::check(code, None)?;
        if offset >= 0 {
            offsets.insert((topic.to_string(), partition), offset);
        }
        Ok::<(), KafkaError>(())
    };
    match response.groups.first() {
        Some(g) => {
            for t in &g.topics {
                for p in &t.partitions {
                    add(
                        t.name.0.as_str(),
                        p.partition_index,
                        p.committed_offset,
                        p.error_code,
                    )?;
                }
            }
        }
        None => {
            for t in &response.topics {
                for p in &t.partitions {
                    add(
                        t.name.0.as_str(),
                        p.partition_index,
                        p.committed_offset,
                        p.error_code,
                    )?;
                }
            }
        }
    }
    Ok(offsets)
}

// --- request builders ---------------------------------------------------------------------

fn str_bytes(s: &str) -> StrBytes {
    StrBytes::from_string(s.to_string())
}

fn group_id(group: &str) -> GroupId {
    GroupId(str_bytes(group))
}

pub(crate) fn find_coordinator_request(version: i16, group: &str) -> FindCoordinatorRequest {
    let request = FindCoordinatorRequest::default();
    let request = if version >= 4 {
        request.with_coordinator_keys(vec![str_bytes(group)])
    } else {
        request.with_key(str_bytes(group))
    };
    // v0 has no key type: it only finds group coordinators.
    if version >= 1 {
        request.with_key_type(KEY_TYPE_GROUP)
    } else {
        request
    }
}

pub(crate) fn list_groups_request(version: i16, states: &[String]) -> ListGroupsRequest {
    let request = ListGroupsRequest::default();
    if version >= 4 {
        request.with_states_filter(states.iter().map(|s| str_bytes(s)).collect())
    } else {
        request
    }
}

pub(crate) fn describe_groups_request(_version: i16, group: &str) -> DescribeGroupsRequest {
    DescribeGroupsRequest::default().with_groups(vec![group_id(group)])
}

pub(crate) fn delete_groups_request(_version: i16, group: &str) -> DeleteGroupsRequest {
    DeleteGroupsRequest::default().with_groups_names(vec![group_id(group)])
}

/// OffsetFetch of `only`'s partitions of one topic, or (`None`) of every partition.
pub(crate) fn offset_fetch_request(
    version: i16,
    group: &str,
    only: Option<(&str, &[i32])>,
) -> OffsetFetchRequest {
    if version >= 8 {
        let topics = only.map(|(topic, partitions)| {
            vec![OffsetFetchRequestTopics::default()
                .with_name(topic_name(topic))
                .with_partition_indexes(partitions.to_vec())]
        });
        // The top-level topic list must stay empty (not null) from v8 on.
        OffsetFetchRequest::default().with_groups(vec![OffsetFetchRequestGroup::default()
            .with_group_id(group_id(group))
            .with_topics(topics)])
    } else {
        let topics = only.map(|(topic, partitions)| {
            vec![OffsetFetchRequestTopic::default()
                .with_name(topic_name(topic))
                .with_partition_indexes(partitions.to_vec())]
        });
        OffsetFetchRequest::default()
            .with_group_id(group_id(group))
            .with_topics(topics)
    }
}

/// An admin commit: generation -1 and no member id, which Kafka accepts only while the
/// group has no members.
pub(crate) fn offset_commit_request(
    version: i16,
    group: &str,
    topic: &str,
    offsets: &[(i32, i64)],
) -> OffsetCommitRequest {
    commit_request(version, group, -1, "", topic, offsets)
}

/// A commit of `offsets` (partition, next offset) of `topic` by `member` of `generation`
/// (-1 and "" for an admin commit).
pub(crate) fn commit_request(
    _version: i16,
    group: &str,
    generation: i32,
    member: &str,
    topic: &str,
    offsets: &[(i32, i64)],
) -> OffsetCommitRequest {
    let partitions = offsets
        .iter()
        .map(|&(partition, offset)| {
            OffsetCommitRequestPartition::default()
                .with_partition_index(partition)
                .with_committed_offset(offset)
                .with_committed_leader_epoch(-1)
                .with_committed_metadata(Some(StrBytes::default()))
        })
        .collect();
    OffsetCommitRequest::default()
        .with_group_id(group_id(group))
        .with_generation_id_or_member_epoch(generation)
        .with_member_id(str_bytes(member))
        .with_group_instance_id(None)
        // v2-v4: -1 is "the broker's retention".
        .with_retention_time_ms(-1)
        .with_topics(vec![OffsetCommitRequestTopic::default()
            .with_name(topic_name(topic))
            .with_partitions(partitions)])
}

// --- tables -------------------------------------------------------------------------------

/// Left-aligned columns separated by two spaces, header first; no trailing spaces.
pub(crate) fn format_table(header: &[&str], rows: &[Vec<String>]) -> String {
    let mut widths: Vec<usize> = header.iter().map(|h| h.chars().count()).collect();
    for row in rows {
        for (i, cell) in row.iter().enumerate() {
            if let Some(width) = widths.get_mut(i) {
                *width = (*width).max(cell.chars().count());
            }
        }
    }
    let mut out = String::new();
    let header: Vec<String> = header.iter().map(|h| (*h).to_string()).collect();
    for row in std::iter::once(&header).chain(rows) {
        let mut line = String::new();
        for (i, cell) in row.iter().enumerate() {
            if i > 0 {
                line.push_str("  ");
            }
            let width = widths.get(i).copied().unwrap_or(0);
            let _ = write!(line, "{cell:<width$}");
        }
        out.push_str(line.trim_end());
        out.push('\n');
    }
    out
}

fn dash_if_empty(text: &str) -> String {
    if text.is_empty() {
        "-".to_string()
    } else {
        text.to_string()
    }
}

/// Every group request the CLI builds, at version `v` of its API (`conn`'s tests encode
/// each at every version in `CLIENT_APIS`).
#[cfg(test)]
pub(crate) fn requests_for_tests(
    key: ApiKey,
    v: i16,
) -> Vec<cairn_protocol::kafka_protocol::messages::RequestKind> {
    let states = vec!["Stable".to_string(), "Empty".to_string()];
    match key {
        ApiKey::FindCoordinator => vec![find_coordinator_request(v, "g").into()],
        ApiKey::ListGroups if v >= 4 => vec![
            list_groups_request(v, &[]).into(),
            list_groups_request(v, &states).into(),
        ],
        ApiKey::ListGroups => vec![list_groups_request(v, &[]).into()],
        ApiKey::DescribeGroups => vec![describe_groups_request(v, "g").into()],
        ApiKey::DeleteGroups => vec![delete_groups_request(v, "g").into()],
        ApiKey::OffsetCommit => vec![offset_commit_request(v, "g", "t", &[(0, 5), (1, 7)]).into()],
        ApiKey::OffsetFetch => vec![
            offset_fetch_request(v, "g", None).into(),
            offset_fetch_request(v, "g", Some(("t", &[0, 1]))).into(),
        ],
        other => panic!("no group request builder for {other:?}"),
    }
}

#[cfg(test)]
mod tests;
