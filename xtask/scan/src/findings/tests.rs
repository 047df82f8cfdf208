use super::*;

fn one(text: &str) -> Finding {
    let found = scan(text, None, Place::default());
    assert_eq!(found.len(), 1, "{found:#?}");
    found.into_iter().next().unwrap()
}

#[test]
fn default_and_verbose_psql_errors_give_the_same_finding() {
    let default = "psql:supabase/migrations/1_a.sql:2: ERROR:  relation \"t\" already exists\n";
    let verbose = "psql:supabase/migrations/1_a.sql:2: ERROR:  42P07: relation \"t\" already exists\nLOCATION:  heap_create_with_catalog, heap.c:1146\n";
    for text in [default, verbose] {
        let f = &scan(text, Some("migration_apply.log"), Place::default())[0];
        assert_eq!(f.class, Class::DuplicateObject);
        assert_eq!(f.sqlstate.as_deref(), Some("42P07"));
        assert_eq!(f.location().as_deref(), Some("supabase/migrations/1_a.sql:2"));
        assert_eq!(f.message, "relation \"t\" already exists");
        assert!(f.hint.contains("supabase/migrations/1_a.sql:2"), "{}", f.hint);
    }
}

#[test]
fn notices_and_aborted_transaction_aftermath_are_not_findings() {
    let text = "psql:a.sql:1: NOTICE:  42P07: relation \"t\" already exists, skipping\n\
                psql:a.sql:3: ERROR:  25P02: current transaction is aborted, commands ignored until end of transaction block\n\
                WARNING:  there is no transaction in progress\n";
    assert!(scan(text, None, Place::default()).is_empty());
}

#[test]
fn pgtap_diagnostics_of_an_unexpected_error_are_findings() {
    let text = " not ok 3 - lives                +\n # Failed test 3: \"lives\"        +\n #         died: 42501: permission denied for table t+\n";
    let f = one(text);
    assert_eq!((f.class, f.sqlstate.as_deref()), (Class::PermissionDenied, Some("42501")));
    assert!(scan("#       caught: no exception\n", None, Place::default()).is_empty());
}

#[test]
fn a_server_that_goes_away_is_one_connection_finding() {
    let text = "FATAL:  terminating connection due to administrator command\nserver closed the connection unexpectedly\n\tThis probably means the server terminated abnormally\n\tbefore or while processing the request.\nconnection to server was lost\n";
    assert_eq!(one(text).class, Class::Connection);
    let alone = one("psql:supabase/migrations/1_a.sql:2: server closed the connection unexpectedly\n");
    assert_eq!(alone.class, Class::Connection);
}

#[test]
fn a_missing_extension_is_named_with_what_to_do() {
    let text = "psql:supabase/migrations/1_ext.sql:4: ERROR:  extension \"pg_hashids\" is not available\nDETAIL:  Could not open extension control file \"/usr/share/postgresql/15/extension/pg_hashids.control\": No such file or directory.\nHINT:  The extension must first be installed on the system where PostgreSQL is running.\n";
    let f = one(text);
    assert_eq!((f.class, f.sqlstate.as_deref()), (Class::ExtensionUnavailable, Some("0A000")));
    assert!(f.hint.starts_with("pg_hashids is on Supabase but not available on the local target"), "{}", f.hint);
    assert!(f.hint.contains("rehearse the migration at supabase/migrations/1_ext.sql:4 on staging"), "{}", f.hint);
    // PostgreSQL 15 words it differently; same class.
    let pg15 = "psql:supabase/migrations/2_ext.sql:1: ERROR:  could not open extension control file \"/x/extension/hypopg.control\": No such file or directory\n";
    let f = one(pg15);
    assert_eq!(f.class, Class::ExtensionUnavailable);
    assert!(f.hint.contains("apt-get install postgresql-<major>-hypopg"), "{}", f.hint);
    let unknown = one("psql:supabase/migrations/3_ext.sql:1: ERROR:  extension \"made_up\" is not available\n");
    assert!(unknown.hint.starts_with("Supabase does not offer the extension made_up"), "{}", unknown.hint);
}

#[test]
fn supabase_cli_failures_are_classified() {
    let refused = "failed to connect to postgres: failed to connect to `host=127.0.0.1 user=postgres database=postgres`: dial error (connect ECONNREFUSED 127.0.0.1:58995)\n";
    assert_eq!(one(refused).class, Class::Connection);
    let v6 = "failed to connect to postgres: failed to connect to `host=db.x.supabase.co user=postgres database=postgres`: dial error (dial tcp [2600:1f18::1]:5432: connect: network is unreachable)\n";
    assert_eq!(one(v6).class, Class::Ipv6Unreachable);
    let sql = "ERROR: relation \"t\" already exists (SQLSTATE 42P07)\n";
    let f = one(sql);
    assert_eq!(
        (f.class, f.sqlstate.as_deref(), f.message.as_str()),
        (Class::DuplicateObject, Some("42P07"), "relation \"t\" already exists")
    );
    assert!(scan("finished at 12:34:56 with code 1\n", None, Place::default()).is_empty());
}

#[test]
fn an_ipv6_address_is_ipv6_unreachable_in_every_clients_wording() {
    for text in [
        "psql: error: connection to server at \"db.x.supabase.co\" (2600:1f18::1), port 5432 failed: Network is unreachable\n",
        // Supabase CLI 3.x (pgx): the address in the host= of the connect string.
        "failed to connect to `host=2600:1f18:2e13:9d00::1 user=postgres database=postgres`: dial error (dial tcp: connect: network is unreachable)\n",
        "failed to connect to postgres: failed to connect to `host=db.x.supabase.co user=postgres database=postgres`: dial error (dial tcp [2600:1f18::1]:5432: connect: network is unreachable)\n",
    ] {
        let f = one(text);
        assert_eq!(f.class, Class::Ipv6Unreachable, "{text}");
        assert!(f.hint.contains("IPv4 session pooler"), "{}", f.hint);
    }
}

#[test]
fn coloured_output_reads_as_plain_and_shows_no_escape_codes() {
    // PG_COLOR=always: psql wraps the severity and the location in escape sequences.
    let text = "\x1b[1mpsql:a.sql:2: \x1b[0m\x1b[01;31mERROR:  \x1b[0mrelation \"t\" does not exist\n";
    let f = one(text);
    assert_eq!((f.class, f.line), (Class::UndefinedObject, Some(2)));
    assert!(!f.message.contains('\x1b') && !f.hint.contains('\x1b'));
}

#[test]
fn a_giant_message_is_cut() {
    let text = format!("ERROR:  {}\n", "x".repeat(100_000));
    let f = one(&text);
    assert_eq!(f.message.chars().count(), MAX_MESSAGE + 1);
    assert!(f.message.ends_with('…'));
}

#[test]
fn hints_fit_the_target_and_the_file() {
    let denied = "psql:supabase/migrations/1_a.sql:3: ERROR:  permission denied for schema cron\n";
    let local = &scan(denied, None, Place::on(TargetKind::Local))[0];
    assert!(!local.hint.contains("service_key"), "no staging advice on local: {}", local.hint);
    let remote = &scan(denied, None, Place::on(TargetKind::Remote))[0];
    assert!(remote.hint.contains("service_key_staging.env"), "{}", remote.hint);
    let test = "psql:supabase/tests/database/010.test.sql:7: ERROR:  relation \"public.x\" does not exist\n";
    let f = &scan(test, None, Place::on(TargetKind::Local))[0];
    assert_eq!(Place::default().for_file(f.file.as_deref()).file, FileKind::Test);
    assert!(!f.hint.contains("migration fetch") && f.hint.contains("earlier test file"), "{}", f.hint);
}

/// Every runtime class, in every kind of file: on local no advice about the staging vault or
/// service key, in a test or the seed no advice about migration history.
#[test]
fn no_hint_gives_staging_advice_on_local_or_history_advice_for_a_test() {
    let errors = [
        "could not connect to server: Connection refused",
        "password authentication failed for user \"postgres\"",
        "relation \"t\" already exists",
        "relation \"t\" does not exist",
        "cannot drop table t because other objects depend on it",
        "permission denied for table t",
        "canceling statement due to lock timeout",
        "canceling statement due to statement timeout",
        "syntax error at or near \"x\"",
        "CREATE INDEX CONCURRENTLY cannot run inside a transaction block",
        "extension \"vector\" is not available",
        "something else went wrong",
    ];
    for file in [
        "supabase/migrations/1_a.sql",
        "supabase/migrations.backup/1_a.sql",
        "supabase/tests/x/1.test.sql",
        "supabase/seed.sql",
    ] {
        for error in errors {
            let text = format!("psql:{file}:3: ERROR:  {error}\n");
            let f = &scan(&text, None, Place::on(TargetKind::Local))[0];
            for staging in ["vault", "service_key", "SUPABASE_SERVICE_KEY", "pooler"] {
                assert!(!f.hint.contains(staging), "local, {file}, {error}: {}", f.hint);
            }
            if !file.contains("migrations") {
                for history in ["migration fetch", "migration list", "repair", "version order"] {
                    assert!(!f.hint.contains(history), "{file}, {error}: {}", f.hint);
                }
            }
        }
    }
}

/// Real output captured from psql 15 and both CLI majors (xtask/test_data/).
#[test]
fn captured_logs_read_as_they_should() {
    let key = |f: &Finding| (f.class, f.sqlstate.clone().unwrap_or_default(), f.location().unwrap_or_default());
    for log in [
        include_str!("../../../test_data/psql_apply_default.log"),
        include_str!("../../../test_data/psql_apply_verbose.log"),
    ] {
        let found: Vec<_> = scan(log, None, Place::default()).iter().map(key).collect();
        assert_eq!(
            found,
            vec![
                (Class::DuplicateObject, "42P07".into(), "supabase/migrations/20250101000000_accounts.sql:4".into()),
                (Class::UndefinedObject, "42P01".into(), "supabase/migrations/20250102000000_views.sql:1".into()),
            ],
            "the NOTICE of IF NOT EXISTS is not a finding"
        );
    }
    for log in [
        include_str!("../../../test_data/supabase_cli_2x_refused.log"),
        include_str!("../../../test_data/supabase_cli_3x_refused.log"),
    ] {
        assert_eq!(one(log).class, Class::Connection);
    }
}

#[test]
fn the_servers_detail_and_hint_go_with_the_finding() {
    let text = "psql:supabase/migrations.backup/1_a_rollback.sql:4: ERROR:  cannot drop table inventory_items because other objects depend on it\nDETAIL:  constraint nodes_item_fkey on table guided_selling_nodes depends on table inventory_items\nHINT:  Use DROP ... CASCADE to drop the dependent objects too.\n";
    let f = one(text);
    assert_eq!(
        f.message,
        "cannot drop table inventory_items because other objects depend on it (constraint nodes_item_fkey on table guided_selling_nodes depends on table inventory_items)"
    );
    assert!(f.hint.ends_with("(psql's hint: Use DROP ... CASCADE to drop the dependent objects too.)"), "{}", f.hint);
    let typo = one("psql:supabase/migrations/2_b.sql:19: ERROR:  column \"requestor_id\" does not exist\nLINE 3:   requestor_id uuid references auth.users\n          ^\nHINT:  Perhaps you meant to reference the column \"approvals.requester_id\".\n");
    assert!(
        typo.hint.contains("(psql's hint: Perhaps you meant to reference the column \"approvals.requester_id\".)"),
        "{}",
        typo.hint
    );
}
