//! The session as fresh as `psql -f` finds it, between files: what `DISCARD ALL` does, one
//! statement each (`DISCARD ALL` itself cannot run in a transaction block or a multi-statement
//! string). Settings, role and session authorization, cursors, prepared statements, listeners,
//! advisory locks, cached plans, temporary tables and sequence state.

/// The advisory locks go, as `DISCARD ALL` lets them go, except the working session's hold on the
/// rehearsal's sessions key ([`crate::database::lock::SESSIONS_KEY`]), taken again when it was held:
/// a run's session holds it for as long as it lives, after every file.
const UNLOCK: &str = "do $reset$ declare held boolean := exists (select 1 from pg_catalog.pg_locks where \
    locktype = 'advisory' and pid = pg_catalog.pg_backend_pid() and classid = 1919248485 and objid = 1634890546 \
    and objsubid = 1 and granted); begin perform pg_catalog.pg_advisory_unlock_all(); if held then \
    perform pg_catalog.pg_advisory_lock_shared(8243109477607437106); end if; end $reset$";

/// Each statement and the command tag psql prints for it.
pub const STATEMENTS: [(&str, &str); 10] = [
    ("close all", "CLOSE CURSOR ALL"),
    ("set session authorization default", "SET"),
    ("reset role", "RESET"),
    ("reset all", "RESET"),
    ("deallocate all", "DEALLOCATE ALL"),
    ("unlisten *", "UNLISTEN"),
    (UNLOCK, "DO"),
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

#[cfg(test)]
mod tests {
    #[test]
    fn the_kept_key_is_the_sessions_key() {
        let key = crate::database::lock::SESSIONS_KEY;
        let (hi, lo) = ((key >> 32) as u32, key as u32);
        assert!(super::UNLOCK.contains(&format!("classid = {hi} and objid = {lo}")));
        assert!(super::UNLOCK.contains(&format!("pg_advisory_lock_shared({key})")));
    }
}
