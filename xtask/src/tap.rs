//! The TAP reader for the RLS contract (SPEC §5 step 6): psql's exit code is not trusted, the log
//! is read. `ok N` / `not ok N` lines in aligned or unaligned psql output, the `1..N` plan, a run
//! that stopped short of its plan, and psql `ERROR:` lines all decide the result.

use crate::findings::{self, Finding};

#[derive(Clone, Debug, Default, PartialEq)]
pub struct TapReport {
    pub planned: Option<u32>,
    pub ran: u32,
    pub passed: u32,
    pub failed: u32,
    /// `(number, description)` of each failing test.
    pub failures: Vec<(u32, String)>,
    pub errors: Vec<Finding>,
}

impl TapReport {
    /// The plan was not met: fewer tests ran than planned, or no plan and no tests at all.
    pub fn ran_short(&self) -> bool {
        match self.planned {
            Some(planned) => self.ran < planned,
            None => self.ran == 0,
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
pub fn read(text: &str, log: Option<&str>) -> TapReport {
    let mut report = TapReport { errors: findings::scan(text, log), ..TapReport::default() };
    for raw in text.lines() {
        let line = cell(raw);
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
        let todo = description.to_ascii_uppercase().contains("# TODO");
        report.ran += 1;
        if ok || todo {
            report.passed += 1;
        } else {
            report.failed += 1;
            report.failures.push((number, description));
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
        let r = read(text, None);
        assert_eq!((r.planned, r.ran, r.passed, r.failed), (Some(3), 3, 2, 1));
        assert_eq!(r.failures, vec![(2, "anon sees no rows".to_string())]);
        assert!(!r.is_clean());
    }

    #[test]
    fn unaligned_output_that_dies_part_way_ran_short_with_an_error() {
        let text =
            "1..5\nok 1 - a\nok 2 - b\npsql:supabase/rls_tests.sql:40: ERROR:  relation \"missing\" does not exist\n";
        let r = read(text, None);
        assert_eq!((r.planned, r.ran, r.failed), (Some(5), 2, 0));
        assert!(r.ran_short());
        assert_eq!(r.errors.len(), 1);
        assert_eq!(r.errors[0].class, "undefined_object");
    }

    #[test]
    fn more_tests_than_planned_is_a_failure() {
        let r = read("1..1\nok 1 - a\nok 2 - b\n", None);
        assert!(r.ran_over());
        assert!(!r.is_clean());
    }

    #[test]
    fn todo_failures_do_not_count() {
        let r = read("1..1\nnot ok 1 - later # TODO not yet\n", None);
        assert!(r.is_clean());
    }
}
