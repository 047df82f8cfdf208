//! The PostgreSQL server binaries and pgTAP for the local target.
//!
//! Search order: `$REHEARSAL_PG_BINDIR` when set, `initdb` and `postgres` side by side on PATH,
//! then `pg_config --bindir`, then the newest `/usr/lib/postgresql/<major>/bin` (Debian and Ubuntu
//! keep the server off PATH). A project that names its major (`supabase/config.toml`'s `[db]
//! major_version`) gets that major when one is installed, or installable with apt-get as root;
//! else the first found, and [`major_mismatch`] says so.

use std::path::{Path, PathBuf};

use anyhow::{Context, Result};
use xshell::{cmd, Shell};

use super::{apt_install, can_apt_install, install_hint};
use crate::exit;
use crate::process::{self, Env};
use crate::text::extensions::{self, Local};

/// A PostgreSQL server installation: its bin dir, version and share dir (for extensions).
#[derive(Clone, Debug)]
pub struct Server {
    pub bindir: PathBuf,
    /// What `postgres --version` prints, e.g. `postgres (PostgreSQL) 15.18 (Debian 15.18-0+deb12u1)`.
    pub version: String,
    pub major: u32,
    pub sharedir: PathBuf,
    pub pkglibdir: PathBuf,
}

impl Server {
    pub fn bin(&self, name: &str) -> PathBuf {
        self.bindir.join(name)
    }

    /// The installed version of an extension (from its control file), if any.
    pub fn extension_version(&self, name: &str) -> Option<String> {
        let control = std::fs::read_to_string(self.sharedir.join(format!("extension/{name}.control"))).ok()?;
        control.lines().find_map(|line| {
            let (key, value) = line.split_once('=')?;
            (key.trim() == "default_version").then(|| value.trim().trim_matches('\'').to_string())
        })
    }

    pub fn pgtap_version(&self) -> Option<String> {
        self.extension_version("pgtap")
    }
}

/// Find the server binaries, or say how to get them.
pub fn find_server() -> Result<Server> {
    if let Some(dir) = std::env::var_os("REHEARSAL_PG_BINDIR") {
        return describe(Path::new(&dir)).ok_or_else(|| {
            exit::cannot_run(format!(
                "REHEARSAL_PG_BINDIR={} holds no initdb and postgres; point it at a PostgreSQL bin dir or unset it",
                Path::new(&dir).display()
            ))
        });
    }
    candidate_bindirs().into_iter().find_map(|dir| describe(&dir)).ok_or_else(|| {
        exit::cannot_run(format!(
            "the PostgreSQL server binaries (initdb, postgres) are not on PATH, under `pg_config --bindir` \
             or in /usr/lib/postgresql/*/bin; install them: {}",
            install_hint("postgresql")
        ))
    })
}

/// Find the server, pgTAP and pgextwlist; on Debian as root install what is missing first.
pub fn ensure_server_with_pgtap() -> Result<Server> {
    ensure_local(&[], None)
}

/// The warning when the server is not the major the project runs.
pub fn major_mismatch(server: &Server, project: Option<u32>) -> Option<String> {
    let want = project.filter(|m| *m != server.major)?;
    let have = server.major;
    Some(format!(
        "the project runs PostgreSQL {want} (supabase/config.toml [db] major_version) but the local target rehearsed \
         on PostgreSQL {have}, the major installed here: what differs between the two majors is not rehearsed; \
         install PostgreSQL {want} (Debian and Ubuntu: PostgreSQL's own apt repository, https://wiki.postgresql.org/wiki/Apt, \
         then `{}`) and run again",
        install_hint(&format!("postgresql-{want} postgresql-{want}-pgtap postgresql-{want}-pgextwlist"))
    ))
}

/// The server with everything the local target needs: pgTAP, pgextwlist, and the packages of the
/// extensions in `needed` (`(extension, file that creates it)`), of the `project` major when it
/// can be had. On Debian as root what is missing is installed with apt-get, saying so; anywhere
/// else the error names the one command.
pub fn ensure_local(needed: &[(String, String)], project: Option<u32>) -> Result<Server> {
    let server = find_or_install_server(project)?;
    let major = server.major;
    let mut missing: Vec<(String, String)> = Vec::new();
    if server.pgtap_version().is_none() {
        missing.push((format!("postgresql-{major}-pgtap"), "pgTAP, which runs the RLS contract".into()));
    }
    if !server.pkglibdir.join("pgextwlist.so").is_file() {
        missing.push((
            format!("postgresql-{major}-pgextwlist"),
            "pgextwlist, which lets postgres create extensions as on Supabase".into(),
        ));
    }
    for (extension, file) in needed {
        if server.extension_version(extension).is_some() {
            continue;
        }
        let package = match extensions::supabase(extension) {
            Some(Local::Package(suffix)) => format!("postgresql-{major}-{suffix}"),
            // From PostgreSQL's own repository: only when apt-get offers it (else the migration's
            // failure says how to add the repository).
            Some(Local::Pgdg(suffix)) if can_apt_install() && apt_offers(&format!("postgresql-{major}-{suffix}")) => {
                format!("postgresql-{major}-{suffix}")
            }
            _ => continue,
        };
        if !missing.iter().any(|(p, _)| *p == package) {
            missing.push((package, format!("the extension {extension}, which {file} creates")));
        }
    }
    if missing.is_empty() {
        return Ok(server);
    }
    let packages: Vec<&str> = missing.iter().map(|(p, _)| p.as_str()).collect();
    let why: Vec<String> = missing.iter().map(|(p, w)| format!("{p} ({w})")).collect();
    if can_apt_install() {
        apt_install(&packages, &format!("the local target needs {}", why.join(", ")))?;
        let server = find_server_of(Some(major))?;
        let still: Vec<&str> =
            missing.iter().filter(|(p, _)| !installed(&server, p)).map(|(p, _)| p.as_str()).collect();
        if still.is_empty() {
            return Ok(server);
        }
    }
    Err(exit::cannot_run(format!(
        "the local target needs what is not installed: {}; install {}: {}",
        why.join(", "),
        if packages.len() == 1 { "it" } else { "them" },
        install_hint(&packages.join(" "))
    )))
}

/// Whether a package's extension (or pgextwlist's library) is in place.
fn installed(server: &Server, package: &str) -> bool {
    if package.ends_with("-pgextwlist") {
        return server.pkglibdir.join("pgextwlist.so").is_file();
    }
    if package.ends_with("-pgtap") {
        return server.pgtap_version().is_some();
    }
    extensions::SUPABASE.iter().any(|(name, local)| {
        matches!(local, Local::Package(suffix) | Local::Pgdg(suffix) if package.ends_with(suffix))
            && server.extension_version(name).is_some()
    })
}

/// [`find_server`], preferring `major`.
pub fn find_server_of(major: Option<u32>) -> Result<Server> {
    if let Some(m) = major.filter(|_| std::env::var_os("REHEARSAL_PG_BINDIR").is_none()) {
        if let Some(server) = candidate_bindirs().into_iter().filter_map(|dir| describe(&dir)).find(|s| s.major == m) {
            return Ok(server);
        }
    }
    find_server()
}

/// Whether apt-get has a candidate for `package` (from the package lists already on disk).
fn apt_offers(package: &str) -> bool {
    let Ok(sh) = Shell::new() else { return false };
    process::output(cmd!(sh, "apt-cache policy {package}"), Env::installer()).is_ok_and(|out| {
        out.success() && out.stdout.lines().any(|l| l.trim().starts_with("Candidate:") && !l.contains("(none)"))
    })
}

fn find_or_install_server(project: Option<u32>) -> Result<Server> {
    if let Some(m) = project {
        let found = find_server_of(Some(m));
        if found.as_ref().is_ok_and(|s| s.major == m) || std::env::var_os("REHEARSAL_PG_BINDIR").is_some() {
            return found;
        }
        let package = format!("postgresql-{m}");
        if can_apt_install() && apt_offers(&package) {
            apt_install(&[&package], &format!("the project runs PostgreSQL {m} (supabase/config.toml)"))
                .context("installing the project's PostgreSQL major")?;
            return find_server_of(Some(m));
        }
    }
    match find_server() {
        Ok(server) => Ok(server),
        Err(err) if can_apt_install() => {
            apt_install(&["postgresql"], "the PostgreSQL server binaries are missing")
                .context("installing the PostgreSQL server")?;
            find_server().map_err(|_| err)
        }
        Err(err) => Err(err),
    }
}

/// Bin dirs that may hold the server, best first.
pub fn candidate_bindirs() -> Vec<PathBuf> {
    let mut dirs = Vec::new();
    if let Some(path) = std::env::var_os("PATH") {
        for dir in std::env::split_paths(&path) {
            if let Ok(initdb) = dir.join("initdb").canonicalize() {
                dirs.push(initdb.parent().map(Path::to_path_buf).unwrap_or(dir));
            }
        }
    }
    if let (Ok(sh), Ok(pg_config)) = (Shell::new(), which::which("pg_config")) {
        if let Ok(out) = process::output(cmd!(sh, "{pg_config} --bindir"), Env::client()) {
            if out.success() {
                dirs.push(PathBuf::from(out.stdout.trim()));
            }
        }
    }
    let mut debian: Vec<(u32, PathBuf)> = std::fs::read_dir("/usr/lib/postgresql")
        .into_iter()
        .flatten()
        .flatten()
        .filter_map(|e| Some((e.file_name().to_str()?.parse().ok()?, e.path().join("bin"))))
        .collect();
    debian.sort_by_key(|d| std::cmp::Reverse(d.0));
    dirs.extend(debian.into_iter().map(|(_, dir)| dir));
    dirs
}

fn describe(bindir: &Path) -> Option<Server> {
    if !bindir.join("initdb").is_file() || !bindir.join("postgres").is_file() {
        return None;
    }
    let sh = Shell::new().ok()?;
    let postgres = bindir.join("postgres");
    let version = process::output(cmd!(sh, "{postgres} --version"), Env::server()).ok()?.stdout.trim().to_string();
    let number = version.split_whitespace().nth(2)?;
    let major = number.split('.').next()?.parse().ok()?;
    let pg_config = bindir.join("pg_config");
    let ask = |flag: &str| -> Option<PathBuf> {
        let out = process::output(cmd!(sh, "{pg_config} {flag}"), Env::server()).ok().filter(|o| o.success())?;
        Some(PathBuf::from(out.stdout.trim()))
    };
    let sharedir = ask("--sharedir").unwrap_or_else(|| PathBuf::from(format!("/usr/share/postgresql/{major}")));
    let pkglibdir = ask("--pkglibdir").unwrap_or_else(|| PathBuf::from(format!("/usr/lib/postgresql/{major}/lib")));
    Some(Server { bindir: bindir.to_path_buf(), version, major, sharedir, pkglibdir })
}
