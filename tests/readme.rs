//! The README's commands cannot go stale: every `neon-perf …` (and
//! `cargo run --release -- …`) line in its `sh` blocks parses with the CLI
//! as written, every script it names exists, and every relative link
//! resolves. The commands that run things end to end are run by other tests
//! and by .ci/run (the fresh-clone `cargo test`, scripts/adoption-e2e.sh,
//! the example crate).

use std::path::Path;

use clap::Parser;
use neon_perf::cli::Cli;

fn readme() -> String {
    std::fs::read_to_string(Path::new(env!("CARGO_MANIFEST_DIR")).join("README.md")).unwrap()
}

/// The lines of every ```sh block, comments and blank lines dropped.
fn sh_lines(md: &str) -> Vec<String> {
    let mut out = Vec::new();
    let mut in_sh = false;
    for line in md.lines() {
        let t = line.trim();
        if let Some(lang) = t.strip_prefix("```") {
            in_sh = !in_sh && lang == "sh";
            continue;
        }
        if !in_sh {
            continue;
        }
        let code = match t.find(" #") {
            Some(i) => &t[..i],
            None => t,
        };
        let code = code.trim();
        if !code.is_empty() && !code.starts_with('#') {
            out.push(code.to_string());
        }
    }
    out
}

/// Splits a command line as a POSIX shell would for these simple lines:
/// whitespace, single and double quotes.
fn split(line: &str) -> Vec<String> {
    let mut words = Vec::new();
    let mut cur = String::new();
    let mut quote: Option<char> = None;
    let mut in_word = false;
    for c in line.chars() {
        match (quote, c) {
            (Some(q), c) if c == q => quote = None,
            (Some(_), c) => cur.push(c),
            (None, '"' | '\'') => {
                quote = Some(c);
                in_word = true;
            }
            (None, c) if c.is_whitespace() => {
                if in_word {
                    words.push(std::mem::take(&mut cur));
                    in_word = false;
                }
            }
            (None, c) => {
                cur.push(c);
                in_word = true;
            }
        }
    }
    if in_word {
        words.push(cur);
    }
    words
}

/// The neon-perf arguments of a line, when it runs neon-perf.
fn neon_perf_args(line: &str) -> Option<Vec<String>> {
    let words = split(line);
    let i = words.iter().position(|w| !w.contains('='))?; // skip VAR=value
    let words = &words[i..];
    if words[0] == "neon-perf" {
        return Some(words.to_vec());
    }
    let dashes = words.iter().position(|w| w == "--")?;
    (words[..dashes] == ["cargo", "run", "--release"]).then(|| {
        std::iter::once("neon-perf".to_string())
            .chain(words[dashes + 1..].iter().cloned())
            .collect()
    })
}

#[test]
fn every_neon_perf_command_in_the_readme_parses() {
    let lines = sh_lines(&readme());
    let mut parsed = 0;
    for line in &lines {
        let Some(args) = neon_perf_args(line) else {
            continue;
        };
        if let Err(e) = Cli::try_parse_from(&args) {
            panic!("README: `{line}` does not parse:\n{e}");
        }
        parsed += 1;
    }
    // run, bless, init, serve, merge, compare, … : the README shows many.
    assert!(
        parsed >= 8,
        "only {parsed} neon-perf commands found in {lines:#?}"
    );
}

#[test]
fn every_script_the_readme_runs_exists() {
    let root = Path::new(env!("CARGO_MANIFEST_DIR"));
    let mut named = 0;
    for line in sh_lines(&readme()) {
        for w in split(&line) {
            let w = w.trim_start_matches("./");
            if w.starts_with("scripts/") || w.starts_with(".ci/") || w.starts_with("tests/") {
                assert!(
                    root.join(w).is_file(),
                    "README runs `{w}`, which is missing"
                );
                named += 1;
            }
        }
    }
    assert!(named >= 2, "the README names only {named} scripts");
}

#[test]
fn every_relative_link_in_the_readme_resolves() {
    let root = Path::new(env!("CARGO_MANIFEST_DIR"));
    let md = readme();
    let mut checked = 0;
    for (i, _) in md.match_indices("](") {
        let rest = &md[i + 2..];
        let Some(end) = rest.find(')') else { continue };
        let target = rest[..end].split('#').next().unwrap_or("");
        if target.is_empty() || target.contains("://") {
            continue;
        }
        assert!(
            root.join(target).exists(),
            "README links to `{target}`, which does not exist"
        );
        checked += 1;
    }
    assert!(checked >= 5, "only {checked} relative links in the README");
}

#[test]
fn the_splitter_and_the_recogniser_read_lines_as_a_shell_would() {
    assert_eq!(
        split(r#"neon-perf bless --reason "first baseline""#),
        ["neon-perf", "bless", "--reason", "first baseline"]
    );
    assert_eq!(
        neon_perf_args("NEON_X=1 cargo run --release -- run --against ../base").unwrap(),
        ["neon-perf", "run", "--against", "../base"]
    );
    assert_eq!(neon_perf_args("cargo test --test perf"), None);
    assert!(Cli::try_parse_from(["neon-perf", "no-such-verb"]).is_err());
}
