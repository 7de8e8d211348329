//! A response frame as chunks to be written back to back (`writev`), so that the records of
//! a Fetch response go to the socket straight from the buffers they were read into, instead
//! of being copied into one contiguous frame first.
//!
//! kafka-protocol encodes into one buffer, so [`encode_response_chunks`] encodes the Fetch
//! response with each large `records` field replaced by a 16-byte marker, finds each marker
//! in the (now small) encoding, and splits there: the bytes before it (minus the marker's
//! length field), the records' real length field, the records themselves. Nothing else in a
//! Fetch response depends on the size of a `records` field (arrays are counted by elements,
//! tagged fields do not hold records), except the frame's own size prefix, which is
//! recomputed. A marker holds bytes that are not UTF-8, so no string field can contain one;
//! if one does not occur exactly once where expected anyway (small records, copied into the
//! frame, could hold one), the whole response is encoded the plain way instead: the result
//! is always byte for byte what [`encode_response`] gives.

use bytes::{BufMut, Bytes, BytesMut};
use kafka_protocol::messages::{ApiKey, FetchResponse, ResponseKind};

use super::{encode_response, EncodeError};
use crate::frame::{FrameError, LENGTH_PREFIX_BYTES};

/// Records smaller than this are copied into the frame: an extra chunk costs more.
const MIN_SEPARATE_RECORDS: usize = 4096;
/// Fetch versions from this one encode `records` as COMPACT_RECORDS (unsigned varint of
/// length + 1); earlier ones as RECORDS (int32 length).
const FIRST_FLEXIBLE_FETCH: i16 = 12;
/// The marker's first 12 bytes; the last 4 are the records' index in the response.
const MARKER_PREFIX: [u8; 12] = *b"\xffCAIRN-RECS\xfe";
const MARKER_LEN: usize = MARKER_PREFIX.len() + 4;

/// The whole response frame for `body`, as chunks whose concatenation is exactly what
/// [`encode_response`] returns. Fetch responses carry their large `records` as their own
/// chunks (the same `Bytes`, not copies); any other response is one chunk.
pub fn encode_response_chunks(
    correlation_id: i32,
    api_key: ApiKey,
    api_version: i16,
    body: ResponseKind,
) -> Result<Vec<Bytes>, EncodeError> {
    let ResponseKind::Fetch(mut fetch) = body else {
        return encode_response(correlation_id, api_key, api_version, &body)
            .map(|b| vec![b.freeze()]);
    };
    let (taken, places) = take_records(&mut fetch);
    let mut body = ResponseKind::Fetch(fetch);
    let frame = encode_response(correlation_id, api_key, api_version, &body)?;
    if taken.is_empty() {
        return Ok(vec![frame.freeze()]);
    }
    if let Some(chunks) = split(frame, &taken, api_version >= FIRST_FLEXIBLE_FETCH)? {
        return Ok(chunks);
    }
    if let ResponseKind::Fetch(fetch) = &mut body {
        for ((t, p), records) in places.into_iter().zip(taken) {
            fetch.responses[t].partitions[p].records = Some(records);
        }
    }
    encode_response(correlation_id, api_key, api_version, &body).map(|b| vec![b.freeze()])
}

fn marker(index: usize) -> Bytes {
    let mut m = BytesMut::with_capacity(MARKER_LEN);
    m.put_slice(&MARKER_PREFIX);
    m.put_u32(index as u32);
    m.freeze()
}

/// Replaces every large `records` with its marker, in encoding order; returns the records
/// and where each was (topic and partition index in the response).
fn take_records(fetch: &mut FetchResponse) -> (Vec<Bytes>, Vec<(usize, usize)>) {
    let mut taken = Vec::new();
    let mut places = Vec::new();
    for (t, topic) in fetch.responses.iter_mut().enumerate() {
        for (i, p) in topic.partitions.iter_mut().enumerate() {
            if p.records
                .as_ref()
                .is_some_and(|r| r.len() >= MIN_SEPARATE_RECORDS)
            {
                let m = marker(taken.len());
                taken.extend(p.records.replace(m));
                places.push((t, i));
            }
        }
    }
    (taken, places)
}

/// The length field kafka-protocol writes before `len` bytes of records.
fn length_field(len: usize, compact: bool) -> Result<BytesMut, EncodeError> {
    let mut out = BytesMut::with_capacity(5);
    if compact {
        let mut v = u32::try_from(len + 1).map_err(|_| FrameError::BodyTooLarge { size: len })?;
        while v >= 0x80 {
            out.put_u8((v as u8 & 0x7f) | 0x80);
            v >>= 7;
        }
        out.put_u8(v as u8);
    } else {
        out.put_i32(i32::try_from(len).map_err(|_| FrameError::BodyTooLarge { size: len })?);
    }
    Ok(out)
}

/// Splits `frame` at the markers of `taken`; `None` if a marker is not where it must be.
fn split(
    mut frame: BytesMut,
    taken: &[Bytes],
    compact: bool,
) -> Result<Option<Vec<Bytes>>, EncodeError> {
    let marker_field = length_field(MARKER_LEN, compact)?;
    let mut cuts = Vec::with_capacity(taken.len());
    let mut from = 0usize;
    for (i, records) in taken.iter().enumerate() {
        let m = marker(i);
        let Some(at) = find(&frame[from..], &m).map(|p| p + from) else {
            return Ok(None);
        };
        if find(&frame[at + MARKER_LEN..], &m).is_some() || find(&frame[..at], &m).is_some() {
            return Ok(None);
        }
        let Some(field_at) = at.checked_sub(marker_field.len()) else {
            return Ok(None);
        };
        if frame[field_at..at] != marker_field[..] || field_at < from {
            return Ok(None);
        }
        cuts.push((
            field_at,
            at + MARKER_LEN,
            length_field(records.len(), compact)?,
        ));
        from = at + MARKER_LEN;
    }
    let removed: usize = cuts.iter().map(|(a, b, _)| b - a).sum();
    let added: usize = cuts
        .iter()
        .zip(taken)
        .map(|((_, _, field), r)| field.len() + r.len())
        .sum();
    let size = frame.len() - LENGTH_PREFIX_BYTES - removed + added;
    let prefix = i32::try_from(size).map_err(|_| FrameError::BodyTooLarge { size })?;
    frame[..LENGTH_PREFIX_BYTES].copy_from_slice(&prefix.to_be_bytes());
    let frame = frame.freeze();
    let mut chunks = Vec::with_capacity(3 * taken.len() + 1);
    let mut at = 0usize;
    for ((start, end, field), records) in cuts.into_iter().zip(taken) {
        chunks.push(frame.slice(at..start));
        chunks.push(field.freeze());
        chunks.push(records.clone());
        at = end;
    }
    chunks.push(frame.slice(at..));
    chunks.retain(|c| !c.is_empty());
    Ok(Some(chunks))
}

fn find(haystack: &[u8], needle: &[u8]) -> Option<usize> {
    haystack.windows(needle.len()).position(|w| w == needle)
}

#[cfg(test)]
mod tests {
    use kafka_protocol::messages::fetch_response::{FetchableTopicResponse, PartitionData};
    use kafka_protocol::messages::TopicName;
    use kafka_protocol::protocol::StrBytes;
    use proptest::prelude::*;

    use super::*;
    use crate::apis;

    /// A partition's records: none, small (copied into the frame) or large (its own chunk).
    fn records() -> impl Strategy<Value = Option<Vec<u8>>> {
        prop_oneof![
            Just(None),
            proptest::collection::vec(any::<u8>(), 0..200).prop_map(Some),
            (MIN_SEPARATE_RECORDS..3 * MIN_SEPARATE_RECORDS)
                .prop_map(|n| Some((0..n).map(|i| (i * 7) as u8).collect())),
        ]
    }

    fn response(topics: &[(String, Vec<Option<Vec<u8>>>)]) -> FetchResponse {
        let mut r = FetchResponse::default();
        for (name, parts) in topics {
            let mut t = FetchableTopicResponse::default();
            t.topic = TopicName(StrBytes::from_string(name.clone()));
            for (i, records) in parts.iter().enumerate() {
                let mut p = PartitionData::default();
                p.partition_index = i as i32;
                p.high_watermark = 1000 + i as i64;
                p.records = records.clone().map(Bytes::from);
                t.partitions.push(p);
            }
            r.responses.push(t);
        }
        r
    }

    /// Chunks and the plain frame agree byte for byte; large records are not copied.
    fn check(version: i16, fetch: FetchResponse) {
        let plain = encode_response(
            7,
            ApiKey::Fetch,
            version,
            &ResponseKind::Fetch(fetch.clone()),
        )
        .expect("plain");
        let large: Vec<Bytes> = fetch
            .responses
            .iter()
            .flat_map(|t| &t.partitions)
            .filter_map(|p| p.records.clone())
            .filter(|r| r.len() >= MIN_SEPARATE_RECORDS)
            .collect();
        let chunks = encode_response_chunks(7, ApiKey::Fetch, version, ResponseKind::Fetch(fetch))
            .expect("chunks");
        assert_eq!(chunks.concat(), plain.to_vec(), "v{version}");
        for r in large {
            assert!(
                chunks.len() == 1 || chunks.iter().any(|c| c.as_ptr() == r.as_ptr()),
                "large records are sent from their own buffer"
            );
        }
    }

    proptest! {
        #[test]
        fn chunks_are_the_plain_frame(
            topics in proptest::collection::vec(
                ("[a-z]{1,12}", proptest::collection::vec(records(), 1..5)),
                1..4,
            ),
        ) {
            let (min, max) = apis::supported(ApiKey::Fetch).expect("Fetch is served");
            for version in min..=max {
                check(version, response(&topics));
            }
        }
    }

    #[test]
    fn large_records_become_their_own_chunks() {
        let big = vec![9u8; 3 * MIN_SEPARATE_RECORDS];
        let fetch = response(&[("t".into(), vec![Some(big.clone()), None, Some(big)])]);
        for version in [4, 11, 12] {
            let chunks = encode_response_chunks(
                1,
                ApiKey::Fetch,
                version,
                ResponseKind::Fetch(fetch.clone()),
            )
            .expect("chunks");
            // head, length, records, between, length, records (and a tail from v12).
            assert_eq!(
                chunks.len(),
                if version >= 12 { 7 } else { 6 },
                "v{version}"
            );
            check(version, fetch.clone());
        }
    }

    #[test]
    fn a_marker_in_the_response_falls_back_to_the_plain_frame() {
        let big = vec![1u8; MIN_SEPARATE_RECORDS];
        let small_with_marker = marker(0).to_vec();
        for topics in [
            vec![(
                "t".to_string(),
                vec![Some(small_with_marker.clone()), Some(big.clone())],
            )],
            vec![(
                "t".to_string(),
                vec![Some(big.clone()), Some(small_with_marker.clone())],
            )],
        ] {
            for version in [4, 12] {
                let chunks = encode_response_chunks(
                    1,
                    ApiKey::Fetch,
                    version,
                    ResponseKind::Fetch(response(&topics)),
                )
                .expect("chunks");
                assert_eq!(chunks.len(), 1, "fell back to one plain frame");
                check(version, response(&topics));
            }
        }
    }
}
