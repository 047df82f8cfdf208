//! The session as fresh as `psql -f` finds it, between files: what `DISCARD ALL` does, one
//! statement each (`DISCARD ALL` itself cannot run in a transaction block or a multi-statement
//! string). Settings, role and session authorization, cursors, prepared statements, listeners,
//! advisory locks, cached plans, temporary tables and sequence state.

/// Each statement and the command tag psql prints for it.
pub const STATEMENTS: [(&str, &str); 10] = [
    ("close all", "CLOSE CURSOR ALL"),
    ("set session authorization default", "SET"),
    ("reset role", "RESET"),
    ("reset all", "RESET"),
    ("deallocate all", "DEALLOCATE ALL"),
    ("unlisten *", "UNLISTEN"),
    ("do $reset$ begin perform pg_advisory_unlock_all(); end $reset$", "DO"),
    ("discard plans", "DISCARD PLANS"),
    ("discard temp", "DISCARD TEMP"),
    ("discard sequences", "DISCARD SEQUENCES"),
];

/// The statements, each followed by `end` (`";\n"` for psql's input, `"\\; "` inside a chain).
pub fn joined(end: &str) -> String {
    STATEMENTS.iter().map(|(statement, _)| format!("{statement}{end}")).collect()
}

/// Their command tags, in order.
pub fn tags() -> impl Iterator<Item = &'static str> {
    STATEMENTS.iter().map(|(_, tag)| *tag)
}
