//! `neon-perf init`: installs neon-perf into a team's repository — a starter
//! suite that runs as written, the baselines folder's README, and a
//! pull-request workflow that uses the neon-perf GitHub Action (action.yml).
//! It never overwrites: if any file is there already, it writes nothing.

use std::fs;
use std::io::Write;
use std::path::{Path, PathBuf};

use clap::Args;

use super::exit;

/// The action reference written into the workflow unless `--action` says otherwise.
pub const DEFAULT_ACTION: &str = "neon-perf/neon-perf@main";

/// Where the workflow template takes the action reference.
const ACTION_PLACEHOLDER: &str = "{action}";

/// The files `init` writes, relative to DIR, with their templates.
const TEMPLATES: [(&str, &str); 3] = [
    ("suites/perf.toml", include_str!("init/perf.toml")),
    (
        "baselines/README.md",
        include_str!("init/baselines-README.md"),
    ),
    (
        ".github/workflows/neon-perf.yml",
        include_str!("init/neon-perf.yml"),
    ),
];

#[derive(Debug, Clone, Args)]
pub struct InitArgs {
    /// The repository to set up (created if missing).
    #[arg(default_value = ".")]
    pub dir: PathBuf,
    /// The neon-perf GitHub Action the workflow uses: OWNER/REPO@REF of the
    /// repository neon-perf lives in (or ./PATH for one inside this repository).
    #[arg(long, value_name = "OWNER/REPO@REF", default_value = DEFAULT_ACTION, value_parser = action_ref)]
    pub action: String,
}

/// Checks `--action`: it lands in a YAML `uses:` line, so it must be one
/// plain word that GitHub reads as an action reference.
fn action_ref(s: &str) -> Result<String, String> {
    let plain = !s.is_empty()
        && s.chars()
            .all(|c| c.is_ascii_alphanumeric() || matches!(c, '-' | '_' | '.' | '/' | '@'));
    let remote = s.split_once('@').is_some_and(|(repo, r#ref)| {
        !r#ref.is_empty()
            && !r#ref.contains('@')
            && repo.split('/').count() >= 2
            && repo.split('/').all(|part| !part.is_empty())
    });
    if plain && (remote || s.starts_with("./")) {
        Ok(s.to_string())
    } else {
        Err(format!(
            "expected OWNER/REPO@REF (or ./PATH for an action in the repository itself), found `{s}`"
        ))
    }
}

/// The files to write: relative path and contents, with `action` filled in.
pub fn files(action: &str) -> Vec<(&'static str, String)> {
    TEMPLATES
        .iter()
        .map(|&(path, text)| (path, text.replace(ACTION_PLACEHOLDER, action)))
        .collect()
}

pub fn init(a: InitArgs) -> i32 {
    let files = files(&a.action);
    let existing: Vec<&str> = files
        .iter()
        .map(|&(rel, _)| rel)
        .filter(|rel| a.dir.join(rel).symlink_metadata().is_ok())
        .collect();
    if !existing.is_empty() {
        let place = if a.dir == Path::new(".") {
            "the current folder".to_string()
        } else {
            a.dir.display().to_string()
        };
        eprintln!(
            "error: not overwriting what is there already in {place}: {}",
            existing.join(", ")
        );
        eprintln!("  = help: nothing was written; move those files away to start afresh");
        return exit::BAD_INPUT;
    }
    for (rel, text) in &files {
        let path = a.dir.join(rel);
        if let Err(e) = write_new(&path, text) {
            eprintln!("error: cannot write {}: {e}", path.display());
            return exit::BAD_INPUT;
        }
        println!("wrote {}", path.display());
    }
    match ignore_target(&a.dir) {
        Ok(Some(said)) => println!("{said}"),
        Ok(None) => {}
        Err(e) => eprintln!("warning: cannot add target/ to .gitignore: {e}"),
    }
    print_next_steps(&a.dir);
    exit::OK
}

/// Reports and neon-perf's scratch files go to target/: adds `target/` to
/// DIR/.gitignore (creating it) unless a line there ignores it already.
/// The one file `init` changes rather than creates, and only by a line at
/// its end. Returns what it did, to print.
fn ignore_target(dir: &Path) -> std::io::Result<Option<String>> {
    let path = dir.join(".gitignore");
    let text = match fs::read_to_string(&path) {
        Ok(t) => Some(t),
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => None,
        Err(e) => return Err(e),
    };
    let ignored = |t: &str| {
        t.lines()
            .any(|l| matches!(l.trim(), "target" | "target/" | "/target" | "/target/"))
    };
    if text.as_deref().is_some_and(ignored) {
        return Ok(None);
    }
    let lines = "# neon-perf's reports and scratch files (target/neon-perf/)\ntarget/\n";
    let mut f = fs::OpenOptions::new()
        .append(true)
        .create(true)
        .open(&path)?;
    let sep = match &text {
        Some(t) if !t.is_empty() && !t.ends_with('\n') => "\n",
        _ => "",
    };
    f.write_all(format!("{sep}{lines}").as_bytes())?;
    Ok(Some(match text {
        Some(_) => format!("added target/ to {}", path.display()),
        None => format!("wrote {}", path.display()),
    }))
}

/// Creates `path` (and its folders); fails if it appeared meanwhile.
fn write_new(path: &Path, text: &str) -> std::io::Result<()> {
    if let Some(parent) = path.parent() {
        fs::create_dir_all(parent)?;
    }
    let mut f = fs::OpenOptions::new()
        .write(true)
        .create_new(true)
        .open(path)?;
    f.write_all(text.as_bytes())
}

fn print_next_steps(dir: &Path) {
    println!();
    println!("next steps:");
    if dir != Path::new(".") {
        println!("  cd {}", dir.display());
    }
    println!("  neon-perf run                              # measure suites/ on this machine");
    println!("  neon-perf bless --reason \"first baseline\"  # record this machine's baselines");
    println!(
        "  git add suites baselines .github .gitignore && git commit -m \"neon-perf: first baseline\""
    );
    println!();
    println!(
        "Reports go to target/neon-perf/. Baselines are per \
         hardware: the CI runner needs its own, blessed on that runner (docs/action.md in neon-perf's repository)."
    );
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn action_references() {
        let ok = [
            "neon-perf/neon-perf@main",
            "acme/tools/neon-perf@v1.2.0",
            "my-org/neon_perf@0123abcd",
            "./tools/neon-perf",
        ];
        for s in ok {
            assert_eq!(action_ref(s).as_deref(), Ok(s), "{s}");
        }
        let bad = [
            "",
            "neon-perf",
            "neon-perf@main",
            "owner/repo",
            "owner/repo@",
            "/repo@main",
            "owner//repo@main",
            "owner/repo@main\n  run: x",
            "owner/repo@main # x",
            "${{ inputs.a }}",
        ];
        for s in bad {
            let e = action_ref(s).expect_err(s);
            assert!(e.starts_with("expected OWNER/REPO@REF"), "{s}: {e}");
        }
    }

    #[test]
    fn the_action_is_filled_in_the_workflow_only() {
        for (path, text) in TEMPLATES {
            let uses = text.matches(ACTION_PLACEHOLDER).count();
            let want = if path.ends_with(".yml") { 2 } else { 0 };
            assert_eq!(uses, want, "{path}");
        }
        let files = files("acme/neon-perf@v1");
        let (_, yml) = files.iter().find(|(p, _)| p.ends_with(".yml")).unwrap();
        assert_eq!(yml.matches("uses: acme/neon-perf@v1\n").count(), 2);
        assert!(!yml.contains(ACTION_PLACEHOLDER));
    }
}
