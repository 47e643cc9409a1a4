//! Pool throughput with k active chat servers: set the first k active servers of the
//! topology active, spread the pipelining clients of [`posts`] evenly over those servers
//! (by user id, see [`placement`]) and over every front end, one room per client, and
//! read acked posts/s, post→ack latency and the CPU of every process over the window.
//! The clients are closed (by the posting loop) before this returns.

use chatcap_server::topology::Topology;

use super::connect::{connect_placed, expected_sessions};
use super::figures::{ProcessCpu, ThroughputFigures};
use super::placement::{pick_users, spread};
use super::{control, cpu};
use crate::bench::posts::{self, CpuReader, PostPlan, PostTarget};
use crate::bench::target::{cpu_time, BenchUser};
use crate::pool::launch::Launched;

/// The users and rooms the phases draw from.
pub struct Population<'a> {
    /// Candidate users (ids are spread over the servers by [`pick_users`]).
    pub users: &'a [BenchUser],
    /// Rooms for the throughput clients, one each.
    pub rooms: &'a [i64],
}

/// The processes whose CPU is read, in the order of the figures: every chat server and
/// every front end (topology order), then PostgreSQL's process tree when found.
pub fn cpu_readers(pool: &Launched, postmaster: Option<u32>) -> (Vec<String>, Vec<CpuReader>) {
    let t = &pool.topology;
    let names = t
        .chat_servers
        .iter()
        .map(|s| &s.name)
        .chain(t.front_ends.iter().map(|f| &f.name));
    let mut labels = Vec::new();
    let mut readers: Vec<CpuReader> = Vec::new();
    for name in names {
        let Some(member) = pool.members.iter().find(|m| m.name == *name) else {
            continue;
        };
        let pid = member.process.pid.to_string();
        labels.push(name.clone());
        readers.push(Box::new(move || cpu_time(&pid)));
    }
    if let Some(pid) = postmaster {
        labels.push("postgres".into());
        readers.push(Box::new(move || cpu::tree_cpu_time(pid)));
    }
    (labels, readers)
}

/// The first `k` active chat servers of the topology, by name.
pub fn first_actives(t: &Topology, k: usize) -> Vec<String> {
    t.actives().take(k).map(|s| s.name.clone()).collect()
}

/// Measure with the first `k` active servers; notes for anything not as planned.
pub async fn measure(
    plan: &PostPlan,
    pool: &Launched,
    k: usize,
    population: &Population<'_>,
    postmaster: Option<u32>,
) -> anyhow::Result<(ThroughputFigures, Vec<String>)> {
    let t = &pool.topology;
    let mut notes = Vec::new();
    let active = first_actives(t, k);
    control::set_active(t, &active).await?;
    if !control::await_idle(t).await? {
        notes.push(format!(
            "{k} active: sessions of the previous phase were still open"
        ));
    }
    let slots = spread(plan.clients, active.len(), t.front_ends.len());
    let want: Vec<usize> = slots.iter().map(|s| s.server).collect();
    let ids: Vec<i64> = population.users.iter().map(|u| u.id).collect();
    let picked = pick_users(&ids, &want, active.len())?;
    let users: Vec<BenchUser> = picked
        .iter()
        .zip(population.rooms)
        .map(|(&i, &room)| BenchUser {
            room,
            ..population.users[i].clone()
        })
        .collect();
    let urls: Vec<String> = slots
        .iter()
        .map(|s| t.front_ends[s.front_end].ws_url())
        .collect();
    let expected = expected_sessions(t, &active, &want);
    let placed = connect_placed(t, &urls, &users, &expected).await?;
    if !placed.ok {
        notes.push(format!(
            "{k} active: sessions were not where planned (see sessions per chat server)"
        ));
    }
    let (labels, readers) = cpu_readers(pool, postmaster);
    let target = PostTarget {
        urls,
        metrics: t.chat_servers.iter().map(|s| s.metrics_addr()).collect(),
        cpu: readers,
    };
    let (posts, cpu) = posts::post(plan, &target, placed.clients, &users).await?;
    let figures = ThroughputFigures {
        active,
        posts,
        sessions: placed.sessions,
        placement_ok: placed.ok,
        cpu: labels
            .into_iter()
            .zip(cpu)
            .map(|(name, pct)| ProcessCpu { name, pct })
            .collect(),
    };
    Ok((figures, notes))
}

/// Rooms and candidate users the whole run needs: one room per throughput client and per
/// pair; enough users that every server gets its share (`pick_users` says when not).
pub fn population_size(clients: usize, pairs: usize) -> (usize, usize) {
    let rooms = clients + pairs;
    // Ids spread over the servers evenly but not exactly (`home_of`): twice what is needed.
    let users = 2 * (clients.max(2 * pairs) + pairs) + 16 * chatcap_server::topology::MAX_ACTIVE;
    (users.max(rooms), rooms)
}

#[cfg(test)]
mod tests {
    use super::super::placement;
    use super::*;

    #[test]
    fn the_population_covers_every_phase() {
        for (clients, pairs) in [(64, 50), (12, 6), (1, 0), (0, 3), (4096, 0)] {
            let (users, rooms) = population_size(clients, pairs);
            assert_eq!(rooms, clients + pairs);
            // Users tag rooms i mod rooms, so every room has one: the room ids come from them.
            assert!(users >= rooms);
            // Consecutive ids place every client and every pair on any number of servers.
            let ids: Vec<i64> = (1000..1000 + users as i64).collect();
            for k in 1..=4 {
                let want: Vec<usize> = spread(clients, k, 2).iter().map(|s| s.server).collect();
                assert!(pick_users(&ids, &want, k).is_ok(), "{clients} on {k}");
                let pairs: Vec<usize> = placement::pair_slots(pairs, k, 2)
                    .iter()
                    .flat_map(|p| [p.poster, p.receiver])
                    .collect();
                assert!(pick_users(&ids, &pairs, k).is_ok(), "{pairs:?} on {k}");
            }
        }
    }
}
