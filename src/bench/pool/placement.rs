//! Where each client of `bench pool` lands: which chat server and which front end, and
//! which user ids put it there. Pure functions only; nothing here connects.
//!
//! A front end routes a new session of user `u` to `accepting[home_of(u, n)]`, where
//! `accepting` lists the chat servers that take new sessions in topology order
//! (`chatcap_server::frontend::home_of`). The bench sets the first k active servers of the
//! topology active and waits until exactly those accept, so user `u` lands on the
//! `home_of(u, k)`-th of them: choosing user ids chooses servers. The bench then checks the
//! servers' session counts.

use chatcap_server::frontend::home_of;

/// No user id left for a wanted server: the candidates were too few or too uneven.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("no user left that goes to server {server} of {servers} (needed {needed}, had {had})")]
pub struct Shortage {
    /// Servers the ids are spread over.
    pub servers: usize,
    /// The server (0-based among them) short of users.
    pub server: usize,
    /// Users wanted on it.
    pub needed: usize,
    /// Candidates that land on it.
    pub had: usize,
}

/// Where one throughput client goes: server `server` (0-based among the k active) through
/// front end `front_end`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Slot {
    /// Index among the active chat servers.
    pub server: usize,
    /// Index among the front ends.
    pub front_end: usize,
}

/// Spread `clients` over `servers` chat servers and `front_ends` front ends: client i on
/// server `i mod servers`, through front end `(i / servers + i mod servers) mod front_ends`,
/// so that each server gets clients from every front end (with `servers == front_ends`,
/// plain `i mod front_ends` would tie each front end to one server), and both spreads are
/// even over every block of `servers × front_ends` clients.
pub fn spread(clients: usize, servers: usize, front_ends: usize) -> Vec<Slot> {
    let (k, f) = (servers.max(1), front_ends.max(1));
    (0..clients)
        .map(|i| Slot {
            server: i % k,
            front_end: (i / k + i % k) % f,
        })
        .collect()
}

/// For each wanted server in `want` (0-based among `servers`), a distinct index into `ids`
/// of a user the front ends send to that server; candidates are taken in order.
pub fn pick_users(ids: &[i64], want: &[usize], servers: usize) -> Result<Vec<usize>, Shortage> {
    let k = servers.max(1);
    let mut buckets: Vec<std::collections::VecDeque<usize>> = vec![Default::default(); k];
    for (i, id) in ids.iter().enumerate() {
        buckets[home_of(*id, k)].push_back(i);
    }
    let had: Vec<usize> = buckets.iter().map(|b| b.len()).collect();
    want.iter()
        .map(|&s| {
            buckets
                .get_mut(s)
                .and_then(|b| b.pop_front())
                .ok_or_else(|| Shortage {
                    servers: k,
                    server: s,
                    needed: want.iter().filter(|&&w| w == s).count(),
                    had: had.get(s).copied().unwrap_or(0),
                })
        })
        .collect()
}

/// How many of `slots` go to each of `servers` servers.
pub fn per_server(slots: impl IntoIterator<Item = usize>, servers: usize) -> Vec<u64> {
    let mut counts = vec![0; servers];
    for s in slots {
        if let Some(c) = counts.get_mut(s) {
            *c += 1;
        }
    }
    counts
}

/// One pair of the delivery measurement: who posts where, who receives where.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct PairSlot {
    /// Both users on one chat server.
    pub same: bool,
    /// The poster's server (index among the active ones).
    pub poster: usize,
    /// The receiver's server.
    pub receiver: usize,
    /// The poster's front end.
    pub poster_fe: usize,
    /// The receiver's front end.
    pub receiver_fe: usize,
}

/// `pairs` pairs over `servers` chat servers and `front_ends` front ends: the first half
/// (rounded up) on one server each, the rest across two servers (every ordered pair of
/// servers in turn); with one server every pair is a same-server pair. Whatever the
/// servers, the poster goes through front end `j mod front_ends` and the receiver through
/// the next one, so the two kinds differ only in the hop between chat servers.
pub fn pair_slots(pairs: usize, servers: usize, front_ends: usize) -> Vec<PairSlot> {
    let (n, f) = (servers.max(1), front_ends.max(1));
    let same = if n == 1 { pairs } else { pairs - pairs / 2 };
    (0..pairs)
        .map(|j| {
            let (poster, receiver) = if j < same {
                (j % n, j % n)
            } else {
                let c = j - same;
                let p = c % n;
                (p, (p + 1 + (c / n) % (n - 1)) % n)
            };
            PairSlot {
                same: j < same,
                poster,
                receiver,
                poster_fe: j % f,
                receiver_fe: (j + 1) % f,
            }
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn clients_spread_evenly_over_servers_and_front_ends() {
        for (k, f) in [(1, 1), (1, 4), (4, 4), (3, 2), (4, 2), (2, 4)] {
            let slots = spread(k * f * 3, k, f);
            let by_server = per_server(slots.iter().map(|s| s.server), k);
            assert!(by_server.iter().all(|&c| c == (f * 3) as u64), "{k}×{f}");
            let by_fe = per_server(slots.iter().map(|s| s.front_end), f);
            assert!(by_fe.iter().all(|&c| c == (k * 3) as u64), "{k}×{f}");
            // Every server is reached through every front end.
            for s in 0..k {
                for fe in 0..f {
                    assert!(slots.contains(&Slot {
                        server: s,
                        front_end: fe
                    }));
                }
            }
        }
        let slots = spread(10, 4, 4);
        assert_eq!(
            per_server(slots.iter().map(|s| s.server), 4),
            vec![3, 3, 2, 2]
        );
    }

    #[test]
    fn users_are_picked_by_where_the_front_ends_send_them() {
        let ids: Vec<i64> = (101..=112).collect();
        let want: Vec<usize> = spread(8, 4, 2).iter().map(|s| s.server).collect();
        let picked = pick_users(&ids, &want, 4).expect("enough users");
        assert_eq!(picked.len(), 8);
        for (p, w) in picked.iter().zip(&want) {
            assert_eq!(home_of(ids[*p], 4), *w);
        }
        let mut distinct = picked.clone();
        distinct.sort_unstable();
        distinct.dedup();
        assert_eq!(distinct.len(), picked.len());
        // Any ids will do as long as each server has enough of them; a shortage is named.
        let to_zero: Vec<i64> = (1..200).filter(|id| home_of(*id, 4) == 0).take(3).collect();
        let picked = pick_users(&to_zero, &[0, 0], 4).expect("two of three");
        assert_eq!(picked, vec![0, 1]);
        assert_eq!(
            pick_users(&to_zero, &[2], 4),
            Err(Shortage {
                servers: 4,
                server: 2,
                needed: 1,
                had: 0
            })
        );
        // One server: anyone will do.
        assert_eq!(pick_users(&[5, 6], &[0, 0], 1), Ok(vec![0, 1]));
    }

    #[test]
    fn pairs_are_half_same_server_half_across() {
        let slots = pair_slots(50, 4, 4);
        assert_eq!(slots.iter().filter(|p| p.same).count(), 25);
        for p in &slots {
            assert_eq!(p.same, p.poster == p.receiver);
            assert!(p.poster < 4 && p.receiver < 4);
            assert_ne!(p.poster_fe, p.receiver_fe);
        }
        // Cross pairs cover every ordered pair of distinct servers.
        let mut seen: Vec<(usize, usize)> = slots
            .iter()
            .filter(|p| !p.same)
            .map(|p| (p.poster, p.receiver))
            .collect();
        seen.sort_unstable();
        seen.dedup();
        assert_eq!(seen.len(), 12);
        // Odd counts round the same-server half up; one server has no cross pairs.
        assert_eq!(pair_slots(5, 3, 2).iter().filter(|p| p.same).count(), 3);
        assert!(pair_slots(6, 1, 2).iter().all(|p| p.same));
        assert!(pair_slots(0, 4, 4).is_empty());
    }
}
