//! Flame graphs as SVG (inferno): one profile, or the differential of two
//! (head drawn, red where it got hotter than the base, blue cooler).

use super::folded::Folded;

/// A flame graph of `f`, titled.
pub fn flame_graph(f: &Folded, title: &str) -> Result<String, String> {
    let text = f.text();
    let mut opt = inferno::flamegraph::Options::default();
    opt.title = title.to_string();
    let mut out = Vec::new();
    inferno::flamegraph::from_lines(&mut opt, text.lines(), &mut out)
        .map_err(|e| format!("cannot draw the flame graph: {e}"))?;
    String::from_utf8(out).map_err(|e| format!("flame graph is not UTF-8: {e}"))
}

/// The differential flame graph: the head's stacks, coloured by how each
/// changed from the base.
pub fn differential(base: &Folded, head: &Folded, title: &str) -> Result<String, String> {
    let mut diff = Vec::new();
    inferno::differential::from_readers(
        inferno::differential::Options::default(),
        base.text().as_bytes(),
        head.text().as_bytes(),
        &mut diff,
    )
    .map_err(|e| format!("cannot diff the profiles: {e}"))?;
    let diff = String::from_utf8_lossy(&diff).into_owned();
    let mut opt = inferno::flamegraph::Options::default();
    opt.title = title.to_string();
    let mut out = Vec::new();
    inferno::flamegraph::from_lines(&mut opt, diff.lines(), &mut out)
        .map_err(|e| format!("cannot draw the differential flame graph: {e}"))?;
    String::from_utf8(out).map_err(|e| format!("flame graph is not UTF-8: {e}"))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn svgs_name_the_functions() {
        let base = Folded::parse("main;steady_part 22\nmain;slow_part 22\n");
        let head = Folded::parse("main;steady_part 21\nmain;slow_part 49\n");
        let one = flame_graph(&head, "head").unwrap();
        assert!(
            one.starts_with("<?xml") && one.contains("slow_part"),
            "{}",
            &one[..200]
        );
        let diff = differential(&base, &head, "head vs base").unwrap();
        assert!(diff.contains("slow_part") && diff.contains("head vs base"));
        // Hotter frames are drawn red: the differential colours are in use.
        assert!(diff.contains("rgb(255,"), "no red frame");
    }
}
