//! What a power cut keeps: a namespace of directories and files with two views of it.
//!
//! The *live* view is what every process reads: every create, write, rename and unlink as soon
//! as it returns. The *durable* view is what stable storage holds, strictly as POSIX promises
//! it and no more:
//!
//! - a file's bytes and size are durable as of its last `fsync`/`fdatasync`;
//! - a directory's entries (a name and the inode it names) are durable as of the last `fsync`
//!   of *that* directory. A new file is not reachable after a cut until its directory was
//!   fsynced, however often the file itself was; a new directory is not reachable until its
//!   parent was fsynced; a renamed file keeps its old name in the durable view until the old
//!   directory is fsynced, and gets its new name only when the new directory is.
//!
//! A cut ([`Model::cut`]) freezes the durable view; [`Model::tree`] lists it for the shell to
//! write out. Ext4 and XFS keep more than this in practice (journalled metadata, ordered data);
//! a program that survives this model survives any POSIX file system.
//!
//! File *contents* live outside the model (the shell keeps a live and a durable copy of each
//! file); the model only tracks which byte ranges of a file changed since its last fsync and
//! hands the shell a [`SyncPlan`] that brings the durable copy up to date without copying
//! the whole file.
//!
//! The model knows no files, clocks or FUSE: it is driven with plain values and unit-tested
//! so (see the tests at the end, including a property test of [`FileSync`] against whole
//! copies).

use std::collections::{BTreeMap, HashSet};
use std::ffi::{OsStr, OsString};
use std::ops::Range;
use std::path::PathBuf;

/// An inode number. Numbers are never reused within one mount.
pub(crate) type Ino = u64;

/// The root directory's inode (FUSE's fixed root number).
pub(crate) const ROOT: Ino = 1;

/// What a node is.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Kind {
    File,
    Dir,
}

/// Why a namespace operation failed, as the errno the kernel passes on.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum FsError {
    NotFound,
    Exists,
    NotDir,
    IsDir,
    NotEmpty,
    /// Moving a directory into itself, or another operation POSIX calls EINVAL.
    Invalid,
}

/// Owner and permission bits of a node.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct Meta {
    pub(crate) mode: u32,
    pub(crate) uid: u32,
    pub(crate) gid: u32,
}

/// Which view of the namespace to list.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum View {
    Live,
    Durable,
}

/// How to bring a file's durable copy up to date at an fsync: cut it to `keep` bytes (what
/// lies beyond was truncated away since the last fsync), extend it with zeros to `size`, then
/// copy `ranges` from the live file.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct SyncPlan {
    pub(crate) keep: u64,
    pub(crate) size: u64,
    pub(crate) ranges: Vec<Range<u64>>,
}

/// The fsync bookkeeping of one file.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct FileSync {
    /// Live size.
    pub(crate) size: u64,
    /// Size of the durable copy.
    pub(crate) durable_size: u64,
    /// Smallest live size since the last fsync: bytes of the durable copy at or past it may
    /// have been truncated away (and read as zeros, or were rewritten, live).
    min_size: u64,
    /// Byte ranges written since the last fsync: sorted, disjoint, not touching, within `size`.
    dirty: Vec<Range<u64>>,
}

impl FileSync {
    /// A file whose live and durable contents are the same `size` bytes.
    pub(crate) fn synced(size: u64) -> FileSync {
        FileSync {
            size,
            durable_size: size,
            min_size: size,
            dirty: Vec::new(),
        }
    }

    /// Records a write of `len` bytes at `offset`.
    pub(crate) fn wrote(&mut self, offset: u64, len: u64) {
        if len == 0 {
            return;
        }
        let end = offset.saturating_add(len);
        self.size = self.size.max(end);
        // Merge with every range the new one overlaps or touches.
        let mut merged = offset..end;
        let first = self.dirty.partition_point(|r| r.end < merged.start);
        let mut last = first;
        while last < self.dirty.len() && self.dirty[last].start <= merged.end {
            merged.start = merged.start.min(self.dirty[last].start);
            merged.end = merged.end.max(self.dirty[last].end);
            last += 1;
        }
        self.dirty.splice(first..last, [merged]);
    }

    /// Records a truncate (or extension) to `size` bytes.
    pub(crate) fn set_size(&mut self, size: u64) {
        if size < self.size {
            self.min_size = self.min_size.min(size);
            self.dirty.retain_mut(|r| {
                r.end = r.end.min(size);
                r.start < r.end
            });
        }
        self.size = size;
    }

    /// The file is fsynced: what to copy, after which the durable copy equals the live file.
    pub(crate) fn sync(&mut self) -> SyncPlan {
        let plan = SyncPlan {
            keep: self.min_size.min(self.durable_size),
            size: self.size,
            ranges: std::mem::take(&mut self.dirty),
        };
        self.durable_size = self.size;
        self.min_size = self.size;
        plan
    }
}

#[derive(Debug, Clone)]
enum Body {
    Dir {
        live: BTreeMap<OsString, Ino>,
        durable: BTreeMap<OsString, Ino>,
        /// The live parent (for a directory, at most one); the root is its own parent.
        parent: Ino,
    },
    File(FileSync),
}

/// One inode.
#[derive(Debug, Clone)]
pub(crate) struct Node {
    pub(crate) meta: Meta,
    /// Live names of the node (0 once unlinked; kept, since a durable name may still name it).
    pub(crate) links: u32,
    body: Body,
}

impl Node {
    pub(crate) fn kind(&self) -> Kind {
        match self.body {
            Body::Dir { .. } => Kind::Dir,
            Body::File(_) => Kind::File,
        }
    }

    /// Live size of a file (0 for a directory).
    pub(crate) fn size(&self) -> u64 {
        match &self.body {
            Body::File(f) => f.size,
            Body::Dir { .. } => 0,
        }
    }
}

/// One entry of a listed tree: `path` relative to the root, parents before children.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct TreeItem {
    pub(crate) path: PathBuf,
    pub(crate) ino: Ino,
    pub(crate) kind: Kind,
    pub(crate) meta: Meta,
    /// For a file: its size in the listed view.
    pub(crate) size: u64,
    /// A file already listed under another name (its second durable name after a rename
    /// whose two directories were both fsynced, the first one before): that path.
    pub(crate) same_as: Option<PathBuf>,
}

/// The namespace, live and durable. See the module documentation.
#[derive(Debug)]
pub(crate) struct Model {
    nodes: Vec<Option<Node>>,
    /// Set by a power cut: nothing becomes durable any more.
    cut: bool,
}

impl Model {
    /// An empty root directory, durable.
    pub(crate) fn new(root: Meta) -> Model {
        let mut model = Model {
            nodes: vec![None, None],
            cut: false,
        };
        model.nodes[ROOT as usize] = Some(Node {
            meta: root,
            links: 1,
            body: Body::Dir {
                live: BTreeMap::new(),
                durable: BTreeMap::new(),
                parent: ROOT,
            },
        });
        model
    }

    /// The node `ino`.
    pub(crate) fn node(&self, ino: Ino) -> Result<&Node, FsError> {
        self.nodes
            .get(ino as usize)
            .and_then(Option::as_ref)
            .ok_or(FsError::NotFound)
    }

    fn node_mut(&mut self, ino: Ino) -> Result<&mut Node, FsError> {
        self.nodes
            .get_mut(ino as usize)
            .and_then(Option::as_mut)
            .ok_or(FsError::NotFound)
    }

    fn live_entries(&self, dir: Ino) -> Result<&BTreeMap<OsString, Ino>, FsError> {
        match &self.node(dir)?.body {
            Body::Dir { live, .. } => Ok(live),
            Body::File(_) => Err(FsError::NotDir),
        }
    }

    fn live_entries_mut(&mut self, dir: Ino) -> Result<&mut BTreeMap<OsString, Ino>, FsError> {
        match &mut self.node_mut(dir)?.body {
            Body::Dir { live, .. } => Ok(live),
            Body::File(_) => Err(FsError::NotDir),
        }
    }

    /// Changes a node's owner or permissions.
    pub(crate) fn set_meta(&mut self, ino: Ino, meta: Meta) -> Result<(), FsError> {
        self.node_mut(ino)?.meta = meta;
        Ok(())
    }

    /// The node named `name` in directory `parent`.
    pub(crate) fn lookup(&self, parent: Ino, name: &OsStr) -> Result<Ino, FsError> {
        self.live_entries(parent)?
            .get(name)
            .copied()
            .ok_or(FsError::NotFound)
    }

    /// The live entries of a directory, by name.
    pub(crate) fn entries(&self, dir: Ino) -> Result<Vec<(OsString, Ino, Kind)>, FsError> {
        self.live_entries(dir)?
            .iter()
            .map(|(name, ino)| Ok((name.clone(), *ino, self.node(*ino)?.kind())))
            .collect()
    }

    /// The live parent of a directory.
    pub(crate) fn parent(&self, dir: Ino) -> Result<Ino, FsError> {
        match &self.node(dir)?.body {
            Body::Dir { parent, .. } => Ok(*parent),
            Body::File(_) => Err(FsError::NotDir),
        }
    }

    fn add(&mut self, parent: Ino, name: &OsStr, meta: Meta, body: Body) -> Result<Ino, FsError> {
        if self.live_entries(parent)?.contains_key(name) {
            return Err(FsError::Exists);
        }
        let ino = self.nodes.len() as Ino;
        self.nodes.push(Some(Node {
            meta,
            links: 1,
            body,
        }));
        self.live_entries_mut(parent)?.insert(name.to_owned(), ino);
        Ok(ino)
    }

    /// Creates an empty directory (live only until `parent` is fsynced).
    pub(crate) fn mkdir(&mut self, parent: Ino, name: &OsStr, meta: Meta) -> Result<Ino, FsError> {
        let body = Body::Dir {
            live: BTreeMap::new(),
            durable: BTreeMap::new(),
            parent,
        };
        self.add(parent, name, meta, body)
    }

    /// Creates an empty file (live only until `parent` is fsynced).
    pub(crate) fn create(&mut self, parent: Ino, name: &OsStr, meta: Meta) -> Result<Ino, FsError> {
        self.add(parent, name, meta, Body::File(FileSync::synced(0)))
    }

    /// Adds a node that is already durable, with its name (a file of `size` bytes whose
    /// durable copy holds the same bytes): what a mount finds on disk.
    pub(crate) fn import(
        &mut self,
        parent: Ino,
        name: &OsStr,
        kind: Kind,
        meta: Meta,
        size: u64,
    ) -> Result<Ino, FsError> {
        let ino = match kind {
            Kind::Dir => self.mkdir(parent, name, meta)?,
            Kind::File => self.add(parent, name, meta, Body::File(FileSync::synced(size)))?,
        };
        if let Body::Dir { durable, .. } = &mut self.node_mut(parent)?.body {
            durable.insert(name.to_owned(), ino);
        }
        Ok(ino)
    }

    /// Removes the name of a file.
    pub(crate) fn unlink(&mut self, parent: Ino, name: &OsStr) -> Result<(), FsError> {
        let ino = self.lookup(parent, name)?;
        if self.node(ino)?.kind() == Kind::Dir {
            return Err(FsError::IsDir);
        }
        self.live_entries_mut(parent)?.remove(name);
        let node = self.node_mut(ino)?;
        node.links = node.links.saturating_sub(1);
        Ok(())
    }

    /// Removes an empty directory.
    pub(crate) fn rmdir(&mut self, parent: Ino, name: &OsStr) -> Result<(), FsError> {
        let ino = self.lookup(parent, name)?;
        if !self.live_entries(ino)?.is_empty() {
            return Err(FsError::NotEmpty);
        }
        self.live_entries_mut(parent)?.remove(name);
        self.node_mut(ino)?.links = 0;
        Ok(())
    }

    /// `rename(2)`: moves `parent/name` to `new_parent/new_name`, replacing what is there
    /// (unless `no_replace`) if the kinds allow it.
    pub(crate) fn rename(
        &mut self,
        parent: Ino,
        name: &OsStr,
        new_parent: Ino,
        new_name: &OsStr,
        no_replace: bool,
    ) -> Result<(), FsError> {
        let ino = self.lookup(parent, name)?;
        self.live_entries(new_parent)?;
        let kind = self.node(ino)?.kind();
        if kind == Kind::Dir {
            // A directory cannot move below itself.
            let mut at = new_parent;
            loop {
                if at == ino {
                    return Err(FsError::Invalid);
                }
                if at == ROOT {
                    break;
                }
                at = self.parent(at)?;
            }
        }
        if let Ok(target) = self.lookup(new_parent, new_name) {
            if no_replace {
                return Err(FsError::Exists);
            }
            if target == ino {
                return Ok(()); // POSIX: two names of one file; nothing happens.
            }
            match (kind, self.node(target)?.kind()) {
                (Kind::Dir, Kind::File) => return Err(FsError::NotDir),
                (Kind::File, Kind::Dir) => return Err(FsError::IsDir),
                (Kind::Dir, Kind::Dir) if !self.live_entries(target)?.is_empty() => {
                    return Err(FsError::NotEmpty)
                }
                _ => {}
            }
            let replaced = self.node_mut(target)?;
            replaced.links = replaced.links.saturating_sub(1);
        }
        self.live_entries_mut(parent)?.remove(name);
        self.live_entries_mut(new_parent)?
            .insert(new_name.to_owned(), ino);
        if let Body::Dir { parent, .. } = &mut self.node_mut(ino)?.body {
            *parent = new_parent;
        }
        Ok(())
    }

    /// Records a write to a file.
    pub(crate) fn wrote(&mut self, ino: Ino, offset: u64, len: u64) -> Result<(), FsError> {
        match &mut self.node_mut(ino)?.body {
            Body::File(f) => {
                f.wrote(offset, len);
                Ok(())
            }
            Body::Dir { .. } => Err(FsError::IsDir),
        }
    }

    /// Records a truncate or extension of a file.
    pub(crate) fn set_size(&mut self, ino: Ino, size: u64) -> Result<(), FsError> {
        match &mut self.node_mut(ino)?.body {
            Body::File(f) => {
                f.set_size(size);
                Ok(())
            }
            Body::Dir { .. } => Err(FsError::IsDir),
        }
    }

    /// `fsync` of a file: its contents become durable. `None` after a cut (nothing to do).
    pub(crate) fn sync_file(&mut self, ino: Ino) -> Result<Option<SyncPlan>, FsError> {
        let cut = self.cut;
        match &mut self.node_mut(ino)?.body {
            Body::File(f) if !cut => Ok(Some(f.sync())),
            Body::File(_) => Ok(None),
            Body::Dir { .. } => Err(FsError::IsDir),
        }
    }

    /// `fsync` of a directory: its entries become durable (not the entries of its
    /// subdirectories, nor its own name in its parent).
    pub(crate) fn sync_dir(&mut self, ino: Ino) -> Result<(), FsError> {
        let cut = self.cut;
        match &mut self.node_mut(ino)?.body {
            Body::Dir { live, durable, .. } => {
                if !cut {
                    durable.clone_from(live);
                }
                Ok(())
            }
            Body::File(_) => Err(FsError::NotDir),
        }
    }

    /// The power goes out: from now on nothing becomes durable.
    pub(crate) fn cut(&mut self) {
        self.cut = true;
    }

    /// Every node reachable from the root in `view`, parents first, by name.
    ///
    /// In the durable view a node can be reachable twice (a file renamed between two
    /// directories that were both fsynced, the old one first): the second name of a file is
    /// listed with `same_as`, a directory's second name is dropped.
    pub(crate) fn tree(&self, view: View) -> Result<Vec<TreeItem>, FsError> {
        let mut items = Vec::new();
        let mut seen_files: BTreeMap<Ino, PathBuf> = BTreeMap::new();
        let mut seen_dirs: HashSet<Ino> = HashSet::from([ROOT]);
        let mut stack = vec![(ROOT, PathBuf::new())];
        while let Some((dir, path)) = stack.pop() {
            let entries = match (&self.node(dir)?.body, view) {
                (Body::Dir { live, .. }, View::Live) => live,
                (Body::Dir { durable, .. }, View::Durable) => durable,
                (Body::File(_), _) => return Err(FsError::NotDir),
            };
            let mut subdirs = Vec::new();
            for (name, &ino) in entries {
                let node = self.node(ino)?;
                let child = path.join(name);
                let (size, same_as) = match &node.body {
                    Body::File(f) => {
                        let size = match view {
                            View::Live => f.size,
                            View::Durable => f.durable_size,
                        };
                        (size, seen_files.get(&ino).cloned())
                    }
                    Body::Dir { .. } => {
                        if !seen_dirs.insert(ino) {
                            continue;
                        }
                        subdirs.push((ino, child.clone()));
                        (0, None)
                    }
                };
                if node.kind() == Kind::File && same_as.is_none() {
                    seen_files.insert(ino, child.clone());
                }
                items.push(TreeItem {
                    path: child,
                    ino,
                    kind: node.kind(),
                    meta: node.meta,
                    size,
                    same_as,
                });
            }
            // Reversed, so the stack visits subdirectories in name order.
            stack.extend(subdirs.into_iter().rev());
        }
        Ok(items)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    const META: Meta = Meta {
        mode: 0o755,
        uid: 0,
        gid: 0,
    };

    fn os(s: &str) -> &OsStr {
        OsStr::new(s)
    }

    /// The listed paths (sorted: `tree` promises parents first, not an order of siblings'
    /// children) and sizes.
    fn paths(model: &Model, view: View) -> Vec<(String, u64)> {
        let mut paths: Vec<_> = model
            .tree(view)
            .expect("tree")
            .into_iter()
            .map(|i| (i.path.display().to_string(), i.size))
            .collect();
        paths.sort();
        paths
    }

    #[test]
    fn a_fsynced_file_without_a_fsynced_name_is_lost() {
        let mut m = Model::new(META);
        let f = m.create(ROOT, os("f"), META).expect("create");
        m.wrote(f, 0, 10).expect("write");
        assert_eq!(m.sync_file(f).expect("fsync").map(|p| p.size), Some(10));
        assert_eq!(paths(&m, View::Live), [("f".into(), 10)]);
        assert_eq!(paths(&m, View::Durable), []);
        m.sync_dir(ROOT).expect("fsync dir");
        assert_eq!(paths(&m, View::Durable), [("f".into(), 10)]);
    }

    #[test]
    fn a_fsynced_name_without_fsynced_data_is_an_empty_file() {
        let mut m = Model::new(META);
        let f = m.create(ROOT, os("f"), META).expect("create");
        m.wrote(f, 0, 10).expect("write");
        m.sync_dir(ROOT).expect("fsync dir");
        assert_eq!(paths(&m, View::Durable), [("f".into(), 0)]);
    }

    #[test]
    fn a_new_directory_needs_its_parent_fsynced() {
        let mut m = Model::new(META);
        let d = m.mkdir(ROOT, os("d"), META).expect("mkdir");
        let f = m.create(d, os("f"), META).expect("create");
        m.wrote(f, 0, 3).expect("write");
        m.sync_file(f).expect("fsync");
        m.sync_dir(d).expect("fsync d");
        assert_eq!(paths(&m, View::Durable), [], "d's own name is not durable");
        m.sync_dir(ROOT).expect("fsync root");
        assert_eq!(
            paths(&m, View::Durable),
            [("d".into(), 0), ("d/f".into(), 3)]
        );
    }

    #[test]
    fn rename_is_durable_per_directory() {
        let mut m = Model::new(META);
        let a = m.mkdir(ROOT, os("a"), META).expect("mkdir");
        let b = m.mkdir(ROOT, os("b"), META).expect("mkdir");
        let f = m.create(a, os("f"), META).expect("create");
        m.wrote(f, 0, 5).expect("write");
        m.sync_file(f).expect("fsync");
        for d in [ROOT, a, b] {
            m.sync_dir(d).expect("fsync");
        }
        m.rename(a, os("f"), b, os("g"), false).expect("rename");
        assert_eq!(
            paths(&m, View::Durable),
            [("a".into(), 0), ("a/f".into(), 5), ("b".into(), 0)],
            "nothing fsynced: the old name"
        );
        m.sync_dir(a).expect("fsync a");
        assert_eq!(
            paths(&m, View::Durable),
            [("a".into(), 0), ("b".into(), 0)],
            "old directory fsynced first: no name at all"
        );
        m.sync_dir(b).expect("fsync b");
        assert_eq!(
            paths(&m, View::Durable),
            [("a".into(), 0), ("b".into(), 0), ("b/g".into(), 5)]
        );
    }

    #[test]
    fn rename_over_a_file_in_one_directory_is_atomic_at_its_fsync() {
        let mut m = Model::new(META);
        let old = m.create(ROOT, os("cp"), META).expect("create");
        m.wrote(old, 0, 4).expect("write");
        m.sync_file(old).expect("fsync");
        m.sync_dir(ROOT).expect("fsync");
        let tmp = m.create(ROOT, os("cp.tmp"), META).expect("create");
        m.wrote(tmp, 0, 9).expect("write");
        m.sync_file(tmp).expect("fsync");
        m.rename(ROOT, os("cp.tmp"), ROOT, os("cp"), false)
            .expect("rename");
        assert_eq!(paths(&m, View::Durable), [("cp".into(), 4)]);
        m.sync_dir(ROOT).expect("fsync");
        assert_eq!(paths(&m, View::Durable), [("cp".into(), 9)]);
        assert_eq!(paths(&m, View::Live), [("cp".into(), 9)]);
    }

    #[test]
    fn a_file_with_two_durable_names_is_listed_once_and_linked() {
        let mut m = Model::new(META);
        let a = m.mkdir(ROOT, os("a"), META).expect("mkdir");
        let b = m.mkdir(ROOT, os("b"), META).expect("mkdir");
        let f = m.create(a, os("f"), META).expect("create");
        for d in [ROOT, a] {
            m.sync_dir(d).expect("fsync");
        }
        m.rename(a, os("f"), b, os("f"), false).expect("rename");
        m.sync_dir(b).expect("fsync b");
        let tree = m.tree(View::Durable).expect("tree");
        let names: Vec<_> = tree
            .iter()
            .filter(|i| i.ino == f)
            .map(|i| (i.path.clone(), i.same_as.clone()))
            .collect();
        assert_eq!(
            names,
            [
                (PathBuf::from("a/f"), None),
                (PathBuf::from("b/f"), Some(PathBuf::from("a/f")))
            ]
        );
    }

    #[test]
    fn unlink_and_rmdir_are_durable_at_the_directory_fsync() {
        let mut m = Model::new(META);
        let d = m.mkdir(ROOT, os("d"), META).expect("mkdir");
        let f = m.create(ROOT, os("f"), META).expect("create");
        m.wrote(f, 0, 2).expect("write");
        m.sync_file(f).expect("fsync");
        m.sync_dir(ROOT).expect("fsync");
        m.unlink(ROOT, os("f")).expect("unlink");
        m.rmdir(ROOT, os("d")).expect("rmdir");
        assert_eq!(paths(&m, View::Live), []);
        assert_eq!(paths(&m, View::Durable), [("d".into(), 0), ("f".into(), 2)]);
        m.sync_dir(ROOT).expect("fsync");
        assert_eq!(paths(&m, View::Durable), []);
        assert_eq!(m.node(d).expect("node").links, 0);
    }

    #[test]
    fn namespace_errors_are_posix() {
        let mut m = Model::new(META);
        let d = m.mkdir(ROOT, os("d"), META).expect("mkdir");
        let e = m.mkdir(d, os("e"), META).expect("mkdir");
        m.create(d, os("f"), META).expect("create");
        assert_eq!(m.mkdir(ROOT, os("d"), META), Err(FsError::Exists));
        assert_eq!(m.rmdir(ROOT, os("d")), Err(FsError::NotEmpty));
        assert_eq!(m.unlink(ROOT, os("d")), Err(FsError::IsDir));
        assert_eq!(m.lookup(ROOT, os("x")), Err(FsError::NotFound));
        assert_eq!(
            m.rename(ROOT, os("d"), e, os("d2"), false),
            Err(FsError::Invalid)
        );
        assert_eq!(
            m.rename(d, os("f"), ROOT, os("d"), false),
            Err(FsError::IsDir)
        );
        assert_eq!(
            m.rename(d, os("e"), d, os("f"), false),
            Err(FsError::NotDir)
        );
        assert_eq!(m.rename(d, os("e"), d, os("f"), true), Err(FsError::Exists));
        m.rename(d, os("e"), ROOT, os("e"), false).expect("move up");
        assert_eq!(m.parent(e), Ok(ROOT));
    }

    #[test]
    fn nothing_becomes_durable_after_a_cut() {
        let mut m = Model::new(META);
        let f = m.create(ROOT, os("f"), META).expect("create");
        m.wrote(f, 0, 1).expect("write");
        m.cut();
        assert_eq!(m.sync_file(f), Ok(None));
        m.sync_dir(ROOT).expect("fsync");
        assert_eq!(paths(&m, View::Durable), []);
    }

    #[test]
    fn truncate_then_extend_does_not_resurrect_old_bytes() {
        let mut f = FileSync::synced(100);
        f.set_size(50);
        f.wrote(80, 10);
        let written = 80..90;
        assert_eq!(
            f.sync(),
            SyncPlan {
                keep: 50,
                size: 90,
                ranges: vec![written]
            }
        );
        assert_eq!(f.durable_size, 90);
    }

    /// Applies a plan to a durable copy held in memory.
    fn apply(plan: &SyncPlan, live: &[u8], durable: &mut Vec<u8>) {
        durable.truncate(plan.keep as usize);
        durable.resize(plan.size as usize, 0);
        for r in &plan.ranges {
            let r = r.start as usize..r.end as usize;
            durable[r.clone()].copy_from_slice(&live[r]);
        }
    }

    #[derive(Debug, Clone)]
    enum Op {
        Write(u64, u64, u8),
        SetSize(u64),
        Sync,
    }

    fn op() -> impl Strategy<Value = Op> {
        prop_oneof![
            4 => (0u64..300, 1u64..64, 1u8..=255).prop_map(|(o, l, b)| Op::Write(o, l, b)),
            2 => (0u64..300).prop_map(Op::SetSize),
            1 => Just(Op::Sync),
        ]
    }

    proptest! {
        /// Copying only what the plan says gives the same durable copy as copying the whole
        /// live file at every fsync.
        #[test]
        fn sync_plans_match_whole_copies(
            start in 0usize..200,
            ops in proptest::collection::vec(op(), 0..60),
        ) {
            let mut live = vec![7u8; start];
            let mut durable = live.clone();
            let mut sync = FileSync::synced(start as u64);
            for op in ops.iter().chain([&Op::Sync]) {
                match *op {
                    Op::Write(offset, len, byte) => {
                        let end = (offset + len) as usize;
                        if live.len() < end {
                            live.resize(end, 0);
                        }
                        live[offset as usize..end].fill(byte);
                        sync.wrote(offset, len);
                    }
                    Op::SetSize(size) => {
                        live.resize(size as usize, 0);
                        sync.set_size(size);
                    }
                    Op::Sync => {
                        let plan = sync.sync();
                        for w in plan.ranges.windows(2) {
                            prop_assert!(w[0].end < w[1].start, "ranges sorted apart: {:?}", plan);
                        }
                        prop_assert!(plan.ranges.last().is_none_or(|r| r.end <= plan.size));
                        apply(&plan, &live, &mut durable);
                        prop_assert_eq!(&durable, &live);
                    }
                }
                prop_assert_eq!(sync.size as usize, live.len());
            }
        }
    }
}
