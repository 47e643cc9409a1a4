//! Steering the pool under test over its chat servers' pool port (8011), as `chatcap pool`
//! does: set the active servers and wait until that took effect, read each server's
//! session count, wait until the pool holds no session. Every wait is bounded.

use std::time::Duration;

use anyhow::{bail, Context};
use chatcap_server::pool::admin::{request, AdminError};
use chatcap_server::protocol::pool::AdminRequest;
use chatcap_server::tls::LinkTrust;
use chatcap_server::topology::Topology;
use serde_json::Value;
use tokio::time::Instant;

/// How long set-active may take to show (servers switch within about half a second).
const SETTLE_TIMEOUT: Duration = Duration::from_secs(20);
/// How long the sessions of closed clients may take to end.
const IDLE_TIMEOUT: Duration = Duration::from_secs(30);
/// Between two status polls.
const POLL: Duration = Duration::from_millis(100);

/// Each chat server's status answer, in topology order, asked as `trust` allows.
pub async fn statuses(t: &Topology, trust: &LinkTrust) -> Vec<(String, Result<Value, AdminError>)> {
    crate::pool::status_all(t, trust).await
}

/// Make `servers` the pool's active chat servers and wait until each of them is active and
/// takes new sessions and every other chat server takes none.
pub async fn set_active(t: &Topology, servers: &[String]) -> anyhow::Result<()> {
    let req = AdminRequest::SetActive {
        servers: servers.to_vec(),
    };
    // Any reachable server of the pool writes the new list (as `chatcap pool set-active`).
    let mut written = None;
    let trust = crate::pool::trust(t)?;
    for s in &t.chat_servers {
        match request(s.pool_addr(), &trust, &req).await {
            Ok(_) => {
                written = Some(());
                break;
            }
            Err(e @ AdminError::Refused { .. }) => return Err(e.into()),
            Err(e) => tracing::debug!(server = %s.name, error = %e, "set-active not written"),
        }
    }
    written.context("no chat server of the pool answered set-active")?;
    let deadline = Instant::now() + SETTLE_TIMEOUT;
    loop {
        let answers = statuses(t, &trust).await;
        let pending = unsettled(&answers, servers);
        if pending.is_empty() {
            return Ok(());
        }
        if Instant::now() >= deadline {
            bail!(
                "set-active {} did not take effect within {SETTLE_TIMEOUT:?}: {}",
                servers.join(","),
                pending.join("; ")
            );
        }
        tokio::time::sleep(POLL).await;
    }
}

/// What still differs from "exactly `active` take new sessions", one phrase per server;
/// empty when settled.
pub fn unsettled(
    answers: &[(String, Result<Value, AdminError>)],
    active: &[String],
) -> Vec<String> {
    answers
        .iter()
        .filter_map(|(name, answer)| {
            let v = match answer {
                Ok(v) => v,
                Err(e) => return Some(format!("{name}: {e}")),
            };
            let flag = |k: &str| v.get(k).and_then(Value::as_bool).unwrap_or(false);
            let wanted = active.contains(name);
            let ok = if wanted {
                flag("active") && flag("accepting")
            } else {
                !flag("accepting")
            };
            (!ok).then(|| {
                format!(
                    "{name}: active {} accepting {} (wanted {})",
                    flag("active"),
                    flag("accepting"),
                    if wanted { "active" } else { "not accepting" }
                )
            })
        })
        .collect()
}

/// Sessions on each chat server (`None` when it did not answer), in topology order.
pub async fn sessions(t: &Topology, trust: &LinkTrust) -> Vec<(String, Option<u64>)> {
    statuses(t, trust)
        .await
        .into_iter()
        .map(|(name, a)| {
            let n = a
                .ok()
                .and_then(|v| v.get("sessions").and_then(Value::as_u64));
            (name, n)
        })
        .collect()
}

/// Poll the session counts until they equal `expected` (topology order) or `timeout`
/// passes; the last counts read.
pub async fn await_sessions(
    t: &Topology,
    expected: &[u64],
    timeout: Duration,
) -> anyhow::Result<Vec<(String, Option<u64>)>> {
    let deadline = Instant::now() + timeout;
    // The certificates are read once, not at every poll.
    let trust = crate::pool::trust(t)?;
    loop {
        let now = sessions(t, &trust).await;
        let matches = now.len() == expected.len()
            && now.iter().zip(expected).all(|((_, n), e)| *n == Some(*e));
        if matches || Instant::now() >= deadline {
            return Ok(now);
        }
        tokio::time::sleep(POLL).await;
    }
}

/// Wait until no chat server holds a session (the clients of the previous phase are gone);
/// false when some still did after the timeout.
pub async fn await_idle(t: &Topology) -> anyhow::Result<bool> {
    let zeros = vec![0; t.chat_servers.len()];
    let now = await_sessions(t, &zeros, IDLE_TIMEOUT).await?;
    Ok(now.iter().all(|(_, n)| *n == Some(0)))
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn settled_means_exactly_the_listed_servers_accept() {
        let answer = |active: bool, accepting: bool| {
            Ok::<_, AdminError>(json!({"active": active, "accepting": accepting}))
        };
        let answers = vec![
            ("chat1".to_string(), answer(true, true)),
            ("chat2".to_string(), answer(false, false)),
            ("chat3".to_string(), answer(true, false)),
        ];
        let one = ["chat1".to_string()];
        assert!(unsettled(&answers, &one).is_empty());
        let two = ["chat1".to_string(), "chat3".to_string()];
        let pending = unsettled(&answers, &two);
        assert_eq!(pending.len(), 1);
        assert!(pending[0].starts_with("chat3:"), "{pending:?}");
        let answers = vec![("chat1".to_string(), answer(true, true))];
        assert_eq!(unsettled(&answers, &[]).len(), 1);
    }
}
