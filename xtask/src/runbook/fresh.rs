//! The session as fresh as `psql -f` finds it, between files: what `DISCARD ALL` does, one
//! statement each (`DISCARD ALL` itself cannot run in a transaction block or a multi-statement
//! string). Settings, role and session authorization, cursors, prepared statements, listeners,
//! advisory locks, cached plans, temporary tables and sequence state.

use crate::database::lock;

/// The advisory locks go, as `DISCARD ALL` lets them go, but for the run's own ([`lock`]): a
/// locked run's session keeps the run lock and its shared hold on the sessions key, never letting
/// go of them (no other run can slip in between), and takes them again when the file released
/// them (the run lock only if no other run took it meanwhile: the next file's check says so).
fn unlock(locked: bool) -> String {
    let (k1, k2) = (lock::halves(lock::KEY), lock::halves(lock::SESSIONS_KEY));
    let again = if locked {
        format!(
            " if not {} then perform pg_catalog.pg_try_advisory_lock({}); end if; if not {} then perform \
             pg_catalog.pg_advisory_lock_shared({}); end if;",
            lock::held(lock::KEY, "ExclusiveLock"),
            lock::KEY,
            lock::held(lock::SESSIONS_KEY, "ShareLock"),
            lock::SESSIONS_KEY
        )
    } else {
        String::new()
    };
    format!(
        "do $reset$ declare l record; begin for l in select classid, objid, objsubid, mode = 'ShareLock' as shared \
         from pg_catalog.pg_locks where locktype = 'advisory' and pid = pg_catalog.pg_backend_pid() and granted and not \
         (objsubid = 1 and ((classid = {} and objid = {} and mode = 'ExclusiveLock') or (classid = {} and objid = {} and \
         mode = 'ShareLock'))) loop loop exit when not exists (select 1 from pg_catalog.pg_locks k where k.locktype = \
         'advisory' and k.pid = pg_catalog.pg_backend_pid() and k.classid = l.classid and k.objid = l.objid and \
         k.objsubid = l.objsubid and (k.mode = 'ShareLock') = l.shared and k.granted); case when l.objsubid = 1 and \
         l.shared then perform pg_catalog.pg_advisory_unlock_shared((l.classid::bigint << 32) | l.objid::bigint); when \
         l.objsubid = 1 then perform pg_catalog.pg_advisory_unlock((l.classid::bigint << 32) | l.objid::bigint); when \
         l.shared then perform pg_catalog.pg_advisory_unlock_shared(l.classid::int4, l.objid::int4); else perform \
         pg_catalog.pg_advisory_unlock(l.classid::int4, l.objid::int4); end case; end loop; end loop;{again} end $reset$",
        k1.0, k1.1, k2.0, k2.1
    )
}

/// Each statement and the command tag psql prints for it; `locked`: the session holds the run
/// lock, which it keeps ([`unlock`]).
pub fn statements(locked: bool) -> [(String, &'static str); 10] {
    [
        ("close all".into(), "CLOSE CURSOR ALL"),
        ("set session authorization default".into(), "SET"),
        ("reset role".into(), "RESET"),
        ("reset all".into(), "RESET"),
        ("deallocate all".into(), "DEALLOCATE ALL"),
        ("unlisten *".into(), "UNLISTEN"),
        (unlock(locked), "DO"),
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
        let kept = super::unlock(true);
        assert!(kept.contains(&format!("classid = {hi} and objid = {lo} and mode = 'ShareLock'")));
        assert!(kept.contains(&format!("pg_advisory_lock_shared({})", crate::database::lock::SESSIONS_KEY)));
        assert!(!super::unlock(false).contains("pg_try_advisory_lock"), "a session without the lock takes none");
    }
}
