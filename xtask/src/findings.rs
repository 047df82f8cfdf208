//! The failure classifier (SPEC §9): psql and Supabase CLI output in, one [`Finding`] per error out,
//! each with the runbook's troubleshooting advice (§9) made concrete.
//!
//! Only errors make findings. NOTICE and WARNING lines do not (a `NOTICE: 42P07 ... skipping` is an
//! `IF NOT EXISTS` doing its job), nor does `25P02 current transaction is aborted`, which only
//! repeats an earlier error.

use serde_json::{json, Value};

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
    ["DETAIL:", "HINT:", "LOCATION:", "CONTEXT:", "LINE ", "QUERY:", "This probably means the server", "before or while processing"]
        .iter()
        .any(|p| next.starts_with(p))
        || next.starts_with('^')
        || (finding.class == "connection" && LOST.iter().any(|l| next.contains(l)))
}

/// What psql prints when the server goes away under it (after a `FATAL:` line, or alone).
const LOST: [&str; 4] = [
    "server closed the connection unexpectedly",
    "connection to server was lost",
    "SSL SYSCALL error: EOF detected",
    "could not receive data from server",
];

/// One error line: `psql:FILE:LINE: ERROR:  [SQLSTATE: ]message`, a bare `ERROR:  message`, or a
/// connection failure `psql: error: ...`.
fn parse_error_line(line: &str) -> Option<Finding> {
    let line = line.trim_end();
    if let Some(rest) = line.strip_prefix("psql: error: ") {
        return Some(connection_finding(rest));
    }
    // The Supabase CLI (2.x and 3.x): `failed to connect to postgres: ... dial error (...)`.
    if line.starts_with("failed to connect to postgres:") || line.starts_with("failed to connect to `host=") {
        return Some(connection_finding(line));
    }
    if let Some(lost) = LOST.iter().find(|l| line.trim_start().starts_with(**l) || line.ends_with(**l)) {
        let mut f = connection_finding(lost);
        f.message = format!("{lost}: the database went away");
        return Some(f);
    }
    // pgTAP's diagnostics: `# died: 42P01: relation "x" does not exist` (lives_ok), `# caught: ...`
    // (throws_ok that caught something else), in aligned output with a trailing `+`.
    if let Some(diag) = line.trim_start().strip_prefix('#') {
        let diag = diag.trim().trim_end_matches('+').trim_end();
        let message = diag.strip_prefix("died:").or_else(|| diag.strip_prefix("caught:"))?.trim();
        if message.is_empty() || message.starts_with("no exception") {
            return None;
        }
        let (sqlstate, message) = split_sqlstate(message);
        let (class, derived) = classify(sqlstate.as_deref(), message);
        let sqlstate = sqlstate.or(derived.map(str::to_string));
        let hint = hint(class, None, None, message);
        return Some(Finding { class, severity: "error", sqlstate, file: None, line: None, message: message.to_string(), hint, log: None });
    }
    let (file, line_no, rest) = match line.strip_prefix("psql:") {
        Some(located) => {
            let (file, rest) = located.split_once(':')?;
            let (number, rest) = rest.split_once(':')?;
            (Some(file.to_string()), number.parse::<u32>().ok(), rest.trim_start())
        }
        None => (None, None, line.trim_start()),
    };
    let message = ["ERROR:", "FATAL:", "PANIC:"].iter().find_map(|p| rest.strip_prefix(p))?.trim_start();
    let (sqlstate, message) = split_sqlstate(message);
    // The Supabase CLI reports SQL errors the pgx way: `ERROR: message (SQLSTATE 42P07)`.
    let (sqlstate, message) = match message.strip_suffix(')').and_then(|m| m.rsplit_once(" (SQLSTATE ")) {
        Some((m, code)) if sqlstate.is_none() && code.len() == 5 => (Some(code.to_string()), m),
        _ => (sqlstate, message),
    };
    let server_gone = ["terminating connection due to", "pgbouncer cannot connect to server", "query_wait_timeout", "server login has been failing", "the database system is shutting down"];
    if message.starts_with("could not connect") || message.starts_with("connection to server") || server_gone.iter().any(|m| message.contains(m)) {
        let mut f = connection_finding(message);
        f.file = file;
        f.line = line_no;
        if let Some(code) = sqlstate {
            f.sqlstate = Some(code);
        }
        return Some(f);
    }
    if let Some(name) = missing_extension(message) {
        let at = file.as_deref().map(|f| format!("{f}{}", line_no.map(|l| format!(":{l}")).unwrap_or_default())).unwrap_or_else(|| "the migration".into());
        let hint = format!(
            "the extension {name} is not installed on this PostgreSQL server: install the package that provides it \
             (on Debian and Ubuntu: apt-get install postgresql-<major>-{}), or remove it from {at} if Supabase does not offer it either",
            name.replace('_', "-")
        );
        let sqlstate = sqlstate.or(Some("0A000".to_string()));
        return Some(Finding { class: "undefined_object", severity: "error", sqlstate, file, line: line_no, message: message.to_string(), hint, log: None });
    }
    let (class, derived) = classify(sqlstate.as_deref(), message);
    let sqlstate = sqlstate.or(derived.map(str::to_string));
    let hint = hint(class, file.as_deref(), line_no, message);
    Some(Finding { class, severity: "error", sqlstate, file, line: line_no, message: message.to_string(), hint, log: None })
}

/// `42P07: relation "x" already exists` (VERBOSITY verbose) into its code and message.
fn split_sqlstate(message: &str) -> (Option<String>, &str) {
    match message.split_once(": ") {
        Some((code, rest)) if code.len() == 5 && code.bytes().all(|b| b.is_ascii_uppercase() || b.is_ascii_digit()) => {
            (Some(code.to_string()), rest)
        }
        _ => (None, message),
    }
}

/// Class and, when psql did not print it, the SQLSTATE the message implies.
fn classify(sqlstate: Option<&str>, message: &str) -> (&'static str, Option<&'static str>) {
    if let Some(code) = sqlstate {
        let class = match code {
            "42P07" | "42710" | "42P06" | "42723" | "42701" | "42P04" | "42712" => "duplicate_object",
            "42P01" | "42703" | "42883" | "42704" | "3F000" | "42P02" | "58P01" => "undefined_object",
            "2BP01" => "dependent_objects",
            "42501" => "permission_denied",
            "55P03" => "lock_timeout",
            "57014" if message.contains("lock timeout") => "lock_timeout",
            "57014" => "statement_timeout",
            "42601" => "syntax_error",
            "25001" => "not_in_transaction",
            c if c.starts_with("08") || c.starts_with("28") || c == "3D000" => "connection",
            _ => "other",
        };
        return (class, None);
    }
    let m = message;
    let rules: &[(&str, &str, &str)] = &[
        ("cannot run inside a transaction block", "not_in_transaction", "25001"),
        ("cannot be executed inside a transaction block", "not_in_transaction", "25001"),
        ("canceling statement due to lock timeout", "lock_timeout", "55P03"),
        ("could not obtain lock", "lock_timeout", "55P03"),
        ("canceling statement due to statement timeout", "statement_timeout", "57014"),
        ("because other objects depend on it", "dependent_objects", "2BP01"),
        ("permission denied", "permission_denied", "42501"),
        ("must be owner of", "permission_denied", "42501"),
        ("violates row-level security policy", "permission_denied", "42501"),
        ("syntax error at", "syntax_error", "42601"),
        ("syntax error at end of input", "syntax_error", "42601"),
    ];
    if let Some((_, class, code)) = rules.iter().find(|(needle, _, _)| m.contains(needle)) {
        return (class, Some(code));
    }
    if m.ends_with("already exists") || m.contains("\" already exists") {
        let code = if m.starts_with("relation ") {
            "42P07"
        } else if m.starts_with("schema ") {
            "42P06"
        } else if m.starts_with("function ") {
            "42723"
        } else if m.starts_with("column ") {
            "42701"
        } else {
            "42710"
        };
        return ("duplicate_object", Some(code));
    }
    if m.contains("does not exist") {
        let code = if m.starts_with("relation ") {
            "42P01"
        } else if m.starts_with("column ") {
            "42703"
        } else if m.starts_with("function ") || m.starts_with("operator does not exist") {
            "42883"
        } else if m.starts_with("schema ") {
            "3F000"
        } else if m.starts_with("database ") {
            "3D000"
        } else {
            "42704"
        };
        let class = if code == "3D000" { "connection" } else { "undefined_object" };
        return (class, Some(code));
    }
    if m.starts_with("current transaction is aborted") {
        return ("other", Some("25P02"));
    }
    // Data and constraint errors: no runbook class, but the SQLSTATE still tells the reader.
    let other: &[(&str, &str)] = &[
        ("division by zero", "22012"),
        ("violates unique constraint", "23505"),
        ("violates foreign key constraint", "23503"),
        ("violates not-null constraint", "23502"),
        ("violates check constraint", "23514"),
        ("invalid input syntax", "22P02"),
        ("value too long for type", "22001"),
        ("is out of range", "22003"),
    ];
    if let Some((_, code)) = other.iter().find(|(needle, _)| m.contains(needle)) {
        return ("other", Some(code));
    }
    ("other", None)
}

fn connection_finding(message: &str) -> Finding {
    // `connection to server at "host" (2600:1f18::1), port 5432 failed`, `at "::1", port ...`,
    // or the CLI's `dial error (dial tcp [2600:1f18::1]:5432: connect: network is unreachable)`.
    let ipv6 = mentions_ipv6(message);
    let class = if ipv6 { "ipv6_unreachable" } else { "connection" };
    let sqlstate = if message.contains("password authentication failed") {
        Some("28P01".to_string())
    } else if message.contains("does not exist") && message.contains("database") {
        Some("3D000".to_string())
    } else {
        Some("08006".to_string())
    };
    let hint = hint(class, None, None, message);
    Finding { class, severity: "error", sqlstate, file: None, line: None, message: message.to_string(), hint, log: None }
}

/// `extension "x" is not available` (PostgreSQL 15 and later) or the older `could not open
/// extension control file ".../x.control"`: the extension's name.
fn missing_extension(message: &str) -> Option<&str> {
    if let Some(rest) = message.strip_prefix("extension \"") {
        return rest.strip_suffix("\" is not available");
    }
    let path = message.strip_prefix("could not open extension control file \"")?;
    let file = path.split('"').next()?.rsplit('/').next()?;
    file.strip_suffix(".control")
}

/// Whether any word of `text` is an IPv6 address (with or without brackets and a port).
fn mentions_ipv6(text: &str) -> bool {
    text.split(|c: char| c.is_whitespace() || "\"'(),[]`".contains(c)).any(|word| {
        let word = word.trim_end_matches(':');
        word.matches(':').count() >= 2
            && (word.parse::<std::net::Ipv6Addr>().is_ok()
                || word.rsplit_once(':').is_some_and(|(addr, port)| port.parse::<u16>().is_ok() && addr.parse::<std::net::Ipv6Addr>().is_ok()))
    })
}

/// The runbook's §9 advice for a class, pointed at the file and line where it applies.
pub fn hint(class: &str, file: Option<&str>, line: Option<u32>, message: &str) -> String {
    let at = match (file, line) {
        (Some(f), Some(l)) => format!("{f}:{l}"),
        (Some(f), None) => f.to_string(),
        _ => "the failing statement".to_string(),
    };
    match class {
        "ipv6_unreachable" => "the host resolved to IPv6, which fails today: source the IPv4 session pooler DSN \
            from vault/occ/supabase/database_url_staging.env (host ending .pooler.supabase.com); do not edit the DSN"
            .to_string(),
        "connection" if message.contains("password authentication failed") => {
            "authentication failed: re-source the DSN from the vault file; the password may have been rotated".to_string()
        }
        "connection" => "the database could not be reached: check the DSN from the vault (host, port, sslmode=require) \
            and that the pooler is up, then re-run `cargo xtask connectivity`"
            .to_string(),
        "duplicate_object" => format!(
            "the object already exists: amend {at} to use IF NOT EXISTS (or DROP ... IF EXISTS first) before the next rehearsal"
        ),
        "undefined_object" => format!(
            "{at} needs an object that is not there: check the migration that creates it applied first \
             (`supabase migration list`; fetch history with `supabase migration fetch`)"
        ),
        "dependent_objects" => format!(
            "other objects depend on what {at} drops: drop the dependents first in the rollback, or use CASCADE deliberately"
        ),
        "permission_denied" => format!(
            "{at} lacks a privilege: confirm service_key_staging.env was sourced (some admin checks need \
             SUPABASE_SERVICE_KEY) and that the object's owner is the migration role"
        ),
        "lock_timeout" => format!(
            "{at} waited too long for a lock: another session holds it; retry with `--lock-timeout 5s` in a quiet \
             window and document the contention in feedback"
        ),
        "statement_timeout" => format!(
            "{at} ran past the statement timeout: raise `--statement-timeout` for this rehearsal or split the statement"
        ),
        "syntax_error" => format!("fix the SQL syntax at {at}"),
        "not_in_transaction" => format!(
            "{at} cannot run inside a transaction block (CREATE INDEX CONCURRENTLY, VACUUM, ...): move it to a \
             migration of its own; the tool runs such files without a transaction"
        ),
        _ => format!("read the error at {at} in the log"),
    }
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
        assert!(f.hint.contains("the extension pg_hashids is not installed") && f.hint.contains("postgresql-<major>-pg-hashids"), "{}", f.hint);
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
        assert_eq!((f.class, f.sqlstate.as_deref(), f.message.as_str()), ("duplicate_object", Some("42P07"), "relation \"t\" already exists"));
        assert!(scan("finished at 12:34:56 with code 1\n", None).is_empty());
    }

    #[test]
    fn an_ipv6_connection_failure_gets_the_pooler_advice() {
        let text = "psql: error: connection to server at \"db.x.supabase.co\" (2600:1f18::1), port 5432 failed: Network is unreachable\n";
        let f = &scan(text, None)[0];
        assert_eq!(f.class, "ipv6_unreachable");
        assert!(f.hint.contains("pooler"));
    }
}
