//! Names in SQL text, as the lint rules read them: a qualified table name folded as Postgres
//! folds it, the words a statement starts with, the table a CREATE TABLE makes or an ALTER
//! TABLE enables row level security on.

/// A table name part as Postgres folds it: unquoted lower-cased, quoted kept.
pub(super) fn fold(part: &str) -> String {
    match part.strip_prefix('"').and_then(|p| p.strip_suffix('"')) {
        Some(quoted) => quoted.replace("\"\"", "\""),
        None => part.to_ascii_lowercase(),
    }
}

/// `schema.table` (folded) from the text after a table keyword: `name`, `schema.name`, quoted.
pub(super) fn qualified_name(after: &str) -> Option<(String, String)> {
    let after = after.trim_start();
    let mut parts = Vec::new();
    let mut rest = after;
    loop {
        let len = if let Some(quoted) = rest.strip_prefix('"') {
            quoted.find('"').map(|n| n + 2)?
        } else {
            rest.find(|c: char| !(c.is_alphanumeric() || c == '_' || c == '$')).unwrap_or(rest.len())
        };
        if len == 0 {
            break;
        }
        parts.push(fold(&rest[..len]));
        rest = rest[len..].trim_start();
        match rest.strip_prefix('.') {
            Some(more) => rest = more.trim_start(),
            None => break,
        }
    }
    match parts.as_slice() {
        [name] => Some(("public".into(), name.clone())),
        [schema, name] => Some((schema.clone(), name.clone())),
        _ => None,
    }
}

/// Skip the leading words of `plain` (case-insensitive) and any of `optional` right after them.
pub(super) fn after_words<'a>(plain: &'a str, words: &[&str], optional: &[&[&str]]) -> Option<&'a str> {
    let mut rest = plain.trim_start();
    let take = |word: &str, rest: &mut &'a str| -> bool {
        let r = rest.trim_start();
        let ok = r.len() >= word.len()
            && r[..word.len()].eq_ignore_ascii_case(word)
            && r[word.len()..].starts_with(|c: char| c.is_whitespace() || c == '"' || c == '(');
        if ok {
            *rest = r[word.len()..].trim_start();
        }
        ok
    };
    for word in words {
        if !take(word, &mut rest) {
            return None;
        }
    }
    for group in optional {
        let mut probe = rest;
        if group.iter().all(|w| take(w, &mut probe)) {
            rest = probe;
        }
    }
    Some(rest)
}

/// The table a CREATE TABLE creates.
pub(super) fn created_table(plain: &str) -> Option<(String, String)> {
    let upper = plain.to_ascii_uppercase();
    let at = upper.find("TABLE")?;
    let after = after_words(&plain[at..], &["table"], &[&["if", "not", "exists"]])?;
    qualified_name(after)
}

/// `schema.table` of an `alter table ... enable row level security`.
pub(super) fn rls_enabled_table(plain: &str) -> Option<String> {
    let after = after_words(plain, &["alter", "table"], &[&["if", "exists"], &["only"]])?;
    let (schema, name) = qualified_name(after)?;
    let squashed = plain.to_ascii_lowercase().split_whitespace().collect::<Vec<_>>().join(" ");
    squashed.contains("enable row level security").then(|| format!("{schema}.{name}"))
}
