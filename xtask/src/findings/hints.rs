//! The runbook's §9 troubleshooting, made concrete: for each class, what to do, pointed at the
//! file and line where it applies.

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
