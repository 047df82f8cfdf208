//! `supabase/rehearsal.toml`: optional; without it the defaults below apply.
//!
//! ```toml
//! [staging]
//! env_files = ["vault/occ/supabase/database_url_staging.env", "vault/occ/supabase/service_key_staging.env"]
//! pooler_hosts = [".pooler.supabase.com", ".pooler.supabase.co"]  # ".x" matches a suffix, else the exact host
//! production_project_refs = []
//!
//! [lint]                       # rule = "error" | "warning" | "off"; see `cargo xtask lint --help`
//! unguarded_create = "error"
//! exposed_schemas = ["public"]
//!
//! [advisors]                   # advisor = "error" | "warning" | "off"
//! rls_enabled_no_policy = "off"
//! [advisors.exclude]           # objects an advisor leaves alone
//! rls_disabled = ["public.legacy_import"]
//!
//! [lock_risk]                  # what a measured lock risk is: "warning" (the default) or "error"
//! severity = "error"
//! min_rows = 100000            # an error only on a table of at least this many (estimated) rows
//!
//! [drift]                      # `cargo xtask drift` and step 3 of `stage-rehearse` on staging/url
//! ignore_schemas = ["audit"]   # schemas left out of the comparison (Supabase's own always are)
//! fail = true                  # drift and edited_after_apply are errors, not warnings
//! ```
//!
//! Read with the `toml` crate: a syntax error, a duplicate key, an unknown key or a value of the
//! wrong type is refused with its line and column.

use std::collections::BTreeMap;
use std::path::Path;

use anyhow::Result;
use serde::Deserialize;
use toml::Spanned;

use crate::exit;

pub const PATH: &str = "supabase/rehearsal.toml";

#[derive(Clone, Debug)]
pub struct Config {
    pub env_files: Vec<String>,
    pub pooler_hosts: Vec<String>,
    pub production_project_refs: Vec<String>,
    /// `[lint]` as written, checked by the lint rules.
    pub lint: Vec<Setting>,
    /// `[advisors]` severities as written, checked by the advisors.
    pub advisors: Vec<Setting>,
    /// `[advisors.exclude]`: advisor name → objects it skips.
    pub advisor_exclude: Vec<Setting>,
    /// `[lock_risk]`: from how many rows a `lock_risk` is an error (`None`: always a warning).
    pub lock_risk_error_from: Option<u64>,
    /// `[drift] ignore_schemas`: schemas `drift` leaves out, besides Supabase's own.
    pub drift_ignore_schemas: Vec<String>,
    /// `[drift] fail`: drift and edited files are errors.
    pub drift_fail: bool,
}

/// One `key = value` of a section, with where it was written.
#[derive(Clone, Debug)]
pub struct Setting {
    pub section: &'static str,
    pub key: String,
    pub value: toml::Value,
    pub line: usize,
    pub column: usize,
}

impl Setting {
    /// An error about this setting: `supabase/rehearsal.toml: [lint] key <why> (line 2, column 20)`.
    pub fn error(&self, why: &str) -> anyhow::Error {
        exit::cannot_run(format!(
            "{PATH}: [{}] {} {why} (line {}, column {})",
            self.section, self.key, self.line, self.column
        ))
    }

    /// The value as an array of strings.
    pub fn strings(&self) -> Result<Vec<String>> {
        let items = self.value.as_array().ok_or_else(|| self.error("must be an array of strings"))?;
        items
            .iter()
            .map(|v| v.as_str().map(str::to_string).ok_or_else(|| self.error("must be an array of strings")))
            .collect()
    }
}

impl Default for Config {
    fn default() -> Config {
        Config {
            env_files: vec![
                "vault/occ/supabase/database_url_staging.env".into(),
                "vault/occ/supabase/service_key_staging.env".into(),
            ],
            pooler_hosts: vec![".pooler.supabase.com".into(), ".pooler.supabase.co".into()],
            production_project_refs: Vec::new(),
            lint: Vec::new(),
            advisors: Vec::new(),
            advisor_exclude: Vec::new(),
            lock_risk_error_from: None,
            drift_ignore_schemas: Vec::new(),
            drift_fail: false,
        }
    }
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct File {
    staging: Option<Staging>,
    lint: Option<BTreeMap<String, Spanned<toml::Value>>>,
    advisors: Option<BTreeMap<String, Spanned<toml::Value>>>,
    lock_risk: Option<LockRisk>,
    drift: Option<Drift>,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct Drift {
    ignore_schemas: Option<Vec<String>>,
    fail: Option<bool>,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct LockRisk {
    severity: Option<Spanned<String>>,
    min_rows: Option<u64>,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct Staging {
    env_files: Option<Vec<String>>,
    pooler_hosts: Option<Vec<String>>,
    production_project_refs: Option<Vec<String>>,
}

impl Config {
    pub fn load(workdir: &Path) -> Result<Config> {
        let text = match std::fs::read_to_string(workdir.join(PATH)) {
            Ok(text) => text,
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(Config::default()),
            Err(e) => return Err(exit::cannot_run(format!("reading {PATH}: {e}"))),
        };
        Config::parse(&text)
    }

    pub fn parse(text: &str) -> Result<Config> {
        let file: File = toml::from_str(text).map_err(|e| {
            let (line, column) = e.span().map_or((1, 1), |s| line_column(text, s.start));
            exit::cannot_run(format!("{PATH}: {} (line {line}, column {column})", e.message().trim_end()))
        })?;
        let mut config = Config::default();
        if let Some(staging) = file.staging {
            if let Some(v) = staging.env_files {
                config.env_files = v;
            }
            if let Some(v) = staging.pooler_hosts {
                config.pooler_hosts = v;
            }
            if let Some(v) = staging.production_project_refs {
                config.production_project_refs = v;
            }
        }
        let settings = |section: &'static str, map: BTreeMap<String, Spanned<toml::Value>>| -> Vec<Setting> {
            let mut out: Vec<Setting> = map
                .into_iter()
                .map(|(key, value)| {
                    let (line, column) = line_column(text, value.span().start);
                    Setting { section, key, value: value.into_inner(), line, column }
                })
                .collect();
            out.sort_by_key(|s| (s.line, s.column));
            out
        };
        config.lint = file.lint.map(|m| settings("lint", m)).unwrap_or_default();
        if let Some(risk) = file.lock_risk {
            let error = match &risk.severity {
                None => false,
                Some(s) if s.get_ref() == "warning" => false,
                Some(s) if s.get_ref() == "error" => true,
                Some(s) => {
                    let (line, column) = line_column(text, s.span().start);
                    return Err(exit::cannot_run(format!(
                        "{PATH}: [lock_risk] severity must be \"error\" or \"warning\", not {:?} (line {line}, column {column})",
                        s.get_ref()
                    )));
                }
            };
            config.lock_risk_error_from = error.then(|| risk.min_rows.unwrap_or(0));
        }
        if let Some(drift) = file.drift {
            config.drift_ignore_schemas = drift.ignore_schemas.unwrap_or_default();
            config.drift_fail = drift.fail.unwrap_or(false);
        }
        if let Some(mut advisors) = file.advisors {
            if let Some(exclude) = advisors.remove("exclude") {
                let (line, column) = line_column(text, exclude.span().start);
                let Some(table) = exclude.into_inner().as_table().cloned() else {
                    return Err(exit::cannot_run(format!(
                        "{PATH}: [advisors] exclude must be a table of advisor = [\"schema.object\", ...] (line {line}, column {column})"
                    )));
                };
                config.advisor_exclude = table
                    .into_iter()
                    .map(|(key, value)| Setting { section: "advisors.exclude", key, value, line, column })
                    .collect();
            }
            config.advisors = settings("advisors", advisors);
        }
        Ok(config)
    }
}

/// 1-based line and column of a byte offset.
fn line_column(text: &str, offset: usize) -> (usize, usize) {
    let before = &text[..offset.min(text.len())];
    let line = before.matches('\n').count() + 1;
    let column = before.rsplit('\n').next().map_or(0, |l| l.chars().count()) + 1;
    (line, column)
}

/// A severity as a project sets it for a lint rule or an advisor.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Level {
    Error,
    Warning,
    Off,
}

impl Level {
    pub fn of(setting: &Setting) -> Result<Level> {
        match setting.value.as_str() {
            Some("error") => Ok(Level::Error),
            Some("warning") => Ok(Level::Warning),
            Some("off") => Ok(Level::Off),
            _ => Err(setting.error("must be \"error\", \"warning\" or \"off\"")),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn err(text: &str) -> String {
        format!("{:#}", Config::parse(text).unwrap_err())
    }

    #[test]
    fn the_documented_example_reads_as_written() {
        let text = "[staging]\nenv_files = [\"vault/a.env\",\n  \"vault/b.env\"]  # two\npooler_hosts = [\".pooler.supabase.com\", \"127.0.0.1\"]\nproduction_project_refs = []\n[lint]\nunguarded_create = 'warning'\n[advisors]\nrls_enabled_no_policy = \"off\"\n[advisors.exclude]\nrls_disabled = [\"public.legacy\"]\n";
        let c = Config::parse(text).unwrap();
        assert_eq!(c.env_files, vec!["vault/a.env", "vault/b.env"]);
        assert_eq!(c.pooler_hosts, vec![".pooler.supabase.com", "127.0.0.1"]);
        assert_eq!((c.lint[0].key.as_str(), c.lint[0].line), ("unguarded_create", 7));
        assert_eq!(Level::of(&c.lint[0]).unwrap(), Level::Warning);
        assert_eq!(c.advisors[0].key, "rls_enabled_no_policy");
        assert_eq!(c.advisor_exclude[0].strings().unwrap(), vec!["public.legacy"]);
    }

    #[test]
    fn lock_risk_is_a_warning_unless_made_an_error_from_a_size() {
        assert_eq!(Config::parse("").unwrap().lock_risk_error_from, None);
        assert_eq!(Config::parse("[lock_risk]\nseverity = \"error\"\n").unwrap().lock_risk_error_from, Some(0));
        let c = Config::parse("[lock_risk]\nseverity = \"error\"\nmin_rows = 100000\n").unwrap();
        assert_eq!(c.lock_risk_error_from, Some(100000));
        assert_eq!(Config::parse("[lock_risk]\nseverity = \"warning\"\n").unwrap().lock_risk_error_from, None);
        assert_eq!(
            err("[lock_risk]\nseverity = \"fatal\"\n"),
            "supabase/rehearsal.toml: [lock_risk] severity must be \"error\" or \"warning\", not \"fatal\" (line 2, column 12)"
        );
        assert!(err("[lock_risk]\nmin_row = 5\n").contains("unknown field `min_row`"));
    }

    #[test]
    fn typos_duplicates_and_wrong_shapes_are_refused_with_line_and_column() {
        assert!(
            err("[staging]\npooler_host = [\"x\"]\n").contains("unknown field `pooler_host`"),
            "{}",
            err("[staging]\npooler_host = [\"x\"]\n")
        );
        assert!(err("[staging]\npooler_host = [\"x\"]\n").contains("(line 2, column 1)"));
        assert!(
            err("[lint]\na = \"off\"\na = \"off\"\n").contains("line 3"),
            "{}",
            err("[lint]\na = \"off\"\na = \"off\"\n")
        );
        assert!(
            err("[[lint]]\na = \"off\"\n").starts_with("supabase/rehearsal.toml: invalid type"),
            "{}",
            err("[[lint]]\na = \"off\"\n")
        );
        assert!(err("[staging]\npooler_hosts = [\"a\", b]\n").contains("line 2"));
        let bad = Config::parse("[lint]\nunguarded_create = \"loud\"\n").unwrap();
        assert_eq!(
            format!("{:#}", Level::of(&bad.lint[0]).unwrap_err()),
            "supabase/rehearsal.toml: [lint] unguarded_create must be \"error\", \"warning\" or \"off\" (line 2, column 20)"
        );
    }
}

/// The Supabase CLI's own `supabase/config.toml`: only what the tool reads from it (every other
/// key is the CLI's and left alone).
#[derive(Deserialize, Default)]
struct SupabaseConfig {
    #[serde(default)]
    db: SupabaseDb,
}

#[derive(Deserialize, Default)]
struct SupabaseDb {
    major_version: Option<u32>,
    #[serde(default)]
    migrations: SupabaseMigrations,
}

#[derive(Deserialize, Default)]
struct SupabaseMigrations {
    schema_paths: Option<Vec<String>>,
}

/// What the tool reads from `supabase/config.toml`.
#[derive(Debug, Default, PartialEq, Eq)]
pub struct CliConfig {
    /// `[db] major_version`: the PostgreSQL major the project runs.
    pub major_version: Option<u32>,
    /// `[db.migrations] schema_paths` (paths and globs relative to `supabase/`); `None` when
    /// absent or empty.
    pub schema_paths: Option<Vec<String>>,
}

/// `supabase/config.toml`, or the defaults when there is none.
pub fn cli_config(workdir: &Path) -> Result<CliConfig> {
    const CLI_CONFIG: &str = "supabase/config.toml";
    let text = match std::fs::read_to_string(workdir.join(CLI_CONFIG)) {
        Ok(text) => text,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(CliConfig::default()),
        Err(e) => return Err(exit::cannot_run(format!("reading {CLI_CONFIG}: {e}"))),
    };
    let config: SupabaseConfig = toml::from_str(&text).map_err(|e| {
        let (line, column) = e.span().map_or((1, 1), |s| line_column(&text, s.start));
        exit::cannot_run(format!("{CLI_CONFIG}: {} (line {line}, column {column})", e.message().trim_end()))
    })?;
    Ok(CliConfig {
        major_version: config.db.major_version,
        schema_paths: config.db.migrations.schema_paths.filter(|p| !p.is_empty()),
    })
}
