//! The guards a `staging` or `url` DSN must pass before anything connects: every host a pooler
//! host that resolves to IPv4 (an IPv6 literal or an IPv6-only name is refused with the runbook's
//! advice), not Supavisor's transaction-mode port, no `hostaddr` or `service` that would bypass the
//! host check, `sslmode` require or stricter, and no project ref listed as production.

use std::net::{IpAddr, ToSocketAddrs};

use crate::text::config::Config;
use crate::text::dsn::Dsn;

/// Every guard the DSN fails, IPv6 first: each a sentence with the runbook's advice.
pub fn refusals(dsn: &Dsn, config: &Config) -> Vec<String> {
    let mut out = Vec::new();
    let hosts = dsn.hosts();
    if hosts.is_empty() || hosts.iter().any(|h| h.is_empty()) {
        out.push("the DSN names no host (libpq would use a local socket): use the pooler DSN from the vault".into());
    }
    let port = dsn.port().unwrap_or(5432);
    for host in hosts.iter().filter(|h| !h.is_empty()) {
        match resolve(host, port) {
            Resolution::Ipv4 => {}
            Resolution::Ipv6Only(addr) => out.push(format!(
                "{host} resolves to IPv6 only ({addr}); IPv6 hosts fail today: source the IPv4 session pooler DSN from \
                 the vault (host ending .pooler.supabase.com), never the direct db.<ref>.supabase.co host"
            )),
            Resolution::Unresolved(why) => {
                out.push(format!("{host} does not resolve ({why}): check the DSN from the vault"))
            }
        }
        if !host_allowed(host, &config.pooler_hosts) {
            out.push(format!(
                "{host} is not a session pooler host (allowed: {}); staging goes through the IPv4 session pooler: \
                 use the DSN from the vault as given, or list the host in supabase/rehearsal.toml [staging] pooler_hosts",
                config.pooler_hosts.join(", ")
            ));
        }
        if port == 6543 && host.ends_with(".pooler.supabase.com") {
            out.push(format!(
                "port 6543 on {host} is Supavisor's transaction-mode pooler, where the rehearsal lock and session \
                 settings do not hold: use the session pooler, port 5432"
            ));
        }
    }
    if dsn.get("hostaddr").is_some() {
        out.push("the DSN sets hostaddr, which connects past the host name the guards check: remove it".into());
    }
    if dsn.get("service").is_some() {
        out.push(
            "the DSN names a service file entry, which the guards cannot see: give host, port and sslmode in the DSN"
                .into(),
        );
    }
    match dsn.sslmode().as_deref() {
        Some("require" | "verify-ca" | "verify-full") => {}
        other => out.push(format!(
            "sslmode is {}; it must be require or stricter (the vault DSN ends with ?sslmode=require)",
            other.map_or("not set".to_string(), |m| format!("`{m}`"))
        )),
    }
    let refs = dsn.project_refs();
    for r in refs.iter().filter(|r| config.production_project_refs.contains(r)) {
        out.push(format!(
            "project ref {r} is listed as production in supabase/rehearsal.toml; rehearsals never run on production"
        ));
    }
    let mut distinct = refs.clone();
    distinct.sort();
    distinct.dedup();
    if distinct.len() > 1 {
        out.push(format!(
            "the DSN names more than one project ({}): give the one staging project",
            distinct.join(", ")
        ));
    }
    out
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

    fn refused(dsn: &str, config: &Config) -> Vec<String> {
        refusals(&Dsn::parse(dsn).unwrap(), config)
    }

    #[test]
    fn every_guard_speaks_and_ipv6_comes_first() {
        let config = Config { production_project_refs: vec!["prod1".into()], ..Config::default() };
        let r = refused("postgres://postgres.prod1:x@[2600:1f18::1]:5432/postgres?sslmode=disable", &config);
        assert_eq!(r.len(), 4, "{r:#?}");
        assert!(r[0].contains("IPv6"));
        assert!(r[1].contains("not a session pooler host"));
        assert!(r[2].contains("sslmode is `disable`"));
        assert!(r[3].contains("prod1"));
    }

    #[test]
    fn quoted_values_options_hostaddr_and_the_transaction_port_are_seen() {
        let config = Config {
            pooler_hosts: vec!["127.0.0.1".into(), ".pooler.supabase.com".into()],
            production_project_refs: vec!["prodref1".into()],
            ..Config::default()
        };
        let r = refused("host=127.0.0.1 sslmode=disable application_name='x sslmode=require host=localhost'", &config);
        assert_eq!(r.len(), 1, "{r:#?}");
        assert!(r[0].contains("sslmode is `disable`"));
        let r = refused(
            "postgresql://postgres:pw@127.0.0.1:5432/postgres?options=reference%3Dprodref1&sslmode=require",
            &config,
        );
        assert!(r.iter().any(|x| x.contains("prodref1 is listed as production")), "{r:#?}");
        let r = refused("host=127.0.0.1 hostaddr=10.0.0.9 sslmode=require", &config);
        assert!(r.iter().any(|x| x.contains("hostaddr")), "{r:#?}");
        let r = refused("postgresql://u:p@127.0.0.1,127.0.0.2/postgres?sslmode=require", &config);
        assert!(
            r.iter().any(|x| x.contains("127.0.0.2 is not a session pooler host")),
            "every host is checked: {r:#?}"
        );
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
