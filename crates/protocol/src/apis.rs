//! The one table of Kafka APIs Cairn serves, and the version range it advertises for each.
//!
//! ApiVersions answers from this table, [`crate::request::parse_request`] refuses anything
//! outside it, and [`crate::response::encode_response`] refuses to write a version it does not
//! list: adding an API or widening a range is one line here (plus its handler and, for a
//! request, its wire shape in `shape`).
//!
//! Every range lies inside what kafka-protocol 0.18 can decode (`ApiKey::valid_versions()`)
//! or what `legacy` reads below it (checked by a test). Kafka 4.0 removed the oldest
//! versions of several APIs (KIP-896), and kafka-protocol 0.18 follows it. Where such a
//! version carries no records and differs from the next by a field or two, Cairn serves it
//! anyway (`legacy`), for the old clients that still send it. Versions that carry message
//! format v0/v1 (Produce v0–v2, Fetch v0–v3) are served by converting their message sets
//! (`message_sets`), where Kafka 4 refuses them: the Go client Debian ships needs them. The
//! maximums stop
//! where a newer version would oblige the broker to something Cairn does not do yet: topic
//! IDs in place of names, tiered storage semantics, transaction protocol v2, and so on.

use kafka_protocol::messages::{ApiKey, RequestKind, ResponseKind};

/// One API and the inclusive version range Cairn advertises for it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct SupportedApi {
    /// The API.
    pub key: ApiKey,
    /// Lowest version served.
    pub min: i16,
    /// Highest version served.
    pub max: i16,
}

const fn api(key: ApiKey, min: i16, max: i16) -> SupportedApi {
    SupportedApi { key, min, max }
}

/// The APIs Cairn serves, in api-key order (the order ApiVersions lists them in).
pub const SUPPORTED_APIS: &[SupportedApi] = &[
    // v0–v2 carry message sets of format 0/1, up-converted to a v2 batch before validation
    // (`message_sets`; Kafka 4 refuses them, but Debian's kafka-go 0.2.1 sends nothing newer,
    // and older librdkafka enables compressed produce only if v0 is listed, KAFKA-18659). v3
    // brings the transactional id and v2 record batches. v7 allows zstd, v9 is flexible, v10 (KIP-951)
    // adds leader-discovery tagged fields the broker may leave empty, v11 the
    // TRANSACTION_ABORTABLE code (KIP-890), and v12 changes only transactional semantics
    // gated on the `transaction.version` feature, which Cairn does not finalize. v13 names
    // topics by ID: stop at 12.
    api(ApiKey::Produce, 0, 12),
    // v0–v3 answer message sets of format 0 (v0–v1) or 1 (v2–v3), down-converted from the
    // stored batches (`message_sets`; Kafka 4 dropped them, Debian's kafka-go 0.2.1 needs
    // v2). v4 is kafka-protocol's minimum; v7 adds fetch sessions (KIP-227: the broker may
    // answer sessionless), v11 rack-aware fetch (KIP-392, ignorable), v12 flexible +
    // diverging-epoch detection. v13 replaces topic names by topic IDs: stop at 12.
    api(ApiKey::Fetch, 0, 12),
    // v0 (Kafka 4 dropped it; `legacy` reads it) answers a list of at most max_num_offsets
    // offsets: Cairn's holds the one offset v1 would answer. v8 lets clients ask for -4
    // (earliest local offset) and v9 for -5 (latest tiered offset, KIP-1005): without tiered
    // storage the broker answers -4 like -2 (log start) and -5 with offset -1. v10 adds a
    // timeout for tiered lookups.
    api(ApiKey::ListOffsets, 0, 9),
    // All versions address topics by name (v10+ also returns topic IDs, nil when absent;
    // v12 lets a request name topics by ID, answerable with UNKNOWN_TOPIC_ID). v13 adds a
    // top-level error code for KIP-1102 rebootstrap: not yet.
    api(ApiKey::Metadata, 0, 12),
    // v0 (no generation or member: a simple commit; Kafka stored it in ZooKeeper, Cairn in
    // __consumer_offsets like every other commit) and v1 (a per-partition commit timestamp)
    // are read by `legacy` (Kafka 4 dropped both). v2–v4 carry a per-commit
    // retention time (-1: the broker's default; v5 dropped it), v6 a leader epoch, v7 a
    // group instance id, v8 is flexible. v9 (KIP-848) is the v8 request for either group
    // protocol; for classic groups only an error differs: a commit with a generation to a
    // group that does not exist gets GROUP_ID_NOT_FOUND where v8 gets ILLEGAL_GENERATION.
    // v10 names topics by ID: stop at 9.
    api(ApiKey::OffsetCommit, 0, 9),
    // v1 is kafka-protocol's minimum (Kafka 4 dropped v0, the ZooKeeper-backed one); v2
    // allows a null topic list (all topics) and a top-level error, v7 `require_stable`
    // (nothing to wait for without transactional offsets), v8 several groups per request.
    // v9 adds a member id and epoch, checked only for KIP-848 consumer groups, which Cairn
    // does not have: classic groups ignore them. v10 names topics by ID: stop at 9.
    api(ApiKey::OffsetFetch, 1, 9),
    // v0–v2 look up one group coordinator, v3 is flexible, v4 batches keys (KIP-699). v5
    // changes nothing on the wire: it only lets the broker answer TRANSACTION_ABORTABLE
    // (KIP-890), which Cairn never sends, so it is as safe as v4 (Produce v11 is the same
    // case). v6 admits share-group keys (KIP-932): stop at 5.
    api(ApiKey::FindCoordinator, 0, 5),
    // All versions of kafka-protocol (v0–v9). v0 has no rebalance timeout (the session
    // timeout serves), v4 makes a new member rejoin with its assigned id (MEMBER_ID_REQUIRED),
    // v5 adds static membership, v6 is flexible, v7 returns the protocol type, v8 a join
    // reason (KIP-800), v9 lets the broker tell a static leader to skip assignment (KIP-814;
    // the broker may always say no).
    api(ApiKey::JoinGroup, 0, 9),
    // All versions of kafka-protocol (v0–v4); v3 adds the group instance id, v4 is flexible.
    api(ApiKey::Heartbeat, 0, 4),
    // All versions of kafka-protocol (v0–v5); v3 removes a batch of members (static
    // membership), v4 is flexible, v5 adds a per-member reason (KIP-800).
    api(ApiKey::LeaveGroup, 0, 5),
    // All versions of kafka-protocol (v0–v5); v3 adds the group instance id, v4 is flexible,
    // v5 (KIP-559) sends protocol type and name, checked against the group's.
    api(ApiKey::SyncGroup, 0, 5),
    // v0–v5 of kafka-protocol's v0–v6: v3 can ask for authorized operations, v4 returns
    // instance ids, v5 is flexible. v6
    // (KIP-1043) answers an unknown group with GROUP_ID_NOT_FOUND and an error message
    // instead of an empty Dead group: a change of meaning, so stop at 5.
    api(ApiKey::DescribeGroups, 0, 5),
    // All versions of kafka-protocol (v0–v5); v3 is flexible, v4 filters by state
    // (KIP-518), v5 by type (KIP-848: every Cairn group is "classic").
    api(ApiKey::ListGroups, 0, 5),
    // v0–v2 are what old clients (and librdkafka after an error-35 fallback) send; v3
    // (KIP-511) is flexible and names the client software. v4 (KAFKA-17011) changes what
    // SupportedFeatures may contain; Cairn advertises no features yet: stop at 3.
    api(ApiKey::ApiVersions, 0, 3),
    // v0 (no validate_only, no error message) and v1 are read by `legacy` (Kafka 4 dropped
    // them); v5 returns topic configs, v7 a topic ID (nil until Cairn has them).
    api(ApiKey::CreateTopics, 0, 7),
    // v0 (answers without a throttle time) is read by `legacy`; v6 allows naming topics by
    // ID, answerable with UNKNOWN_TOPIC_ID while Cairn has none; deletion by name works in
    // every version.
    api(ApiKey::DeleteTopics, 0, 6),
    // All versions of kafka-protocol (v0–v2); v2 is flexible.
    api(ApiKey::DeleteRecords, 0, 2),
    // v0–v4 cover idempotent producers and epoch bumps (KIP-360, v3). v5 belongs to
    // transactions v2 (KIP-890) and v6 to two-phase commit (KIP-939): not yet.
    api(ApiKey::InitProducerId, 0, 4),
    // v0 (answers no epoch) and v1 are read by `legacy` (Kafka 4 dropped them); v2 adds the
    // current-epoch fence, v4 is flexible, the last.
    api(ApiKey::OffsetForLeaderEpoch, 0, 4),
    // v0 (is_default instead of a source, no synonyms) is read by `legacy` (Kafka 4 dropped
    // it); v1 adds sources and synonyms, v3 documentation, v4 is flexible.
    api(ApiKey::DescribeConfigs, 0, 4),
    // All versions (v0–v2); v2 is flexible. The legacy API replaces a resource's whole set
    // of dynamic configs; librdkafka's and Sarama's `AlterConfigs` send it.
    api(ApiKey::AlterConfigs, 0, 2),
    // v0 is v1's layout (v1 only changed throttling, KIP-219) and is read as v1; v2 is
    // flexible, v3 adds a top-level error code, v4 the volume's total and usable bytes.
    api(ApiKey::DescribeLogDirs, 0, 4),
    // All versions of kafka-protocol (v0–v3); v2 is flexible.
    api(ApiKey::CreatePartitions, 0, 3),
    // All versions of kafka-protocol (v0–v2); v2 is flexible.
    api(ApiKey::DeleteGroups, 0, 2),
    // All versions of kafka-protocol (v0–v1); v1 is flexible.
    api(ApiKey::IncrementalAlterConfigs, 0, 1),
    // The only version (KIP-496).
    api(ApiKey::OffsetDelete, 0, 0),
    // v1 adds the endpoint type (KIP-919). v2 (KIP-1073) asks to include fenced brokers,
    // which a Cairn cluster has no notion of yet.
    api(ApiKey::DescribeCluster, 0, 1),
];

/// The version range Cairn advertises for `key`, or `None` if it does not serve it.
pub fn supported(key: ApiKey) -> Option<(i16, i16)> {
    SUPPORTED_APIS
        .iter()
        .find(|a| a.key == key)
        .map(|a| (a.min, a.max))
}

/// Whether Cairn serves `key` at `version`.
pub fn is_supported(key: ApiKey, version: i16) -> bool {
    supported(key).is_some_and(|(min, max)| (min..=max).contains(&version))
}

/// Maps request and response bodies to their API, for the APIs in [`SUPPORTED_APIS`] (a test
/// keeps the two lists in step); `None` for any other.
macro_rules! kind_keys {
    ($($name:ident),* $(,)?) => {
        /// The API of a request body, if Cairn serves it.
        pub(crate) fn request_kind_key(body: &RequestKind) -> Option<ApiKey> {
            match body {
                $(RequestKind::$name(_) => Some(ApiKey::$name),)*
                _ => None,
            }
        }

        /// The API of a response body, if Cairn serves it.
        pub(crate) fn response_kind_key(body: &ResponseKind) -> Option<ApiKey> {
            match body {
                $(ResponseKind::$name(_) => Some(ApiKey::$name),)*
                _ => None,
            }
        }

        /// An empty response body of `key`, if Cairn serves it (for table-wide tests).
        #[cfg(test)]
        pub(crate) fn default_response(key: ApiKey) -> Option<ResponseKind> {
            match key {
                $(ApiKey::$name => Some(ResponseKind::$name(Default::default())),)*
                _ => None,
            }
        }
    };
}

kind_keys!(
    Produce,
    Fetch,
    ListOffsets,
    Metadata,
    OffsetCommit,
    OffsetFetch,
    FindCoordinator,
    JoinGroup,
    Heartbeat,
    LeaveGroup,
    SyncGroup,
    DescribeGroups,
    ListGroups,
    ApiVersions,
    CreateTopics,
    DeleteTopics,
    DeleteRecords,
    InitProducerId,
    OffsetForLeaderEpoch,
    DescribeConfigs,
    AlterConfigs,
    DescribeLogDirs,
    CreatePartitions,
    DeleteGroups,
    IncrementalAlterConfigs,
    OffsetDelete,
    DescribeCluster,
);

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_range_is_decodable_by_kafka_protocol_or_legacy() {
        for a in SUPPORTED_APIS {
            let kp = a.key.valid_versions();
            let min = crate::legacy::min_version(a.key);
            assert!(a.min <= a.max, "{:?}: empty range", a.key);
            assert!(
                min <= a.min && a.max <= kp.max,
                "{:?}: advertised {}..={} but Cairn decodes {min}..={}",
                a.key,
                a.min,
                a.max,
                kp.max
            );
        }
    }

    #[test]
    fn table_is_in_key_order_without_duplicates() {
        let keys: Vec<i16> = SUPPORTED_APIS.iter().map(|a| a.key as i16).collect();
        let mut sorted = keys.clone();
        sorted.sort_unstable();
        sorted.dedup();
        assert_eq!(keys, sorted);
    }

    #[test]
    fn lookups() {
        assert_eq!(supported(ApiKey::ApiVersions), Some((0, 3)));
        assert_eq!(supported(ApiKey::Fetch), Some((0, 12)));
        assert_eq!(supported(ApiKey::JoinGroup), Some((0, 9)));
        assert_eq!(supported(ApiKey::OffsetCommit), Some((0, 9)));
        assert_eq!(supported(ApiKey::ListOffsets), Some((0, 9)));
        assert_eq!(supported(ApiKey::AlterConfigs), Some((0, 2)));
        assert_eq!(supported(ApiKey::DescribeLogDirs), Some((0, 4)));
        assert_eq!(supported(ApiKey::OffsetFetch), Some((1, 9)));
        assert_eq!(supported(ApiKey::OffsetDelete), Some((0, 0)));
        assert_eq!(supported(ApiKey::ConsumerGroupHeartbeat), None);
        assert!(
            !is_supported(ApiKey::OffsetCommit, 10),
            "v10 uses topic IDs"
        );
        assert!(!is_supported(ApiKey::OffsetFetch, 0), "v0 is ZooKeeper's");
        assert!(
            !is_supported(ApiKey::FindCoordinator, 6),
            "v6 is for share groups"
        );
        assert!(
            !is_supported(ApiKey::DescribeGroups, 6),
            "v6 changes error semantics"
        );
        assert!(is_supported(ApiKey::Produce, 3));
        assert!(!is_supported(ApiKey::Produce, 13), "v13 uses topic IDs");
        assert!(
            is_supported(ApiKey::Produce, 0),
            "message format 0/1, up-converted"
        );
        assert!(
            is_supported(ApiKey::Fetch, 3),
            "message format 1, down-converted"
        );
    }
}
