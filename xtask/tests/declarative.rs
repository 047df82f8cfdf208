//! Supabase's declarative schema (`supabase/schemas/`): `cargo xtask drift` replays it, in the order
//! `supabase db diff` uses, and compares it with the migrations replayed, so a change declared
//! without its migration is named.

mod common;

use common::Sandbox;

#[test]
fn a_declarative_schema_change_without_its_migration_is_named_and_schema_paths_order_is_kept() {
    let sandbox = Sandbox::new("drift-declarative");
    // A team on Supabase's declarative schemas: the files say what the database should be, and
    // `supabase db diff -f` writes the migrations from them.
    sandbox.write(
        "supabase/migrations/20250301000000_posts.sql",
        "create table public.posts (\n  id bigint generated always as identity primary key,\n  author uuid not null,\n  \
         title text not null\n);\nalter table public.posts enable row level security;\n\
         create policy \"Authors read their posts\" on public.posts for select to authenticated using (author = auth.uid());\n\
         create function public.post_count() returns bigint language sql stable as $$ select count(*) from public.posts $$;\n",
    );
    sandbox.write(
        "supabase/schemas/b_posts.sql",
        "create table public.posts (\n  id bigint generated always as identity primary key,\n  author uuid not null,\n  \
         title text not null,\n  published_at timestamptz\n);\nalter table public.posts enable row level security;\n\
         create policy \"Authors read their posts\" on public.posts for select to authenticated using (true);\n",
    );
    sandbox.write(
        "supabase/schemas/a_functions.sql",
        "create function public.post_count() returns bigint language sql stable as $$ select count(*) from public.posts $$;\n",
    );
    // Lexicographic order runs the function before its table: the replay cannot run, and says so.
    let unordered = sandbox.xtask(&["drift"]);
    assert_eq!(unordered.code, Some(2), "{unordered}");
    assert!(
        unordered.stderr.contains("the declarative schema (supabase/schemas) could not be replayed locally")
            && unordered.stderr.contains("supabase/schemas/a_functions.sql"),
        "{unordered}"
    );

    // config.toml's schema_paths puts the table first, as `supabase db diff` would.
    sandbox.write(
        "supabase/config.toml",
        "project_id = \"blog\"\n\n[db]\nport = 54322\nmajor_version = 15\n\n[db.migrations]\n\
         schema_paths = [\"./schemas/b_posts.sql\", \"./schemas/*.sql\"]\n",
    );
    let run = sandbox.xtask(&["drift", "--json"]);
    assert_eq!(run.code, Some(1), "{run}");
    let d = &run.json()["declarative"];
    assert_eq!(d["files"], 2, "{run}");
    let found: Vec<String> = d["differences"]
        .as_array()
        .unwrap()
        .iter()
        .map(|x| {
            format!(
                "{} {} {}",
                x["kind"].as_str().unwrap(),
                x["object"].as_str().unwrap(),
                x["change"].as_str().unwrap()
            )
        })
        .collect();
    assert_eq!(
        found,
        ["column public.posts.published_at declared_only", "policy public.posts.\"Authors read their posts\" differs",],
        "{run}"
    );
    let screen = sandbox.xtask(&["drift"]);
    assert!(
        screen.stdout.contains(
            "public.posts: column public.posts.published_at declared in supabase/schemas, made by no migration"
        ),
        "{screen}"
    );

    // The migration `supabase db diff` would write: the two agree.
    sandbox.write(
        "supabase/migrations/20250302000000_publish.sql",
        "alter table public.posts add column published_at timestamptz;\n\
         drop policy \"Authors read their posts\" on public.posts;\n\
         create policy \"Authors read their posts\" on public.posts for select to authenticated using (true);\n",
    );
    let same = sandbox.xtask(&["drift"]);
    assert_eq!(same.code, Some(0), "{same}");
    assert!(same.stdout.contains("against the migrations: the same"), "{same}");
    // Without schemas, local has nothing to compare.
    sandbox.remove("supabase/schemas");
    let nothing = sandbox.xtask(&["drift"]);
    assert_eq!(nothing.code, Some(2), "{nothing}");
    assert!(nothing.stderr.contains("with supabase/schemas/ it compares the declarative schema"), "{nothing}");
}
