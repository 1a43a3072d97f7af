//! Checks of a `command` scenario beyond its spec's types: a non-empty argv,
//! and placeholders that name a param or a built-in.

use std::ops::Range;

use toml::de::{DeTable, DeValue};

use super::error::{Diag, closest};
use super::read::{Value, entries};
use crate::plan::CommandSpec;

/// Placeholders a command may use besides the params.
pub(crate) const BUILTIN_PLACEHOLDERS: [&str; 2] = ["neon_perf", "suite_dir"];

pub use crate::plan::command::placeholders;

/// `command` is non-empty, and its placeholders (and those of `env` values)
/// name a param or a built-in.
pub(crate) fn check_command(
    text: &str,
    t: &DeTable<'_>,
    spec: &CommandSpec,
    params: &[String],
) -> Result<(), Diag> {
    let cmd = t.get("command").expect("deserialized, so present");
    if spec.command.is_empty() {
        return Err(Diag::new(cmd.span(), "`command` must not be empty")
            .hint(Some("give the program and its arguments: `command = [\"python\", \"bench.py\", \"--n={n}\"]`".into())));
    }
    let mut strings: Vec<&Value<'_>> = match cmd.get_ref() {
        DeValue::Array(a) => a.iter().collect(),
        _ => Vec::new(),
    };
    if let Some(DeValue::Table(env)) = t.get("env").map(|e| e.get_ref()) {
        strings.extend(entries(env).into_iter().map(|(_, v)| v));
    }
    let known: Vec<&str> = params
        .iter()
        .map(String::as_str)
        .chain(BUILTIN_PLACEHOLDERS)
        .collect();
    let Some((span, name)) = first_unknown_placeholder(text, &strings, &known) else {
        return Ok(());
    };
    let listed = known
        .iter()
        .map(|k| format!("`{{{k}}}`"))
        .collect::<Vec<_>>()
        .join(", ");
    let hint = closest(&name, known.iter().copied())
        .map(|c| format!("did you mean `{{{c}}}`?"))
        .unwrap_or_else(|| format!("placeholders are the params and the built-ins: {listed}"));
    Err(Diag::new(
        span,
        format!("unknown placeholder `{{{name}}}`: no param or built-in is called `{name}`"),
    )
    .hint(Some(hint)))
}

/// The first placeholder in `strings` that is not in `known`, with its span:
/// the placeholder itself where the source spells it out, else the string's.
pub(crate) fn first_unknown_placeholder(
    text: &str,
    strings: &[&Value<'_>],
    known: &[&str],
) -> Option<(Range<usize>, String)> {
    for v in strings {
        let Some(s) = v.get_ref().as_str() else {
            continue;
        };
        for (_, name) in placeholders(s) {
            if known.contains(&name) {
                continue;
            }
            let raw = &text[v.span()];
            let needle = format!("{{{name}}}");
            let span = raw
                .find(&needle)
                .map(|o| v.span().start + o..v.span().start + o + needle.len())
                .unwrap_or(v.span());
            return Some((span, name.to_string()));
        }
    }
    None
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn placeholder_scan() {
        let got: Vec<_> = placeholders("--n={n} {suite_dir}/x {} {'a': 1} {{x}")
            .into_iter()
            .map(|(_, n)| n)
            .collect();
        assert_eq!(got, ["n", "suite_dir", "x"]);
        assert!(placeholders("{9x}").is_empty());
    }
}
