//! Produce: translate a Produce request into the node's produce path (`node::produce`: the
//! checks, the topic's rules and the append) and answer per `acks`. What is Kafka's own
//! stays here: `acks` and transactional-id checks, message sets of Produce v0–v2
//! (up-converted to one v2 batch), the compression rules of the request version, and the
//! response's shape per version.

use bytes::Bytes;
use cairn_partition::Acks;
use cairn_protocol::kafka_protocol::messages::produce_response::{
    BatchIndexAndErrorMessage, LeaderIdAndEpoch, NodeEndpoint, PartitionProduceResponse,
    TopicProduceResponse,
};
use cairn_protocol::kafka_protocol::messages::{
    BrokerId, ProduceRequest, ProduceResponse, TopicName,
};
use cairn_protocol::message_sets;
use cairn_protocol::records::check_produce_compression;
use cairn_protocol::{validate_produce_records, ErrorCode};

use super::str_bytes;
use crate::node::produce::{Appended, PendingAppend, ProduceRefusal, ReadyBatches};
use crate::node::Node;

/// A produce whose batches are queued on their partitions (or refused), waiting for
/// acknowledgements.
pub(crate) struct Enqueued {
    version: i16,
    no_response: bool,
    topics: Vec<(TopicName, Vec<Slot>)>,
}

enum Slot {
    Answered(PartitionProduceResponse),
    /// The partition and the acknowledgement to wait for.
    Waiting(i32, PendingAppend),
}

fn response(
    version: i16,
    index: i32,
    result: Result<Appended, ProduceRefusal>,
) -> PartitionProduceResponse {
    let mut r = PartitionProduceResponse::default();
    r.index = index;
    r.base_offset = -1;
    r.log_append_time_ms = -1;
    r.log_start_offset = -1;
    match result {
        Ok(appended) => {
            r.base_offset = appended.base_offset as i64;
            if version >= 2 {
                r.log_append_time_ms = appended.append_time.unwrap_or(-1);
            }
            if version >= 5 {
                r.log_start_offset = appended.log_start_offset as i64;
            }
        }
        Err(refusal) => {
            let ProduceRefusal {
                code,
                message,
                records,
            } = refusal;
            if code != ErrorCode::NotLeaderOrFollower {
                tracing::debug!(partition = index, error = ?code, message, "produce refused");
            }
            r.error_code = code.code();
            if version >= 8 {
                r.record_errors = records
                    .into_iter()
                    .map(|i| {
                        let mut e = BatchIndexAndErrorMessage::default();
                        e.batch_index = i;
                        e.batch_index_error_message = message.as_deref().map(str_bytes);
                        e
                    })
                    .collect();
                r.error_message = message.map(|m| str_bytes(&m));
            }
        }
    }
    r
}

/// Validates every partition's records and queues them on the partitions, in the order the
/// request lists them. The connection calls this for its requests one at a time, in request
/// order, so a client's pipelined produces reach each partition in the order it sent them
/// (as Kafka, which handles a connection's requests one at a time, guarantees).
pub(crate) async fn enqueue(ctx: &Node, version: i16, req: ProduceRequest) -> Enqueued {
    let acks = Acks::from_kafka(req.acks);
    let transactional = req.transactional_id.is_some();
    let mut topics = Vec::with_capacity(req.topic_data.len());
    for topic in req.topic_data {
        let name = topic.name.0.as_str().to_string();
        let mut slots = Vec::with_capacity(topic.partition_data.len());
        for p in topic.partition_data {
            let prepared = prepare(ctx, version, &name, p.index, p.records, acks, transactional);
            let slot = match prepared {
                Err(refusal) => Slot::Answered(response(version, p.index, Err(refusal))),
                Ok((ready, acks)) => match ready.enqueue(acks).await {
                    Ok(pending) => Slot::Waiting(p.index, pending),
                    Err(refusal) => Slot::Answered(response(version, p.index, Err(refusal))),
                },
            };
            slots.push(slot);
        }
        topics.push((topic.name, slots));
    }
    Enqueued {
        version,
        no_response: acks == Some(Acks::None),
        topics,
    }
}

impl Enqueued {
    /// Waits for every partition's acknowledgement; `None` for acks=0 (no response).
    pub(crate) async fn finish(self, ctx: &Node) -> Option<ProduceResponse> {
        let version = self.version;
        let mut resp = ProduceResponse::default();
        for (name, slots) in self.topics {
            let answers = slots.into_iter().map(|slot| async move {
                match slot {
                    Slot::Answered(r) => r,
                    Slot::Waiting(index, pending) => {
                        response(version, index, pending.wait(&ctx.metrics).await)
                    }
                }
            });
            let mut t = TopicProduceResponse::default();
            t.name = name;
            t.partition_responses = futures_util::future::join_all(answers).await;
            resp.responses.push(t);
        }
        if self.no_response {
            return None;
        }
        if version >= 10 {
            leader_hints(ctx, &mut resp);
        }
        Some(resp)
    }
}

/// KIP-951: a partition answered NOT_LEADER_OR_FOLLOWER names its current leader and epoch,
/// and the response carries that leader's endpoint, so the client retries there without a
/// Metadata round trip (Produce v10+).
fn leader_hints(ctx: &Node, resp: &mut ProduceResponse) {
    let mut endpoints: Vec<i32> = Vec::new();
    for t in &mut resp.responses {
        for p in &mut t.partition_responses {
            if p.error_code != ErrorCode::NotLeaderOrFollower.code() {
                continue;
            }
            let Ok((topic, handle)) = ctx.partition(t.name.0.as_str(), p.index) else {
                continue;
            };
            let view = ctx.partition_view(topic.id, p.index.max(0) as usize, &handle);
            let Some(leader) = view.leader else { continue };
            let mut current = LeaderIdAndEpoch::default();
            current.leader_id = BrokerId(leader);
            current.leader_epoch = view.leader_epoch;
            p.current_leader = current;
            if !endpoints.contains(&leader) {
                endpoints.push(leader);
            }
        }
    }
    for id in endpoints {
        if let Some((host, port)) = ctx.endpoint(id) {
            let mut e = NodeEndpoint::default();
            e.node_id = BrokerId(id);
            e.host = str_bytes(&host);
            e.port = i32::from(port);
            e.rack = None;
            resp.node_endpoints.push(e);
        }
    }
}

/// Checks one partition's part of the request; returns its batches, with the topic's rules
/// applied, and the acks to queue them with.
fn prepare(
    ctx: &Node,
    version: i16,
    topic: &str,
    index: i32,
    records: Option<Bytes>,
    acks: Option<Acks>,
    transactional: bool,
) -> Result<(ReadyBatches, Acks), ProduceRefusal> {
    let acks = acks.ok_or((
        ErrorCode::InvalidRequiredAcks,
        Some("acks must be 0, 1 or -1".into()),
    ))?;
    if transactional {
        return Err((
            ErrorCode::InvalidRequest,
            Some("transactions are not supported yet".into()),
        )
            .into());
    }
    let (t, handle) = ctx.produce_target(topic, index)?;
    let records = records.ok_or((ErrorCode::InvalidRecord, Some("null records".into())))?;
    let limits = ctx.record_limits(&t);
    let refuse = |e: cairn_protocol::RecordError| (ErrorCode::from(&e), Some(e.to_string()));
    // Produce v0–v2 carry a message set of format 0/1: up-converted to one v2 batch, which
    // is then checked like any other.
    let records = if version < 3 {
        message_sets::upconvert(&records, &limits).map_err(refuse)?
    } else {
        records
    };
    let batches = validate_produce_records(&records, &limits).map_err(refuse)?;
    check_produce_compression(version, &batches).map_err(refuse)?;
    Ok((ctx.prepare_batches(&t, handle, index, batches)?, acks))
}
