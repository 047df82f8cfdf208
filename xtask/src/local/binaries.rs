//! Finding the PostgreSQL server binaries and pgTAP, and installing them where the tool can.
//!
//! Search order: `$REHEARSAL_PG_BINDIR` when set, `initdb` and `postgres` side by side on PATH, then `pg_config --bindir`, then the
//! newest `/usr/lib/postgresql/<major>/bin` (Debian and Ubuntu keep the server off PATH). On Debian
//! as root a missing piece is installed with apt-get, saying so on stderr; anywhere else the error
//! names the one command that installs it.

use std::path::{Path, PathBuf};
use std::process::Command;

use anyhow::{Context, Result};

use crate::exit;

/// A PostgreSQL server installation: its bin dir, version and share dir (for extensions).
#[derive(Clone, Debug)]
pub struct Server {
    pub bindir: PathBuf,
    /// What `postgres --version` prints, e.g. `postgres (PostgreSQL) 15.18 (Debian 15.18-0+deb12u1)`.
    pub version: String,
    pub major: u32,
    pub sharedir: PathBuf,
}

impl Server {
    pub fn bin(&self, name: &str) -> PathBuf {
        self.bindir.join(name)
    }

    /// The installed pgTAP version (from `pgtap.control`), if any.
    pub fn pgtap_version(&self) -> Option<String> {
        let control = std::fs::read_to_string(self.sharedir.join("extension/pgtap.control")).ok()?;
        control.lines().find_map(|line| {
            let (key, value) = line.split_once('=')?;
            (key.trim() == "default_version").then(|| value.trim().trim_matches('\'').to_string())
        })
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

/// Find the server and pgTAP; on Debian as root install what is missing first.
pub fn ensure_server_with_pgtap() -> Result<Server> {
    let server = match find_server() {
        Ok(server) => server,
        Err(err) if can_apt_install() => {
            apt_install("postgresql", "the PostgreSQL server binaries are missing")
                .context("installing the PostgreSQL server")?;
            find_server().map_err(|_| err)?
        }
        Err(err) => return Err(err),
    };
    if server.pgtap_version().is_some() {
        return Ok(server);
    }
    let package = format!("postgresql-{}-pgtap", server.major);
    if can_apt_install() {
        apt_install(&package, &format!("pgTAP is missing for PostgreSQL {}", server.major))?;
        if server.pgtap_version().is_some() {
            return Ok(server);
        }
    }
    Err(exit::cannot_run(format!(
        "pgTAP is not installed for PostgreSQL {} ({} has no extension/pgtap.control); install it: {}",
        server.major,
        server.sharedir.display(),
        install_hint(&package)
    )))
}

/// A program from a Debian package (`pgbouncer`, `openssl`), installed with apt-get when missing
/// and the tool may (root on Debian); else exit 2 naming the command that installs it.
pub fn ensure_program(program: &str, package: &str, why: &str) -> Result<PathBuf> {
    if let Some(path) =
        on_path(program).or_else(|| Some(PathBuf::from("/usr/sbin").join(program)).filter(|p| p.is_file()))
    {
        return Ok(path);
    }
    if can_apt_install() {
        apt_install(package, &format!("{program} is missing ({why})"))?;
        if let Some(path) =
            on_path(program).or_else(|| Some(PathBuf::from("/usr/sbin").join(program)).filter(|p| p.is_file()))
        {
            return Ok(path);
        }
    }
    Err(exit::cannot_run(format!("{program} is not installed ({why}); install it: {}", install_hint(package))))
}

/// The one command that installs a Debian package, as this user would type it.
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

fn can_apt_install() -> bool {
    is_root() && Path::new("/usr/bin/apt-get").exists() && std::env::var_os("REHEARSAL_NO_INSTALL").is_none()
}

/// `apt-get install -y PACKAGE`, refreshing the package lists once if the first try fails.
fn apt_install(package: &str, why: &str) -> Result<()> {
    eprintln!("{why}: installing {package} with apt-get");
    let install = || {
        Command::new("apt-get")
            .args(["install", "-y", "--no-install-recommends", "-o", "DPkg::Lock::Timeout=120", package])
            .env("DEBIAN_FRONTEND", "noninteractive")
            .output()
    };
    let first = install().context("running apt-get")?;
    if first.status.success() {
        return Ok(());
    }
    eprintln!("apt-get install failed; refreshing the package lists (apt-get update) and retrying");
    let update = Command::new("apt-get").args(["update", "-o", "DPkg::Lock::Timeout=120"]).output();
    let second = install().context("running apt-get")?;
    if second.status.success() {
        return Ok(());
    }
    let stderr = String::from_utf8_lossy(&second.stderr);
    let update_failed = update.map(|o| !o.status.success()).unwrap_or(true);
    Err(exit::cannot_run(format!(
        "apt-get could not install {package}{}:\n{}\nfix the package source, then run: apt-get install -y {package}",
        if update_failed { " (apt-get update failed too)" } else { "" },
        stderr.trim_end()
    )))
}

fn candidate_bindirs() -> Vec<PathBuf> {
    let mut dirs = Vec::new();
    if let Some(path) = std::env::var_os("PATH") {
        for dir in std::env::split_paths(&path) {
            if let Ok(initdb) = dir.join("initdb").canonicalize() {
                dirs.push(initdb.parent().map(Path::to_path_buf).unwrap_or(dir));
            }
        }
    }
    if let Ok(out) = Command::new("pg_config").arg("--bindir").output() {
        if out.status.success() {
            dirs.push(PathBuf::from(String::from_utf8_lossy(&out.stdout).trim()));
        }
    }
    let mut debian: Vec<(u32, PathBuf)> = std::fs::read_dir("/usr/lib/postgresql")
        .into_iter()
        .flatten()
        .flatten()
        .filter_map(|e| Some((e.file_name().to_str()?.parse().ok()?, e.path().join("bin"))))
        .collect();
    debian.sort_by(|a, b| b.0.cmp(&a.0));
    dirs.extend(debian.into_iter().map(|(_, dir)| dir));
    dirs
}

fn describe(bindir: &Path) -> Option<Server> {
    if !bindir.join("initdb").is_file() || !bindir.join("postgres").is_file() {
        return None;
    }
    let out = Command::new(bindir.join("postgres")).arg("--version").output().ok()?;
    let version = String::from_utf8_lossy(&out.stdout).trim().to_string();
    let number = version.split_whitespace().nth(2)?;
    let major = number.split('.').next()?.parse().ok()?;
    let sharedir = Command::new(bindir.join("pg_config"))
        .arg("--sharedir")
        .output()
        .ok()
        .filter(|o| o.status.success())
        .map(|o| PathBuf::from(String::from_utf8_lossy(&o.stdout).trim()))
        .unwrap_or_else(|| PathBuf::from(format!("/usr/share/postgresql/{major}")));
    Some(Server { bindir: bindir.to_path_buf(), version, major, sharedir })
}

/// A client program (`psql`, `pg_dump`): from the newest server bin dir when there is one (on
/// Debian, /usr/bin/psql is a Perl wrapper that costs a start-up per call), else from PATH.
pub fn find_client(name: &str) -> Result<PathBuf> {
    let in_bindirs = std::env::var_os("REHEARSAL_PG_BINDIR")
        .map(PathBuf::from)
        .into_iter()
        .chain(candidate_bindirs())
        .map(|dir| dir.join(name))
        .find(|path| path.is_file());
    in_bindirs.or_else(|| on_path(name)).ok_or_else(|| {
        exit::cannot_run(format!(
            "`{name}` is not on PATH; install the PostgreSQL client: {}",
            install_hint("postgresql-client")
        ))
    })
}

/// The first executable `name` on PATH.
pub fn on_path(name: &str) -> Option<PathBuf> {
    use std::os::unix::fs::PermissionsExt;
    let path = std::env::var_os("PATH")?;
    std::env::split_paths(&path)
        .map(|dir| dir.join(name))
        .find(|p| p.metadata().is_ok_and(|m| m.is_file() && m.permissions().mode() & 0o111 != 0))
}
