//! Step 2, connectivity: the runbook's query on the working session, tee'd to
//! `ipv4_pooler_check_<HHMMSS>.log`; the server address must parse as IPv4. A server that takes
//! the connection and never answers cannot hang the run: libpq's connect timeout bounds the
//! connection, and a watchdog bounds the query.

use std::net::IpAddr;
use std::time::Duration;

use anyhow::Result;

use crate::database::Target;
use crate::evidence::artifacts::Transcript;
use crate::text::findings::{self, Finding};

pub const QUERY: &str = "select current_database(), inet_server_addr(), now();";

#[derive(Debug)]
pub struct Connectivity {
    pub reached: bool,
    pub database: Option<String>,
    pub server_addr: Option<String>,
    pub findings: Vec<Finding>,
    /// The check ran past its bound and was stopped.
    pub timed_out: bool,
}

impl Connectivity {
    pub fn ipv4(&self) -> bool {
        self.server_addr.as_deref().and_then(|a| a.parse::<IpAddr>().ok()).is_some_and(|ip| ip.is_ipv4())
    }
}

/// `psql "$DATABASE_URL" -c "select current_database(), inet_server_addr(), now();"`, as the
/// session's first round trip, which also reads `reads` ([`Target::open_with`]): their lines come
/// back second.
pub fn check(
    target: &mut Target,
    log: &mut Transcript,
    reads: &[String],
) -> Result<(Connectivity, crate::database::FirstTrip)> {
    let limit = Duration::from_secs(u64::from(target.conn().connect_timeout) + 20);
    target.doing("the connectivity check");
    let first = target.open_with(QUERY, reads, Some(log), limit)?;
    let (text, timed_out) = (&first.text, first.timed_out);
    // Aligned output: a header, a rule, then `database | address | now`.
    let row = text.lines().skip_while(|l| !l.starts_with("---")).nth(1).unwrap_or_default();
    let cells: Vec<&str> = row.split('|').map(str::trim).collect();
    let found = cells.len() == 3;
    let conn = Connectivity {
        reached: found,
        database: found.then(|| cells[0].to_string()),
        server_addr: found.then(|| cells[1].to_string()).filter(|a| !a.is_empty()),
        findings: findings::scan(text, Some(log.rel()), target.kind.place()),
        timed_out,
    };
    Ok((conn, first))
}
