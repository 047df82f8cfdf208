//! The staging vault env files (runbook step 1), read in Rust instead of `source`d by a shell:
//! `KEY=VALUE`, `export KEY=VALUE`, single and double quotes, comments and blank lines. Nothing in
//! a value is ever executed: `$(...)` and backticks stay text.

use std::collections::BTreeMap;
use std::path::Path;

use anyhow::Result;

use crate::exit;

/// Read each file in order; later files override earlier keys, as sourcing them in order would.
pub fn read(workdir: &Path, files: &[String]) -> Result<BTreeMap<String, String>> {
    let mut vars = BTreeMap::new();
    for file in files {
        let text = std::fs::read_to_string(workdir.join(file)).map_err(|e| {
            exit::cannot_run(format!("reading {file}: {e} (the staging vault file; fetch it from the vault)"))
        })?;
        for (n, line) in text.lines().enumerate() {
            if let Some((key, value)) =
                parse_line(line).map_err(|why| exit::cannot_run(format!("{file}:{}: {why}", n + 1)))?
            {
                vars.insert(key, value);
            }
        }
    }
    Ok(vars)
}

/// One line: `None` for blanks and comments. An error names the column, never the text: a
/// vault line holds a secret, and a quote inside a password must not print the rest of it.
pub fn parse_line(line: &str) -> Result<Option<(String, String)>, String> {
    let column = |rest: &str| line[..line.len() - rest.len()].chars().count() + 1;
    let trimmed = line.trim();
    if trimmed.is_empty() || trimmed.starts_with('#') {
        return Ok(None);
    }
    let body = trimmed.strip_prefix("export ").map_or(trimmed, str::trim_start);
    let (key, rest) = body.split_once('=').ok_or("expected KEY=VALUE (no `=` on the line)")?;
    let key = key.trim();
    if key.is_empty() || !key.chars().all(|c| c.is_ascii_alphanumeric() || c == '_') {
        return Err(format!(
            "column {}: the name before `=` is not a variable name (letters, digits, _)",
            column(body)
        ));
    }
    let rest = rest.trim_start();
    let value = match rest.chars().next() {
        Some('"' | '\'') => shell_word(rest, column)?,
        _ => rest.split(" #").next().unwrap_or_default().trim_end().to_string(),
    };
    Ok(Some((key.to_string(), value)))
}

/// A value that starts with a quote, read as a shell reads one word: quoted parts (`'...'`
/// literal, `"..."` with `\"`, `\\`, `\$` and `` \` ``), backslash escapes and bare characters,
/// side by side, up to a blank; so `'it'\''s'` is `it's`, as `source` would read it. Only a
/// comment may follow.
fn shell_word(rest: &str, column: impl Fn(&str) -> usize) -> Result<String, String> {
    let mut out = String::new();
    let mut chars = rest.char_indices().peekable();
    while let Some((at, c)) = chars.next() {
        match c {
            q @ ('"' | '\'') => loop {
                match chars.next() {
                    None => {
                        return Err(format!(
                            "column {}: the {q} quote opened here is never closed",
                            column(&rest[at..])
                        ))
                    }
                    Some((_, c)) if c == q => break,
                    Some((_, '\\')) if q == '"' => match chars.next() {
                        Some((_, c @ ('"' | '\\' | '$' | '`'))) => out.push(c),
                        Some((_, c)) => {
                            out.push('\\');
                            out.push(c);
                        }
                        None => {
                            return Err(format!(
                                "column {}: the {q} quote opened here is never closed",
                                column(&rest[at..])
                            ))
                        }
                    },
                    Some((_, c)) => out.push(c),
                }
            },
            '\\' => match chars.next() {
                Some((_, c)) => out.push(c),
                None => return Err(format!("column {}: a backslash ends the line", column(&rest[at..]))),
            },
            c if c.is_whitespace() => {
                let after = rest[at..].trim_start();
                if !after.is_empty() && !after.starts_with('#') {
                    return Err(format!(
                        "column {}: text after the value (a quote or a blank inside it? write it as \
                         .github/scripts/vault-files.sh does: single quotes, each ' as '\\'')",
                        column(after)
                    ));
                }
                return Ok(out);
            }
            c => out.push(c),
        }
    }
    Ok(out)
}

#[cfg(test)]
mod tests {
    use super::parse_line;

    fn kv(line: &str) -> (String, String) {
        parse_line(line).unwrap().unwrap()
    }

    #[test]
    fn the_shapes_a_vault_file_takes() {
        assert_eq!(kv("DATABASE_URL=postgres://u:p@h/db"), ("DATABASE_URL".into(), "postgres://u:p@h/db".into()));
        assert_eq!(kv("export A='x y # not a comment'"), ("A".into(), "x y # not a comment".into()));
        assert_eq!(kv("A=\"p\\\"q\\$r\" # comment"), ("A".into(), "p\"q$r".into()));
        assert_eq!(kv("A=plain # comment"), ("A".into(), "plain".into()));
        assert_eq!(parse_line("  # comment").unwrap(), None);
        assert_eq!(parse_line("").unwrap(), None);
    }

    #[test]
    fn quoted_parts_side_by_side_read_as_a_shell_reads_them() {
        assert_eq!(kv("export P='it'\\''s'").1, "it's");
        assert_eq!(kv("P='a'\\''b'\\''c' # comment").1, "a'b'c");
        assert_eq!(kv("P=\"x\"'$y'\\ z").1, "x$y z");
    }

    #[test]
    fn command_substitution_is_text_never_run() {
        assert_eq!(kv("A=$(touch /tmp/pwned)").1, "$(touch /tmp/pwned)");
        assert_eq!(kv("A=\"`id`\"").1, "`id`");
    }

    #[test]
    fn an_error_names_the_column_never_the_secret() {
        let why = parse_line("DATABASE_URL='postgres://u:pa'ss-word-rest@h/db'").unwrap_err();
        assert_eq!(why, "column 48: the ' quote opened here is never closed", "as a shell reads it");
        assert!(!why.contains("ss-word") && !why.contains("postgres"), "{why}");
        let why = parse_line("export PASS=\"s3cret").unwrap_err();
        assert_eq!(why, "column 13: the \" quote opened here is never closed");
        let why = parse_line("s3cr et=x").unwrap_err();
        assert!(!why.contains("s3cr"), "{why}");
    }

    #[test]
    fn malformed_lines_say_why() {
        assert!(parse_line("A='open").unwrap_err().contains("never closed"));
        assert!(parse_line("no equals sign").is_err());
    }
}
