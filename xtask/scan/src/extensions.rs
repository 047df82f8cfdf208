//! Supabase's extensions and how the local target provides each: part of the server's own
//! contrib modules, a Debian package installed on demand, a stand-in of this tool's, or nothing
//! (then a migration that creates it fails with a finding of its own, saying what to do). The
//! list follows the extensions Supabase lets `postgres` create (supautils' privileged
//! extensions) and those a new Supabase project already has.

/// How the local target provides an extension.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Local {
    /// A contrib module of the PostgreSQL server package.
    Contrib,
    /// A Debian package, `postgresql-<major>-<suffix>`, installed when a migration needs it.
    Package(&'static str),
    /// A stand-in of this tool's: the extension's SQL surface, with what it does not do.
    StandIn(&'static str),
    /// Not in this machine's package lists; PostgreSQL's own apt repository (apt.postgresql.org)
    /// has it as `postgresql-<major>-<suffix>`, installed when a migration needs it and apt-get
    /// offers it.
    Pgdg(&'static str),
    /// Nothing on this machine provides it.
    Missing,
}

/// The commands that add PostgreSQL's own apt repository and install `package` from it.
pub fn pgdg_commands(package: &str) -> String {
    format!(
        "sudo apt-get install -y postgresql-common && sudo /usr/share/postgresql-common/pgdg/apt.postgresql.org.sh -y \
         && sudo apt-get install -y {package}"
    )
}

/// `(name, how the local target provides it)` for every extension a Supabase database offers.
pub const SUPABASE: &[(&str, Local)] = &[
    ("address_standardizer", Local::Package("postgis-3")),
    ("address_standardizer_data_us", Local::Package("postgis-3")),
    ("autoinc", Local::Contrib),
    ("bloom", Local::Contrib),
    ("btree_gin", Local::Contrib),
    ("btree_gist", Local::Contrib),
    ("citext", Local::Contrib),
    ("cube", Local::Contrib),
    ("dblink", Local::Contrib),
    ("dict_int", Local::Contrib),
    ("dict_xsyn", Local::Contrib),
    ("earthdistance", Local::Contrib),
    ("fuzzystrmatch", Local::Contrib),
    ("hstore", Local::Contrib),
    ("http", Local::Pgdg("http")),
    ("hypopg", Local::Package("hypopg")),
    ("index_advisor", Local::Missing),
    ("insert_username", Local::Contrib),
    ("intarray", Local::Contrib),
    ("isn", Local::Contrib),
    ("ltree", Local::Contrib),
    ("moddatetime", Local::Contrib),
    ("pg_cron", Local::Package("cron")),
    ("pg_graphql", Local::StandIn("graphql.resolve() answers every query with an error: there is no GraphQL schema behind it")),
    ("pg_hashids", Local::Missing),
    ("pg_jsonschema", Local::Missing),
    ("pg_net", Local::StandIn("requests are queued in net.http_request_queue and never sent; no response ever arrives")),
    ("pg_stat_monitor", Local::Missing),
    ("pg_stat_statements", Local::Contrib),
    ("pg_trgm", Local::Contrib),
    ("pg_walinspect", Local::Contrib),
    ("pgaudit", Local::Package("pgaudit")),
    ("pgcrypto", Local::Contrib),
    ("pgjwt", Local::StandIn("written for this tool in SQL over pgcrypto: sign(), verify(), url_encode(), url_decode() as pgjwt has them, HS256/384/512 only")),
    ("pgmq", Local::Missing),
    ("pgroonga", Local::Missing),
    ("pgroonga_database", Local::Missing),
    ("pgrouting", Local::Package("pgrouting")),
    ("pgrowlocks", Local::Contrib),
    ("pgsodium", Local::StandIn("the extension and its schema only, so a dump header's `create extension if not exists` applies; none of its functions exists (a call fails: rehearse it on staging)")),
    ("pgtap", Local::Package("pgtap")),
    ("plcoffee", Local::Missing),
    ("pljava", Local::Missing),
    ("plls", Local::Missing),
    ("plpgsql", Local::Contrib),
    ("plpgsql_check", Local::Package("plpgsql-check")),
    ("plv8", Local::Missing),
    ("postgis", Local::Package("postgis-3")),
    ("postgis_raster", Local::Package("postgis-3")),
    ("postgis_sfcgal", Local::Package("postgis-3")),
    ("postgis_tiger_geocoder", Local::Package("postgis-3")),
    ("postgis_topology", Local::Package("postgis-3")),
    ("postgres_fdw", Local::Contrib),
    ("refint", Local::Contrib),
    ("rum", Local::Package("rum")),
    ("seg", Local::Contrib),
    ("sslinfo", Local::Contrib),
    ("supabase_vault", Local::StandIn("secrets are stored encoded, not encrypted: never keep a real secret in a local run")),
    ("tablefunc", Local::Contrib),
    ("tcn", Local::Contrib),
    ("timescaledb", Local::Missing),
    ("tsm_system_rows", Local::Contrib),
    ("tsm_system_time", Local::Contrib),
    ("unaccent", Local::Contrib),
    ("uuid-ossp", Local::Contrib),
    ("vector", Local::Pgdg("pgvector")),
    ("wrappers", Local::Missing),
];

/// How the local target provides `name`, or `None` when Supabase does not offer it.
pub fn supabase(name: &str) -> Option<Local> {
    SUPABASE.iter().find(|(n, _)| *n == name).map(|(_, l)| *l)
}

/// The extensions `create extension` statements in `sql` name (lower-cased, unquoted).
pub fn created_in(sql: &str) -> Vec<String> {
    let lower = sql.to_ascii_lowercase();
    let mut out = Vec::new();
    let mut rest = lower.as_str();
    while let Some(at) = rest.find("create") {
        rest = &rest[at + "create".len()..];
        let mut words = rest.split_whitespace();
        if words.next() != Some("extension") {
            continue;
        }
        let mut name = words.next().unwrap_or_default();
        if name == "if" {
            let _ = (words.next(), words.next());
            name = words.next().unwrap_or_default();
        }
        let name = name.trim_end_matches(';').trim_matches('"');
        let name: String = name.chars().take_while(|c| c.is_ascii_alphanumeric() || *c == '_' || *c == '-').collect();
        if !name.is_empty() && !out.contains(&name) {
            out.push(name);
        }
    }
    out
}

/// The schemas through which SQL calls into an extension without creating it (the extensions a
/// Supabase database already has).
const SCHEMAS: &[(&str, &str)] = &[
    ("vault.", "supabase_vault"),
    ("graphql.", "pg_graphql"),
    ("net.", "pg_net"),
    ("cron.", "pg_cron"),
    ("pgsodium.", "pgsodium"),
];

/// The tool's stand-in extension whose schema an error message names (`function
/// pgsodium.crypto_aead_det_encrypt(...) does not exist`): its name and what the stand-in lacks.
pub fn stand_in_named(message: &str) -> Option<(&'static str, &'static str)> {
    let lower = message.to_ascii_lowercase();
    SUPABASE.iter().find_map(|(name, local)| {
        let Local::StandIn(lacks) = local else { return None };
        let schema = SCHEMAS.iter().find(|(_, n)| n == name).map_or(*name, |(s, _)| s.trim_end_matches('.'));
        let named = lower.match_indices(&format!("{schema}.")).any(
            |(at, _)| !matches!(lower[..at].chars().next_back(), Some(c) if c.is_ascii_alphanumeric() || c == '_'),
        );
        named.then_some((*name, *lacks))
    })
}

/// The extensions `sql` creates ([`created_in`]) or calls into through their schema (`vault.`,
/// `graphql.`, `net.`, `cron.`).
pub fn used_in(sql: &str) -> Vec<String> {
    let mut out = created_in(sql);
    let lower = sql.to_ascii_lowercase();
    for (schema, name) in SCHEMAS {
        let called = lower.match_indices(schema).any(|(at, _)| {
            let before = lower[..at].chars().next_back();
            !matches!(before, Some(c) if c.is_ascii_alphanumeric() || c == '_' || c == '.' || c == '"')
        });
        if called && !out.iter().any(|n| n == name) {
            out.push(name.to_string());
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn create_extension_statements_are_found_quoted_or_not() {
        let sql =
            "create extension if not exists \"uuid-ossp\" with schema extensions;\nCREATE EXTENSION moddatetime;\n\
                   create extension   pg_cron;\ncreate table extension_log (id int);\n";
        assert_eq!(created_in(sql), vec!["uuid-ossp", "moddatetime", "pg_cron"]);
    }

    #[test]
    fn schemas_called_into_count_as_used() {
        let sql = "select vault.create_secret('x');\nselect cron.schedule('a', '* * * * *', 'select 1');\n\
                   select public.net.x, my_net.y, internet.z;\n";
        assert_eq!(used_in(sql), vec!["supabase_vault", "pg_cron"]);
    }

    #[test]
    fn an_error_naming_a_stand_ins_schema_names_the_stand_in() {
        let (name, lacks) =
            stand_in_named("function pgsodium.crypto_aead_det_encrypt(bytea, bytea, bigint) does not exist").unwrap();
        assert_eq!(name, "pgsodium");
        assert!(lacks.contains("none of its functions exists"), "{lacks}");
        assert_eq!(stand_in_named("function not_pgsodium.x() does not exist"), None);
        assert_eq!(stand_in_named("relation \"public.t\" does not exist"), None);
    }

    #[test]
    fn every_extension_has_one_entry() {
        let mut names: Vec<&str> = SUPABASE.iter().map(|(n, _)| *n).collect();
        let before = names.len();
        names.sort();
        names.dedup();
        assert_eq!(names.len(), before);
        assert_eq!(supabase("vector"), Some(Local::Pgdg("pgvector")));
        assert_eq!(supabase("not_on_supabase"), None);
    }
}
