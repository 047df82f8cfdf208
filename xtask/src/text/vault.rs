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

/// One line: `None` for blanks and comments.
pub fn parse_line(line: &str) -> Result<Option<(String, String)>, String> {
    let line = line.trim();
    if line.is_empty() || line.starts_with('#') {
        return Ok(None);
    }
    let line = line.strip_prefix("export ").map_or(line, str::trim_start);
    let (key, rest) = line.split_once('=').ok_or("expected KEY=VALUE")?;
    let key = key.trim();
    if key.is_empty() || !key.chars().all(|c| c.is_ascii_alphanumeric() || c == '_') {
        return Err(format!("`{key}` is not a variable name"));
    }
    let rest = rest.trim_start();
    let value = match rest.chars().next() {
        Some(q @ ('"' | '\'')) => {
            let mut out = String::new();
            let mut chars = rest[1..].chars();
            loop {
                match chars.next() {
                    None => return Err(format!("unterminated {q} quote")),
                    Some(c) if c == q => break,
                    Some('\\') if q == '"' => match chars.next() {
                        Some(c @ ('"' | '\\' | '$' | '`')) => out.push(c),
                        Some(c) => {
                            out.push('\\');
                            out.push(c);
                        }
                        None => return Err("unterminated \" quote".into()),
                    },
                    Some(c) => out.push(c),
                }
            }
            let trailing: String = chars.collect();
            let trailing = trailing.trim();
            if !trailing.is_empty() && !trailing.starts_with('#') {
                return Err(format!("unexpected text after the quoted value: {trailing}"));
            }
            out
        }
        _ => rest.split(" #").next().unwrap_or_default().trim_end().to_string(),
    };
    Ok(Some((key.to_string(), value)))
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
    fn command_substitution_is_text_never_run() {
        assert_eq!(kv("A=$(touch /tmp/pwned)").1, "$(touch /tmp/pwned)");
        assert_eq!(kv("A=\"`id`\"").1, "`id`");
    }

    #[test]
    fn malformed_lines_say_why() {
        assert!(parse_line("A='open").unwrap_err().contains("unterminated"));
        assert!(parse_line("no equals sign").is_err());
    }
}
