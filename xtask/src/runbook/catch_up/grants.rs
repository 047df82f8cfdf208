//! Grants: the revokes and grants that take an object's acl from one side's to the other's.

use std::collections::{BTreeMap, BTreeSet};

use super::role;
use crate::text::sql::ident::{find_unquoted, is_identifier, split_unquoted};

/// The privilege letters of an `aclitem`, per kind of object.
pub(super) const TABLE: &[(char, &str)] = &[
    ('r', "select"),
    ('a', "insert"),
    ('w', "update"),
    ('d', "delete"),
    ('D', "truncate"),
    ('x', "references"),
    ('t', "trigger"),
];
pub(super) const COLUMN: &[(char, &str)] = &[('r', "select"), ('a', "insert"), ('w', "update"), ('x', "references")];
pub(super) const EXECUTE: &[(char, &str)] = &[('X', "execute")];
pub(super) const SCHEMA: &[(char, &str)] = &[('U', "usage"), ('C', "create")];

/// `grantee -> privileges` of an acl as the snapshot prints it (`a=r/b,c=arwd/b`, or `-`).
fn acl_map(acl: &str) -> Option<BTreeMap<String, String>> {
    let mut out = BTreeMap::new();
    if acl == "-" {
        return Some(out);
    }
    // `grantee=privileges/grantor`, a name quoted as aclitemout quotes it (a `,`, `=` or `/` in
    // it is inside its quotes); a grantee that is not a name as PostgreSQL prints one is refused.
    for item in split_unquoted(acl, ",") {
        let eq = find_unquoted(item, "=")?;
        let (grantee, rest) = (&item[..eq], &item[eq + 1..]);
        let slash = find_unquoted(rest, "/")?;
        let privileges = &rest[..slash];
        if !(grantee.is_empty() || is_identifier(grantee) || is_identifier(&grantee.to_ascii_lowercase())) {
            return None;
        }
        out.insert(grantee.to_string(), privileges.to_string());
    }
    Some(out)
}

/// The revokes and grants that take `on` (`table public.notes`; a column of it with `column`)
/// from the acl `from` to `to`, per grantee whose privileges differ. `from` is `None` for an
/// object just made: whatever default privileges gave it is revoked from each grantee `to` names
/// and from public.
pub(super) fn grants(
    on: &str,
    column: Option<&str>,
    from: Option<&str>,
    to: &str,
    letters: &[(char, &str)],
) -> Result<Vec<String>, String> {
    if from == Some(to) || (from.is_none() && to == "-") {
        return Ok(Vec::new());
    }
    // A null acl means the built-in defaults (a column's: none), which no list written here says.
    if from.is_some_and(|f| (f == "-") != (to == "-")) && column.is_none() {
        return Err("its grants go between the built-in defaults and a list: write them by hand".into());
    }
    let unreadable = || format!("the grants on {on} could not be read");
    let (f, t) = (acl_map(from.unwrap_or("-")).ok_or_else(unreadable)?, acl_map(to).ok_or_else(unreadable)?);
    let mut out = Vec::new();
    if from.is_none() && !t.contains_key("") {
        out.push(format!("revoke all{} on {on} from public;", column.map_or(String::new(), |c| format!(" ({c})"))));
    }
    let cols = column.map_or(String::new(), |c| format!(" ({c})"));
    let grantees: BTreeSet<&String> = f.keys().chain(t.keys()).collect();
    for g in grantees {
        let (was, now) = (f.get(g).map_or("", String::as_str), t.get(g).map_or("", String::as_str));
        if was == now {
            continue;
        }
        let who = if g.is_empty() {
            "public".to_string()
        } else if g.starts_with('"') {
            g.clone()
        } else {
            role(g)
        };
        out.push(format!("revoke all{cols} on {on} from {who};"));
        let (mut plain, mut optioned) = (Vec::new(), Vec::new());
        let chars: Vec<char> = now.chars().collect();
        for (i, c) in chars.iter().enumerate() {
            if *c == '*' {
                continue;
            }
            let word = letters
                .iter()
                .find(|(l, _)| l == c)
                .map(|(_, w)| format!("{w}{cols}"))
                .ok_or_else(|| format!("a privilege `{c}` on {on}: write it by hand"))?;
            if chars.get(i + 1) == Some(&'*') {
                optioned.push(word);
            } else {
                plain.push(word);
            }
        }
        if !plain.is_empty() {
            out.push(format!("grant {} on {on} to {who};", plain.join(", ")));
        }
        if !optioned.is_empty() {
            out.push(format!("grant {} on {on} to {who} with grant option;", optioned.join(", ")));
        }
    }
    Ok(out)
}
