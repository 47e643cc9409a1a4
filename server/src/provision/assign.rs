//! Deterministic membership assignment: which users are in which rooms, and which rooms
//! are auditoriums or open. Pure computation from a [`PopulationPlan`]; no I/O.
//!
//! # Method (per room class)
//! 1. Shuffle the users (seeded), giving the order in which they take room slots.
//! 2. Lay the class's `users × rooms_per_user` slots out in that order, each user's
//!    `rooms_per_user` slots side by side, and deal them onto the rooms in *wraps* of
//!    `count` slots. Every wrap visits the rooms in a fresh seeded permutation, so every
//!    room gets one slot per wrap: room sizes differ by at most one, and the sizes sum to
//!    exactly `users × rooms_per_user`.
//! 3. A user's slots are consecutive and `rooms_per_user ≤ count`, so its rooms are
//!    distinct within a wrap. A user whose slots straddle two wraps could meet a room
//!    twice; the next wrap's permutation is repaired (its head swapped with later
//!    entries) so that its first slots avoid the rooms that user already got.
//! 4. Users in one wrap hold disjoint rooms; users in different wraps overlap as random
//!    sets do, so co-membership has no cliques.
//! 5. Kinds: a seeded shuffle of the class's room indices; its first `auditorium` rooms are
//!    auditoriums, its last `open` rooms are open (disjoint unless the shares add past 1).
//! 6. Roles: every member holds Member; the first `managers` members are also Managers,
//!    and in auditoriums the first `presenters` members are also Presenters.
//!
//! The random numbers come from SplitMix64 written here (not `rand`'s `StdRng`, whose
//! stream may change between releases), so the same spec and seed give the same
//! population with any build.

use crate::protocol::{Privacy, RoomKind};

use super::spec::{ClassPlan, PopulationPlan};

/// SplitMix64: small, fast, and fixed forever (the population must be recomputable).
#[derive(Debug, Clone)]
pub struct SplitMix64(u64);

impl SplitMix64 {
    /// A generator for one purpose: `seed` mixed with a stream number.
    pub fn new(seed: u64, stream: u64) -> Self {
        let mut g = Self(seed ^ stream.wrapping_mul(0xD1B5_4A32_D192_ED03));
        g.next_u64();
        g
    }

    /// The next 64 random bits.
    pub fn next_u64(&mut self) -> u64 {
        self.0 = self.0.wrapping_add(0x9E37_79B9_7F4A_7C15);
        let mut z = self.0;
        z = (z ^ (z >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
        z = (z ^ (z >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
        z ^ (z >> 31)
    }

    /// A number in `0..n` (Lemire's multiply-shift; the bias is below 2⁻³² here).
    pub fn below(&mut self, n: u32) -> u32 {
        ((u128::from(self.next_u64()) * u128::from(n)) >> 64) as u32
    }

    /// Fisher–Yates shuffle.
    pub fn shuffle<T>(&mut self, v: &mut [T]) {
        for i in (1..v.len()).rev() {
            let j = self.below(i as u32 + 1) as usize;
            v.swap(i, j);
        }
    }
}

/// One room to create, with its member list (user indices into the plan's users).
#[derive(Debug, Clone, PartialEq)]
pub struct PlannedRoom {
    /// Index of the class in the plan.
    pub class: usize,
    /// Index of the room in its class (its name uses `index + 1`).
    pub index: u32,
    /// Normal or auditorium.
    pub kind: RoomKind,
    /// Open, or the class's privacy.
    pub privacy: Privacy,
    /// Index of its category.
    pub category: u32,
    /// Members (user indices, 0-based), in the order they were dealt.
    pub members: Vec<u32>,
}

impl PlannedRoom {
    /// The members that are also managers.
    pub fn managers<'a>(&'a self, class: &ClassPlan) -> &'a [u32] {
        &self.members[..self.members.len().min(class.managers as usize)]
    }

    /// The members that are also presenters (auditoriums only).
    pub fn presenters<'a>(&'a self, class: &ClassPlan) -> &'a [u32] {
        if self.kind != RoomKind::Auditorium {
            return &[];
        }
        &self.members[..self.members.len().min(class.presenters as usize)]
    }
}

/// Stream numbers, so that each purpose has its own random sequence.
const STREAM_USERS: u64 = 1;
const STREAM_KINDS: u64 = 2;
const STREAM_WRAPS: u64 = 3;

/// Assign every class: all rooms of the plan, class by class, room index order.
pub fn assign(plan: &PopulationPlan) -> Vec<PlannedRoom> {
    let categories = plan.spec.categories.count;
    let mut out = Vec::with_capacity(plan.total_rooms() as usize);
    for (ci, class) in plan.classes.iter().enumerate() {
        let first = out.len() as u64;
        let members = assign_class(plan.spec.seed, ci as u64, plan.users(), class);
        let kinds = kinds_of(plan.spec.seed, ci as u64, class);
        for (j, (members, (kind, open))) in members.into_iter().zip(kinds).enumerate() {
            out.push(PlannedRoom {
                class: ci,
                index: j as u32,
                kind,
                privacy: if open { Privacy::Open } else { class.privacy },
                category: ((first + j as u64) % u64::from(categories)) as u32,
                members,
            });
        }
    }
    out
}

/// The members of each room of one class (see the module doc for the method).
pub fn assign_class(seed: u64, class_no: u64, users: u32, class: &ClassPlan) -> Vec<Vec<u32>> {
    let count = class.count as usize;
    let rpu = class.rooms_per_user as u64;
    let total = u64::from(users) * rpu;
    let mut order: Vec<u32> = (0..users).collect();
    SplitMix64::new(seed, (class_no << 8) | STREAM_USERS).shuffle(&mut order);
    let per_room = total.div_ceil(count as u64) as usize;
    let mut members: Vec<Vec<u32>> = (0..count).map(|_| Vec::with_capacity(per_room)).collect();
    let mut rng = SplitMix64::new(seed, (class_no << 8) | STREAM_WRAPS);
    let mut sigma: Vec<u32> = (0..class.count).collect();
    let mut slot: u64 = 0;
    while slot < total {
        let tail: Vec<u32> = {
            // Slots the straddling user took at the end of the previous wrap.
            let taken = (slot % rpu) as usize;
            sigma[count - taken..].to_vec()
        };
        rng.shuffle(&mut sigma);
        if !tail.is_empty() {
            repair_head(&mut sigma, &tail, rpu as usize - tail.len());
        }
        for &room in &sigma {
            if slot >= total {
                break;
            }
            let user = order[(slot / rpu) as usize];
            members[room as usize].push(user);
            slot += 1;
        }
    }
    members
}

/// Make the first `head` entries of `sigma` avoid every room in `tail`, by swapping each
/// offending entry with the first later entry that is neither in `tail` nor in the head.
/// Possible because `head + tail.len() == rooms_per_user ≤ count`.
fn repair_head(sigma: &mut [u32], tail: &[u32], head: usize) {
    let mut next = head;
    for h in 0..head {
        if tail.contains(&sigma[h]) {
            while tail.contains(&sigma[next]) {
                next += 1;
            }
            sigma.swap(h, next);
            next += 1;
        }
    }
}

/// (kind, open) of each room of one class, by room index.
fn kinds_of(seed: u64, class_no: u64, class: &ClassPlan) -> Vec<(RoomKind, bool)> {
    let count = class.count as usize;
    let mut idx: Vec<u32> = (0..class.count).collect();
    SplitMix64::new(seed, (class_no << 8) | STREAM_KINDS).shuffle(&mut idx);
    let mut out = vec![(RoomKind::Normal, false); count];
    for &j in &idx[..class.auditorium as usize] {
        out[j as usize].0 = RoomKind::Auditorium;
    }
    for &j in &idx[count - class.open as usize..] {
        out[j as usize].1 = true;
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::provision::spec::PopulationSpec;
    use std::collections::HashSet;

    fn check_exact(plan: &PopulationPlan, rooms: &[PlannedRoom]) {
        let users = plan.users() as usize;
        for (ci, class) in plan.classes.iter().enumerate() {
            let mut per_user = vec![0u32; users];
            let mut sizes = Vec::new();
            for r in rooms.iter().filter(|r| r.class == ci) {
                let distinct: HashSet<_> = r.members.iter().collect();
                assert_eq!(distinct.len(), r.members.len(), "duplicate member");
                for &u in &r.members {
                    per_user[u as usize] += 1;
                }
                sizes.push(r.members.len() as u64);
            }
            assert_eq!(sizes.len() as u32, class.count);
            assert!(per_user.iter().all(|&n| n == class.rooms_per_user));
            let (lo, hi) = (sizes.iter().min().unwrap(), sizes.iter().max().unwrap());
            assert!(hi - lo <= 1, "{}: sizes {lo}..{hi}", class.class);
            assert_eq!(sizes.iter().sum::<u64>(), class.memberships(plan.users()));
            let aud = rooms
                .iter()
                .filter(|r| r.class == ci && r.kind == RoomKind::Auditorium);
            assert_eq!(aud.count() as u32, class.auditorium);
            let open = rooms
                .iter()
                .filter(|r| r.class == ci && r.privacy == Privacy::Open);
            assert_eq!(open.count() as u32, class.open);
        }
        // Rooms of a user are distinct overall.
        let mut seen = HashSet::new();
        for (ri, r) in rooms.iter().enumerate() {
            for &u in &r.members {
                assert!(seen.insert((u, ri)));
            }
        }
    }

    #[test]
    fn lync2013_80000_gives_exact_rooms_per_user_and_sizes() {
        let plan = PopulationSpec::lync2013(80_000).validate().unwrap();
        let rooms = assign(&plan);
        assert_eq!(rooms.len(), 33_077);
        check_exact(&plan, &rooms);
        let size_of = |ci: usize| {
            let r = rooms.iter().find(|r| r.class == ci).unwrap();
            r.members.len()
        };
        assert_eq!(size_of(0), 30);
        assert!((149..=150).contains(&size_of(1)));
        assert_eq!(size_of(2), 16_000);
        let total: usize = rooms.iter().map(|r| r.members.len()).sum();
        assert_eq!(total, 1_280_000);
        let presenters: usize = rooms
            .iter()
            .map(|r| r.presenters(&plan.classes[r.class]).len())
            .sum();
        assert_eq!(presenters, (320 + 11 + 5) * 6);
    }

    #[test]
    fn small_and_awkward_populations_stay_exact() {
        for users in [1, 7, 31, 600, 2_345] {
            let plan = PopulationSpec::lync2013(users).validate().unwrap();
            check_exact(&plan, &assign(&plan));
        }
        // rooms_per_user == count: everyone in every room, across many wraps.
        let mut spec = PopulationSpec::lync2013(101);
        spec.rooms = vec![crate::provision::spec::RoomClassSpec::lync(
            "all", 1000, 7, 0.0, 0.0,
        )];
        let plan = spec.validate().unwrap();
        assert_eq!(plan.classes[0].count, 7);
        check_exact(&plan, &assign(&plan));
    }

    #[test]
    fn assignment_is_deterministic_and_seeded() {
        let plan = PopulationSpec::lync2013(3_000).validate().unwrap();
        assert_eq!(assign(&plan), assign(&plan));
        let mut other = PopulationSpec::lync2013(3_000);
        other.seed = 7;
        assert_ne!(assign(&plan), assign(&other.validate().unwrap()));
    }

    #[test]
    fn co_members_are_not_cliques() {
        // Two members of one small room share few other rooms.
        let plan = PopulationSpec::lync2013(20_000).validate().unwrap();
        let rooms = assign(&plan);
        let mut user_rooms: Vec<HashSet<usize>> = vec![HashSet::new(); 20_000];
        for (ri, r) in rooms.iter().enumerate().filter(|(_, r)| r.class == 0) {
            for &u in &r.members {
                user_rooms[u as usize].insert(ri);
            }
        }
        let r = &rooms[0].members;
        let shared = user_rooms[r[0] as usize]
            .intersection(&user_rooms[r[1] as usize])
            .count();
        assert!(shared <= 3, "members share {shared} rooms");
    }
}
