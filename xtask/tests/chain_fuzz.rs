//! A differential fuzz test of the chain: generated migrations (dollar quotes with arbitrary tags
//! and bytes, nested comments, `E''` strings and their continuations, quoted identifiers holding
//! `;`, BEGIN ATOMIC bodies, empty statements, CRLF, a byte order mark, `COPY ... FROM stdin`
//! blocks, `standard_conforming_strings` off, statements that fail) are applied through the tool
//! on one database and with the runbook's `psql -1 -v ON_ERROR_STOP=1 -f FILE` on another; the
//! two must hold the same catalog and the same data, and each file's first error must be the
//! same line, word for word (`psql:FILE:LINE: ERROR: ...`).
//!
//! Seeded and repeatable: `CHAIN_FUZZ_SEED` (default fixed) and `CHAIN_FUZZ_CASES` (files,
//! default 1500). The longer run, documented in the README:
//! `CHAIN_FUZZ_CASES=20000 CHAIN_FUZZ_SEED=$RANDOM cargo test -p xtask --test chain_fuzz -- --nocapture`.

mod common;

use std::collections::BTreeMap;
use std::process::Command;

use common::{local_target, prepare, Sandbox};
use xtask::evidence::artifacts::Transcript;
use xtask::prepare::tree::Tree;
use xtask::runbook::apply;

/// xorshift64*: small, seeded, the same sequence on every machine (test data only).
struct Rng(u64);

impl Rng {
    fn next(&mut self) -> u64 {
        self.0 ^= self.0 >> 12;
        self.0 ^= self.0 << 25;
        self.0 ^= self.0 >> 27;
        self.0.wrapping_mul(0x2545_f491_4f6c_dd1d)
    }
    fn below(&mut self, n: usize) -> usize {
        (self.next() % n as u64) as usize
    }
    fn pick<'a>(&mut self, items: &[&'a str]) -> &'a str {
        items[self.below(items.len())]
    }
    fn chance(&mut self, percent: usize) -> bool {
        self.below(100) < percent
    }
}

const TAGS: &[&str] = &["", "a", "_x1", "★", "é1", "日本", "Z9_", "body", "x$y"];

/// A dollar quote whose body never holds its own delimiter.
fn dollar(rng: &mut Rng) -> String {
    let tag = rng.pick(TAGS);
    // `x$y` is no tag (a `$` ends it): psql and the server read `$x$` then `y$...`, an error.
    let delimiter = format!("${tag}$");
    let pieces = [";", "'", "\"", "--", "/*", "*/", "\\", "\n", "\r\n", "$", "$a$", "$$", "x", "é", " ", "\\'", "$★$"];
    loop {
        let body: String = (0..rng.below(8)).map(|_| rng.pick(&pieces)).collect();
        if !format!("{body}$").contains(&delimiter) {
            return format!("{delimiter}{body}{delimiter}");
        }
    }
}

fn literal(rng: &mut Rng) -> String {
    match rng.below(10) {
        0..=2 => dollar(rng),
        3 => {
            let body: String = (0..rng.below(6))
                .map(|_| rng.pick(&[";", "\\'", "''", "\\\\", "\\n", "--", "/*", "x", "\n", "$a$"]))
                .collect();
            format!("{}'{body}'", rng.pick(&["E", "e"]))
        }
        4 => {
            let body: String =
                (0..rng.below(6)).map(|_| rng.pick(&[";", "''", "\\", "--", "/*", "$a$", "x", "\n"])).collect();
            format!("'{body}'")
        }
        5 => format!("U&'{}'", (0..rng.below(4)).map(|_| rng.pick(&[";", "''", "x", "\\0061"])).collect::<String>()),
        6 => format!("N'{}'", (0..rng.below(4)).map(|_| rng.pick(&[";", "''", "y"])).collect::<String>()),
        // A string continued on the next line: one string for the server; for psql, which reads
        // line by line, a new one (an `E` prefix does not carry over).
        7 => format!("'a;'{}'b{}'", rng.pick(&["\n", " \n  ", " -- c;\n"]), rng.pick(&["", ";", "''"])),
        8 => format!("E'{}'\n'{}'", rng.pick(&["p;", "\\\\"]), rng.pick(&["q", ";"])),
        _ => format!("'{}'::text", rng.pick(&["plain", "semi;colon", "dash--dash"])),
    }
}

/// Whitespace and comments between statements, an empty statement now and then.
fn gap(rng: &mut Rng) -> String {
    (0..rng.below(3))
        .map(|_| {
            rng.pick(&["\n", " ", "\n\n", "-- c;'$$\n", "/* a; /* b */ ' */", "\t", ";", "\n;\n", "-- x\r\n", "/**/"])
                .to_string()
        })
        .collect()
}

/// One migration: a table of its own, rows from literals, and now and then a function, a
/// comment, an odd column, COPY data, or a statement that fails.
fn migration(rng: &mut Rng, i: usize) -> String {
    let mut sql = gap(rng);
    let table = format!("public.f{i}");
    let std_off = rng.chance(3);
    if std_off {
        sql.push_str("set standard_conforming_strings = off;\n");
    }
    sql.push_str(&format!("create table {table} (k serial primary key, v text);"));
    for _ in 0..1 + rng.below(4) {
        sql.push_str(&gap(rng));
        match rng.below(12) {
            0 => sql.push_str(&format!("alter table {table} add column \"we;ird\"\"col{}\" text;", rng.below(1000))),
            1 => sql.push_str(&format!("comment on table {table} is {};", literal(rng))),
            2 => sql.push_str(&format!(
                "create function public.g{i}_{}() returns text language sql\nbegin atomic\n  select {};\nend;",
                rng.below(1000),
                literal(rng)
            )),
            3 if !std_off => sql.push_str(&format!(
                "copy {table} (v) from stdin;\nrow;one\n{}\n\\.\n",
                rng.pick(&["two'", "three\\\\x", "-- four", "/* five", "$a$"])
            )),
            4 => sql.push_str(rng.pick(&["select 1/0;", "select (;", "insert into public.missing values (1);"])),
            5 => sql.push_str(&format!("select 1 as x{}", rng.pick(&[";", " ;", "\n;"]))),
            _ => sql.push_str(&format!("insert into {table} (v) values ({});", literal(rng))),
        }
    }
    sql.push_str(&gap(rng));
    if rng.chance(10) {
        sql = sql.replace('\n', "\r\n");
    }
    if rng.chance(5) {
        sql.insert(0, '\u{feff}');
    }
    sql
}

/// `pg_dump` of the schema `public`, catalog and data, without the lines that name the server.
fn dump(dsn: &str) -> String {
    let pg_dump = xtask::tools::find_client("pg_dump").unwrap();
    let out = Command::new(pg_dump).args(["-d", dsn, "-n", "public", "--no-owner"]).output().unwrap();
    assert!(out.status.success(), "pg_dump: {}", String::from_utf8_lossy(&out.stderr));
    String::from_utf8_lossy(&out.stdout)
        .lines()
        .filter(|l| !l.starts_with("-- Dumped") && !l.starts_with("\\restrict") && !l.starts_with("\\unrestrict"))
        .map(|l| format!("{l}\n"))
        .collect()
}

/// Per file of a log (`==> FILE` sections; the last section of a file that ran twice), its first
/// `psql:FILE:LINE: ERROR:` line.
fn first_errors(log: &str) -> BTreeMap<String, Option<String>> {
    let mut out = BTreeMap::new();
    for part in log.split("==> ").skip(1) {
        let (header, body) = part.split_once('\n').unwrap_or((part, ""));
        let error = body.lines().find(|l| l.starts_with("psql:") && l.contains(": ERROR:  ")).map(str::to_string);
        out.insert(header.to_string(), error);
    }
    out
}

#[test]
fn generated_files_mean_the_same_through_the_chain_and_through_psql_f() {
    prepare();
    let seed: u64 = std::env::var("CHAIN_FUZZ_SEED").ok().and_then(|s| s.parse().ok()).unwrap_or(0x5eed_c4a1);
    let cases: usize = std::env::var("CHAIN_FUZZ_CASES").ok().and_then(|s| s.parse().ok()).unwrap_or(1500);
    let mut rng = Rng(seed | 1);
    let sandbox = Sandbox::new("chain-fuzz");
    let mut files = Vec::new();
    for i in 0..cases {
        let rel = format!("supabase/migrations/{}_f{i}.sql", 20250101000000u64 + i as u64);
        std::fs::create_dir_all(sandbox.path("supabase/migrations")).unwrap();
        // A file the tree refuses as a whole (a quote never closed) would stop the run: drawn again.
        let sql = loop {
            let sql = migration(&mut rng, i);
            let script = xtask::text::sql::Script::lex(&sql);
            if script.unterminated.is_none() && script.meta_commands.is_empty() {
                break sql;
            }
        };
        std::fs::write(sandbox.path(&rel), sql).unwrap();
        files.push(rel);
    }

    // `CHAIN_FUZZ_KEEP=DIR` keeps the generated tree there, to look at a failing case.
    if let Ok(keep) = std::env::var("CHAIN_FUZZ_KEEP") {
        common::copy_dir(&sandbox.path("supabase"), std::path::Path::new(&keep));
    }
    let mut tool = local_target(&sandbox.workdir);
    let tree = Tree::load(&sandbox.workdir).unwrap();
    let log_path = sandbox.root.join("migration_apply.log");
    let mut log = Transcript::append(&log_path, "migration_apply.log".into()).unwrap();
    apply::apply_all(&mut tool, &tree.migrations, (true, None), &mut log, &mut None, &mut |_, _| Ok(true)).unwrap();
    drop(log);
    let tool_log = std::fs::read_to_string(&log_path).unwrap();

    let reference = local_target(&sandbox.workdir);
    let reference_dsn = reference.cluster().unwrap().dsn();
    let psql = xtask::tools::find_client("psql").unwrap();
    let mut psql_log = String::new();
    for rel in &files {
        let out = Command::new(&psql)
            .args([reference_dsn.as_str(), "-X", "-1", "-v", "ON_ERROR_STOP=1", "-f", rel])
            .current_dir(&sandbox.workdir)
            .env_remove("PGOPTIONS")
            .output()
            .unwrap();
        psql_log.push_str(&format!("==> {rel}\n{}", String::from_utf8_lossy(&out.stderr)));
    }

    let ours = first_errors(&tool_log);
    let theirs = first_errors(&psql_log);
    let mut differ = Vec::new();
    for rel in &files {
        let (a, b) = (ours.get(rel).cloned().flatten(), theirs.get(rel).cloned().flatten());
        if a != b {
            differ.push(format!("{rel}:\n  chain:  {a:?}\n  psql -f: {b:?}\n--- file ---\n{}", sandbox.read(rel)));
        }
    }
    assert!(
        differ.is_empty(),
        "seed {seed}: {} of {cases} files failed differently:\n{}",
        differ.len(),
        differ[..differ.len().min(3)].join("\n")
    );
    let failed = theirs.values().filter(|e| e.is_some()).count();
    assert!(
        failed > cases / 20 && failed < cases * 3 / 4,
        "the generator makes both kinds: {failed} of {cases} failed"
    );

    let (a, b) = (dump(&tool.cluster().unwrap().dsn()), dump(&reference_dsn));
    if a != b {
        let line = a.lines().zip(b.lines()).position(|(x, y)| x != y).unwrap_or(0);
        let show = |d: &str| d.lines().skip(line.saturating_sub(3)).take(8).collect::<Vec<_>>().join("\n");
        panic!(
            "seed {seed}: the catalogs or data differ from line {line}:\n--- chain\n{}\n--- psql -f\n{}",
            show(&a),
            show(&b)
        );
    }
    assert!(!tool_log.contains("rehearsal_mark"), "no marker text in the log");
    // The generated files hold no transaction control, DO, RESET or DISCARD: any such tag is the
    // tool's own, and none may reach the transcript.
    let tool_tags =
        ["BEGIN", "COMMIT", "ROLLBACK", "DO", "RESET", "DISCARD PLANS", "DISCARD TEMP", "DISCARD SEQUENCES"];
    let tool_tags = [&tool_tags[..], &["CLOSE CURSOR ALL", "DEALLOCATE ALL", "UNLISTEN"]].concat();
    let leaked: Vec<&str> = tool_log.lines().filter(|l| tool_tags.contains(l)).collect();
    assert!(leaked.is_empty(), "the tool's command tags in the transcript: {leaked:?}");
}
