//! `feedback/data/<YYYY-MM-DD>.md` (runbook steps 0 and 8): the day's header is created once, when
//! the file is absent; hand-off sections are only ever appended. Nothing a person wrote there is
//! changed.

use std::io::Write;
use std::path::Path;

use anyhow::{Context, Result};

use super::artifacts::write_atomic;

pub const CHECKLIST: &str = "docs/runbooks/agent_startup_checklist.md";
pub const DIRECTION: &str = "docs/directions/data.md";

/// The folder of the feedback files, under the workdir.
const FOLDER: &str = "feedback/data";

pub fn path(date: &str) -> String {
    format!("{FOLDER}/{date}.md")
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
    super::artifacts::real_dir(workdir, FOLDER)?;
    let file = workdir.join(&rel);
    if std::fs::symlink_metadata(&file).is_ok_and(|m| m.file_type().is_symlink()) {
        return Err(crate::exit::cannot_run(format!(
            "{rel} is a symlink: the tool appends the hand-off to it and never writes through a link; remove the link"
        )));
    }
    if file.exists() {
        return Ok((false, warnings));
    }
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
    super::artifacts::real_dir(workdir, FOLDER)?;
    let mut f = super::artifacts::open_append(&file, &rel)?;
    let ends_with_newline = std::fs::read(&file).map(|b| b.is_empty() || b.ends_with(b"\n")).unwrap_or(true);
    if !ends_with_newline {
        f.write_all(b"\n")?;
    }
    f.write_all(section.as_bytes()).with_context(|| format!("appending to {rel}"))?;
    Ok(rel)
}
