//! The rules: one error line of psql or the Supabase CLI to a finding with its class and
//! SQLSTATE (derived from the message when psql did not print it).

use super::{hint, Finding};

/// What psql prints when the server goes away under it (after a `FATAL:` line, or alone).
pub(super) const LOST: [&str; 4] = [
    "server closed the connection unexpectedly",
    "connection to server was lost",
    "SSL SYSCALL error: EOF detected",
    "could not receive data from server",
];

/// One error line: `psql:FILE:LINE: ERROR:  [SQLSTATE: ]message`, a bare `ERROR:  message`, or a
/// connection failure `psql: error: ...`.
pub(super) fn parse_error_line(line: &str) -> Option<Finding> {
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
        return Some(Finding::error(class, sqlstate, None, None, message, hint));
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
    let server_gone = [
        "terminating connection due to",
        "pgbouncer cannot connect to server",
        "query_wait_timeout",
        "server login has been failing",
        "the database system is shutting down",
    ];
    if message.starts_with("could not connect")
        || message.starts_with("connection to server")
        || server_gone.iter().any(|m| message.contains(m))
    {
        let mut f = connection_finding(message);
        f.file = file;
        f.line = line_no;
        if let Some(code) = sqlstate {
            f.sqlstate = Some(code);
        }
        return Some(f);
    }
    if let Some(name) = missing_extension(message) {
        let at = file
            .as_deref()
            .map(|f| format!("{f}{}", line_no.map(|l| format!(":{l}")).unwrap_or_default()))
            .unwrap_or_else(|| "the migration".into());
        let hint = format!(
            "the extension {name} is not installed on this PostgreSQL server: install the package that provides it \
             (on Debian and Ubuntu: apt-get install postgresql-<major>-{}), or remove it from {at} if Supabase does not offer it either",
            name.replace('_', "-")
        );
        let sqlstate = sqlstate.or(Some("0A000".to_string()));
        return Some(Finding::error("undefined_object", sqlstate, file, line_no, message, hint));
    }
    let (class, derived) = classify(sqlstate.as_deref(), message);
    let sqlstate = sqlstate.or(derived.map(str::to_string));
    let hint = hint(class, file.as_deref(), line_no, message);
    Some(Finding::error(class, sqlstate, file, line_no, message, hint))
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
    Finding::error(class, sqlstate, None, None, message, hint)
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
                || word.rsplit_once(':').is_some_and(|(addr, port)| {
                    port.parse::<u16>().is_ok() && addr.parse::<std::net::Ipv6Addr>().is_ok()
                }))
    })
}
