//! The failure classifier (SPEC §9): psql and Supabase CLI output in, one [`Finding`] per error out,
//! each with the runbook's troubleshooting advice (§9) made concrete.
//!
//! Only errors make findings. NOTICE and WARNING lines do not (a `NOTICE: 42P07 ... skipping` is an
//! `IF NOT EXISTS` doing its job), nor does `25P02 current transaction is aborted`, which only
//! repeats an earlier error.

mod classify;
mod hints;

use serde_json::{json, Value};

use classify::{parse_error_line, LOST};
pub use hints::hint;

#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Finding {
    pub class: &'static str,
    /// `error` fails the run; `warning` is reported only (lint and advisor rules can be either).
    pub severity: &'static str,
    pub sqlstate: Option<String>,
    pub file: Option<String>,
    pub line: Option<u32>,
    pub message: String,
    pub hint: String,
    pub log: Option<String>,
}

impl Finding {
    /// An error read from a log (`log` is set by the scanner).
    pub fn error(
        class: &'static str,
        sqlstate: Option<String>,
        file: Option<String>,
        line: Option<u32>,
        message: &str,
        hint: String,
    ) -> Finding {
        Finding { class, severity: "error", sqlstate, file, line, message: message.to_string(), hint, log: None }
    }

    pub fn to_json(&self) -> Value {
        json!({
            "class": self.class, "severity": self.severity, "sqlstate": self.sqlstate, "file": self.file, "line": self.line,
            "message": self.message, "hint": self.hint, "log": self.log,
        })
    }

    /// `file:line` when psql named them.
    pub fn location(&self) -> Option<String> {
        match (&self.file, self.line) {
            (Some(file), Some(line)) => Some(format!("{file}:{line}")),
            (Some(file), None) => Some(file.clone()),
            _ => None,
        }
    }
}

/// Every error in `text`, in order. `log` is recorded on each finding.
pub fn scan(text: &str, log: Option<&str>) -> Vec<Finding> {
    let mut scanner = Scanner::new(log);
    let mut findings: Vec<Finding> = text.lines().filter_map(|line| scanner.line(line)).collect();
    findings.extend(scanner.finish());
    findings
}

/// The classifier fed one line at a time, so a log of any size is read in constant memory. A
/// finding is returned once the lines that belong to it (DETAIL, HINT, LOCATION, ...) have passed.
pub struct Scanner {
    log: Option<String>,
    pending: Option<Finding>,
}

impl Scanner {
    pub fn new(log: Option<&str>) -> Scanner {
        Scanner { log: log.map(str::to_string), pending: None }
    }

    pub fn line(&mut self, line: &str) -> Option<Finding> {
        if let Some(pending) = &self.pending {
            if continues(pending, line) {
                return None;
            }
        }
        let done = self.pending.take();
        // Most lines of a log are not errors, and every error line holds a colon.
        if line.contains(':') {
            self.pending = parse_error_line(line);
        }
        self.complete(done)
    }

    pub fn finish(&mut self) -> Option<Finding> {
        let done = self.pending.take();
        self.complete(done)
    }

    fn complete(&self, finding: Option<Finding>) -> Option<Finding> {
        // 25P02 only repeats an earlier error.
        let mut finding = finding.filter(|f| f.sqlstate.as_deref() != Some("25P02"))?;
        finding.log = self.log.clone();
        Some(finding)
    }
}

/// Lines after an error that belong to it: verbose output's DETAIL, HINT, LOCATION, ...; the
/// caret under the statement; what psql adds when the server went away.
fn continues(finding: &Finding, line: &str) -> bool {
    let next = line.trim_start();
    [
        "DETAIL:",
        "HINT:",
        "LOCATION:",
        "CONTEXT:",
        "LINE ",
        "QUERY:",
        "This probably means the server",
        "before or while processing",
    ]
    .iter()
    .any(|p| next.starts_with(p))
        || next.starts_with('^')
        || (finding.class == "connection" && LOST.iter().any(|l| next.contains(l)))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn default_and_verbose_psql_errors_give_the_same_finding() {
        let default = "psql:supabase/migrations/1_a.sql:2: ERROR:  relation \"t\" already exists\n";
        let verbose = "psql:supabase/migrations/1_a.sql:2: ERROR:  42P07: relation \"t\" already exists\nLOCATION:  heap_create_with_catalog, heap.c:1146\n";
        for text in [default, verbose] {
            let f = &scan(text, Some("migration_apply.log"))[0];
            assert_eq!(f.class, "duplicate_object");
            assert_eq!(f.sqlstate.as_deref(), Some("42P07"));
            assert_eq!(f.location().as_deref(), Some("supabase/migrations/1_a.sql:2"));
            assert_eq!(f.message, "relation \"t\" already exists");
            assert!(f.hint.contains("supabase/migrations/1_a.sql:2"), "{}", f.hint);
        }
    }

    #[test]
    fn notices_and_aborted_transaction_aftermath_are_not_findings() {
        let text = "psql:a.sql:1: NOTICE:  42P07: relation \"t\" already exists, skipping\n\
                    psql:a.sql:3: ERROR:  25P02: current transaction is aborted, commands ignored until end of transaction block\n\
                    WARNING:  there is no transaction in progress\n";
        assert!(scan(text, None).is_empty());
    }

    #[test]
    fn pgtap_diagnostics_of_an_unexpected_error_are_findings() {
        let text = " not ok 3 - lives                +\n # Failed test 3: \"lives\"        +\n #         died: 42501: permission denied for table t+\n";
        let found = scan(text, None);
        assert_eq!(found.len(), 1, "{found:#?}");
        assert_eq!((found[0].class, found[0].sqlstate.as_deref()), ("permission_denied", Some("42501")));
        assert!(scan("#       caught: no exception\n", None).is_empty());
    }

    #[test]
    fn a_server_that_goes_away_is_one_connection_finding() {
        let text = "FATAL:  terminating connection due to administrator command\nserver closed the connection unexpectedly\n\tThis probably means the server terminated abnormally\n\tbefore or while processing the request.\nconnection to server was lost\n";
        let found = scan(text, None);
        assert_eq!(found.len(), 1, "{found:#?}");
        assert_eq!(found[0].class, "connection");
        let alone = scan("psql:supabase/migrations/1_a.sql:2: server closed the connection unexpectedly\n", None);
        assert_eq!(alone[0].class, "connection");
    }

    #[test]
    fn a_missing_extension_is_named_with_what_to_install() {
        let text = "psql:supabase/migrations/1_ext.sql:4: ERROR:  extension \"pg_hashids\" is not available\nDETAIL:  Could not open extension control file \"/usr/share/postgresql/15/extension/pg_hashids.control\": No such file or directory.\nHINT:  The extension must first be installed on the system where PostgreSQL is running.\n";
        let f = &scan(text, None)[0];
        assert_eq!((f.class, f.sqlstate.as_deref()), ("undefined_object", Some("0A000")));
        assert!(
            f.hint.contains("the extension pg_hashids is not installed")
                && f.hint.contains("postgresql-<major>-pg-hashids"),
            "{}",
            f.hint
        );
        assert!(f.hint.contains("supabase/migrations/1_ext.sql:4"), "{}", f.hint);
    }

    #[test]
    fn supabase_cli_failures_are_classified() {
        let refused = "failed to connect to postgres: failed to connect to `host=127.0.0.1 user=postgres database=postgres`: dial error (connect ECONNREFUSED 127.0.0.1:58995)\n";
        assert_eq!(scan(refused, None)[0].class, "connection");
        let v6 = "failed to connect to postgres: failed to connect to `host=db.x.supabase.co user=postgres database=postgres`: dial error (dial tcp [2600:1f18::1]:5432: connect: network is unreachable)\n";
        assert_eq!(scan(v6, None)[0].class, "ipv6_unreachable");
        let sql = "ERROR: relation \"t\" already exists (SQLSTATE 42P07)\n";
        let f = &scan(sql, None)[0];
        assert_eq!(
            (f.class, f.sqlstate.as_deref(), f.message.as_str()),
            ("duplicate_object", Some("42P07"), "relation \"t\" already exists")
        );
        assert!(scan("finished at 12:34:56 with code 1\n", None).is_empty());
    }

    #[test]
    fn an_ipv6_connection_failure_gets_the_pooler_advice() {
        let text = "psql: error: connection to server at \"db.x.supabase.co\" (2600:1f18::1), port 5432 failed: Network is unreachable\n";
        let f = &scan(text, None)[0];
        assert_eq!(f.class, "ipv6_unreachable");
        assert!(f.hint.contains("pooler"));
    }

    /// Real output captured from psql 15 and both CLI majors (xtask/test_data/).
    #[test]
    fn captured_logs_read_as_they_should() {
        let key = |f: &Finding| (f.class, f.sqlstate.clone().unwrap_or_default(), f.location().unwrap_or_default());
        for log in [
            include_str!("../../test_data/psql_apply_default.log"),
            include_str!("../../test_data/psql_apply_verbose.log"),
        ] {
            let found: Vec<_> = scan(log, None).iter().map(key).collect();
            assert_eq!(
                found,
                vec![
                    ("duplicate_object", "42P07".into(), "supabase/migrations/20250101000000_accounts.sql:4".into()),
                    ("undefined_object", "42P01".into(), "supabase/migrations/20250102000000_views.sql:1".into()),
                ],
                "the NOTICE of IF NOT EXISTS is not a finding"
            );
        }
        for log in [
            include_str!("../../test_data/supabase_cli_2x_refused.log"),
            include_str!("../../test_data/supabase_cli_3x_refused.log"),
        ] {
            let found = scan(log, None);
            assert_eq!(found.len(), 1, "{found:#?}");
            assert_eq!(found[0].class, "connection");
        }
        let tap = crate::tap::read(include_str!("../../test_data/pgtap_contract_aligned.log"), None);
        assert_eq!((tap.planned, tap.ran, tap.passed, tap.failed), (Some(4), 3, 1, 2));
        assert!(tap.ran_short());
        let errors: Vec<_> = tap.errors.iter().map(key).collect();
        assert_eq!(
            errors,
            vec![
                ("undefined_object", "42P01".into(), String::new()),
                ("undefined_object", "42P01".into(), "tap.sql:6".into())
            ],
            "died: and the ERROR line; not the 25P02 after it"
        );
    }
}
