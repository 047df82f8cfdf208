//! The rules, as tables of compiled regexes: the shapes an error line takes (psql at every
//! verbosity, `psql: error:` connection failures, the Supabase CLI's 2.x and 3.x wording, pgTAP's
//! diagnostics, a server that went away), then the message rules that give a class and the
//! SQLSTATE the message implies when psql did not print one.

use std::sync::OnceLock;

use regex::{Regex, RegexSet};

use super::{clean_message, hint, Class, Finding, Place, Severity};

/// What psql prints when the server goes away under it (after a `FATAL:` line, or alone).
const LOST: [&str; 4] = [
    "server closed the connection unexpectedly",
    "connection to server was lost",
    "SSL SYSCALL error: EOF detected",
    "could not receive data from server",
];

/// Messages of an `ERROR`/`FATAL` that mean the server or the pooler is gone or refusing us.
const SERVER_GONE: &str = r"^(could not connect|connection to server)|terminating connection due to|pgbouncer cannot connect to server|server conn crashed|query_wait_timeout|server login has been failing|the database system is (shutting down|starting up)|no more connections allowed|password authentication failed|(SASL|SCRAM) authentication failed";

/// Message rules, in order: the first that matches gives the class and the implied SQLSTATE.
const MESSAGE_RULES: &[(&str, Class, &str)] = &[
    (r"cannot (run|be executed) inside a transaction block", Class::NotInTransaction, "25001"),
    (r"canceling statement due to lock timeout|could not obtain lock", Class::LockTimeout, "55P03"),
    (r"canceling statement due to statement timeout", Class::StatementTimeout, "57014"),
    (r"because other objects depend on it", Class::DependentObjects, "2BP01"),
    (r"permission denied|must be owner of|violates row-level security policy", Class::PermissionDenied, "42501"),
    (r"syntax error at", Class::SyntaxError, "42601"),
    (
        r#"^extension "[^"]+" is not available|^could not open extension control file"#,
        Class::ExtensionUnavailable,
        "0A000",
    ),
    (r#"^relation "[^"]*" already exists"#, Class::DuplicateObject, "42P07"),
    (r#"^schema "[^"]*" already exists"#, Class::DuplicateObject, "42P06"),
    (r"^function .* already exists", Class::DuplicateObject, "42723"),
    (r#"^column "[^"]*" of relation "[^"]*" already exists"#, Class::DuplicateObject, "42701"),
    (r"already exists", Class::DuplicateObject, "42710"),
    (r#"^relation "[^"]*" does not exist"#, Class::UndefinedObject, "42P01"),
    (r"^column .* does not exist", Class::UndefinedObject, "42703"),
    (r"^(function .* does not exist|operator does not exist)", Class::UndefinedObject, "42883"),
    (r#"^schema "[^"]*" does not exist"#, Class::UndefinedObject, "3F000"),
    (r#"^database "[^"]*" does not exist"#, Class::Connection, "3D000"),
    (r"does not exist", Class::UndefinedObject, "42704"),
    (r"^current transaction is aborted", Class::Other, "25P02"),
    // Data and constraint errors: no runbook class, but the SQLSTATE still tells the reader.
    (r"division by zero", Class::Other, "22012"),
    (r"violates unique constraint", Class::Other, "23505"),
    (r"violates foreign key constraint", Class::Other, "23503"),
    (r"violates not-null constraint", Class::Other, "23502"),
    (r"violates check constraint", Class::Other, "23514"),
    (r"invalid input syntax", Class::Other, "22P02"),
    (r"value too long for type", Class::Other, "22001"),
    (r"is out of range", Class::Other, "22003"),
];

struct Tables {
    /// `psql:FILE:LINE: ERROR:  message`.
    located: Regex,
    /// `ERROR:  message` (psql reading stdin, or the CLI).
    bare: Regex,
    /// pgTAP: `# died: 42P01: ...` (lives_ok), `# caught: ...` (throws_ok), aligned with a `+`.
    tap_diag: Regex,
    /// VERBOSITY=verbose's `42P07: message`.
    sqlstate_prefix: Regex,
    /// The CLI's pgx wording: `message (SQLSTATE 42P07)`.
    sqlstate_suffix: Regex,
    server_gone: Regex,
    messages: RegexSet,
}

fn tables() -> &'static Tables {
    static TABLES: OnceLock<Tables> = OnceLock::new();
    TABLES.get_or_init(|| Tables {
        located: Regex::new(r"^psql:(.*):([0-9]+): (ERROR|FATAL|PANIC):[ \t]+(.*)$").expect("valid"),
        bare: Regex::new(r"^[ \t]*(ERROR|FATAL|PANIC):[ \t]+(.*)$").expect("valid"),
        tap_diag: Regex::new(r"^[ \t]*#[ \t]*(died|caught):[ \t]*(.*?)[ \t]*\+?$").expect("valid"),
        sqlstate_prefix: Regex::new(r"^([0-9A-Z]{5}): (.*)$").expect("valid"),
        sqlstate_suffix: Regex::new(r"^(.*) \(SQLSTATE ([0-9A-Z]{5})\)$").expect("valid"),
        server_gone: Regex::new(SERVER_GONE).expect("valid"),
        messages: RegexSet::new(MESSAGE_RULES.iter().map(|r| r.0)).expect("valid"),
    })
}

/// One error line to a finding, or `None` when it is not one.
pub(super) fn parse_error_line(line: &str, place: Place) -> Option<Finding> {
    let line = line.trim_end();
    let t = tables();
    if let Some(rest) = line.strip_prefix("psql: error: ") {
        return Some(connection_finding(rest, None, None, place));
    }
    // The Supabase CLI (2.x and 3.x): `failed to connect to postgres: ... dial error (...)`, or
    // pgx's ``failed to connect to `host=... user=...`: ...``.
    if line.starts_with("failed to connect to postgres:") || line.starts_with("failed to connect to `host=") {
        return Some(connection_finding(line, None, None, place));
    }
    if let Some(lost) = LOST.iter().find(|l| line.trim_start().starts_with(**l) || line.ends_with(**l)) {
        let mut f = connection_finding(lost, None, None, place);
        f.message = format!("{lost}: the database went away");
        return Some(f);
    }
    let tap_diag = line.trim_start().starts_with('#');
    if !tap_diag && !["ERROR:", "FATAL:", "PANIC:"].iter().any(|s| line.contains(s)) {
        // The cheap prefilter before any regex: no severity, no pgTAP diagnostic, no error.
        return None;
    }
    if let Some(c) = tap_diag.then(|| t.tap_diag.captures(line)).flatten() {
        let message = c.get(2).map_or("", |m| m.as_str());
        if message.is_empty() || message.starts_with("no exception") {
            return None;
        }
        let (sqlstate, message) = split_sqlstate(message);
        return Some(classified(sqlstate, message, None, None, place));
    }
    let (file, line_no, message) = if let Some(c) = t.located.captures(line) {
        (Some(c[1].to_string()), c[2].parse::<u32>().ok(), c.get(4).map_or("", |m| m.as_str()))
    } else if let Some(c) = t.bare.captures(line) {
        (None, None, c.get(2).map_or("", |m| m.as_str()))
    } else {
        return None;
    };
    let (sqlstate, message) = split_sqlstate(message);
    let (sqlstate, message) = match (sqlstate, t.sqlstate_suffix.captures(message)) {
        (None, Some(c)) => (Some(c[2].to_string()), c.get(1).map_or(message, |m| m.as_str())),
        (sqlstate, _) => (sqlstate, message),
    };
    if t.server_gone.is_match(message) {
        return Some(connection_finding(message, file, line_no, place).with_sqlstate(sqlstate));
    }
    Some(classified(sqlstate, message, file, line_no, place))
}

/// Lines after an error that belong to it: verbose output's DETAIL, HINT, LOCATION, ...; the
/// caret under the statement; what psql adds when the server went away.
pub(super) fn continues(finding: &Finding, line: &str) -> bool {
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
        || (finding.class.is_connection() && LOST.iter().any(|l| next.contains(l)))
}

fn split_sqlstate(message: &str) -> (Option<String>, &str) {
    match tables().sqlstate_prefix.captures(message) {
        Some(c) => (Some(c[1].to_string()), c.get(2).map_or(message, |m| m.as_str())),
        None => (None, message),
    }
}

fn classified(
    sqlstate: Option<String>,
    message: &str,
    file: Option<String>,
    line: Option<u32>,
    place: Place,
) -> Finding {
    let (class, derived) = classify(sqlstate.as_deref(), message);
    let sqlstate = sqlstate.or(derived.map(str::to_string));
    let place = place.for_file(file.as_deref());
    let hint = hint(class, file.as_deref(), line, message, place);
    Finding { class, severity: Severity::Error, sqlstate, file, line, message: clean_message(message), hint, log: None }
}

/// Class and, when psql did not print it, the SQLSTATE the message implies.
fn classify(sqlstate: Option<&str>, message: &str) -> (Class, Option<&'static str>) {
    if let Some(code) = sqlstate {
        let class = match code {
            "42P07" | "42710" | "42P06" | "42723" | "42701" | "42P04" | "42712" => Class::DuplicateObject,
            "0A000" | "58P01" if message.contains("extension") => Class::ExtensionUnavailable,
            "42P01" | "42703" | "42883" | "42704" | "3F000" | "42P02" | "58P01" => Class::UndefinedObject,
            "2BP01" => Class::DependentObjects,
            "42501" => Class::PermissionDenied,
            "55P03" => Class::LockTimeout,
            "57014" if message.contains("lock timeout") => Class::LockTimeout,
            "57014" if message.contains("statement timeout") => Class::StatementTimeout,
            "57014" => Class::StatementTimeout,
            "42601" => Class::SyntaxError,
            "25001" => Class::NotInTransaction,
            c if c.starts_with("08") || c.starts_with("28") || c == "3D000" => Class::Connection,
            _ => Class::Other,
        };
        return (class, None);
    }
    let matched = tables().messages.matches(message);
    match matched.iter().next() {
        Some(i) => (MESSAGE_RULES[i].1, Some(MESSAGE_RULES[i].2)),
        None => (Class::Other, None),
    }
}

fn connection_finding(message: &str, file: Option<String>, line: Option<u32>, place: Place) -> Finding {
    // `connection to server at "host" (2600:1f18::1), port 5432 failed`, `at "::1", port ...`, the
    // CLI's `dial tcp [2600:1f18::1]:5432: connect: network is unreachable`, or pgx's
    // ``failed to connect to `host=2600:1f18::1 user=...` ``.
    let class = if mentions_ipv6(message) { Class::Ipv6Unreachable } else { Class::Connection };
    let sqlstate = if message.contains("password authentication failed") || message.contains("authentication failed") {
        "28P01"
    } else if message.contains("does not exist") && message.contains("database") {
        "3D000"
    } else {
        "08006"
    };
    let hint = hint(class, None, None, message, place);
    Finding {
        class,
        severity: Severity::Error,
        sqlstate: Some(sqlstate.to_string()),
        file,
        line,
        message: clean_message(message),
        hint,
        log: None,
    }
}

impl Finding {
    fn with_sqlstate(mut self, sqlstate: Option<String>) -> Finding {
        if let Some(code) = sqlstate {
            self.sqlstate = Some(code);
        }
        self
    }
}

/// Whether any token of `text` is an IPv6 address (bare, in brackets, after `host=`, with a port).
pub(super) fn mentions_ipv6(text: &str) -> bool {
    text.split(|c: char| !(c.is_ascii_hexdigit() || c == ':' || c == '.' || c == '%'))
        .map(|word| if word.ends_with("::") { word } else { word.trim_end_matches(':') })
        .filter(|word| word.matches(':').count() >= 2)
        .any(|word| {
            let bare = word.split('%').next().unwrap_or(word);
            bare.parse::<std::net::Ipv6Addr>().is_ok()
                || bare.rsplit_once(':').is_some_and(|(addr, port)| {
                    port.parse::<u16>().is_ok() && addr.parse::<std::net::Ipv6Addr>().is_ok()
                })
        })
}
