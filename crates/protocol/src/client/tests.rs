use super::*;
use crate::apis::SUPPORTED_APIS;
use crate::request::parse_request;
use crate::response::encode_response;
use crate::samples;
use bytes::BufMut;
use kafka_protocol::messages::{MetadataRequest, ProduceResponse};

#[test]
fn requests_round_trip_through_the_broker_parser() {
    for a in SUPPORTED_APIS {
        for v in a.min..=a.max {
            let body = samples::request(a.key, v);
            let mut frame = encode_request(a.key, v, -3, None, &body)
                .expect("encode")
                .freeze();
            assert_eq!(frame.get_i32() as usize, frame.len());
            let r = parse_request(frame).expect("parse");
            assert_eq!((r.correlation_id, r.client_id, r.body), (-3, None, body));
        }
    }
}

#[test]
fn responses_round_trip() {
    for v in 3..=12 {
        let mut p = ProduceResponse::default();
        p.throttle_time_ms = 7;
        let kind = ResponseKind::Produce(p);
        let mut frame = encode_response(99, ApiKey::Produce, v, &kind)
            .expect("encode")
            .freeze();
        frame.advance(4);
        assert_eq!(decode_response(frame, ApiKey::Produce, v), Ok((99, kind)));
    }
}

#[test]
fn decode_errors() {
    let kind = ResponseKind::Produce(ProduceResponse::default());
    let frame = encode_response(1, ApiKey::Produce, 9, &kind).expect("encode");
    let mut long = BytesMut::from(&frame[4..]);
    long.put_u8(1);
    assert!(matches!(
        decode_response(long.freeze(), ApiKey::Produce, 9),
        Err(DecodeError::TrailingBytes { count: 1 })
    ));
    assert!(matches!(
        decode_response(Bytes::from_static(&[0, 0]), ApiKey::Produce, 9),
        Err(DecodeError::Header { .. })
    ));
    assert!(matches!(
        decode_response(Bytes::from_static(&[0, 0, 0, 1, 0, 5]), ApiKey::Produce, 9),
        Err(DecodeError::Body { .. })
    ));
    assert_eq!(
        decode_response(Bytes::new(), ApiKey::Produce, 99),
        Err(DecodeError::UnsupportedVersion {
            api_key: ApiKey::Produce,
            api_version: 99
        })
    );
}

#[test]
fn encode_errors() {
    let m = RequestKind::Metadata(MetadataRequest::default());
    assert_eq!(
        encode_request(ApiKey::Produce, 9, 1, None, &m),
        Err(EncodeError::BodyMismatch {
            api_key: ApiKey::Produce
        })
    );
    assert_eq!(
        encode_request(ApiKey::Metadata, 99, 1, None, &m),
        Err(EncodeError::UnsupportedVersion {
            api_key: ApiKey::Metadata,
            api_version: 99
        })
    );
    // A field kafka-protocol cannot write at that version.
    let mut old = MetadataRequest::default();
    old.allow_auto_topic_creation = false;
    assert!(matches!(
        encode_request(ApiKey::Metadata, 3, 1, None, &RequestKind::Metadata(old)),
        Err(EncodeError::Encode { api_version: 3, .. })
    ));
}
