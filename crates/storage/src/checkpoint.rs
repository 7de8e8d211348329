//! Small metadata files beside the segments, replaced atomically.
//!
//! ```text
//! partition.checkpoint                   leader-epoch-checkpoint
//!   cairn-partition-checkpoint 2           cairn-leader-epochs 1
//!   log_start_offset <u64>                 <count>
//!   recovery_point <u64>                   <epoch> <start offset>     (count lines)
//!   ordinal_anchor <base> <ordinal>        crc32 <8 hex digits>
//!   clean <base> <size> <next> <maxts>
//!         <maxts offset> <bytes since
//!         time entry>
//!     | clean -
//!   crc32 <8 hex digits>
//! ```
//!
//! Text, so an operator can read them; the trailing CRC-32 (IEEE, `crc32fast`) covers every
//! byte before the `crc32` line. Each file is written to `<name>.tmp`, fsynced, renamed over
//! the old one and the directory fsynced, so a crash leaves either the old or the new file,
//! never a mix. A file that fails its CRC or does not parse is treated as missing, which makes
//! `Log::open` fall back to a full recovery scan — slower, never wrong.
//!
//! `ordinal_anchor` says that the segment based at `<base>` starts with batch number
//! `<ordinal>` (a batch's ordinal is its raft entry number); every other segment's ordinals
//! follow from the entry counts of the dense offset indexes in between.
//!
//! `clean` is written only by `Log::close` after everything is flushed, and rewritten as
//! `clean -` as soon as the log is opened again: its presence is the clean-shutdown marker.

use std::fs;
use std::path::Path;

use crate::error::{IoContext, Result};
use crate::segment::ActiveState;

/// Name of the partition checkpoint file.
pub(crate) const CHECKPOINT_FILE: &str = "partition.checkpoint";
/// Name of the leader-epoch history file.
pub(crate) const EPOCH_FILE: &str = "leader-epoch-checkpoint";

pub(crate) use crate::durable::sync_dir;

/// Replaces `dir/name` with `body` atomically and durably ([`crate::durable::write_atomically`]).
pub(crate) fn write_atomically(dir: &Path, name: &str, body: &str) -> Result<()> {
    crate::durable::write_atomically(dir, name, body.as_bytes())
}

pub(crate) fn seal(mut body: String) -> String {
    let crc = crc32fast::hash(body.as_bytes());
    body.push_str(&format!("crc32 {crc:08x}\n"));
    body
}

/// Reads `dir/name` and returns its lines before the CRC line if the CRC matches.
/// `Ok(None)` if the file is missing or damaged (logged).
pub(crate) fn read_sealed(dir: &Path, name: &str) -> Result<Option<Vec<String>>> {
    let path = dir.join(name);
    let text = match fs::read(&path) {
        Ok(bytes) => bytes,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(None),
        Err(e) => return Err(e).ctx("read", &path),
    };
    let damaged = |why: &str| {
        tracing::warn!(path = %path.display(), why, "ignoring damaged metadata file");
        Ok(None)
    };
    let Ok(text) = String::from_utf8(text) else {
        return damaged("not UTF-8");
    };
    let Some(crc_at) = text.rfind("crc32 ") else {
        return damaged("no crc32 line");
    };
    let (body, crc_line) = text.split_at(crc_at);
    let stored = crc_line
        .trim()
        .strip_prefix("crc32 ")
        .and_then(|h| u32::from_str_radix(h, 16).ok());
    if stored != Some(crc32fast::hash(body.as_bytes())) {
        return damaged("crc32 mismatch");
    }
    Ok(Some(body.lines().map(str::to_string).collect()))
}

/// Contents of `partition.checkpoint`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct PartitionCheckpoint {
    pub(crate) log_start_offset: u64,
    /// Every offset below this is fsynced; segments wholly below it skip recovery.
    pub(crate) recovery_point: u64,
    /// A segment base and the ordinal of that segment's first batch.
    pub(crate) ordinal_anchor: (u64, u64),
    /// Written by a clean close: the active segment's base and state.
    pub(crate) clean: Option<(u64, ActiveState)>,
}

impl PartitionCheckpoint {
    pub(crate) fn write(&self, dir: &Path) -> Result<()> {
        let clean = match &self.clean {
            None => "clean -".to_string(),
            Some((base, s)) => format!(
                "clean {base} {} {} {} {} {}",
                s.size,
                s.next_offset,
                s.max_timestamp,
                s.offset_of_max_timestamp,
                s.bytes_since_time_entry
            ),
        };
        let body = format!(
            "cairn-partition-checkpoint 2\nlog_start_offset {}\nrecovery_point {}\nordinal_anchor {} {}\n{clean}\n",
            self.log_start_offset, self.recovery_point, self.ordinal_anchor.0, self.ordinal_anchor.1
        );
        write_atomically(dir, CHECKPOINT_FILE, &seal(body))
    }

    pub(crate) fn read(dir: &Path) -> Result<Option<PartitionCheckpoint>> {
        let Some(lines) = read_sealed(dir, CHECKPOINT_FILE)? else {
            return Ok(None);
        };
        let parsed = Self::parse(&lines);
        if parsed.is_none() {
            tracing::warn!(dir = %dir.display(), "ignoring unparsable partition checkpoint");
        }
        Ok(parsed)
    }

    fn parse(lines: &[String]) -> Option<PartitionCheckpoint> {
        let [magic, start, rp, anchor, clean] = lines else {
            return None;
        };
        if magic != "cairn-partition-checkpoint 2" {
            return None;
        }
        let (anchor_base, anchor_ordinal) =
            anchor.strip_prefix("ordinal_anchor ")?.split_once(' ')?;
        let ordinal_anchor = (anchor_base.parse().ok()?, anchor_ordinal.parse().ok()?);
        let field = |line: &str, key: &str| line.strip_prefix(key)?.trim().parse::<u64>().ok();
        let clean = match clean.strip_prefix("clean ")?.trim() {
            "-" => None,
            rest => {
                let v: Vec<&str> = rest.split(' ').collect();
                let [base, size, next, maxts, maxoff, since] = v.as_slice() else {
                    return None;
                };
                Some((
                    base.parse().ok()?,
                    ActiveState {
                        size: size.parse().ok()?,
                        next_offset: next.parse().ok()?,
                        max_timestamp: maxts.parse().ok()?,
                        offset_of_max_timestamp: maxoff.parse().ok()?,
                        bytes_since_time_entry: since.parse().ok()?,
                    },
                ))
            }
        };
        Some(PartitionCheckpoint {
            log_start_offset: field(start, "log_start_offset ")?,
            recovery_point: field(rp, "recovery_point ")?,
            ordinal_anchor,
            clean,
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn checkpoint_round_trip_and_damage() {
        let dir = tempfile::tempdir().expect("tempdir");
        assert_eq!(PartitionCheckpoint::read(dir.path()).expect("read"), None);
        let cp = PartitionCheckpoint {
            log_start_offset: 5,
            recovery_point: 77,
            ordinal_anchor: (70, 12),
            clean: Some((
                70,
                ActiveState {
                    size: 1234,
                    next_offset: 90,
                    max_timestamp: -1,
                    offset_of_max_timestamp: 70,
                    bytes_since_time_entry: 12,
                },
            )),
        };
        cp.write(dir.path()).expect("write");
        assert_eq!(
            PartitionCheckpoint::read(dir.path()).expect("read"),
            Some(cp.clone())
        );
        let no_clean = PartitionCheckpoint { clean: None, ..cp };
        no_clean.write(dir.path()).expect("write");
        assert_eq!(
            PartitionCheckpoint::read(dir.path()).expect("read"),
            Some(no_clean)
        );
        // Flip one character: the CRC catches it and the file counts as missing.
        let path = dir.path().join(CHECKPOINT_FILE);
        let text = fs::read_to_string(&path).expect("read");
        fs::write(&path, text.replacen("77", "78", 1)).expect("write");
        assert_eq!(PartitionCheckpoint::read(dir.path()).expect("read"), None);
    }
}
