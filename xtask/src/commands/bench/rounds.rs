//! The staging-like remote the pooler cases run against (a fresh database behind pgbouncer,
//! session mode, TLS, SCRAM, behind the delay proxy), and rounds of two runs against it,
//! alternating, each side's times, connections and round trips tallied.

use std::path::Path;
use std::time::{Duration, Instant};

use anyhow::{Context, Result};

use super::proxy::DelayProxy;
use super::{median, step_times, Row, BENCH_PASSWORD};
use crate::database::local::pooler::Pooler;
use crate::database::local::LocalCluster;
use crate::process::{self, Env};
use crate::progress;
use crate::tools::server::Server;

/// A fresh database behind pgbouncer (session mode, TLS, SCRAM) behind the delay proxy.
pub struct Remote {
    _cluster: LocalCluster,
    _pooler: Pooler,
    pub proxy: DelayProxy,
}

impl Remote {
    pub fn start(server: &Server, rtt: Duration) -> Result<Remote> {
        let cluster = LocalCluster::start(server)?;
        let pooler = Pooler::start(&cluster, BENCH_PASSWORD)?;
        let proxy = DelayProxy::start(([127, 0, 0, 1], pooler.port).into(), rtt / 2)?;
        Ok(Remote { _cluster: cluster, _pooler: pooler, proxy })
    }

    /// The pooler's DSN, through the proxy.
    pub fn dsn(&self) -> String {
        format!(
            "postgresql://postgres:{}@127.0.0.1:{}/postgres?sslmode=require",
            BENCH_PASSWORD.replace('@', "%40").replace('/', "%2F"),
            self.proxy.port
        )
    }
}

/// Rounds of two runs, the other side's (`tool` false) then the tool's, each on a fresh database
/// behind the pooler and the delay proxy at `rtt`, with the runs' `PATH`: `command(tool, dsn)`
/// builds each. A tool's run must succeed, the other's too when `other_must_pass`. Each side's tally,
/// `names` on the progress lines.
pub fn alternate<'s>(
    server: &Server,
    (tree, path): (&Path, &str),
    (rtt, rounds): (Duration, usize),
    (names, other_must_pass): ([&str; 2], bool),
    command: &dyn Fn(bool, &str) -> xshell::Cmd<'s>,
) -> Result<(Tally, Tally)> {
    let (mut other, mut tool_side) = (Tally::default(), Tally::default());
    let width = names.iter().map(|n| n.len()).max().unwrap_or(0);
    for round in 0..rounds {
        for tool in [false, true] {
            let remote = Remote::start(server, rtt)?;
            let _ = std::fs::remove_dir_all(tree.join("artifacts"));
            let _ = std::fs::remove_dir_all(tree.join("feedback"));
            let dsn = remote.dsn();
            let env = Env::client().with("DATABASE_URL", &dsn).with("PATH", path);
            let started = Instant::now();
            let out = process::output(command(tool, &dsn), env).context("running a benchmark round")?;
            let took = started.elapsed();
            let (conns, trips) = (remote.proxy.connections(), remote.proxy.round_trips());
            let who = names[usize::from(tool)];
            anyhow::ensure!(
                out.success() || !(tool || other_must_pass),
                "{who} failed through the pooler:\n{}{}",
                out.stdout,
                out.stderr
            );
            if tool {
                progress!("  steps: {}", step_times(tree));
            }
            (if tool { &mut tool_side } else { &mut other }).add(took, conns, trips);
            progress!(
                "  round {}: {who:<width$} {} ms, {conns} connections, {trips} round trips",
                round + 1,
                took.as_millis()
            );
        }
    }
    Ok((other, tool_side))
}

/// One side of a ratio over the rounds: times, connections and round trips (through the proxy).
#[derive(Default)]
pub struct Tally {
    times: Vec<Duration>,
    conns: usize,
    trips: Vec<usize>,
}

impl Tally {
    pub fn add(&mut self, took: Duration, conns: usize, trips: usize) {
        self.times.push(took);
        self.conns = self.conns.max(conns);
        self.trips.push(trips);
    }

    pub fn median(&self) -> Duration {
        median(&mut self.times.clone())
    }

    /// Its time, its connections (the most in a round, against `conn_target`) and round trips (the
    /// median).
    pub fn rows(&self, name: &str, conn_target: Option<usize>) -> Vec<Row> {
        let mut trips = self.trips.clone();
        trips.sort();
        vec![
            Row::time(name, self.median(), None),
            Row::count("  its connections", self.conns, conn_target),
            Row::count("  its round trips (logins included)", trips.get(trips.len() / 2).copied().unwrap_or(0), None),
        ]
    }
}
