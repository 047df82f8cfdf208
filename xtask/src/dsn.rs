//! Reading a DSN (never rewriting it) and the guards for `staging` and `url` targets (SPEC §9):
//! a pooler host, IPv4 resolution, `sslmode` require or stricter, no production project ref.

use std::net::{IpAddr, ToSocketAddrs};

use crate::config::Config;
use crate::redact::percent_decode;

/// What the tool needs to know about a DSN; the DSN itself is passed on as given.
#[derive(Clone, Debug, Default, PartialEq)]
pub struct DsnInfo {
    pub host: String,
    pub port: u16,
    pub user: String,
    pub database: String,
    pub sslmode: Option<String>,
}

/// Parse a `postgres://` URL or a `key=value` connection string.
pub fn parse(dsn: &str) -> Result<DsnInfo, String> {
    let dsn = dsn.trim();
    let mut info = DsnInfo { port: 5432, database: String::new(), ..DsnInfo::default() };
    if let Some(rest) = dsn.strip_prefix("postgresql://").or_else(|| dsn.strip_prefix("postgres://")) {
        let (main, query) = rest.split_once('?').unwrap_or((rest, ""));
        let (authority, path) = main.split_once('/').unwrap_or((main, ""));
        let (userinfo, hostport) = authority.rsplit_once('@').unwrap_or(("", authority));
        info.user = percent_decode(userinfo.split(':').next().unwrap_or_default());
        let (host, port) = if let Some(bracketed) = hostport.strip_prefix('[') {
            let (host, after) = bracketed.split_once(']').ok_or("unclosed [ in the host")?;
            (host.to_string(), after.strip_prefix(':'))
        } else {
            match hostport.rsplit_once(':') {
                Some((h, p)) => (h.to_string(), Some(p)),
                None => (hostport.to_string(), None),
            }
        };
        info.host = percent_decode(&host);
        if let Some(port) = port.filter(|p| !p.is_empty()) {
            info.port = port.parse().map_err(|_| format!("port `{port}` is not a number"))?;
        }
        info.database = percent_decode(path);
        for pair in query.split('&').filter(|p| !p.is_empty()) {
            let (k, v) = pair.split_once('=').unwrap_or((pair, ""));
            match k {
                "sslmode" => info.sslmode = Some(percent_decode(v)),
                "host" => info.host = percent_decode(v),
                "port" => info.port = v.parse().map_err(|_| format!("port `{v}` is not a number"))?,
                "user" => info.user = percent_decode(v),
                "dbname" => info.database = percent_decode(v),
                _ => {}
            }
        }
    } else if dsn.contains('=') {
        for pair in dsn.split_whitespace() {
            let (k, v) = pair.split_once('=').ok_or_else(|| format!("`{pair}` is not key=value"))?;
            let v = v.trim_matches('\'').to_string();
            match k {
                "host" => info.host = v,
                "port" => info.port = v.parse().map_err(|_| format!("port `{v}` is not a number"))?,
                "user" => info.user = v,
                "dbname" => info.database = v,
                "sslmode" => info.sslmode = Some(v),
                _ => {}
            }
        }
    } else {
        return Err("not a postgres:// URL or a key=value connection string".into());
    }
    if info.host.is_empty() {
        return Err("no host".into());
    }
    if info.database.is_empty() {
        info.database = if info.user.is_empty() { "postgres".into() } else { info.user.clone() };
    }
    Ok(info)
}

/// Every guard the DSN fails, IPv6 first: each a sentence with the runbook's advice.
pub fn guard(info: &DsnInfo, config: &Config) -> Vec<String> {
    let mut refusals = Vec::new();
    match resolve(&info.host, info.port) {
        Resolution::Ipv4 => {}
        Resolution::Ipv6Only(addr) => refusals.push(format!(
            "{} resolves to IPv6 only ({addr}); IPv6 hosts fail today: source the IPv4 session pooler DSN from \
             the vault (host ending .pooler.supabase.com), never the direct db.<ref>.supabase.co host",
            info.host
        )),
        Resolution::Unresolved(why) => {
            refusals.push(format!("{} does not resolve ({why}): check the DSN from the vault", info.host))
        }
    }
    if !host_allowed(&info.host, &config.pooler_hosts) {
        refusals.push(format!(
            "{} is not a session pooler host (allowed: {}); staging goes through the IPv4 session pooler: \
             use the DSN from the vault as given, or list the host in supabase/rehearsal.toml [staging] pooler_hosts",
            info.host,
            config.pooler_hosts.join(", ")
        ));
    }
    match info.sslmode.as_deref() {
        Some("require" | "verify-ca" | "verify-full") => {}
        other => refusals.push(format!(
            "sslmode is {}; it must be require or stricter (the vault DSN ends with ?sslmode=require)",
            other.map_or("not set".to_string(), |m| format!("`{m}`"))
        )),
    }
    if let Some(project) = project_ref(info).filter(|r| config.production_project_refs.contains(r)) {
        refusals.push(format!(
            "project ref {project} is listed as production in supabase/rehearsal.toml; rehearsals never run on production"
        ));
    }
    refusals
}

/// The Supabase project ref: from a `postgres.<ref>` pooler user or a `db.<ref>.supabase.co` host.
pub fn project_ref(info: &DsnInfo) -> Option<String> {
    if let Some(r) = info.user.strip_prefix("postgres.").filter(|r| !r.is_empty()) {
        return Some(r.to_string());
    }
    let host = info.host.strip_prefix("db.")?;
    host.strip_suffix(".supabase.co").filter(|r| !r.contains('.')).map(str::to_string)
}

/// `.suffix` entries match a suffix; others match the host exactly.
pub fn host_allowed(host: &str, allowed: &[String]) -> bool {
    allowed.iter().any(|a| if a.starts_with('.') { host.ends_with(a.as_str()) } else { host == a })
}

enum Resolution {
    Ipv4,
    Ipv6Only(String),
    Unresolved(String),
}

fn resolve(host: &str, port: u16) -> Resolution {
    if let Ok(ip) = host.parse::<IpAddr>() {
        return if ip.is_ipv4() { Resolution::Ipv4 } else { Resolution::Ipv6Only(ip.to_string()) };
    }
    match (host, port).to_socket_addrs() {
        Ok(addrs) => {
            let addrs: Vec<_> = addrs.collect();
            if addrs.iter().any(|a| a.is_ipv4()) {
                Resolution::Ipv4
            } else if let Some(a) = addrs.first() {
                Resolution::Ipv6Only(a.ip().to_string())
            } else {
                Resolution::Unresolved("no addresses".into())
            }
        }
        Err(e) => Resolution::Unresolved(e.to_string()),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_pooler_url_with_an_escaped_password() {
        let info = parse(
            "postgresql://postgres.abcd:p%40ss@aws-0-us-east-1.pooler.supabase.com:5432/postgres?sslmode=require",
        )
        .unwrap();
        assert_eq!(info.host, "aws-0-us-east-1.pooler.supabase.com");
        assert_eq!((info.port, info.user.as_str(), info.database.as_str()), (5432, "postgres.abcd", "postgres"));
        assert_eq!(info.sslmode.as_deref(), Some("require"));
        assert_eq!(project_ref(&info).as_deref(), Some("abcd"));
    }

    #[test]
    fn ipv6_literals_and_keyword_strings() {
        assert_eq!(parse("postgres://u@[2600:1f18::1]:6543/db").unwrap().host, "2600:1f18::1");
        let kv = parse("host=db.xyz.supabase.co port=5432 user=postgres dbname=postgres sslmode=require").unwrap();
        assert_eq!(project_ref(&kv).as_deref(), Some("xyz"));
    }

    #[test]
    fn every_guard_speaks_and_ipv6_comes_first() {
        let config = Config { production_project_refs: vec!["prod1".into()], ..Config::default() };
        let info = parse("postgres://postgres.prod1:x@[2600:1f18::1]:5432/postgres?sslmode=disable").unwrap();
        let refusals = guard(&info, &config);
        assert_eq!(refusals.len(), 4, "{refusals:#?}");
        assert!(refusals[0].contains("IPv6"));
        assert!(refusals[1].contains("not a session pooler host"));
        assert!(refusals[2].contains("sslmode is `disable`"));
        assert!(refusals[3].contains("prod1"));
    }

    #[test]
    fn suffixes_and_exact_hosts() {
        let allowed = vec![".pooler.supabase.com".to_string(), "127.0.0.1".to_string()];
        assert!(host_allowed("aws-0.pooler.supabase.com", &allowed));
        assert!(!host_allowed("evilpooler.supabase.com.attacker", &allowed));
        assert!(host_allowed("127.0.0.1", &allowed));
        assert!(!host_allowed("127.0.0.2", &allowed));
    }
}
