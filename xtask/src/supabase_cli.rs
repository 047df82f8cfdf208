//! The Supabase CLI: found in the repo's `node_modules/.bin` (pinned by package.json), else on
//! PATH. Its major version decides how it takes a DSN: 2.x `--db-url URL`, 3.x `--remote=URL`.

use std::path::{Path, PathBuf};
use std::process::Command;

use crate::local::binaries::on_path;

/// The oldest CLI the runbook accepts.
pub const MIN_VERSION: (u32, u32) = (2, 48);

#[derive(Clone, Debug)]
pub struct SupabaseCli {
    pub path: PathBuf,
    pub version: (u32, u32, u32),
}

impl SupabaseCli {
    pub fn find(workdir: &Path) -> Option<SupabaseCli> {
        let local = workdir.join("node_modules/.bin/supabase");
        let path = if local.is_file() { local } else { on_path("supabase")? };
        let out = Command::new(&path).arg("--version").output().ok()?;
        let version = parse_version(&String::from_utf8_lossy(&out.stdout))?;
        Some(SupabaseCli { path, version })
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
