//! The TAP reader for the RLS contract (runbook step 6): psql's exit code is not trusted, the log
//! is read. `ok N` / `not ok N` lines in aligned or unaligned psql output, the `1..N` plan, a run
//! that stopped short of its plan, and psql `ERROR:` lines all decide the result.

use serde::Serialize;

use super::findings::{self, Finding, Place};

#[derive(Clone, Debug, Default, PartialEq, Serialize)]
pub struct TapReport {
    pub planned: Option<u32>,
    pub ran: u32,
    pub passed: u32,
    pub failed: u32,
    /// `(number, description)` of each failing test.
    pub failures: Vec<(u32, String)>,
    /// pgTAP's diagnostics (`# have: ...`, `# want: ...`) under each failing test, by number.
    pub diagnostics: std::collections::BTreeMap<u32, Vec<String>>,
    pub errors: Vec<Finding>,
    /// Every test line, in order: `(number, description, passed)` (a TODO failure passes).
    pub tests: Vec<(u32, String, bool)>,
}

impl TapReport {
    /// The plan was not met: fewer tests ran than planned, or there was no plan line (pg_prove
    /// fails such a file too: nothing says how many tests should have run).
    pub fn ran_short(&self) -> bool {
        match self.planned {
            Some(planned) => self.ran < planned,
            None => true,
        }
    }

    /// More tests ran than planned: TAP counts that as a failure too (the plan is stale).
    pub fn ran_over(&self) -> bool {
        self.planned.is_some_and(|planned| self.ran > planned)
    }

    pub fn is_clean(&self) -> bool {
        self.failed == 0 && self.errors.is_empty() && !self.ran_short() && !self.ran_over()
    }
}

/// Read the TAP in a psql transcript.
pub fn read(text: &str, log: Option<&str>, place: Place) -> TapReport {
    let mut report = TapReport { errors: findings::scan(text, log, place), ..TapReport::default() };
    let mut last_failure: Option<u32> = None;
    // `not ok N - ... # TODO`: a TODO only if pgTAP's own diagnostic under it says
    // `Failed (TODO) test N` (what `todo()` makes); a description that merely holds `# TODO` fails.
    let mut todo_claimed: Vec<u32> = Vec::new();
    let mut todo_confirmed: Vec<u32> = Vec::new();
    let mut last_todo: Option<u32> = None;
    for raw in text.lines() {
        let line = cell(raw);
        let cleaned;
        let line = if line.contains('\x1b') {
            cleaned = findings::strip_ansi(line);
            cleaned.as_str()
        } else {
            line
        };
        if let (Some(diag), Some(n)) = (line.strip_prefix('#'), last_todo) {
            if diag.trim().starts_with(&format!("Failed (TODO) test {n}")) {
                todo_confirmed.push(n);
            }
            continue;
        }
        if let (Some(diag), Some(n)) = (line.strip_prefix('#'), last_failure) {
            let diag = diag.trim();
            if !diag.is_empty() && report.diagnostics.get(&n).map_or(0, Vec::len) < 20 {
                report.diagnostics.entry(n).or_default().push(crate::text::findings::clean_message(diag));
            }
            continue;
        }
        if let Some(n) = line.strip_prefix("1..").and_then(|rest| rest.split_whitespace().next()) {
            if let Ok(n) = n.parse::<u32>() {
                report.planned = Some(report.planned.unwrap_or(0) + n);
            }
            continue;
        }
        let (ok, rest) = if let Some(rest) = line.strip_prefix("not ok") {
            (false, rest)
        } else if let Some(rest) = line.strip_prefix("ok") {
            (true, rest)
        } else {
            continue;
        };
        let rest = rest.trim_start();
        let digits: String = rest.chars().take_while(char::is_ascii_digit).collect();
        let Ok(number) = digits.parse::<u32>() else { continue };
        let description = rest[digits.len()..].trim_start().trim_start_matches('-').trim().to_string();
        // `not ok N # TODO` is an expected failure; TAP does not count it against the run.
        let todo = !ok && description.to_ascii_uppercase().contains("# TODO");
        report.ran += 1;
        report.tests.push((number, description.clone(), ok || todo));
        last_todo = None;
        if ok || todo {
            report.passed += 1;
            last_failure = None;
            if todo {
                todo_claimed.push(number);
                last_todo = Some(number);
            }
        } else {
            report.failed += 1;
            report.failures.push((number, description));
            last_failure = Some(number);
        }
    }
    for n in todo_claimed.into_iter().filter(|n| !todo_confirmed.contains(n)) {
        if let Some(test) = report.tests.iter_mut().find(|t| t.0 == n && t.2) {
            test.2 = false;
            report.passed -= 1;
            report.failed += 1;
            report.failures.push((n, test.1.clone()));
        }
    }
    report
}

/// A psql output line reduced to its cell: aligned output indents values and marks continued
/// lines of a multi-line value with a trailing `+`.
fn cell(raw: &str) -> &str {
    let line = raw.trim();
    line.strip_suffix('+').map_or(line, str::trim_end)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn aligned_psql_output_with_a_failure() {
        let text = " plan \n------\n 1..3\n(1 row)\n\n           ok            \n-------------------------\n ok 1 - rls enabled\n(1 row)\n\n                 is                  \n---------------------------------------\n not ok 2 - anon sees no rows         +\n # Failed test 2: \"anon sees no rows\"+\n #         have: 1                    +\n #         want: 0\n(1 row)\n\n ok 3 - service role sees all\n";
        let r = read(text, None, Place::default());
        assert_eq!((r.planned, r.ran, r.passed, r.failed), (Some(3), 3, 2, 1));
        assert_eq!(r.failures, vec![(2, "anon sees no rows".to_string())]);
        assert_eq!(r.diagnostics[&2], vec!["Failed test 2: \"anon sees no rows\"", "have: 1", "want: 0"]);
        assert!(!r.is_clean());
    }

    #[test]
    fn unaligned_output_that_dies_part_way_ran_short_with_an_error() {
        let text =
            "1..5\nok 1 - a\nok 2 - b\npsql:supabase/rls_tests.sql:40: ERROR:  relation \"missing\" does not exist\n";
        let r = read(text, None, Place::default());
        assert_eq!((r.planned, r.ran, r.failed), (Some(5), 2, 0));
        assert!(r.ran_short());
        assert_eq!(r.errors.len(), 1);
        assert_eq!(r.errors[0].class, findings::Class::UndefinedObject);
    }

    #[test]
    fn more_tests_than_planned_is_a_failure() {
        let r = read("1..1\nok 1 - a\nok 2 - b\n", None, Place::default());
        assert!(r.ran_over());
        assert!(!r.is_clean());
    }

    #[test]
    fn todo_failures_do_not_count() {
        let r =
            read("1..1\nnot ok 1 - later # TODO not yet\n# Failed (TODO) test 1: \"later\"\n", None, Place::default());
        assert!(r.is_clean(), "{r:?}");
    }

    #[test]
    fn a_description_holding_todo_is_no_todo() {
        // What `select ok(false, 'sneaky # TODO')` prints: pgTAP's diagnostic names a plain failure.
        let r = read("1..1\nnot ok 1 - sneaky # TODO\n# Failed test 1: \"sneaky # TODO\"\n", None, Place::default());
        assert_eq!((r.passed, r.failed), (0, 1));
        assert!(!r.is_clean());
    }

    #[test]
    fn no_plan_line_fails_as_with_pg_prove() {
        let r = read("ok 1 - a\nok 2 - b\n", None, Place::default());
        assert!(r.ran_short() && !r.is_clean());
    }

    #[test]
    fn a_contracts_died_and_error_lines_are_its_errors() {
        use crate::text::findings::{Class, Finding, Place};
        let key = |f: &Finding| (f.class, f.sqlstate.clone().unwrap_or_default(), f.location().unwrap_or_default());
        let tap = super::read(include_str!("../../test_data/pgtap_contract_aligned.log"), None, Place::default());
        assert_eq!((tap.planned, tap.ran, tap.passed, tap.failed), (Some(4), 3, 1, 2));
        assert!(tap.ran_short());
        let errors: Vec<_> = tap.errors.iter().map(key).collect();
        assert_eq!(
            errors,
            vec![
                (Class::UndefinedObject, "42P01".into(), String::new()),
                (Class::UndefinedObject, "42P01".into(), "tap.sql:6".into())
            ],
            "died: and the ERROR line; not the 25P02 after it"
        );
    }
}
