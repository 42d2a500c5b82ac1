//! Real servers the cluster tests need, started by the tests themselves on free loopback ports
//! from Debian's packages (`scripts/setup.sh test` installs them): one Postgres for the whole
//! test process, each test in a database of its own; a `redis-server` per test that wants one,
//! so a test may kill, stop or restart its own.
//!
//! Every server is started through `setpriv --pdeathsig` (util-linux) by a keeper thread that
//! lives as long as the test process: when the process ends (even killed), its servers end too.

use std::{
    net::{SocketAddr, TcpListener, TcpStream},
    path::PathBuf,
    process::{Child, Command, Stdio},
    sync::{
        Mutex, OnceLock,
        atomic::{AtomicU32, Ordering},
        mpsc,
    },
    thread,
    time::{Duration, Instant},
};

/// A free port on 127.0.0.1 (free when asked; the server binds it a moment later), never one
/// handed out before in this process ([`claim`]).
pub fn free_port() -> u16 {
    loop {
        let port =
            TcpListener::bind("127.0.0.1:0").and_then(|l| l.local_addr()).map(|a| a.port()).expect("a free port");
        if claim(port) {
            return port;
        }
    }
}

/// Whether `port` is new to this process: true once per port. Tests run twelve at a time, and
/// the kernel may offer a port just let go to two of them in turn: a second `redis-server` then
/// failed to bind it, and its test, finding the port open, talked to the first test's Redis —
/// freezing its own changed nothing (`cluster::redis_hung_never_hangs_a_node` failed so, once).
pub fn claim(port: u16) -> bool {
    static GIVEN: Mutex<Vec<u16>> = Mutex::new(Vec::new());
    let mut given = GIVEN.lock().unwrap_or_else(std::sync::PoisonError::into_inner);
    let new = !given.contains(&port);
    if new {
        given.push(port);
    }
    new
}

type Spawn = (Command, mpsc::Sender<std::io::Result<u32>>);

/// Starts `program` with `args` as a child of the keeper thread, under `setpriv`, which gives
/// it `death_signal` for when its parent goes (the keeper thread, so: the test process), and
/// the `postgres` account when `as_postgres` (Postgres refuses to run as root). Its process id.
fn keep(program: &str, args: &[String], death_signal: &str, as_postgres: bool) -> u32 {
    spawn_kept(program, args, death_signal, as_postgres, &[])
}

/// [`keep`] with environment variables, not as `postgres`.
fn keep_with_env(program: &str, args: &[String], death_signal: &str, env: &[(&str, String)]) -> u32 {
    spawn_kept(program, args, death_signal, false, env)
}

fn spawn_kept(program: &str, args: &[String], death_signal: &str, as_postgres: bool, env: &[(&str, String)]) -> u32 {
    static KEEPER: OnceLock<Mutex<mpsc::Sender<Spawn>>> = OnceLock::new();
    let keeper = KEEPER.get_or_init(|| {
        let (tx, rx) = mpsc::channel::<Spawn>();
        thread::Builder::new()
            .name("service-keeper".into())
            .spawn(move || {
                let mut children: Vec<Child> = Vec::new();
                loop {
                    match rx.recv_timeout(Duration::from_millis(200)) {
                        Ok((mut command, reply)) => {
                            let spawned = command.spawn();
                            let _ = reply.send(
                                spawned
                                    .as_ref()
                                    .map(Child::id)
                                    .map_err(|e| std::io::Error::new(e.kind(), e.to_string())),
                            );
                            children.extend(spawned);
                        }
                        Err(mpsc::RecvTimeoutError::Timeout) => {}
                        Err(mpsc::RecvTimeoutError::Disconnected) => return,
                    }
                    // Reaps servers a test killed.
                    children.retain_mut(|c| matches!(c.try_wait(), Ok(None)));
                }
            })
            .expect("keeper thread");
        Mutex::new(tx)
    });
    let mut command = Command::new("setpriv");
    if as_postgres && running_as_root() {
        command.args(["--reuid=postgres", "--regid=postgres", "--init-groups"]);
    }
    command.args(["--pdeathsig", death_signal, "--", program]).args(args).stdout(Stdio::null()).stderr(Stdio::null());
    command.envs(env.iter().map(|(name, value)| (*name, value)));
    let (reply, replied) = mpsc::channel();
    keeper.lock().unwrap_or_else(std::sync::PoisonError::into_inner).send((command, reply)).expect("keeper alive");
    replied.recv().expect("keeper answered").expect("setpriv (util-linux) starts the service")
}

/// Waits until something accepts TCP connections on `addr`.
fn wait_for_port(addr: SocketAddr, what: &str) {
    let deadline = Instant::now() + Duration::from_secs(30);
    while TcpStream::connect_timeout(&addr, Duration::from_millis(200)).is_err() {
        assert!(Instant::now() < deadline, "{what} did not start listening on {addr}");
        thread::sleep(Duration::from_millis(50));
    }
}

/// Sends `signal` (`KILL`, `STOP`, `CONT`) to process `pid`.
pub fn signal(pid: u32, signal: &str) {
    let _ = Command::new("kill").arg(format!("-{signal}")).arg(pid.to_string()).stderr(Stdio::null()).status();
}

fn running_as_root() -> bool {
    Command::new("id").arg("-u").output().is_ok_and(|out| out.stdout.trim_ascii() == b"0")
}

/// The `postgres` account's uid and gid, to give it the scratch directory.
fn postgres_owner() -> (u32, u32) {
    let id = |flag: &str| -> u32 {
        let out = Command::new("id").args([flag, "postgres"]).output().expect("id");
        assert!(out.status.success(), "no postgres account: install postgresql (scripts/setup.sh test does)");
        String::from_utf8_lossy(&out.stdout).trim().parse().expect("numeric id")
    };
    (id("-u"), id("-g"))
}

/// The newest installed Postgres server's `bin` directory.
fn postgres_bin() -> PathBuf {
    let mut versions: Vec<PathBuf> = std::fs::read_dir("/usr/lib/postgresql")
        .map(|dir| dir.flatten().map(|e| e.path().join("bin")).filter(|p| p.join("postgres").exists()).collect())
        .unwrap_or_default();
    versions.sort();
    versions.pop().expect("no Postgres server in /usr/lib/postgresql: scripts/setup.sh test installs postgresql")
}

pub struct Postgres {
    port: u16,
    _dir: tempfile::TempDir,
}

impl Postgres {
    /// The test process's one Postgres, started on first use.
    pub fn shared() -> &'static Self {
        static SHARED: OnceLock<Postgres> = OnceLock::new();
        SHARED.get_or_init(Self::start)
    }

    fn start() -> Self {
        let dir = tempfile::Builder::new().prefix("burner-pg-").tempdir().expect("scratch directory");
        let data = dir.path().join("data");
        let root = running_as_root();
        if root {
            let (uid, gid) = postgres_owner();
            std::os::unix::fs::chown(dir.path(), Some(uid), Some(gid)).expect("chown scratch directory");
        }
        let bin = postgres_bin();
        let mut initdb = Command::new("setpriv");
        if root {
            initdb.args(["--reuid=postgres", "--regid=postgres", "--init-groups"]);
        }
        let out = initdb
            .arg("--")
            .arg(bin.join("initdb"))
            .arg("-D")
            .arg(&data)
            .args(["-U", "postgres", "--auth=trust", "-E", "UTF8", "--no-sync", "--locale=C.UTF-8"])
            .output()
            .expect("initdb");
        assert!(out.status.success(), "initdb failed: {}", String::from_utf8_lossy(&out.stderr));
        let port = free_port();
        let args: Vec<String> = [
            "-D",
            &data.to_string_lossy(),
            "-p",
            &port.to_string(),
            "-k",
            &dir.path().to_string_lossy(),
            // A scratch database: speed over durability; connections for every test's nodes.
            "-c",
            "listen_addresses=127.0.0.1",
            "-c",
            "fsync=off",
            "-c",
            "synchronous_commit=off",
            "-c",
            "full_page_writes=off",
            "-c",
            "max_connections=300",
        ]
        .map(str::to_owned)
        .into();
        // QUIT: Postgres's immediate shutdown, which takes its backends with it.
        keep(&bin.join("postgres").to_string_lossy(), &args, "QUIT", true);
        wait_for_port(SocketAddr::from(([127, 0, 0, 1], port)), "postgres");
        Self { port, _dir: dir }
    }

    /// The server's own maintenance database, for what a test does to the server itself.
    pub fn admin_url(&self) -> String {
        format!("postgres://postgres@127.0.0.1:{}/postgres", self.port)
    }

    /// A new, empty database of its own for one test; its URL.
    pub async fn database(&self) -> String {
        static NEXT: AtomicU32 = AtomicU32::new(1);
        let name = format!("burner_test_{}", NEXT.fetch_add(1, Ordering::Relaxed));
        let admin = self.admin_url();
        let deadline = Instant::now() + Duration::from_secs(30);
        // The server takes a moment between listening and accepting sessions.
        let mut connection = loop {
            match <sqlx::PgConnection as sqlx::Connection>::connect(&admin).await {
                Ok(connection) => break connection,
                Err(error) => {
                    assert!(Instant::now() < deadline, "postgres refused sessions: {error}");
                    tokio::time::sleep(Duration::from_millis(100)).await;
                }
            }
        };
        sqlx::raw_sql(sqlx::AssertSqlSafe(format!("CREATE DATABASE {name}")))
            .execute(&mut connection)
            .await
            .expect("create database");
        format!("postgres://postgres@127.0.0.1:{}/{name}", self.port)
    }
}

/// One `redis-server` of a test's own, without persistence (a restart comes back empty).
pub struct Redis {
    pub port: u16,
    pid: u32,
}

impl Redis {
    pub fn start() -> Self {
        Self::start_on(free_port())
    }

    fn start_on(port: u16) -> Self {
        let args: Vec<String> =
            ["--port", &port.to_string(), "--bind", "127.0.0.1", "--save", "", "--appendonly", "no"]
                .map(str::to_owned)
                .into();
        let pid = keep("redis-server", &args, "KILL", false);
        wait_for_port(SocketAddr::from(([127, 0, 0, 1], port)), "redis-server");
        Self { port, pid }
    }

    pub fn url(&self) -> String {
        format!("redis://127.0.0.1:{}", self.port)
    }

    /// Kills it outright (SIGKILL): its data is gone.
    pub fn kill(&self) {
        signal(self.pid, "KILL");
    }

    /// Freezes it (SIGSTOP): connections stay open and nothing answers.
    pub fn freeze(&self) {
        signal(self.pid, "STOP");
    }

    pub fn thaw(&self) {
        signal(self.pid, "CONT");
    }

    /// Kills it and starts an empty one on the same port.
    pub fn restart_empty(&mut self) {
        self.kill();
        let addr = SocketAddr::from(([127, 0, 0, 1], self.port));
        let deadline = Instant::now() + Duration::from_secs(10);
        while TcpStream::connect_timeout(&addr, Duration::from_millis(100)).is_ok() {
            assert!(Instant::now() < deadline, "the killed redis-server still answers");
            thread::sleep(Duration::from_millis(20));
        }
        *self = Self::start_on(self.port);
    }
}

impl Drop for Redis {
    fn drop(&mut self) {
        self.thaw();
        self.kill();
    }
}

/// haproxy with the repository's configuration (`deploy/haproxy.cfg`) in front of `nodes`,
/// spreading sockets with `balance` (`roundrobin`, or `url_param room` as in
/// `deploy/nodes.example.cfg`).
pub struct Balancer {
    pub addr: SocketAddr,
    pid: u32,
    _dir: tempfile::TempDir,
}

impl Balancer {
    pub fn start(nodes: &[SocketAddr], balance: &str) -> Self {
        let dir = tempfile::Builder::new().prefix("burner-lb-").tempdir().expect("scratch directory");
        let backend = dir.path().join("nodes.cfg");
        let mut lines = format!(
            "backend nodes\n    balance {balance}\n    hash-type consistent\n    option httpchk GET /healthz\n    default-server check inter 1s\n",
        );
        for (n, node) in nodes.iter().enumerate() {
            lines.push_str(&format!("    server node{n} {node}\n"));
        }
        std::fs::write(&backend, lines).expect("backend file");
        let config = concat!(env!("CARGO_MANIFEST_DIR"), "/../deploy/haproxy.cfg");
        let port = free_port();
        let addr = SocketAddr::from(([127, 0, 0, 1], port));
        let args: Vec<String> = ["-db", "-f", config, "-f", &backend.to_string_lossy()].map(str::to_owned).into();
        let pid = keep_with_env("haproxy", &args, "KILL", &[("BURNER_LB_BIND", addr.to_string())]);
        wait_for_port(addr, "haproxy");
        Self { addr, pid, _dir: dir }
    }
}

impl Drop for Balancer {
    fn drop(&mut self) {
        signal(self.pid, "KILL");
    }
}
