//! Connecting a phase's clients where the placement says, and checking that they landed
//! there: each chat server's session count must equal what the placement put on it.
//! A front end may learn that the active set changed a moment after the servers report it,
//! so a mismatch closes the clients and tries again, a bounded number of times.

use std::time::Duration;

use chatcap_server::topology::Topology;

use super::control;
use super::figures::ServerSessions;
use super::placement::per_server;
use crate::bench::posts::connect_all;
use crate::bench::target::BenchUser;
use crate::client::Client;

/// Tries before the bench measures with whatever placement it got (and says so).
const ATTEMPTS: usize = 3;
/// How long the session counts may take to show the new sessions.
const COUNT_TIMEOUT: Duration = Duration::from_secs(5);

/// Clients connected for a phase, and where their sessions are.
pub struct Placed {
    /// Client i signed in as user i, in its room.
    pub clients: Vec<Client>,
    /// Sessions per chat server, planned and seen.
    pub sessions: Vec<ServerSessions>,
    /// Every server held what was planned.
    pub ok: bool,
}

/// Sessions each chat server of `t` should hold (topology order) when user i lands on
/// `active[servers[i]]`.
pub fn expected_sessions(t: &Topology, active: &[String], servers: &[usize]) -> Vec<u64> {
    let counts = per_server(servers.iter().copied(), active.len());
    t.chat_servers
        .iter()
        .map(|s| {
            active
                .iter()
                .position(|a| *a == s.name)
                .map_or(0, |i| counts[i])
        })
        .collect()
}

/// Connect user i through `urls[i]`, then check the chat servers hold `expected` sessions.
pub async fn connect_placed(
    t: &Topology,
    urls: &[String],
    users: &[BenchUser],
    expected: &[u64],
) -> anyhow::Result<Placed> {
    let mut attempt = 0;
    loop {
        attempt += 1;
        let clients = connect_all(urls, users).await?;
        let seen = control::await_sessions(t, expected, COUNT_TIMEOUT).await?;
        let sessions: Vec<ServerSessions> = seen
            .into_iter()
            .zip(expected)
            .map(|((server, seen), &expected)| ServerSessions {
                server,
                expected,
                seen,
            })
            .collect();
        let ok = sessions.iter().all(|s| s.seen == Some(s.expected));
        if ok || attempt >= ATTEMPTS {
            return Ok(Placed {
                clients,
                sessions,
                ok,
            });
        }
        eprintln!("bench pool: sessions not where planned (attempt {attempt}); reconnecting");
        drop(clients);
        control::await_idle(t).await?;
    }
}
