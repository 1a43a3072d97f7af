//! PLACEHOLDER until the stats branch lands: the agreed API only.

use std::path::PathBuf;

use crate::baseline::HardwareKey;
use crate::result::ScenarioResult;

pub struct BaselineMetric;
pub struct BaselineScenario;
pub struct BaselineFile {
    pub scenarios: std::collections::BTreeMap<String, BaselineScenario>,
}
pub struct Provenance {
    pub commit: Option<String>,
    pub date: String,
    pub tool_version: String,
    pub reason: String,
}
pub enum BlessMode {
    Append,
    Replace,
}
#[derive(Debug, Default)]
pub struct BlessSummary;
impl std::fmt::Display for BlessSummary {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("")
    }
}
#[derive(Debug, thiserror::Error)]
#[error("baseline error")]
pub struct BaselineError;

pub struct BaselineStore {
    pub root: PathBuf,
}

impl BaselineStore {
    pub fn new(root: impl Into<PathBuf>) -> Self {
        Self { root: root.into() }
    }
    pub fn load(
        &self,
        _key: &HardwareKey,
        _suite: &str,
    ) -> Result<Option<BaselineFile>, BaselineError> {
        Ok(None)
    }
    pub fn bless(
        &self,
        _key: &HardwareKey,
        _suite: &str,
        _results: &[ScenarioResult],
        _provenance: Provenance,
        _mode: BlessMode,
    ) -> Result<BlessSummary, BaselineError> {
        Ok(BlessSummary)
    }
}
