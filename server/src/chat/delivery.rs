//! After the commit: acknowledge each post to its sender and push it to everyone in the
//! room, in sequence order, then add it to the room's recent-history cache.
//!
//! The message is serialised once and crosses each front-end link once (one `Fanout`
//! frame listing that link's sessions), however many members the room has.

use std::sync::Weak;

use bytes::Bytes;

use super::{Hub, PostTag};
use crate::compliance::EventKind;
use crate::protocol::reply::{push_json, reply_json, Ack};
use crate::protocol::session::Frame;
use crate::protocol::Push;
use crate::store::commit::{CommitSink, Entry};

/// The hub's side of the group committer. Holds the hub weakly: the committer task must
/// not keep a stopped server alive.
pub struct Sink(pub Weak<Hub>);

impl CommitSink for Sink {
    type Tag = PostTag;

    fn committed(&self, batch: Vec<Entry<PostTag>>) {
        let Some(hub) = self.0.upgrade() else { return };
        for e in batch {
            let ack = Ack {
                room: e.msg.room,
                seq: e.msg.seq,
                posted_at_us: e.msg.posted_at_us,
                duplicate: e.tag.duplicate,
            };
            if e.fresh {
                // Recorded for every post, also where the category keeps no history.
                let m = &e.msg;
                hub.comply(EventKind::Chat, m.room, m.author, &m.text, Some(m.seq));
                let live = hub.room(e.msg.room);
                let mut hot = live.hot();
                let links = hot.by_link(Some(e.tag.key));
                // Serialised only when someone else is there to receive it.
                let json = if links.is_empty() {
                    Bytes::new()
                } else {
                    Bytes::from(push_json(&Push::Chat(e.msg.clone())))
                };
                for (link, mut sessions) in links {
                    if hub.drop_this_delivery() {
                        sessions.pop();
                    }
                    if !sessions.is_empty() {
                        hub.send_frame(
                            link,
                            Frame::Fanout {
                                sessions,
                                json: json.clone(),
                            },
                        );
                    }
                }
                metrics::counter!("chatcap_deliveries_total")
                    .increment(hot.present.len().saturating_sub(1) as u64);
                // A category without history keeps nothing, in memory either.
                let cap = if e.persist {
                    hub.config.history as usize
                } else {
                    0
                };
                hot.cache_push(e.msg, cap);
            }
            metrics::counter!("chatcap_posts_acked_total").increment(1);
            hub.send(e.tag.key, reply_json(e.tag.request, &ack));
        }
    }
}
