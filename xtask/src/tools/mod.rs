//! The programs the runbook runs and where they come from: psql and pg_dump, the PostgreSQL
//! server and its extension packages ([`server`]), the Supabase CLI ([`supabase_cli`]), pgbouncer
//! and openssl for the staging-like stack. On Debian as root a missing package is installed with
//! apt-get, saying so on stderr; anywhere else the error names the one command that installs it.

pub mod server;
pub mod supabase_cli;

use std::path::{Path, PathBuf};

use anyhow::{Context, Result};
use xshell::{cmd, Shell};

use crate::exit;
use crate::process::{self, Env};

/// A client program (`psql`, `pg_dump`): from the newest server bin dir when there is one (on
/// Debian, /usr/bin/psql is a Perl wrapper that costs a start-up per call), else from PATH.
pub fn find_client(name: &str) -> Result<PathBuf> {
    let in_bindirs = std::env::var_os("REHEARSAL_PG_BINDIR")
        .map(PathBuf::from)
        .into_iter()
        .chain(server::candidate_bindirs())
        .map(|dir| dir.join(name))
        .find(|path| path.is_file());
    in_bindirs.or_else(|| which::which(name).ok()).ok_or_else(|| {
        exit::cannot_run(format!(
            "`{name}` is not on PATH; install the PostgreSQL client: {}",
            install_hint("postgresql-client")
        ))
    })
}

/// A program from a Debian package (`pgbouncer`, `openssl`), installed with apt-get when missing
/// and the tool may (root on Debian); else exit 2 naming the command that installs it.
pub fn ensure_program(program: &str, package: &str, why: &str) -> Result<PathBuf> {
    let find =
        || which::which(program).ok().or_else(|| Some(Path::new("/usr/sbin").join(program)).filter(|p| p.is_file()));
    if let Some(path) = find() {
        return Ok(path);
    }
    if can_apt_install() {
        apt_install(&[package], &format!("{program} is missing ({why})"))?;
        if let Some(path) = find() {
            return Ok(path);
        }
    }
    Err(exit::cannot_run(format!("{program} is not installed ({why}); install it: {}", install_hint(package))))
}

/// The one command that installs Debian packages, as this user would type it.
pub fn install_hint(package: &str) -> String {
    if is_root() {
        format!("apt-get install -y {package}")
    } else {
        format!("sudo apt-get install -y {package}")
    }
}

pub fn is_root() -> bool {
    // SAFETY: geteuid has no preconditions.
    unsafe { libc::geteuid() == 0 }
}

/// Whether the tool may install packages itself: root, apt-get present, not told otherwise.
pub fn can_apt_install() -> bool {
    is_root() && Path::new("/usr/bin/apt-get").exists() && std::env::var_os("REHEARSAL_NO_INSTALL").is_none()
}

/// `apt-get install -y PACKAGES`, refreshing the package lists once if the first try fails.
pub fn apt_install(packages: &[&str], why: &str) -> Result<()> {
    eprintln!("{why}: installing {} with apt-get", packages.join(" "));
    let sh = Shell::new()?;
    let install = || {
        process::output(
            cmd!(sh, "apt-get install -y --no-install-recommends -o DPkg::Lock::Timeout=300 {packages...}"),
            Env::installer().with("DEBIAN_FRONTEND", "noninteractive"),
        )
    };
    if install().context("running apt-get")?.success() {
        return Ok(());
    }
    eprintln!("apt-get install failed; refreshing the package lists (apt-get update) and retrying");
    let update = process::output(cmd!(sh, "apt-get update -o DPkg::Lock::Timeout=300"), Env::installer());
    let second = install().context("running apt-get")?;
    if second.success() {
        return Ok(());
    }
    let update_failed = update.map(|o| !o.success()).unwrap_or(true);
    Err(exit::cannot_run(format!(
        "apt-get could not install {}{}:\n{}\nfix the package source, then run: apt-get install -y {}",
        packages.join(" "),
        if update_failed { " (apt-get update failed too)" } else { "" },
        second.stderr.trim_end(),
        packages.join(" ")
    )))
}

/// The major version in a `psql --version` line (`psql (PostgreSQL) 15.18 (Debian ...)`).
pub fn client_major(version_line: &str) -> Option<u32> {
    let rest = version_line.split(") ").nth(1)?;
    rest.split(|c: char| !c.is_ascii_digit()).next()?.parse().ok()
}

/// Whether this psql shows every result of a query string of several statements (15 and later):
/// what a chain of files in one round trip needs. An older one shows only the last.
pub fn client_chains(version_line: &str) -> bool {
    client_major(version_line).is_some_and(|m| m >= 15)
}

/// The first line a program prints for `--version`, or empty.
pub fn version_line(program: &Path) -> String {
    let Ok(sh) = Shell::new() else { return String::new() };
    process::output(cmd!(sh, "{program} --version"), Env::client())
        .map(|o| o.stdout.lines().next().unwrap_or_default().trim().to_string())
        .unwrap_or_default()
}
