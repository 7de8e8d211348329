use super::*;
use bytes::BufMut;
use proptest::prelude::*;

fn read_request(key: ApiKey, version: i16, bytes: &[u8]) -> (RequestKind, Option<LegacyFields>) {
    let mut buf = Bytes::copy_from_slice(bytes);
    let out = decode_request(key, version, &mut buf).expect("decodes");
    assert!(buf.is_empty(), "{} bytes left", buf.len());
    out
}

fn write_response(key: ApiKey, version: i16, body: &ResponseKind) -> Vec<u8> {
    let mut buf = BytesMut::new();
    encode_response(key, version, body, &mut buf).expect("encodes");
    buf.to_vec()
}

fn put_str(b: &mut BytesMut, s: &str) {
    b.put_i16(s.len() as i16);
    b.put_slice(s.as_bytes());
}

#[test]
fn list_offsets_v0_reads_max_num_offsets_and_answers_a_list() {
    let mut b = BytesMut::new();
    b.put_i32(-1); // replica_id
    b.put_i32(1); // topics
    put_str(&mut b, "t");
    b.put_i32(2); // partitions
    b.put_i32(0);
    b.put_i64(-1);
    b.put_i32(5);
    b.put_i32(1);
    b.put_i64(-2);
    b.put_i32(0);
    let (body, legacy) = read_request(ApiKey::ListOffsets, 0, &b);
    let RequestKind::ListOffsets(r) = body else {
        panic!("not ListOffsets")
    };
    assert_eq!(r.replica_id.0, -1);
    assert_eq!(r.topics[0].name.0.as_str(), "t");
    let stamps: Vec<i64> = r.topics[0].partitions.iter().map(|p| p.timestamp).collect();
    assert_eq!(stamps, [-1, -2]);
    let legacy = legacy.expect("side fields");
    assert_eq!(
        (legacy.max_num_offsets(0, 0), legacy.max_num_offsets(0, 1)),
        (5, 0)
    );
    assert_eq!(legacy.max_num_offsets(3, 3), 1, "absent: Kafka's default");

    let mut found = list_offsets_response::ListOffsetsPartitionResponse::default();
    found.partition_index = 0;
    found.offset = 42;
    let mut none = list_offsets_response::ListOffsetsPartitionResponse::default();
    none.partition_index = 1;
    none.error_code = 3;
    let mut t = list_offsets_response::ListOffsetsTopicResponse::default();
    t.name = TopicName(StrBytes::from_static_str("t"));
    t.partitions = vec![found, none];
    let mut resp = ListOffsetsResponse::default();
    resp.throttle_time_ms = 9; // v2+, ignorable: dropped
    resp.topics = vec![t];
    let bytes = write_response(ApiKey::ListOffsets, 0, &ResponseKind::ListOffsets(resp));
    let mut want = BytesMut::new();
    want.put_i32(1);
    put_str(&mut want, "t");
    want.put_i32(2);
    want.put_i32(0);
    want.put_i16(0);
    want.put_i32(1);
    want.put_i64(42);
    want.put_i32(1);
    want.put_i16(3);
    want.put_i32(0);
    assert_eq!(bytes, want.to_vec());
}

#[test]
fn offset_commit_v1_carries_commit_timestamps_and_v0_is_a_simple_commit() {
    let mut b = BytesMut::new();
    put_str(&mut b, "g");
    b.put_i32(3); // generation
    put_str(&mut b, "m");
    b.put_i32(1);
    put_str(&mut b, "t");
    b.put_i32(1);
    b.put_i32(2); // partition
    b.put_i64(100); // offset
    b.put_i64(1_700_000_000_000); // commit timestamp
    b.put_i16(-1); // null metadata
    let (body, legacy) = read_request(ApiKey::OffsetCommit, 1, &b);
    let RequestKind::OffsetCommit(r) = body else {
        panic!("not OffsetCommit")
    };
    assert_eq!(
        (r.generation_id_or_member_epoch, r.member_id.as_str()),
        (3, "m")
    );
    let p = &r.topics[0].partitions[0];
    assert_eq!(
        (p.partition_index, p.committed_offset, &p.committed_metadata),
        (2, 100, &None)
    );
    assert_eq!(
        legacy.expect("side fields").commit_timestamp(0, 0),
        1_700_000_000_000
    );

    let mut b = BytesMut::new();
    put_str(&mut b, "g");
    b.put_i32(1);
    put_str(&mut b, "t");
    b.put_i32(1);
    b.put_i32(0);
    b.put_i64(7);
    put_str(&mut b, "meta");
    let (body, legacy) = read_request(ApiKey::OffsetCommit, 0, &b);
    let RequestKind::OffsetCommit(r) = body else {
        panic!("not OffsetCommit")
    };
    assert_eq!(legacy, None);
    assert_eq!(
        (r.generation_id_or_member_epoch, r.member_id.as_str()),
        (-1, ""),
        "no generation, no member"
    );
}

#[test]
fn describe_configs_v0_writes_is_default_from_the_source() {
    let entry = |name: &'static str, source: i8| {
        let mut c = describe_configs_response::DescribeConfigsResourceResult::default();
        c.name = StrBytes::from_static_str(name);
        c.value = Some(StrBytes::from_static_str("1"));
        c.config_source = source;
        c
    };
    let mut res = describe_configs_response::DescribeConfigsResult::default();
    res.resource_type = 2;
    res.resource_name = StrBytes::from_static_str("t");
    res.configs = vec![entry("a", SOURCE_DEFAULT), entry("b", SOURCE_TOPIC)];
    let mut resp = DescribeConfigsResponse::default();
    resp.results = vec![res];
    let body = ResponseKind::DescribeConfigs(resp);
    let bytes = write_response(ApiKey::DescribeConfigs, 0, &body);
    // throttle, results count, error, null message, type, "t", configs count
    let config_a = 4 + 4 + 2 + 2 + 1 + 3 + 4;
    // name "a", value "1", read_only, is_default, is_sensitive
    assert_eq!(
        &bytes[config_a..config_a + 9],
        &[0, 1, b'a', 0, 1, b'1', 0, 1, 0]
    );
    assert_eq!(
        &bytes[config_a + 9..config_a + 18],
        &[0, 1, b'b', 0, 1, b'1', 0, 0, 0]
    );
    let mut buf = Bytes::from(bytes);
    assert_eq!(
        decode_response(ApiKey::DescribeConfigs, 0, &mut buf).expect("decodes"),
        body,
        "sources read back as Java's client maps them"
    );
}

#[test]
fn fields_a_version_lacks_are_refused_unless_ignorable() {
    let mut r = CreateTopicsRequest::default();
    r.validate_only = true;
    let mut buf = BytesMut::new();
    assert_eq!(
        encode_request(
            ApiKey::CreateTopics,
            0,
            &RequestKind::CreateTopics(r.clone()),
            &mut buf
        ),
        Err(WireError::NotInVersion("validate_only"))
    );
    assert_eq!(
        encode_request(
            ApiKey::CreateTopics,
            1,
            &RequestKind::CreateTopics(r),
            &mut BytesMut::new()
        ),
        Ok(())
    );
    // An error message is ignorable: v0 drops it.
    let mut t = create_topics_response::CreatableTopicResult::default();
    t.name = TopicName(StrBytes::from_static_str("x"));
    t.error_code = 36;
    t.error_message = Some(StrBytes::from_static_str("exists"));
    let mut resp = CreateTopicsResponse::default();
    resp.topics = vec![t];
    let v0 = write_response(
        ApiKey::CreateTopics,
        0,
        &ResponseKind::CreateTopics(resp.clone()),
    );
    assert_eq!(v0, [0, 0, 0, 1, 0, 1, b'x', 0, 36]);
    let v1 = write_response(ApiKey::CreateTopics, 1, &ResponseKind::CreateTopics(resp));
    assert_eq!(&v1[9..], &[0, 6, b'e', b'x', b'i', b's', b't', b's']);
    // A v0 ListOffsets answer has no timestamp.
    let mut p = list_offsets_response::ListOffsetsPartitionResponse::default();
    p.timestamp = 5;
    let mut t = list_offsets_response::ListOffsetsTopicResponse::default();
    t.partitions = vec![p];
    let mut resp = ListOffsetsResponse::default();
    resp.topics = vec![t];
    assert_eq!(
        encode_response(
            ApiKey::ListOffsets,
            0,
            &ResponseKind::ListOffsets(resp),
            &mut BytesMut::new()
        ),
        Err(WireError::NotInVersion("timestamp"))
    );
}

#[test]
fn offset_for_leader_epoch_v0_answers_no_epoch() {
    let mut p = offset_for_leader_epoch_response::EpochEndOffset::default();
    p.partition = 1;
    p.leader_epoch = 7;
    p.end_offset = 99;
    let mut t = offset_for_leader_epoch_response::OffsetForLeaderTopicResult::default();
    t.topic = TopicName(StrBytes::from_static_str("t"));
    t.partitions = vec![p];
    let mut resp = OffsetForLeaderEpochResponse::default();
    resp.topics = vec![t];
    let body = ResponseKind::OffsetForLeaderEpoch(resp);
    let v0 = write_response(ApiKey::OffsetForLeaderEpoch, 0, &body);
    let v1 = write_response(ApiKey::OffsetForLeaderEpoch, 1, &body);
    assert_eq!(v1.len(), v0.len() + 4, "v1 adds the epoch");
    assert_eq!(
        &v0[v0.len() - 14..],
        &[0, 0, 0, 0, 0, 1, 0, 0, 0, 0, 0, 0, 0, 99]
    );
    assert_eq!(
        &v1[v1.len() - 18..],
        &[0, 0, 0, 0, 0, 1, 0, 0, 0, 7, 0, 0, 0, 0, 0, 0, 0, 99]
    );
}

#[test]
fn produce_v0_v2_read_without_their_records_being_looked_at() {
    let mut b = BytesMut::new();
    b.put_i16(1); // acks
    b.put_i32(1500); // timeout
    b.put_i32(1);
    put_str(&mut b, "t");
    b.put_i32(1);
    b.put_i32(3);
    b.put_i32(4); // a "message set" of 4 bytes
    b.put_slice(b"v0!!");
    let (body, _) = read_request(ApiKey::Produce, 1, &b);
    let RequestKind::Produce(r) = body else {
        panic!("not Produce")
    };
    assert_eq!((r.acks, r.timeout_ms), (1, 1500));
    let p = &r.topic_data[0].partition_data[0];
    assert_eq!((p.index, p.records.as_deref()), (3, Some(&b"v0!!"[..])));

    let mut part = produce_response::PartitionProduceResponse::default();
    part.index = 3;
    part.error_code = 35;
    part.base_offset = -1;
    let mut t = produce_response::TopicProduceResponse::default();
    t.name = TopicName(StrBytes::from_static_str("t"));
    t.partition_responses = vec![part];
    let mut resp = ProduceResponse::default();
    resp.responses = vec![t];
    let body = ResponseKind::Produce(resp);
    let v0 = write_response(ApiKey::Produce, 0, &body);
    let v1 = write_response(ApiKey::Produce, 1, &body);
    let v2 = write_response(ApiKey::Produce, 2, &body);
    let mut want = BytesMut::new();
    want.put_i32(1);
    put_str(&mut want, "t");
    want.put_i32(1);
    want.put_i32(3);
    want.put_i16(35);
    want.put_i64(-1);
    assert_eq!(v0, want.to_vec());
    want.put_i32(0); // throttle
    assert_eq!(v1, want.to_vec());
    assert_eq!(v2.len(), v1.len() + 8, "v2 adds log_append_time");
}

#[test]
fn bad_lengths_are_errors() {
    // A topic array longer than the body.
    let mut b = BytesMut::new();
    b.put_i32(-1);
    b.put_i32(1_000_000);
    let mut buf = b.freeze();
    assert!(matches!(
        decode_request(ApiKey::ListOffsets, 0, &mut buf),
        Err(WireError::BadLength { at: 4, .. })
    ));
    // A null non-nullable string.
    let mut b = BytesMut::new();
    b.put_i16(-1);
    let mut buf = b.freeze();
    assert!(matches!(
        decode_request(ApiKey::OffsetCommit, 0, &mut buf),
        Err(WireError::BadLength { length: -1, .. })
    ));
    // Not UTF-8.
    let mut b = BytesMut::new();
    b.put_i32(1);
    b.put_i16(1);
    b.put_u8(0xff);
    let mut buf = b.freeze();
    assert!(matches!(
        decode_request(ApiKey::OffsetForLeaderEpoch, 0, &mut buf),
        Err(WireError::Utf8 { at: 4 })
    ));
    assert_eq!(
        decode_request(ApiKey::Metadata, 0, &mut Bytes::new()),
        Err(WireError::NotLegacy)
    );
}

const LEGACY: [(ApiKey, i16); 13] = [
    (ApiKey::Produce, 0),
    (ApiKey::Produce, 1),
    (ApiKey::Produce, 2),
    (ApiKey::ListOffsets, 0),
    (ApiKey::OffsetCommit, 0),
    (ApiKey::OffsetCommit, 1),
    (ApiKey::DescribeConfigs, 0),
    (ApiKey::CreateTopics, 0),
    (ApiKey::CreateTopics, 1),
    (ApiKey::DeleteTopics, 0),
    (ApiKey::OffsetForLeaderEpoch, 0),
    (ApiKey::OffsetForLeaderEpoch, 1),
    (ApiKey::DescribeLogDirs, 0),
];

#[test]
fn every_legacy_version_is_one_this_module_knows() {
    for (key, version) in LEGACY {
        assert!(is_legacy(key, version), "{key:?} v{version}");
        assert_eq!(min_version(key), 0, "{key:?}");
    }
    assert!(!is_legacy(ApiKey::ListOffsets, 1));
}

proptest! {
    /// Any bytes: an error or a body, never a panic, and never past the input. (Layouts
    /// delegated to kafka-protocol are not fed arbitrary bytes: it reserves by declared
    /// counts, which is why requests are walked by `shape` first.)
    #[test]
    fn arbitrary_bytes_never_panic(
        which in 0..LEGACY.len(),
        bytes in proptest::collection::vec(any::<u8>(), 0..200),
    ) {
        let (key, version) = LEGACY[which];
        if same_layout(key, version, true).is_none() {
            let mut buf = Bytes::from(bytes.clone());
            let _ = decode_request(key, version, &mut buf);
            prop_assert!(buf.len() <= bytes.len());
        }
        if same_layout(key, version, false).is_none() {
            let mut buf = Bytes::from(bytes);
            let _ = decode_response(key, version, &mut buf);
        }
    }
}
