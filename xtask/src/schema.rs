//! Schema snapshots (`pg_dump --schema-only`) normalised so that two dumps of the same schema are
//! equal text: pg_dump 15.14 and later print `\restrict <random key>` / `\unrestrict <key>` lines
//! that differ on every run, and a version banner.

use std::path::Path;

use anyhow::Result;

use crate::exit;
use crate::process::Cmd;
use crate::redact::Redactor;

/// How long pg_dump waits for a table lock when no `--lock-timeout` was given: a table another
/// session holds must not hang the rehearsal forever.
pub const DEFAULT_LOCK_WAIT: &str = "30s";

/// `pg_dump --schema-only` of `dsn`, normalised. `schemas` limits the dump (`-n`), empty for all.
/// `lock_wait` bounds the wait for each table's lock (`--lock-wait-timeout`).
pub fn snapshot(
    pg_dump: &Path,
    dsn: &str,
    schemas: &[&str],
    redactor: &Redactor,
    lock_wait: Option<&str>,
) -> Result<String> {
    let wait = format!("--lock-wait-timeout={}", lock_wait.unwrap_or(DEFAULT_LOCK_WAIT));
    let mut cmd = Cmd::new(pg_dump).args(["--schema-only", "--no-owner", &wait, "--dbname", dsn]);
    for schema in schemas {
        cmd = cmd.args(["-n", schema]);
    }
    let out = cmd.run(redactor, None)?;
    if !out.success() {
        let reason = out.text.lines().find(|l| l.contains("error")).unwrap_or("no error message").trim();
        return Err(exit::cannot_run(format!("pg_dump --schema-only failed: {reason}\n{}", out.text.trim_end())));
    }
    Ok(normalize(&out.text))
}

/// Drop the lines that change between two dumps of one schema.
pub fn normalize(dump: &str) -> String {
    let mut out = String::with_capacity(dump.len());
    for line in dump.lines() {
        if line.starts_with("\\restrict ")
            || line.starts_with("\\unrestrict ")
            || line.starts_with("-- Dumped from database version")
            || line.starts_with("-- Dumped by pg_dump version")
        {
            continue;
        }
        out.push_str(line);
        out.push('\n');
    }
    out
}

/// `diff -u a b` run in `dir` (the two snapshots already written there). Without `diff`, the lines
/// only in one of them.
pub fn diff(dir: &Path, a: &str, b: &str, before: &str, after: &str) -> String {
    let out = Cmd::new("diff").args(["-u", a, b]).current_dir(dir).run(&Redactor::new(), None);
    match out {
        Ok(out) if out.code == Some(1) => out.text,
        _ => {
            let only = |x: &str, y: &str, mark: char| -> String {
                let other: std::collections::HashSet<&str> = y.lines().collect();
                x.lines().filter(|l| !other.contains(l)).map(|l| format!("{mark}{l}\n")).collect()
            };
            format!("--- {a}\n+++ {b}\n{}{}", only(before, after, '-'), only(after, before, '+'))
        }
    }
}

#[cfg(test)]
mod tests {
    #[test]
    fn restrict_keys_and_versions_do_not_make_a_difference() {
        let a = "\\restrict AbC123\n-- Dumped by pg_dump version 15.14\nCREATE TABLE t ();\n\\unrestrict AbC123\n";
        let b = "\\restrict XyZ789\n-- Dumped by pg_dump version 15.18\nCREATE TABLE t ();\n\\unrestrict XyZ789\n";
        assert_eq!(super::normalize(a), super::normalize(b));
        assert_eq!(super::normalize(a), "CREATE TABLE t ();\n");
    }
}
