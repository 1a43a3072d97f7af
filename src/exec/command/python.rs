//! The Python helper `neon_perf` (python/neon_perf), built into the binary
//! and put on every `command` child's `PYTHONPATH`, so a scenario's script
//! can `import neon_perf` with nothing installed.

use std::path::{Path, PathBuf};
use std::sync::Mutex;

/// The helper's source.
const HELPER: &str = include_str!("../../../python/neon_perf/__init__.py");

/// `cache_dir/python` (absolute), holding `neon_perf/__init__.py`: written once per
/// process (atomically, so parallel runs never see half a file).
pub fn helper_dir(cache_dir: &Path) -> Result<PathBuf, String> {
    static WRITTEN: Mutex<Vec<PathBuf>> = Mutex::new(Vec::new());
    // Absolute: the child runs in its suite's folder.
    let dir = std::path::absolute(cache_dir.join("python"))
        .map_err(|e| format!("{}: {e}", cache_dir.display()))?;
    let mut written = WRITTEN.lock().unwrap_or_else(|p| p.into_inner());
    if written.contains(&dir) {
        return Ok(dir);
    }
    let pkg = dir.join("neon_perf");
    let file = pkg.join("__init__.py");
    if std::fs::read_to_string(&file).ok().as_deref() != Some(HELPER) {
        std::fs::create_dir_all(&pkg).map_err(|e| format!("creating {}: {e}", pkg.display()))?;
        let mut tmp = tempfile::NamedTempFile::new_in(&pkg)
            .map_err(|e| format!("writing the Python helper in {}: {e}", pkg.display()))?;
        std::io::Write::write_all(&mut tmp, HELPER.as_bytes())
            .map_err(|e| format!("writing the Python helper: {e}"))?;
        tmp.persist(&file)
            .map_err(|e| format!("writing {}: {e}", file.display()))?;
    }
    written.push(dir.clone());
    Ok(dir)
}

/// `PYTHONPATH` for a child: the helper first, then what the scenario's
/// `env` or neon-perf's own environment had.
pub fn pythonpath(helper: &Path, scenario: Option<&str>) -> String {
    let rest = scenario
        .map(str::to_string)
        .or_else(|| std::env::var("PYTHONPATH").ok())
        .filter(|s| !s.is_empty());
    match rest {
        Some(r) => format!("{}:{r}", helper.display()),
        None => helper.display().to_string(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_helper_is_written_once_and_comes_first() {
        let d = tempfile::tempdir().unwrap();
        let dir = helper_dir(d.path()).unwrap();
        let text = std::fs::read_to_string(dir.join("neon_perf/__init__.py")).unwrap();
        assert_eq!(text, HELPER);
        assert_eq!(
            pythonpath(&dir, Some("/mine")),
            format!("{}:/mine", dir.display())
        );
    }
}
