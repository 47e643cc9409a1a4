//! After the run: every acknowledged post must be in the room's history exactly once.
//! Read back through the public protocol (an administrator's `history`), page by page.

use std::collections::HashMap;

use chatcap_server::protocol::reply::Messages;
use chatcap_server::protocol::{ErrorCode, Op};
use serde::{Deserialize, Serialize};

use crate::client::Client;

/// Rate-limited replies tolerated per room before it counts as unreadable.
const MAX_THROTTLED: u32 = 200;

/// Rooms checked at most (the busiest first); beyond, the check is sampled.
pub const MAX_ROOMS: usize = 2000;

/// The outcome of the check.
#[derive(Debug, Clone, Default, Serialize, Deserialize, PartialEq, Eq)]
pub struct Reconciliation {
    /// Rooms checked.
    pub rooms_checked: u64,
    /// Acknowledged posts checked.
    pub acked_checked: u64,
    /// Acknowledged posts not found in history.
    pub missing: u64,
    /// Acknowledged posts found more than once.
    pub duplicated: u64,
    /// Rooms that could not be read (error replies).
    pub unreadable_rooms: u64,
}

/// Check `ledger` (room → acknowledged seqs) against history read with `admin_token`.
pub async fn check(
    url: &str,
    trust: Option<&chatcap_server::tls::Connector>,
    admin_token: &str,
    ledger: &HashMap<i64, Vec<i64>>,
) -> Result<Reconciliation, crate::client::ClientError> {
    let mut out = Reconciliation::default();
    let mut client = Client::connect_with(url, trust).await?;
    if client
        .call(Op::SignIn {
            token: admin_token.to_string(),
        })
        .await?
        .is_err()
    {
        out.unreadable_rooms = ledger.len() as u64;
        return Ok(out);
    }
    let mut rooms: Vec<(&i64, &Vec<i64>)> = ledger.iter().collect();
    rooms.sort_by_key(|(room, seqs)| (std::cmp::Reverse(seqs.len()), **room));
    for (room, seqs) in rooms.into_iter().take(MAX_ROOMS) {
        out.rooms_checked += 1;
        let top = seqs.iter().copied().max().unwrap_or(0);
        let mut seen: HashMap<i64, u32> = HashMap::new();
        let mut after = 0;
        let mut readable = true;
        let mut throttled = 0;
        while after < top {
            match client
                .call_as::<Messages>(Op::History {
                    room: *room,
                    after_seq: Some(after),
                    limit: Some(500),
                })
                .await?
            {
                Ok(page) => {
                    let Some(last) = page.messages.last().map(|m| m.seq) else {
                        break;
                    };
                    for m in &page.messages {
                        *seen.entry(m.seq).or_default() += 1;
                    }
                    after = last;
                }
                // The front end allows a session so many requests a second: wait, retry.
                Err(r) if r.code == ErrorCode::RateLimited && throttled < MAX_THROTTLED => {
                    throttled += 1;
                    tokio::time::sleep(std::time::Duration::from_millis(50)).await;
                }
                Err(_) => {
                    readable = false;
                    break;
                }
            }
        }
        if !readable {
            out.unreadable_rooms += 1;
            continue;
        }
        for seq in seqs {
            out.acked_checked += 1;
            match seen.get(seq) {
                None => out.missing += 1,
                Some(1) => {}
                Some(_) => out.duplicated += 1,
            }
        }
    }
    client.close().await;
    Ok(out)
}
