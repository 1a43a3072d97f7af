//! The layering in docs/architecture.md holds: every `crate::<module>` path
//! in `src/` (test modules and comments aside) goes to a module of the same
//! layer or a lower one, every module is listed, and no modules import each
//! other round a cycle.

use std::collections::{BTreeMap, BTreeSet};
use std::path::{Path, PathBuf};

fn root() -> &'static Path {
    Path::new(env!("CARGO_MANIFEST_DIR"))
}

/// The ```layers block of docs/architecture.md: module → layer (0 lowest).
fn layers() -> BTreeMap<String, usize> {
    let doc = std::fs::read_to_string(root().join("docs/architecture.md")).unwrap();
    let start = doc.find("```layers\n").expect("a ```layers block") + "```layers\n".len();
    let end = start + doc[start..].find("```").unwrap();
    let mut out = BTreeMap::new();
    for (layer, line) in doc[start..end].lines().enumerate() {
        for m in line.split_whitespace() {
            assert!(
                out.insert(m.to_string(), layer).is_none(),
                "{m} listed twice"
            );
        }
    }
    out
}

fn rs_files(dir: &Path, out: &mut Vec<PathBuf>) {
    for e in std::fs::read_dir(dir).unwrap().flatten() {
        let p = e.path();
        if p.is_dir() {
            rs_files(&p, out);
        } else if p.extension().is_some_and(|x| x == "rs") {
            out.push(p);
        }
    }
}

/// The top-level module a file belongs to (`src/exec/oom.rs` → `exec`).
fn module_of(file: &Path) -> Option<String> {
    let rel = file.strip_prefix(root().join("src")).ok()?;
    let first = rel.components().next()?.as_os_str().to_str()?;
    let name = first.trim_end_matches(".rs");
    (!matches!(name, "lib" | "main")).then(|| name.to_string())
}

/// The modules a file's code names through `crate::`.
fn imports(text: &str) -> BTreeSet<String> {
    let code = match text.find("#[cfg(test)]\nmod tests") {
        Some(i) => &text[..i],
        None => text,
    };
    let mut out = BTreeSet::new();
    for line in code.lines() {
        let line = line.trim_start();
        if line.starts_with("//") {
            continue;
        }
        let line = line.split(" // ").next().unwrap_or(line);
        for (i, _) in line.match_indices("crate::") {
            let name: String = line[i + "crate::".len()..]
                .chars()
                .take_while(|c| c.is_alphanumeric() || *c == '_')
                .collect();
            if !name.is_empty() {
                out.insert(name);
            }
        }
    }
    out
}

/// module → the other modules it imports.
fn graph() -> BTreeMap<String, BTreeSet<String>> {
    let mut files = Vec::new();
    rs_files(&root().join("src"), &mut files);
    let mut g: BTreeMap<String, BTreeSet<String>> = BTreeMap::new();
    for f in files {
        let Some(m) = module_of(&f) else { continue };
        let uses = imports(&std::fs::read_to_string(&f).unwrap());
        let entry = g.entry(m.clone()).or_default();
        entry.extend(uses.into_iter().filter(|u| *u != m));
    }
    g
}

#[test]
fn no_module_imports_a_higher_layer() {
    let layers = layers();
    let g = graph();
    let mut problems = Vec::new();
    for (m, uses) in &g {
        let Some(&lm) = layers.get(m) else {
            problems.push(format!(
                "module `{m}` is in no layer of docs/architecture.md"
            ));
            continue;
        };
        for u in uses {
            match layers.get(u) {
                None => problems.push(format!("`{m}` imports `{u}`, which is in no layer")),
                Some(&lu) if lu > lm => {
                    problems.push(format!("`{m}` (layer {lm}) imports `{u}` (layer {lu})"))
                }
                Some(_) => {}
            }
        }
    }
    assert!(problems.is_empty(), "{}", problems.join("\n"));
    assert!(g.len() >= 20, "only {} modules found", g.len());
}

#[test]
fn no_modules_import_each_other_round_a_cycle() {
    let g = graph();
    // A module is on a cycle when it can reach itself.
    for start in g.keys() {
        let mut seen = BTreeSet::new();
        let mut stack: Vec<(String, Vec<String>)> = vec![(start.clone(), vec![start.clone()])];
        while let Some((m, path)) = stack.pop() {
            for next in g.get(&m).into_iter().flatten() {
                if next == start {
                    panic!("import cycle: {} → {start}", path.join(" → "));
                }
                if seen.insert(next.clone()) {
                    let mut p = path.clone();
                    p.push(next.clone());
                    stack.push((next.clone(), p));
                }
            }
        }
    }
}

#[test]
fn the_scanner_reads_paths_and_skips_comments_and_tests() {
    let text = "use crate::plan::Kind;\n// crate::report in a comment\nlet x = crate::units::f(); // crate::cli\n#[cfg(test)]\nmod tests {\n    use crate::run;\n}\n";
    let got: Vec<String> = imports(text).into_iter().collect();
    assert_eq!(got, ["plan", "units"]);
}
