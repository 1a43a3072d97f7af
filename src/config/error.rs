//! Config diagnostics: what went wrong, where (file:line:col and the offending
//! text), an optional hint, and their rendering with annotate-snippets.

use std::fmt;
use std::ops::Range;
use std::path::{Path, PathBuf};
use std::sync::Arc;

use annotate_snippets::{AnnotationKind, Group, Level, Origin, Renderer, Snippet};

/// One problem in a suite file.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Diagnostic {
    /// The suite file (or the path given to [`discover`](super::discover)).
    pub file: PathBuf,
    /// 1-based line; 0 when the problem has no position (the file could not be read).
    pub line: usize,
    /// 1-based column, in characters; 0 when the problem has no position.
    pub column: usize,
    /// Byte range of the offending text in the file, when there is one.
    pub span: Option<Range<usize>>,
    /// What is wrong, in lower case.
    pub message: String,
    /// The offending text, as written in the file.
    pub text: String,
    /// How to fix it, e.g. "did you mean `max_time`?".
    pub hint: Option<String>,
    /// Other places that explain the problem (e.g. the first of two duplicate names).
    pub related: Vec<Related>,
}

/// A secondary location of a [`Diagnostic`].
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Related {
    pub line: usize,
    pub column: usize,
    pub span: Range<usize>,
    pub label: String,
}

/// A suite file that could not be turned into plans: one or more diagnostics.
#[derive(Clone, Debug)]
pub struct ConfigError {
    /// The file (or path) the errors are about.
    pub path: PathBuf,
    pub diagnostics: Vec<Diagnostic>,
    /// The file's text, for rendering source lines; `None` when it could not be read.
    source: Option<Arc<str>>,
}

impl std::error::Error for ConfigError {}

impl fmt::Display for ConfigError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.render(false))
    }
}

impl ConfigError {
    /// An error without a position in a file (unreadable file, missing path).
    pub fn without_position(path: &Path, message: impl Into<String>) -> ConfigError {
        ConfigError {
            path: path.to_path_buf(),
            diagnostics: vec![Diagnostic {
                file: path.to_path_buf(),
                line: 0,
                column: 0,
                span: None,
                message: message.into(),
                text: String::new(),
                hint: None,
                related: Vec::new(),
            }],
            source: None,
        }
    }

    pub(crate) fn from_diags(path: &Path, source: &str, diags: Vec<Diag>) -> ConfigError {
        let mut diags = diags;
        // Report in file order; a stable sort keeps same-place errors in discovery order.
        diags.sort_by_key(|d| d.span.start);
        let src = Source::new(source);
        let diagnostics = diags
            .into_iter()
            .map(|d| {
                let (line, column) = src.position(d.span.start);
                Diagnostic {
                    file: path.to_path_buf(),
                    line,
                    column,
                    text: source.get(d.span.clone()).unwrap_or("").to_string(),
                    span: Some(d.span),
                    message: d.message,
                    hint: d.hint,
                    related: d
                        .related
                        .into_iter()
                        .map(|(span, label)| {
                            let (line, column) = src.position(span.start);
                            Related {
                                line,
                                column,
                                span,
                                label,
                            }
                        })
                        .collect(),
                }
            })
            .collect();
        ConfigError {
            path: path.to_path_buf(),
            diagnostics,
            source: Some(source.into()),
        }
    }

    /// The first diagnostic's message (there is always at least one).
    pub fn message(&self) -> &str {
        self.diagnostics
            .first()
            .map(|d| d.message.as_str())
            .unwrap_or("")
    }

    /// Every diagnostic as rustc-style text: `error: ...`, `--> file:line:col`,
    /// the source line with the offending text underlined, and a `help:` hint.
    pub fn render(&self, color: bool) -> String {
        let renderer = if color {
            Renderer::styled()
        } else {
            Renderer::plain()
        };
        let path = self.path.display().to_string();
        let mut out = Vec::new();
        for d in &self.diagnostics {
            out.push(render_one(&renderer, &path, self.source.as_deref(), d));
        }
        if self.diagnostics.len() > 1 {
            out.push(format!(
                "error: could not load `{path}` due to {} previous errors",
                self.diagnostics.len()
            ));
        }
        out.join("\n\n")
    }
}

fn render_one(renderer: &Renderer, path: &str, source: Option<&str>, d: &Diagnostic) -> String {
    let title = Level::ERROR.primary_title(d.message.as_str());
    let mut group = match (source, &d.span) {
        (Some(src), Some(span)) if !src.trim().is_empty() => {
            let mut snippet = Snippet::source(src)
                .line_start(1)
                .path(path)
                .annotation(AnnotationKind::Primary.span(span.clone()));
            for r in &d.related {
                snippet = snippet.annotation(
                    AnnotationKind::Context
                        .span(r.span.clone())
                        .label(r.label.as_str()),
                );
            }
            Group::with_title(title).element(snippet)
        }
        _ if d.line > 0 => {
            Group::with_title(title).element(Origin::path(path).line(d.line).char_column(d.column))
        }
        _ => Group::with_title(title).element(Origin::path(path)),
    };
    if let Some(hint) = &d.hint {
        group = group.element(Level::HELP.message(hint.as_str()));
    }
    renderer.render(&[group])
}

/// A diagnostic while parsing, before positions are computed.
#[derive(Clone, Debug)]
pub(crate) struct Diag {
    pub span: Range<usize>,
    pub message: String,
    pub hint: Option<String>,
    pub related: Vec<(Range<usize>, String)>,
}

impl Diag {
    pub fn new(span: Range<usize>, message: impl Into<String>) -> Diag {
        Diag {
            span,
            message: message.into(),
            hint: None,
            related: Vec::new(),
        }
    }

    pub fn hint(mut self, hint: Option<String>) -> Diag {
        self.hint = hint;
        self
    }

    pub fn related(mut self, span: Range<usize>, label: impl Into<String>) -> Diag {
        self.related.push((span, label.into()));
        self
    }
}

/// Byte offsets → 1-based line and character column.
/// A suite file's text with its line starts, so that an offset's line and
/// column cost a binary search, not a count from the start (suite loading
/// stays linear in the file's size).
pub(crate) struct Source<'a> {
    text: &'a str,
    line_starts: Vec<usize>,
}

impl<'a> Source<'a> {
    pub(crate) fn new(text: &'a str) -> Self {
        let mut line_starts = vec![0];
        line_starts.extend(text.match_indices('\n').map(|(i, _)| i + 1));
        Source { text, line_starts }
    }

    /// 1-based line and column (in characters) of a byte offset.
    pub(crate) fn position(&self, offset: usize) -> (usize, usize) {
        let offset = offset.min(self.text.len());
        let line = self.line_starts.partition_point(|&s| s <= offset);
        let start = self.line_starts[line - 1];
        let column = self
            .text
            .get(start..offset)
            .map(|s| s.chars().count())
            .unwrap_or(offset - start)
            + 1;
        (line, column)
    }
}

/// "did you mean `x`?" for the candidate closest to `got`, when one is close.
pub(crate) use crate::plan::hint::{closest, did_you_mean};

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn positions_are_one_based_in_chars() {
        let s = Source::new("ab\nµx = 1\n");
        assert_eq!(s.position(0), (1, 1));
        assert_eq!(s.position(1), (1, 2));
        assert_eq!(s.position(3), (2, 1));
        assert_eq!(s.position(5), (2, 2)); // after the two-byte µ
        assert_eq!(s.position(100), (3, 1));
    }

    #[test]
    fn suggestions() {
        let keys = ["max_time", "min_samples", "warmup"];
        assert_eq!(
            did_you_mean("max_tiem", keys).as_deref(),
            Some("did you mean `max_time`?")
        );
        assert_eq!(did_you_mean("zzz", keys), None);
    }

    #[test]
    fn renders_file_line_col_and_hint() {
        let src = "[suite]\nnmae = \"x\"\n";
        let e = ConfigError::from_diags(
            Path::new("suites/a.toml"),
            src,
            vec![
                Diag::new(8..12, "unknown key `nmae` in [suite]")
                    .hint(Some("did you mean `name`?".into())),
            ],
        );
        let text = e.render(false);
        assert!(text.contains("suites/a.toml:2:1"), "{text}");
        assert!(text.contains("nmae = \"x\""), "{text}");
        assert!(text.contains("^^^^"), "{text}");
        assert!(text.contains("help: did you mean `name`?"), "{text}");
        assert_eq!(e.diagnostics[0].text, "nmae");
        assert_eq!(e.to_string(), text);
    }
}
