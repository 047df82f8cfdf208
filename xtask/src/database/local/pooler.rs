//! A staging-like session pooler for tests and benchmarks: `pgbouncer` in session mode with TLS (a
//! self-signed certificate made here) and SCRAM passwords, on 127.0.0.1, in front of a throwaway
//! cluster. The DSN it hands out looks like the vault's: a password, `sslmode=require`.

use std::io::{BufRead, BufReader};
use std::process::Child;
use std::sync::mpsc;
use std::time::Duration;

use anyhow::Result;
use xshell::{cmd, Shell};

use super::rundir::{scratch_dir, RunAs, Scratch};
use super::LocalCluster;
use crate::exit;
use crate::process::signals::{self, ChildGuard};
use crate::process::{self, Env};
use crate::tools::{ensure_program, find_client};

/// The project ref of the pooler's `postgres.<ref>` user, as on Supavisor.
pub const TEST_REF: &str = "stagingref1";

pub struct Pooler {
    pub port: u16,
    child: Option<Child>,
    _guard: ChildGuard,
    // Dropped after the child: its config, certificate and socket.
    _dir: Scratch,
}

/// How pgbouncer assigns server connections: Supavisor's port 5432 is session mode, 6543 transaction
/// mode. In transaction mode the server connections are used in turn (`server_round_robin`), as on a
/// busy pooler, where a client's next transaction lands on whichever is free.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Mode {
    Session,
    Transaction,
}

impl Pooler {
    /// Give `postgres` the `password` (SCRAM) and start pgbouncer in session mode in front of `cluster`.
    pub fn start(cluster: &LocalCluster, password: &str) -> Result<Pooler> {
        Pooler::start_in(cluster, password, Mode::Session)
    }

    pub fn start_in(cluster: &LocalCluster, password: &str, mode: Mode) -> Result<Pooler> {
        let pgbouncer = ensure_program("pgbouncer", "pgbouncer", "the staging-like session pooler")?;
        let openssl = ensure_program("openssl", "openssl", "a self-signed certificate for the pooler")?;
        let run_as = RunAs::detect()?;
        let dir = scratch_dir("rehearsal-pooler-")?;
        let d = dir.path();

        let set =
            format!("set password_encryption = 'scram-sha-256';\nalter role postgres password {};\n", quote(password));
        let (sh, psql, admin) = (Shell::new()?, find_client("psql")?, cluster.admin_dsn());
        let out = process::output_with_input(
            cmd!(sh, "{psql} -X -q -v ON_ERROR_STOP=1 -d {admin} -f -"),
            Env::client(),
            Some(set.into_bytes()),
        )?;
        anyhow::ensure!(out.success(), "setting the pooler password: {}", out.stderr);

        let (key, cert) = (d.join("key.pem"), d.join("cert.pem"));
        let made = process::output(
            cmd!(
                sh,
                "{openssl} req -x509 -newkey rsa:2048 -nodes -days 1 -subj /CN=127.0.0.1 -keyout {key} -out {cert}"
            ),
            Env::client(),
        )?;
        anyhow::ensure!(made.success(), "openssl req failed: {}", made.stderr);

        let port = std::net::TcpListener::bind("127.0.0.1:0")?.local_addr()?.port();
        // `postgres` and Supavisor's `postgres.<project ref>` shape, both logging in as postgres.
        let secret = password.replace('"', "\"\"");
        std::fs::write(
            d.join("userlist.txt"),
            format!("\"postgres\" \"{secret}\"\n\"postgres.{TEST_REF}\" \"{secret}\"\n"),
        )?;
        let pool_mode = match mode {
            Mode::Session => "session",
            Mode::Transaction => "transaction\nserver_round_robin = 1",
        };
        let ini = format!(
            "[databases]\npostgres = host=127.0.0.1 port={server} dbname=postgres user=postgres\n\n[pgbouncer]\nlisten_addr = 127.0.0.1\n\
             listen_port = {port}\nunix_socket_dir =\nauth_type = scram-sha-256\nauth_file = {dir}/userlist.txt\n\
             pool_mode = {pool_mode}\nmax_client_conn = 100\ndefault_pool_size = 20\nclient_tls_sslmode = require\n\
             client_tls_key_file = {dir}/key.pem\nclient_tls_cert_file = {dir}/cert.pem\n\
             ignore_startup_parameters = extra_float_digits\n",
            server = cluster.port(),
            dir = d.display()
        );
        std::fs::write(d.join("pgbouncer.ini"), ini)?;
        // The files, then the directory: until then only root can enter it.
        for f in ["userlist.txt", "key.pem", "cert.pem", "pgbouncer.ini", ""] {
            run_as.chown(&d.join(f))?;
        }

        let ini = d.join("pgbouncer.ini");
        // A killed owner takes its pooler with it (the server policy's parent-death signal).
        let mut child = process::spawn_server(cmd!(sh, "{pgbouncer} {ini}"), Env::server().as_user(run_as.ids()))?;
        let guard = ChildGuard::register(child.id(), None);
        let stderr = child.stderr.take().expect("piped");
        let (tx, rx) = mpsc::channel();
        std::thread::spawn(move || {
            for line in BufReader::new(stderr).lines().map_while(Result::ok) {
                let _ = tx.send(line);
            }
        });
        let mut pooler = Pooler { port, child: Some(child), _guard: guard, _dir: dir };
        let mut log = String::new();
        loop {
            match rx.recv_timeout(Duration::from_secs(30)) {
                Ok(line) if line.contains("process up") => return Ok(pooler),
                Ok(line) => log.push_str(&format!("{line}\n")),
                Err(_) => {
                    pooler.stop();
                    return Err(exit::cannot_run(format!("pgbouncer did not start:\n{log}")));
                }
            }
            if signals::interrupted() {
                return Err(exit::interrupted());
            }
        }
    }

    /// The DSN a client uses: the vault's shape, `sslmode=require`, the password URL-encoded.
    pub fn dsn(&self, password: &str) -> String {
        format!("postgresql://postgres:{}@127.0.0.1:{}/postgres?sslmode=require", url_encode(password), self.port)
    }

    /// The same, as Supavisor's `postgres.<project ref>` user.
    pub fn dsn_with_ref(&self, password: &str) -> String {
        format!(
            "postgresql://postgres.{TEST_REF}:{}@127.0.0.1:{}/postgres?sslmode=require",
            url_encode(password),
            self.port
        )
    }

    /// Stop pgbouncer (also on drop): a pooler that goes away under a running rehearsal.
    pub fn stop(&mut self) {
        if let Some(mut child) = self.child.take() {
            signals::send(child.id(), libc::SIGINT);
            let _ = child.wait();
        }
    }
}

impl Drop for Pooler {
    fn drop(&mut self) {
        self.stop();
    }
}

fn quote(s: &str) -> String {
    format!("'{}'", s.replace('\'', "''"))
}

pub fn url_encode(s: &str) -> String {
    s.bytes()
        .map(|b| match b {
            b'A'..=b'Z' | b'a'..=b'z' | b'0'..=b'9' | b'-' | b'_' | b'.' | b'~' => (b as char).to_string(),
            _ => format!("%{b:02X}"),
        })
        .collect()
}
