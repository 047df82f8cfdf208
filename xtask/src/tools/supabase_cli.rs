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
    /// As found (`node_modules/.bin/supabase`, a PATH entry).
    pub path: PathBuf,
    /// What runs: the npm package's native binary when `path` is its Node launcher (which only
    /// spawns that binary with the same arguments; skipping it saves Node's start-up on every
    /// call), else `path`.
    pub exec: PathBuf,
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
        let exec = native_binary(path).unwrap_or_else(|| path.to_path_buf());
        Some(SupabaseCli { path: path.to_path_buf(), exec, version })
    }

    /// The environment a run of the CLI gets: `env`, and for the 3.x CLI (a Bun executable whose
    /// `migration list` lives a third of a second) JavaScriptCore's optimizing compiler (DFG)
    /// off. It compiles code the run never gets to use again; without it the run costs about 40%
    /// less CPU, which on a small CI machine is time the rehearsal waits for, and prints the same.
    /// (Bun reads `BUN_JSC_<option>` as the engine's options; the 2.x CLI, in Go, ignores it.)
    pub fn env(&self, env: Env) -> Env {
        if self.version.0 >= 3 {
            env.with("BUN_JSC_useDFGJIT", "0")
        } else {
            env
        }
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

/// The native binary the npm package's launcher would spawn: `$SUPABASE_CLI_BINARY_OVERRIDE`, else
/// `node_modules/@supabase/cli-<os>-<arch>[-musl]/bin/supabase` beside the `supabase` package.
fn native_binary(launcher: &Path) -> Option<PathBuf> {
    let real = launcher.canonicalize().ok()?;
    if real.extension().is_none_or(|e| e != "js") {
        return None; // already a binary
    }
    let package = real.ancestors().skip(1).find(|d| d.join("package.json").is_file())?;
    npm_version(launcher)?; // the `supabase` package, not some other script
    if let Some(over) = std::env::var_os("SUPABASE_CLI_BINARY_OVERRIDE") {
        return Some(PathBuf::from(over));
    }
    let os = match std::env::consts::OS {
        "macos" => "darwin",
        "windows" => return None,
        os => os,
    };
    let arch = match std::env::consts::ARCH {
        "x86_64" => "x64",
        "aarch64" => "arm64",
        _ => return None,
    };
    let scope = package.parent()?.join("@supabase");
    [format!("cli-{os}-{arch}"), format!("cli-{os}-{arch}-musl")]
        .iter()
        .map(|dir| scope.join(dir).join("bin/supabase"))
        .find(|bin| bin.is_file())
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
    /// The npm layout: `.bin/supabase` → `supabase/dist/supabase.js`, which spawns the binary of
    /// `@supabase/cli-<os>-<arch>`; that binary is what runs.
    #[test]
    fn the_npm_launcher_is_skipped_for_its_native_binary() {
        let root = std::env::temp_dir().join(format!("cli-layout-{}", std::process::id()));
        let nm = root.join("node_modules");
        let os = if std::env::consts::OS == "macos" { "darwin" } else { std::env::consts::OS };
        let arch = if std::env::consts::ARCH == "aarch64" { "arm64" } else { "x64" };
        let native = nm.join(format!("@supabase/cli-{os}-{arch}/bin/supabase"));
        for dir in [nm.join("supabase/dist"), nm.join(".bin"), native.parent().unwrap().to_path_buf()] {
            std::fs::create_dir_all(dir).unwrap();
        }
        std::fs::write(nm.join("supabase/package.json"), r#"{"name": "supabase", "version": "2.122.1"}"#).unwrap();
        std::fs::write(nm.join("supabase/dist/supabase.js"), "#!/usr/bin/env node\n").unwrap();
        std::fs::write(&native, "").unwrap();
        std::os::unix::fs::symlink("../supabase/dist/supabase.js", nm.join(".bin/supabase")).unwrap();
        let cli = super::SupabaseCli::at(&nm.join(".bin/supabase")).unwrap();
        assert_eq!((cli.version, cli.exec.canonicalize().unwrap()), ((2, 122, 1), native.canonicalize().unwrap()));
        // Anything else runs as found.
        let script = root.join("supabase");
        std::fs::write(&script, "#!/bin/sh\necho 2.60.0\n").unwrap();
        assert_eq!(super::native_binary(&script), None);
        std::fs::remove_dir_all(&root).unwrap();
    }

    #[test]
    fn versions_as_the_cli_prints_them() {
        assert_eq!(super::parse_version("2.122.1\n"), Some((2, 122, 1)));
        assert_eq!(super::parse_version("3.1.0"), Some((3, 1, 0)));
        assert_eq!(super::parse_version("nothing"), None);
    }
}
