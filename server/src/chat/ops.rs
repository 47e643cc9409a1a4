//! The chat operations: join, batch join, part, post, history, search, participants,
//! directory listing and room info. Each returns the reply JSON or a protocol error;
//! `post` replies later, from the group committer, once its message is durable.

use std::sync::Arc;

use super::enter::{room_info, Since};
use super::{internal, rights, Hub, PostTag, SessionKey};
use crate::compliance::event::{viewed_range, EventKind};
use crate::model::{now_us, User};
use crate::protocol::reply::{
    reply_json, BjoinResult, JoinFailure, Messages, Participants, Pong, Rooms,
};
use crate::protocol::{ErrorCode, Message, Op, Request, RoomInfo, UserInfo, WireError};
use crate::store::commit::Entry;
use crate::store::messages::SearchQuery;
use crate::telemetry::catalog;

/// Largest `history` a join may ask for (DefaultChatHistory's range is 1–500).
pub const MAX_HISTORY: u32 = 500;

impl Hub {
    /// Operations that never wait: run in the link's reader, in arrival order.
    /// `None` means the reply will come later (posts).
    pub(super) fn dispatch_inline(
        &self,
        key: SessionKey,
        req: &Request,
    ) -> Option<Result<String, WireError>> {
        let user = match self.session_user(key) {
            Ok(u) => u,
            Err(e) => return Some(Err(e)),
        };
        Some(match &req.op {
            Op::Ping => Ok(reply_json(
                req.id,
                &Pong {
                    server_time_us: now_us(),
                },
            )),
            Op::Part { room } => self
                .part(key, *room)
                .map(|()| reply_json(req.id, &serde_json::json!({}))),
            Op::Participants { room } => self
                .participants(&user, *room)
                .map(|p| reply_json(req.id, &p)),
            Op::RoomInfo { room } => {
                let dir = self.dir();
                rights::visible(&dir, &user, *room)
                    .map(|r| reply_json(req.id, &room_info(&dir, r, user.id)))
            }
            Op::SetPresence { .. } | Op::Subscribe { .. } => {
                self.presence_op(key, user.id, req.id, &req.op)
            }
            Op::Post {
                room,
                text,
                client_msg_id,
                sent_at_us,
            } => {
                return match self.post(key, &user, req.id, *room, text, client_msg_id, *sent_at_us)
                {
                    Ok(()) => None,
                    Err(e) => Some(Err(e)),
                }
            }
            other => Err(WireError::new(
                ErrorCode::Internal,
                format!("{} is not an inline operation", other.name()),
            )),
        })
    }

    /// Operations that may wait on the database: run in their own task.
    pub(super) async fn dispatch_async(
        self: &Arc<Self>,
        key: SessionKey,
        req: &Request,
    ) -> Result<String, WireError> {
        let user = self.session_user(key)?;
        let id = req.id;
        match &req.op {
            Op::Join { room, history } => {
                let n = self.history_count(*history)?;
                let joined = self
                    .enter_room(key, &user, *room, Since::History(n))
                    .await?;
                self.invitation_used(user.id, *room).await;
                Ok(reply_json(id, &joined))
            }
            Op::Bjoin { rooms, history } => {
                let n = self.history_count(*history)?;
                let ids = match rooms {
                    Some(ids) => ids.clone(),
                    None => self
                        .dir()
                        .user_rooms
                        .get(&user.id)
                        .cloned()
                        .unwrap_or_default(),
                };
                let mut out = BjoinResult {
                    joined: Vec::new(),
                    failed: Vec::new(),
                };
                for room in ids {
                    match self.enter_room(key, &user, room, Since::History(n)).await {
                        Ok(j) => {
                            self.invitation_used(user.id, room).await;
                            out.joined.push(j)
                        }
                        Err(e) => out.failed.push(JoinFailure { room, code: e.code }),
                    }
                }
                Ok(reply_json(id, &out))
            }
            Op::History {
                room,
                after_seq,
                limit,
            } => {
                let limit = limit.unwrap_or(100).min(MAX_HISTORY);
                rights::readable(&self.dir(), &user, *room)?;
                let messages = self
                    .store
                    .messages_after(*room, after_seq.unwrap_or(0), limit)
                    .await
                    .map_err(internal)?;
                if let (Some(a), Some(b)) = (messages.first(), messages.last()) {
                    let viewed = viewed_range(a.seq, b.seq);
                    self.comply(EventKind::Backchat, *room, user.id, &viewed, None);
                }
                Ok(reply_json(id, &Messages { messages }))
            }
            Op::Search {
                text,
                phrase,
                author,
                from_us,
                to_us,
                rooms,
                limit,
            } => {
                let q = SearchQuery {
                    words: text
                        .as_deref()
                        .unwrap_or("")
                        .split_whitespace()
                        .map(str::to_lowercase)
                        .collect(),
                    phrase: phrase
                        .as_ref()
                        .map(|p| p.to_lowercase())
                        .filter(|p| !p.is_empty()),
                    author: *author,
                    from_us: *from_us,
                    to_us: *to_us,
                    rooms: rooms.clone(),
                };
                let limit = limit.unwrap_or(50).clamp(1, MAX_HISTORY) as usize;
                self.search(&user, q, limit)
                    .await
                    .map(|messages| reply_json(id, &Messages { messages }))
            }
            Op::ListRooms {
                query,
                category,
                mine,
                limit,
            } => {
                let limit = limit.unwrap_or(100).clamp(1, 1000) as usize;
                let needle = query.as_ref().map(|q| q.to_lowercase());
                let dir = self.dir();
                let mut rooms: Vec<RoomInfo> = dir
                    .rooms
                    .values()
                    .filter(|r| category.is_none_or(|c| r.category == c))
                    .filter(|r| {
                        needle
                            .as_ref()
                            .is_none_or(|n| r.name.to_lowercase().contains(n.as_str()))
                    })
                    .filter(|r| !mine.unwrap_or(false) || dir.roles_of(r.id, user.id).any())
                    .filter(|r| rights::visible(&dir, &user, r.id).is_ok())
                    .map(|r| room_info(&dir, r, user.id))
                    .collect();
                rooms.sort_by_key(|r| r.id);
                rooms.truncate(limit);
                Ok(reply_json(id, &Rooms { rooms }))
            }
            Op::Invitations
            | Op::DismissInvitation { .. }
            | Op::Follow { .. }
            | Op::Unfollow { .. }
            | Op::Followed
            | Op::MarkRead { .. } => self.social_op(&user, req).await,
            Op::FileBegin { .. }
            | Op::FileCommit { .. }
            | Op::FileInfo { .. }
            | Op::FileList { .. } => self.files_op(key, &user, req).await,
            Op::ListCategories | Op::RoomRoles { .. } | Op::FindUsers { .. } => {
                self.directory_op(&user, req).await
            }
            _ => self.dispatch_admin(key, &user, req).await,
        }
    }

    fn history_count(&self, asked: Option<u32>) -> Result<u32, WireError> {
        match asked {
            Some(n) if n > MAX_HISTORY => Err(WireError::new(
                ErrorCode::InvalidArgument,
                format!("history {n} is above {MAX_HISTORY}"),
            )),
            Some(n) => Ok(n),
            None => Ok(self.config.history),
        }
    }

    #[allow(clippy::too_many_arguments)]
    fn post(
        &self,
        key: SessionKey,
        user: &User,
        request: u64,
        room: i64,
        text: &str,
        client_msg_id: &str,
        sent_at_us: Option<i64>,
    ) -> Result<(), WireError> {
        if text.len() > self.config.max_post_bytes {
            return Err(WireError::new(
                ErrorCode::TooLarge,
                format!(
                    "post of {} bytes is above the limit of {}",
                    text.len(),
                    self.config.max_post_bytes
                ),
            ));
        }
        if client_msg_id.is_empty() || client_msg_id.len() > 128 {
            return Err(WireError::new(
                ErrorCode::InvalidArgument,
                "client_msg_id must be 1–128 bytes",
            ));
        }
        if !self.session_in(key, room) {
            // An unknown (or invisible) room is named as such, not as "not joined".
            rights::visible(&self.dir(), user, room)?;
            return Err(WireError::new(
                ErrorCode::NotJoined,
                format!("join room {room} before posting"),
            ));
        }
        let persist = {
            let dir = self.dir();
            let r = rights::readable(&dir, user, room)?;
            rights::may_post(&dir, user, r)?;
            dir.categories.get(&r.category).is_none_or(|c| c.history)
        };
        if self.committer().depth() >= self.config.max_pending_posts {
            metrics::counter!(catalog::BUSY.name).increment(1);
            return Err(WireError::new(
                ErrorCode::Busy,
                "server too busy; retry later",
            ));
        }
        self.refuse_if_compliance_backlogged()?;
        // A retry of a message delivered here is answered at once, with the original's
        // number; the commit recognises the others (`store::sequence`).
        let live = self.room(room);
        let mut hot = live.hot();
        if let Some((seq, posted_at_us)) = hot.seen(user.id, client_msg_id) {
            drop(hot);
            metrics::counter!(catalog::POSTS_ACKED.name).increment(1);
            PostTag::Client { key, request }.acked(self, room, seq, posted_at_us, true);
            return Ok(());
        }
        let entry = Entry {
            msg: Message {
                room,
                seq: 0,
                author: user.id,
                text: text.to_string(),
                client_msg_id: client_msg_id.to_string(),
                posted_at_us: now_us(),
                sent_at_us,
                removed: false,
            },
            persist,
            seen_up_to: hot.last_committed,
            in_flight_retry: hot
                .posting
                .contains_key(&(user.id, client_msg_id.to_string())),
            tag: PostTag::Client { key, request },
        };
        if self.committer().push(entry).is_err() {
            return Err(WireError::new(
                ErrorCode::Internal,
                "the server is shutting down",
            ));
        }
        hot.posting
            .insert((user.id, client_msg_id.to_string()), key);
        Ok(())
    }

    fn participants(&self, user: &User, room: i64) -> Result<Participants, WireError> {
        let ids: Vec<i64> = {
            rights::readable(&self.dir(), user, room)?;
            let live = self.room(room);
            let hot = live.hot();
            hot.users.keys().copied().collect()
        };
        let dir = self.dir();
        let mut users: Vec<UserInfo> = ids
            .into_iter()
            .filter_map(|id| dir.users.get(&id))
            .map(|u| UserInfo {
                id: u.id,
                name: u.name.clone(),
                admin: u.admin,
            })
            .collect();
        users.sort_by_key(|u| u.id);
        Ok(Participants { room, users })
    }

    /// Search newest first, page by page, keeping only messages of rooms `user` may read,
    /// until `limit` results or a scan budget is reached.
    async fn search(
        &self,
        user: &User,
        q: SearchQuery,
        limit: usize,
    ) -> Result<Vec<Message>, WireError> {
        const PAGE: u32 = 500;
        const MAX_PAGES: usize = 20;
        if let Some(rooms) = &q.rooms {
            if rooms.is_empty() {
                return Ok(Vec::new());
            }
            let dir = self.dir();
            for r in rooms {
                rights::readable(&dir, user, *r)?;
            }
        }
        let mut found = Vec::new();
        let mut cursor = None;
        for _ in 0..MAX_PAGES {
            let page = self
                .store
                .search_page(&q, cursor, PAGE)
                .await
                .map_err(internal)?;
            let full = page.len() == PAGE as usize;
            cursor = page.last().map(|m| (m.posted_at_us, m.room, m.seq));
            {
                let dir = self.dir();
                found.extend(
                    page.into_iter()
                        .filter(|m| rights::readable(&dir, user, m.room).is_ok()),
                );
            }
            if found.len() >= limit || !full {
                break;
            }
        }
        found.truncate(limit);
        found.reverse();
        Ok(found)
    }
}
