//! Repository hygiene, as a test (rust-analyzer's `tidy.rs`): the promises the code and the README
//! make that a command can check.

use std::path::{Path, PathBuf};

fn root() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).to_path_buf()
}

fn rust_files(dir: &Path) -> Vec<PathBuf> {
    let mut files: Vec<PathBuf> = walkdir::WalkDir::new(dir)
        .into_iter()
        .flatten()
        .filter(|e| e.path().extension().is_some_and(|x| x == "rs"))
        .map(|e| e.path().to_path_buf())
        .collect();
    files.sort();
    files
}

fn rel(path: &Path) -> String {
    path.strip_prefix(root()).unwrap_or(path).display().to_string()
}

#[test]
fn child_processes_start_in_the_process_module_only() {
    // `walkdir` is the tool's own dependency, so the tests may use it too.
    let offenders: Vec<String> = rust_files(&root().join("src"))
        .into_iter()
        .filter(|p| !p.starts_with(root().join("src/process")))
        .filter(|p| {
            // std's Command, by path or imported (clap's Command is not a child process).
            let text = std::fs::read_to_string(p).unwrap();
            text.contains(concat!("std::process::", "Command"))
                || text.lines().any(|l| l.starts_with(concat!("use std::process::", "{")) && l.contains("Command"))
        })
        .map(|p| rel(&p))
        .collect();
    assert!(offenders.is_empty(), "std::process::Command::new outside src/process/: {offenders:?}");
}

#[test]
fn every_module_says_what_it_owns() {
    let missing: Vec<String> = rust_files(&root().join("src"))
        .into_iter()
        .chain(rust_files(&root().join("scan/src")))
        .chain(rust_files(&root().join("tests")))
        .filter(|p| !p.ends_with("tests.rs") || p.parent().is_some_and(|d| d.ends_with("tests")))
        .filter(|p| !std::fs::read_to_string(p).unwrap().starts_with("//!"))
        .map(|p| rel(&p))
        .collect();
    assert!(missing.is_empty(), "files without a //! header: {missing:?}");
}

#[test]
fn no_file_is_over_400_lines() {
    let long: Vec<String> = rust_files(&root().join("src"))
        .into_iter()
        .chain(rust_files(&root().join("scan/src")))
        .chain(rust_files(&root().join("tests")))
        .filter_map(|p| {
            let n = std::fs::read_to_string(&p).unwrap().lines().count();
            (n > 400).then(|| format!("{} ({n} lines)", rel(&p)))
        })
        .collect();
    assert!(long.is_empty(), "files over 400 lines (split them by concern): {long:?}");
}

#[test]
fn the_code_cites_no_document_users_do_not_have() {
    let cites: Vec<String> = rust_files(&root().join("src"))
        .into_iter()
        .chain(rust_files(&root().join("scan/src")))
        .chain(rust_files(&root().join("tests")))
        .filter(|p| {
            let text = std::fs::read_to_string(p).unwrap();
            text.contains(concat!("SPEC", " §"))
                || text.contains(concat!("STYLE", ".md"))
                || text.contains(concat!("STYLE", " habit"))
        })
        .map(|p| rel(&p))
        .collect();
    assert!(cites.is_empty(), "the code cites the internal SPEC or STYLE: say it in the code or the README: {cites:?}");
}

#[test]
fn every_command_in_the_readme_the_docs_and_the_runbook_exists_in_help() {
    let help = std::process::Command::new(env!("CARGO_BIN_EXE_xtask")).arg("--help").output().unwrap();
    let help = String::from_utf8_lossy(&help.stdout).into_owned();
    let commands: Vec<&str> = help
        .lines()
        .skip_while(|l| !l.starts_with("Commands:"))
        .skip(1)
        .take_while(|l| l.starts_with("  "))
        .filter_map(|l| l.split_whitespace().next())
        .collect();
    assert!(commands.contains(&"stage-rehearse"), "{help}");
    let docs = std::fs::read_dir(root().join("../docs")).unwrap().map(|e| e.unwrap().path());
    let docs: Vec<PathBuf> = [root().join("../README.md"), root().join("../docs/runbooks/data_staging_apply.md")]
        .into_iter()
        .chain(docs.filter(|p| p.extension().is_some_and(|e| e == "md")))
        .collect();
    for doc in &docs {
        let text = std::fs::read_to_string(doc).unwrap();
        let doc = rel(doc);
        for (i, _) in text.match_indices("cargo xtask ") {
            let word = text[i + "cargo xtask ".len()..]
                .split(|c: char| !(c.is_ascii_alphanumeric() || c == '-'))
                .next()
                .unwrap();
            if word.is_empty() || word.starts_with('-') {
                continue;
            }
            assert!(
                commands.contains(&word),
                "{doc} names `cargo xtask {word}`, which --help does not list: {commands:?}"
            );
        }
    }
}

#[test]
fn ci_runs_the_test_command_the_readme_gives() {
    let readme = std::fs::read_to_string(root().join("../README.md")).unwrap();
    let ci = std::fs::read_to_string(root().join("../.ci/run")).unwrap();
    let command =
        readme.lines().find(|l| l.trim_start().starts_with("cargo test")).expect("the README names the test command");
    assert!(ci.lines().any(|l| l.trim() == command.trim()), ".ci/run must run `{}`", command.trim());
}

/// docs/local-target.md's table of the local target's extensions says, for every extension
/// Supabase offers, what the code does: real, installed on demand, a stand-in, or missing.
#[test]
fn the_docs_list_each_extension_where_the_catalogue_puts_it() {
    use xtask::text::extensions::{Local, SUPABASE};
    let readme = std::fs::read_to_string(root().join("../docs/local-target.md")).unwrap();
    let row = |start: &str| -> String {
        readme
            .lines()
            .find(|l| l.starts_with(start))
            .unwrap_or_else(|| panic!("docs/local-target.md has no row `{start}`"))
            .to_string()
    };
    for (name, local) in SUPABASE {
        let start = match local {
            Local::Contrib => "| real, part of the server",
            Local::Package(_) => "| real, installed when",
            Local::StandIn(_) => "| stand-in",
            Local::Pgdg(_) => "| in PostgreSQL's own apt repository",
            Local::Missing => "| missing",
        };
        let cells = row(start);
        let listed = cells.split(|c: char| !(c.is_ascii_alphanumeric() || c == '_' || c == '-')).any(|w| w == *name);
        assert!(listed, "docs/local-target.md's row `{start}` does not name {name}");
    }
}

/// Every flag a command's `--help` lists is in docs/commands.md, so the reference cannot fall
/// behind the code.
#[test]
fn every_flag_in_help_is_in_the_commands_reference() {
    let reference = std::fs::read_to_string(root().join("../docs/commands.md")).unwrap();
    let help = |args: &[&str]| {
        let out = std::process::Command::new(env!("CARGO_BIN_EXE_xtask")).args(args).output().unwrap();
        String::from_utf8_lossy(&out.stdout).into_owned()
    };
    let top = help(&["--help"]);
    let commands: Vec<String> = top
        .lines()
        .skip_while(|l| !l.starts_with("Commands:"))
        .skip(1)
        .take_while(|l| l.starts_with("  "))
        .filter_map(|l| l.split_whitespace().next().map(str::to_string))
        .filter(|c| c != "help")
        .collect();
    let mut missing = Vec::new();
    for command in &commands {
        for line in help(&[command, "--help"]).lines() {
            let Some(flag) = line.split_whitespace().find(|w| w.starts_with("--")) else { continue };
            let flag = flag.trim_end_matches(',').split(['=', '<', ' ']).next().unwrap();
            if flag != "--help" && flag != "--version" && !reference.contains(flag) {
                missing.push(format!("{command} {flag}"));
            }
        }
    }
    assert!(!commands.is_empty(), "{top}");
    assert!(missing.is_empty(), "flags --help lists that docs/commands.md does not name: {missing:?}");
}

/// Data flows one way: no module of the tool uses a module that (through others) uses it back.
/// A module is a file; a path names the module it reaches (`crate::a::b::Item` is `a::b`), a
/// module's own ancestors do not count, nor do comments and test modules.
#[test]
fn no_module_uses_one_that_uses_it_back() {
    use std::collections::{BTreeMap, BTreeSet};
    let src = root().join("src");
    let module = |path: &Path| -> Vec<String> {
        let rel = path.strip_prefix(&src).unwrap().with_extension("");
        let mut parts: Vec<String> = rel.iter().map(|p| p.to_string_lossy().into_owned()).collect();
        if parts.last().is_some_and(|p| p == "mod") {
            parts.pop();
        }
        if parts == ["lib"] || parts == ["main"] {
            parts.clear();
        }
        parts
    };
    let files: Vec<(Vec<String>, String)> =
        rust_files(&src).into_iter().map(|p| (module(&p), std::fs::read_to_string(&p).unwrap())).collect();
    let known: BTreeSet<Vec<String>> = files.iter().map(|(m, _)| m.clone()).collect();
    let comment = regex::Regex::new(r"//[^\n]*").unwrap();
    let path = regex::Regex::new(r"(?-u)\b(crate|super)((?:::[a-z_][a-z0-9_]*)+)").unwrap();
    let mut uses: BTreeMap<Vec<String>, BTreeSet<Vec<String>>> = BTreeMap::new();
    for (m, text) in &files {
        let code = text.find("#[cfg(test)]\nmod tests").map_or(text.as_str(), |i| &text[..i]);
        let text = comment.replace_all(code, "").into_owned();
        for c in path.captures_iter(&text) {
            let names: Vec<String> = c[2].split("::").skip(1).map(str::to_string).collect();
            let mut full: Vec<String> = if &c[1] == "crate" {
                Vec::new()
            } else {
                // `super` in a/b.rs, as in a/b/mod.rs, is `a`.
                m[..m.len().saturating_sub(1)].to_vec()
            };
            full.extend(names);
            if let Some(target) = (1..=full.len()).rev().map(|k| full[..k].to_vec()).find(|p| known.contains(p)) {
                if target != *m && !m.starts_with(&target) {
                    uses.entry(m.clone()).or_default().insert(target);
                }
            }
        }
    }
    // Every cycle: a path from a module back to itself.
    let mut cycles = Vec::new();
    for start in uses.keys() {
        let mut stack = vec![(start.clone(), vec![start.clone()])];
        let mut seen = BTreeSet::new();
        while let Some((at, trail)) = stack.pop() {
            for next in uses.get(&at).into_iter().flatten() {
                if next == start {
                    cycles.push(trail.iter().map(|m| m.join("::")).collect::<Vec<_>>().join(" -> "));
                } else if seen.insert(next.clone()) {
                    let mut t = trail.clone();
                    t.push(next.clone());
                    stack.push((next.clone(), t));
                }
            }
        }
    }
    assert!(cycles.is_empty(), "modules that use each other (make the data flow one way):\n{}", cycles.join("\n"));
}

/// A function a reader can follow: none over 100 lines (split it into named parts).
#[test]
fn no_function_is_over_100_lines() {
    let mut long = Vec::new();
    for path in rust_files(&root().join("src")).into_iter().chain(rust_files(&root().join("scan/src"))) {
        let text = std::fs::read_to_string(&path).unwrap();
        let lines: Vec<&str> = text.lines().collect();
        let mut i = 0;
        while i < lines.len() {
            let line = lines[i];
            let code = line.trim_start();
            let indent = &line[..line.len() - code.len()];
            let is_fn = ["fn ", "pub fn ", "pub(super) fn ", "pub(crate) fn "].iter().any(|p| code.starts_with(p));
            if is_fn && !line.trim_end().ends_with(';') {
                let close = format!("{indent}}}");
                let end = (i + 1..lines.len()).find(|j| lines[*j] == close).unwrap_or(i);
                let n = end - i + 1;
                if n > 100 {
                    let name = code.split("fn ").nth(1).unwrap_or("").split(['(', '<']).next().unwrap_or("");
                    long.push(format!("{}: {name} ({n} lines)", rel(&path)));
                }
                i = end;
            }
            i += 1;
        }
    }
    assert!(long.is_empty(), "functions over 100 lines (split them into named parts): {long:?}");
}
