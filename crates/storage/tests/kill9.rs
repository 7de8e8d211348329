//! `kill -9` during appends: a child process appends batches and reports each one after
//! `append` returned; the parent SIGKILLs it mid-stream, reopens the log (recovery) and
//! checks that every reported batch is there, intact, in order. Five rounds, each child
//! continuing the log the previous one left. Runs on the real disk, with rolls.

mod common;

use std::io::{BufRead, BufReader};
use std::process::{Command, Stdio};

use cairn_storage::{Log, LogConfig};
use common::{as_stored, batch, read_all};

const CHILD_DIR_ENV: &str = "CAIRN_KILL9_CHILD_DIR";

fn config() -> LogConfig {
    LogConfig {
        segment_bytes: 256 * 1024,
        segment_index_bytes: 64 * 1024,
        ..LogConfig::default()
    }
}

/// The k-th batch of the sequence: its content follows from k alone.
fn nth_batch(k: u64) -> Vec<u8> {
    batch(
        k as i64,
        1 + (k % 5) as usize,
        50 + (k % 300) as usize,
        k as u8,
    )
}

/// Entry point of the child process (run by the parent test through the test binary).
#[test]
#[ignore = "entry point of the kill -9 test's child process, started by that test"]
fn child_appends_until_killed() {
    let dir = std::env::var(CHILD_DIR_ENV).expect("the parent sets the directory");
    let mut log = Log::open(&dir, config()).expect("child opens the log");
    let mut k = read_all(&mut log, 0).len() as u64;
    loop {
        let info = log.append(&nth_batch(k), 0).expect("append");
        // Printed only after append returned: this is the acknowledgement.
        println!("ACK {k} {}", info.base_offset);
        k += 1;
    }
}

#[test]
fn kill_9_during_appends_loses_no_acknowledged_batch() {
    let dir = tempfile::tempdir().expect("tempdir");
    let exe = std::env::current_exe().expect("test binary path");
    let mut acked: Vec<u64> = Vec::new(); // base offset of the k-th acknowledged batch
    for round in 0..5u64 {
        let mut child = Command::new(&exe)
            .args([
                "--exact",
                "child_appends_until_killed",
                "--ignored",
                "--nocapture",
                "--test-threads=1",
            ])
            .env(CHILD_DIR_ENV, dir.path())
            .stdout(Stdio::piped())
            .stderr(Stdio::inherit())
            .spawn()
            .expect("spawn child");
        let stdout = child.stdout.take().expect("piped stdout");
        let target = 2_000 + round * 1_311;
        let mut acks_this_round = 0;
        for line in BufReader::new(stdout).lines() {
            let line = line.expect("read child output");
            // libtest may print "test <name> ... " on the same line before the first ACK.
            let Some((_, rest)) = line.split_once("ACK ") else {
                continue;
            };
            let (k, base) = rest.split_once(' ').expect("ACK k base");
            let (k, base): (u64, u64) = (k.parse().expect("k"), base.parse().expect("base"));
            assert_eq!(k as usize, acked.len(), "child continues the sequence");
            acked.push(base);
            acks_this_round += 1;
            if acks_this_round >= target {
                // SIGKILL while the child is in the middle of further appends.
                child.kill().expect("kill -9");
                break;
            }
        }
        let status = child.wait().expect("wait");
        assert!(!status.success(), "child was killed, round {round}");

        let mut log = Log::open(dir.path(), config()).expect("recover after kill -9");
        let batches = read_all(&mut log, 0);
        assert!(
            batches.len() >= acked.len(),
            "round {round}: {} batches, {} acknowledged",
            batches.len(),
            acked.len()
        );
        for (k, (h, bytes)) in batches.iter().enumerate() {
            let expected_base = acked.get(k).copied().unwrap_or(h.base_offset as u64);
            assert_eq!(
                h.base_offset as u64, expected_base,
                "round {round}: batch {k} offset"
            );
            assert_eq!(
                bytes,
                &as_stored(&nth_batch(k as u64), expected_base, 0),
                "round {round}: batch {k} bytes"
            );
        }
        // A batch appended after the last acknowledgement may survive (whole and verified
        // by read_all) or not; if it did, the next child continues after it.
        for (h, _) in batches.iter().skip(acked.len()) {
            acked.push(h.base_offset as u64);
        }
        assert!(log.segment_count() > 1, "the test covers rolls");
        drop(log);
    }
}
