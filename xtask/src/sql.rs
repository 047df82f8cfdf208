//! A small SQL lexer: enough to split a migration into statements (for the history row's
//! `statements`, as the Supabase CLI stores them) and to find statements that cannot run inside a
//! transaction block. It understands what can hide a `;`: quotes, `E''` escapes, dollar quotes,
//! and line and (nested) block comments.

/// Statements of `sql`, trimmed, without their terminating `;`, comment-only pieces dropped.
pub fn split(sql: &str) -> Vec<String> {
    spans(sql).into_iter().map(|s| s.text.to_string()).collect()
}

/// A statement and where it is: the 1-based line of its first word and the line of its end.
#[derive(Clone, Debug)]
pub struct Span<'a> {
    pub text: &'a str,
    pub line: usize,
    pub end_line: usize,
}

/// Statements with their positions (see [`split`]).
pub fn spans(sql: &str) -> Vec<Span<'_>> {
    let line_of = |offset: usize| sql[..offset].bytes().filter(|b| *b == b'\n').count() + 1;
    raw_spans(sql)
        .into_iter()
        .map(|(start, end)| {
            let text = sql[start..end].trim();
            let first_word = start + code_start(&sql[start..end]);
            Span { text, line: line_of(first_word), end_line: line_of(end) }
        })
        .collect()
}

/// Offset of the first character that is not whitespace or a comment.
fn code_start(piece: &str) -> usize {
    let mut i = 0;
    let bytes = piece.as_bytes();
    while i < bytes.len() {
        if bytes[i].is_ascii_whitespace() {
            i += 1;
        } else if piece[i..].starts_with("--") {
            i = piece[i..].find('\n').map_or(bytes.len(), |n| i + n);
        } else if piece[i..].starts_with("/*") {
            i += skip_block_comment(&bytes[i..], 0);
        } else {
            break;
        }
    }
    i
}

fn raw_spans(sql: &str) -> Vec<(usize, usize)> {
    let bytes = sql.as_bytes();
    let mut out = Vec::new();
    let mut start = 0;
    let mut i = 0;
    let mut has_code = false;
    while i < bytes.len() {
        let c = bytes[i];
        let next = bytes.get(i + 1).copied();
        match c {
            b'-' if next == Some(b'-') => {
                i = sql[i..].find('\n').map_or(bytes.len(), |n| i + n);
                continue;
            }
            b'/' if next == Some(b'*') => {
                i = skip_block_comment(bytes, i);
                continue;
            }
            b'\'' => {
                let escapes =
                    i > 0 && matches!(bytes[i - 1], b'e' | b'E') && !is_ident(bytes.get(i.wrapping_sub(2)).copied());
                i = skip_quoted(bytes, i, b'\'', escapes);
                has_code = true;
                continue;
            }
            b'"' => {
                i = skip_quoted(bytes, i, b'"', false);
                has_code = true;
                continue;
            }
            b'$' if !is_ident(i.checked_sub(1).map(|p| bytes[p])) => {
                if let Some(end) = skip_dollar_quoted(sql, i) {
                    i = end;
                    has_code = true;
                    continue;
                }
            }
            b';' => {
                if has_code {
                    out.push((start, i));
                }
                start = i + 1;
                has_code = false;
            }
            c if !c.is_ascii_whitespace() => has_code = true,
            _ => {}
        }
        i += 1;
    }
    if has_code {
        out.push((start, sql.len()));
    }
    out
}

/// Why a statement cannot run inside a transaction block, if it cannot.
pub fn non_transactional(statement: &str) -> Option<&'static str> {
    let words = leading_words(statement, 6);
    let w: Vec<&str> = words.iter().map(String::as_str).collect();
    let has = |word: &str| w.contains(&word);
    match w.as_slice() {
        ["CREATE", "INDEX", "CONCURRENTLY", ..] | ["CREATE", "UNIQUE", "INDEX", "CONCURRENTLY", ..] => {
            Some("CREATE INDEX CONCURRENTLY")
        }
        ["DROP", "INDEX", "CONCURRENTLY", ..] => Some("DROP INDEX CONCURRENTLY"),
        ["REINDEX", ..] if has("CONCURRENTLY") => Some("REINDEX CONCURRENTLY"),
        ["ALTER", "TABLE", ..] if has("DETACH") && statement.to_ascii_uppercase().contains("CONCURRENTLY") => {
            Some("DETACH PARTITION CONCURRENTLY")
        }
        ["VACUUM", ..] => Some("VACUUM"),
        ["CREATE", "DATABASE", ..] => Some("CREATE DATABASE"),
        ["DROP", "DATABASE", ..] => Some("DROP DATABASE"),
        ["CREATE", "TABLESPACE", ..] => Some("CREATE TABLESPACE"),
        ["DROP", "TABLESPACE", ..] => Some("DROP TABLESPACE"),
        ["ALTER", "SYSTEM", ..] => Some("ALTER SYSTEM"),
        ["BEGIN", ..] | ["START", "TRANSACTION", ..] | ["COMMIT", ..] | ["END", ..] | ["ROLLBACK", ..] => {
            Some("its own transaction control (BEGIN/COMMIT)")
        }
        _ => None,
    }
}

/// The first statement of `sql` that cannot run in a transaction, with its reason.
pub fn first_non_transactional(sql: &str) -> Option<&'static str> {
    split(sql).iter().find_map(|s| non_transactional(s))
}

/// Up to `n` leading words of a statement, upper-cased, comments skipped.
fn leading_words(statement: &str, n: usize) -> Vec<String> {
    let mut words = Vec::new();
    let mut rest = statement;
    while words.len() < n {
        rest = rest.trim_start();
        if let Some(after) = rest.strip_prefix("--") {
            rest = after.split_once('\n').map_or("", |(_, r)| r);
            continue;
        }
        if rest.starts_with("/*") {
            let end = skip_block_comment(rest.as_bytes(), 0);
            rest = &rest[end..];
            continue;
        }
        let len = rest.find(|c: char| !(c.is_ascii_alphanumeric() || c == '_')).unwrap_or(rest.len());
        if len == 0 {
            break;
        }
        words.push(rest[..len].to_ascii_uppercase());
        rest = &rest[len..];
    }
    words
}

fn is_ident(b: Option<u8>) -> bool {
    b.is_some_and(|b| b.is_ascii_alphanumeric() || b == b'_')
}

fn skip_block_comment(bytes: &[u8], start: usize) -> usize {
    let mut depth = 0;
    let mut i = start;
    while i + 1 < bytes.len() {
        match (bytes[i], bytes[i + 1]) {
            (b'/', b'*') => {
                depth += 1;
                i += 2;
            }
            (b'*', b'/') => {
                depth -= 1;
                i += 2;
                if depth == 0 {
                    return i;
                }
            }
            _ => i += 1,
        }
    }
    bytes.len()
}

fn skip_quoted(bytes: &[u8], start: usize, quote: u8, backslash_escapes: bool) -> usize {
    let mut i = start + 1;
    while i < bytes.len() {
        if backslash_escapes && bytes[i] == b'\\' {
            i += 2;
            continue;
        }
        if bytes[i] == quote {
            if bytes.get(i + 1) == Some(&quote) {
                i += 2;
                continue;
            }
            return i + 1;
        }
        i += 1;
    }
    bytes.len()
}

/// `$tag$ ... $tag$`; `None` when `$` at `start` opens no dollar quote (e.g. a `$1` parameter).
fn skip_dollar_quoted(sql: &str, start: usize) -> Option<usize> {
    let rest = &sql[start + 1..];
    let tag_len = rest.find('$')?;
    let tag = &rest[..tag_len];
    if tag.starts_with(|c: char| c.is_ascii_digit()) || !tag.chars().all(|c| c.is_alphanumeric() || c == '_') {
        return None;
    }
    let delimiter = &sql[start..start + tag_len + 2];
    let body = start + delimiter.len();
    Some(sql[body..].find(delimiter).map_or(sql.len(), |n| body + n + delimiter.len()))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn semicolons_inside_quotes_comments_and_bodies_do_not_split() {
        let sql = "-- a; comment\ncreate table t (x text default 'a;b');\n/* x; /* nested; */ y; */\n\
                   create function f() returns int language sql as $$ select 1; $$;\n\
                   create function g() returns int language plpgsql as $body$ begin return 1; end $body$;\n\
                   select E'it\\'s;';  select \"odd;name\" from t";
        let parts = split(sql);
        assert_eq!(parts.len(), 5, "{parts:#?}");
        assert!(parts[0].starts_with("-- a; comment\ncreate table"));
        assert!(parts[4].ends_with("from t"));
    }

    #[test]
    fn statements_know_their_lines() {
        let sql = "-- header\n\ncreate table a (\n  id int\n);\n/* note */ drop table b;\n";
        let s = spans(sql);
        assert_eq!((s[0].line, s[0].end_line), (3, 5));
        assert_eq!((s[1].line, s[1].text), (6, "/* note */ drop table b"));
    }

    #[test]
    fn statements_that_cannot_run_in_a_transaction() {
        assert_eq!(
            first_non_transactional("create table a(x int);\n-- note\ncreate unique index concurrently i on a(x);"),
            Some("CREATE INDEX CONCURRENTLY")
        );
        assert_eq!(first_non_transactional("vacuum analyze a;"), Some("VACUUM"));
        assert_eq!(first_non_transactional("create index i on a(x); select 'vacuum';"), None);
        assert_eq!(
            first_non_transactional("begin; create table b(); commit;"),
            Some("its own transaction control (BEGIN/COMMIT)")
        );
    }
}
