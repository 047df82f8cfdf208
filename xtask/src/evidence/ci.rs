//! CI-native output, on by itself under GitHub Actions (`GITHUB_ACTIONS=true`) and with `--github`
//! anywhere: every finding as a workflow annotation (`::error file=…,line=…,title=…::…`, warnings
//! as `::warning`), failing pgTAP tests too, so they show on the pull request's diff; and the
//! summary, as Markdown, appended to `$GITHUB_STEP_SUMMARY`. Annotations go to stdout, or to
//! stderr under `--json` (stdout is the JSON's alone); the runner reads both.

use std::io::Write;
use std::path::PathBuf;

use anyhow::{Context, Result};

use super::summary::Summary;
use crate::text::findings::{Finding, Severity};

/// How a run presents its result besides the screen.
#[derive(Clone, Debug, Default)]
pub struct Present {
    /// summary.json on stdout instead of the screen.
    pub json: bool,
    /// Write a JUnit XML report here.
    pub junit: Option<PathBuf>,
    /// GitHub Actions annotations and step summary.
    pub github: bool,
}

impl Present {
    /// `--github` given, or running under GitHub Actions.
    pub fn new(json: bool, junit: Option<PathBuf>, github_flag: bool) -> Present {
        let github = github_flag || std::env::var("GITHUB_ACTIONS").is_ok_and(|v| v == "true");
        Present { json, junit, github }
    }
}

/// A workflow command's message: `%`, CR and LF escaped, other control characters shown escaped.
fn data(text: &str) -> String {
    let text = text.replace('%', "%25").replace('\r', "%0D").replace('\n', "%0A");
    crate::text::escape::one_line(&text).into_owned()
}

/// How many annotations of one level GitHub shows for a step; more are dropped unseen.
pub const SHOWN_PER_LEVEL: usize = 10;

/// GitHub's limit on one step's summary.
pub const STEP_SUMMARY_LIMIT: usize = 1024 * 1024;

/// The first [`SHOWN_PER_LEVEL`] errors and warnings, in order, and when some are left out one
/// notice that says how many and where they all are.
pub fn capped(lines: &[String]) -> Vec<String> {
    let (mut errors, mut warnings) = (0usize, 0usize);
    let mut kept = Vec::new();
    for line in lines {
        let count = if line.starts_with("::error") { &mut errors } else { &mut warnings };
        *count += 1;
        if *count <= SHOWN_PER_LEVEL {
            kept.push(line.clone());
        }
    }
    let (errors, warnings) = (errors.saturating_sub(SHOWN_PER_LEVEL), warnings.saturating_sub(SHOWN_PER_LEVEL));
    if errors + warnings > 0 {
        kept.push(format!(
            "::notice title={}::{}",
            property("More annotations"),
            data(&format!(
                "{errors} more error(s) and {warnings} more warning(s) than GitHub shows for one step: \
                 every one is in the step summary, SUMMARY.md and the sign-off page"
            ))
        ));
    }
    kept
}

/// A workflow command's property value: also `:` and `,`.
fn property(text: &str) -> String {
    data(text).replace(':', "%3A").replace(',', "%2C")
}

/// One annotation line for a finding.
pub fn annotation(f: &Finding) -> String {
    let level = if f.severity == Severity::Error { "error" } else { "warning" };
    let mut props = Vec::new();
    if let Some(file) = &f.file {
        props.push(format!("file={}", property(file)));
        if let Some(line) = f.line {
            props.push(format!("line={line}"));
        }
    }
    let title = match &f.sqlstate {
        Some(code) => format!("{} {code}", f.class.as_str()),
        None => f.class.as_str().to_string(),
    };
    props.push(format!("title={}", property(&title)));
    format!("::{level} {}::{}", props.join(","), data(&format!("{}\nWhat to do: {}", f.message, f.hint)))
}

/// Every annotation of a run: its findings (those the run measured or read from a log first, lint's
/// after), then each failing pgTAP test (on its file).
pub fn annotations(s: &Summary) -> Vec<String> {
    // What the run saw before what lint guessed from the text: GitHub shows ten per level.
    let mut findings: Vec<&Finding> = s.findings.iter().collect();
    findings.sort_by_key(|f| crate::text::lint::RULES.iter().any(|(c, _, _)| *c == f.class));
    let mut lines: Vec<String> = findings.into_iter().map(annotation).collect();
    if let Some(rls) = &s.rls {
        for f in &rls.failures {
            let mut message = format!("not ok {} - {}", f.number, f.description);
            for d in &f.diagnostics {
                message.push('\n');
                message.push_str(d);
            }
            lines.push(format!(
                "::error file={},title={}::{}",
                property(&f.file),
                property("pgTAP test failed"),
                data(&message)
            ));
        }
    }
    lines
}

/// Print the annotations ([`capped`]) and append the Markdown `summary(room)` renders within
/// `room` bytes to `$GITHUB_STEP_SUMMARY` when it is set, so the step's summary stays under
/// GitHub's limit with whatever the step wrote there before.
pub fn publish(present: &Present, annotations: &[String], summary: &dyn Fn(usize) -> String) -> Result<()> {
    if !present.github {
        return Ok(());
    }
    let text: String = capped(annotations).iter().map(|a| format!("{a}\n")).collect();
    if present.json {
        eprint!("{text}");
    } else {
        crate::out::text(&text).context("printing the annotations")?;
    }
    let Some(path) = std::env::var_os("GITHUB_STEP_SUMMARY").filter(|p| !p.is_empty()) else { return Ok(()) };
    let before = std::fs::metadata(&path).map_or(0, |m| m.len() as usize);
    let markdown = summary(STEP_SUMMARY_LIMIT.saturating_sub(before + 1));
    if markdown.is_empty() {
        return Ok(());
    }
    let shown = PathBuf::from(&path).display().to_string();
    let mut file =
        super::artifacts::open_append(std::path::Path::new(&path), &format!("$GITHUB_STEP_SUMMARY ({shown})"))?;
    file.write_all(markdown.as_bytes())
        .and_then(|_| file.write_all(b"\n"))
        .with_context(|| format!("appending to $GITHUB_STEP_SUMMARY ({})", PathBuf::from(&path).display()))
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::text::findings::Class;

    #[test]
    fn a_finding_becomes_one_escaped_annotation_line() {
        let f = Finding {
            class: Class::DuplicateObject,
            severity: Severity::Error,
            sqlstate: Some("42P07".into()),
            file: Some("supabase/migrations/1_a,b.sql".into()),
            line: Some(4),
            message: "relation \"t\" already exists: 100%".into(),
            hint: "use IF NOT EXISTS".into(),
            log: None,
        };
        assert_eq!(
            annotation(&f),
            "::error file=supabase/migrations/1_a%2Cb.sql,line=4,title=duplicate_object 42P07::relation \"t\" already \
             exists: 100%25%0AWhat to do: use IF NOT EXISTS"
        );
    }
}
