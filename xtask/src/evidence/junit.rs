//! `--junit PATH`: the run as a JUnit XML report any CI's test reporter reads. One `<testsuite>`
//! for the migrations, with a test case per migration and step (apply, rollback, re-apply; a step
//! that did not run is `<skipped/>`), and one per RLS test file, with a test case per pgTAP test
//! and one more for the file itself when its plan was not met or it raised an error. The counts
//! match summary.json: `rls.ran` test cases of pgTAP tests, `rls.failed` of them failing.

use std::path::Path;

use anyhow::{Context, Result};

use super::artifacts::write_atomic;
use super::summary::{MigrationRow, RlsFile, Status, Summary};
use crate::text::findings::Finding;

/// Text for an XML attribute or element: markup escaped, characters XML 1.0 cannot hold dropped.
fn esc(text: &str) -> String {
    let mut out = String::with_capacity(text.len());
    for c in text.chars() {
        match c {
            '&' => out.push_str("&amp;"),
            '<' => out.push_str("&lt;"),
            '>' => out.push_str("&gt;"),
            '"' => out.push_str("&quot;"),
            '\'' => out.push_str("&apos;"),
            '\t' | '\n' | '\r' => out.push(c),
            c if (c as u32) < 0x20 || c == '\u{fffe}' || c == '\u{ffff}' => {}
            c => out.push(c),
        }
    }
    out
}

/// Test cases, failures, errors and skips of a suite.
#[derive(Clone, Copy, Default)]
struct Counts {
    tests: usize,
    failures: usize,
    errors: usize,
    skipped: usize,
}

impl Counts {
    fn add(&mut self, other: Counts) {
        self.tests += other.tests;
        self.failures += other.failures;
        self.errors += other.errors;
        self.skipped += other.skipped;
    }

    fn attributes(&self) -> String {
        format!(
            "tests=\"{}\" failures=\"{}\" errors=\"{}\" skipped=\"{}\"",
            self.tests, self.failures, self.errors, self.skipped
        )
    }
}

fn seconds(ms: Option<u64>) -> String {
    format!("{:.3}", ms.unwrap_or(0) as f64 / 1000.0)
}

/// A test case; `problem` is `(element, message, body)` for a failure, `None` when it passed.
fn case(class: &str, name: &str, time: &str, problem: Option<(&str, String, String)>) -> String {
    let head = format!("    <testcase classname=\"{}\" name=\"{}\" time=\"{time}\"", esc(class), esc(name));
    match problem {
        None => format!("{head}/>\n"),
        Some(("skipped", message, _)) => {
            format!("{head}>\n      <skipped message=\"{}\"/>\n    </testcase>\n", esc(&message))
        }
        Some((element, message, body)) => format!(
            "{head}>\n      <{element} message=\"{}\" type=\"{element}\">{}</{element}>\n    </testcase>\n",
            esc(&message),
            esc(&body)
        ),
    }
}

fn finding_text(f: &Option<Finding>) -> (String, String) {
    match f {
        Some(f) => (
            format!("{} {}", f.class.as_str(), f.location().unwrap_or_default()),
            format!("{}\nWhat to do: {}", f.message, f.hint),
        ),
        None => ("failed".into(), String::new()),
    }
}

fn migration_cases(r: &MigrationRow, counts: &mut Counts) -> String {
    let name = format!("{}_{}", r.version, r.name);
    let mut out = String::new();
    let steps = [
        ("apply", r.apply.status, &r.apply.error, r.apply.duration_ms),
        ("rollback", r.rollback.status, &r.rollback.error, None),
        ("re-apply", r.reapply.status, &r.reapply.error, r.reapply.duration_ms),
    ];
    for (step, status, error, ms) in steps {
        counts.tests += 1;
        let problem = match status {
            Status::Applied | Status::RolledBack => None,
            Status::Skipped => {
                counts.skipped += 1;
                Some(("skipped", "not run".to_string(), String::new()))
            }
            Status::Missing => {
                counts.failures += 1;
                Some(("failure", "no rollback script".to_string(), format!("write the rollback of {}", r.file)))
            }
            Status::Incomplete => {
                counts.failures += 1;
                Some((
                    "failure",
                    "incomplete".to_string(),
                    "the schema after the rollbacks still shows this migration".to_string(),
                ))
            }
            Status::Interrupted => {
                counts.failures += 1;
                Some(("failure", "interrupted".to_string(), String::new()))
            }
            Status::Failed => {
                counts.failures += 1;
                let (message, body) = finding_text(error);
                Some(("failure", message, body))
            }
        };
        out.push_str(&case(step, &name, &seconds(ms), problem));
    }
    out
}

fn rls_cases(f: &RlsFile, failures: &[(u32, Vec<String>)], counts: &mut Counts) -> String {
    let mut out = String::new();
    for t in &f.tests {
        counts.tests += 1;
        let problem = (!t.ok).then(|| {
            counts.failures += 1;
            let diagnostics =
                failures.iter().find(|(n, _)| *n == t.number).map(|(_, d)| d.join("\n")).unwrap_or_default();
            ("failure", format!("not ok {}", t.number), diagnostics)
        });
        out.push_str(&case(&f.path, &format!("{} - {}", t.number, t.description), "0", problem));
    }
    if f.errors > 0 || f.ran_short || f.ran_over {
        counts.tests += 1;
        counts.errors += 1;
        let planned = f.planned.map_or("no plan".to_string(), |p| format!("{p} planned"));
        let message = if f.ran_over {
            format!("{} ran, {planned}", f.ran)
        } else {
            format!("{} error(s); {} of {planned} ran", f.errors, f.ran)
        };
        out.push_str(&case(&f.path, "(the file: plan and errors)", "0", Some(("error", message, String::new()))));
    }
    out
}

/// Render the report.
pub fn render(s: &Summary) -> String {
    let mut suites = String::new();
    let mut total = Counts::default();
    if !s.migrations.is_empty() {
        let mut counts = Counts::default();
        let cases: String = s.migrations.iter().map(|r| migration_cases(r, &mut counts)).collect();
        suites.push_str(&format!("  <testsuite name=\"migrations\" {}>\n{cases}  </testsuite>\n", counts.attributes()));
        total.add(counts);
    }
    if let Some(rls) = &s.rls {
        for f in &rls.files {
            let failures: Vec<(u32, Vec<String>)> =
                rls.failures.iter().filter(|x| x.file == f.path).map(|x| (x.number, x.diagnostics.clone())).collect();
            let mut counts = Counts::default();
            let cases = rls_cases(f, &failures, &mut counts);
            suites.push_str(&format!(
                "  <testsuite name=\"rls: {}\" {}>\n{cases}  </testsuite>\n",
                esc(&f.path),
                counts.attributes()
            ));
            total.add(counts);
        }
    }
    format!(
        "<?xml version=\"1.0\" encoding=\"UTF-8\"?>\n<testsuites name=\"cargo xtask {}\" {}>\n{suites}</testsuites>\n",
        esc(&s.command),
        total.attributes()
    )
}

pub fn write(path: &Path, s: &Summary) -> Result<()> {
    if let Some(parent) = path.parent().filter(|p| !p.as_os_str().is_empty()) {
        std::fs::create_dir_all(parent).with_context(|| format!("creating {}", parent.display()))?;
    }
    write_atomic(path, render(s).as_bytes()).with_context(|| format!("writing the JUnit report {}", path.display()))
}
