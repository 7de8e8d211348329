//! `powercut`: a FUSE file system for tests that can lose power.
//!
//! ```text
//! powercut mount <STATE> <MOUNTPOINT>
//!
//! <STATE>/tree      the file system between mounts (created empty if missing)
//! <STATE>/objects   file contents while mounted (see `fs`)
//! ```
//!
//! `mount` serves `<STATE>/tree` at `<MOUNTPOINT>`, prints `mounted` on stdout once the mount
//! is up, and reads commands from stdin, one a line:
//!
//! - `cut` — the power goes out: nothing becomes durable from this moment, the mount goes
//!   away, and `<STATE>/tree` is replaced by what stable storage held (see `model`: file
//!   contents as of their last fsync, directory entries as of their directory's last fsync).
//!   Prints `cut: ...` and exits 0. The next `mount` serves that tree.
//! - `unmount`, or the end of stdin — a clean unmount: `<STATE>/tree` becomes the live state,
//!   as after a clean shutdown that wrote everything back.
//!
//! Processes using the mount must be gone before either (the test SIGKILLs the broker
//! first); the unmount is retried for a while, then `powercut` fails naming the mount point.
//! `POWERCUT_TRACE=1` logs every namespace change and fsync to stderr.
//!
//! Limits: a cut loses *every* write since a file's last fsync, where a real disk may keep any
//! part of them (torn tails, holes: the storage crate's crash tests cover those); hard links,
//! symlinks, xattrs and `RENAME_EXCHANGE` are refused; mode and times come from the live state.
//!
//! Why a Rust binary on the `fuser` crate: `fuser` is maintained, needs no libfuse (as root it
//! mounts with mount(2) itself), and the durability model is plain Rust that is unit- and
//! property-tested without a mount (`model`); the shell around it is thin.

mod fs;
mod model;
mod tree;

use std::io::{BufRead as _, Write as _};
use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

use anyhow::{bail, Context as _};
use fuser::{Config, MountOption, SessionACL};

use crate::fs::PowerCutFs;
use crate::model::View;

/// How long an unmount keeps retrying while the mount is busy.
const UNMOUNT_TIMEOUT: Duration = Duration::from_secs(10);

fn main() {
    if let Err(e) = run() {
        eprintln!("powercut: error: {e:#}");
        std::process::exit(1);
    }
}

fn run() -> anyhow::Result<()> {
    let args: Vec<String> = std::env::args().skip(1).collect();
    let [cmd, state, mountpoint] = args.as_slice() else {
        bail!("usage: powercut mount <STATE> <MOUNTPOINT>");
    };
    if cmd != "mount" {
        bail!("unknown command {cmd:?}; usage: powercut mount <STATE> <MOUNTPOINT>");
    }
    mount(Path::new(state), Path::new(mountpoint))
}

fn mount(state: &Path, mountpoint: &Path) -> anyhow::Result<()> {
    let tree = state.join("tree");
    let objects = state.join("objects");
    std::fs::create_dir_all(&tree).with_context(|| format!("create {}", tree.display()))?;
    if objects.exists() {
        // Left by a powercut that died: its tree was already moved into it, so it is lost.
        std::fs::remove_dir_all(&objects)
            .with_context(|| format!("remove {}", objects.display()))?;
    }
    std::fs::create_dir(&objects).with_context(|| format!("create {}", objects.display()))?;
    let model = tree::import(&tree, &objects)?;
    std::fs::remove_dir_all(&tree).with_context(|| format!("remove {}", tree.display()))?;

    let trace = std::env::var_os("POWERCUT_TRACE").is_some_and(|v| v == "1");
    let fs = PowerCutFs::new(model, objects.clone(), trace);
    let mut config = Config::default();
    config.mount_options = vec![MountOption::FSName("powercut".into())];
    config.acl = SessionACL::Owner;
    // One thread: requests are applied in the order the kernel sends them.
    config.n_threads = Some(1);
    let session = fuser::spawn_mount(fs.clone(), mountpoint, &config)
        .with_context(|| format!("mount FUSE at {}", mountpoint.display()))?;
    say("mounted")?;

    let mut view = View::Live;
    for line in std::io::stdin().lock().lines() {
        let line = line.context("read stdin")?;
        match line.trim() {
            "cut" => {
                fs.lock().model.cut();
                view = View::Durable;
                break;
            }
            "unmount" => break,
            "" => {}
            other => eprintln!("powercut: unknown command {other:?} (cut, unmount)"),
        }
    }

    unmount(mountpoint)?;
    session
        .join()
        .context("the FUSE session ended with an error")?;

    let fresh = state.join("tree.new");
    let counts = tree::write_out(&fs.lock().model, view, &objects, &fresh)?;
    std::fs::rename(&fresh, &tree).with_context(|| format!("rename {}", fresh.display()))?;
    std::fs::remove_dir_all(&objects).with_context(|| format!("remove {}", objects.display()))?;
    let what = match view {
        View::Durable => "cut",
        View::Live => "unmounted",
    };
    say(&format!(
        "{what}: {} directories, {} files, {} bytes kept",
        counts.dirs, counts.files, counts.bytes
    ))
}

fn say(line: &str) -> anyhow::Result<()> {
    let mut out = std::io::stdout().lock();
    writeln!(out, "{line}").context("write stdout")?;
    out.flush().context("flush stdout")
}

/// Unmounts, retrying while the mount is busy (a process that was just killed may still be
/// closing its files).
fn unmount(mountpoint: &Path) -> anyhow::Result<()> {
    let deadline = Instant::now() + UNMOUNT_TIMEOUT;
    let path = PathBuf::from(mountpoint);
    loop {
        match nix::mount::umount2(&path, nix::mount::MntFlags::empty()) {
            Ok(()) => return Ok(()),
            Err(nix::errno::Errno::EBUSY) if Instant::now() < deadline => {
                std::thread::sleep(Duration::from_millis(50));
            }
            Err(e) => bail!(
                "cannot unmount {}: {e} (is a process still using it?)",
                mountpoint.display()
            ),
        }
    }
}
