//! Between mounts the file system is a plain directory tree: reading it into a model at mount
//! (all of it durable: it is what the disk held when the power came back), and writing a
//! view of the model back out at unmount (the live view) or at a cut (the durable view).

use std::fs::{self, File};
use std::os::unix::fs::{MetadataExt, PermissionsExt};
use std::path::Path;

use anyhow::{bail, Context as _};

use crate::fs::object_path;
use crate::model::{Ino, Kind, Meta, Model, View, ROOT};

/// What a written-out tree holds.
#[derive(Debug, Default, Clone, Copy)]
pub(crate) struct Counts {
    pub(crate) dirs: usize,
    pub(crate) files: usize,
    pub(crate) bytes: u64,
}

fn meta_of(m: &fs::Metadata) -> Meta {
    Meta {
        mode: m.mode() & 0o7777,
        uid: m.uid(),
        gid: m.gid(),
    }
}

/// Reads `tree` into a new model, moving each file's bytes to `objects` (as the durable copy,
/// and a copy of it as the live one). Leaves `tree` holding only directories.
pub(crate) fn import(tree: &Path, objects: &Path) -> anyhow::Result<Model> {
    let root = fs::metadata(tree).with_context(|| format!("stat {}", tree.display()))?;
    let mut model = Model::new(meta_of(&root));
    import_dir(&mut model, ROOT, tree, objects)?;
    Ok(model)
}

fn import_dir(model: &mut Model, dir: Ino, path: &Path, objects: &Path) -> anyhow::Result<()> {
    let mut entries = fs::read_dir(path)
        .with_context(|| format!("list {}", path.display()))?
        .collect::<Result<Vec<_>, _>>()
        .with_context(|| format!("list {}", path.display()))?;
    entries.sort_by_key(|e| e.file_name());
    for entry in entries {
        let child = entry.path();
        let m =
            fs::symlink_metadata(&child).with_context(|| format!("stat {}", child.display()))?;
        let name = entry.file_name();
        if m.is_dir() {
            let ino = model
                .import(dir, &name, Kind::Dir, meta_of(&m), 0)
                .map_err(|e| anyhow::anyhow!("import {}: {e:?}", child.display()))?;
            import_dir(model, ino, &child, objects)?;
        } else if m.is_file() {
            let ino = model
                .import(dir, &name, Kind::File, meta_of(&m), m.len())
                .map_err(|e| anyhow::anyhow!("import {}: {e:?}", child.display()))?;
            let durable = object_path(objects, ino, true);
            let live = object_path(objects, ino, false);
            fs::rename(&child, &durable)
                .with_context(|| format!("move {} to {}", child.display(), durable.display()))?;
            fs::copy(&durable, &live)
                .with_context(|| format!("copy {} to {}", durable.display(), live.display()))?;
        } else {
            bail!(
                "{} is neither a file nor a directory; the model has only those",
                child.display()
            );
        }
    }
    Ok(())
}

/// Writes `view` of the model to `dest` (which must not exist), moving the files' bytes out
/// of `objects`.
pub(crate) fn write_out(
    model: &Model,
    view: View,
    objects: &Path,
    dest: &Path,
) -> anyhow::Result<Counts> {
    let items = model
        .tree(view)
        .map_err(|e| anyhow::anyhow!("list the {view:?} tree: {e:?}"))?;
    fs::create_dir(dest).with_context(|| format!("create {}", dest.display()))?;
    let mut counts = Counts::default();
    for item in items {
        let path = dest.join(&item.path);
        match (item.kind, &item.same_as) {
            (Kind::Dir, _) => {
                fs::create_dir(&path).with_context(|| format!("create {}", path.display()))?;
                counts.dirs += 1;
            }
            (Kind::File, Some(first)) => {
                fs::hard_link(dest.join(first), &path)
                    .with_context(|| format!("link {}", path.display()))?;
                continue;
            }
            (Kind::File, None) => {
                let object = object_path(objects, item.ino, view == View::Durable);
                match fs::rename(&object, &path) {
                    Ok(()) => {}
                    Err(e) if e.kind() == std::io::ErrorKind::NotFound => {
                        // Never fsynced (durable view): the name survived, no byte did.
                        File::create(&path)
                            .with_context(|| format!("create {}", path.display()))?;
                    }
                    Err(e) => return Err(e).with_context(|| format!("move {}", object.display())),
                }
                let len = fs::metadata(&path)
                    .with_context(|| format!("stat {}", path.display()))?
                    .len();
                if len != item.size {
                    bail!(
                        "{} has {len} bytes but the model says {} ({view:?} view): a bug in powercut",
                        path.display(),
                        item.size
                    );
                }
                counts.files += 1;
                counts.bytes += len;
            }
        }
        fs::set_permissions(&path, fs::Permissions::from_mode(item.meta.mode))
            .with_context(|| format!("chmod {}", path.display()))?;
    }
    Ok(counts)
}
