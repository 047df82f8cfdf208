//! Step 2, connectivity: the runbook's query, tee'd to `ipv4_pooler_check_<HHMMSS>.log`; the
//! server address must parse as IPv4.

use std::net::IpAddr;
use std::path::Path;

use anyhow::Result;

use super::Db;
use crate::findings::{self, Finding};
use crate::process::Cmd;

pub const QUERY: &str = "select current_database(), inet_server_addr(), now();";

#[derive(Debug)]
pub struct Connectivity {
    pub reached: bool,
    pub database: Option<String>,
    pub server_addr: Option<String>,
    pub findings: Vec<Finding>,
}

impl Connectivity {
    pub fn ipv4(&self) -> bool {
        self.server_addr.as_deref().and_then(|a| a.parse::<IpAddr>().ok()).is_some_and(|ip| ip.is_ipv4())
    }
}

/// `psql "$DATABASE_URL" -c "select current_database(), inet_server_addr(), now();"`.
pub fn check(db: &Db, log: &Path, log_name: &str) -> Result<Connectivity> {
    let mut file = std::fs::File::create(log)?;
    let out = Cmd::new(&db.psql).arg(&db.dsn).args(["-X", "-c", QUERY]).run(&db.redactor, Some(&mut file))?;
    // Aligned output: a header, a rule, then `database | address | now`.
    let row = out.text.lines().skip_while(|l| !l.starts_with("---")).nth(1).unwrap_or_default();
    let cells: Vec<&str> = row.split('|').map(str::trim).collect();
    let found = out.success() && cells.len() == 3;
    Ok(Connectivity {
        reached: found,
        database: found.then(|| cells[0].to_string()),
        server_addr: found.then(|| cells[1].to_string()).filter(|a| !a.is_empty()),
        findings: findings::scan(&out.text, Some(log_name)),
    })
}
