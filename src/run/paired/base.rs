//! The base tree of `run --against DIR`: each head suite's counterpart,
//! loaded once.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

use crate::config;
use crate::plan::ScenarioPlan;

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
    pub fn new(root: &Path, head_root: &Path) -> Result<BaseTree, String> {
        let root = root
            .canonicalize()
            .map_err(|e| format!("base tree {}: {e}", root.display()))?;
        if !root.is_dir() {
            return Err(format!("base tree {} is not a directory", root.display()));
        }
        let head_root = head_root
            .canonicalize()
            .map_err(|e| format!("working tree {}: {e}", head_root.display()))?;
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
    pub fn counterpart(&self, head_file: &Path) -> Result<PathBuf, String> {
        let abs = head_file
            .canonicalize()
            .map_err(|e| format!("{}: {e}", head_file.display()))?;
        let rel = abs.strip_prefix(&self.head_root).map_err(|_| {
            format!(
                "suite {} is outside the working tree {}: no base counterpart to pair it with",
                head_file.display(),
                self.head_root.display()
            )
        })?;
        Ok(self.root.join(rel))
    }

    /// The base variant of `head`: `Ok(None)` when the base suite or the
    /// scenario does not exist there (a new scenario), `Err` when the base
    /// suite exists but does not load.
    pub fn plan_for(&mut self, head: &ScenarioPlan) -> Result<Option<ScenarioPlan>, String> {
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
            Err(e) => Err(format!("the base tree's suite does not load:\n{e}")),
        }
    }
}
