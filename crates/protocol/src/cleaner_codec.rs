//! The log cleaner's codecs: storage rewrites compacted batches but knows no compression,
//! so the broker hands it these (decompression bounded as for produced batches).

use std::io::{Read, Write};

use cairn_storage::RecordCodec;

use crate::decompress::{decoder, Compression};
use crate::records::RecordLimits;

/// xerial's snappy framing, which Kafka's Java client writes and every client reads: a magic
/// header, then blocks of at most 32 KiB input, each a big-endian length and a raw snappy
/// block.
const XERIAL_MAGIC: [u8; 8] = [0x82, b'S', b'N', b'A', b'P', b'P', b'Y', 0];
const XERIAL_BLOCK: usize = 32 * 1024;

/// Kafka's codecs for [`cairn_storage::RecordCodec`].
#[derive(Debug, Clone, Default)]
pub struct CleanerCodec {
    limits: RecordLimits,
}

fn codec_of(id: u8) -> Result<Compression, String> {
    Compression::from_id(id).ok_or_else(|| format!("unknown compression codec {id}"))
}

impl RecordCodec for CleanerCodec {
    fn decompress(
        &self,
        codec: u8,
        compressed: &[u8],
        max_bytes: usize,
    ) -> Result<Vec<u8>, String> {
        let reader =
            decoder(codec_of(codec)?, compressed, &self.limits).map_err(|e| format!("{e:?}"))?;
        let mut out = Vec::new();
        reader
            .take(max_bytes as u64 + 1)
            .read_to_end(&mut out)
            .map_err(|e| {
                format!(
                    "{} decompression failed: {e}",
                    codec_of(codec).map_or(String::new(), |c| c.to_string())
                )
            })?;
        if out.len() > max_bytes {
            return Err(format!("decompressed records exceed {max_bytes} bytes"));
        }
        Ok(out)
    }

    fn compress(&self, codec: u8, records: &[u8]) -> Result<Vec<u8>, String> {
        let io = |e: std::io::Error| e.to_string();
        match codec_of(codec)? {
            Compression::None => Ok(records.to_vec()),
            Compression::Gzip => {
                let mut e =
                    flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::default());
                e.write_all(records).map_err(io)?;
                e.finish().map_err(io)
            }
            Compression::Snappy => {
                let mut out = Vec::with_capacity(records.len() / 2 + 16);
                out.extend_from_slice(&XERIAL_MAGIC);
                out.extend_from_slice(&1i32.to_be_bytes()); // version
                out.extend_from_slice(&1i32.to_be_bytes()); // oldest compatible version
                let mut enc = snap::raw::Encoder::new();
                for block in records.chunks(XERIAL_BLOCK) {
                    let c = enc.compress_vec(block).map_err(|e| e.to_string())?;
                    out.extend_from_slice(&(c.len() as i32).to_be_bytes());
                    out.extend_from_slice(&c);
                }
                Ok(out)
            }
            Compression::Lz4 => {
                // Kafka's LZ4 frames: independent blocks.
                let mut e = lz4::EncoderBuilder::new()
                    .block_mode(lz4::BlockMode::Independent)
                    .checksum(lz4::ContentChecksum::NoChecksum)
                    .build(Vec::new())
                    .map_err(io)?;
                e.write_all(records).map_err(io)?;
                let (out, result) = e.finish();
                result.map_err(io)?;
                Ok(out)
            }
            Compression::Zstd => zstd::encode_all(records, 3).map_err(io),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_codec_round_trips_and_decompression_is_bounded() {
        let c = CleanerCodec::default();
        let data: Vec<u8> = (0..100_000u32)
            .flat_map(|i| (i % 251).to_be_bytes())
            .collect();
        for id in 0..=4u8 {
            let packed = c.compress(id, &data).expect("compress");
            if id == 0 {
                continue;
            }
            assert_eq!(
                c.decompress(id, &packed, data.len()).expect("decompress"),
                data,
                "codec {id}"
            );
            assert!(
                c.decompress(id, &packed, data.len() - 1).is_err(),
                "codec {id} must stop at the bound"
            );
        }
        assert!(c.compress(6, &data).is_err());
    }
}
