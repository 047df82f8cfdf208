//! The files a team already has, merged as text so their comments, order and formatting stay:
//! `xtask` added to the workspace's members, the `cargo xtask` alias added to
//! `.cargo/config.toml`, the build profiles the tool needs added where the workspace has none,
//! the Supabase CLI added to `package.json`'s devDependencies, the lines the tool needs added to
//! `.gitignore`, the tool's locked dependencies added to `Cargo.lock`, a commented
//! `supabase/rehearsal.toml` written when there is none. Only what is missing is added.

use std::path::Path;

use anyhow::Result;

use crate::exit;

/// Each file whose text changes, with its new text and whether it was there before.
pub(super) fn all(dir: &Path, source: &Path) -> Result<Vec<(String, String, bool)>> {
    let ours = |rel: &str| {
        std::fs::read_to_string(source.join(rel))
            .map_err(|e| exit::cannot_run(format!("adopt: reading this tool's {rel}: {e}")))
    };
    let theirs = |rel: &str| std::fs::read_to_string(dir.join(rel)).ok();
    let mut out = Vec::new();
    let mut change = |rel: &str, now: Option<String>, new: String| {
        if now.as_deref() != Some(new.as_str()) {
            out.push((rel.to_string(), new, now.is_some()));
        }
    };
    let workspace = theirs("Cargo.toml");
    change("Cargo.toml", workspace.clone(), cargo_toml(workspace.as_deref(), &ours("Cargo.toml")?)?);
    let config = theirs(".cargo/config.toml");
    change(".cargo/config.toml", config.clone(), cargo_config(config.as_deref(), &ours(".cargo/config.toml")?)?);
    let lock = theirs("Cargo.lock");
    change("Cargo.lock", lock.clone(), cargo_lock(lock.as_deref(), &ours("Cargo.lock")?));
    let package = theirs("package.json");
    change("package.json", package.clone(), package_json(package.as_deref(), &ours("package.json")?)?);
    let ignore = theirs(".gitignore");
    change(".gitignore", ignore.clone(), gitignore(ignore.as_deref(), &ours(".gitignore")?));
    if theirs("supabase/rehearsal.toml").is_none() {
        change("supabase/rehearsal.toml", None, REHEARSAL_TOML.to_string());
    }
    Ok(out)
}

/// A commented `supabase/rehearsal.toml`: every setting, at its default.
const REHEARSAL_TOML: &str =
    "# The rehearsal's settings (cargo xtask stage-rehearse, rls, lint, drift): without a line, its\n\
# default applies. Uncomment one to change it; an unknown key is refused with its line.\n\
\n\
# [staging]\n\
# env_files = [\"vault/occ/supabase/database_url_staging.env\", \"vault/occ/supabase/service_key_staging.env\"]\n\
# pooler_hosts = [\".pooler.supabase.com\", \".pooler.supabase.co\"]\n\
# production_project_refs = []   # refs a DSN must never name\n\
\n\
# [lint]                         # rule = \"error\" | \"warning\" | \"off\" (`cargo xtask lint --help`)\n\
# exposed_schemas = [\"public\"]\n\
\n\
# [advisors]                     # advisor = \"error\" | \"warning\" | \"off\"\n\
# [advisors.exclude]             # objects an advisor leaves alone\n\
# rls_disabled = [\"public.legacy_import\"]\n\
\n\
# [lock_risk]\n\
# severity = \"warning\"           # or \"error\"\n\
# min_rows = 100000              # an error only from this many (estimated) rows\n\
\n\
# [drift]\n\
# ignore_schemas = []\n\
# fail = false                   # true: drift and edited_after_apply are errors\n";

/// The `[header]` lines of a TOML text, as written.
fn headers(text: &str) -> Vec<String> {
    text.lines()
        .map(str::trim)
        .filter(|l| l.starts_with('['))
        .map(|l| l.split('#').next().unwrap_or(l).trim().to_string())
        .collect()
}

/// `ours` (this tool's root `Cargo.toml`) split into its tables, each with the comments above it.
fn tables(ours: &str) -> Vec<(String, String)> {
    let mut out: Vec<(String, String)> = Vec::new();
    let mut pending = String::new();
    for line in ours.lines() {
        let t = line.trim();
        if t.starts_with('[') {
            out.push((t.to_string(), format!("{pending}{line}\n")));
            pending.clear();
        } else if t.starts_with('#') || t.is_empty() {
            pending.push_str(line);
            pending.push('\n');
        } else if let Some(last) = out.last_mut() {
            last.1.push_str(&std::mem::take(&mut pending));
            last.1.push_str(line);
            last.1.push('\n');
        }
    }
    out
}

/// The workspace's `Cargo.toml` with `xtask` among its members and the tool's profiles where
/// the workspace has none; a new one when there is none.
fn cargo_toml(theirs: Option<&str>, ours: &str) -> Result<String> {
    let Some(theirs) = theirs else { return Ok(ours.to_string()) };
    let mut text = theirs.to_string();
    if !headers(&text).iter().any(|h| h == "[workspace]") {
        // A package at the root is a member of its own workspace.
        text = format!("{}\n\n[workspace]\nmembers = [\"xtask\"]\n", text.trim_end());
    } else {
        text = with_member(&text)?;
    }
    let have = headers(&text);
    for (header, table) in tables(ours) {
        if header.starts_with("[profile.") && !have.contains(&header) {
            // `[profile.dev]` is theirs to set; the per-package tables are the tool's.
            if header == "[profile.dev]" && have.iter().any(|h| h.starts_with("[profile.dev")) {
                continue;
            }
            text = format!("{}\n\n{}", text.trim_end(), table.trim_start_matches('\n'));
        }
    }
    Ok(format!("{}\n", text.trim_end()))
}

/// `text` with `"xtask"` in its `[workspace]` table's `members` (the list kept as written: one
/// line or one member per line).
fn with_member(text: &str) -> Result<String> {
    let lines: Vec<&str> = text.lines().collect();
    let start = lines.iter().position(|l| l.trim().starts_with("[workspace]")).expect("checked");
    let end = lines[start + 1..].iter().position(|l| l.trim().starts_with('[')).map_or(lines.len(), |i| start + 1 + i);
    let Some(at) = (start + 1..end).find(|i| lines[*i].trim_start().starts_with("members")) else {
        let mut out: Vec<String> = lines.iter().map(|l| l.to_string()).collect();
        out.insert(start + 1, "members = [\"xtask\"]".to_string());
        return Ok(out.join("\n") + "\n");
    };
    let close = (at..end).find(|i| lines[*i].split('#').next().unwrap_or("").contains(']')).ok_or_else(|| {
        exit::cannot_run("adopt: Cargo.toml: the [workspace] members list does not close: fix it, then adopt again")
    })?;
    let list: String =
        lines[at..=close].iter().map(|l| l.split('#').next().unwrap_or("")).collect::<Vec<_>>().join(" ");
    if list.contains("\"xtask\"") || list.contains("'xtask'") {
        return Ok(text.to_string());
    }
    let mut out: Vec<String> = lines.iter().map(|l| l.to_string()).collect();
    if close == at {
        let line = &lines[at];
        let code = line.split('#').next().unwrap_or(line);
        let i = code.rfind(']').expect("found");
        let before = line[..i].trim_end();
        let sep = if before.ends_with('[') {
            ""
        } else if before.ends_with(',') {
            " "
        } else {
            ", "
        };
        out[at] = format!("{before}{sep}\"xtask\"{}", &line[i..]);
    } else {
        // One member per line: a line like the last one, before the closing bracket.
        let member = |i: &usize| lines[*i].trim_start().starts_with(['"', '\'']);
        let indent = (at + 1..close)
            .rev()
            .find(member)
            .map_or("    ".to_string(), |i| lines[i][..lines[i].len() - lines[i].trim_start().len()].to_string());
        if let Some(last) = (at + 1..close).rev().find(member) {
            let code = lines[last].split('#').next().unwrap_or("").trim_end();
            if !code.ends_with(',') {
                out[last] = lines[last].replacen(code, &format!("{code},"), 1);
            }
        }
        out.insert(close, format!("{indent}\"xtask\","));
    }
    Ok(out.join("\n") + "\n")
}

/// `.cargo/config.toml` with the `cargo xtask` alias.
fn cargo_config(theirs: Option<&str>, ours: &str) -> Result<String> {
    let Some(theirs) = theirs else { return Ok(ours.to_string()) };
    let alias =
        ours.lines().find(|l| l.trim_start().starts_with("xtask")).unwrap_or("xtask = \"run --package xtask --\"");
    let lines: Vec<&str> = theirs.lines().collect();
    let Some(header) = lines.iter().position(|l| l.trim() == "[alias]") else {
        return Ok(format!("{}\n\n[alias]\n{alias}\n", theirs.trim_end()).trim_start().to_string());
    };
    let end =
        lines[header + 1..].iter().position(|l| l.trim().starts_with('[')).map_or(lines.len(), |i| header + 1 + i);
    if let Some(existing) = (header + 1..end).find(|i| lines[*i].split('=').next().is_some_and(|k| k.trim() == "xtask"))
    {
        if lines[existing].trim() == alias.trim() {
            return Ok(theirs.to_string());
        }
        return Err(exit::cannot_run(format!(
            "adopt: .cargo/config.toml already has an `xtask` alias (`{}`): this repository runs another xtask; \
             rename one of them, then adopt again",
            lines[existing].trim()
        )));
    }
    let mut out: Vec<String> = lines.iter().map(|l| l.to_string()).collect();
    out.insert(header + 1, alias.to_string());
    Ok(out.join("\n") + "\n")
}

/// `Cargo.lock` with the tool's locked packages that it lacks (cargo keeps those it uses).
fn cargo_lock(theirs: Option<&str>, ours: &str) -> String {
    let Some(theirs) = theirs else { return ours.to_string() };
    let blocks = |text: &str| -> Vec<String> {
        text.split("\n[[package]]\n").skip(1).map(|b| format!("[[package]]\n{}", b.trim_end())).collect()
    };
    let key = |block: &str| -> (String, String) {
        let field = |name: &str| {
            block
                .lines()
                .find_map(|l| l.strip_prefix(&format!("{name} = \"")))
                .map_or(String::new(), |v| v.trim_end_matches('"').to_string())
        };
        (field("name"), field("version"))
    };
    let have: std::collections::BTreeSet<(String, String)> = blocks(theirs).iter().map(|b| key(b)).collect();
    let mut text = theirs.trim_end().to_string();
    for block in blocks(ours) {
        if !have.contains(&key(&block)) {
            text.push_str("\n\n");
            text.push_str(&block);
        }
    }
    text.push('\n');
    text
}

/// `package.json` with the Supabase CLI this tool pins among its devDependencies, unless it
/// already names the CLI (its own pin is kept: the tool runs 2.48 and later, 2.x and 3.x).
fn package_json(theirs: Option<&str>, ours: &str) -> Result<String> {
    let ours: serde_json::Value = serde_json::from_str(ours)?;
    let pin = ours["devDependencies"]["supabase"].clone();
    let Some(theirs) = theirs else {
        let new = serde_json::json!({ "private": true, "devDependencies": { "supabase": pin } });
        return Ok(format!("{}\n", serde_json::to_string_pretty(&new)?));
    };
    let mut value: serde_json::Value = serde_json::from_str(theirs)
        .map_err(|e| exit::cannot_run(format!("adopt: package.json is not JSON ({e}): fix it, then adopt again")))?;
    let named = ["dependencies", "devDependencies"].iter().any(|k| value[*k].get("supabase").is_some());
    if named {
        return Ok(theirs.to_string());
    }
    let object = value.as_object_mut().ok_or_else(|| exit::cannot_run("adopt: package.json is not a JSON object"))?;
    let dev = object.entry("devDependencies").or_insert_with(|| serde_json::json!({}));
    dev.as_object_mut()
        .ok_or_else(|| exit::cannot_run("adopt: package.json's devDependencies is not an object"))?
        .insert("supabase".into(), pin);
    // npm's own layout: two spaces, a final line feed.
    Ok(format!("{}\n", serde_json::to_string_pretty(&value)?))
}

/// `.gitignore` with each line of ours it lacks (the tool's build, its CLI, its artifacts, the
/// vault files).
fn gitignore(theirs: Option<&str>, ours: &str) -> String {
    let theirs = theirs.unwrap_or("");
    let have: Vec<&str> = theirs.lines().map(|l| l.trim().trim_start_matches('/').trim_end_matches('/')).collect();
    let missing: Vec<&str> = ours
        .lines()
        .filter(|l| !l.trim().is_empty() && !have.contains(&l.trim().trim_start_matches('/').trim_end_matches('/')))
        .collect();
    if missing.is_empty() {
        return theirs.to_string();
    }
    let head = if theirs.trim().is_empty() { String::new() } else { format!("{}\n\n", theirs.trim_end()) };
    format!(
        "{head}# cargo xtask (the rehearsal): its build, its Supabase CLI, what it writes, the vault files\n{}\n",
        missing.join("\n")
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn xtask_joins_a_members_list_as_it_is_written() {
        let one = "[workspace]\nmembers = [\"api\", \"worker\"] # the services\n";
        assert_eq!(
            with_member(one).unwrap(),
            "[workspace]\nmembers = [\"api\", \"worker\", \"xtask\"] # the services\n"
        );
        let many = "# ours\n[workspace]\nresolver = \"2\"\nmembers = [\n  \"api\", # http\n  \"worker\"\n]\n\n[workspace.dependencies]\nserde = \"1\"\n";
        assert_eq!(
            with_member(many).unwrap(),
            "# ours\n[workspace]\nresolver = \"2\"\nmembers = [\n  \"api\", # http\n  \"worker\",\n  \"xtask\",\n]\n\n[workspace.dependencies]\nserde = \"1\"\n"
        );
        assert_eq!(with_member(&with_member(many).unwrap()).unwrap(), with_member(many).unwrap(), "once");
        assert_eq!(
            with_member("[workspace]\nresolver = \"2\"\n").unwrap(),
            "[workspace]\nmembers = [\"xtask\"]\nresolver = \"2\"\n"
        );
    }

    #[test]
    fn the_alias_is_added_once_and_another_xtask_is_refused() {
        let ours = "[alias]\nxtask = \"run --quiet --package xtask --\"\n";
        let theirs = "[build]\njobs = 2\n\n[alias]\nb = \"build\"\n";
        let merged = cargo_config(Some(theirs), ours).unwrap();
        assert_eq!(merged, "[build]\njobs = 2\n\n[alias]\nxtask = \"run --quiet --package xtask --\"\nb = \"build\"\n");
        assert_eq!(cargo_config(Some(&merged), ours).unwrap(), merged);
        let other = cargo_config(Some("[alias]\nxtask = \"run -p tools --\"\n"), ours).unwrap_err();
        assert!(format!("{other:#}").contains("already has an `xtask` alias"));
    }

    #[test]
    fn gitignore_gets_only_the_lines_it_lacks() {
        let ours = "/target\n/node_modules\n/artifacts\n";
        assert_eq!(gitignore(Some("target/\n.env\n"), ours), "target/\n.env\n\n# cargo xtask (the rehearsal): its build, its Supabase CLI, what it writes, the vault files\n/node_modules\n/artifacts\n");
        let once = gitignore(Some("target/\n.env\n"), ours);
        assert_eq!(gitignore(Some(&once), ours), once);
    }
}
