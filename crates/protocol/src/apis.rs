//! The one table of Kafka APIs Cairn serves, and the version range it advertises for each.
//!
//! ApiVersions answers from this table, [`crate::request::parse_request`] refuses anything
//! outside it, and [`crate::response::encode_response`] refuses to write a version it does not
//! list: adding an API or widening a range is one line here (plus its handler and, for a
//! request, its wire shape in `shape`).
//!
//! Every range lies inside what kafka-protocol 0.18 can decode (`ApiKey::valid_versions()`,
//! checked by a test). Kafka 4.0 removed the oldest versions of several APIs (KIP-896), and
//! kafka-protocol 0.18 follows it, so some minimums are above 0; every client that speaks
//! to Kafka 4 speaks these. The maximums stop where a newer version would oblige the broker to
//! something Cairn does not do yet: topic IDs in place of names, tiered storage semantics,
//! transaction protocol v2, and so on.

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
    // v3 (transactional id, v2 record batches only) is kafka-protocol's and Kafka 4's minimum;
    // v7 allows zstd, v9 is flexible, v10 (KIP-951) adds leader-discovery tagged fields the
    // broker may leave empty, v11 the TRANSACTION_ABORTABLE code (KIP-890), and v12 changes
    // only transactional semantics gated on the `transaction.version` feature, which Cairn
    // does not finalize. v13 names topics by ID: stop at 12.
    api(ApiKey::Produce, 3, 12),
    // v4 is kafka-protocol's minimum; v7 adds fetch sessions (KIP-227: the broker may answer
    // sessionless), v11 rack-aware fetch (KIP-392, ignorable), v12 flexible + diverging-epoch
    // detection. v13 replaces topic names by topic IDs: stop at 12 until Cairn has topic IDs.
    api(ApiKey::Fetch, 4, 12),
    // v1 is kafka-protocol's minimum. v8 lets clients ask for -4 (earliest local offset) and
    // v9 for -5 (latest tiered offset, KIP-1005): without tiered storage the broker answers -4
    // like -2 (log start) and -5 with offset -1. v10 adds a timeout for tiered lookups.
    api(ApiKey::ListOffsets, 1, 9),
    // All versions address topics by name (v10+ also returns topic IDs, nil when absent;
    // v12 lets a request name topics by ID, answerable with UNKNOWN_TOPIC_ID). v13 adds a
    // top-level error code for KIP-1102 rebootstrap: not yet.
    api(ApiKey::Metadata, 0, 12),
    // v0–v2 are what old clients (and librdkafka after an error-35 fallback) send; v3
    // (KIP-511) is flexible and names the client software. v4 (KAFKA-17011) changes what
    // SupportedFeatures may contain; Cairn advertises no features yet: stop at 3.
    api(ApiKey::ApiVersions, 0, 3),
    // v2 is kafka-protocol's minimum (Kafka 4 dropped v0–v1); v5 returns topic configs, v7
    // a topic ID (nil until Cairn has them).
    api(ApiKey::CreateTopics, 2, 7),
    // v1 is kafka-protocol's minimum; v6 allows naming topics by ID, answerable with
    // UNKNOWN_TOPIC_ID while Cairn has none; deletion by name works in every version.
    api(ApiKey::DeleteTopics, 1, 6),
    // All versions of kafka-protocol (v0–v2); v2 is flexible.
    api(ApiKey::DeleteRecords, 0, 2),
    // v0–v4 cover idempotent producers and epoch bumps (KIP-360, v3). v5 belongs to
    // transactions v2 (KIP-890) and v6 to two-phase commit (KIP-939): not yet.
    api(ApiKey::InitProducerId, 0, 4),
    // v2 is kafka-protocol's minimum (Kafka 4 dropped v0–v1); v4 is flexible, the last.
    api(ApiKey::OffsetForLeaderEpoch, 2, 4),
    // v1 is kafka-protocol's minimum (Kafka 4 dropped v0); v3 adds documentation, v4 flexible.
    api(ApiKey::DescribeConfigs, 1, 4),
    // All versions of kafka-protocol (v0–v3); v2 is flexible.
    api(ApiKey::CreatePartitions, 0, 3),
    // All versions of kafka-protocol (v0–v1); v1 is flexible.
    api(ApiKey::IncrementalAlterConfigs, 0, 1),
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
    };
}

kind_keys!(
    Produce,
    Fetch,
    ListOffsets,
    Metadata,
    ApiVersions,
    CreateTopics,
    DeleteTopics,
    DeleteRecords,
    InitProducerId,
    OffsetForLeaderEpoch,
    DescribeConfigs,
    CreatePartitions,
    IncrementalAlterConfigs,
    DescribeCluster,
);

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_range_is_decodable_by_kafka_protocol() {
        for a in SUPPORTED_APIS {
            let kp = a.key.valid_versions();
            assert!(a.min <= a.max, "{:?}: empty range", a.key);
            assert!(
                kp.min <= a.min && a.max <= kp.max,
                "{:?}: advertised {}..={} but kafka-protocol decodes {}",
                a.key,
                a.min,
                a.max,
                kp
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
        assert_eq!(supported(ApiKey::Fetch), Some((4, 12)));
        assert_eq!(supported(ApiKey::JoinGroup), None);
        assert!(is_supported(ApiKey::Produce, 3));
        assert!(!is_supported(ApiKey::Produce, 13), "v13 uses topic IDs");
        assert!(!is_supported(ApiKey::Produce, 2));
    }
}
