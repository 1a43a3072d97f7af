//! The base tree of `run --against DIR`: each head suite's counterpart,
//! loaded once.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

use crate::config;
use crate::plan::ScenarioPlan;

/// Why the base tree, or a suite's counterpart in it, cannot be used.
#[derive(Debug, thiserror::Error)]
pub enum BaseTreeError {
    /// The base tree or the working tree cannot be resolved.
    #[error("{what} {}: {source}{}", path.display(), revision_hint(what, path))]
    Unreadable {
        what: &'static str,
        path: PathBuf,
        source: std::io::Error,
    },
    /// A head suite file that cannot be resolved.
    #[error("{}: {source}", path.display())]
    UnreadableSuite {
        path: PathBuf,
        source: std::io::Error,
    },
    #[error("base tree {} is not a directory", .0.display())]
    NotADirectory(PathBuf),
    /// A head suite outside the working tree has no counterpart.
    #[error("suite {} is outside the working tree {}: no base counterpart to pair it with", suite.display(), tree.display())]
    Outside { suite: PathBuf, tree: PathBuf },
    /// The base tree's suite exists but does not load (its diagnostics).
    #[error("the base tree's suite does not load:\n{0}")]
    SuiteDoesNotLoad(String),
}

/// `--against` takes the base revision checked out in a folder: a name
/// that is no folder is most often a branch or commit (the GitHub Action's
/// `against` input takes one and checks it out itself).
fn revision_hint(what: &str, path: &Path) -> String {
    let bare = path.components().count() == 1 && !path.exists();
    if what == "base tree" && bare {
        format!(
            " (`--against` takes a folder holding the base revision; for a branch or commit, \
             check it out first: `git worktree add ../base {0}`, then `--against ../base`)",
            path.display()
        )
    } else {
        String::new()
    }
}

/// Where the base revision lives and how many pairs to run.
#[derive(Clone, Debug, PartialEq)]
pub struct Against {
    /// The base tree's root (a checkout or `git worktree` of the base).
    pub dir: PathBuf,
    /// Base/head pairs per scenario (at least 2).
    pub pairs: usize,
}

/// The base tree: maps a head suite file to its counterpart and loads it once.
pub struct BaseTree {
    root: PathBuf,
    head_root: PathBuf,
    suites: BTreeMap<PathBuf, Result<Vec<ScenarioPlan>, String>>,
}

impl BaseTree {
    /// `head_root` is the working tree the head suites were given from (the
    /// current directory).
    pub fn new(root: &Path, head_root: &Path) -> Result<BaseTree, BaseTreeError> {
        let root = root
            .canonicalize()
            .map_err(|source| BaseTreeError::Unreadable {
                what: "base tree",
                path: root.to_path_buf(),
                source,
            })?;
        if !root.is_dir() {
            return Err(BaseTreeError::NotADirectory(root));
        }
        let head_root = head_root
            .canonicalize()
            .map_err(|source| BaseTreeError::Unreadable {
                what: "working tree",
                path: head_root.to_path_buf(),
                source,
            })?;
        Ok(BaseTree {
            root,
            head_root,
            suites: BTreeMap::new(),
        })
    }

    pub fn root(&self) -> &Path {
        &self.root
    }

    /// The base suite file for a head suite file: the same path relative
    /// to each tree's root.
    pub fn counterpart(&self, head_file: &Path) -> Result<PathBuf, BaseTreeError> {
        let abs = head_file
            .canonicalize()
            .map_err(|source| BaseTreeError::UnreadableSuite {
                path: head_file.to_path_buf(),
                source,
            })?;
        let rel = abs
            .strip_prefix(&self.head_root)
            .map_err(|_| BaseTreeError::Outside {
                suite: head_file.to_path_buf(),
                tree: self.head_root.clone(),
            })?;
        Ok(self.root.join(rel))
    }

    /// The base variant of `head`: `Ok(None)` when the base suite or the
    /// scenario does not exist there (a new scenario), `Err` when the base
    /// suite exists but does not load.
    pub fn plan_for(&mut self, head: &ScenarioPlan) -> Result<Option<ScenarioPlan>, BaseTreeError> {
        let file = self.counterpart(&head.location.file)?;
        let plans = self.suites.entry(file.clone()).or_insert_with(|| {
            if !file.exists() {
                return Ok(Vec::new());
            }
            config::load_suite(&file)
                .map(|s| s.scenarios)
                .map_err(|e| e.render(false))
        });
        match plans {
            Ok(plans) => Ok(plans
                .iter()
                .find(|p| p.full_name() == head.full_name())
                .cloned()),
            Err(e) => Err(BaseTreeError::SuiteDoesNotLoad(e.clone())),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_branch_name_for_the_base_tree_says_how_to_check_it_out() {
        let e = BaseTree::new(Path::new("no-such-branch-xyz"), Path::new("."))
            .err()
            .expect("no such folder");
        let text = e.to_string();
        assert!(
            text.contains(
                "`git worktree add ../base no-such-branch-xyz`, then `--against ../base`"
            ),
            "{text}"
        );
        // A path that is plainly a folder gets no such hint.
        let e = BaseTree::new(Path::new("/no/such/base"), Path::new("."))
            .err()
            .expect("no such folder");
        assert!(!e.to_string().contains("worktree"), "{e}");
    }
}
