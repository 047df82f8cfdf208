//! The Supabase CLI: `$REHEARSAL_SUPABASE_CLI`, else the workdir's `node_modules/.bin`, else the
//! copy this tool's package.json pins (installed with `npm install --no-save` when missing), else
//! PATH. Its major version decides how it takes a DSN: 2.x `--db-url URL`, 3.x `--remote=URL`.

use std::path::{Path, PathBuf};

use xshell::{cmd, Shell};

use crate::process::{self, Env};

/// The oldest CLI the runbook accepts.
pub const MIN_VERSION: (u32, u32) = (2, 48);

#[derive(Clone, Debug)]
pub struct SupabaseCli {
    pub path: PathBuf,
    pub version: (u32, u32, u32),
}

/// This tool's own workspace, where package.json pins the CLI.
fn tool_root() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).parent().expect("xtask sits in the workspace").to_path_buf()
}

impl SupabaseCli {
    pub fn find(workdir: &Path) -> Option<SupabaseCli> {
        let candidates = [
            std::env::var_os("REHEARSAL_SUPABASE_CLI").map(PathBuf::from),
            Some(workdir.join("node_modules/.bin/supabase")),
            Some(tool_root().join("node_modules/.bin/supabase")),
            which::which("supabase").ok(),
        ];
        SupabaseCli::at(&candidates.into_iter().flatten().find(|p| p.is_file())?)
    }

    /// The CLI at `path`: its version from the npm package it belongs to when there is one (the
    /// CLI is a Node program: answering `--version` costs half a second), else from `--version`.
    pub fn at(path: &Path) -> Option<SupabaseCli> {
        let version = npm_version(path).or_else(|| {
            let sh = Shell::new().ok()?;
            let out = process::output(cmd!(sh, "{path} --version"), Env::client()).ok()?;
            parse_version(&out.stdout)
        })?;
        Some(SupabaseCli { path: path.to_path_buf(), version })
    }

    /// Find the CLI; if there is none, install the version this tool pins with `npm install
    /// --no-save` (saying so), unless `REHEARSAL_NO_INSTALL` is set or npm is missing.
    pub fn find_or_install(workdir: &Path) -> Option<SupabaseCli> {
        if let Some(cli) = SupabaseCli::find(workdir) {
            return Some(cli);
        }
        let root = tool_root();
        if std::env::var_os("REHEARSAL_NO_INSTALL").is_some() || !root.join("package.json").is_file() {
            return None;
        }
        let npm = which::which("npm").ok()?;
        eprintln!(
            "the Supabase CLI is missing: installing the version pinned in {} (npm install --no-save)",
            root.join("package.json").display()
        );
        // `npm install --no-save`, not `npm ci`: npm leaves the CLI's per-platform optional packages
        // out of a lock file made on one platform, and `npm ci` then refuses it. Its report goes to
        // stderr with the progress: stdout is the summary's (or --json's) alone.
        let sh = Shell::new().ok()?;
        let _dir = sh.push_dir(&root);
        let out = process::output(
            cmd!(sh, "{npm} install --no-save --no-audit --no-fund --loglevel=error"),
            Env::installer(),
        );
        match out {
            Ok(out) if out.success() => {}
            Ok(out) => eprintln!("npm install failed; the inventory will come from SQL:\n{}", out.stderr.trim_end()),
            Err(e) => eprintln!("npm install failed ({e:#}); the inventory will come from SQL"),
        }
        SupabaseCli::find(workdir)
    }

    pub fn version_string(&self) -> String {
        let (a, b, c) = self.version;
        format!("{a}.{b}.{c}")
    }

    pub fn is_supported(&self) -> bool {
        (self.version.0, self.version.1) >= MIN_VERSION
    }

    /// How this flavour is told which database to use.
    pub fn dsn_args(&self, dsn: &str) -> Vec<String> {
        if self.version.0 >= 3 {
            vec![format!("--remote={dsn}")]
        } else {
            vec!["--db-url".to_string(), dsn.to_string()]
        }
    }

    pub fn flavour(&self) -> &'static str {
        if self.version.0 >= 3 {
            "3.x, takes --remote=<url>"
        } else {
            "2.x, takes --db-url"
        }
    }
}

/// `node_modules/.bin/supabase` links into `node_modules/supabase/`, whose package.json is named
/// `supabase` and has the version.
fn npm_version(bin: &Path) -> Option<(u32, u32, u32)> {
    let real = bin.canonicalize().ok()?;
    let package = real.ancestors().skip(1).map(|d| d.join("package.json")).find(|p| p.is_file())?;
    let json: serde_json::Value = serde_json::from_str(&std::fs::read_to_string(package).ok()?).ok()?;
    if json["name"] != "supabase" {
        return None;
    }
    parse_version(json["version"].as_str()?)
}

fn parse_version(text: &str) -> Option<(u32, u32, u32)> {
    let word = text.split_whitespace().find(|w| w.chars().next().is_some_and(|c| c.is_ascii_digit()))?;
    let mut parts = word.trim_start_matches('v').split(['.', '-']).map(|p| p.parse::<u32>().ok());
    Some((parts.next()??, parts.next()??, parts.next().flatten().unwrap_or(0)))
}

#[cfg(test)]
mod tests {
    #[test]
    fn versions_as_the_cli_prints_them() {
        assert_eq!(super::parse_version("2.122.1\n"), Some((2, 122, 1)));
        assert_eq!(super::parse_version("3.1.0"), Some((3, 1, 0)));
        assert_eq!(super::parse_version("nothing"), None);
    }
}
