//! The failure classifier: psql and Supabase CLI output in, one [`Finding`] per error out, each
//! with the runbook's troubleshooting advice (its §9) made concrete for the file and the target.
//!
//! Only errors make findings. NOTICE and WARNING lines do not (a `NOTICE: 42P07 ... skipping` is an
//! `IF NOT EXISTS` doing its job), nor does `25P02 current transaction is aborted`, which only
//! repeats an earlier error. Lines are read one at a time ([`Scanner`]), so a log of any size is
//! read in constant memory; terminal colour codes are removed first.

mod classify;
mod hints;

use serde::{Deserialize, Serialize};

pub use hints::{hint, FileKind, Place, TargetKind};

/// What kind of failure (or lint or advisor rule) a finding is.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Class {
    // Read from logs.
    Ipv6Unreachable,
    Connection,
    DuplicateObject,
    UndefinedObject,
    ExtensionUnavailable,
    RollbackIncomplete,
    ContractChangedSchema,
    DataLost,
    IndexNotConcurrent,
    DropIndexNotConcurrent,
    ColumnTypeRewrite,
    VolatileDefault,
    SetNotNullScan,
    ConstraintNotValid,
    UniqueWithoutIndex,
    RefreshNotConcurrent,
    TableRewriteCommand,
    BreakingChange,
    LockTimeoutMissing,
    LockRisk,
    EditedAfterApply,
    InventoryDisagrees,
    Drift,
    DependentObjects,
    PermissionDenied,
    LockTimeout,
    StatementTimeout,
    SyntaxError,
    NotInTransaction,
    Other,
    // Static checks (lint).
    MissingRollback,
    OrphanRollback,
    DuplicateVersion,
    UnversionedFile,
    NonTransactional,
    UnguardedCreate,
    UnguardedDrop,
    RlsMissing,
    SecurityDefinerSearchPath,
    PsqlMetaCommand,
    NotUtf8,
    // Security advisors (catalog).
    RlsDisabled,
    RlsEnabledNoPolicy,
    PolicyExistsRlsDisabled,
    FunctionSearchPathMutable,
    SecurityDefinerView,
    AuthUsersExposed,
    AnonPolicyAlwaysTrue,
}

impl Class {
    /// The class as written in summary.json (`duplicate_object`).
    pub fn as_str(self) -> &'static str {
        use Class::*;
        match self {
            Ipv6Unreachable => "ipv6_unreachable",
            Connection => "connection",
            DuplicateObject => "duplicate_object",
            UndefinedObject => "undefined_object",
            ExtensionUnavailable => "extension_unavailable",
            RollbackIncomplete => "rollback_incomplete",
            ContractChangedSchema => "contract_changed_schema",
            DataLost => "data_lost",
            IndexNotConcurrent => "index_not_concurrent",
            DropIndexNotConcurrent => "drop_index_not_concurrent",
            ColumnTypeRewrite => "column_type_rewrite",
            VolatileDefault => "volatile_default",
            SetNotNullScan => "set_not_null_scan",
            ConstraintNotValid => "constraint_not_valid",
            UniqueWithoutIndex => "unique_without_index",
            RefreshNotConcurrent => "refresh_not_concurrent",
            TableRewriteCommand => "table_rewrite_command",
            BreakingChange => "breaking_change",
            LockTimeoutMissing => "lock_timeout_missing",
            LockRisk => "lock_risk",
            EditedAfterApply => "edited_after_apply",
            InventoryDisagrees => "inventory_disagrees",
            Drift => "drift",
            DependentObjects => "dependent_objects",
            PermissionDenied => "permission_denied",
            LockTimeout => "lock_timeout",
            StatementTimeout => "statement_timeout",
            SyntaxError => "syntax_error",
            NotInTransaction => "not_in_transaction",
            Other => "other",
            MissingRollback => "missing_rollback",
            OrphanRollback => "orphan_rollback",
            DuplicateVersion => "duplicate_version",
            UnversionedFile => "unversioned_file",
            NonTransactional => "non_transactional",
            UnguardedCreate => "unguarded_create",
            UnguardedDrop => "unguarded_drop",
            RlsMissing => "rls_missing",
            SecurityDefinerSearchPath => "security_definer_search_path",
            PsqlMetaCommand => "psql_meta_command",
            NotUtf8 => "not_utf8",
            RlsDisabled => "rls_disabled",
            RlsEnabledNoPolicy => "rls_enabled_no_policy",
            PolicyExistsRlsDisabled => "policy_exists_rls_disabled",
            FunctionSearchPathMutable => "function_search_path_mutable",
            SecurityDefinerView => "security_definer_view",
            AuthUsersExposed => "auth_users_exposed",
            AnonPolicyAlwaysTrue => "anon_policy_always_true",
        }
    }

    /// Whether the target is gone: no further command should be sent to it.
    pub fn is_connection(self) -> bool {
        matches!(self, Class::Connection | Class::Ipv6Unreachable)
    }
}

#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Severity {
    /// Fails the run.
    Error,
    /// Reported only.
    Warning,
}

#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct Finding {
    pub class: Class,
    pub severity: Severity,
    /// The SQLSTATE psql printed, or the one the message implies.
    pub sqlstate: Option<String>,
    /// The SQL file and line psql names (relative to the workdir), when it names them.
    pub file: Option<String>,
    pub line: Option<u32>,
    /// The first line of the error, its DETAIL in brackets, without terminal control characters,
    /// at most 500 characters.
    pub message: String,
    /// What to do.
    pub hint: String,
    /// The log it was read from; `null` for lint and advisor findings.
    pub log: Option<String>,
}

impl Finding {
    /// `file:line` when known.
    pub fn location(&self) -> Option<String> {
        match (&self.file, self.line) {
            (Some(file), Some(line)) => Some(format!("{file}:{line}")),
            (Some(file), None) => Some(file.clone()),
            _ => None,
        }
    }
}

/// The longest message kept; the rest of a giant error line is dropped.
pub const MAX_MESSAGE: usize = 500;

/// Every error in `text`, in order. `log` is recorded on each finding.
pub fn scan(text: &str, log: Option<&str>, place: Place) -> Vec<Finding> {
    let mut scanner = Scanner::new(log, place);
    let mut findings: Vec<Finding> = text.lines().filter_map(|line| scanner.line(line)).collect();
    findings.extend(scanner.finish());
    findings
}

/// The classifier fed one line at a time. A finding is returned once the lines that belong to it
/// (DETAIL, HINT, LOCATION, ...) have passed.
pub struct Scanner {
    log: Option<String>,
    place: Place,
    pending: Option<Finding>,
    /// The pending finding has its DETAIL.
    detailed: bool,
}

impl Scanner {
    pub fn new(log: Option<&str>, place: Place) -> Scanner {
        Scanner { log: log.map(str::to_string), place, pending: None, detailed: false }
    }

    pub fn line(&mut self, line: &str) -> Option<Finding> {
        let cleaned;
        let line = if line.contains('\x1b') {
            cleaned = strip_ansi(line);
            cleaned.as_str()
        } else {
            line
        };
        if let Some(pending) = &mut self.pending {
            if classify::continues(pending, line) {
                // What the server adds under an error says what to look at: the DETAIL goes with
                // the message, its HINT with what to do.
                let next = line.trim_start();
                if let Some(detail) = next.strip_prefix("DETAIL:").map(str::trim) {
                    if !std::mem::replace(&mut self.detailed, true) && !detail.is_empty() {
                        pending.message = clean_message(&format!("{} ({detail})", pending.message));
                    }
                } else if let Some(hint) = next.strip_prefix("HINT:").map(str::trim) {
                    if !hint.is_empty() && !pending.hint.contains("(psql's hint: ") {
                        pending.hint = format!("{} (psql's hint: {})", pending.hint, clean_message(hint));
                    }
                }
                return None;
            }
        }
        let done = self.pending.take();
        // The cheap prefilter: every error line holds a colon.
        if line.as_bytes().contains(&b':') {
            self.pending = classify::parse_error_line(line, self.place);
            self.detailed = false;
        }
        self.complete(done)
    }

    pub fn finish(&mut self) -> Option<Finding> {
        let done = self.pending.take();
        self.complete(done)
    }

    fn complete(&self, finding: Option<Finding>) -> Option<Finding> {
        let mut finding = finding.filter(|f| f.sqlstate.as_deref() != Some("25P02"))?;
        finding.log = self.log.clone();
        Some(finding)
    }
}

/// `text` without ANSI escape sequences (`ESC [ ... letter`) or other control characters but tab.
pub fn strip_ansi(text: &str) -> String {
    let mut out = String::with_capacity(text.len());
    let mut chars = text.chars().peekable();
    while let Some(c) = chars.next() {
        if c == '\x1b' {
            if chars.peek() == Some(&'[') {
                chars.next();
                for c in chars.by_ref() {
                    if c.is_ascii_alphabetic() || c == '~' {
                        break;
                    }
                }
            }
            continue;
        }
        if c.is_control() && c != '\t' && c != '\n' {
            continue;
        }
        out.push(c);
    }
    out
}

/// A message as it may be shown: control characters removed, at most [`MAX_MESSAGE`] characters.
pub fn clean_message(message: &str) -> String {
    // Bound the work first: a giant line is cut before anything else is done with it.
    let mut cut = message.len().min(MAX_MESSAGE * 8);
    while !message.is_char_boundary(cut) {
        cut -= 1;
    }
    let cleaned = strip_ansi(&message[..cut]);
    let mut out: String = cleaned.chars().take(MAX_MESSAGE).collect();
    if cut < message.len() || cleaned.chars().nth(MAX_MESSAGE).is_some() {
        out.push('…');
    }
    out
}

#[cfg(test)]
mod tests;
