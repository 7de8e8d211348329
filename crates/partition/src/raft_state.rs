//! The raft state kept beside the log: `HardState` (term, vote, commit) and `ConfState`
//! (voters, learners), in one small file replaced atomically (`raft-state`).
//!
//! ```text
//! cairn-raft-state 2
//! term <u64>
//! vote <u64>
//! commit <u64>
//! voters <id>,<id>,...
//! learners <id>,...
//! voters_outgoing <id>,...      (joint consensus: the old configuration while it lasts)
//! learners_next <id>,...        (joint consensus: voters becoming learners on leaving it)
//! auto_leave <true|false>
//! crc32 <8 hex digits>          (written by cairn_storage::metafile)
//! ```
//!
//! Version 1 files (without the three joint-consensus lines) are still read.
//!
//! Term and vote are written before any message that depends on them is sent (raft's safety
//! rule); the commit index only when convenient, because it can always be re-learned (a stale
//! commit index only delays the high watermark after a restart until the new leader's first
//! entry commits). Entries themselves live in the partition log.

use std::path::Path;

use raft::prelude::{ConfState, HardState};

use crate::error::{PartitionError, Result};

const FILE: &str = "raft-state";

/// Term, vote, commit and membership of one replica.
#[derive(Debug, Clone, PartialEq, Default)]
pub(crate) struct RaftState {
    pub(crate) hard_state: HardState,
    pub(crate) conf_state: ConfState,
}

fn ids(v: &[u64]) -> String {
    v.iter().map(u64::to_string).collect::<Vec<_>>().join(",")
}

impl RaftState {
    pub(crate) fn write(&self, dir: &Path) -> Result<()> {
        let hs = &self.hard_state;
        let cs = &self.conf_state;
        let body = format!(
            "cairn-raft-state 2\nterm {}\nvote {}\ncommit {}\nvoters {}\nlearners {}\n\
             voters_outgoing {}\nlearners_next {}\nauto_leave {}\n",
            hs.term,
            hs.vote,
            hs.commit,
            ids(&cs.voters),
            ids(&cs.learners),
            ids(&cs.voters_outgoing),
            ids(&cs.learners_next),
            cs.auto_leave
        );
        Ok(cairn_storage::metafile::write(dir, FILE, &body)?)
    }

    /// The stored state, `None` for a replica that never wrote one.
    pub(crate) fn read(dir: &Path) -> Result<Option<RaftState>> {
        let Some(lines) = cairn_storage::metafile::read(dir, FILE)? else {
            return Ok(None);
        };
        Self::parse(&lines)
            .map(Some)
            .ok_or_else(|| PartitionError::RaftState {
                path: dir.to_path_buf(),
                reason: "unparsable raft-state file".into(),
            })
    }

    fn parse(lines: &[String]) -> Option<RaftState> {
        let (magic, rest) = lines.split_first()?;
        let (joint, v1) = match (magic.as_str(), rest) {
            ("cairn-raft-state 1", [_, _, _, _, _]) => (None, rest),
            ("cairn-raft-state 2", [_, _, _, _, _, outgoing, next, auto]) => {
                (Some((outgoing, next, auto)), &rest[..5])
            }
            _ => return None,
        };
        let [term, vote, commit, voters, learners] = v1 else {
            return None;
        };
        let num = |line: &str, key: &str| line.strip_prefix(key)?.trim().parse::<u64>().ok();
        let list = |line: &str, key: &str| -> Option<Vec<u64>> {
            let rest = line.strip_prefix(key)?.trim();
            if rest.is_empty() {
                return Some(Vec::new());
            }
            rest.split(',').map(|v| v.parse().ok()).collect()
        };
        let hard_state = HardState {
            term: num(term, "term ")?,
            vote: num(vote, "vote ")?,
            commit: num(commit, "commit ")?,
            ..Default::default()
        };
        let mut conf_state = ConfState {
            voters: list(voters, "voters")?,
            learners: list(learners, "learners")?,
            ..Default::default()
        };
        if let Some((outgoing, next, auto)) = joint {
            conf_state.voters_outgoing = list(outgoing, "voters_outgoing")?;
            conf_state.learners_next = list(next, "learners_next")?;
            conf_state.auto_leave = match auto.strip_prefix("auto_leave ")?.trim() {
                "true" => true,
                "false" => false,
                _ => return None,
            };
        }
        Some(RaftState {
            hard_state,
            conf_state,
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn round_trip() {
        let dir = tempfile::tempdir().expect("tempdir");
        assert_eq!(RaftState::read(dir.path()).expect("read"), None);
        let mut s = RaftState::default();
        s.hard_state.term = 7;
        s.hard_state.vote = 1;
        s.hard_state.commit = 42;
        s.conf_state.voters = vec![1, 2, 3];
        s.conf_state.voters_outgoing = vec![1, 2];
        s.conf_state.learners_next = vec![2];
        s.conf_state.auto_leave = true;
        s.write(dir.path()).expect("write");
        assert_eq!(RaftState::read(dir.path()).expect("read"), Some(s));
    }

    #[test]
    fn version_1_files_are_read() {
        let dir = tempfile::tempdir().expect("tempdir");
        let body = "cairn-raft-state 1\nterm 3\nvote 1\ncommit 9\nvoters 1\nlearners \n";
        cairn_storage::metafile::write(dir.path(), FILE, body).expect("write");
        let s = RaftState::read(dir.path()).expect("read").expect("present");
        assert_eq!((s.hard_state.term, s.hard_state.commit), (3, 9));
        assert_eq!(s.conf_state.voters, vec![1]);
        assert!(s.conf_state.voters_outgoing.is_empty());
    }
}
