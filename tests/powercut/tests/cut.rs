//! The power-cut file system through a real FUSE mount: what a cut keeps and loses.
//!
//! Needs /dev/fuse and root (mount(2)); without them these tests fail, loudly, rather than
//! skip: the e2e power-cut test depends on this tool.

use std::fs::{self, File, OpenOptions};
use std::io::{BufRead as _, BufReader, Write as _};
use std::path::{Path, PathBuf};
use std::process::{Child, ChildStdin, ChildStdout, Command, Stdio};

/// One `powercut mount` process.
struct Mount {
    child: Option<Child>,
    stdin: Option<ChildStdin>,
    stdout: BufReader<ChildStdout>,
    state: PathBuf,
    dir: PathBuf,
}

impl Mount {
    /// Mounts `<base>/state` at `<base>/mnt` and waits for `mounted`.
    fn start(base: &Path) -> Mount {
        let state = base.join("state");
        let dir = base.join("mnt");
        fs::create_dir_all(&dir).expect("create mount point");
        let mut child = Command::new(env!("CARGO_BIN_EXE_powercut"))
            .arg("mount")
            .arg(&state)
            .arg(&dir)
            .stdin(Stdio::piped())
            .stdout(Stdio::piped())
            .spawn()
            .expect("spawn powercut");
        let stdin = child.stdin.take();
        let mut stdout = BufReader::new(child.stdout.take().expect("stdout"));
        let mut line = String::new();
        stdout.read_line(&mut line).expect("read powercut's stdout");
        assert_eq!(
            line.trim(),
            "mounted",
            "powercut did not mount (it needs /dev/fuse and root; its error is above)"
        );
        Mount {
            child: Some(child),
            stdin,
            stdout,
            state,
            dir,
        }
    }

    fn path(&self, rel: &str) -> PathBuf {
        self.dir.join(rel)
    }

    /// Sends `command` and waits for powercut to exit; returns its last line.
    fn finish(mut self, command: &str) -> String {
        let mut stdin = self.stdin.take().expect("stdin");
        writeln!(stdin, "{command}").expect("send command");
        drop(stdin);
        let mut line = String::new();
        self.stdout.read_line(&mut line).expect("read result");
        let status = self
            .child
            .take()
            .expect("child")
            .wait()
            .expect("wait for powercut");
        assert!(status.success(), "powercut {command}: {status}");
        line.trim().to_string()
    }

    /// Simulates a power cut; returns the base directory for the next mount.
    fn cut(self) -> PathBuf {
        let base = self.state.parent().expect("base").to_path_buf();
        let said = self.finish("cut");
        assert!(said.starts_with("cut: "), "{said}");
        base
    }

    fn unmount(self) -> PathBuf {
        let base = self.state.parent().expect("base").to_path_buf();
        let said = self.finish("unmount");
        assert!(said.starts_with("unmounted: "), "{said}");
        base
    }
}

impl Drop for Mount {
    fn drop(&mut self) {
        if let Some(mut child) = self.child.take() {
            // A failed test: leave no mount behind.
            let _ = child.kill();
            let _ = child.wait();
            let _ = nix::mount::umount2(&self.dir, nix::mount::MntFlags::MNT_DETACH);
        }
    }
}

fn fsync_dir(path: &Path) {
    File::open(path)
        .and_then(|d| d.sync_all())
        .expect("fsync dir");
}

fn write_synced(path: &Path, bytes: &[u8]) {
    let mut f = File::create(path).expect("create");
    f.write_all(bytes).expect("write");
    f.sync_all().expect("fsync");
}

/// The files and directories under `root`, with file contents.
fn listing(root: &Path) -> Vec<(String, Option<Vec<u8>>)> {
    let mut out = Vec::new();
    let mut stack = vec![root.to_path_buf()];
    while let Some(dir) = stack.pop() {
        for entry in fs::read_dir(&dir).expect("list") {
            let path = entry.expect("entry").path();
            let rel = path
                .strip_prefix(root)
                .expect("under root")
                .display()
                .to_string();
            if path.is_dir() {
                out.push((rel, None));
                stack.push(path);
            } else {
                out.push((rel, Some(fs::read(&path).expect("read"))));
            }
        }
    }
    out.sort();
    out
}

fn file(rel: &str, bytes: &[u8]) -> (String, Option<Vec<u8>>) {
    (rel.to_string(), Some(bytes.to_vec()))
}

fn dir(rel: &str) -> (String, Option<Vec<u8>>) {
    (rel.to_string(), None)
}

#[test]
fn a_fsynced_file_whose_name_was_never_fsynced_is_gone_after_a_cut() {
    let base = tempfile::tempdir().expect("tempdir");
    let m = Mount::start(base.path());
    fs::create_dir(m.path("d")).expect("mkdir");
    fsync_dir(&m.path(""));
    write_synced(&m.path("d/lost"), b"fsynced data");
    write_synced(&m.path("kept"), b"x");
    fsync_dir(&m.path(""));
    // d was never fsynced after `lost` was created in it.
    let m = Mount::start(&m.cut());
    assert_eq!(
        listing(&m.dir),
        [dir("d"), file("kept", b"x")],
        "the data of d/lost was fsynced, its name was not"
    );
    m.unmount();
}

#[test]
fn a_new_directory_needs_its_parent_fsynced() {
    let base = tempfile::tempdir().expect("tempdir");
    let m = Mount::start(base.path());
    fs::create_dir_all(m.path("a/b")).expect("mkdir");
    write_synced(&m.path("a/b/f"), b"data");
    fsync_dir(&m.path("a/b"));
    fsync_dir(&m.path("a"));
    let m = Mount::start(&m.cut());
    assert_eq!(listing(&m.dir), [], "the root never named a");
    fs::create_dir_all(m.path("a/b")).expect("mkdir");
    write_synced(&m.path("a/b/f"), b"data");
    for d in ["a/b", "a", ""] {
        fsync_dir(&m.path(d));
    }
    let m = Mount::start(&m.cut());
    assert_eq!(
        listing(&m.dir),
        [dir("a"), dir("a/b"), file("a/b/f", b"data")]
    );
    m.unmount();
}

#[test]
fn only_fsynced_bytes_survive() {
    let base = tempfile::tempdir().expect("tempdir");
    let m = Mount::start(base.path());
    let mut f = File::create(m.path("log")).expect("create");
    f.write_all(b"first ").expect("write");
    f.sync_data().expect("fdatasync");
    f.write_all(b"second").expect("write");
    drop(f);
    File::create(m.path("never-synced"))
        .and_then(|mut f| f.write_all(b"gone"))
        .expect("write");
    fsync_dir(&m.path(""));
    let m = Mount::start(&m.cut());
    assert_eq!(
        listing(&m.dir),
        [file("log", b"first "), file("never-synced", b"")],
        "a durable name keeps only the fsynced bytes"
    );
    m.unmount();
}

#[test]
fn atomic_replace_needs_the_directory_fsync() {
    let base = tempfile::tempdir().expect("tempdir");
    let m = Mount::start(base.path());
    write_synced(&m.path("checkpoint"), b"old");
    fsync_dir(&m.path(""));
    write_synced(&m.path("checkpoint.tmp"), b"new");
    fs::rename(m.path("checkpoint.tmp"), m.path("checkpoint")).expect("rename");
    let m = Mount::start(&m.cut());
    assert_eq!(
        listing(&m.dir),
        [file("checkpoint", b"old")],
        "rename not yet durable"
    );
    write_synced(&m.path("checkpoint.tmp"), b"new");
    fs::rename(m.path("checkpoint.tmp"), m.path("checkpoint")).expect("rename");
    fsync_dir(&m.path(""));
    let m = Mount::start(&m.cut());
    assert_eq!(listing(&m.dir), [file("checkpoint", b"new")]);
    m.unmount();
}

#[test]
fn a_move_between_directories_is_durable_per_directory() {
    let base = tempfile::tempdir().expect("tempdir");
    let m = Mount::start(base.path());
    for d in ["from", "to"] {
        fs::create_dir(m.path(d)).expect("mkdir");
    }
    write_synced(&m.path("from/f"), b"moved");
    for d in ["from", "to", ""] {
        fsync_dir(&m.path(d));
    }
    fs::rename(m.path("from/f"), m.path("to/f")).expect("rename");
    fsync_dir(&m.path("from"));
    let m = Mount::start(&m.cut());
    assert_eq!(
        listing(&m.dir),
        [dir("from"), dir("to")],
        "the old directory forgot the file, the new one never learnt it"
    );
    m.unmount();
}

#[test]
fn unlink_and_truncate_are_undone_unless_fsynced() {
    let base = tempfile::tempdir().expect("tempdir");
    let m = Mount::start(base.path());
    write_synced(&m.path("deleted"), b"still here");
    write_synced(&m.path("cut"), b"0123456789");
    fsync_dir(&m.path(""));
    fs::remove_file(m.path("deleted")).expect("unlink");
    OpenOptions::new()
        .write(true)
        .open(m.path("cut"))
        .and_then(|f| f.set_len(4))
        .expect("truncate");
    let m = Mount::start(&m.cut());
    assert_eq!(
        listing(&m.dir),
        [file("cut", b"0123456789"), file("deleted", b"still here")]
    );
    fs::remove_file(m.path("deleted")).expect("unlink");
    fsync_dir(&m.path(""));
    let f = OpenOptions::new()
        .write(true)
        .open(m.path("cut"))
        .expect("open");
    f.set_len(4).expect("truncate");
    f.set_len(6).expect("extend");
    f.sync_all().expect("fsync");
    drop(f);
    let m = Mount::start(&m.cut());
    assert_eq!(listing(&m.dir), [file("cut", b"0123\0\0")]);
    m.unmount();
}

#[test]
fn a_clean_unmount_keeps_everything_and_a_remount_starts_durable() {
    let base = tempfile::tempdir().expect("tempdir");
    let m = Mount::start(base.path());
    fs::create_dir(m.path("d")).expect("mkdir");
    fs::write(m.path("d/f"), b"never fsynced").expect("write");
    let m = Mount::start(&m.unmount());
    assert_eq!(listing(&m.dir), [dir("d"), file("d/f", b"never fsynced")]);
    // What a mount finds is what the disk held: a cut right away loses none of it.
    let m = Mount::start(&m.cut());
    assert_eq!(listing(&m.dir), [dir("d"), file("d/f", b"never fsynced")]);
    m.unmount();
}
