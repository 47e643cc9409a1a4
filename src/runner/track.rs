//! Delivery bookkeeping of one connection: per room, the next sequence number expected,
//! and the numbers skipped over (possibly still coming). Turns the stream of pushes and
//! own acknowledgements into lost / duplicated / out-of-order counts.

use std::collections::HashMap;

/// Skipped numbers remembered per room; beyond this a gap counts as lost at once.
const MAX_MISSING: usize = 1024;

#[derive(Debug, Default)]
struct RoomTrack {
    next: i64,
    missing: Vec<i64>,
}

/// What a connection saw, per room.
#[derive(Debug, Default)]
pub struct Tracker {
    rooms: HashMap<i64, RoomTrack>,
    /// Gaps given up on (beyond MAX_MISSING), already lost.
    pub lost_now: u64,
    /// Numbers seen twice.
    pub duplicated: u64,
    /// Numbers that arrived after a later one.
    pub out_of_order: u64,
}

impl Tracker {
    /// The connection joined `room`; everything after `last_seq` is expected.
    pub fn joined(&mut self, room: i64, last_seq: i64) {
        let t = self.rooms.entry(room).or_default();
        t.next = last_seq + 1;
        t.missing.clear();
    }

    /// The connection left `room`: nothing more is expected; open gaps count as lost.
    pub fn left(&mut self, room: i64) -> u64 {
        self.rooms
            .remove(&room)
            .map(|t| t.missing.len() as u64)
            .unwrap_or(0)
    }

    /// Whether the room is tracked (joined).
    pub fn has(&self, room: i64) -> bool {
        self.rooms.contains_key(&room)
    }

    /// A message numbered `seq` arrived (push, or own acknowledgement).
    pub fn seen(&mut self, room: i64, seq: i64) {
        let Some(t) = self.rooms.get_mut(&room) else {
            return;
        };
        if seq == t.next {
            t.next += 1;
        } else if seq > t.next {
            for s in t.next..seq {
                if t.missing.len() < MAX_MISSING {
                    t.missing.push(s);
                } else {
                    self.lost_now += 1;
                }
            }
            t.next = seq + 1;
        } else if let Some(pos) = t.missing.iter().position(|s| *s == seq) {
            t.missing.swap_remove(pos);
            self.out_of_order += 1;
        } else {
            self.duplicated += 1;
        }
    }

    /// Per room, the highest sequence number this connection accounted for (for the
    /// end-of-run check of messages that never arrived at all).
    pub fn tails(&self) -> impl Iterator<Item = (i64, i64)> + '_ {
        self.rooms.iter().map(|(room, t)| (*room, t.next - 1))
    }

    /// Gaps still open (lost, if the run ends now).
    pub fn open_gaps(&self) -> u64 {
        self.rooms.values().map(|t| t.missing.len() as u64).sum()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn gaps_duplicates_and_late_arrivals_are_told_apart() {
        let mut t = Tracker::default();
        t.joined(1, 10);
        for s in [11, 12, 14, 15, 15, 13, 17] {
            t.seen(1, s);
        }
        assert_eq!(t.duplicated, 1);
        assert_eq!(t.out_of_order, 1);
        assert_eq!(t.open_gaps(), 1, "16 never came");
        t.seen(2, 5); // not joined: ignored
        assert_eq!(t.left(1), 1);
        assert_eq!(t.open_gaps(), 0);
    }
}
