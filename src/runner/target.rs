//! The system under test: the embedded target (provisioned, then started as child
//! `chatcap serve` processes — a single box, or a chat server and front ends — so that
//! their CPU and memory are measured apart from the generator's), a pool from a topology
//! file (provisioned, then started by the pool launcher), or a running server or pool
//! given by address.

use std::collections::HashMap;
use std::net::{SocketAddr, TcpListener as StdListener};
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::Duration;

use chatcap_server::auth::{unix_now, TokenKey};
use chatcap_server::protocol::RoomKind;
use chatcap_server::provision::spec::RoomClassSpec;
use chatcap_server::provision::{self, PopulationPlan, PopulationSpec};
use chatcap_server::store::{Schema, Store};
use chatcap_server::topology::Topology;
use tokio::io::{AsyncReadExt, AsyncWriteExt};

use super::processes::{Launch, ServerProcesses};
use super::scrape::Endpoint;
use super::target_error::TargetError;
use super::{SimRoom, SimUser};
use crate::pool::launch::{self, Launched, PoolDatabase};
use crate::profile::Confinement;
use crate::scenario::plan::{Population, RunPlan, Target as PlanTarget};
use crate::wss::WsUrl;
use chatcap_server::tls::Connector;

/// Where the target's database is, for its size over time.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum TargetDatabase {
    /// The folder of the embedded target's SQLite databases.
    Folder(PathBuf),
    /// A database URL (a pool's content database).
    Url(String),
}

/// A target ready for load.
pub struct Target {
    /// The front end's address.
    pub addr: SocketAddr,
    /// `ws://…/ws`: the first front end (reconciliation and shards use it).
    pub url: String,
    /// Further front ends; connections are spread over `url` and these.
    pub more: Vec<(SocketAddr, String)>,
    /// The simulated users, by user index.
    pub users: Arc<Vec<Arc<SimUser>>>,
    /// An administrator's token (for reconciliation reads).
    pub admin_token: Option<String>,
    /// The server processes, when we started them.
    pub servers: ServerProcesses,
    /// The pool, when we started one from a topology file.
    pub pool: Option<Launched>,
    /// Its data folder, when we made it.
    pub data_dir: Option<PathBuf>,
    /// The provisioning summary (embedded target).
    pub provisioned: Option<provision::Summary>,
    /// `wss://` targets: whom clients trust.
    pub tls: Option<TargetTls>,
}

/// Whom the clients of a `wss://` target trust.
#[derive(Debug, Clone)]
pub struct TargetTls {
    /// The CA file (shards are given it too).
    pub ca: PathBuf,
    /// The connector made from it.
    pub connector: Connector,
}

/// Trust the CA in `ca`.
fn trusting(ca: &Path) -> Result<TargetTls, TargetError> {
    let connector = chatcap_server::tls::trusting(ca)
        .map_err(|e| TargetError::Unsupported(format!("TLS: {e}")))?;
    Ok(TargetTls {
        ca: ca.to_path_buf(),
        connector,
    })
}

/// The socket address of a `ws://host:port/path` or `wss://…` URL (host must be an IP
/// address).
pub fn addr_of_url(url: &str) -> Result<SocketAddr, String> {
    let parsed = WsUrl::parse(url)?;
    parsed
        .addr()
        .ok_or_else(|| format!("{url:?}: {:?} is not an IP address", parsed.host))
}

/// A free loopback port (bound then released).
pub fn free_port() -> std::io::Result<u16> {
    Ok(StdListener::bind("127.0.0.1:0")?.local_addr()?.port())
}

/// The population spec a scenario's population describes.
pub fn population_spec(p: &Population) -> PopulationSpec {
    let mut spec = PopulationSpec::lync2013(p.users);
    spec.seed = p.seed;
    spec.users.admins = 1;
    spec.rooms = p
        .rooms
        .iter()
        .map(|c| {
            RoomClassSpec::lync(
                &c.name,
                c.size,
                c.rooms_per_user,
                c.auditorium_share,
                c.open_share,
            )
        })
        .collect();
    spec
}

/// A population written into a database: its simulated users (with tokens), an
/// administrator's token, and what was written.
struct Provisioned {
    users: Vec<Arc<SimUser>>,
    admin_token: Option<String>,
    summary: provision::Summary,
}

/// Provision the plan's population into the content database at `url`.
async fn provision_into(
    plan: &RunPlan,
    url: &str,
    progress: &(dyn Fn(provision::Progress) + Sync),
) -> Result<Provisioned, TargetError> {
    let failed = |e: &dyn std::fmt::Display| TargetError::Provision(e.to_string());
    let store = Store::open(url, Schema::Content)
        .await
        .map_err(|e| failed(&e))?;
    let spec = population_spec(&plan.population);
    let pop = spec.validate().map_err(|e| failed(&e))?;
    let done = provision::provision(&store, &pop, progress)
        .await
        .map_err(|e| failed(&e))?;
    let key = TokenKey::load(&store).await.map_err(|e| failed(&e))?;
    store.close().await;
    let expires = unix_now() + 7 * 24 * 3600;
    let users = sim_users(&done, &pop, &key, expires);
    let admin_token = done.admin_ids.first().map(|id| key.issue(*id, expires));
    Ok(Provisioned {
        users,
        admin_token,
        summary: done.summary,
    })
}

/// Provision the plan's population into a fresh SQLite database in `dir`, start
/// `binary serve` on it (inside `confine`'s limits, when given), and wait until it is ready.
pub async fn embedded(
    plan: &RunPlan,
    binary: &Path,
    server_config: Option<&Path>,
    dir: &Path,
    log_dir: &Path,
    confine: Option<&Confinement>,
    progress: &(dyn Fn(provision::Progress) + Sync),
) -> Result<Target, TargetError> {
    std::fs::create_dir_all(dir).map_err(|source| TargetError::Io {
        what: format!("creating {}", dir.display()),
        source,
    })?;
    let url = format!("sqlite:{}", dir.join("content.db").display());
    let done = provision_into(plan, &url, progress).await?;
    let port = || -> Result<SocketAddr, TargetError> {
        let p = free_port().map_err(|source| TargetError::Io {
            what: "finding a free port".into(),
            source,
        })?;
        Ok(SocketAddr::from(([127, 0, 0, 1], p)))
    };
    let http = port()?;
    let (front_ends, tls) = match plan.target {
        PlanTarget::Embedded { front_ends, tls } => (front_ends, tls),
        _ => (0, false),
    };
    // A settings file that turns on TLS for the client port while the scenario does not
    // would leave every virtual user failing its handshake: say so now.
    if let Some(path) = server_config.filter(|_| !tls) {
        let settings = crate::settings::settings_file(Some(path))
            .map_err(|e| TargetError::Unsupported(format!("{e:#}")))?;
        if settings.tls.client_port() {
            return Err(TargetError::Unsupported(format!(
                "{} turns on TLS for the client port: set [target] tls = true",
                path.display()
            )));
        }
    }
    // One certificate for every process on the client port, made before any starts.
    let certificate = match tls {
        true => Some(
            chatcap_server::tls::issue::self_signed_for(&dir.join("tls"), &["127.0.0.1".into()])
                .map_err(|e| TargetError::Unsupported(format!("TLS: {e}")))?,
        ),
        false => None,
    };
    let launch = Launch {
        binary,
        config: server_config,
        data_dir: dir,
        log_dir,
        history: plan.history_on_join,
        http,
        chat: port()?,
        chat_http: port()?,
        front_ends,
        confine,
        certificate: certificate.as_ref(),
    };
    let servers = ServerProcesses::start(&launch).await?;
    let scheme = if tls { "wss" } else { "ws" };
    Ok(Target {
        addr: http,
        url: format!("{scheme}://{http}/ws"),
        more: Vec::new(),
        users: Arc::new(done.users),
        admin_token: done.admin_token,
        servers,
        pool: None,
        data_dir: Some(dir.to_path_buf()),
        provisioned: Some(done.summary),
        tls: certificate.map(|c| trusting(&c.cert)).transpose()?,
    })
}

/// Start the pool of `topology` (as `chatcap pool up` does, logs and data in `dir`; its
/// processes inside `confine`'s limits, when given), with the plan's population provisioned
/// into its database first; users are spread over its front ends.
pub async fn pool(
    plan: &RunPlan,
    topology: Topology,
    binary: &Path,
    dir: &Path,
    confine: Option<Arc<Confinement>>,
    ca: Option<&Path>,
    progress: &(dyn Fn(provision::Progress) + Sync),
) -> Result<Target, TargetError> {
    let failed = |e: anyhow::Error| TargetError::Pool(format!("{e:#}"));
    let tls = ca.map(trusting).transpose()?;
    launch::check_loopback(&topology).map_err(|e| TargetError::Unsupported(e.to_string()))?;
    let database = PoolDatabase::prepare(&topology).await.map_err(failed)?;
    let done = match provision_into(plan, &database.url, progress).await {
        Ok(done) => done,
        Err(e) => {
            if let Some(t) = database.throwaway {
                t.stop().await;
            }
            return Err(e);
        }
    };
    let mut options = launch::Options {
        confine,
        ..Default::default()
    };
    if let Ok(level) = std::env::var("CHATCAP_SERVER_LOG") {
        options.env.push(("RUST_LOG".into(), level));
    }
    let mut launched = Launched::start(topology, binary, database, dir, &options)
        .await
        .map_err(failed)?;
    if tls.is_none() && launched.urls().iter().any(|u| u.starts_with("wss://")) {
        launched.stop().await;
        return Err(TargetError::Unsupported(
            "the pool's front ends serve wss:// (its settings file has [tls]): give [target] ca = \"<PEM of the CA that signed their certificates>\"".into(),
        ));
    }
    let mut endpoints = Vec::new();
    for url in launched.urls() {
        let addr = addr_of_url(&url).map_err(TargetError::Unsupported)?;
        endpoints.push((addr, url));
    }
    let Some((addr, url)) = endpoints.first().cloned() else {
        return Err(TargetError::Unsupported(
            "the topology has no front end".into(),
        ));
    };
    Ok(Target {
        addr,
        url,
        more: endpoints.into_iter().skip(1).collect(),
        users: Arc::new(done.users),
        admin_token: done.admin_token,
        servers: ServerProcesses::default(),
        pool: Some(launched),
        data_dir: None,
        provisioned: Some(done.summary),
        tls,
    })
}

/// Simulated users from a provisioned population.
fn sim_users(
    done: &provision::Provisioned,
    pop: &PopulationPlan,
    key: &TokenKey,
    expires: i64,
) -> Vec<Arc<SimUser>> {
    let mut rooms: Vec<Vec<SimRoom>> = vec![Vec::new(); done.user_ids.len()];
    for (planned, id) in done.rooms.iter().zip(&done.room_ids) {
        let presenters = pop
            .classes
            .get(planned.class)
            .map(|c| planned.presenters(c).len())
            .unwrap_or(0);
        for (k, member) in planned.members.iter().enumerate() {
            let can_post = planned.kind == RoomKind::Normal || k < presenters;
            if let Some(list) = rooms.get_mut(*member as usize) {
                list.push(SimRoom {
                    id: *id,
                    class: planned.class as u16,
                    can_post,
                });
            }
        }
    }
    let mut users: Vec<SimUser> = done
        .user_ids
        .iter()
        .zip(rooms)
        .map(|(id, rooms)| SimUser {
            id: *id,
            token: key.issue(*id, expires),
            rooms,
            contacts: Vec::new(),
        })
        .collect();
    super::assign_contacts(&mut users);
    users.into_iter().map(Arc::new).collect()
}

/// Poll `/healthz` until it answers 200.
pub async fn wait_ready(addr: SocketAddr, within: Duration) -> bool {
    let deadline = tokio::time::Instant::now() + within;
    while tokio::time::Instant::now() < deadline {
        if healthz(addr).await {
            return true;
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    false
}

async fn healthz(addr: SocketAddr) -> bool {
    let Ok(Ok(mut s)) =
        tokio::time::timeout(Duration::from_secs(1), tokio::net::TcpStream::connect(addr)).await
    else {
        return false;
    };
    if s.write_all(b"GET /healthz HTTP/1.0\r\nHost: x\r\n\r\n")
        .await
        .is_err()
    {
        return false;
    }
    let mut buf = [0u8; 16];
    matches!(tokio::time::timeout(Duration::from_secs(1), s.read(&mut buf)).await, Ok(Ok(n)) if n >= 12 && &buf[9..12] == b"200")
}

/// A running server or pool: the users (tokens CSV) and their rooms (the manifest that
/// `chatcap provision` wrote beside it, `population.json`), spread over `urls`.
pub fn addresses(urls: &[String], tokens: &Path, ca: Option<&Path>) -> Result<Target, TargetError> {
    let bad = |what: String| TargetError::Unsupported(what);
    let mut endpoints = Vec::new();
    for url in urls {
        endpoints.push((addr_of_url(url).map_err(bad)?, url.clone()));
    }
    let Some((addr, url)) = endpoints.first().cloned() else {
        return Err(bad("target.urls is empty".into()));
    };
    let rows = provision::manifest::read_tokens(tokens).map_err(|e| bad(e.to_string()))?;
    let manifest_path = tokens.with_file_name("population.json");
    let manifest = provision::Manifest::load(&manifest_path).map_err(|e| {
        bad(format!(
            "{e} (the population manifest `chatcap provision` writes beside the tokens)"
        ))
    })?;
    let token_of: HashMap<i64, String> = rows.into_iter().map(|r| (r.id, r.token)).collect();
    let classes: Vec<String> = manifest
        .spec
        .rooms
        .iter()
        .map(|c| c.class.clone())
        .collect();
    let mut rooms: HashMap<i64, Vec<SimRoom>> = HashMap::new();
    for r in &manifest.rooms {
        let class = classes
            .iter()
            .position(|c| *c == r.class)
            .unwrap_or(usize::from(u16::MAX)) as u16;
        for m in &r.members {
            let can_post = r.kind == RoomKind::Normal || r.presenters.contains(m);
            rooms.entry(*m).or_default().push(SimRoom {
                id: r.id,
                class,
                can_post,
            });
        }
    }
    let mut users = Vec::with_capacity(manifest.users.len());
    for id in &manifest.users {
        let token = token_of
            .get(id)
            .cloned()
            .ok_or_else(|| bad(format!("user {id} has no token in {}", tokens.display())))?;
        users.push(SimUser {
            id: *id,
            token,
            rooms: rooms.remove(id).unwrap_or_default(),
            contacts: Vec::new(),
        });
    }
    super::assign_contacts(&mut users);
    let admin_token = manifest
        .admins
        .iter()
        .find_map(|a| token_of.get(a).cloned());
    Ok(Target {
        addr,
        url,
        more: endpoints.into_iter().skip(1).collect(),
        users: Arc::new(users.into_iter().map(Arc::new).collect()),
        admin_token,
        servers: ServerProcesses::default(),
        pool: None,
        data_dir: None,
        provisioned: None,
        tls: ca.map(trusting).transpose()?,
    })
}

impl Target {
    /// Every front end, the first one first.
    pub fn endpoints(&self) -> Vec<(SocketAddr, String)> {
        std::iter::once((self.addr, self.url.clone()))
            .chain(self.more.iter().cloned())
            .collect()
    }

    /// (name, pid) of the server processes we started: `server` first, then
    /// `frontend-N`; or a pool's chat servers then front ends, by their topology names.
    pub fn pids(&self) -> Vec<(String, u32)> {
        let mut pids = self.servers.pids();
        if let Some(pool) = &self.pool {
            pids.extend(pool.pids());
        }
        pids
    }

    /// Every server process we started whose `/metrics` can be scraped apart from the
    /// others (`docs/LOADGEN.md`: front ends sharing the embedded client port cannot).
    pub fn metrics_endpoints(&self) -> Vec<Endpoint> {
        let mut addrs = self.servers.metrics_addrs();
        if let Some(pool) = &self.pool {
            addrs.extend(pool.metrics_addrs());
        }
        // A single box serves `/metrics` on its client port; a pool's front ends say in
        // their ready lines whether theirs is TLS.
        let mut https = vec![self.addr];
        if let Some(pool) = &self.pool {
            https.extend(pool.https_metrics());
        }
        addrs
            .into_iter()
            .map(|(process, addr)| {
                let https = https.contains(&addr);
                Endpoint {
                    process,
                    addr,
                    tls: self
                        .tls
                        .as_ref()
                        .filter(|_| https)
                        .map(|t| t.connector.clone()),
                }
            })
            .collect()
    }

    /// The database we started, and the process its size is recorded with: the embedded
    /// target's data folder with `server`, a pool's content database with its first chat
    /// server.
    pub fn database(&self) -> Option<(String, TargetDatabase)> {
        if let Some(dir) = &self.data_dir {
            return Some(("server".into(), TargetDatabase::Folder(dir.clone())));
        }
        let pool = self.pool.as_ref()?;
        let first = pool.members.first()?;
        Some((
            first.name.clone(),
            TargetDatabase::Url(pool.database.url.clone()),
        ))
    }

    /// Stop the server processes we started.
    pub async fn stop(&mut self) {
        self.servers.stop().await;
        if let Some(pool) = &mut self.pool {
            pool.stop().await;
        }
    }
}
