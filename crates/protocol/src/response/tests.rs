use super::*;
use crate::client::decode_response;
use bytes::{Buf, Bytes};
use kafka_protocol::messages::{MetadataResponse, ProduceResponse};

/// The body bytes of a response frame: prefix and the 4-byte correlation id removed
/// (ApiVersions always uses response header v0).
fn api_versions_body(frame: &BytesMut) -> Bytes {
    let mut b = Bytes::copy_from_slice(frame);
    assert_eq!(b.get_i32() as usize, b.len(), "length prefix");
    b.advance(4);
    b
}

#[test]
fn api_versions_lists_the_table() {
    let r = api_versions_response(3);
    assert_eq!(r.error_code, 0);
    assert_eq!(r.throttle_time_ms, 0);
    assert_eq!(r.api_keys.len(), SUPPORTED_APIS.len());
    for (k, a) in r.api_keys.iter().zip(SUPPORTED_APIS) {
        assert_eq!(
            (k.api_key, k.min_version, k.max_version),
            (a.key as i16, a.min, a.max)
        );
    }
}

/// librdkafka 2.0.x mis-skips tagged fields in an ApiVersions v3 response: the body must
/// carry none, i.e. end with a zero tagged-field count, and each ApiVersion entry's own
/// tagged-field count must be zero too.
#[test]
fn api_versions_v3_writes_no_tagged_fields() {
    let frame = encode_response(
        1,
        ApiKey::ApiVersions,
        3,
        &ResponseKind::ApiVersions(api_versions_response(3)),
    )
    .expect("encode");
    let body = api_versions_body(&frame);
    // error_code, COMPACT_ARRAY(n+1) of {key, min, max: int16; tagged count 0}, throttle, tags.
    let n = SUPPORTED_APIS.len();
    assert_eq!(body.len(), 2 + 1 + n * 7 + 4 + 1);
    let mut expected = vec![0u8, 0, (n + 1) as u8];
    for a in SUPPORTED_APIS {
        expected.extend_from_slice(&(a.key as i16).to_be_bytes());
        expected.extend_from_slice(&a.min.to_be_bytes());
        expected.extend_from_slice(&a.max.to_be_bytes());
        expected.push(0); // the entry's tagged fields: none
    }
    expected.extend_from_slice(&0i32.to_be_bytes()); // throttle_time_ms
    expected.push(0); // top-level tagged fields: none
    assert_eq!(&body[..], &expected[..]);
    assert_eq!(body.last(), Some(&0));
}

#[test]
fn api_versions_v0_to_v2_layouts() {
    for v in 0..=2 {
        let frame = encode_response(
            2,
            ApiKey::ApiVersions,
            v,
            &ResponseKind::ApiVersions(api_versions_response(v)),
        )
        .expect("encode");
        let body = api_versions_body(&frame);
        let throttle = if v >= 1 { 4 } else { 0 };
        assert_eq!(
            body.len(),
            2 + 4 + SUPPORTED_APIS.len() * 6 + throttle,
            "v{v}"
        );
    }
}

/// The error-35 reply is a v0 header and v0 body, whatever version was asked, identical to
/// what kafka-protocol encodes for the same message.
#[test]
fn unsupported_api_versions_is_v0() {
    let frame = api_versions_unsupported(0x0102_0304);
    let mut reference = api_versions_response(0);
    reference.error_code = 35;
    let mut expected = BytesMut::new();
    let at = begin_frame(&mut expected);
    ResponseHeader::default()
        .with_correlation_id(0x0102_0304)
        .encode(&mut expected, 0)
        .expect("header");
    reference.encode(&mut expected, 0).expect("body");
    finish_frame(&mut expected, at).expect("frame");
    assert_eq!(frame, expected);
    // A client that asked for v3 reads it (falling back to v0 like librdkafka and Java).
    let (cid, body) = decode_response(Bytes::copy_from_slice(&frame[4..]), ApiKey::ApiVersions, 3)
        .expect("decodes");
    assert_eq!(cid, 0x0102_0304);
    let ResponseKind::ApiVersions(r) = body else {
        panic!("not ApiVersions")
    };
    assert_eq!(r.error_code, ErrorCode::UnsupportedVersion.code());
    assert_eq!(r.api_keys.len(), SUPPORTED_APIS.len());
}

/// Every API of the table has a response body `encode_response` accepts at every advertised
/// version (so `kind_keys!` lists them all), and it reads back the same.
#[test]
fn every_supported_response_encodes() {
    for a in SUPPORTED_APIS {
        let body = apis::default_response(a.key)
            .unwrap_or_else(|| panic!("{:?} missing from kind_keys!", a.key));
        assert_eq!(apis::response_kind_key(&body), Some(a.key));
        for v in a.min..=a.max {
            let frame = encode_response(7, a.key, v, &body)
                .unwrap_or_else(|e| panic!("{:?} v{v}: {e}", a.key));
            let decoded = decode_response(Bytes::copy_from_slice(&frame[4..]), a.key, v)
                .unwrap_or_else(|e| panic!("{:?} v{v}: {e}", a.key));
            assert_eq!(decoded, (7, body.clone()), "{:?} v{v}", a.key);
        }
    }
}

#[test]
fn flexible_responses_get_header_v1() {
    // Metadata v9+ is flexible: header v1 adds a tagged-field byte after the correlation id.
    let m = ResponseKind::Metadata(MetadataResponse::default());
    let v8 = encode_response(5, ApiKey::Metadata, 8, &m).expect("v8");
    let v9 = encode_response(5, ApiKey::Metadata, 9, &m).expect("v9");
    assert_eq!(&v8[4..8], &5i32.to_be_bytes());
    assert_eq!(&v9[4..9], &[0, 0, 0, 5, 0]);
    for (frame, v) in [(v8, 8), (v9, 9)] {
        let (cid, body) = decode_response(Bytes::copy_from_slice(&frame[4..]), ApiKey::Metadata, v)
            .expect("decode");
        assert_eq!((cid, body), (5, m.clone()));
    }
}

#[test]
fn misuse_is_an_error() {
    let m = ResponseKind::Metadata(MetadataResponse::default());
    assert_eq!(
        encode_response(1, ApiKey::Produce, 9, &m),
        Err(EncodeError::BodyMismatch {
            api_key: ApiKey::Produce
        })
    );
    let p = ResponseKind::Produce(ProduceResponse::default());
    assert_eq!(
        encode_response(1, ApiKey::Produce, 13, &p),
        Err(EncodeError::UnsupportedVersion {
            api_key: ApiKey::Produce,
            api_version: 13
        })
    );
}
