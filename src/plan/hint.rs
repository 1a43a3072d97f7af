//! "Did you mean" hints: the closest of the known names to a misspelt one.

/// `did you mean `x`?` when a candidate is close enough.
pub(crate) fn did_you_mean<'a>(
    got: &str,
    candidates: impl IntoIterator<Item = &'a str>,
) -> Option<String> {
    closest(got, candidates).map(|c| format!("did you mean `{c}`?"))
}

/// The candidate most like `got` (Jaro-Winkler ≥ 0.8), if any.
pub(crate) fn closest<'a>(
    got: &str,
    candidates: impl IntoIterator<Item = &'a str>,
) -> Option<&'a str> {
    candidates
        .into_iter()
        .map(|c| (strsim::jaro_winkler(got, c), c))
        .filter(|(score, _)| *score >= 0.8)
        .max_by(|a, b| a.0.total_cmp(&b.0))
        .map(|(_, c)| c)
}
