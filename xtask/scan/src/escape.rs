//! Text from a tree or a server (file names, error messages, test descriptions) made safe for
//! where it is shown: a terminal or CI log (no control character, so no escape sequence and no
//! forged line), one line of a report, or Markdown that GitHub renders (no markup, no HTML).

use std::borrow::Cow;

/// A character a terminal or a reader could take for something else: C0/C1 controls, DEL and the
/// bidirectional overrides and isolates ("Trojan Source").
fn hostile(c: char) -> bool {
    c.is_control() || matches!(c, '\u{202a}'..='\u{202e}' | '\u{2066}'..='\u{2069}')
}

fn escape_where(text: &str, keep: impl Fn(char) -> bool) -> Cow<'_, str> {
    if !text.chars().any(|c| hostile(c) && !keep(c)) {
        return Cow::Borrowed(text);
    }
    let mut out = String::with_capacity(text.len() + 8);
    for c in text.chars() {
        if hostile(c) && !keep(c) {
            out.extend(c.escape_default());
        } else {
            out.push(c);
        }
    }
    Cow::Owned(out)
}

/// For a terminal or a log: every control character escaped (`\u{1b}`, `\r`) but line feeds and
/// tabs, which the tool's own multi-line text uses.
pub fn terminal(text: &str) -> Cow<'_, str> {
    escape_where(text, |c| c == '\n' || c == '\t')
}

/// One line whatever the text holds: line feeds escaped too, so untrusted text cannot start a
/// line of its own (a forged `::error::` workflow command, a fake verdict).
pub fn one_line(text: &str) -> Cow<'_, str> {
    escape_where(text, |c| c == '\t')
}

/// Plain text in Markdown (a table cell, a list item, never at a line's start): one line, with
/// every character that GitHub's Markdown or HTML would read as markup there escaped (emphasis,
/// code, links and images, HTML and entities, tables, strikethrough, math, bare-URL autolinks),
/// so a name or message renders as the text it is.
pub fn md_text(text: &str) -> String {
    let line = one_line(text);
    let chars: Vec<char> = line.chars().collect();
    let mut out = String::with_capacity(line.len() + 8);
    for (i, &c) in chars.iter().enumerate() {
        // `_` between two letters or digits cannot open or close emphasis (`rollback_incomplete`).
        let intraword = |at: Option<&char>| at.is_some_and(|c| c.is_alphanumeric());
        match c {
            '&' => out.push_str("&amp;"),
            '<' => out.push_str("&lt;"),
            '>' => out.push_str("&gt;"),
            '\t' => out.push(' '),
            ':' if chars[i..].starts_with(&[':', '/', '/']) => out.push_str("\\:"),
            '_' if i > 0 && intraword(chars.get(i - 1)) && intraword(chars.get(i + 1)) => out.push('_'),
            '\\' | '`' | '*' | '_' | '[' | ']' | '|' | '~' | '$' => {
                out.push('\\');
                out.push(c);
            }
            c => out.push(c),
        }
    }
    out
}

/// The tool's own prose that quotes untrusted text (a next action naming a file, a hint quoting
/// psql): its code spans are kept, everything else is escaped as [`md_text`] escapes it, and HTML
/// is escaped everywhere, inside spans too, so a span the renderer reads differently still shows
/// text.
pub fn md_prose(text: &str) -> String {
    let line = one_line(text);
    let mut out = String::with_capacity(line.len() + 8);
    let mut in_code = false;
    for (i, part) in line.split('`').enumerate() {
        if i > 0 {
            out.push('`');
            in_code = !in_code;
        }
        if in_code {
            out.push_str(&part.replace('&', "&amp;").replace('<', "&lt;").replace('>', "&gt;"));
        } else {
            out.push_str(&md_text(part));
        }
    }
    out
}

/// The longest run of backticks in `text`.
fn longest_backtick_run(text: &str) -> usize {
    text.split(|c| c != '`').map(str::len).max().unwrap_or(0)
}

/// An inline code span holding `text` literally: one line, delimited by a backtick run longer
/// than any inside, padded when the text starts or ends with a backtick. Pipes are escaped so
/// the span can sit in a table cell (GitHub removes that backslash inside cells).
pub fn md_code(text: &str, in_table: bool) -> String {
    let line = one_line(text).replace('\t', " ");
    let line = if in_table { line.replace('|', "\\|") } else { line };
    let ticks = "`".repeat(longest_backtick_run(&line) + 1);
    let pad = if line.starts_with('`') || line.ends_with('`') || line.is_empty() { " " } else { "" };
    format!("{ticks}{pad}{line}{pad}{ticks}")
}

/// A fenced code block holding `lines` literally, each line prefixed by `indent` (inside a list
/// item): the fence is longer than any backtick run inside, so no line can close it.
pub fn md_fence(lines: &[String], indent: &str) -> String {
    let body: Vec<String> = lines.iter().map(|l| one_line(l).into_owned()).collect();
    let longest = body.iter().map(|l| longest_backtick_run(l)).max().unwrap_or(0);
    let fence = "`".repeat(longest.max(2) + 1);
    let mut out = format!("{indent}{fence}text\n");
    for l in &body {
        out.push_str(&format!("{indent}{l}\n"));
    }
    out.push_str(&format!("{indent}{fence}\n"));
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn control_characters_are_escaped_for_a_terminal() {
        assert_eq!(terminal("a\x1b[2Jb\r\u{7}\u{202e}x\ny\tz"), "a\\u{1b}[2Jb\\r\\u{7}\\u{202e}x\ny\tz");
        assert!(matches!(terminal("plain, é ★"), Cow::Borrowed(_)));
        assert_eq!(one_line("boom\n::error::forged"), "boom\\n::error::forged");
    }

    #[test]
    fn markdown_text_renders_as_itself() {
        assert_eq!(md_text("<img src=x onerror=alert(1)>"), "&lt;img src=x onerror=alert(1)&gt;");
        assert_eq!(
            md_text("[click](https://evil) **b** a|b\n# h"),
            "\\[click\\](https\\://evil) \\*\\*b\\*\\* a\\|b\\\\n# h"
        );
        assert_eq!(md_text("Not ready for sign-off: (1 failed)."), "Not ready for sign-off: (1 failed).");
        assert_eq!(md_text("&amp;"), "&amp;amp;");
        assert_eq!(
            md_prose("amend `a_b.sql` (x_y _z_ <b>), then run `cargo xtask rls`"),
            "amend `a_b.sql` (x_y \\_z\\_ &lt;b&gt;), then run `cargo xtask rls`"
        );
    }

    #[test]
    fn code_spans_and_fences_outgrow_the_backticks_inside() {
        assert_eq!(md_code("a``b", false), "```a``b```");
        assert_eq!(md_code("`x`", false), "`` `x` ``");
        assert_eq!(md_code("a|b", true), "`a\\|b`");
        assert_eq!(md_code("", false), "`  `");
        let fenced = md_fence(&["one".into(), "````".into(), "x\x1by".into()], "  ");
        assert_eq!(fenced, "  `````text\n  one\n  ````\n  x\\u{1b}y\n  `````\n");
    }
}
