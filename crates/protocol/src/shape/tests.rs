use super::*;
use crate::apis::SUPPORTED_APIS;
use crate::samples;
use bytes::{Buf, BufMut, BytesMut};
use kafka_protocol::messages::RequestHeader;
use kafka_protocol::protocol::Decodable;

/// The body of a sample request: its frame without prefix and header.
fn body(key: ApiKey, version: i16) -> bytes::Bytes {
    let mut frame = samples::request_frame(key, version, 1).freeze();
    frame.advance(4);
    RequestHeader::decode(&mut frame, key.request_header_version(version)).expect("header");
    frame
}

#[test]
fn every_supported_api_has_a_shape() {
    for a in SUPPORTED_APIS {
        assert!(
            SHAPES.iter().any(|s| s.key == a.key),
            "{:?} has no shape",
            a.key
        );
    }
    assert_eq!(SHAPES.len(), SUPPORTED_APIS.len());
}

/// Each schema agrees with kafka-protocol's encoder for every advertised version: the walk
/// of a fully populated request ends exactly at its end.
#[test]
fn schemas_match_kafka_protocol_at_every_version() {
    for a in SUPPORTED_APIS {
        for v in a.min..=a.max {
            let b = body(a.key, v);
            assert_eq!(
                check(a.key, v, &b, &RequestLimits::default()),
                Ok(b.len()),
                "{:?} v{v}",
                a.key
            );
            // One byte short or one too many is refused.
            if let Some(short) = b.len().checked_sub(1) {
                assert!(
                    check(a.key, v, &b[..short], &RequestLimits::default()).is_err(),
                    "{:?} v{v} short",
                    a.key
                );
            }
            // One too many is left alone (Kafka ignores bytes after a body).
            let mut long = BytesMut::from(&b[..]);
            long.put_u8(0);
            assert_eq!(
                check(a.key, v, &long, &RequestLimits::default()),
                Ok(b.len()),
                "{:?} v{v} long",
                a.key
            );
        }
    }
}

#[test]
fn declared_counts_beyond_the_body_are_refused() {
    // Metadata v1: topics ARRAY(int32 count).
    let mut b = BytesMut::new();
    b.put_i32(i32::MAX);
    b.put_slice(&[0; 20]);
    assert_eq!(
        check(ApiKey::Metadata, 1, &b, &RequestLimits::default()),
        Err(ShapeError::LengthExceedsFrame {
            at: 0,
            length: i32::MAX as u64,
            remaining: 20
        })
    );
    // Metadata v9: COMPACT_ARRAY, count + 1 as an unsigned varint: 2^31 elements.
    let c = [0x81, 0x80, 0x80, 0x80, 0x08, 0, 0, 0];
    assert!(matches!(
        check(ApiKey::Metadata, 9, &c, &RequestLimits::default()),
        Err(ShapeError::LengthExceedsFrame {
            length: 0x8000_0000,
            ..
        })
    ));
    // A string longer than the body.
    let mut s = BytesMut::new();
    s.put_i32(1);
    s.put_i16(100);
    s.put_slice(b"abc");
    assert!(matches!(
        check(ApiKey::Metadata, 1, &s, &RequestLimits::default()),
        Err(ShapeError::LengthExceedsFrame {
            at: 4,
            length: 100,
            remaining: 3
        })
    ));
    // Negative lengths other than null.
    let mut n = BytesMut::new();
    n.put_i32(-2);
    assert!(matches!(
        check(ApiKey::Metadata, 1, &n, &RequestLimits::default()),
        Err(ShapeError::NegativeLength { length: -2, .. })
    ));
}

#[test]
fn varints_kafka_protocol_would_misread_are_refused() {
    // A 6-byte varint (kafka-protocol would stop after 5 and misalign).
    let six = [0x80, 0x80, 0x80, 0x80, 0x80, 0x01];
    assert!(matches!(
        check(ApiKey::Metadata, 9, &six, &RequestLimits::default()),
        Err(ShapeError::Varint { at: 0 })
    ));
    // A 5th byte with bits beyond 32.
    let wide = [0xff, 0xff, 0xff, 0xff, 0x1f];
    assert!(matches!(
        check(ApiKey::Metadata, 9, &wide, &RequestLimits::default()),
        Err(ShapeError::Varint { at: 0 })
    ));
}

#[test]
fn element_and_tagged_field_limits() {
    let b = body(ApiKey::Produce, 9);
    let tight = RequestLimits {
        max_elements: 5,
        ..RequestLimits::default()
    };
    assert_eq!(
        check(ApiKey::Produce, 9, &b, &tight),
        Err(ShapeError::TooManyElements { max: 5 })
    );
    let six = RequestLimits {
        max_elements: 6,
        ..RequestLimits::default()
    };
    assert_eq!(
        check(ApiKey::Produce, 9, &b, &six),
        Ok(b.len()),
        "2 topics + 4 partitions"
    );
    // The sample carries an unknown tagged field at the top level and in each partition.
    let tags = RequestLimits {
        max_unknown_tagged_fields: 4,
        ..RequestLimits::default()
    };
    assert_eq!(
        check(ApiKey::Produce, 9, &b, &tags),
        Err(ShapeError::TooManyTaggedFields { max: 4 })
    );
    let five = RequestLimits {
        max_unknown_tagged_fields: 5,
        ..RequestLimits::default()
    };
    assert_eq!(check(ApiKey::Produce, 9, &b, &five), Ok(b.len()));
}

#[test]
fn known_tagged_field_must_match_its_size() {
    // Fetch v12 ends with the top-level tagged fields: cluster_id (tag 0) is decoded by
    // kafka-protocol from the stream, whatever size is declared.
    let b = body(ApiKey::Fetch, 12);
    // Tagged section of the sample: count 2, tag 0 size 8 "cluster" (compact: len+1 = 8),
    // then tag 99 size 3 "xyz".
    let tail = [
        2, 0, 8, 8, b'c', b'l', b'u', b's', b't', b'e', b'r', 99, 3, b'x', b'y', b'z',
    ];
    assert_eq!(&b[b.len() - tail.len()..], &tail);
    let mut lie = BytesMut::from(&b[..]);
    let at = b.len() - tail.len() + 2;
    lie[at] = 7;
    assert!(matches!(
        check(ApiKey::Fetch, 12, &lie, &RequestLimits::default()),
        Err(ShapeError::TaggedFieldSize {
            tag: 0,
            declared: 7,
            actual: 8,
            ..
        })
    ));
}

#[test]
fn unknown_api_has_no_shape() {
    assert_eq!(
        check(
            ApiKey::ConsumerGroupHeartbeat,
            0,
            &[],
            &RequestLimits::default()
        ),
        Err(ShapeError::NoShape {
            api_key: ApiKey::ConsumerGroupHeartbeat
        })
    );
}

/// What kafka-protocol builds per array element stays small, so `max_elements` bounds the
/// decoded request (the module docs promise ~128 bytes per element).
#[test]
fn decoded_elements_are_small() {
    use kafka_protocol::messages::*;
    use std::mem::size_of;
    let sizes = [
        size_of::<metadata_request::MetadataRequestTopic>(),
        size_of::<produce_request::TopicProduceData>(),
        size_of::<produce_request::PartitionProduceData>(),
        size_of::<fetch_request::FetchTopic>(),
        size_of::<fetch_request::FetchPartition>(),
        size_of::<fetch_request::ForgottenTopic>(),
        size_of::<list_offsets_request::ListOffsetsTopic>(),
        size_of::<list_offsets_request::ListOffsetsPartition>(),
        size_of::<create_topics_request::CreatableTopic>(),
        size_of::<create_topics_request::CreatableReplicaAssignment>(),
        size_of::<create_topics_request::CreatableTopicConfig>(),
        size_of::<delete_topics_request::DeleteTopicState>(),
        size_of::<delete_records_request::DeleteRecordsTopic>(),
        size_of::<delete_records_request::DeleteRecordsPartition>(),
        size_of::<offset_for_leader_epoch_request::OffsetForLeaderTopic>(),
        size_of::<offset_for_leader_epoch_request::OffsetForLeaderPartition>(),
        size_of::<describe_configs_request::DescribeConfigsResource>(),
        size_of::<create_partitions_request::CreatePartitionsTopic>(),
        size_of::<create_partitions_request::CreatePartitionsAssignment>(),
        size_of::<incremental_alter_configs_request::AlterConfigsResource>(),
        size_of::<incremental_alter_configs_request::AlterableConfig>(),
        size_of::<offset_commit_request::OffsetCommitRequestTopic>(),
        size_of::<offset_commit_request::OffsetCommitRequestPartition>(),
        size_of::<offset_fetch_request::OffsetFetchRequestTopic>(),
        size_of::<offset_fetch_request::OffsetFetchRequestGroup>(),
        size_of::<offset_fetch_request::OffsetFetchRequestTopics>(),
        size_of::<join_group_request::JoinGroupRequestProtocol>(),
        size_of::<leave_group_request::MemberIdentity>(),
        size_of::<sync_group_request::SyncGroupRequestAssignment>(),
        size_of::<offset_delete_request::OffsetDeleteRequestTopic>(),
        size_of::<offset_delete_request::OffsetDeleteRequestPartition>(),
        size_of::<GroupId>(),
        size_of::<kafka_protocol::protocol::StrBytes>(),
    ];
    for (i, s) in sizes.iter().enumerate() {
        assert!(*s <= 128, "element type #{i} is {s} bytes");
    }
}
