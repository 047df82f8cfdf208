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

/// Where `pat` first occurs in `s` outside double-quoted identifiers and single-quoted strings
/// (each closed by its quote, a doubled one inside it).
pub fn find_unquoted(s: &str, pat: &str) -> Option<usize> {
    let b = s.as_bytes();
    let mut quote: Option<u8> = None;
    let mut i = 0;
    while i < b.len() {
        match quote {
            Some(q) if b[i] == q => {
                if b.get(i + 1) == Some(&q) {
                    i += 1;
                } else {
                    quote = None;
                }
            }
            Some(_) => {}
            None if b[i] == b'"' || b[i] == b'\'' => quote = Some(b[i]),
            None if s[i..].starts_with(pat) => return Some(i),
            None => {}
        }
        i += 1;
    }
    None
}

/// `s` split at each `sep` outside quotes.
pub fn split_unquoted<'a>(mut s: &'a str, sep: &str) -> Vec<&'a str> {
    let mut out = Vec::new();
    while let Some(at) = find_unquoted(s, sep) {
        out.push(&s[..at]);
        s = &s[at + sep.len()..];
    }
    out.push(s);
    out
}

/// An identifier as PostgreSQL prints one: lower-case letters, digits, `_` and `$` bare, or
/// anything within double quotes (a quote inside doubled).
pub fn is_identifier(s: &str) -> bool {
    if let Some(body) = s.strip_prefix('"').and_then(|b| b.strip_suffix('"')) {
        return !body.is_empty() && body.replace("\"\"", "").find('"').is_none();
    }
    !s.is_empty()
        && s.bytes().all(|c| c.is_ascii_lowercase() || c.is_ascii_digit() || c == b'_' || c == b'$')
        && !s.as_bytes()[0].is_ascii_digit()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names_with_dots_and_quotes_are_read_whole() {
        assert_eq!(read_path("public.\"a.b\"\"c\" kind=r"), Some(("public.\"a.b\"\"c\"".to_string(), " kind=r")));
        assert_eq!(unquote("\"a.b\"\"c\""), "a.b\"c");
        assert_eq!(find_unquoted("\"x using=1\" using=2", " using="), Some(11));
        assert_eq!(find_unquoted("'a check=b' check=c", " check="), Some(11));
        assert_eq!(split_unquoted("\"a,b\"=r/x,c=w/x", ","), ["\"a,b\"=r/x", "c=w/x"]);
        assert!(is_identifier("anon") && is_identifier("\"Staff \"\"x\"\"\"") && !is_identifier("x; drop"));
    }
}
