//! The output directory against the rendered manifests. `check` reports changed,
//! missing and extra files with a unified diff (the GitOps CI gate); `render` writes
//! them all or nothing. Neither follows a symbolic link inside the directory
//! ([`crate::files`] says why).

use std::collections::{BTreeMap, BTreeSet};
use std::io::Write as _;
use std::path::{Path, PathBuf};

use similar::TextDiff;

use crate::files::{self, FileError, Kind};
use crate::render::Manifests;

/// Differences between rendered manifests and a directory.
#[derive(Debug, Default, PartialEq, Eq)]
pub struct Drift {
    /// Unified diffs of files whose content differs, and of missing/extra files;
    /// for what cannot be diffed (a link, a binary file), a note in diff form.
    pub diffs: Vec<String>,
}

impl Drift {
    /// Whether the directory matches.
    pub fn is_clean(&self) -> bool {
        self.diffs.is_empty()
    }
}

/// Compares `manifests` with everything under `dir` (an extra file is drift too;
/// a symbolic link or a special file is drift and is not followed or read).
pub fn compare(manifests: &Manifests, dir: &Path) -> Result<Drift, FileError> {
    let tree = Tree::scan(dir)?.ok_or_else(|| FileError::Missing {
        path: dir.to_path_buf(),
    })?;
    let mut drift = Drift::default();
    let files: BTreeSet<&String> = tree
        .entries
        .iter()
        .filter(|(_, kind)| **kind != Kind::Dir)
        .map(|(name, _)| name)
        .chain(manifests.keys())
        .collect();
    for name in files {
        let want = manifests.get(name).map(String::as_str);
        let have = match tree.entries.get(name) {
            None | Some(Kind::Dir) => None,
            Some(Kind::File) => {
                let bytes = files::read_inside(&dir.join(name))?;
                match String::from_utf8(bytes) {
                    Ok(text) => Some(text),
                    Err(e) => {
                        drift.diffs.push(note(
                            name,
                            &format!("a binary file ({} bytes), not text", e.as_bytes().len()),
                        ));
                        continue;
                    }
                }
            }
            Some(other) => {
                drift.diffs.push(note(
                    name,
                    &format!(
                        "{}, which geolb neither follows nor reads",
                        other.described()
                    ),
                ));
                continue;
            }
        };
        if have.is_some() && have.as_deref() == want {
            continue;
        }
        drift.diffs.push(diff(name, have.as_deref(), want));
    }
    Ok(drift)
}

/// A unified diff of one file; `None` on a side means it does not exist there.
fn diff(name: &str, have: Option<&str>, want: Option<&str>) -> String {
    let side = |present: bool, prefix: &str| {
        if present {
            format!("{prefix}/{name}")
        } else {
            String::from("/dev/null")
        }
    };
    TextDiff::configure()
        .algorithm(similar::Algorithm::Patience)
        .diff_lines(have.unwrap_or(""), want.unwrap_or(""))
        .unified_diff()
        .context_radius(3)
        .header(&side(have.is_some(), "a"), &side(want.is_some(), "b"))
        .to_string()
}

/// A drifted entry that has no text to diff, in diff-header form so it reads with
/// the other diffs.
fn note(name: &str, what: &str) -> String {
    format!(
        "--- a/{name}\n+++ b/{name}\n@@ a/{name} is {what}: replace it with the rendered file or remove it @@\n"
    )
}

/// Why `render` wrote nothing, or undid what it had written.
#[derive(Debug, thiserror::Error)]
pub enum WriteError {
    /// Problems found before anything was written: the directory is as it was.
    #[error("{}{}\nnothing was written", .0.len(), plural_problems(.0))]
    Refused(Vec<FileError>),
    /// A write failed; everything written before it was undone.
    #[error("{0}\nnothing was written (the files written before the failure were restored)")]
    RolledBack(FileError),
    /// A write failed and restoring the directory failed too.
    #[error("{failure}\nrestoring the directory failed as well, check these paths by hand:\n{}", list(.unrestored))]
    Partial {
        /// The write that failed.
        failure: FileError,
        /// What could not be put back.
        unrestored: Vec<FileError>,
    },
}

fn plural_problems(problems: &[FileError]) -> String {
    let head = if problems.len() == 1 {
        " problem in the output directory:"
    } else {
        " problems in the output directory:"
    };
    format!("{head}\n{}", list(problems))
}

fn list(errors: &[FileError]) -> String {
    errors
        .iter()
        .map(|e| format!("  {e}"))
        .collect::<Vec<_>>()
        .join("\n")
}

/// Writes `manifests` under `dir` and removes files geolb wrote earlier that are no
/// longer rendered (recognised by the generated-file header), and the folders that
/// leaves empty; other files stay. All or nothing: every path is checked before the
/// first write, each file is replaced by a rename, and a failure puts back what was
/// already changed.
pub fn write(manifests: &Manifests, dir: &Path) -> Result<(), WriteError> {
    let changes = plan_changes(manifests, dir).map_err(WriteError::Refused)?;
    apply(&changes, &mut |_| Ok(()))
}

/// One step of a render, with what undoing it needs.
#[derive(Debug)]
enum Change {
    /// Create a directory that does not exist.
    CreateDir(PathBuf),
    /// Write a file; `old` is its current content (`None`: it does not exist).
    Put {
        path: PathBuf,
        text: String,
        old: Option<Vec<u8>>,
    },
    /// Remove a stale generated file, remembering its content.
    Remove { path: PathBuf, old: Vec<u8> },
    /// Remove the directories from `folder` up to (not including) `root` that the
    /// removals left empty (decided when applying): a layout change moves files
    /// between folders, and the old folder must not linger.
    Prune { folder: PathBuf, root: PathBuf },
}

/// Every change a render makes, or every reason it cannot (all of them, not just
/// the first).
fn plan_changes(manifests: &Manifests, dir: &Path) -> Result<Vec<Change>, Vec<FileError>> {
    let mut new_dirs = BTreeSet::new();
    let tree = match Tree::scan(dir) {
        Ok(Some(tree)) => tree,
        Ok(None) => {
            new_dirs.insert(dir.to_path_buf());
            Tree::default()
        }
        Err(e) => return Err(vec![e]),
    };
    let mut problems = Vec::new();
    let mut removals = Vec::new();
    for stale in tree.files().filter(|n| !manifests.contains_key(*n)) {
        let path = dir.join(stale);
        match files::read_inside(&path) {
            Ok(old) if old.starts_with(GENERATED_MARK.as_bytes()) => {
                removals.push(Change::Remove {
                    path: path.clone(),
                    old,
                });
                if let Some(parent) = path.parent() {
                    removals.push(Change::Prune {
                        folder: parent.to_path_buf(),
                        root: dir.to_path_buf(),
                    });
                }
            }
            Ok(_) => {}
            Err(e) => problems.push(e),
        }
    }
    let mut puts = Vec::new();
    for (name, text) in manifests {
        let path = dir.join(name);
        let mut folder = PathBuf::new();
        let segments: Vec<&str> = name.split('/').collect();
        let Some((file, folders)) = segments.split_last() else {
            continue;
        };
        let mut blocked = false;
        for segment in folders {
            folder.push(segment);
            match tree.entries.get(&slashed(&folder)) {
                None => {
                    new_dirs.insert(dir.join(&folder));
                }
                Some(Kind::Dir) => {}
                Some(Kind::Symlink) => {
                    problems.push(FileError::Symlink {
                        path: dir.join(&folder),
                    });
                    blocked = true;
                    break;
                }
                Some(other) => {
                    problems.push(FileError::InTheWay {
                        path: dir.join(&folder),
                        found: other.described(),
                        wanted: "a directory",
                    });
                    blocked = true;
                    break;
                }
            }
        }
        if blocked || file.is_empty() {
            continue;
        }
        let old = match tree.entries.get(name) {
            None => None,
            Some(Kind::File) => match files::read_inside(&path) {
                Ok(old) => Some(old),
                Err(e) => {
                    problems.push(e);
                    continue;
                }
            },
            Some(Kind::Symlink) => {
                problems.push(FileError::Symlink { path });
                continue;
            }
            Some(other) => {
                problems.push(FileError::InTheWay {
                    path,
                    found: other.described(),
                    wanted: "a file",
                });
                continue;
            }
        };
        if old.as_deref() != Some(text.as_bytes()) {
            puts.push(Change::Put {
                path,
                text: text.clone(),
                old,
            });
        }
    }
    if !problems.is_empty() {
        return Err(problems);
    }
    // New folders first (parents before children: BTreeSet order), then the files,
    // then the removals, so pruning sees the folders the new files live in.
    let mut ordered: Vec<Change> = new_dirs.into_iter().map(Change::CreateDir).collect();
    ordered.extend(puts);
    ordered.extend(removals);
    Ok(ordered)
}

/// What was done, so it can be undone.
#[derive(Debug)]
enum Done {
    CreatedDir(PathBuf),
    Wrote { path: PathBuf, old: Option<Vec<u8>> },
    Removed { path: PathBuf, old: Vec<u8> },
    RemovedDir(PathBuf),
}

/// Applies the changes in order; on the first failure undoes the ones done, newest
/// first. `before` runs before every step (the tests make a step fail with it).
fn apply(
    changes: &[Change],
    before: &mut dyn FnMut(&Path) -> Result<(), FileError>,
) -> Result<(), WriteError> {
    let mut done = Vec::new();
    for change in changes {
        if let Err(failure) = step(change, before, &mut done) {
            let unrestored: Vec<FileError> =
                done.iter().rev().filter_map(|d| undo(d).err()).collect();
            return Err(if unrestored.is_empty() {
                WriteError::RolledBack(failure)
            } else {
                WriteError::Partial {
                    failure,
                    unrestored,
                }
            });
        }
    }
    Ok(())
}

fn step(
    change: &Change,
    before: &mut dyn FnMut(&Path) -> Result<(), FileError>,
    done: &mut Vec<Done>,
) -> Result<(), FileError> {
    match change {
        Change::CreateDir(path) => {
            before(path)?;
            if path
                .parent()
                .is_some_and(|p| !p.as_os_str().is_empty() && !p.exists())
            {
                // Only the output directory's own missing parents (the user named
                // them): everything below it is created one level at a time.
                std::fs::create_dir_all(path).map_err(FileError::io("create directory", path))?;
            } else {
                std::fs::create_dir(path).map_err(FileError::io("create directory", path))?;
            }
            done.push(Done::CreatedDir(path.clone()));
        }
        Change::Put { path, text, old } => {
            before(path)?;
            replace(path, text.as_bytes())?;
            done.push(Done::Wrote {
                path: path.clone(),
                old: old.clone(),
            });
        }
        Change::Remove { path, old } => {
            before(path)?;
            std::fs::remove_file(path).map_err(FileError::io("remove", path))?;
            done.push(Done::Removed {
                path: path.clone(),
                old: old.clone(),
            });
        }
        Change::Prune { folder, root } => {
            let mut current = Some(folder.as_path());
            while let Some(d) = current {
                if d == root || !d.starts_with(root) || !d.exists() {
                    break;
                }
                let empty = std::fs::read_dir(d)
                    .map_err(FileError::io("read directory", d))?
                    .next()
                    .is_none();
                if !empty {
                    break;
                }
                before(d)?;
                std::fs::remove_dir(d).map_err(FileError::io("remove directory", d))?;
                done.push(Done::RemovedDir(d.to_path_buf()));
                current = d.parent();
            }
        }
    }
    Ok(())
}

/// Writes `bytes` to a temporary file next to `path` and renames it over `path`: a
/// reader sees the old file or the new one, never half of one.
pub(crate) fn replace(path: &Path, bytes: &[u8]) -> Result<(), FileError> {
    let name = path
        .file_name()
        .map(|n| n.to_string_lossy().into_owned())
        .unwrap_or_default();
    let temp = path.with_file_name(format!(".{name}.geolb-{}.tmp", std::process::id()));
    let written = files::create_new_inside(&temp).and_then(|mut file| {
        file.write_all(bytes)
            .and_then(|()| file.sync_data())
            .map_err(FileError::io("write", &temp))
    });
    let renamed =
        written.and_then(|()| std::fs::rename(&temp, path).map_err(FileError::io("write", path)));
    if renamed.is_err() {
        let _ = std::fs::remove_file(&temp);
    }
    renamed
}

fn undo(done: &Done) -> Result<(), FileError> {
    match done {
        Done::CreatedDir(path) => {
            std::fs::remove_dir(path).map_err(FileError::io("remove directory", path))
        }
        Done::RemovedDir(path) => {
            std::fs::create_dir(path).map_err(FileError::io("re-create directory", path))
        }
        Done::Wrote { path, old: None } => {
            std::fs::remove_file(path).map_err(FileError::io("remove", path))
        }
        Done::Wrote {
            path,
            old: Some(old),
        }
        | Done::Removed { path, old } => replace(path, old),
    }
}

/// First characters of every file geolb renders.
pub const GENERATED_MARK: &str = "# Generated by geolb";

/// What is under the output directory, by `/`-separated relative path, found
/// without following any symbolic link (a link is listed, not entered).
#[derive(Debug, Default)]
struct Tree {
    entries: BTreeMap<String, Kind>,
}

impl Tree {
    /// `None` when `dir` does not exist. `dir` itself must be a real directory: a
    /// link there would send every read and write elsewhere.
    fn scan(dir: &Path) -> Result<Option<Tree>, FileError> {
        match Kind::of(dir)? {
            None => Ok(None),
            Some(Kind::Dir) => {
                let mut tree = Tree::default();
                tree.walk(dir, "")?;
                Ok(Some(tree))
            }
            Some(Kind::Symlink) => Err(FileError::Symlink {
                path: dir.to_path_buf(),
            }),
            Some(other) => Err(FileError::InTheWay {
                path: dir.to_path_buf(),
                found: other.described(),
                wanted: "a directory",
            }),
        }
    }

    fn walk(&mut self, dir: &Path, prefix: &str) -> Result<(), FileError> {
        let entries = std::fs::read_dir(dir).map_err(FileError::io("read directory", dir))?;
        for entry in entries {
            let entry = entry.map_err(FileError::io("read directory", dir))?;
            let path = entry.path();
            // DirEntry::file_type does not follow links.
            let kind = Kind::from(entry.file_type().map_err(FileError::io("inspect", &path))?);
            let name = format!("{prefix}{}", entry.file_name().to_string_lossy());
            if kind == Kind::Dir {
                self.walk(&path, &format!("{name}/"))?;
            }
            self.entries.insert(name, kind);
        }
        Ok(())
    }

    /// Every entry that is not a directory.
    fn files(&self) -> impl Iterator<Item = &String> {
        self.entries
            .iter()
            .filter(|(_, kind)| **kind != Kind::Dir)
            .map(|(name, _)| name)
    }
}

/// A relative path with `/` separators (the manifests' key form).
fn slashed(path: &Path) -> String {
    path.components()
        .map(|c| c.as_os_str().to_string_lossy().into_owned())
        .collect::<Vec<_>>()
        .join("/")
}

#[cfg(test)]
#[allow(
    clippy::unwrap_used,
    clippy::expect_used,
    clippy::panic,
    clippy::indexing_slicing
)]
mod tests {
    use super::*;

    fn snapshot(dir: &Path) -> BTreeMap<String, Option<Vec<u8>>> {
        let tree = Tree::scan(dir).unwrap().unwrap_or_default();
        tree.entries
            .iter()
            .map(|(name, kind)| {
                let bytes = (*kind == Kind::File).then(|| std::fs::read(dir.join(name)).unwrap());
                (name.clone(), bytes)
            })
            .collect()
    }

    /// A failure at any step of a render undoes every earlier step: new folders,
    /// new files, replaced files, removed stale files and pruned folders.
    #[test]
    fn a_failure_at_any_step_puts_everything_back() {
        let tmp = tempfile::tempdir().unwrap();
        let dir = tmp.path().join("out");
        let old: Manifests = [
            ("a/one.yaml", "# Generated by geolb\none: 1\n"),
            ("a/two.yaml", "# Generated by geolb\ntwo: 2\n"),
            ("old/stale.yaml", "# Generated by geolb\nstale\n"),
        ]
        .into_iter()
        .map(|(k, v)| (k.to_owned(), v.to_owned()))
        .collect();
        write(&old, &dir).unwrap();
        std::fs::write(dir.join("a/mine.txt"), "kept\n").unwrap();
        let new: Manifests = [
            ("a/one.yaml", "# Generated by geolb\none: 10\n"),
            ("a/two.yaml", "# Generated by geolb\ntwo: 2\n"),
            ("b/c/three.yaml", "# Generated by geolb\nthree: 3\n"),
        ]
        .into_iter()
        .map(|(k, v)| (k.to_owned(), v.to_owned()))
        .collect();
        let before = snapshot(&dir);
        let steps = plan_changes(&new, &dir).unwrap().len();
        assert!(steps >= 5, "{steps} steps");
        let mut checked = 0;
        for fail_at in 0.. {
            let mut count = 0;
            let mut before_step = |path: &Path| {
                count += 1;
                if count > fail_at {
                    Err(FileError::io("write", path)(std::io::Error::other(
                        "injected",
                    )))
                } else {
                    Ok(())
                }
            };
            let changes = plan_changes(&new, &dir).unwrap();
            match apply(&changes, &mut before_step) {
                Err(WriteError::RolledBack(_)) => {
                    assert_eq!(snapshot(&dir), before, "failing at step {fail_at}");
                    checked += 1;
                }
                Ok(()) => break,
                Err(other) => panic!("step {fail_at}: {other}"),
            }
        }
        assert!(checked >= 5, "{checked} failure points");
        let after = snapshot(&dir);
        assert_eq!(
            after.get("a/one.yaml"),
            Some(&Some(b"# Generated by geolb\none: 10\n".to_vec()))
        );
        assert!(!after.contains_key("old"), "{after:?}");
        assert_eq!(after.get("a/mine.txt"), Some(&Some(b"kept\n".to_vec())));
    }
}
