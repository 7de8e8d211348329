//! The raft state kept beside the log: `HardState` (term, vote, commit) and `ConfState`
//! (voters, learners), in one small file replaced atomically (`raft-state`).
//!
//! ```text
//! cairn-raft-state 3
//! term <u64>
//! vote <u64>
//! commit <u64>
//! voters <id>,<id>,...
//! learners <id>,...
//! voters_outgoing <id>,...      (joint consensus: the old configuration while it lasts)
//! learners_next <id>,...        (joint consensus: voters becoming learners on leaving it)
//! auto_leave <true|false>
//! snapshot <index> <term> <log start>   (the raft entry just before the log's first, 0 0
//!                               if none, and the log start a snapshot installed brought)
//! conf <index> <voters>/<learners>/<voters_outgoing>/<learners_next>/<auto_leave>
//! ...                           (membership from each index on, oldest first)
//! crc32 <8 hex digits>          (written by cairn_storage::metafile)
//! ```
//!
//! The `snapshot` line is what a raft snapshot of this replica stands for: the entries up to
//! it are gone from the log (retention, DeleteRecords, or a snapshot installed from the
//! leader), and raft still needs that entry's term to match logs. The `conf` lines let a
//! snapshot carry the membership in force at its index, not the current one; those wholly
//! before the snapshot are dropped but the one in force at it.
//!
//! Versions 1 (without the three joint-consensus lines) and 2 (without `snapshot` and
//! `conf`) are still read.
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
    /// Index and term of the raft entry just before the log's first ((0, 0): none).
    pub(crate) snapshot: (u64, u64),
    /// The leader's log start an installed snapshot brought (0: none); applied once the log
    /// reaches it, even after a restart.
    pub(crate) snapshot_log_start: u64,
    /// The membership in force from each index on, oldest first (empty: `conf_state` has
    /// always been in force, as far as this replica knows).
    pub(crate) conf_history: Vec<(u64, ConfState)>,
}

fn ids(v: &[u64]) -> String {
    v.iter().map(u64::to_string).collect::<Vec<_>>().join(",")
}

fn conf_line(cs: &ConfState) -> String {
    format!(
        "{}/{}/{}/{}/{}",
        ids(&cs.voters),
        ids(&cs.learners),
        ids(&cs.voters_outgoing),
        ids(&cs.learners_next),
        cs.auto_leave
    )
}

fn parse_ids(s: &str) -> Option<Vec<u64>> {
    let s = s.trim();
    if s.is_empty() {
        return Some(Vec::new());
    }
    s.split(',').map(|v| v.parse().ok()).collect()
}

fn parse_conf_line(s: &str) -> Option<ConfState> {
    let parts: Vec<&str> = s.split('/').collect();
    let [voters, learners, outgoing, next, auto] = parts.as_slice() else {
        return None;
    };
    Some(ConfState {
        voters: parse_ids(voters)?,
        learners: parse_ids(learners)?,
        voters_outgoing: parse_ids(outgoing)?,
        learners_next: parse_ids(next)?,
        auto_leave: auto.parse().ok()?,
        ..Default::default()
    })
}

impl RaftState {
    /// The membership in force at raft index `index` (after applying the entry there).
    pub(crate) fn conf_at(&self, index: u64) -> ConfState {
        self.conf_history
            .iter()
            .rev()
            .find(|(from, _)| *from <= index)
            .map_or_else(|| self.conf_state.clone(), |(_, cs)| cs.clone())
    }

    /// Records a membership change applied at `index` (the new `conf_state`).
    pub(crate) fn record_conf(&mut self, index: u64, conf_state: ConfState) {
        if self.conf_history.is_empty() {
            // What was in force before: from the start, as far as this replica knows.
            self.conf_history.push((0, self.conf_state.clone()));
        }
        self.conf_history.push((index, conf_state.clone()));
        self.conf_state = conf_state;
    }

    /// The log now starts after entry `index` of `term`: history wholly before it goes.
    pub(crate) fn set_snapshot(&mut self, index: u64, term: u64) {
        self.snapshot = (index, term);
        let in_force = self
            .conf_history
            .iter()
            .rposition(|(from, _)| *from <= index);
        if let Some(keep_from) = in_force {
            self.conf_history.drain(..keep_from);
        }
    }
}

impl RaftState {
    pub(crate) fn write(&self, dir: &Path) -> Result<()> {
        let hs = &self.hard_state;
        let cs = &self.conf_state;
        let mut body = format!(
            "cairn-raft-state 3\nterm {}\nvote {}\ncommit {}\nvoters {}\nlearners {}\n\
             voters_outgoing {}\nlearners_next {}\nauto_leave {}\nsnapshot {} {} {}\n",
            hs.term,
            hs.vote,
            hs.commit,
            ids(&cs.voters),
            ids(&cs.learners),
            ids(&cs.voters_outgoing),
            ids(&cs.learners_next),
            cs.auto_leave,
            self.snapshot.0,
            self.snapshot.1,
            self.snapshot_log_start,
        );
        for (index, cs) in &self.conf_history {
            body.push_str(&format!("conf {index} {}\n", conf_line(cs)));
        }
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
        let (joint, v1, v3) = match (magic.as_str(), rest) {
            ("cairn-raft-state 1", [_, _, _, _, _]) => (None, rest, None),
            ("cairn-raft-state 2", [_, _, _, _, _, outgoing, next, auto]) => {
                (Some((outgoing, next, auto)), &rest[..5], None)
            }
            ("cairn-raft-state 3", [_, _, _, _, _, outgoing, next, auto, snapshot, confs @ ..]) => {
                (
                    Some((outgoing, next, auto)),
                    &rest[..5],
                    Some((snapshot, confs)),
                )
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
        let mut state = RaftState {
            hard_state,
            conf_state,
            ..Default::default()
        };
        if let Some((snapshot, confs)) = v3 {
            let mut it = snapshot.strip_prefix("snapshot ")?.split(' ');
            state.snapshot = (it.next()?.parse().ok()?, it.next()?.parse().ok()?);
            state.snapshot_log_start = it.next()?.parse().ok()?;
            for line in confs {
                let (index, cs) = line.strip_prefix("conf ")?.split_once(' ')?;
                state
                    .conf_history
                    .push((index.parse().ok()?, parse_conf_line(cs)?));
            }
        }
        Some(state)
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
        assert_eq!(RaftState::read(dir.path()).expect("read"), Some(s.clone()));
        s.set_snapshot(12, 3);
        s.snapshot_log_start = 77;
        let mut joined = s.conf_state.clone();
        joined.voters_outgoing.clear();
        joined.learners_next.clear();
        joined.learners = vec![4];
        s.record_conf(20, joined);
        s.write(dir.path()).expect("write");
        assert_eq!(RaftState::read(dir.path()).expect("read"), Some(s));
    }

    /// A snapshot carries the membership in force at its index; history before it goes.
    #[test]
    fn membership_history() {
        let mut s = RaftState::default();
        s.conf_state.voters = vec![1];
        let at = |v: &[u64]| ConfState {
            voters: v.to_vec(),
            ..Default::default()
        };
        s.record_conf(5, at(&[1, 2]));
        s.record_conf(9, at(&[1, 2, 3]));
        assert_eq!(s.conf_at(4).voters, vec![1]);
        assert_eq!(s.conf_at(5).voters, vec![1, 2]);
        assert_eq!(s.conf_at(100).voters, vec![1, 2, 3]);
        s.set_snapshot(7, 2);
        assert_eq!(
            s.conf_history.len(),
            2,
            "the change at 5 is still in force at 7"
        );
        assert_eq!(s.conf_at(7).voters, vec![1, 2]);
        s.set_snapshot(9, 2);
        assert_eq!(s.conf_history, vec![(9, at(&[1, 2, 3]))]);
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
