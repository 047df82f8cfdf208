//! Text from a tree or a server never reaches a terminal, a CI log or a Markdown summary as code:
//! escape sequences are shown escaped, a message cannot start a line of its own (a forged
//! workflow command), Markdown and HTML render as text, and the step summary and the annotations
//! stay within what GitHub shows.

mod common;

use common::prepare;

/// What a hostile migration raises: a terminal title and colour change (the classifier drops
/// those), a carriage return, a backspace and a right-to-left override, HTML, Markdown, a code
/// fence, and a line feed followed by a workflow command.
const RAISE: &str = r"do $$ begin raise exception E'boom \x1b]0;pwned\x07\x1b[2J\rfake\x08 \u202Eevil <img src=x onerror=alert(1)> **bold** [link](https://evil.example) ``` | cell\n::warning file=x::forged'; end $$;
";

#[test]
fn hostile_server_text_is_escaped_on_the_screen_in_annotations_and_in_markdown() {
    prepare();
    let sandbox = common::Sandbox::new("untrusted-text");
    sandbox.write("supabase/migrations/20250101000000_<i>x&y_*name*.sql", "create table public.t (id int);\n");
    sandbox.write("supabase/migrations/20250102000000_hostile.sql", RAISE);
    // 1 200 failing tests, each with a 1 KiB description: more than GitHub's 1 MiB step summary.
    sandbox.write(
        "supabase/rls_tests.sql",
        "begin;\nselect plan(1201);\nselect ok(true, E'fine \\x1b[31m <script>x</script>');\n\
         select ok(false, E'\\x1b[2J``` bad ' || i || ' ' || repeat('y', 1000)) from generate_series(1, 1200) i;\n\
         select * from finish();\nrollback;\n",
    );
    let step_summary = sandbox.root.join("step_summary.md");
    std::fs::write(&step_summary, "earlier steps wrote this\n").unwrap();
    let mut cmd = sandbox.command(&["rls"]);
    cmd.env("GITHUB_ACTIONS", "true").env("GITHUB_STEP_SUMMARY", &step_summary).env_remove("CLICOLOR_FORCE");
    let run = common::Run::of(cmd);
    assert_eq!(run.code, Some(1), "{run}");

    // No escape sequence anywhere the runner or a terminal reads, and no forged line.
    for (stream, text) in [("stdout", &run.stdout), ("stderr", &run.stderr)] {
        assert!(
            !text.contains(['\x1b', '\x07', '\r', '\x08', '\u{202e}']),
            "{stream} holds a control character: {text:?}"
        );
        for line in text.lines().filter(|l| l.starts_with("::")) {
            assert!(
                line.starts_with("::error file=") || line.starts_with("::notice title=More annotations::"),
                "{stream}: a line the tool did not write as a workflow command: {line}"
            );
        }
    }
    assert!(run.stdout.contains(" \\u{202e}evil <img"), "{}", run.stdout);

    // Annotations: GitHub shows ten per level for a step; the rest are counted in one notice.
    let annotations: Vec<&str> = run.stdout.lines().filter(|l| l.starts_with("::")).collect();
    assert_eq!(annotations.iter().filter(|l| l.starts_with("::error")).count(), 10, "{annotations:#?}");
    let notice = annotations.last().unwrap();
    let summary: serde_json::Value =
        serde_json::from_str(&std::fs::read_to_string(sandbox.rehearsal_dirs()[0].join("summary.json")).unwrap())
            .unwrap();
    let findings = summary["findings"].as_array().unwrap();
    let errors = findings.iter().filter(|f| f["severity"] == "error").count() + 1200;
    let warnings = findings.len() + 1200 - errors;
    assert!(
        notice.starts_with(&format!(
            "::notice title=More annotations::{} more error(s) and {} more warning(s)",
            errors - 10,
            warnings.saturating_sub(10)
        )),
        "{notice}"
    );
    assert!(annotations.iter().any(|l| l.contains("boom")), "the migration's error is annotated");

    // The step summary: within 1 MiB with what was there before, failures first, the rest counted.
    let step = std::fs::read_to_string(&step_summary).unwrap();
    assert!(step.starts_with("earlier steps wrote this\n# Rehearsal summary: "), "{}", &step[..200]);
    assert!(step.len() <= 1024 * 1024, "{} bytes", step.len());
    assert!(step.contains("**Not ready for sign-off"), "the verdict survives: {}", &step[..2000]);
    assert!(step.contains("more failing test(s), see [the sign-off page](index.html)"), "the cut is said");
    assert!(step.contains("boom"), "the migration's error finding survives the cut");

    // SUMMARY.md (stage-rehearse writes one): every failure, as text, never as markup.
    let run = sandbox.xtask(&["stage-rehearse", "--plan", "/nonexistent/plan.json"]);
    assert_eq!(run.code, Some(1), "{run}");
    let dir = sandbox.rehearsal_dirs().pop().unwrap();
    let md = std::fs::read_to_string(dir.join("SUMMARY.md")).unwrap();
    assert!(!md.contains(['\x1b', '\r', '\x08', '\u{202e}']), "a control character in SUMMARY.md");
    let raw: Vec<&str> = md.lines().filter(|l| outside_code(l).contains(['<', '>'])).collect();
    assert!(raw.is_empty(), "HTML outside a code span: {raw:#?}");
    assert!(md.contains("&lt;img src=x onerror=alert(1)&gt;") || md.contains("`` "), "{md}");
    assert!(md.contains("| `20250101000000_<i>x&y_*name*` | applied |"), "{run}");
    assert_eq!(md.matches(" not ok ").count(), 1200, "SUMMARY.md keeps every failure");
    for line in md.lines().filter(|l| l.contains("boom")) {
        assert!(!line.contains("\n::"), "{line}");
    }
    // A fence in a description cannot open a code block: every fence the file opens, it closes.
    let fences = md.lines().filter(|l| l.trim_start().starts_with("```")).count();
    assert_eq!(fences % 2, 0, "unbalanced fences in SUMMARY.md");
}

/// A Markdown line without its code spans (a backtick run up to the next run of the same length).
fn outside_code(line: &str) -> String {
    let mut out = String::new();
    let mut rest = line;
    while let Some(start) = rest.find('`') {
        out.push_str(&rest[..start]);
        let run = rest[start..].len() - rest[start..].trim_start_matches('`').len();
        let after = &rest[start + run..];
        let fence = "`".repeat(run);
        let mut end = None;
        let mut at = 0;
        while let Some(i) = after[at..].find(&fence) {
            let i = at + i;
            let longer = after[i + run..].starts_with('`') || (i > 0 && after[..i].ends_with('`'));
            if !longer {
                end = Some(i);
                break;
            }
            at = i + after[i..].len() - after[i..].trim_start_matches('`').len();
        }
        match end {
            Some(i) => rest = &after[i + run..],
            None => {
                out.push_str(&rest[start..]);
                rest = "";
            }
        }
    }
    out.push_str(rest);
    out
}
