//! `supabase/rehearsal.toml` (SPEC §9): optional; these are the defaults. A small reader for the
//! TOML the file needs (sections, strings, booleans, integers, arrays of strings) keeps a TOML
//! crate out of the cold build; anything else is refused with the line and column.

use std::collections::BTreeMap;
use std::path::Path;

use anyhow::Result;

use crate::exit;

pub const PATH: &str = "supabase/rehearsal.toml";

#[derive(Clone, Debug, PartialEq)]
pub enum Value {
    Str(String),
    Bool(bool),
    Int(i64),
    List(Vec<String>),
}

#[derive(Clone, Debug)]
pub struct Config {
    pub env_files: Vec<String>,
    pub pooler_hosts: Vec<String>,
    pub production_project_refs: Vec<String>,
    /// Every `[section] key` as read, for the sections other modules own (e.g. `[lint]`).
    pub raw: BTreeMap<(String, String), Value>,
}

impl Default for Config {
    fn default() -> Config {
        Config {
            env_files: vec![
                "vault/occ/supabase/database_url_staging.env".into(),
                "vault/occ/supabase/service_key_staging.env".into(),
            ],
            pooler_hosts: vec![".pooler.supabase.com".into(), ".pooler.supabase.co".into()],
            production_project_refs: Vec::new(),
            raw: BTreeMap::new(),
        }
    }
}

impl Config {
    pub fn load(workdir: &Path) -> Result<Config> {
        let mut config = Config::default();
        let Ok(text) = std::fs::read_to_string(workdir.join(PATH)) else { return Ok(config) };
        config.raw =
            parse(&text).map_err(|(line, col, why)| exit::cannot_run(format!("{PATH}:{line}:{col}: {why}")))?;
        let list = |key: &str| -> Result<Option<Vec<String>>> {
            match config.raw.get(&("staging".to_string(), key.to_string())) {
                None => Ok(None),
                Some(Value::List(items)) => Ok(Some(items.clone())),
                Some(_) => Err(exit::cannot_run(format!("{PATH}: [staging] {key} must be an array of strings"))),
            }
        };
        if let Some(v) = list("env_files")? {
            config.env_files = v;
        }
        if let Some(v) = list("pooler_hosts")? {
            config.pooler_hosts = v;
        }
        if let Some(v) = list("production_project_refs")? {
            config.production_project_refs = v;
        }
        Ok(config)
    }
}

type ParseError = (usize, usize, String);

/// `[section]` headers and `key = value` lines; arrays may span lines.
pub fn parse(text: &str) -> Result<BTreeMap<(String, String), Value>, ParseError> {
    let mut out = BTreeMap::new();
    let mut section = String::new();
    let mut lines = text.lines().enumerate().peekable();
    while let Some((n, raw)) = lines.next() {
        let line = strip_comment(raw).trim();
        if line.is_empty() {
            continue;
        }
        let col = raw.len() - raw.trim_start().len() + 1;
        if let Some(name) = line.strip_prefix('[') {
            let name = name.strip_suffix(']').ok_or((n + 1, col, "a section header must end with ]".to_string()))?;
            section = name.trim().to_string();
            continue;
        }
        let (key, value) = line.split_once('=').ok_or((n + 1, col, "expected key = value".to_string()))?;
        let key = key.trim().trim_matches('"').to_string();
        let mut value = value.trim().to_string();
        if value.starts_with('[') {
            while !strip_comment(&value).trim_end().ends_with(']') {
                let (_, more) = lines.next().ok_or((n + 1, col, "unterminated array".to_string()))?;
                value.push(' ');
                value.push_str(strip_comment(more).trim());
            }
        }
        let value_col = raw.find('=').map_or(col, |i| i + 2);
        let parsed = parse_value(value.trim()).map_err(|why| (n + 1, value_col, why))?;
        out.insert((section.clone(), key), parsed);
    }
    Ok(out)
}

fn parse_value(v: &str) -> Result<Value, String> {
    if let Some(inner) = v.strip_prefix('[').and_then(|r| r.strip_suffix(']')) {
        let mut items = Vec::new();
        let mut rest = inner.trim();
        while !rest.is_empty() {
            let (item, after) = parse_string(rest)?;
            items.push(item);
            rest = after.trim_start();
            rest = rest.strip_prefix(',').unwrap_or(rest).trim_start();
        }
        return Ok(Value::List(items));
    }
    match v {
        "true" => return Ok(Value::Bool(true)),
        "false" => return Ok(Value::Bool(false)),
        _ => {}
    }
    if let Ok(n) = v.replace('_', "").parse::<i64>() {
        return Ok(Value::Int(n));
    }
    let (s, rest) = parse_string(v)?;
    if !rest.trim().is_empty() {
        return Err(format!("unexpected text after the string: {rest}"));
    }
    Ok(Value::Str(s))
}

/// A basic (`"..."`, with escapes) or literal (`'...'`) string at the start of `v`.
fn parse_string(v: &str) -> Result<(String, &str), String> {
    let quote = v
        .chars()
        .next()
        .filter(|c| *c == '"' || *c == '\'')
        .ok_or_else(|| format!("expected a quoted string, found {v}"))?;
    let mut out = String::new();
    let mut chars = v[1..].char_indices();
    while let Some((i, c)) = chars.next() {
        match c {
            c if c == quote => return Ok((out, &v[i + 2..])),
            '\\' if quote == '"' => match chars.next() {
                Some((_, 'n')) => out.push('\n'),
                Some((_, 't')) => out.push('\t'),
                Some((_, c)) => out.push(c),
                None => break,
            },
            c => out.push(c),
        }
    }
    Err("unterminated string".to_string())
}

/// The line without a `#` comment (a `#` inside a string is kept).
fn strip_comment(line: &str) -> &str {
    let mut quote = None;
    for (i, c) in line.char_indices() {
        match (quote, c) {
            (None, '"' | '\'') => quote = Some(c),
            (Some(q), c) if c == q => quote = None,
            (None, '#') => return &line[..i],
            _ => {}
        }
    }
    line
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_spec_example_reads_as_written() {
        let text = "[staging]\nenv_files = [\"vault/a.env\",\n  \"vault/b.env\"]  # two\npooler_hosts = [\".pooler.supabase.com\", \"127.0.0.1\"]\nproduction_project_refs = []\n[lint]\nunguarded_create = 'warning'\n";
        let raw = parse(text).unwrap();
        assert_eq!(
            raw[&("staging".into(), "env_files".into())],
            Value::List(vec!["vault/a.env".into(), "vault/b.env".into()])
        );
        assert_eq!(raw[&("staging".into(), "production_project_refs".into())], Value::List(vec![]));
        assert_eq!(raw[&("lint".into(), "unguarded_create".into())], Value::Str("warning".into()));
    }

    #[test]
    fn a_malformed_line_is_refused_with_line_and_column() {
        assert_eq!(parse("[staging]\npooler_hosts = [\"a\", b]\n").unwrap_err().0, 2);
        assert_eq!(parse("[staging]\njust words\n").unwrap_err(), (2, 1, "expected key = value".into()));
    }
}
