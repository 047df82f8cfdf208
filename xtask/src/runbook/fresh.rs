//! The session as fresh as `psql -f` finds it, between files: what `DISCARD ALL` does, one
//! statement each (`DISCARD ALL` itself cannot run in a transaction block or a multi-statement
//! string). Settings, role and session authorization, cursors, prepared statements, listeners,
//! advisory locks, cached plans, temporary tables and sequence state.

use crate::database::lock;

/// `RESET ALL`, but for the chain's own record of the relations as they were
/// ([`crate::runbook::chain::impact`]), which the next file of a chain starts from; and the
/// advisory locks go, as `DISCARD ALL` lets them go, but for the run's own ([`lock`]): a locked
/// run's session keeps the run lock and its shared hold on the sessions key, never letting go of
/// them (no other run can slip in between), and takes them again when the file released them
/// (the run lock only if no other run took it meanwhile: the next file's check says so). One read
/// of `pg_locks` when the file left no advisory lock of its own, the usual case.
fn reset(locked: bool) -> String {
    let (k1, k2) = (lock::halves(lock::KEY), lock::halves(lock::SESSIONS_KEY));
    let again = if locked {
        format!(
            " if not k1 then perform pg_catalog.pg_try_advisory_lock({}); end if; if not k2 then perform \
             pg_catalog.pg_advisory_lock_shared({}); end if;",
            lock::KEY,
            lock::SESSIONS_KEY
        )
    } else {
        String::new()
    };
    let (is_k1, is_k2) = (
        format!("(objsubid = 1 and classid = {} and objid = {} and mode = 'ExclusiveLock')", k1.0, k1.1),
        format!("(objsubid = 1 and classid = {} and objid = {} and mode = 'ShareLock')", k2.0, k2.1),
    );
    format!(
        "do $reset$ declare b text := pg_catalog.current_setting('rehearsal.base', true); others boolean; k1 boolean; \
         k2 boolean; l record; begin reset all; if b is not null then perform pg_catalog.set_config('rehearsal.base', b, false); \
         end if; select coalesce(pg_catalog.bool_or(not ({is_k1} or {is_k2})), false), coalesce(pg_catalog.bool_or({is_k1}), false), \
         coalesce(pg_catalog.bool_or({is_k2}), false) into others, k1, k2 from pg_catalog.pg_locks where locktype = 'advisory' \
         and pid = pg_catalog.pg_backend_pid() and granted; if others then for l in select classid, objid, objsubid, \
         mode = 'ShareLock' as shared from pg_catalog.pg_locks where locktype = 'advisory' and pid = pg_catalog.pg_backend_pid() \
         and granted and not ({is_k1} or {is_k2}) loop loop exit when not exists (select 1 from pg_catalog.pg_locks k where \
         k.locktype = 'advisory' and k.pid = pg_catalog.pg_backend_pid() and k.classid = l.classid and k.objid = l.objid and \
         k.objsubid = l.objsubid and (k.mode = 'ShareLock') = l.shared and k.granted); case when l.objsubid = 1 and l.shared \
         then perform pg_catalog.pg_advisory_unlock_shared((l.classid::bigint << 32) | l.objid::bigint); when l.objsubid = 1 \
         then perform pg_catalog.pg_advisory_unlock((l.classid::bigint << 32) | l.objid::bigint); when l.shared then perform \
         pg_catalog.pg_advisory_unlock_shared(l.classid::int4, l.objid::int4); else perform \
         pg_catalog.pg_advisory_unlock(l.classid::int4, l.objid::int4); end case; end loop; end loop; end if;{again} end $reset$"
    )
}

/// Each statement and the command tag psql prints for it; `locked`: the session holds the run
/// lock, which it keeps ([`unlock`]).
pub fn statements(locked: bool) -> [(String, &'static str); 9] {
    [
        ("close all".into(), "CLOSE CURSOR ALL"),
        ("set session authorization default".into(), "SET"),
        ("reset role".into(), "RESET"),
        ("deallocate all".into(), "DEALLOCATE ALL"),
        ("unlisten *".into(), "UNLISTEN"),
        (reset(locked), "DO"),
        ("discard plans".into(), "DISCARD PLANS"),
        ("discard temp".into(), "DISCARD TEMP"),
        ("discard sequences".into(), "DISCARD SEQUENCES"),
    ]
}

/// The statements, each followed by `end` (`";\n"` for psql's input, `"\\; "` inside a chain).
pub fn joined(locked: bool, end: &str) -> String {
    statements(locked).iter().map(|(statement, _)| format!("{statement}{end}")).collect()
}

/// Their command tags, in order.
pub fn tags() -> impl Iterator<Item = &'static str> {
    statements(false).into_iter().map(|(_, tag)| tag)
}

#[cfg(test)]
mod tests {
    #[test]
    fn the_run_keeps_its_own_keys() {
        let (hi, lo) = crate::database::lock::halves(crate::database::lock::SESSIONS_KEY);
        let kept = super::reset(true);
        assert!(kept.contains(&format!("classid = {hi} and objid = {lo} and mode = 'ShareLock'")));
        assert!(kept.contains(&format!("pg_advisory_lock_shared({})", crate::database::lock::SESSIONS_KEY)));
        assert!(!super::reset(false).contains("pg_try_advisory_lock"), "a session without the lock takes none");
    }
}
