//! The snapshot's records of one object, read back into their parts.

use super::{literal, role};
use crate::text::sql::ident::{find_unquoted, is_identifier, read_ident, read_path, split_unquoted, unquote};

/// `s` split at the first `sep` outside quotes (a name or an expression can hold the separator).
fn split_at<'a>(s: &'a str, sep: &str) -> Option<(&'a str, &'a str)> {
    find_unquoted(s, sep).map(|at| (&s[..at], &s[at + sep.len()..]))
}

/// The values of `keys`, in order, after `rest` (` key=value` each; a value may hold spaces).
pub(super) fn attrs<'a>(mut rest: &'a str, keys: &[&str]) -> Option<Vec<&'a str>> {
    let mut values = Vec::new();
    rest = rest.strip_prefix(&format!(" {}=", keys[0]))?;
    for key in &keys[1..] {
        let (value, more) = split_at(rest, &format!(" {key}="))?;
        values.push(value);
        rest = more;
    }
    values.push(rest);
    Some(values)
}

pub(super) struct Constraint {
    pub name: String,
    pub table: String,
    pub definition: String,
    pub kind: String,
    /// Primary key, unique or exclusion: it makes an index of the same name.
    pub backed_by_index: bool,
    pub index_object: String,
}

impl Constraint {
    /// Added unless the table holds one of that name with that definition (read as the snapshot
    /// read it, `search_path` set to `pg_catalog` for the comparison only); one of that name with
    /// another is dropped first.
    pub fn guarded_add(&self) -> String {
        let name = unquote(&self.name);
        let body = format!(
            "\ndeclare\n  path text := pg_catalog.current_setting('search_path');\n  same boolean;\nbegin\n  \
             perform pg_catalog.set_config('search_path', 'pg_catalog', true);\n  \
             same := exists (select from pg_catalog.pg_constraint where conrelid = {}::pg_catalog.regclass\n    \
             and conname = {} and pg_catalog.pg_get_constraintdef(oid) = {});\n  \
             perform pg_catalog.set_config('search_path', path, true);\n  if not same then\n    \
             alter table {} drop constraint if exists {};\n    alter table {} add constraint {} {};\n  end if;\nend ",
            literal(&self.table),
            literal(&name),
            literal(&self.definition),
            self.table,
            self.name,
            self.table,
            self.name,
            self.definition
        );
        // A tag the definition does not hold (a check's string could).
        let tag = (0..)
            .map(|n| if n == 0 { "$catch_up$".to_string() } else { format!("$catch_up_{n}$") })
            .find(|t| !body.contains(t.as_str()))
            .expect("a free tag");
        format!("do {tag}{body}{tag};")
    }
}

/// `constraint SCHEMA.NAME type=X on TABLE: DEFINITION`.
pub(super) fn constraint(record: &str) -> Option<Constraint> {
    let (path, rest) = read_path(record.strip_prefix("constraint ")?)?;
    let rest = rest.strip_prefix(" type=")?;
    let (kind, rest) = split_at(rest, " on ")?;
    let (table, definition) = split_at(rest, ": ")?;
    let (schema, name) = path.split_once('.')?;
    Some(Constraint {
        name: name.to_string(),
        table: table.to_string(),
        definition: definition.to_string(),
        kind: kind.to_string(),
        backed_by_index: matches!(kind, "p" | "u" | "x"),
        index_object: format!("{schema}.{name}"),
    })
}

pub(super) struct Function {
    pub signature: String,
    pub owner: String,
    pub acl: String,
    pub definition: String,
}

/// `function SIGNATURE owner=O acl=A: DEFINITION`.
pub(super) fn function(record: &str) -> Option<Function> {
    let rest = record.strip_prefix("function ")?;
    let (signature, rest) = split_at(rest, " owner=")?;
    let (owner, rest) = split_at(rest, " acl=")?;
    let (acl, definition) = split_at(rest, ": ")?;
    if !is_identifier(owner) {
        return None;
    }
    Some(Function { signature: signature.into(), owner: owner.into(), acl: acl.into(), definition: definition.into() })
}

pub(super) struct Trigger {
    pub name: String,
    pub table: String,
    pub definition: String,
    pub enabled: String,
}

/// `trigger CREATE [CONSTRAINT] TRIGGER NAME ... ON TABLE ... enabled=X`.
pub(super) fn trigger(record: &str) -> Option<Trigger> {
    let (definition, enabled) = record.strip_prefix("trigger ")?.rsplit_once(" enabled=")?;
    let after =
        definition.strip_prefix("CREATE TRIGGER ").or_else(|| definition.strip_prefix("CREATE CONSTRAINT TRIGGER "))?;
    let (name, rest) = read_ident(after)?;
    let (_, on) = rest.split_once(" ON ")?;
    let (table, _) = read_path(on)?;
    Some(Trigger { name, table, definition: definition.into(), enabled: enabled.into() })
}

pub(super) struct Policy {
    pub name: String,
    pub table: String,
    pub command: String,
    pub permissive: bool,
    pub roles: Vec<String>,
    pub using: String,
    pub check: String,
}

impl Policy {
    pub fn create(&self) -> Result<String, String> {
        let command = match self.command.as_str() {
            "r" => "select",
            "a" => "insert",
            "w" => "update",
            "d" => "delete",
            "*" => "all",
            other => return Err(format!("a policy for command `{other}`: write it by hand")),
        };
        let roles: Vec<String> =
            self.roles.iter().map(|r| if r == "public" { "public".to_string() } else { role(r) }).collect();
        let mut sql = format!(
            "create policy {} on {} as {} for {command} to {}",
            self.name,
            self.table,
            if self.permissive { "permissive" } else { "restrictive" },
            roles.join(", ")
        );
        if self.using != "-" {
            sql.push_str(&format!(" using ({})", self.using));
        }
        if self.check != "-" {
            sql.push_str(&format!(" with check ({})", self.check));
        }
        sql.push(';');
        Ok(sql)
    }
}

/// `policy NAME on TABLE command=C permissive=P roles=R using=U check=K`.
pub(super) fn policy(record: &str) -> Option<Policy> {
    let (name, rest) = read_ident(record.strip_prefix("policy ")?)?;
    let (table, rest) = read_path(rest.strip_prefix(" on ")?)?;
    let rest = rest.strip_prefix(" command=")?;
    let (command, rest) = split_at(rest, " permissive=")?;
    let (permissive, rest) = split_at(rest, " roles=")?;
    let (roles, rest) = split_at(rest, " using=")?;
    let (using, check) = split_at(rest, " check=")?;
    let roles: Vec<&str> = split_unquoted(roles, ",");
    if !roles.iter().all(|r| is_identifier(r)) {
        return None;
    }
    Some(Policy {
        name,
        table,
        command: command.into(),
        permissive: permissive == "true" || permissive == "t",
        roles: roles.iter().map(|r| r.to_string()).collect(),
        using: using.into(),
        check: check.into(),
    })
}

#[derive(Clone)]
pub(super) struct Relation {
    pub name: String,
    pub owner: String,
    pub rls: String,
    pub force_rls: String,
    pub options: String,
    pub acl: String,
    /// persistence, partition key, replica identity: what the writer does not change.
    pub rest: Vec<String>,
}

/// `relation NAME kind=K owner=O rls=B force_rls=B persistence=P options=X acl=A partition_key=K replica_identity=R`.
pub(super) fn relation(record: &str) -> Option<Relation> {
    let (name, rest) = read_path(record.strip_prefix("relation ")?)?;
    let keys =
        ["kind", "owner", "rls", "force_rls", "persistence", "options", "acl", "partition_key", "replica_identity"];
    let v = attrs(rest, &keys)?;
    if !is_identifier(v[1]) {
        return None;
    }
    Some(Relation {
        name,
        owner: v[1].into(),
        rls: v[2].into(),
        force_rls: v[3].into(),
        options: v[5].into(),
        acl: v[6].into(),
        rest: vec![v[0].into(), v[4].into(), v[7].into(), v[8].into()],
    })
}

/// `column SCHEMA.TABLE.COLUMN type=... not_null=... default=... identity=... generated=...
/// collation=... acl=... storage=... statistics=...`.
pub(super) struct Column {
    pub table: String,
    pub name: String,
    pub kind: String,
    pub not_null: bool,
    pub default: String,
    pub identity: String,
    pub generated: String,
    pub collation: String,
    pub acl: String,
    pub storage_and_statistics: (String, String),
}

pub(super) fn column(record: &str) -> Option<Column> {
    let (path, rest) = read_path(record.strip_prefix("column ")?)?;
    let (table, name) = path.rsplit_once('.')?;
    let keys = ["type", "not_null", "default", "identity", "generated", "collation", "acl", "storage", "statistics"];
    let v = attrs(rest, &keys)?;
    Some(Column {
        table: table.into(),
        name: name.into(),
        kind: v[0].into(),
        not_null: v[1] == "true" || v[1] == "t",
        default: v[2].into(),
        identity: v[3].into(),
        generated: v[4].into(),
        collation: v[5].into(),
        acl: v[6].into(),
        storage_and_statistics: (v[7].into(), v[8].into()),
    })
}

pub(super) struct Schema {
    pub name: String,
    pub owner: String,
    pub acl: String,
}

/// `schema NAME owner=O acl=A`.
pub(super) fn schema(record: &str) -> Option<Schema> {
    let (name, rest) = read_ident(record.strip_prefix("schema ")?)?;
    let v = attrs(rest, &["owner", "acl"])?;
    if !is_identifier(v[0]) {
        return None;
    }
    Some(Schema { name, owner: v[0].into(), acl: v[1].into() })
}
