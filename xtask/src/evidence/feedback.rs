//! `feedback/data/<YYYY-MM-DD>.md` (runbook steps 0 and 8): the day's header is created once, when
//! the file is absent; hand-off sections are only ever appended. Nothing a person wrote there is
//! changed.

use std::io::Write;
use std::path::Path;

use anyhow::{Context, Result};

use super::artifacts::write_atomic;

pub const CHECKLIST: &str = "docs/runbooks/agent_startup_checklist.md";
pub const DIRECTION: &str = "docs/directions/data.md";

pub fn path(date: &str) -> String {
    format!("feedback/data/{date}.md")
}

/// Create today's header if the file does not exist. Returns whether it was created, and a
/// warning for each alignment doc that is missing (a warning, not a stop).
pub fn ensure_header(
    workdir: &Path,
    date: &str,
    objective: &str,
    commands: &[String],
    artifact_dir: &str,
) -> Result<(bool, Vec<String>)> {
    let mut warnings = Vec::new();
    for doc in [CHECKLIST, DIRECTION] {
        if !workdir.join(doc).is_file() {
            warnings.push(format!("{doc} is missing: runbook step 0 reads it before a rehearsal; restore it"));
        }
    }
    let rel = path(date);
    let file = workdir.join(&rel);
    if file.exists() {
        return Ok((false, warnings));
    }
    std::fs::create_dir_all(file.parent().expect("has a parent")).with_context(|| format!("creating {rel}"))?;
    let mut text = format!("# Data feedback: {date}\n\n## Objective\n\n{objective}\n\n## Planned commands\n\n```sh\n");
    for c in commands {
        text.push_str(c);
        text.push('\n');
    }
    text.push_str(&format!(
        "```\n\n## Artifact folder\n\n`{artifact_dir}/`\n\n## Alignment\n\n- Checklist: `{CHECKLIST}`{}\n- Direction: `{DIRECTION}`{}\n",
        if workdir.join(CHECKLIST).is_file() { "" } else { " (missing)" },
        if workdir.join(DIRECTION).is_file() { "" } else { " (missing)" },
    ));
    // Whole or nothing, and never over a file a person created meanwhile.
    if !file.exists() {
        write_atomic(&file, text.as_bytes())?;
    }
    Ok((true, warnings))
}

/// Append a section to the day's file, after whatever is there.
pub fn append(workdir: &Path, date: &str, section: &str) -> Result<String> {
    let rel = path(date);
    let file = workdir.join(&rel);
    std::fs::create_dir_all(file.parent().expect("has a parent")).with_context(|| format!("creating {rel}"))?;
    let ends_with_newline = std::fs::read(&file).map(|b| b.is_empty() || b.ends_with(b"\n")).unwrap_or(true);
    let mut f =
        std::fs::OpenOptions::new().create(true).append(true).open(&file).with_context(|| format!("opening {rel}"))?;
    if !ends_with_newline {
        f.write_all(b"\n")?;
    }
    f.write_all(section.as_bytes()).with_context(|| format!("appending to {rel}"))?;
    Ok(rel)
}
