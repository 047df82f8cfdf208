//! Identifiers as PostgreSQL prints them (`quote_ident`, `%I`): read back whole, a quoted one with
//! its spaces, dots and doubled quotes.

/// An identifier as written (`"Users can read"` or `notes`) at the start of `s`, and the rest.
pub fn read_ident(s: &str) -> Option<(String, &str)> {
    if let Some(body) = s.strip_prefix('"') {
        let mut chars = body.char_indices().peekable();
        while let Some((i, c)) = chars.next() {
            if c == '"' {
                if chars.peek().is_some_and(|(_, c)| *c == '"') {
                    chars.next();
                    continue;
                }
                return Some((s[..i + 2].to_string(), &body[i + 1..]));
            }
        }
        return None;
    }
    let end = s.find([' ', '.', '(', ':', ',']).unwrap_or(s.len());
    (end > 0).then(|| (s[..end].to_string(), &s[end..]))
}

/// A dotted name (`public."My table"`) at the start of `s`, and the rest.
pub fn read_path(s: &str) -> Option<(String, &str)> {
    let (mut name, mut rest) = read_ident(s)?;
    while let Some(after) = rest.strip_prefix('.') {
        let (part, more) = read_ident(after)?;
        name = format!("{name}.{part}");
        rest = more;
    }
    Some((name, rest))
}

/// The name an identifier as written stands for: `"a""b"` is `a"b`.
pub fn unquote(ident: &str) -> String {
    ident.strip_prefix('"').and_then(|s| s.strip_suffix('"')).map_or(ident.to_string(), |s| s.replace("\"\"", "\""))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names_with_dots_and_quotes_are_read_whole() {
        assert_eq!(read_path("public.\"a.b\"\"c\" kind=r"), Some(("public.\"a.b\"\"c\"".to_string(), " kind=r")));
        assert_eq!(unquote("\"a.b\"\"c\""), "a.b\"c");
    }
}
