use super::*;
use crate::cli::cluster::metadata_request;
use crate::cli::consume::fetch_request;
use crate::cli::offsets::{list_offsets_request, EARLIEST};
use crate::cli::produce::produce_request;
use crate::cli::topic::{
    create_partitions_request, create_topics_request, delete_topics_request,
    describe_configs_request, incremental_alter_configs_request,
};
use bytes::{Buf as _, Bytes};
use cairn_protocol::kafka_protocol::messages::metadata_response::{
    MetadataResponseBroker, MetadataResponseTopic,
};
use cairn_protocol::kafka_protocol::messages::{BrokerId, MetadataResponse};
use cairn_protocol::{
    api_versions_response, api_versions_unsupported, encode_response, parse_request, supported,
};
use tokio::net::TcpListener;

#[test]
fn version_is_the_highest_both_sides_speak() {
    assert_eq!(select_version((3, 12), Some((3, 12))), Some(12));
    assert_eq!(
        select_version((3, 12), Some((0, 13))),
        Some(12),
        "client caps"
    );
    assert_eq!(
        select_version((3, 12), Some((0, 9))),
        Some(9),
        "broker caps"
    );
    assert_eq!(select_version((3, 12), Some((5, 20))), Some(12));
    assert_eq!(select_version((0, 3), Some((0, 0))), Some(0));
    assert_eq!(
        select_version((3, 12), Some((0, 2))),
        None,
        "broker too old"
    );
    assert_eq!(
        select_version((3, 12), Some((13, 15))),
        None,
        "broker too new"
    );
    assert_eq!(select_version((3, 12), None), None, "API not served");
}

#[test]
fn client_table_lies_inside_kafka_protocol() {
    let mut keys: Vec<i16> = Vec::new();
    for a in CLIENT_APIS {
        let valid = a.key.valid_versions();
        assert!(a.min <= a.max, "{:?}", a.key);
        assert!(
            valid.min <= a.min && a.max <= valid.max,
            "{:?}: {}..={} outside kafka-protocol's {valid}",
            a.key,
            a.min,
            a.max
        );
        keys.push(a.key as i16);
    }
    let mut sorted = keys.clone();
    sorted.sort_unstable();
    sorted.dedup();
    assert_eq!(keys, sorted, "in key order, no duplicates");
    // Against Cairn, every API the CLI uses is spoken at the CLI's highest version.
    for a in CLIENT_APIS {
        assert_eq!(
            select_version((a.min, a.max), supported(a.key)),
            Some(a.max),
            "{:?}",
            a.key
        );
    }
}

/// Every request the CLI builds, at version `v` of its API.
fn requests_at(key: ApiKey, v: i16) -> Vec<RequestKind> {
    let configs = [("retention.ms".to_string(), "1000".to_string())];
    let batch = (0, Bytes::from_static(b"not checked by the request parser"));
    match key {
        ApiKey::Produce => vec![
            produce_request(v, "t", -1, 30_000, std::slice::from_ref(&batch)).into(),
            produce_request(v, "t", 0, 30_000, &[batch.clone(), (1, batch.1.clone())]).into(),
        ],
        ApiKey::Fetch => {
            vec![fetch_request(v, "t", &[(0, 5, 1 << 20), (2, 0, 1 << 20)], 500).into()]
        }
        ApiKey::ListOffsets => {
            vec![list_offsets_request(v, "t", &[(0, EARLIEST), (1, 1_700_000_000_000)]).into()]
        }
        ApiKey::Metadata => vec![
            metadata_request(v, None).into(),
            metadata_request(v, Some(&["t"])).into(),
        ],
        ApiKey::ApiVersions => vec![api_versions_request(v).into()],
        ApiKey::CreateTopics => vec![create_topics_request(v, "t", 3, 1, &configs, 30_000).into()],
        ApiKey::DeleteTopics => vec![delete_topics_request(v, "t", 30_000).into()],
        ApiKey::DescribeConfigs => vec![
            describe_configs_request(v, 2, "t").into(),
            describe_configs_request(v, 4, "1").into(),
        ],
        ApiKey::CreatePartitions => vec![create_partitions_request(v, "t", 4, 30_000).into()],
        ApiKey::IncrementalAlterConfigs => vec![incremental_alter_configs_request(
            v,
            2,
            "t",
            &configs,
            &["cleanup.policy".to_string()],
        )
        .into()],
        // The group APIs' builders live in `group`; its tests encode them at every version.
        ApiKey::FindCoordinator
        | ApiKey::ListGroups
        | ApiKey::DescribeGroups
        | ApiKey::DeleteGroups
        | ApiKey::OffsetCommit
        | ApiKey::OffsetFetch => crate::cli::group::requests_for_tests(key, v),
        ApiKey::JoinGroup | ApiKey::SyncGroup | ApiKey::Heartbeat | ApiKey::LeaveGroup => {
            crate::cli::member::requests_for_tests(key, v)
        }
        other => panic!("no builder for {other:?}"),
    }
}

/// Each builder fills its fields so that kafka-protocol encodes it at every version in the
/// client's range (it refuses fields a version lacks), and Cairn's own request parser reads
/// back exactly what was built.
#[test]
fn every_request_encodes_at_every_client_version() {
    for a in CLIENT_APIS {
        for v in a.min..=a.max {
            for body in requests_at(a.key, v) {
                let frame = encode_request(a.key, v, 7, Some(CLIENT_ID), &body)
                    .unwrap_or_else(|e| panic!("{:?} v{v}: {e}", a.key));
                let mut frame = frame.freeze();
                assert_eq!(frame.get_i32() as usize, frame.len());
                if !cairn_protocol::apis::is_supported(a.key, v) {
                    continue;
                }
                let request =
                    parse_request(frame).unwrap_or_else(|e| panic!("{:?} v{v}: {e}", a.key));
                assert_eq!(request.correlation_id, 7);
                assert_eq!(request.client_id.as_deref(), Some(CLIENT_ID));
                assert_eq!(request.body, body, "{:?} v{v}", a.key);
            }
        }
    }
}

#[test]
fn api_versions_fallback_follows_the_brokers_hint() {
    let mut response = ApiVersionsResponse::default();
    assert_eq!(api_versions_fallback(&response, 3), 0, "no hint: v0");
    response.api_keys = vec![
        cairn_protocol::kafka_protocol::messages::api_versions_response::ApiVersion::default()
            .with_api_key(ApiKey::ApiVersions as i16)
            .with_min_version(0)
            .with_max_version(2),
    ];
    assert_eq!(api_versions_fallback(&response, 3), 2);
    response.api_keys[0].max_version = 7;
    assert_eq!(
        api_versions_fallback(&response, 3),
        2,
        "never the refused version again"
    );
}

#[test]
fn io_errors_read_as_short_phrases() {
    use std::io::{Error, ErrorKind};
    assert_eq!(
        describe_io(&Error::from(ErrorKind::ConnectionRefused)),
        "connection refused"
    );
    assert_eq!(
        describe_io(&Error::from_raw_os_error(111)),
        "connection refused"
    );
    assert_eq!(describe_io(&Error::other("Something Odd")), "something Odd");
}

#[tokio::test]
async fn refused_connections_and_bad_addresses_say_so() {
    let listener = TcpListener::bind("127.0.0.1:0").await.expect("bind");
    let addr = listener.local_addr().expect("addr").to_string();
    drop(listener);
    let err = Connection::open(&addr, Duration::from_secs(5))
        .await
        .expect_err("nothing listens");
    let text = format!("{err:#}");
    assert!(
        text.starts_with(&format!("cannot connect to {addr}: connection refused"))
            && text.contains("is `cairn serve` running"),
        "{text}"
    );
    for bad in ["localhost", "host:", ":9092", "host:0", "host:99999"] {
        let err = Connection::open(bad, Duration::from_secs(5))
            .await
            .expect_err(bad);
        assert!(
            format!("{err:#}").contains("expected HOST:PORT"),
            "{bad}: {err:#}"
        );
    }
}

/// A broker on `listener` for one connection: ApiVersions v3 refused with error 35 when
/// `refuse_v3`, otherwise answered from Cairn's table; Metadata answered with one broker
/// and topic. Returns the (api key, version) of each request it saw.
async fn fake_broker(listener: TcpListener, refuse_v3: bool) -> Vec<(ApiKey, i16)> {
    let (mut stream, _) = listener.accept().await.expect("accept");
    let mut buf = BytesMut::new();
    let mut seen = Vec::new();
    loop {
        let frame = match read_frame(&mut stream, &mut buf).await {
            Ok(frame) => frame,
            Err(_) => return seen,
        };
        let request = parse_request(frame).expect("the CLI's request parses");
        seen.push((request.api_key, request.api_version));
        let (key, v, id) = (request.api_key, request.api_version, request.correlation_id);
        let out = match key {
            ApiKey::ApiVersions if refuse_v3 && v == 3 => api_versions_unsupported(id),
            ApiKey::ApiVersions => {
                let body = ResponseKind::ApiVersions(api_versions_response(v));
                encode_response(id, key, v, &body).expect("encode")
            }
            ApiKey::Metadata => {
                let mut response = MetadataResponse::default();
                response.brokers = vec![MetadataResponseBroker::default()
                    .with_node_id(BrokerId(1))
                    .with_host(StrBytes::from_static_str("127.0.0.1"))
                    .with_port(1)];
                response.topics = vec![MetadataResponseTopic::default()
                    .with_name(Some(crate::cli::cluster::topic_name("t")))];
                encode_response(id, key, v, &ResponseKind::Metadata(response)).expect("encode")
            }
            other => panic!("fake broker got {other:?}"),
        };
        stream.write_all(&out).await.expect("write");
    }
}

#[tokio::test]
async fn handshake_falls_back_and_versions_are_negotiated() {
    for refuse_v3 in [false, true] {
        let listener = TcpListener::bind("127.0.0.1:0").await.expect("bind");
        let addr = listener.local_addr().expect("addr").to_string();
        let broker = tokio::spawn(fake_broker(listener, refuse_v3));
        let mut conn = Connection::open(&addr, Duration::from_secs(5))
            .await
            .expect("handshake");
        assert_eq!(conn.version(ApiKey::Metadata).expect("metadata"), 12);
        assert_eq!(conn.version(ApiKey::Produce).expect("produce"), 12);
        for _ in 0..3 {
            let response = conn
                .call(|v| metadata_request(v, Some(&["t"])))
                .await
                .expect("metadata call");
            assert_eq!(response.brokers.len(), 1);
            assert_eq!(response.topics.len(), 1);
        }
        drop(conn);
        let seen = broker.await.expect("broker task");
        let mut expected = vec![(ApiKey::ApiVersions, 3)];
        if refuse_v3 {
            // Cairn's error-35 reply lists ApiVersions up to v3, so the client steps to v2.
            expected.push((ApiKey::ApiVersions, 2));
        }
        expected.extend([(ApiKey::Metadata, 12); 3]);
        assert_eq!(seen, expected, "refuse_v3 = {refuse_v3}");
    }
}

#[tokio::test]
async fn oversized_and_silent_responses_fail_cleanly() {
    // A "broker" that declares a 1 GiB response frame.
    let listener = TcpListener::bind("127.0.0.1:0").await.expect("bind");
    let addr = listener.local_addr().expect("addr").to_string();
    tokio::spawn(async move {
        let (mut stream, _) = listener.accept().await.expect("accept");
        let mut buf = BytesMut::new();
        let _ = read_frame(&mut stream, &mut buf).await;
        stream
            .write_all(&(1i32 << 30).to_be_bytes())
            .await
            .expect("write");
        let mut sink = [0u8; 64];
        while stream.read(&mut sink).await.is_ok_and(|n| n > 0) {}
    });
    let err = Connection::open(&addr, Duration::from_secs(5))
        .await
        .expect_err("too large");
    assert!(format!("{err:#}").contains("exceeds the limit"), "{err:#}");
    assert!(
        format!("{err:#}").ends_with("(is this a Kafka listener?)"),
        "{err:#}"
    );

    // A "broker" that never answers.
    let listener = TcpListener::bind("127.0.0.1:0").await.expect("bind");
    let addr = listener.local_addr().expect("addr").to_string();
    tokio::spawn(async move {
        let (mut stream, _) = listener.accept().await.expect("accept");
        let mut sink = [0u8; 64];
        while stream.read(&mut sink).await.is_ok_and(|n| n > 0) {}
    });
    let err = Connection::open(&addr, Duration::from_millis(200))
        .await
        .expect_err("silent");
    assert_eq!(
        format!("{err:#}"),
        format!("ApiVersions request to {addr} timed out after 200 ms")
    );
}

#[tokio::test]
async fn an_answer_to_another_request_is_named_by_its_correlation_id() {
    // A "broker" that answers the handshake, then answers Metadata with a stale ApiVersions
    // answer (another request's correlation id and body).
    let listener = TcpListener::bind("127.0.0.1:0").await.expect("bind");
    let addr = listener.local_addr().expect("addr").to_string();
    tokio::spawn(async move {
        let (mut stream, _) = listener.accept().await.expect("accept");
        let mut buf = BytesMut::new();
        while let Ok(frame) = read_frame(&mut stream, &mut buf).await {
            let request = parse_request(frame).expect("the CLI's request parses");
            let (key, v, id) = (request.api_key, request.api_version, request.correlation_id);
            let body = ResponseKind::ApiVersions(api_versions_response(3));
            let out = match key {
                ApiKey::ApiVersions => encode_response(id, key, v, &body),
                _ => encode_response(id + 100, ApiKey::ApiVersions, 3, &body),
            }
            .expect("encode");
            stream.write_all(&out).await.expect("write");
        }
    });
    let mut conn = Connection::open(&addr, Duration::from_secs(5))
        .await
        .expect("handshake");
    let err = conn
        .call(|v| metadata_request(v, Some(&["t"])))
        .await
        .expect_err("a mismatched answer");
    assert_eq!(
        format!("{err:#}"),
        format!("broker {addr} answered Metadata with correlation id 101, expected 1")
    );
}
