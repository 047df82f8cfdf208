//! The Supabase tree under the workdir: migrations in version order with their rollback pairs,
//! the RLS contract, the test layout and the seed. Every migration and rollback is read, checked
//! and lexed here, before any database is touched: a file that is not UTF-8, holds a psql
//! meta-command, clashes on a version or has no version is refused (exit 2) with its name, so a
//! run never stops half way on an input it could have refused at the start.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

use anyhow::{Context, Result};

use crate::evidence::manifest;
use crate::exit;
use crate::text::escape::one_line;
use crate::text::sql::Script;

pub const MIGRATIONS: &str = "supabase/migrations";
pub const ROLLBACKS: &str = "supabase/migrations.backup";
/// Supabase's declarative schema files.
pub const SCHEMAS: &str = "supabase/schemas";
pub const CONTRACT: &str = "supabase/rls_tests.sql";
pub const TESTS: &str = "supabase/tests";
pub const SEED: &str = "supabase/seed.sql";

/// A SQL file of the tree, read and lexed.
#[derive(Clone, Debug)]
pub struct SqlFile {
    /// Relative to the workdir, as psql names it in errors.
    pub rel: String,
    pub script: Script,
    /// Of the bytes on disk.
    pub sha256: String,
}

#[derive(Clone, Debug)]
pub struct Migration {
    pub version: String,
    pub name: String,
    pub sql: SqlFile,
    /// Its paired rollback script from `supabase/migrations.backup/`.
    pub rollback: Option<SqlFile>,
}

impl Migration {
    pub fn file(&self) -> &str {
        &self.sql.rel
    }

    pub fn rollback_file(&self) -> Option<&str> {
        self.rollback.as_ref().map(|r| r.rel.as_str())
    }
}

#[derive(Clone, Debug)]
pub struct Tree {
    pub workdir: PathBuf,
    pub migrations: Vec<Migration>,
    /// Rollback scripts whose version has no migration (a warning, not an error).
    pub orphan_rollbacks: Vec<String>,
}

/// A file's path relative to the workdir and its bytes.
pub type RawFile = (String, Vec<u8>);

/// The `.sql` files directly in `dir` under the workdir, sorted; `None` when the directory does not
/// exist.
pub fn sql_files(workdir: &Path, dir: &str) -> Result<Option<Vec<RawFile>>> {
    let Some(entries) = crate::walk::files_in(&workdir.join(dir)) else { return Ok(None) };
    let mut out = Vec::new();
    for entry in entries {
        let name = entry.file_name().to_string_lossy().into_owned();
        if !name.ends_with(".sql") {
            continue;
        }
        let rel = format!("{dir}/{name}");
        admissible(workdir, &rel)?;
        let bytes = std::fs::read(entry.path()).map_err(|e| exit::cannot_run(format!("reading {rel}: {e}")))?;
        out.push((rel, bytes));
    }
    Ok(Some(out))
}

/// Read a SQL file that will be run: UTF-8 without psql meta-commands, or refused.
fn checked(rel: String, bytes: &[u8]) -> Result<SqlFile> {
    let text = std::str::from_utf8(bytes).map_err(|e| {
        let line = bytes[..e.valid_up_to()].iter().filter(|b| **b == b'\n').count() + 1;
        exit::cannot_run(format!(
            "{rel}:{line}: not UTF-8 (byte {} is not valid UTF-8): save it as UTF-8; nothing was run",
            e.valid_up_to()
        ))
    })?;
    if let Some(at) = bytes.iter().position(|b| *b == 0) {
        let line = bytes[..at].iter().filter(|b| **b == b'\n').count() + 1;
        return Err(exit::cannot_run(format!(
            "{rel}:{line}: holds a NUL byte: psql stops reading a line there (and the Supabase CLI does not), so the \
             file would not mean what it says; remove it; nothing was run"
        )));
    }
    let script = Script::lex(text);
    if let Some((line, reference)) = script.psql_variable() {
        return Err(exit::cannot_run(format!(
            "{rel}:{line}: `{reference}` is a psql variable: psql would replace it with its own value (the Supabase CLI \
             sends it as written), so the file would not mean the same under both; write the value out, or add a \
             space after the colon if it is SQL; nothing was run"
        )));
    }
    if let Some((line, command)) = script.meta_commands.first() {
        return Err(exit::cannot_run(format!(
            "{rel}:{line}: holds the psql meta-command `{command}`: a migration or rollback is SQL only (the Supabase \
             CLI rejects such files, and the rehearsal will not run them); remove it (`cargo xtask lint` lists every \
             one); nothing was run"
        )));
    }
    if let Some(line) = script.unterminated {
        return Err(exit::cannot_run(format!(
            "{rel}:{line}: a quote or /* comment opened here is never closed, so the file's end is not SQL psql can \
             send (the Supabase CLI cannot either); close it; nothing was run"
        )));
    }
    Ok(SqlFile { rel, script, sha256: manifest::sha256(bytes) })
}

/// The declarative schema's files, in the order `supabase db diff` applies them: those
/// `supabase/config.toml`'s `[db.migrations] schema_paths` names (paths and globs relative to
/// `supabase/`, in its order), else every `.sql` file under `supabase/schemas/` by path. Each as
/// a [`Migration`] numbered by its place, to replay; `None` when there are none.
pub fn declared(workdir: &Path, schema_paths: Option<&[String]>) -> Result<Option<Vec<Migration>>> {
    let root = workdir.join(SCHEMAS);
    let mut all: Vec<String> = Vec::new();
    if root.is_dir() {
        for entry in crate::walk::tree(&root) {
            let entry = entry.map_err(|e| exit::cannot_run(format!("reading {SCHEMAS}: {e}")))?;
            let rel = entry.path().strip_prefix(workdir).unwrap_or(entry.path()).to_string_lossy().into_owned();
            if entry.file_type().is_file() && rel.ends_with(".sql") {
                all.push(rel);
            }
        }
    }
    let mut order: Vec<String> = Vec::new();
    match schema_paths {
        Some(patterns) => {
            let mut candidates = all.clone();
            for entry in crate::walk::tree(&workdir.join("supabase")).into_iter().flatten() {
                let rel = entry.path().strip_prefix(workdir).unwrap_or(entry.path()).to_string_lossy().into_owned();
                if entry.file_type().is_file() && rel.ends_with(".sql") && !candidates.contains(&rel) {
                    candidates.push(rel);
                }
            }
            candidates.sort();
            for pattern in patterns {
                let pattern = format!("supabase/{}", pattern.trim_start_matches("./"));
                let glob = crate::text::glob::Glob::new(&pattern)
                    .map_err(|e| exit::cannot_run(format!("supabase/config.toml: schema_paths: {e}")))?;
                for rel in candidates.iter().filter(|r| glob.matches(r)) {
                    if !order.contains(rel) {
                        order.push(rel.clone());
                    }
                }
            }
        }
        None => order = all,
    }
    if order.is_empty() {
        return Ok(None);
    }
    let mut out = Vec::new();
    for (i, rel) in order.into_iter().enumerate() {
        admissible(workdir, &rel)?;
        let bytes = std::fs::read(workdir.join(&rel)).map_err(|e| exit::cannot_run(format!("reading {rel}: {e}")))?;
        let name = rel.rsplit('/').next().unwrap_or(&rel).trim_end_matches(".sql").to_string();
        out.push(Migration { version: format!("{:05}", i + 1), name, sql: checked(rel, &bytes)?, rollback: None });
    }
    Ok(Some(out))
}

impl Tree {
    /// Read `supabase/migrations` and `supabase/migrations.backup`.
    pub fn load(workdir: &Path) -> Result<Tree> {
        let files = sql_files(workdir, MIGRATIONS)?.ok_or_else(|| {
            exit::cannot_run(format!(
                "{MIGRATIONS} is missing under {}: nothing to rehearse (pass --workdir to point at the repo root)",
                workdir.display()
            ))
        })?;
        if files.is_empty() {
            return Err(exit::cannot_run(format!("{MIGRATIONS} holds no .sql migration files")));
        }
        let mut by_version: BTreeMap<String, Migration> = BTreeMap::new();
        for (file, bytes) in files {
            let name = file.rsplit('/').next().unwrap_or(&file).to_string();
            // The Supabase CLI's pattern: <digits>_<name>.sql.
            let (version, rest) = name.split_at(name.find(|c: char| !c.is_ascii_digit()).unwrap_or(0));
            let Some(rest) = rest.strip_prefix('_').filter(|_| !version.is_empty()) else {
                return Err(exit::cannot_run(format!(
                    "{file}: no leading version; name migrations <version>_<name>.sql, as `supabase migration new` does"
                )));
            };
            let migration = Migration {
                version: version.to_string(),
                name: rest.trim_end_matches(".sql").to_string(),
                sql: checked(file.clone(), &bytes)?,
                rollback: None,
            };
            if let Some(first) = by_version.insert(version.to_string(), migration) {
                return Err(exit::cannot_run(format!(
                    "{file} and {} share version {version}; give one a new timestamp",
                    first.sql.rel
                )));
            }
        }
        let mut orphan_rollbacks = Vec::new();
        for (file, bytes) in sql_files(workdir, ROLLBACKS)?.unwrap_or_default() {
            let name = file.rsplit('/').next().unwrap_or(&file);
            if !name.contains("rollback") {
                continue;
            }
            let version: String = name.chars().take_while(char::is_ascii_digit).collect();
            match by_version.get_mut(&version) {
                Some(m) if m.rollback.is_some() => {
                    return Err(exit::cannot_run(format!(
                        "{file} and {} both roll back version {version}; keep one",
                        m.rollback_file().unwrap_or_default()
                    )))
                }
                Some(m) => m.rollback = Some(checked(file, &bytes)?),
                None => orphan_rollbacks.push(file),
            }
        }
        Ok(Tree { workdir: workdir.to_path_buf(), migrations: by_version.into_values().collect(), orphan_rollbacks })
    }

    /// `(relative path, sha256)` of every migration and rollback.
    pub fn hashes(&self) -> Vec<(String, String)> {
        self.migrations
            .iter()
            .flat_map(|m| std::iter::once(&m.sql).chain(m.rollback.as_ref()))
            .map(|f| (f.rel.clone(), f.sha256.clone()))
            .collect()
    }
}

/// The RLS contract and the Supabase test layout, in the order they run: `rls_tests.sql` first,
/// then every `*.sql` and `*.pg` under `supabase/tests/`, recursively, sorted.
pub fn contract_files(workdir: &Path) -> Result<Vec<String>> {
    let mut files = Vec::new();
    if workdir.join(CONTRACT).is_file() {
        admissible(workdir, CONTRACT)?;
        test_checked(workdir, CONTRACT)?;
        files.push(CONTRACT.to_string());
    }
    let tests = workdir.join(TESTS);
    if tests.is_dir() {
        let mut found = Vec::new();
        for entry in crate::walk::tree(&tests) {
            let entry = entry.with_context(|| format!("reading {TESTS}"))?;
            let name = entry.file_name().to_string_lossy();
            if entry.file_type().is_file() && (name.ends_with(".sql") || name.ends_with(".pg")) {
                let rel = entry.path().strip_prefix(workdir).expect("under the workdir").to_string_lossy().into_owned();
                admissible(workdir, &rel)?;
                test_checked(workdir, &rel)?;
                found.push(rel);
            }
        }
        found.sort();
        files.extend(found);
    }
    Ok(files)
}

/// The psql meta-commands a test file may hold: they shape psql's output and variables
/// (pgTAP's own headers use `\set ECHO none`, `\set QUIET 1`, `\pset format unaligned`) and
/// reach nothing outside the session. Every other one (`\!`, `\o`, `\w`, `\copy`, `\i`, `\c`,
/// `\setenv`, `\getenv`, `\g FILE`, ...) could run a program, read or write a file or connect
/// elsewhere, as the user who runs the tool.
const TEST_META: [&str; 16] = [
    "set",
    "unset",
    "pset",
    "echo",
    "qecho",
    "warn",
    "a",
    "t",
    "x",
    "timing",
    "if",
    "elif",
    "else",
    "endif",
    "gset",
    "crosstabview",
];

/// A contract or test file, read before anything runs: no NUL byte, and only the meta-commands
/// of [`TEST_META`], with no backtick (which runs a shell command in a meta-command's argument).
fn test_checked(workdir: &Path, rel: &str) -> Result<()> {
    let bytes = std::fs::read(workdir.join(rel)).with_context(|| format!("reading {rel}"))?;
    if let Some(at) = bytes.iter().position(|b| *b == 0) {
        let line = bytes[..at].iter().filter(|b| **b == b'\n').count() + 1;
        return Err(exit::cannot_run(format!(
            "{rel}:{line}: holds a NUL byte: psql stops reading a line there, so the file would not mean what it \
             says; remove it; nothing was run"
        )));
    }
    let script = Script::lex(&String::from_utf8_lossy(&bytes));
    for (line, text) in &script.meta_commands {
        let refused =
            text.contains('`').then(|| "a backtick (psql runs the command inside it)".to_string()).or_else(|| {
                text.split_whitespace()
                    .filter_map(|word| word.strip_prefix('\\'))
                    .map(|name| name.trim_end_matches(';'))
                    .find(|name| !TEST_META.contains(name))
                    .map(|name| format!("the psql meta-command `\\{name}`"))
            });
        if let Some(what) = refused {
            return Err(exit::cannot_run(format!(
                "{rel}:{line}: holds {what}: a test file may only set psql's output and variables (\\set, \\pset, \\echo, \\if, \\gset, ...); \
                 one that can run a program, read or write a file or connect elsewhere would do it as the user \
                 running the rehearsal; remove it; nothing was run",
                what = one_line(&what)
            )));
        }
    }
    Ok(())
}

/// A file the tree hands to psql: its name holds no control character (it could rewrite the lines
/// the tool prints, a CI log or a summary), and a symlink leads nowhere outside the workdir (a
/// rehearsal never runs, or prints, a file from elsewhere on the machine).
fn admissible(workdir: &Path, rel: &str) -> Result<()> {
    if rel.chars().any(char::is_control) {
        return Err(exit::cannot_run(format!(
            "{}: a file name with a control character (a line break, an escape) could rewrite the lines the tool \
             prints, a CI log or a summary; rename it; nothing was run",
            one_line(rel)
        )));
    }
    let (Ok(root), Ok(real)) = (workdir.canonicalize(), workdir.join(rel).canonicalize()) else { return Ok(()) };
    if !real.starts_with(&root) {
        return Err(exit::cannot_run(format!(
            "{rel}: a symlink that leads outside the workdir ({}); copy the file into the tree instead; nothing was run",
            one_line(&real.to_string_lossy())
        )));
    }
    Ok(())
}
