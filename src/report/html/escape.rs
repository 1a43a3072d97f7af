//! Escaping for text and attribute values: every string that comes from a
//! suite, a program's output or the host goes through [`esc`].

use std::fmt;

/// Displays a string with `& < > " '` escaped, safe in text and in quoted
/// attribute values of HTML and XML alike.
pub struct Esc<'a>(pub &'a str);

impl fmt::Display for Esc<'_> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let mut last = 0;
        for (i, c) in self.0.char_indices() {
            let rep = match c {
                '&' => "&amp;",
                '<' => "&lt;",
                '>' => "&gt;",
                '"' => "&quot;",
                '\'' => "&#39;",
                // Control characters other than tab/newline are not allowed in XML.
                c if c.is_control() && c != '\n' && c != '\t' => "\u{fffd}",
                _ => continue,
            };
            f.write_str(&self.0[last..i])?;
            f.write_str(rep)?;
            last = i + c.len_utf8();
        }
        f.write_str(&self.0[last..])
    }
}

pub fn esc(s: &str) -> Esc<'_> {
    Esc(s)
}

#[cfg(test)]
mod tests {
    use super::esc;

    #[test]
    fn escapes_markup_and_quotes() {
        assert_eq!(
            esc(r#"<script>alert("x&y")</script> it's"#).to_string(),
            "&lt;script&gt;alert(&quot;x&amp;y&quot;)&lt;/script&gt; it&#39;s"
        );
        assert_eq!(esc("plain µs").to_string(), "plain µs");
        assert_eq!(esc("a\u{1}b\nc").to_string(), "a\u{fffd}b\nc");
    }
}
