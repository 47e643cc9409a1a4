//! Sizing a pool for a target population from measured capacity models: chat servers,
//! front ends, load-generator machines, memory per machine and database disk per month,
//! with headroom, and the original topology's limits (4 active chat servers per pool,
//! 20,000 users per server, 80,000 per pool). A model measured on another CPU count is
//! scaled by users per core when the servers' CPU bound it, and not scaled otherwise
//! (docs/CAPACITY.md says why). Pure computation and rendering; the command is `plan_cmd`.

use serde::{Deserialize, Serialize};

use super::model::CapacityFile;

/// Users one chat server is rated for in the Lync 2013 topology.
pub const USERS_PER_SERVER: f64 = 20_000.0;
/// Active chat servers per pool.
pub const SERVERS_PER_POOL: u32 = 4;
/// Users per pool.
pub const USERS_PER_POOL: f64 = 80_000.0;
/// Chat servers per pool counting standbys.
pub const SERVERS_WITH_STANDBYS: u32 = 8;

/// What to size.
#[derive(Debug, Clone)]
pub struct Target {
    /// Users to serve.
    pub users: u64,
    /// The profile's name (`None`: the model's own hardware).
    pub profile: Option<String>,
    /// CPUs per chat server on that profile (`None`: as the model was measured).
    pub cpus: Option<f64>,
    /// Share kept free on every machine (0.3 = 30 %).
    pub headroom: f64,
    /// Cores of a load-generator machine (`None`: the measuring machine's).
    pub generator_cores: Option<f64>,
}

/// One kind of machine in the plan.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Machines {
    /// Role: `chat server`, `front end`, `load generator`.
    pub role: String,
    /// How many.
    pub count: u64,
    /// Users each one carries at the plan.
    pub users_each: f64,
    /// What limits one: `measured capacity (<what bound the search>)`, `cpu`, `open files`,
    /// `topology (20,000 users per server)`.
    pub limited_by: String,
    /// Memory each needs with headroom, bytes (`None`: not measured).
    pub memory_bytes: Option<f64>,
}

/// The plan.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Plan {
    /// Users to serve.
    pub users: u64,
    /// Profile planned for.
    pub profile: Option<String>,
    /// CPUs per chat server.
    pub cpus_per_server: f64,
    /// Headroom applied, as a fraction.
    pub headroom: f64,
    /// The model used: its scenario, profile and CPUs.
    pub model: String,
    /// Whether the model was measured on the planned CPUs (false: scaled by users/core).
    pub measured: bool,
    /// Users per chat server the model gives on the planned CPUs, before headroom.
    pub users_per_server: f64,
    /// Pools needed.
    pub pools: u64,
    /// Machines by role.
    pub machines: Vec<Machines>,
    /// Database growth per 30 days, bytes (`None`: not measured).
    pub db_bytes_per_month: Option<f64>,
    /// Assumptions and the topology's limits, in words.
    pub notes: Vec<String>,
}

fn ceil(x: f64) -> u64 {
    if x.is_finite() && x > 0.0 {
        x.ceil() as u64
    } else {
        0
    }
}

/// Size a pool for `t` from model `c`.
pub fn plan(c: &CapacityFile, t: &Target) -> Plan {
    let m = &c.model;
    let keep = 1.0 - t.headroom;
    let cpus = t.cpus.unwrap_or(m.cpus);
    let measured = (cpus - m.cpus).abs() < 1e-9;
    // Users per server on the planned CPUs: scaled by users per core only when the
    // server's CPU is what bound the measured capacity; any other bound (a latency, the
    // open files…) is not assumed to move with the servers' cores.
    let cpu_bound = c.bound.kind == "cpu";
    let users_per_server = if measured || cpu_bound {
        m.users_per_core * cpus
    } else {
        m.supported_users
    };
    let mut notes = vec![format!(
        "headroom {:.0}%: every machine is planned to run at most {:.0}% of what was measured",
        100.0 * t.headroom,
        100.0 * keep
    )];
    if !measured && cpu_bound {
        notes.push(format!(
            "predicted: measured {:.0} users on {} CPU(s), bound by the servers' CPU ({:.0} users per core); assumed to scale linearly with cores to {cpus} CPU(s)",
            m.supported_users, m.cpus, m.users_per_core
        ));
    } else if !measured {
        notes.push(format!(
            "predicted: measured {:.0} users on {} CPU(s), bound by {} ({}), not by the servers' CPU: assumed not to grow with cores, so {:.0} users per server on {cpus} CPU(s) too (linear scaling would say {:.0}); measure on {cpus} CPU(s) before buying",
            m.supported_users,
            m.cpus,
            c.bound.kind,
            c.bound.detail,
            m.supported_users,
            m.users_per_core * cpus
        ));
    }
    let users = t.users as f64;
    let by_cpu = users_per_server * keep;
    let (per_server, server_limit) = if by_cpu > USERS_PER_SERVER {
        (
            USERS_PER_SERVER,
            "topology (20,000 users per server)".to_string(),
        )
    } else {
        (by_cpu, format!("measured capacity ({})", c.bound.kind))
    };
    let servers = ceil(users / per_server);
    let pools = ceil(servers as f64 / SERVERS_PER_POOL as f64).max(ceil(users / USERS_PER_POOL));
    if servers > SERVERS_PER_POOL as u64 || users > USERS_PER_POOL {
        notes.push(format!(
            "{servers} chat servers: a pool has at most {SERVERS_PER_POOL} active chat servers ({SERVERS_WITH_STANDBYS} with standbys) and 80,000 users, so {pools} pools are needed"
        ));
    }
    if by_cpu > USERS_PER_SERVER {
        notes.push(format!(
            "by the model a server could carry {by_cpu:.0} users, but the topology rates a chat server for 20,000"
        ));
    }
    let memory = |role: &str, users_each: f64| {
        m.memory_per_user.get(role).map(|f| {
            let n = f64::from(*m.processes_per_role.get(role).unwrap_or(&1)).max(1.0);
            (f.intercept / n + f.slope * users_each).max(0.0) / keep
        })
    };
    let each = users / servers.max(1) as f64;
    let mut machines = vec![Machines {
        role: "chat server".into(),
        count: servers,
        users_each: each,
        limited_by: server_limit,
        memory_bytes: memory("server", each),
    }];
    // Front ends: by the frontend role's CPU when it was measured apart, and by the
    // connections one process may hold.
    let by_fd = if m.fd_limit > 0 {
        m.fd_limit as f64 * keep / m.connections_per_user.max(1e-9)
    } else {
        f64::INFINITY
    };
    let fe_cpu = m.cpu_per_user.get("frontend").filter(|f| f.slope > 0.0);
    let by_fe_cpu = fe_cpu.map_or(f64::INFINITY, |f| cpus * keep / f.slope);
    if fe_cpu.is_none() {
        notes.push("front ends: measured as a single box (front end inside the chat server process), so a front end is sized by the connections it can hold, one at least per chat server".into());
    }
    let (fe_users, fe_limit) = if by_fe_cpu < by_fd {
        (by_fe_cpu, "cpu")
    } else {
        (by_fd, "open files")
    };
    let fes = ceil(users / fe_users).max(if fe_cpu.is_none() { servers } else { 1 });
    let fe_each = users / fes.max(1) as f64;
    machines.push(Machines {
        role: "front end".into(),
        count: fes,
        users_each: fe_each,
        limited_by: fe_limit.into(),
        memory_bytes: memory("frontend", fe_each),
    });
    if let Some(g) = m.cpu_per_user.get("generator").filter(|f| f.slope > 0.0) {
        let cores = t.generator_cores.unwrap_or(m.machine_cores as f64).max(1.0);
        let gens = ceil(users / (cores * keep / g.slope));
        let each = users / gens.max(1) as f64;
        machines.push(Machines {
            role: "load generator".into(),
            count: gens,
            users_each: each,
            limited_by: format!("cpu ({cores} cores each)"),
            memory_bytes: memory("generator", each),
        });
    }
    Plan {
        users: t.users,
        profile: t.profile.clone(),
        cpus_per_server: cpus,
        headroom: t.headroom,
        model: format!(
            "{} on {} ({} CPU(s), {:.0} users supported)",
            c.scenario,
            c.profile.as_deref().unwrap_or("the whole machine"),
            m.cpus,
            m.supported_users
        ),
        measured,
        users_per_server,
        pools,
        machines,
        db_bytes_per_month: m
            .db_bytes_per_message
            .map(|b| b * m.messages_per_user_per_s * users * 86_400.0 * 30.0),
        notes,
    }
}

fn gib(b: f64) -> String {
    if b >= 1024.0 * 1024.0 * 1024.0 {
        format!("{:.1} GiB", b / (1024.0 * 1024.0 * 1024.0))
    } else {
        format!("{:.0} MiB", b / (1024.0 * 1024.0))
    }
}

/// The table rows (role, count, users each, limited by, memory each).
fn rows(p: &Plan) -> Vec<Vec<String>> {
    p.machines
        .iter()
        .map(|m| {
            vec![
                m.role.clone(),
                m.count.to_string(),
                format!("{:.0}", m.users_each),
                m.limited_by.clone(),
                m.memory_bytes.map_or("not measured".into(), gib),
            ]
        })
        .collect()
}

fn preamble(p: &Plan) -> Vec<String> {
    vec![
        format!(
            "{} users on {} ({} CPU(s) per chat server)",
            p.users,
            p.profile.as_deref().unwrap_or("the model's hardware"),
            p.cpus_per_server
        ),
        format!(
            "model: {}; {:.0} users per chat server {} before headroom",
            p.model,
            p.users_per_server,
            if p.measured { "measured" } else { "predicted" }
        ),
        format!("pools: {}", p.pools),
        format!(
            "database disk per month: {}",
            p.db_bytes_per_month.map_or("not measured".into(), gib)
        ),
    ]
}

const HEAD: [&str; 5] = [
    "machines",
    "count",
    "users each",
    "limited by",
    "memory each",
];

/// The plan as a terminal table.
pub fn text(p: &Plan) -> String {
    let mut out = preamble(p).join("\n") + "\n\n";
    out += &crate::report::render::text_table(&HEAD, &rows(p));
    out.push('\n');
    for n in &p.notes {
        out += &format!("- {n}\n");
    }
    out
}

/// The plan as Markdown.
pub fn markdown(p: &Plan) -> String {
    let mut out = format!("# Plan: {} users\n\n", p.users);
    for l in preamble(p) {
        out += &format!("- {l}\n");
    }
    out += &format!("\n| {} |\n|---|---:|---:|---|---:|\n", HEAD.join(" | "));
    for r in rows(p) {
        out += &format!("| {} |\n", r.join(" | "));
    }
    out += "\n";
    for n in &p.notes {
        out += &format!("- {n}\n");
    }
    out
}
