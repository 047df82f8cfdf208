//! What the manager and the CI read: the hand-off in the day's feedback file says what a run
//! amounts to (ready for sign-off only after a passed staging rehearsal; see staging.rs), with
//! links that open from that file; GitHub annotations and the step summary; the JUnit report
//! against its schema, its counts those of summary.json; and the sign-off page rendered in a real
//! browser (headless Chromium), green and red.

mod common;

use std::path::{Path, PathBuf};
use std::process::Command;

use common::{prepare, Sandbox};
use serde_json::Value;

fn green_tree(name: &str) -> Sandbox {
    let sandbox = Sandbox::with_repo_tree(name);
    common::copy_dir(&common::repo_root().join("docs"), &sandbox.path("docs"));
    sandbox
}

/// The day's feedback file's last hand-off section.
fn last_handoff(sandbox: &Sandbox) -> (PathBuf, String) {
    let dir = sandbox.path("feedback/data");
    let file = std::fs::read_dir(&dir).unwrap().flatten().next().unwrap().path();
    let text = std::fs::read_to_string(&file).unwrap();
    let section = text.rsplit("\n## Hand-off: ").next().unwrap().to_string();
    (file, section)
}

/// Every Markdown link target of `text`.
fn links(text: &str) -> Vec<String> {
    text.split("](").skip(1).map(|rest| rest.split(')').next().unwrap().to_string()).collect()
}

#[test]
fn the_handoff_never_says_ready_after_a_local_a_failed_or_an_interrupted_run() {
    prepare();
    let plan = "/nonexistent/plan.json";
    // Local and passed: a local check, not a sign-off.
    let green = green_tree("handoff-local");
    let run = green.xtask(&["stage-rehearse", "--plan", plan]);
    assert_eq!(run.code, Some(0), "{run}");
    let (file, section) = last_handoff(&green);
    assert!(section.contains("**A local check passed (`stage-rehearse` on a throwaway cluster): not a staging rehearsal, nothing to sign off; rehearse on staging next.**"), "{section}");
    assert!(!section.to_lowercase().contains("ready for"), "{section}");
    let targets = links(&section);
    assert!(targets[0].ends_with("/index.html") && targets[1].ends_with("/SUMMARY.md"), "{targets:?}");
    for target in &targets {
        assert!(file.parent().unwrap().join(target).is_file(), "{target} does not open from {}", file.display());
    }
    assert!(run.stdout.contains("verdict: A local check passed"), "{run}");

    // Failed: what blocks it, and what to do next.
    let red = common::red_tree("handoff-red");
    let run = red.xtask(&["stage-rehearse", "--plan", plan]);
    assert_eq!(run.code, Some(1), "{run}");
    let (_, section) = last_handoff(&red);
    assert!(section.contains("**Not ready for sign-off: the run found failures ("), "{section}");
    assert!(
        section.contains("- What blocks it (blockers, then error findings):\n")
            && section.contains("undefined_object 42703 supabase/migrations/20250102000000_bad_index.sql:1"),
        "{section}"
    );
    assert!(
        section.contains("- Next actions:\n  - amend supabase/migrations/20250102000000_bad_index.sql"),
        "{section}"
    );
    assert!(!section.contains("ready for the manager"), "{section}");

    // Interrupted part way.
    let slow = common::red_tree("handoff-interrupted");
    slow.write(
        "supabase/migrations/20250104000000_slow.sql",
        "do $$ begin raise notice 'slow migration started'; end $$;\nselect pg_sleep(300);\n",
    );
    let mut child = slow.spawn(&["stage-rehearse", "--plan", plan]);
    common::wait_for_log(&slow, "migration_apply.log", "slow migration started", &mut child);
    // SAFETY: kill(2) on our own child.
    unsafe { libc::kill(child.id() as i32, libc::SIGTERM) };
    assert_eq!(child.wait().unwrap().code(), Some(130));
    let (_, section) = last_handoff(&slow);
    assert!(section.contains("**Not ready for sign-off: the run was interrupted part way"), "{section}");
    assert!(section.contains("- Outcome: **halted** (exit 130)"), "{section}");
    assert!(
        section.contains("- Next actions:\n") && section.contains("  - read the logs of the interrupted run"),
        "{section}"
    );
}

#[test]
fn under_github_actions_findings_are_annotations_and_the_summary_a_step_summary() {
    prepare();
    let sandbox = common::red_tree("github");
    let summary_file = sandbox.root.join("step_summary.md");
    let mut cmd = sandbox.command(&["rls"]);
    cmd.env("GITHUB_ACTIONS", "true").env("GITHUB_STEP_SUMMARY", &summary_file);
    let run = common::Run::of(cmd);
    assert_eq!(run.code, Some(1), "{run}");
    let annotations: Vec<&str> = run.stdout.lines().filter(|l| l.starts_with("::")).collect();
    assert!(
        annotations.contains(&"::error file=supabase/migrations/20250102000000_bad_index.sql,line=1,title=undefined_object 42703::column \"plan\" does not exist%0AWhat to do: supabase/migrations/20250102000000_bad_index.sql:1 needs an object that is not there: the migration that creates it must come earlier in version order"),
        "{annotations:#?}"
    );
    assert!(
        annotations
            .iter()
            .any(|a| a
                .starts_with("::error file=supabase/rls_tests.sql,title=pgTAP test failed::not ok 2 - one is two%0A")),
        "{annotations:#?}"
    );
    assert!(
        annotations.iter().any(|a| a.starts_with(
            "::warning file=supabase/migrations/20250101000000_accounts.sql,line=4,title=rls_enabled_no_policy::table public.audit"
        )),
        "{annotations:#?}"
    );
    let md = std::fs::read_to_string(&summary_file).unwrap();
    assert!(
        md.starts_with("# Rehearsal summary: rehearsal_")
            && md.contains("| migration | apply | rollback | re-apply | apply time |"),
        "{md}"
    );
    assert!(md.contains("**Not ready for sign-off"), "{md}");

    // With --json, stdout is the JSON alone and the annotations go to stderr.
    let mut cmd = sandbox.command(&["rls", "--json"]);
    cmd.env("GITHUB_ACTIONS", "true").env("GITHUB_STEP_SUMMARY", &summary_file);
    let run = common::Run::of(cmd);
    assert_eq!(run.json()["outcome"], "failed");
    assert!(run.stderr.lines().any(|l| l.starts_with("::error file=")), "{run}");
    assert_eq!(std::fs::read_to_string(&summary_file).unwrap().matches("# Rehearsal summary").count(), 2, "appended");

    // Elsewhere, nothing of it unless asked for.
    let run = sandbox.xtask(&["rls"]);
    assert!(!run.stdout.contains("::error") && !run.stderr.contains("::error"), "{run}");
    let run = sandbox.xtask(&["lint", "--github"]);
    assert!(run.stdout.lines().any(|l| l.starts_with("::") && l.contains("file=supabase/migrations/")), "{run}");
}

/// xmllint, from Debian's libxml2-utils (installed by the tool's own apt path when root).
fn xmllint() -> PathBuf {
    xtask::tools::ensure_program("xmllint", "libxml2-utils", "the JUnit schema check").unwrap()
}

#[test]
fn the_junit_report_matches_its_schema_and_summary_json() {
    prepare();
    let sandbox = common::red_tree("junit");
    let report = sandbox.root.join("reports/junit.xml");
    let run = sandbox.xtask(&[
        "stage-rehearse",
        "--plan",
        "/nonexistent/plan.json",
        "--json",
        "--junit",
        report.to_str().unwrap(),
    ]);
    assert_eq!(run.code, Some(1), "{run}");
    let schema = Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/fixtures/junit.xsd");
    let check = Command::new(xmllint()).args(["--noout", "--schema"]).arg(&schema).arg(&report).output().unwrap();
    assert!(check.status.success(), "{}", String::from_utf8_lossy(&check.stderr));
    let xml = std::fs::read_to_string(&report).unwrap();
    let s: Value = run.json();
    let migrations = s["migrations"].as_array().unwrap().len();
    let rls = &s["rls"];
    let suite = |name: &str| -> &str {
        let start =
            xml.find(&format!("<testsuite name=\"{name}\"")).unwrap_or_else(|| panic!("no suite {name}:\n{xml}"));
        let end = start + xml[start..].find("</testsuite>").unwrap();
        &xml[start..end]
    };
    let migrations_suite = suite("migrations");
    assert_eq!(migrations_suite.matches("<testcase ").count(), 3 * migrations, "{xml}");
    let contract = suite("rls: supabase/rls_tests.sql");
    assert_eq!(contract.matches("<testcase ").count() as u64, rls["ran"].as_u64().unwrap(), "{xml}");
    assert_eq!(contract.matches("<failure ").count() as u64, rls["failed"].as_u64().unwrap(), "{xml}");
    assert!(contract.contains("name=\"2 - one is two\"") && contract.contains("have: 1"), "{xml}");
    assert!(migrations_suite.contains("classname=\"apply\" name=\"20250102000000_bad_index\""), "{xml}");
    let failures = migrations_suite.matches("<failure ").count();
    let failed_steps: usize = s["migrations"]
        .as_array()
        .unwrap()
        .iter()
        .map(|r| {
            ["apply", "rollback", "reapply"]
                .iter()
                .filter(|k| {
                    matches!(r[**k]["status"].as_str(), Some("failed" | "missing" | "interrupted" | "incomplete"))
                })
                .count()
        })
        .sum();
    assert_eq!(failures, failed_steps, "{xml}");
}

fn render(sandbox: &Sandbox, page: &Path, name: &str) -> (String, Vec<u8>) {
    let url = format!("file://{}", page.display());
    let profile = sandbox.root.join("chromium-profile");
    let dom = common::chromium(&["--dump-dom", &url], &profile);
    assert!(dom.status.success(), "chromium: {}", String::from_utf8_lossy(&dom.stderr));
    let shot = sandbox.root.join("page.png");
    let out =
        common::chromium(&[&format!("--screenshot={}", shot.display()), "--window-size=1280,2000", &url], &profile);
    assert!(out.status.success(), "chromium: {}", String::from_utf8_lossy(&out.stderr));
    let png = std::fs::read(&shot).unwrap();
    // Keep a copy for a person to look at.
    let keep = PathBuf::from(env!("CARGO_TARGET_TMPDIR")).join(format!("signoff-{name}.png"));
    std::fs::write(keep, &png).unwrap();
    (String::from_utf8_lossy(&dom.stdout).into_owned(), png)
}

#[test]
fn the_signoff_page_renders_in_a_browser_green_and_red() {
    prepare();
    let green = green_tree("page-green");
    let run = green.xtask(&["stage-rehearse", "--plan", "/nonexistent/plan.json"]);
    assert_eq!(run.code, Some(0), "{run}");
    let page = green.rehearsal_dir().join("index.html");
    let html = std::fs::read_to_string(&page).unwrap();
    assert!(
        !html.contains("<script") && !html.contains("src=") && !html.contains("http://") && !html.contains("https://"),
        "self-contained, no network"
    );
    let (dom, png) = render(&green, &page, "green");
    assert!(png.starts_with(b"\x89PNG\r\n\x1a\n") && png.len() > 10_000, "a screenshot");
    assert!(dom.contains("class=\"verdict local\" data-outcome=\"passed\" data-exit=\"0\""), "{dom}");
    assert!(dom.contains("A local check passed"), "{dom}");
    assert_eq!(dom.matches("<tr data-version=").count(), 9, "a row per migration");
    let grid = dom.split("<section id=\"migrations\">").nth(1).unwrap().split("</section>").next().unwrap();
    assert_eq!(grid.matches("<td class=\"ok\">").count(), 27, "apply, rollback, re-apply all ok");
    assert!(dom.contains("<section id=\"provenance\">") && dom.contains("<dt>Git commit</dt>"), "{dom}");
    assert!(
        dom.contains("<section id=\"signoff\" class=\"sign\"><h2>Sign-off</h2><p><strong>Not for sign-off.</strong>"),
        "{dom}"
    );
    assert!(!dom.contains("approved for the production window"), "nothing to approve on a local check: {dom}");
    assert!(dom.contains("<section id=\"steps\">") && dom.contains("5 rollback"), "{dom}");

    let red = common::red_tree("page-red");
    let run = red.xtask(&["stage-rehearse", "--plan", "/nonexistent/plan.json"]);
    assert_eq!(run.code, Some(1), "{run}");
    let page = red.rehearsal_dir().join("index.html");
    let (dom, _) = render(&red, &page, "red");
    assert!(dom.contains("class=\"verdict failed\" data-outcome=\"failed\" data-exit=\"1\""), "{dom}");
    assert!(dom.contains("<td class=\"bad\">FAILED</td>"), "{dom}");
    assert!(dom.contains("<section id=\"schema-diff\">") && dom.contains("relation public.notes"), "{dom}");
    assert!(
        dom.contains("<ul id=\"failing-tests\">") && dom.contains("one is two") && dom.contains("have: 1"),
        "{dom}"
    );
    // Each finding's link leads to its line in the embedded log.
    let link =
        dom.split("href=\"#").nth(1).expect("a finding links to its log line").split('"').next().unwrap().to_string();
    assert!(dom.contains(&format!("id=\"{link}\"")), "the link {link} has a target");
    let line = dom.split(&format!("id=\"{link}\">")).nth(1).unwrap().split("</span>").next().unwrap();
    assert!(line.contains("ERROR:") && line.contains("plan"), "{line}");
}
