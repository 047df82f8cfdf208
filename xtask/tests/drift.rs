//! Staging as it really is: a migration file edited after it was applied no longer says what the
//! target ran. Step 3 compares each applied file, split as the Supabase CLI splits it, with the
//! statements its history row holds, and names the first statement that differs. `cargo xtask drift`
//! compares the target's catalog with its history replayed on a throwaway cluster.

mod common;

use common::{Sandbox, Stack};

/// One migration (a table with RLS), its rollback and a one-test contract, with `stack` as staging.
fn notes_tree(name: &str, stack: &Stack) -> Sandbox {
    let sandbox = Sandbox::new(name);
    sandbox.with_vault(&stack.dsn());
    sandbox.write("supabase/rls_tests.sql", "select plan(1);\nselect pass('contract runs');\n");
    sandbox.write(
        "supabase/migrations/20250101000000_notes.sql",
        "create table if not exists public.notes (id int primary key, body text);\n\
         alter table public.notes enable row level security;\n",
    );
    sandbox
        .write("supabase/migrations.backup/20250101000000_notes_rollback.sql", "drop table if exists public.notes;\n");
    sandbox
}

#[test]
fn a_migration_edited_after_it_applied_is_named_with_its_statement() {
    let stack = Stack::start();
    let sandbox = notes_tree("edited-after-apply", &stack);
    let first = sandbox.xtask(&["stage-rehearse", "--plan", "/nonexistent/plan.json", "--json"]);
    assert_eq!(first.code, Some(0), "{first}");
    assert!(!first.json()["findings"].to_string().contains("edited_after_apply"), "{first}");

    // Someone changes the applied file instead of writing a new migration.
    sandbox.write(
        "supabase/migrations/20250101000000_notes.sql",
        "create table if not exists public.notes (id int primary key, body text, pinned boolean);\n\
         alter table public.notes enable row level security;\n",
    );
    let second = sandbox.xtask(&["stage-rehearse", "--plan", "/nonexistent/plan.json", "--json"]);
    let s = second.json();
    let edited: Vec<&serde_json::Value> =
        s["findings"].as_array().unwrap().iter().filter(|f| f["class"] == "edited_after_apply").collect();
    assert_eq!(edited.len(), 1, "{second}");
    assert_eq!(edited[0]["severity"], "warning");
    assert_eq!(edited[0]["file"], "supabase/migrations/20250101000000_notes.sql");
    assert_eq!(edited[0]["line"], 1);
    assert_eq!(
        edited[0]["message"],
        "supabase/migrations/20250101000000_notes.sql was edited after it was applied here: statement 1 is \
         `create table if not exists public.notes (id int primary key, body text, pinned boolean)` in the file and \
         `create table if not exists public.notes (id int primary key, body text)` in the history"
    );
    assert!(edited[0]["hint"].as_str().unwrap().contains("supabase migration fetch"), "{}", edited[0]);
    sandbox.assert_no_secrets(&second);
}

/// The catalog and history of the target, as a fingerprint: drift must leave both as they were.
fn fingerprint(stack: &Stack) -> String {
    stack.admin_sql(
        "select md5(string_agg(x, ',' order by x)) from (\
         select c.oid::text || c.relname || c.relrowsecurity::text || coalesce(c.relacl::text, '') as x from pg_class c \
         union all select p.oid::text || md5(p.prosrc) from pg_proc p \
         union all select version || coalesce(name, '') from supabase_migrations.schema_migrations) s",
    )
}

#[test]
fn drift_on_an_untouched_target_is_none_and_each_hand_made_change_is_named_once() {
    let stack = Stack::start();
    let sandbox = Sandbox::with_repo_tree("drift-hand-made");
    sandbox.with_vault(&stack.dsn());
    let rehearsed = sandbox.xtask(&["stage-rehearse", "--plan", "/nonexistent/plan.json"]);
    assert_eq!(rehearsed.code, Some(0), "{rehearsed}");

    let before = fingerprint(&stack);
    let clean = sandbox.xtask(&["drift", "--json"]);
    assert_eq!(clean.code, Some(0), "an untouched target has no drift:\n{clean}");
    let report = clean.json();
    assert_eq!(report["replayed"], 9, "{clean}");
    assert_eq!(report["drift"], serde_json::json!([]), "{clean}");
    assert_eq!(fingerprint(&stack), before, "drift wrote nothing to the target");
    sandbox.assert_no_secrets(&clean);

    // What people do by hand in the dashboard's SQL editor.
    stack.admin_sql(
        "alter table public.inventory_items add column legacy_code text;\
         drop policy inventory_bundles_owner_select on public.inventory_bundles;\
         create index kb_articles_title_idx on public.kb_articles (title);\
         alter table public.approvals disable row level security;\
         revoke select on public.kb_chunks from authenticated;",
    );
    let fn_body = stack.admin_sql("select pg_get_functiondef('public.dashboard_pending_approvals'::regproc)");
    stack.admin_sql(&fn_body.replacen("$function$\n", "$function$\n-- patched during an incident\n", 1));
    let drifted = sandbox.xtask(&["drift", "--json"]);
    assert_eq!(drifted.code, Some(1), "{drifted}");
    let report = drifted.json();
    let found: Vec<(String, String, String)> = report["drift"]
        .as_array()
        .unwrap()
        .iter()
        .map(|d| {
            (
                d["kind"].as_str().unwrap().into(),
                d["object"].as_str().unwrap().into(),
                d["change"].as_str().unwrap().into(),
            )
        })
        .collect();
    let expect = |kind: &str, object: &str, change: &str| (kind.to_string(), object.to_string(), change.to_string());
    for want in [
        expect("column", "public.inventory_items.legacy_code", "extra_on_target"),
        expect("policy", "public.inventory_bundles.inventory_bundles_owner_select", "missing_on_target"),
        expect("index", "public.kb_articles_title_idx", "extra_on_target"),
        expect("table", "public.approvals", "differs"),
        expect("table", "public.kb_chunks", "differs"),
    ] {
        assert_eq!(found.iter().filter(|f| **f == want).count(), 1, "{want:?} once in:\n{found:#?}\n{drifted}");
    }
    assert_eq!(found.len(), 6, "each change once and nothing else:\n{found:#?}");
    let function = found.iter().find(|f| f.0 == "function").expect("the patched function");
    assert!(function.1.starts_with("public.dashboard_pending_approvals(") && function.2 == "differs", "{function:?}");
    let detail = |object: &str| {
        report["drift"].as_array().unwrap().iter().find(|d| d["object"] == object).unwrap()["detail"].clone()
    };
    assert_eq!(detail("public.approvals"), "rls: false on the target, true in the history");
    assert!(detail(&function.1).as_str().unwrap().contains("+ -- patched during an incident"), "{drifted}");
    let screen = sandbox.xtask(&["drift"]);
    assert_eq!(screen.code, Some(1), "{screen}");
    assert!(
        screen.stdout.contains(
            "public.inventory_items: column public.inventory_items.legacy_code on the target, made by no migration"
        ),
        "{screen}"
    );
}

#[test]
fn drift_names_edited_files_and_versions_missing_here_and_refuses_what_it_cannot_compare() {
    let stack = Stack::start();
    let sandbox = notes_tree("drift-edited", &stack);
    let rehearsed = sandbox.xtask(&["stage-rehearse", "--plan", "/nonexistent/plan.json"]);
    assert_eq!(rehearsed.code, Some(0), "{rehearsed}");

    // On local there is nothing to compare.
    let local = sandbox.xtask(&["drift", "--target", "local"]);
    assert_eq!(local.code, Some(2), "{local}");
    assert!(local.stderr.contains("drift compares a real database with its migration history"), "{local}");

    // The file is edited after it applied, and someone applied a version this tree lacks.
    sandbox.write(
        "supabase/migrations/20250101000000_notes.sql",
        "create table if not exists public.notes (id int primary key, body text, pinned boolean);\n\
         alter table public.notes enable row level security;\n",
    );
    stack.admin_sql(
        "insert into supabase_migrations.schema_migrations (version, name, statements) \
         values ('20990101000000', 'from_a_branch', array['select 1'])",
    );
    let run = sandbox.xtask(&["drift", "--json"]);
    assert_eq!(run.code, Some(1), "{run}");
    let r = run.json();
    assert_eq!(r["remote_only"], serde_json::json!(["20990101000000"]), "{run}");
    assert_eq!(r["edited"].as_array().unwrap().len(), 1, "{run}");
    assert_eq!(r["edited"][0]["version"], "20250101000000");
    assert_eq!(r["edited"][0]["statement"], 1);
    assert_eq!(
        r["edited"][0]["file_text"],
        "create table if not exists public.notes (id int primary key, body text, pinned boolean)"
    );
    assert_eq!(r["edited"][0]["history"], "create table if not exists public.notes (id int primary key, body text)");
    // The replay uses the file as it is now: the new column is "missing on the target".
    assert_eq!(r["drift"][0]["object"], "public.notes.pinned", "{run}");
    assert_eq!(r["drift"][0]["change"], "missing_on_target", "{run}");
    let log = sandbox.path(r["replay_log"].as_str().unwrap());
    assert!(std::fs::read_to_string(&log).unwrap().contains("20250101000000_notes.sql"), "the replay's log");

    // A history the tree cannot replay is not compared.
    sandbox.write(
        "supabase/migrations/20250101000000_notes.sql",
        "create table public.notes (id int references nowhere);\n",
    );
    let broken = sandbox.xtask(&["drift"]);
    assert_eq!(broken.code, Some(2), "{broken}");
    assert!(broken.stderr.contains("the history could not be replayed locally"), "{broken}");
    assert!(broken.stderr.contains("supabase/migrations/20250101000000_notes.sql"), "{broken}");
    sandbox.assert_no_secrets(&broken);
}

#[test]
fn a_rehearsal_on_a_drifted_staging_says_so_in_the_summary_the_page_and_the_hand_off() {
    let stack = Stack::start();
    let sandbox = notes_tree("drift-in-rehearsal", &stack);
    let first = sandbox.xtask(&["stage-rehearse", "--plan", "/nonexistent/plan.json", "--json"]);
    assert_eq!(first.code, Some(0), "{first}");
    assert!(!first.json()["findings"].to_string().contains("\"drift\""), "an untouched staging:\n{first}");
    assert!(first.stderr.contains("step 3 drift: none (staging is what its migration history makes)"), "{first}");

    stack.admin_sql("alter table public.notes add column legacy_code text");
    sandbox.write("supabase/migrations/20250102000000_tags.sql", "create table if not exists public.tags (id int primary key);\nalter table public.tags enable row level security;\n");
    sandbox.write("supabase/migrations.backup/20250102000000_tags_rollback.sql", "drop table if exists public.tags;\n");
    let run = sandbox.xtask(&["stage-rehearse", "--plan", "/nonexistent/plan.json", "--json"]);
    assert_eq!(run.code, Some(0), "drift is a warning by default:\n{run}");
    let s = run.json();
    let drift: Vec<&serde_json::Value> =
        s["findings"].as_array().unwrap().iter().filter(|f| f["class"] == "drift").collect();
    assert_eq!(drift.len(), 1, "{run}");
    assert_eq!(drift[0]["severity"], "warning");
    assert!(
        drift[0]["message"]
            .as_str()
            .unwrap()
            .starts_with("public.notes: column public.notes.legacy_code on staging, made by no migration: "),
        "{run}"
    );
    let dir = sandbox.rehearsal_dirs().pop().expect("the second rehearsal's dir");
    let page = std::fs::read_to_string(dir.join("index.html")).unwrap();
    assert!(page.contains("<h2>Staging differs from its history</h2>"), "the page names it");
    let date = dir.parent().unwrap().file_name().unwrap().to_string_lossy().to_string();
    let handoff = std::fs::read_to_string(sandbox.path(&format!("feedback/data/{date}.md"))).unwrap();
    assert!(handoff.contains("- Drift: 1 difference(s) between the target and its migration history"), "{handoff}");
    assert_eq!(s["migrations"][0]["reapply"]["status"], "applied", "the pending file was rehearsed as usual");

    // `[drift] fail = true` makes it an error: the rehearsal fails.
    let config = std::fs::read_to_string(sandbox.path("supabase/rehearsal.toml")).unwrap_or_default();
    sandbox.write("supabase/rehearsal.toml", &format!("{config}\n[drift]\nfail = true\n"));
    stack.admin_sql("alter table public.notes add column legacy_two text");
    let strict = sandbox.xtask(&["stage-rehearse", "--plan", "/nonexistent/plan.json", "--json"]);
    assert_eq!(strict.code, Some(1), "{strict}");
    let s = strict.json();
    let errors = s["findings"].as_array().unwrap().iter().filter(|f| f["class"] == "drift" && f["severity"] == "error");
    assert_eq!(errors.count(), 2, "{strict}");
    sandbox.assert_no_secrets(&strict);
}

/// `kind object change` of each difference a `drift --json` names.
fn named(run: &common::Run) -> Vec<String> {
    run.json()["drift"]
        .as_array()
        .unwrap()
        .iter()
        .map(|d| {
            format!(
                "{} {} {}",
                d["kind"].as_str().unwrap(),
                d["object"].as_str().unwrap(),
                d["change"].as_str().unwrap()
            )
        })
        .collect()
}

#[test]
fn write_migration_records_the_hand_fixes_so_the_history_catches_up_and_its_rollback_returns_to_the_history() {
    let stack = Stack::start();
    let sandbox = Sandbox::with_repo_tree("drift-write-migration");
    sandbox.with_vault(&stack.dsn());
    let applied = sandbox.xtask(&["apply", "--plan", "/nonexistent/plan.json"]);
    assert_eq!(applied.code, Some(0), "{applied}");

    // Nothing to record: no file.
    let none = sandbox.xtask(&["drift", "--write-migration", "nothing_yet"]);
    assert_eq!(none.code, Some(0), "{none}");
    assert!(none.stdout.contains("no migration written: there is no drift to record"), "{none}");
    let migrations = || std::fs::read_dir(sandbox.path("supabase/migrations")).unwrap().count();
    let count = migrations();

    // Hand fixes in the dashboard's SQL editor (as postgres): each kind the writer knows, and one
    // it must leave to a person.
    stack.admin_sql(
        "set role postgres;\
         alter table public.inventory_items add column legacy_code text default 'n/a';\
         alter table public.inventory_items add constraint legacy_code_short check (length(legacy_code) < 20);\
         drop policy inventory_bundles_owner_select on public.inventory_bundles;\
         create policy \"Staff read approvals\" on public.approvals for select to authenticated using (true);\
         create index kb_articles_title_idx on public.kb_articles (title);\
         alter table public.approvals force row level security;\
         revoke select on public.kb_chunks from authenticated;\
         create view public.open_approvals with (security_invoker = true) as select id from public.approvals;\
         alter table public.kb_articles drop column title cascade;",
    );
    let fn_body = stack.admin_sql("select pg_get_functiondef('public.dashboard_pending_approvals'::regproc)");
    stack.admin_sql(&fn_body.replacen("$function$\n", "$function$\n-- patched during an incident\n", 1));
    let before = fingerprint(&stack);

    let bad = sandbox.xtask(&["drift", "--write-migration", "fix/../../etc"]);
    assert_eq!(bad.code, Some(2), "{bad}");
    assert!(bad.stderr.contains("--write-migration fix/../../etc: a name of letters, digits, `_` and `-`"), "{bad}");

    let wrote = sandbox.xtask(&["drift", "--write-migration", "record_hand_fixes", "--json"]);
    assert_eq!(wrote.code, Some(1), "the drift is still there until the migration is applied:\n{wrote}");
    assert_eq!(fingerprint(&stack), before, "--write-migration wrote nothing to the target");
    let w = &wrote.json()["written"];
    let migration = w["migration"].as_str().expect("a migration").to_string();
    let rollback = w["rollback"].as_str().expect("a rollback").to_string();
    assert!(migration.starts_with("supabase/migrations/") && migration.ends_with("_record_hand_fixes.sql"), "{w}");
    let version = &migration["supabase/migrations/".len()..migration.len() - "_record_hand_fixes.sql".len()];
    assert_eq!(rollback, format!("supabase/migrations.backup/{version}_record_hand_fixes_rollback.sql"));
    assert_eq!(migrations(), count + 1);
    // A dropped column would delete data where the migration runs: listed, not written.
    let not_written: Vec<String> =
        w["not_written"].as_array().unwrap().iter().map(|n| format!("{} {}", n["object"], n["why"])).collect();
    assert_eq!(
        not_written,
        ["\"public.kb_articles.title\" \"dropping a column deletes its data: write it by hand\""],
        "{wrote}"
    );
    let text = sandbox.read(&migration);
    assert!(text.contains("--   column public.kb_articles.title (missing_on_target): dropping a column"), "{text}");
    assert!(text.contains("create policy \"Staff read approvals\" on public.approvals"), "{text}");
    sandbox.assert_no_secrets(&wrote);
    assert!(!text.contains(&stack.password) && !sandbox.read(&rollback).contains(&stack.password));

    // Applied on the target, the migration changes nothing there and its history lists it: the
    // next drift names only what was left to a person.
    let recorded = sandbox.xtask(&["apply", "--plan", "/nonexistent/plan.json"]);
    assert_eq!(recorded.code, Some(0), "{recorded}\n{text}");
    let after = sandbox.xtask(&["drift", "--json"]);
    assert_eq!(named(&after), ["column public.kb_articles.title missing_on_target"], "{after}");

    // Its rollback returns the target to what the history made before it: no drift against the
    // history without it, but the column a person must still handle.
    let back = sandbox.xtask(&["rollback", "--target", "staging", "--plan", "/nonexistent/plan.json"]);
    assert_eq!(back.code, Some(0), "{back}");
    let restored = sandbox.xtask(&["drift", "--json"]);
    let left = named(&restored);
    assert_eq!(left, ["column public.kb_articles.title missing_on_target"], "{restored}");
}

/// The history replayed on a throwaway cluster once is kept (beside the cluster template): the same
/// files on the same server are not replayed again, the log says whose replay is compared, and
/// the result is the same. What is kept is the replay's catalog, its transcript and when it ran,
/// in one JSON file under the cache's `replays/`, and nothing of the target's.
#[test]
fn a_history_replayed_once_is_read_back_the_next_time() {
    let stack = Stack::start();
    let sandbox = notes_tree("replay-kept", &stack);
    // A file no other test (or earlier run of this one) has, so no other replay is read back here.
    let unique = format!(
        "replay-kept {} {}",
        std::process::id(),
        std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).unwrap().as_nanos()
    );
    sandbox.write(
        "supabase/migrations/20250101000000_notes.sql",
        &format!(
            "-- {unique}\ncreate table if not exists public.notes (id int primary key, body text);\n\
             alter table public.notes enable row level security;\n"
        ),
    );
    let applied = sandbox.xtask(&["apply", "--plan", "/nonexistent/plan.json"]);
    assert_eq!(applied.code, Some(0), "{applied}");
    let replay_log =
        |run: &common::Run| std::fs::read_to_string(sandbox.path(run.json()["replay_log"].as_str().unwrap())).unwrap();
    let first = sandbox.xtask(&["drift", "--json"]);
    assert_eq!(first.code, Some(0), "{first}");
    assert!(!replay_log(&first).contains("that replay's catalog is compared"), "{}", replay_log(&first));
    let second = sandbox.xtask(&["drift", "--json"]);
    assert_eq!(second.code, Some(0), "{second}");
    let log = replay_log(&second);
    assert!(log.starts_with("-- the history: these 1 migration(s) were replayed on this local server at 20"), "{log}");
    assert!(log.contains("==> supabase/migrations/20250101000000_notes.sql"), "the first replay's transcript: {log}");
    assert_eq!(first.json()["drift"], second.json()["drift"]);

    let key = log.split("(replay ").nth(1).and_then(|rest| rest.split(')').next()).expect(&log).to_string();
    assert!(key.len() == 16 && key.bytes().all(|b| b.is_ascii_hexdigit()), "a key of 16 hex digits: {key}");
    let kept = [common::cache_dir().join("replays").join(format!("{key}.json"))];
    let replay: serde_json::Value = serde_json::from_str(&std::fs::read_to_string(&kept[0]).unwrap()).unwrap();
    assert!(replay["records"].as_array().unwrap().iter().any(|r| r.as_str().unwrap().contains("public.notes")));
    assert!(replay["replayed_at"].as_str().unwrap().ends_with('Z'));
    let text = std::fs::read_to_string(&kept[0]).unwrap();
    let host = format!("127.0.0.1:{}", stack.pooler.port);
    for secret in [common::PASSWORD, &xtask::database::local::pooler::url_encode(common::PASSWORD), &host] {
        assert!(!text.contains(secret), "nothing of the target is kept: {secret}");
    }
    sandbox.assert_no_secrets(&second);
}
