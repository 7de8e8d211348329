use super::*;
use crate::apis::SUPPORTED_APIS;
use crate::samples;
use bytes::{BufMut, BytesMut};
use proptest::prelude::*;

/// A frame body (no length prefix) of the sample request.
fn frame(key: ApiKey, version: i16, correlation_id: i32) -> Bytes {
    let mut f = samples::request_frame(key, version, correlation_id).freeze();
    f.advance(4);
    f
}

/// Raw header v1 bytes followed by `body`.
fn raw(key: i16, version: i16, correlation_id: i32, body: &[u8]) -> Bytes {
    let mut b = BytesMut::new();
    b.put_i16(key);
    b.put_i16(version);
    b.put_i32(correlation_id);
    b.put_i16(-1); // null client id
    b.put_slice(body);
    b.freeze()
}

#[test]
fn every_supported_request_round_trips() {
    for a in SUPPORTED_APIS {
        for v in a.min..=a.max {
            let r = parse_request(frame(a.key, v, 77))
                .unwrap_or_else(|e| panic!("{:?} v{v}: {e}", a.key));
            assert_eq!(r.api_key, a.key);
            assert_eq!(r.api_version, v);
            assert_eq!(r.correlation_id, 77);
            assert_eq!(r.client_id.as_deref(), Some("cairn-test"));
            assert_eq!(r.body, samples::request(a.key, v), "{:?} v{v}", a.key);
            assert_eq!(crate::apis::request_kind_key(&r.body), Some(a.key));
        }
    }
}

#[test]
fn short_frames_are_truncated() {
    for n in 0..8 {
        assert_eq!(
            parse_request(Bytes::from(vec![0; n])),
            Err(RequestError::Truncated { len: n })
        );
    }
}

#[test]
fn unknown_and_unserved_api_keys_carry_the_correlation_id() {
    assert_eq!(
        parse_request(raw(999, 0, 5, &[])),
        Err(RequestError::UnknownApiKey {
            api_key: 999,
            correlation_id: 5
        })
    );
    assert_eq!(
        parse_request(raw(-1, 0, 6, &[])),
        Err(RequestError::UnknownApiKey {
            api_key: -1,
            correlation_id: 6
        })
    );
    // ConsumerGroupHeartbeat (KIP-848) is a Kafka API Cairn does not serve yet.
    assert_eq!(
        parse_request(raw(ApiKey::ConsumerGroupHeartbeat as i16, 0, 7, &[])),
        Err(RequestError::UnknownApiKey {
            api_key: 68,
            correlation_id: 7
        })
    );
}

#[test]
fn versions_outside_our_table_are_unsupported() {
    // Produce v13 names topics by ID: kafka-protocol decodes it, Cairn does not advertise it.
    for (key, version) in [
        (ApiKey::Produce, 13),
        (ApiKey::Fetch, 13),
        (ApiKey::OffsetCommit, 10),
        (ApiKey::OffsetFetch, 10),
        (ApiKey::OffsetFetch, 0),
        (ApiKey::FindCoordinator, 6),
        (ApiKey::DescribeGroups, 6),
        (ApiKey::OffsetDelete, 1),
    ] {
        let err = parse_request(raw(key as i16, version, 9, &[0; 64])).expect_err("unsupported");
        let (min, max) = crate::apis::supported(key).expect("served API");
        assert_eq!(
            err,
            RequestError::RefusedVersion {
                api_key: key,
                api_version: version,
                correlation_id: 9,
                client_id: None,
                min,
                max,
            }
        );
        assert_eq!(err.correlation_id(), Some(9));
    }
    // ApiVersions has the protocol's own answer.
    for version in [4, -1] {
        let err = parse_request(raw(ApiKey::ApiVersions as i16, version, 9, &[0; 64]))
            .expect_err("unsupported");
        assert_eq!(
            err,
            RequestError::UnsupportedVersion {
                api_key: ApiKey::ApiVersions,
                api_version: version,
                correlation_id: 9
            }
        );
    }
}

/// The one log line before the connection closes names the client, the API and version,
/// and what to upgrade to.
#[test]
fn a_refused_version_names_the_client_and_the_remedy() {
    let mut f = BytesMut::new();
    f.put_i16(ApiKey::OffsetFetch as i16);
    f.put_i16(0);
    f.put_i32(5);
    f.put_i16(6);
    f.put_slice(b"old-py");
    f.put_slice(&[0; 16]);
    let err = parse_request(f.freeze()).expect_err("refused");
    let line = err.to_string();
    for needle in [
        "OffsetFetch v0",
        "\"old-py\"",
        "v1-v9",
        "Kafka 2.1",
        "KIP-896",
    ] {
        assert!(line.contains(needle), "{needle:?} missing from: {line}");
    }
    let mut f = BytesMut::new();
    f.put_i16(ApiKey::OffsetFetch as i16);
    f.put_i16(0);
    f.put_i32(5);
    f.put_i16(-1);
    let line = parse_request(f.freeze()).expect_err("refused").to_string();
    assert!(
        line.contains("OffsetFetch v0") && line.contains("Kafka 2.1"),
        "{line}"
    );
    let mut f = BytesMut::new();
    f.put_i16(ApiKey::OffsetDelete as i16);
    f.put_i16(1);
    f.put_i32(5);
    f.put_i16(-1);
    let line = parse_request(f.freeze()).expect_err("refused").to_string();
    assert!(line.contains("fall back to v0"), "{line}");
}

#[test]
fn malformed_header_and_body() {
    // client_id declares 50 bytes, 3 follow.
    let mut h = BytesMut::new();
    h.put_i16(ApiKey::Metadata as i16);
    h.put_i16(1);
    h.put_i32(3);
    h.put_i16(50);
    h.put_slice(b"abc");
    assert!(matches!(
        parse_request(h.freeze()),
        Err(RequestError::Malformed {
            api_key: ApiKey::Metadata,
            api_version: 1,
            correlation_id: 3,
            reason: MalformedReason::Header { .. }
        })
    ));
    // Produce v3 with a null topic array: the shape allows null, kafka-protocol refuses it.
    let mut body = BytesMut::new();
    body.put_i16(-1); // transactional id
    body.put_i16(1); // acks
    body.put_i32(1000); // timeout
    body.put_i32(-1); // topics: null
    assert!(matches!(
        parse_request(raw(ApiKey::Produce as i16, 3, 4, &body)),
        Err(RequestError::Malformed {
            reason: MalformedReason::Body { .. },
            correlation_id: 4,
            ..
        })
    ));
    // Bytes after a whole body are ignored and counted, as Apache Kafka ignores them.
    let mut long = BytesMut::from(&frame(ApiKey::Metadata, 4, 8)[..]);
    long.put_u8(0);
    let parsed = parse_request(long.freeze()).expect("trailing bytes are tolerated");
    assert_eq!((parsed.correlation_id, parsed.trailing_bytes), (8, 1));
}

/// librdkafka 2.16's Metadata v12 request for all topics, as captured from confluent-kafka's
/// `AdminClient.list_topics()`: a null topic array, then three zero bytes and `01 00 00`.
/// Apache Kafka reads the zeros as the two booleans and the tag section and ignores the
/// rest; so must Cairn.
#[test]
fn librdkafka_all_topics_metadata_v12_parses() {
    let frame = Bytes::from_static(&[
        0x00, 0x03, 0x00, 0x0c, 0x00, 0x00, 0x00, 0x03, 0x00, 0x07, b'r', b'd', b'k', b'a', b'f',
        b'k', b'a', 0x00, 0x00, 0x00, 0x00, 0x00, 0x01, 0x00, 0x00,
    ]);
    let parsed = parse_request(frame).expect("librdkafka's request parses");
    assert_eq!(parsed.trailing_bytes, 3);
    match parsed.body {
        RequestKind::Metadata(m) => assert_eq!(m.topics, None, "all topics"),
        other => panic!("unexpected {other:?}"),
    }
}

/// Header v2 tagged fields are skipped, not stored, and bounded in number.
#[test]
fn header_tagged_fields_are_bounded() {
    let mut b = BytesMut::new();
    b.put_i16(ApiKey::ApiVersions as i16);
    b.put_i16(3);
    b.put_i32(21);
    b.put_i16(3);
    b.put_slice(b"c\xffd"); // not UTF-8: kept, lossily, as Java does
    b.put_u8(3); // three tagged fields
    for tag in 0..3u8 {
        b.put_slice(&[tag, 1, 0xaa]);
    }
    b.put_slice(&[2, b'n', 2, b'v', 0]); // the ApiVersions v3 body
    let body = b.freeze();
    let r = parse_request(body.clone()).expect("valid");
    assert_eq!(r.client_id.as_deref(), Some("c\u{fffd}d"));
    let two = RequestLimits {
        max_unknown_tagged_fields: 2,
        ..RequestLimits::default()
    };
    assert!(matches!(
        parse_request_with_limits(body, &two),
        Err(RequestError::Malformed {
            reason: MalformedReason::Header(ShapeError::TooManyTaggedFields { max: 2 }),
            correlation_id: 21,
            ..
        })
    ));
}

/// A 20-byte body declaring a 2^31-element array is refused before kafka-protocol would
/// reserve memory for it (`tests/memory_bounds.rs` measures the allocations).
#[test]
fn huge_declared_array_is_refused() {
    let mut body = BytesMut::new();
    body.put_i32(i32::MAX);
    body.put_slice(&[0; 16]);
    let err = parse_request(raw(ApiKey::Metadata as i16, 1, 12, &body)).expect_err("refused");
    assert!(matches!(
        err,
        RequestError::Malformed {
            reason: MalformedReason::Shape(ShapeError::LengthExceedsFrame { .. }),
            correlation_id: 12,
            ..
        }
    ));
}

#[test]
fn limits_are_applied() {
    let tight = RequestLimits {
        max_elements: 1,
        ..RequestLimits::default()
    };
    assert!(matches!(
        parse_request_with_limits(frame(ApiKey::Fetch, 12, 1), &tight),
        Err(RequestError::Malformed {
            reason: MalformedReason::Shape(ShapeError::TooManyElements { max: 1 }),
            ..
        })
    ));
}

fn mutate(frame: &Bytes, flips: &[(prop::sample::Index, u8)]) -> Bytes {
    let mut m = BytesMut::from(&frame[..]);
    for (idx, byte) in flips {
        let i = idx.index(m.len());
        m[i] ^= byte | 1;
    }
    m.freeze()
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(2000))]

    /// Fuzz: arbitrary bytes never panic.
    #[test]
    fn arbitrary_bytes_never_panic(data in proptest::collection::vec(any::<u8>(), 0..256)) {
        let _ = parse_request(Bytes::from(data));
    }

    /// Fuzz: arbitrary bodies behind a valid header of every supported API never panic.
    #[test]
    fn arbitrary_bodies_never_panic(api in 0usize..SUPPORTED_APIS.len(), v in 0i16..20, data in proptest::collection::vec(any::<u8>(), 0..256)) {
        let a = SUPPORTED_APIS[api];
        let v = a.min + v % (a.max - a.min + 1);
        let _ = parse_request(raw(a.key as i16, v, 1, &data));
    }

    /// Fuzz: valid Produce and Fetch requests with bytes flipped never panic; whatever
    /// still parses re-encodes.
    #[test]
    fn mutated_produce_and_fetch_never_panic(
        fetch in any::<bool>(),
        v in 0i16..10,
        flips in proptest::collection::vec((any::<prop::sample::Index>(), any::<u8>()), 1..6),
    ) {
        let (key, min, max) = if fetch { (ApiKey::Fetch, 4, 12) } else { (ApiKey::Produce, 3, 12) };
        let v = min + v % (max - min + 1);
        let good = frame(key, v, 1);
        if let Ok(r) = parse_request(mutate(&good, &flips)) {
            let mut out = BytesMut::new();
            let _ = r.body.encode(&mut out, r.api_version);
        }
    }
}
