//! A kind's spec from a scenario's own keys: deserialized by `serde` (its
//! `deny_unknown_fields` and types decide), checked by the kind's
//! [`KindRules::check`], and its errors located at file:line:column. Every
//! kind goes through the same code: the registry (`plan::kinds`) supplies
//! the list.

use std::ops::Range;

use toml::de::{DeTable, DeValue};

use super::error::Diag;
use super::read::{self, Value, entries};
use crate::plan::command::placeholders;
use crate::plan::env_ref::EnvUse;
use crate::plan::{At, CheckCtx, Kind, KindRules, KindSpec, SpecError};

/// The `{env:NAME}` a spec reads, each with its text's place in the file.
pub(crate) type EnvSpans = Vec<(EnvUse, Range<usize>)>;

/// The scenario being read: its source and table, for locating errors.
pub(crate) struct Source<'a, 'de> {
    pub text: &'a str,
    pub table: &'a DeTable<'de>,
    pub header: Range<usize>,
}

macro_rules! dispatch {
    ($($variant:ident $id:literal $spec:ty,)+) => {
        /// Reads and checks the spec of `kind` from the keys left after the
        /// common ones (`rest`); `known` are those common keys, for hints.
        pub(crate) fn read_spec(
            kind: Kind,
            rest: DeTable<'_>,
            src: &Source<'_, '_>,
            known: &[&str],
            ctx: &CheckCtx<'_>,
        ) -> Result<(KindSpec, EnvSpans), Diag> {
            match kind {
                $(Kind::$variant => read_checked::<$spec>(kind, rest, src, known, ctx),)+
            }
        }

        /// The keys a kind's spec declares.
        pub(crate) fn fields_of(kind: Kind) -> &'static [&'static str] {
            match kind {
                $(Kind::$variant => read::spec_fields::<$spec>(),)+
            }
        }
    };
}
crate::plan::kinds::registry!(dispatch);

fn read_checked<S: KindRules>(
    kind: Kind,
    rest: DeTable<'_>,
    src: &Source<'_, '_>,
    known: &[&str],
    ctx: &CheckCtx<'_>,
) -> Result<(KindSpec, EnvSpans), Diag> {
    let spec: S = read::spec(rest, src.header.clone(), kind.id(), known)?;
    spec.check(ctx).map_err(|e| locate(e, src))?;
    // The `{env:NAME}` it reads, each with its text's place; whether they
    // are set is asked when it is about to run.
    let env = spec
        .env_uses()
        .into_iter()
        .map(|u| {
            let span = locate(u.unset_error(), src).span;
            (u, span)
        })
        .collect();
    Ok((spec.into(), env))
}

/// Where a spec's problem is in the file.
fn locate(e: SpecError, src: &Source<'_, '_>) -> Diag {
    let key = |k: &str| value_at(src.table, k);
    let span = match &e.at {
        At::Scenario => None,
        At::Key(k) => key(k).map(|v| v.span()),
        At::Within { path, needle } => within_span(src, path, needle),
        At::Item(k, i) => key(k).map(|v| match v.get_ref() {
            DeValue::Array(a) => a.get(*i).map_or(v.span(), |item| item.span()),
            _ => v.span(),
        }),
        At::Placeholder { within, name } => placeholder_span(src, within, name),
    };
    Diag::new(span.unwrap_or(src.header.clone()), e.message).hint(e.hint)
}

/// `{name}` in the first string under `within` that uses it: the
/// placeholder itself where the source spells it out, else the string.
fn placeholder_span(src: &Source<'_, '_>, within: &[&str], name: &str) -> Option<Range<usize>> {
    let needle = format!("{{{name}}}");
    within
        .iter()
        .flat_map(|path| strings_at(src.table, path))
        .find(|v| {
            v.get_ref()
                .as_str()
                .is_some_and(|s| placeholders(s).iter().any(|(_, n)| *n == name))
        })
        .map(|v| {
            let raw = &src.text[v.span()];
            raw.find(&needle)
                .map(|o| v.span().start + o..v.span().start + o + needle.len())
                .unwrap_or(v.span())
        })
}

/// `needle` inside the first string under `path` whose source contains it.
fn within_span(src: &Source<'_, '_>, path: &str, needle: &str) -> Option<Range<usize>> {
    let values = strings_at(src.table, path);
    let hit = values.iter().find_map(|v| {
        let raw = &src.text[v.span()];
        raw.find(needle)
            .map(|o| v.span().start + o..v.span().start + o + needle.len())
    });
    hit.or_else(|| value_at(src.table, path).map(|v| v.span()))
}

/// The value at a `key` or `table.key` path (or the nearest table on it).
fn value_at<'a, 'de>(table: &'a DeTable<'de>, path: &str) -> Option<&'a Value<'de>> {
    let mut parts = path.split('.');
    let mut v = table.get(parts.next()?)?;
    for part in parts {
        match v.get_ref() {
            DeValue::Table(t) => match t.get(part) {
                Some(next) => v = next,
                None => return Some(v), // the nearest table that is there
            },
            _ => return Some(v),
        }
    }
    Some(v)
}

/// The values under a `key` or `table.key` path: an array's items, a
/// table's values in source order, or the value itself.
fn strings_at<'a, 'de>(table: &'a DeTable<'de>, path: &str) -> Vec<&'a Value<'de>> {
    let mut parts = path.split('.');
    let Some(mut v) = parts.next().and_then(|k| table.get(k)) else {
        return Vec::new();
    };
    for part in parts {
        match v.get_ref() {
            DeValue::Table(t) => match t.get(part) {
                Some(next) => v = next,
                None => return Vec::new(),
            },
            _ => return Vec::new(),
        }
    }
    match v.get_ref() {
        DeValue::Array(a) => a.iter().collect(),
        DeValue::Table(t) => entries(t).into_iter().map(|(_, v)| v).collect(),
        _ => vec![v],
    }
}
