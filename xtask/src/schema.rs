//! Schema snapshots (`pg_dump --schema-only`) normalised so that two dumps of the same schema are
//! equal text: pg_dump 15.14 and later print `\restrict <random key>` / `\unrestrict <key>` lines
//! that differ on every run, and a version banner.

use std::path::Path;

use anyhow::Result;

use crate::exit;
use crate::process::Cmd;
use crate::redact::Redactor;

/// `pg_dump --schema-only` of `dsn`, normalised. `schemas` limits the dump (`-n`), empty for all.
pub fn snapshot(pg_dump: &Path, dsn: &str, schemas: &[&str], redactor: &Redactor) -> Result<String> {
    let mut cmd = Cmd::new(pg_dump).args(["--schema-only", "--no-owner", "--dbname", dsn]);
    for schema in schemas {
        cmd = cmd.args(["-n", schema]);
    }
    let out = cmd.run(redactor, None)?;
    if !out.success() {
        return Err(exit::cannot_run(format!("pg_dump --schema-only failed:\n{}", out.text.trim_end())));
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
