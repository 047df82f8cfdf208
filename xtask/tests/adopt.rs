//! `cargo xtask adopt DIR`: an existing Supabase repository runs `cargo xtask ...` after one
//! command. What a team has is merged (their members, scripts and comments kept); a second adopt
//! changes nothing; a file they edited is replaced only with `--force`.

mod common;

use std::collections::BTreeMap;
use std::path::Path;
use std::process::Command;

use common::{Run, Sandbox};

/// `adopt DIR` run from this repository's binary.
fn adopt(dir: &Path, extra: &[&str]) -> Run {
    let mut cmd = Command::new(env!("CARGO_BIN_EXE_xtask"));
    cmd.arg("adopt").arg(dir).args(extra);
    Run::of(cmd)
}

/// Every file under `dir` (but the build and what runs write), with its bytes.
fn files(dir: &Path) -> BTreeMap<String, Vec<u8>> {
    walkdir::WalkDir::new(dir)
        .into_iter()
        .flatten()
        .filter(|e| e.file_type().is_file())
        .map(|e| (e.path().strip_prefix(dir).unwrap().display().to_string(), std::fs::read(e.path()).unwrap()))
        .filter(|(rel, _)| !["target/", "artifacts/", "feedback/"].iter().any(|p| rel.starts_with(p)))
        .collect()
}

#[test]
fn a_repo_with_only_supabase_runs_cargo_xtask_rls_after_one_adopt_and_a_second_changes_nothing() {
    let repo = Sandbox::with_fixture("teamdocs", "adopt-bare");
    let first = adopt(&repo.workdir, &[]);
    assert_eq!(first.code, Some(0), "{first}");
    assert!(
        first.stdout.contains("written: Cargo.toml") && first.stdout.contains("written: .cargo/config.toml"),
        "{first}"
    );
    assert!(first.stdout.contains("workflow: .github/workflows/rehearsal-pr.yml"), "{first}");
    assert!(first.stdout.contains("next: cd ") && first.stdout.contains("cargo xtask rls"), "{first}");
    for rel in
        ["xtask/Cargo.toml", "xtask/src/lib.rs", "Cargo.lock", "package.json", ".gitignore", "supabase/rehearsal.toml"]
    {
        assert!(repo.path(rel).is_file(), "{rel} written");
    }
    assert_eq!(
        repo.read("xtask/src/lib.rs"),
        std::fs::read_to_string(common::repo_root().join("xtask/src/lib.rs")).unwrap()
    );
    // The record: each file written whole, with its sha256.
    let record: serde_json::Value = serde_json::from_str(&repo.read("xtask/adopted.json")).unwrap();
    assert_eq!(record["version"], env!("CARGO_PKG_VERSION"));
    let hash = record["files"]["xtask/src/lib.rs"].as_str().unwrap();
    assert!(hash.len() == 64 && hash.chars().all(|c| c.is_ascii_hexdigit()), "{record}");
    assert!(record["files"].get(".github/workflows/rehearsal-staging.yml").is_some(), "{record}");
    // The commented settings parse as they are.
    assert!(repo.read("supabase/rehearsal.toml").lines().all(|l| l.is_empty() || l.starts_with('#')));

    let before = files(&repo.workdir);
    let second = adopt(&repo.workdir, &[]);
    assert_eq!(second.code, Some(0), "{second}");
    assert!(second.stdout.contains("nothing to change"), "{second}");
    assert_eq!(files(&repo.workdir), before, "a second adopt of the same version changes nothing");

    // The repository runs the tool: the alias, the workspace and the lock are enough (the build
    // is the tool's own first `cargo xtask`, offline, from the registry cache this build used).
    let target = Path::new(env!("CARGO_TARGET_TMPDIR")).join("adopted-build");
    let mut cmd = Command::new(env!("CARGO"));
    cmd.args(["xtask", "rls"])
        .current_dir(&repo.workdir)
        .env("CARGO_TARGET_DIR", &target)
        .env("CARGO_NET_OFFLINE", "true")
        .env("TMPDIR", &repo.tmp)
        .env("REHEARSAL_PG_CACHE", common::cache_dir());
    let rls = Run::of(cmd);
    assert_eq!(rls.code, Some(0), "{rls}");
    assert!(rls.stdout.contains("outcome: passed"), "{rls}");
}

#[test]
fn an_existing_workspace_and_package_json_keep_their_members_scripts_and_comments() {
    let repo = Sandbox::with_fixture("roomchat", "adopt-workspace");
    repo.write(
        "Cargo.toml",
        "# The services of roomchat.\n[workspace]\nresolver = \"2\"\nmembers = [\n    \"services/api\", # the HTTP API\n    \"services/worker\"\n]\n\n[profile.release]\nlto = true\n",
    );
    repo.write(".cargo/config.toml", "[build]\n# one job per core is too many on CI\njobs = 2\n");
    repo.write(
        "package.json",
        "{\n  \"name\": \"roomchat\",\n  \"scripts\": {\n    \"dev\": \"next dev\",\n    \"db:types\": \"supabase gen types typescript --local\"\n  },\n  \"dependencies\": {\n    \"next\": \"15.0.0\"\n  }\n}\n",
    );
    repo.write(".gitignore", "node_modules/\n.env.local\n");
    repo.write(".github/workflows/pr.yml", "name: their own pr checks\non: pull_request\n");
    let run = adopt(&repo.workdir, &[]);
    assert_eq!(run.code, Some(0), "{run}");
    assert!(run.stdout.contains("merged into yours: Cargo.toml"), "{run}");

    let cargo = repo.read("Cargo.toml");
    assert!(
        cargo.starts_with(
            "# The services of roomchat.\n[workspace]\nresolver = \"2\"\nmembers = [\n    \"services/api\", # the HTTP API\n    \
             \"services/worker\",\n    \"xtask\",\n]\n\n[profile.release]\nlto = true\n"
        ),
        "{cargo}"
    );
    assert!(cargo.contains("[profile.dev.package.xtask-scan]\nopt-level = 2"), "the tool's profile is added:\n{cargo}");
    let config = repo.read(".cargo/config.toml");
    assert!(
        config.starts_with("[build]\n# one job per core is too many on CI\njobs = 2\n\n[alias]\nxtask = "),
        "{config}"
    );
    let package: serde_json::Value = serde_json::from_str(&repo.read("package.json")).unwrap();
    let keys: Vec<&str> = package.as_object().unwrap().keys().map(String::as_str).collect();
    assert_eq!(keys, ["name", "scripts", "dependencies", "devDependencies"], "their order kept");
    assert_eq!(package["scripts"]["db:types"], "supabase gen types typescript --local");
    let ours: serde_json::Value =
        serde_json::from_str(&std::fs::read_to_string(common::repo_root().join("package.json")).unwrap()).unwrap();
    assert_eq!(package["devDependencies"]["supabase"], ours["devDependencies"]["supabase"]);
    let ignore = repo.read(".gitignore");
    assert!(ignore.starts_with("node_modules/\n.env.local\n") && ignore.contains("\n/artifacts\n"), "{ignore}");
    assert_eq!(ignore.matches("node_modules").count(), 1, "{ignore}");
    assert_eq!(repo.read(".github/workflows/pr.yml"), "name: their own pr checks\non: pull_request\n", "theirs kept");
    assert!(repo.path(".github/workflows/rehearsal-pr.yml").is_file());
    // Merged once: a second adopt leaves every file as it is.
    let before = files(&repo.workdir);
    let again = adopt(&repo.workdir, &[]);
    assert!(again.stdout.contains("nothing to change"), "{again}");
    assert_eq!(files(&repo.workdir), before);
}

#[test]
fn an_edited_file_is_refused_without_force_an_unedited_one_is_updated_and_a_repo_without_supabase_is_refused() {
    let repo = Sandbox::with_fixture("teamdocs", "adopt-edited");
    assert_eq!(adopt(&repo.workdir, &[]).code, Some(0));
    let ours = repo.read("xtask/src/lib.rs");
    // The team edits one file the tool wrote; an older version wrote another (its record says so).
    repo.write("xtask/src/lib.rs", &format!("{ours}// our local tweak\n"));
    let older = "# written by an older version\n";
    repo.write(".github/workflows/rehearsal-staging.yml", older);
    let mut record: serde_json::Value = serde_json::from_str(&repo.read("xtask/adopted.json")).unwrap();
    record["files"][".github/workflows/rehearsal-staging.yml"] =
        xtask::evidence::manifest::sha256(older.as_bytes()).into();
    repo.write("xtask/adopted.json", &serde_json::to_string_pretty(&record).unwrap());

    let refused = adopt(&repo.workdir, &[]);
    assert_eq!(refused.code, Some(2), "{refused}");
    assert!(
        refused.stderr.contains("1 file(s) the last adopt wrote were edited since")
            && refused.stderr.contains("xtask/src/lib.rs"),
        "{refused}"
    );
    assert!(!refused.stderr.contains("rehearsal-staging.yml"), "an unedited file is not in the way:\n{refused}");
    assert!(repo.read("xtask/src/lib.rs").ends_with("// our local tweak\n"), "nothing written on a refusal");
    assert_eq!(repo.read(".github/workflows/rehearsal-staging.yml"), older, "nothing written on a refusal");

    let forced = adopt(&repo.workdir, &["--force"]);
    assert_eq!(forced.code, Some(0), "{forced}");
    assert_eq!(repo.read("xtask/src/lib.rs"), ours, "replaced with --force");
    assert_eq!(
        repo.read(".github/workflows/rehearsal-staging.yml"),
        std::fs::read_to_string(common::repo_root().join(".github/workflows/staging.yml")).unwrap(),
        "the unedited one updated"
    );

    // The record is a file in their tree: an entry naming anything adopt does not write is never
    // removed, whatever its hash.
    let theirs = "create table keep (id int);\n";
    repo.write("supabase/migrations/20990101000000_keep.sql", theirs);
    std::fs::write(repo.root.join("outside.txt"), "outside\n").unwrap();
    let mut record: serde_json::Value = serde_json::from_str(&repo.read("xtask/adopted.json")).unwrap();
    record["files"]["supabase/migrations/20990101000000_keep.sql"] =
        xtask::evidence::manifest::sha256(theirs.as_bytes()).into();
    record["files"]["../outside.txt"] = xtask::evidence::manifest::sha256(b"outside\n").into();
    repo.write("xtask/adopted.json", &serde_json::to_string_pretty(&record).unwrap());
    let again = adopt(&repo.workdir, &["--force"]);
    assert_eq!(again.code, Some(0), "{again}");
    assert_eq!(repo.read("supabase/migrations/20990101000000_keep.sql"), theirs);
    assert!(repo.root.join("outside.txt").is_file(), "nothing outside the repository is touched");

    let bare = Sandbox::new("adopt-nothing");
    let run = adopt(&bare.workdir, &[]);
    assert_eq!(run.code, Some(2), "{run}");
    assert!(run.stderr.contains("has no supabase/ directory"), "{run}");
    assert!(std::fs::read_dir(&bare.workdir).unwrap().next().is_none(), "nothing written");
}
