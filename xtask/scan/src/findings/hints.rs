//! The runbook's §9 troubleshooting, made concrete: for each class, what to do, pointed at the
//! file and line where it applies, and fitted to where the failure happened: a migration, a
//! rollback, a test or the seed; the throwaway local cluster or a shared staging database. Advice
//! about the staging vault is never given for the local target.

use super::Class;
use crate::extensions::{self, Local};

/// Where a failure happened, as far as the hint is concerned.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct Place {
    pub target: TargetKind,
    pub file: FileKind,
}

#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub enum TargetKind {
    /// The throwaway local cluster.
    Local,
    /// A shared database: staging or a DSN given with `--target url`.
    Remote,
    /// Unknown (`scan` of a log from anywhere).
    #[default]
    Unknown,
}

#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub enum FileKind {
    Migration,
    Rollback,
    /// The RLS contract or a file of `supabase/tests/`.
    Test,
    Seed,
    #[default]
    Other,
}

impl Place {
    pub fn on(target: TargetKind) -> Place {
        Place { target, file: FileKind::Other }
    }

    /// The same place, with the kind of file read from its path when the log names one.
    pub fn for_file(self, file: Option<&str>) -> Place {
        let Some(file) = file else { return self };
        let kind = if file.contains("migrations.backup/") {
            FileKind::Rollback
        } else if file.contains("migrations/") {
            FileKind::Migration
        } else if file.contains("tests/") || file.ends_with("rls_tests.sql") || file.ends_with(".pg") {
            FileKind::Test
        } else if file.ends_with("seed.sql") {
            FileKind::Seed
        } else {
            FileKind::Other
        };
        Place { file: kind, ..self }
    }
}

/// What to do about a finding of `class` at `file:line`.
pub fn hint(class: Class, file: Option<&str>, line: Option<u32>, message: &str, place: Place) -> String {
    let at = match (file, line) {
        (Some(f), Some(l)) => format!("{f}:{l}"),
        (Some(f), None) => f.to_string(),
        _ => "the failing statement".to_string(),
    };
    let local = place.target == TargetKind::Local;
    let in_test = matches!(place.file, FileKind::Test | FileKind::Seed);
    match class {
        Class::Ipv6Unreachable => "the host resolved to IPv6, which fails today: source the IPv4 session pooler DSN \
            from vault/occ/supabase/database_url_staging.env (host ending .pooler.supabase.com); do not edit the DSN"
            .to_string(),
        Class::Connection if local => {
            "the throwaway local cluster went away or refused the connection: re-run; if it persists, run \
             `cargo xtask doctor`"
                .to_string()
        }
        Class::Connection if message.contains("authentication failed") => {
            "authentication failed: the password was refused; re-source the DSN from the vault file (the password may \
             have been rotated), then re-run `cargo xtask connectivity`"
                .to_string()
        }
        Class::Connection => "the database could not be reached: check the DSN from the vault (host, port, \
            sslmode=require) and that the pooler is up, then re-run `cargo xtask connectivity`"
            .to_string(),
        Class::DuplicateObject if in_test => {
            format!("{at} creates an object that already exists: the test or seed must not re-create what a migration made")
        }
        Class::DuplicateObject => format!(
            "the object already exists: amend {at} to use IF NOT EXISTS (or DROP ... IF EXISTS first) before the next rehearsal"
        ),
        Class::ExtensionUnavailable => extension_hint(message, &at, place.target),
        Class::UndefinedObject if local && extensions::stand_in_named(message).is_some() => {
            let (name, lacks) = extensions::stand_in_named(message).expect("matched");
            format!(
                "{at} calls into {name}, which the local target only stands in for ({lacks}): that is not a fault of \
                 the migration; rehearse it on staging (`cargo xtask stage-rehearse --target staging`)"
            )
        }
        Class::UndefinedObject if in_test => format!(
            "{at} uses an object that is not there: check that the migration creating it is in supabase/migrations/, \
             or that an earlier test file or the seed creates it"
        ),
        Class::UndefinedObject if local => format!(
            "{at} needs an object that is not there: the migration that creates it must come earlier in version order"
        ),
        Class::UndefinedObject => format!(
            "{at} needs an object that is not there: check the migration that creates it applied first \
             (`supabase migration list`; fetch history with `supabase migration fetch`)"
        ),
        Class::DependentObjects => format!(
            "other objects depend on what {at} drops: drop the dependents first in the rollback, or use CASCADE deliberately"
        ),
        Class::PermissionDenied if in_test => format!(
            "{at} ran as a role without the privilege: a test that expects the refusal should use throws_ok(..., '42501'); \
             otherwise grant it in the migration that creates the object"
        ),
        Class::PermissionDenied if local => format!(
            "{at} lacks a privilege: as on Supabase, `postgres` is not a superuser; create or alter the object as its \
             owner, or grant the privilege in an earlier migration"
        ),
        Class::PermissionDenied => format!(
            "{at} lacks a privilege: confirm service_key_staging.env was sourced (some admin checks need \
             SUPABASE_SERVICE_KEY) and that the object's owner is the migration role"
        ),
        Class::LockTimeout => format!(
            "{at} waited too long for a lock: another session holds it; retry with `--lock-timeout 5s` in a quiet \
             window and document the contention in feedback"
        ),
        Class::StatementTimeout => format!(
            "{at} ran past the statement timeout: raise `--statement-timeout` for this rehearsal or split the statement"
        ),
        Class::SyntaxError => format!("fix the SQL syntax at {at}"),
        Class::NotInTransaction => format!(
            "{at} cannot run inside a transaction block (CREATE INDEX CONCURRENTLY, VACUUM, ...): move it to a \
             migration of its own; the tool runs such files without a transaction"
        ),
        _ => format!("read the error at {at} in the log"),
    }
}

/// What to do when an extension is not there: what the local target can do about it (from the
/// catalogue of Supabase's extensions), or whether Supabase offers it at all.
fn extension_hint(message: &str, at: &str, target: TargetKind) -> String {
    let quoted = message.split('"').nth(1).unwrap_or("it");
    let name = quoted.rsplit('/').next().unwrap_or(quoted).trim_end_matches(".control");
    let package = |suffix: &str| format!("postgresql-<major>-{suffix}");
    match (extensions::supabase(name), target) {
        (None, _) => format!(
            "Supabase does not offer the extension {name}: remove it from {at} (it would fail on Supabase too), or use \
             one Supabase offers"
        ),
        (Some(_), TargetKind::Remote) => format!(
            "the database does not have the extension {name}, which Supabase offers: check the project's Postgres \
             version offers it (Dashboard > Database > Extensions), then replay {at}"
        ),
        (Some(Local::Missing), _) => format!(
            "{name} is on Supabase but not available on the local target (no package provides it for this machine): \
             rehearse the migration at {at} on staging (`cargo xtask stage-rehearse --target staging`)"
        ),
        (Some(Local::Pgdg(suffix)), _) => format!(
            "{name} is on Supabase; here it comes from PostgreSQL's own apt repository as {}, not in this machine's \
             package lists: add the repository and install it (Debian and Ubuntu: `{}`), then re-run (the tool installs \
             it itself, as root, once apt-get offers it); or rehearse {at} on staging (`cargo xtask stage-rehearse \
             --target staging`)",
            package(suffix),
            extensions::pgdg_commands(&package(suffix))
        ),
        (Some(Local::Package(suffix)), _) => format!(
            "{name} comes with the package {}, not installed here: install it (on Debian and Ubuntu: apt-get \
             install {}) and re-run; the tool installs it itself, as root, when a migration creates it",
            package(suffix),
            package(suffix)
        ),
        (Some(Local::Contrib | Local::StandIn(_)), _) => format!(
            "{name} should be part of this PostgreSQL server (its contrib modules) but is not: reinstall the server \
             package, then run `cargo xtask doctor`"
        ),
    }
}
