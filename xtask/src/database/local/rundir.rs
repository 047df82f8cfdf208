//! The directory of one throwaway cluster (data dir and socket) and the user it runs as.

use std::os::unix::fs::{lchown, DirBuilderExt, PermissionsExt};
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicU32, Ordering};

use anyhow::{Context, Result};

use crate::exit;
use crate::tools::is_root;

const PREFIX: &str = "rehearsal-pg-";

/// Who the server runs as: `None` for the current user; as root, an unprivileged account.
#[derive(Clone, Debug)]
pub struct RunAs(pub Option<(u32, u32, String)>);

impl RunAs {
    pub fn detect() -> Result<RunAs> {
        if !is_root() {
            return Ok(RunAs(None));
        }
        let passwd = std::fs::read_to_string("/etc/passwd").unwrap_or_default();
        for wanted in ["postgres", "nobody"] {
            for line in passwd.lines() {
                let fields: Vec<&str> = line.split(':').collect();
                if fields.len() > 3 && fields[0] == wanted {
                    if let (Ok(uid), Ok(gid)) = (fields[2].parse(), fields[3].parse()) {
                        return Ok(RunAs(Some((uid, gid, wanted.to_string()))));
                    }
                }
            }
        }
        Err(exit::cannot_run(
            "running as root, and neither a `postgres` nor a `nobody` user exists to run the throwaway \
             cluster (initdb refuses root); create one: useradd --system --no-create-home postgres",
        ))
    }

    pub fn ids(&self) -> Option<(u32, u32)> {
        self.0.as_ref().map(|(uid, gid, _)| (*uid, *gid))
    }

    /// A cache key part: templates are owned by the user they were made for.
    pub fn key(&self) -> String {
        self.0.as_ref().map_or_else(|| "self".to_string(), |(uid, _, name)| format!("{name}{uid}"))
    }

    /// Give `path` itself (never what a symlink there points to) to the server's user.
    pub fn chown(&self, path: &Path) -> Result<()> {
        if let Some((uid, gid)) = self.ids() {
            lchown(path, Some(uid), Some(gid)).with_context(|| format!("chown {}", path.display()))?;
        }
        Ok(())
    }

    /// Give `dir` and everything in it to the server's user: its contents first and `dir` last,
    /// so until the end only root can enter it, and no one can slip a symlink under the tool.
    pub fn chown_tree(&self, dir: &Path) -> Result<()> {
        if self.ids().is_none() {
            return Ok(());
        }
        for entry in walkdir::WalkDir::new(dir).contents_first(true) {
            let entry = entry.with_context(|| format!("reading {}", dir.display()))?;
            self.chown(entry.path())?;
        }
        Ok(())
    }
}

/// Where throwaway clusters go: `$TMPDIR` when set, else `/dev/shm` (a cluster deleted at the end
/// belongs in memory: copying the template there takes a tenth of what it takes on disk), else
/// the system temp dir.
pub fn base_dir() -> PathBuf {
    if let Some(dir) = std::env::var_os("TMPDIR").filter(|d| !d.is_empty()) {
        return PathBuf::from(dir);
    }
    let shm = Path::new("/dev/shm");
    // SAFETY: access(2) on a NUL-terminated literal path.
    if shm.is_dir() && unsafe { libc::access(c"/dev/shm".as_ptr(), libc::W_OK | libc::X_OK) } == 0 {
        return shm.to_path_buf();
    }
    std::env::temp_dir()
}

/// `<base>/rehearsal-pg-<pid>-<n>-<random>/` (created new: a name planted ahead is skipped),
/// removed on drop. It stays root's (mode 0711) as the installation is laid out in it; the
/// server's user gets only `data/` (initdb's, or a copy of the template, handed over once filled)
/// and `s/`, its socket directory.
pub struct RunDir {
    path: PathBuf,
    run_as: RunAs,
}

static SEQUENCE: AtomicU32 = AtomicU32::new(0);

impl RunDir {
    pub fn create(run_as: &RunAs) -> Result<RunDir> {
        let base = base_dir();
        loop {
            let n = SEQUENCE.fetch_add(1, Ordering::SeqCst);
            let path = base.join(format!("{PREFIX}{}-{n}-{}", std::process::id(), &crate::process::psql::nonce()[..8]));
            let mode = if run_as.ids().is_some() { 0o711 } else { 0o700 };
            match std::fs::DirBuilder::new().mode(mode).create(&path) {
                Ok(()) => {
                    let dir = RunDir { path, run_as: run_as.clone() };
                    std::fs::set_permissions(&dir.path, std::fs::Permissions::from_mode(mode))?;
                    for sub in [dir.data(), dir.socket()] {
                        std::fs::DirBuilder::new().mode(0o700).create(&sub)?;
                    }
                    run_as.chown(&dir.socket())?;
                    return Ok(dir);
                }
                Err(e) if e.kind() == std::io::ErrorKind::AlreadyExists => continue,
                Err(e) => {
                    return Err(e).with_context(|| {
                        format!("creating the throwaway cluster's directory under {}", base.display())
                    })
                }
            }
        }
    }

    /// The server's socket directory (its own, so the run dir itself stays root's).
    pub fn socket(&self) -> PathBuf {
        self.path.join("s")
    }

    /// Hand the empty data dir to the server's user, for initdb.
    pub fn hand_over_data(&self) -> Result<()> {
        self.run_as.chown(&self.data())
    }

    pub fn path(&self) -> &Path {
        &self.path
    }

    pub fn data(&self) -> PathBuf {
        self.path.join("data")
    }

    /// Copy a template data dir in (while it is root's), then hand it to the server's user,
    /// mode 0700 as postgres demands.
    pub fn copy_data_from(&self, template: &Path) -> Result<()> {
        copy_tree(template, &self.data())
            .with_context(|| format!("copying the cluster template {}", template.display()))?;
        std::fs::set_permissions(self.data(), std::fs::Permissions::from_mode(0o700))?;
        self.run_as.chown_tree(&self.data())?;
        Ok(())
    }
}

impl Drop for RunDir {
    fn drop(&mut self) {
        let _ = std::fs::remove_dir_all(&self.path);
    }
}

/// Copy a directory tree into `to` (which exists), keeping file modes; nothing is followed or
/// given away here: the caller hands the copy over once it is whole.
pub fn copy_tree(from: &Path, to: &Path) -> Result<()> {
    for entry in crate::walk::tree(from) {
        let entry = entry.with_context(|| format!("reading {}", from.display()))?;
        let rel = entry.path().strip_prefix(from).expect("under the root");
        if rel.as_os_str().is_empty() {
            continue;
        }
        let target = to.join(rel);
        if entry.file_type().is_dir() {
            std::fs::create_dir(&target).with_context(|| format!("creating {}", target.display()))?;
            std::fs::set_permissions(&target, entry.metadata()?.permissions())?;
        } else if entry.file_type().is_file() {
            std::fs::copy(entry.path(), &target).with_context(|| format!("copying {}", entry.path().display()))?;
        }
    }
    Ok(())
}

/// Remove cluster directories left by a tool that was killed outright (SIGKILL, power loss):
/// those whose creating process and whose server are both gone.
pub fn sweep_stale() {
    let Ok(entries) = std::fs::read_dir(base_dir()) else { return };
    for entry in entries.flatten() {
        let name = entry.file_name();
        let Some(rest) = name.to_str().and_then(|n| n.strip_prefix(PREFIX)) else { continue };
        let Some(pid) = rest.split('-').next().and_then(|p| p.parse::<u32>().ok()) else { continue };
        let server_pid = std::fs::read_to_string(entry.path().join("data/postmaster.pid"))
            .ok()
            .and_then(|s| s.lines().next().and_then(|l| l.trim().parse::<u32>().ok()));
        if !alive(pid) && !server_pid.is_some_and(alive) {
            let _ = std::fs::remove_dir_all(entry.path());
        }
    }
}

fn alive(pid: u32) -> bool {
    Path::new(&format!("/proc/{pid}")).exists()
}

/// A private temp dir beside the clusters (`<base>/<prefix><pid>-<n>-<random>`, mode 0700,
/// created new), removed on drop.
pub struct Scratch(PathBuf);

impl Scratch {
    pub fn path(&self) -> &Path {
        &self.0
    }
}

impl Drop for Scratch {
    fn drop(&mut self) {
        let _ = std::fs::remove_dir_all(&self.0);
    }
}

pub fn scratch_dir(prefix: &str) -> Result<Scratch> {
    let base = base_dir();
    loop {
        let n = SEQUENCE.fetch_add(1, Ordering::SeqCst);
        let path = base.join(format!("{prefix}{}-{n}-{}", std::process::id(), &crate::process::psql::nonce()[..8]));
        match std::fs::DirBuilder::new().mode(0o700).create(&path) {
            Ok(()) => return Ok(Scratch(path)),
            Err(e) if e.kind() == std::io::ErrorKind::AlreadyExists => continue,
            Err(e) => return Err(e).with_context(|| format!("creating a temp dir under {}", base.display())),
        }
    }
}
