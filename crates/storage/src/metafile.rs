//! Small metadata files replaced atomically, for the layers above the log (raft state,
//! producer-state snapshots): the same text-plus-CRC, write-fsync-rename-fsync scheme as the
//! log's own checkpoints (see the crate's `checkpoint` module).

use std::path::Path;

use crate::error::Result;

/// Replaces `dir/name` with `body` plus a CRC-32 line, atomically and durably.
pub fn write(dir: &Path, name: &str, body: &str) -> Result<()> {
    crate::checkpoint::write_atomically(dir, name, &crate::checkpoint::seal(body.to_string()))
}

/// The lines of `dir/name` before its CRC line, if the file exists and its CRC matches;
/// `Ok(None)` if it is missing or damaged (logged).
pub fn read(dir: &Path, name: &str) -> Result<Option<Vec<String>>> {
    crate::checkpoint::read_sealed(dir, name)
}
