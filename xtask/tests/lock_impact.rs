//! What a migration does to a live table, measured while it runs: on a tree whose first migration
//! loads 20 000 orders, each dangerous change gets its `lock_risk` and each safe one none, and the
//! lock each file's impact reports is the one PostgreSQL 15 itself takes for that statement, read
//! by this test from `pg_locks` on a cluster of its own (not typed in by hand).

mod common;

use common::{prepare, Sandbox};

const SETUP: &str = "create table if not exists public.customers (id int primary key, name text);\n\
alter table public.customers enable row level security;\n\
insert into public.customers select i, 'c' || i from generate_series(1, 2000) i;\n\
create table if not exists public.orders (id int primary key, customer_id int, ref varchar(20), qty int);\n\
alter table public.orders enable row level security;\n\
insert into public.orders select i, 1 + i % 2000, 'r' || i, i % 7 from generate_series(1, 20000) i;\n\
create materialized view if not exists public.order_totals as select customer_id, sum(qty) as qty from public.orders group by 1;\n\
analyze public.customers;\nanalyze public.orders;\nanalyze public.order_totals;\n";

/// `(name, migration, rollback, dangerous)`.
const CHANGES: &[(&str, &str, &str, bool)] = &[
    ("bigint", "alter table public.orders alter column id type bigint", "alter table public.orders alter column id type int", true),
    ("index", "create index orders_ref_idx on public.orders (ref)", "drop index if exists public.orders_ref_idx", true),
    (
        "fk",
        "alter table public.orders add constraint orders_customer_fk foreign key (customer_id) references public.customers (id)",
        "alter table public.orders drop constraint if exists orders_customer_fk",
        true,
    ),
    ("not_null", "alter table public.orders alter column qty set not null", "alter table public.orders alter column qty drop not null", true),
    (
        "uuid_default",
        "alter table public.orders add column token uuid default gen_random_uuid()",
        "alter table public.orders drop column if exists token",
        true,
    ),
    (
        "check",
        "alter table public.orders add constraint orders_qty_check check (qty >= 0)",
        "alter table public.orders drop constraint if exists orders_qty_check",
        true,
    ),
    (
        "unique",
        "alter table public.orders add constraint orders_ref_key unique (ref)",
        "alter table public.orders drop constraint if exists orders_ref_key",
        true,
    ),
    ("refresh", "refresh materialized view public.order_totals", "select 1", true),
    ("nullable", "alter table public.orders add column note text", "alter table public.orders drop column if exists note", false),
    (
        "widen",
        "alter table public.orders alter column ref type varchar(40)",
        "alter table public.orders alter column ref type varchar(20)",
        false,
    ),
    (
        "fk_not_valid",
        "alter table public.orders add constraint orders_customer_nv foreign key (customer_id) references public.customers (id) not valid",
        "alter table public.orders drop constraint if exists orders_customer_nv",
        false,
    ),
    (
        "check_not_valid",
        "alter table public.orders add constraint orders_qty_nv check (qty >= 0) not valid",
        "alter table public.orders drop constraint if exists orders_qty_nv",
        false,
    ),
    (
        "policy",
        "create policy orders_read on public.orders for select to authenticated using (true)",
        "drop policy if exists orders_read on public.orders",
        false,
    ),
];

/// What PostgreSQL does to `relation` for `statement`, read in a transaction that is rolled
/// back: its strongest lock from `pg_locks` (an index's lock counts for its table, unless the
/// statement made the index), whether its relfilenode changed, whether it was scanned.
fn ground_truth(admin: &str, statement: &str, relation: &str) -> (String, bool, bool) {
    let sql = format!(
        "begin;\nselect relfilenode as node, coalesce(pg_stat_get_xact_numscans('{relation}'::regclass), 0) as scans \
         from pg_class where oid = '{relation}'::regclass \\gset\n{statement};\n\
         select (select l.mode from pg_locks l left join pg_index i on i.indexrelid = l.relation \
         where l.pid = pg_backend_pid() and l.locktype = 'relation' and coalesce(i.indrelid, l.relation) = '{relation}'::regclass \
         and (i.indexrelid is null or (select c.xmin::text from pg_class c where c.oid = i.indexrelid) <> pg_current_xact_id()::text) \
         order by case l.mode when 'AccessExclusiveLock' then 8 when 'ExclusiveLock' then 7 when 'ShareRowExclusiveLock' then 6 \
         when 'ShareLock' then 5 when 'ShareUpdateExclusiveLock' then 4 else 0 end desc limit 1), \
         (select relfilenode from pg_class where oid = '{relation}'::regclass) <> :node, \
         coalesce(pg_stat_get_xact_numscans('{relation}'::regclass), 0) > :scans;\nrollback;\n"
    );
    let out = std::process::Command::new(xtask::tools::find_client("psql").unwrap())
        .args([admin, "-X", "-q", "-A", "-t", "-v", "ON_ERROR_STOP=1", "-F", "|"])
        .arg("-f")
        .arg("-")
        .stdin(std::process::Stdio::piped())
        .stdout(std::process::Stdio::piped())
        .stderr(std::process::Stdio::piped())
        .spawn()
        .and_then(|mut child| {
            std::io::Write::write_all(child.stdin.as_mut().unwrap(), sql.as_bytes())?;
            drop(child.stdin.take());
            child.wait_with_output()
        })
        .unwrap();
    assert!(out.status.success(), "{statement}: {}", String::from_utf8_lossy(&out.stderr));
    let text = String::from_utf8_lossy(&out.stdout);
    let cells: Vec<&str> = text.trim().split('|').collect();
    (cells[0].to_string(), cells[1] == "t", cells[2] == "t")
}

#[test]
fn each_dangerous_change_gets_its_lock_risk_and_the_measured_lock_is_postgres_own() {
    prepare();
    let sandbox = Sandbox::new("lock-impact");
    sandbox.write("supabase/rls_tests.sql", "select plan(1);\nselect pass('contract runs');\n");
    sandbox.write("supabase/migrations/20250101000000_orders.sql", SETUP);
    sandbox.write(
        "supabase/migrations.backup/20250101000000_orders_rollback.sql",
        "drop materialized view if exists public.order_totals;\ndrop table if exists public.orders;\ndrop table if exists public.customers;\n",
    );
    for (n, (name, change, undo, _)) in CHANGES.iter().enumerate() {
        let version = format!("202501020000{n:02}");
        sandbox.write(&format!("supabase/migrations/{version}_{name}.sql"), &format!("{change};\n"));
        sandbox.write(&format!("supabase/migrations.backup/{version}_{name}_rollback.sql"), &format!("{undo};\n"));
    }
    // CONCURRENTLY runs outside a transaction: what it takes by definition, not measured.
    sandbox.write(
        "supabase/migrations/20250103000000_concurrent.sql",
        "create index concurrently if not exists orders_qty_idx on public.orders (qty);\n",
    );
    sandbox.write(
        "supabase/migrations.backup/20250103000000_concurrent_rollback.sql",
        "drop index concurrently if exists public.orders_qty_idx;\n",
    );
    let run = sandbox.xtask(&["stage-rehearse", "--plan", "/nonexistent/plan.json", "--json"]);
    let s = run.json();
    let concurrent = s["migrations"].as_array().unwrap().iter().find(|r| r["version"] == "20250103000000").unwrap();
    assert_eq!(
        concurrent["apply"]["impact"],
        serde_json::json!([{"relation": "public.orders", "lock": "ShareUpdateExclusiveLock", "blocks": "nothing",
            "rewrite": false, "scan": false, "rows": null, "rows_from": "estimate", "held_ms": 0, "line": 1, "measured": false}]),
        "{concurrent}"
    );
    assert_eq!(s["outcome"], "passed", "lock_risk is a warning: {run}");

    // PostgreSQL's own locks, on a cluster of the test's with the same tables.
    let server = xtask::tools::server::ensure_server_with_pgtap().unwrap();
    let cluster = xtask::database::local::LocalCluster::start(&server).unwrap();
    let admin = cluster.admin_dsn();
    let setup = std::process::Command::new(xtask::tools::find_client("psql").unwrap())
        .args([admin.as_str(), "-X", "-q", "-v", "ON_ERROR_STOP=1", "-c", SETUP])
        .output()
        .unwrap();
    assert!(setup.status.success(), "{}", String::from_utf8_lossy(&setup.stderr));

    let findings = s["findings"].as_array().unwrap();
    for (n, (name, change, _, dangerous)) in CHANGES.iter().enumerate() {
        let file = format!("supabase/migrations/202501020000{n:02}_{name}.sql");
        let row = s["migrations"].as_array().unwrap().iter().find(|r| r["file"] == file.as_str()).unwrap();
        let relation = if *name == "refresh" { "public.order_totals" } else { "public.orders" };
        let impact = row["apply"]["impact"].as_array().unwrap_or_else(|| panic!("{name}: no impact: {row}"));
        let measured =
            impact.iter().find(|i| i["relation"] == relation).unwrap_or_else(|| panic!("{name}: {impact:?}"));
        let (lock, rewrite, scan) = ground_truth(&admin, change, relation);
        assert_eq!(measured["lock"], lock.as_str(), "{name}: {measured}");
        assert_eq!(measured["rewrite"], rewrite, "{name}: {measured}");
        assert_eq!(measured["scan"], scan, "{name}: {measured}");
        assert_eq!(measured["measured"], true);
        assert_eq!(measured["line"], 1);
        assert!(measured["rows"].as_u64().is_some(), "{name}: the planner's estimate: {measured}");
        let risks: Vec<&serde_json::Value> =
            findings.iter().filter(|f| f["class"] == "lock_risk" && f["file"] == file.as_str()).collect();
        if *dangerous {
            // (A foreign key can read the table it references whole too: one risk per table.)
            let on: Vec<&&serde_json::Value> = risks
                .iter()
                .filter(|r| r["message"].as_str().unwrap().contains(&format!(" on {relation} (~")))
                .collect();
            assert_eq!(on.len(), 1, "{name}: {risks:#?}");
            assert!(on[0]["message"].as_str().unwrap().contains(" ms while it "), "{}", on[0]["message"]);
            assert_eq!(on[0]["severity"], "warning");
        } else {
            assert!(risks.is_empty(), "{name} is safe: {risks:#?}");
        }
    }
    // The rewrite that the type change makes, and that a widening does not.
    let row = |name: &str| {
        s["migrations"]
            .as_array()
            .unwrap()
            .iter()
            .find(|r| r["file"].as_str().unwrap().ends_with(&format!("_{name}.sql")))
            .unwrap()
    };
    assert_eq!(row("bigint")["apply"]["impact"][0]["rewrite"], true);
    assert_eq!(row("widen")["apply"]["impact"][0]["rewrite"], false);
    assert_eq!(row("not_null")["apply"]["impact"][0]["scan"], true, "SET NOT NULL reads the table whole");
    assert_eq!(row("bigint")["rollback"]["impact"][0]["rewrite"], true, "the rollback's impact too");
    // Relations the file created are not listed.
    assert!(row("orders")["apply"]["impact"].is_null(), "{}", row("orders"));

    // lint agrees where it can know without a database: each dangerous file has its static rule.
    let static_rule = [
        ("bigint", "column_type_rewrite"),
        ("index", "index_not_concurrent"),
        ("fk", "constraint_not_valid"),
        ("not_null", "set_not_null_scan"),
        ("uuid_default", "volatile_default"),
        ("check", "constraint_not_valid"),
        ("unique", "unique_without_index"),
        ("refresh", "refresh_not_concurrent"),
    ];
    let lint = sandbox.xtask(&["lint", "--json"]);
    let linted = lint.json()["findings"].as_array().unwrap().clone();
    for (n, (name, _, _, dangerous)) in CHANGES.iter().enumerate() {
        let file = format!("supabase/migrations/202501020000{n:02}_{name}.sql");
        let classes: Vec<&str> =
            linted.iter().filter(|f| f["file"] == file.as_str()).map(|f| f["class"].as_str().unwrap()).collect();
        match static_rule.iter().find(|(p, _)| p == name) {
            Some((_, rule)) => assert!(*dangerous && classes.contains(rule), "{name}: {classes:?}"),
            None => assert!(
                !classes.iter().any(|c| static_rule.iter().any(|(_, r)| r == c)),
                "{name} is safe for lint too: {classes:?}"
            ),
        }
    }

    // Shown where people look: under the migration on the screen, a table in SUMMARY.md.
    let screen = sandbox.xtask(&["stage-rehearse", "--plan", "/nonexistent/plan.json", "--github"]);
    assert!(
        screen.stdout.lines().any(|l| l.starts_with(
            "::warning file=supabase/migrations/20250102000000_bigint.sql,line=1,title=lock_risk::ALTER TABLE holds ACCESS EXCLUSIVE"
        )),
        "an annotation on the statement's line: {}",
        screen.stdout
    );
    let bigint = screen.stdout.lines().skip_while(|l| !l.contains("_bigint ")).nth(1).unwrap_or_default();
    assert!(
        bigint.starts_with("  locks public.orders ACCESS EXCLUSIVE ")
            && bigint.contains(" ms (reads and writes wait), rewrite, ~20000 rows, line 1"),
        "{}",
        screen.stdout
    );
    let dir = sandbox.rehearsal_dirs().pop().unwrap();
    let md = std::fs::read_to_string(dir.join("SUMMARY.md")).unwrap();
    assert!(md.contains("## What it locks"), "{md}");
    assert!(
        md.lines().any(|l| l.starts_with("| `20250102000000_bigint` | apply | `public.orders` | ~20000 | AccessExclusiveLock | reads and writes | rewrite | ")),
        "{md}"
    );
    // The hand-off names each lock risk.
    let feedback = std::fs::read_dir(sandbox.path("feedback/data")).unwrap().flatten().next().unwrap().path();
    let handoff = std::fs::read_to_string(feedback).unwrap();
    let handoff = handoff.rsplit("\n## Hand-off: ").next().unwrap();
    assert!(handoff.contains("- Lock risks (measured on this target's rows"), "{handoff}");
    assert!(handoff.contains("  - `warning lock_risk supabase/migrations/20250102000000_bigint.sql:1: ALTER TABLE holds ACCESS EXCLUSIVE on public.orders"), "{handoff}");
    // A project can make a lock risk an error from a table size: the run then fails on it.
    sandbox.write("supabase/rehearsal.toml", "[lock_risk]\nseverity = \"error\"\nmin_rows = 10000\n");
    let strict = sandbox.xtask(&["stage-rehearse", "--plan", "/nonexistent/plan.json", "--json"]);
    assert_eq!(strict.code, Some(1), "{strict}");
    let strict = strict.json();
    let risks: Vec<&serde_json::Value> =
        strict["findings"].as_array().unwrap().iter().filter(|f| f["class"] == "lock_risk").collect();
    assert!(!risks.is_empty());
    for f in &risks {
        let big = f["message"].as_str().unwrap().contains("(~20000 rows)");
        assert_eq!(f["severity"], if big { "error" } else { "warning" }, "{f}");
    }
    assert!(
        risks.iter().any(|f| f["severity"] == "warning"),
        "public.customers (~2000 rows) stays a warning: {risks:#?}"
    );
    sandbox.remove("supabase/rehearsal.toml");
    // And on the sign-off page, as a browser renders it.
    let url = format!("file://{}", dir.join("index.html").display());
    let dom = common::chromium(&["--dump-dom", &url], &sandbox.root.join("chromium-profile"));
    assert!(dom.status.success(), "chromium: {}", String::from_utf8_lossy(&dom.stderr));
    let dom = String::from_utf8_lossy(&dom.stdout);
    let section = dom
        .split("<section id=\"locks\">")
        .nth(1)
        .expect("a What it locks section")
        .split("</section>")
        .next()
        .unwrap();
    assert!(section.contains("<h2>What it locks</h2>"), "{section}");
    assert!(
        section.contains("<tr class=\"bad\"><td><code>20250102000000_bigint</code></td><td>apply</td><td><code>public.orders</code></td><td>~20000</td><td>AccessExclusiveLock</td><td>reads and writes</td><td>rewrite</td>"),
        "{section}"
    );
    assert!(
        section.contains("<tr class=\"\"><td><code>20250102000008_nullable</code></td><td>apply</td>"),
        "a metadata-only lock is shown, not marked: {section}"
    );
}

/// On staging, the tables' rows were counted exactly in step 3, and nothing ran between that count
/// and the first file: its impact says the count, and the files after it the planner's estimate.
#[test]
fn on_staging_the_first_file_reports_the_rows_counted_before_it() {
    let stack = common::Stack::start();
    // Never analyzed: the planner has no estimate at all.
    stack.admin_sql(
        "set role postgres;\n\
         create table public.invoices (id int primary key, total numeric);\n\
         alter table public.invoices enable row level security;\n\
         insert into public.invoices select i, i * 1.5 from generate_series(1, 3000) i;",
    );
    let sandbox = Sandbox::new("lock-impact-exact");
    sandbox.with_vault(&stack.dsn());
    sandbox.write("supabase/rls_tests.sql", "select plan(1);\nselect pass('contract runs');\n");
    sandbox.write(
        "supabase/migrations/20251210000000_invoice_ids.sql",
        "alter table public.invoices alter column id type bigint;\n",
    );
    sandbox.write(
        "supabase/migrations.backup/20251210000000_invoice_ids_rollback.sql",
        "alter table public.invoices alter column id type int;\n",
    );
    sandbox.write(
        "supabase/migrations/20251211000000_invoice_total.sql",
        "create index invoices_total_idx on public.invoices (total);\n",
    );
    sandbox.write(
        "supabase/migrations.backup/20251211000000_invoice_total_rollback.sql",
        "drop index if exists public.invoices_total_idx;\n",
    );
    let run = sandbox.xtask(&["stage-rehearse", "--plan", "/nonexistent/plan.json", "--json"]);
    let s = run.json();
    let rows = s["migrations"].as_array().unwrap();
    let first = &rows.iter().find(|r| r["version"] == "20251210000000").unwrap()["apply"]["impact"][0];
    assert_eq!(
        (&first["relation"], &first["rows"], &first["rows_from"]),
        (&"public.invoices".into(), &3000.into(), &"exact_before_apply".into()),
        "{first}"
    );
    let risk = s["findings"]
        .as_array()
        .unwrap()
        .iter()
        .find(|f| f["class"] == "lock_risk" && f["file"] == "supabase/migrations/20251210000000_invoice_ids.sql")
        .unwrap_or_else(|| panic!("{run}"));
    assert!(risk["message"].as_str().unwrap().contains("on public.invoices (3000 rows) for "), "{risk}");
    // Each later file ran after something else could have changed the table.
    let second = &rows.iter().find(|r| r["version"] == "20251211000000").unwrap();
    assert_eq!(second["apply"]["impact"][0]["rows_from"], "estimate", "{second}");
    assert_eq!(rows[0]["rollback"]["impact"][0]["rows_from"], "estimate", "{}", rows[0]);
    assert_eq!(rows[0]["reapply"]["impact"][0]["rows_from"], "estimate", "{}", rows[0]);
    sandbox.assert_no_secrets(&run);
}
