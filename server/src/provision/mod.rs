//! Provisioning: users (with tokens), categories, rooms and memberships from a population
//! spec, including the Lync 2013 capacity model ([`PopulationSpec::lync2013`]).
//!
//! Spec (raw TOML) → [`PopulationPlan`] (validated, [`spec`]) → rooms with members
//! ([`assign`], deterministic from the seed) → database ([`provision`], bulk inserts in big
//! transactions through the store, which alone speaks SQL) → a tokens CSV and a JSON
//! population manifest for the load generator ([`manifest`]).
//!
//! Re-running with the same spec is idempotent: names that exist keep their ids, grants
//! that exist are kept, and the same manifest comes out. A running server loads its
//! directory at start, so provision before `chatcap serve` (or restart it after).

pub mod assign;
pub mod manifest;
pub mod spec;

use std::collections::HashMap;
use std::time::{Duration, Instant};

use serde::Serialize;

use crate::model::Category;
use crate::protocol::{RoleName, RoomKind};
use crate::store::directory::NewRoom;
use crate::store::{Store, StoreError};

pub use assign::PlannedRoom;
pub use manifest::Manifest;
pub use spec::{PopulationPlan, PopulationSpec, SpecError};

/// Why provisioning failed.
#[derive(Debug, thiserror::Error)]
pub enum ProvisionError {
    /// The spec is unusable.
    #[error(transparent)]
    Spec(#[from] SpecError),
    /// The database failed.
    #[error("provisioning database: {0}")]
    Store(#[from] StoreError),
    /// A name the database should have returned an id for did not come back.
    #[error("the database returned no id for {0:?}")]
    MissingId(String),
    /// An output file could not be written or read.
    #[error("{path}: {source}")]
    Io {
        /// The file.
        path: String,
        /// Why.
        source: std::io::Error,
    },
    /// A manifest could not be encoded or decoded.
    #[error("{path}: {source}")]
    Json {
        /// The file.
        path: String,
        /// Why.
        source: serde_json::Error,
    },
}

/// A progress report, for a progress bar.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Progress {
    /// A stage starts, with `total` units of work.
    Stage {
        /// What is being done.
        name: &'static str,
        /// Units of work in the stage.
        total: u64,
    },
    /// `n` more units of the current stage are done.
    Advance(u64),
}

/// Rows written per store call (each call is one or more big transactions).
const USER_BATCH: usize = 20_000;
const ROOM_BATCH: usize = 10_000;
const GRANT_BATCH: usize = 200_000;

/// The rooms of one class, as created.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct ClassSummary {
    /// Class name.
    pub class: String,
    /// Rooms.
    pub rooms: u32,
    /// Auditorium rooms.
    pub auditorium: u32,
    /// Open rooms.
    pub open: u32,
    /// Smallest and largest member count.
    pub size_min: u32,
    /// Largest member count.
    pub size_max: u32,
    /// Memberships (member grants).
    pub memberships: u64,
}

/// What [`provision`] did.
#[derive(Debug, Clone, Serialize)]
pub struct Summary {
    /// Ordinary users.
    pub users: u32,
    /// Administrators.
    pub admins: u32,
    /// Categories.
    pub categories: u32,
    /// Rooms per class.
    pub classes: Vec<ClassSummary>,
    /// Member grants in all rooms.
    pub memberships: u64,
    /// All role grants written (members, managers, presenters).
    pub grants: u64,
    /// Wall time.
    #[serde(serialize_with = "secs")]
    pub elapsed: Duration,
}

fn secs<S: serde::Serializer>(d: &Duration, s: S) -> Result<S::Ok, S::Error> {
    s.serialize_f64(d.as_secs_f64())
}

impl Summary {
    /// Rooms in all classes.
    pub fn rooms(&self) -> u64 {
        self.classes.iter().map(|c| u64::from(c.rooms)).sum()
    }
}

/// The provisioned population: ids as stored, and the rooms as planned.
#[derive(Debug, Clone)]
pub struct Provisioned {
    /// What was done.
    pub summary: Summary,
    /// Ids of the ordinary users, by user index.
    pub user_ids: Vec<i64>,
    /// Ids of the administrators, by admin index.
    pub admin_ids: Vec<i64>,
    /// Ids of the categories, by category index.
    pub category_ids: Vec<i64>,
    /// The rooms (members are user indices).
    pub rooms: Vec<PlannedRoom>,
    /// Ids of the rooms, in the order of `rooms`.
    pub room_ids: Vec<i64>,
}

/// Write the whole population into `store`; `progress` hears of every batch.
pub async fn provision(
    store: &Store,
    plan: &PopulationPlan,
    progress: &(dyn Fn(Progress) + Sync),
) -> Result<Provisioned, ProvisionError> {
    let started = Instant::now();
    let users = plan.users();
    let admins = plan.spec.users.admins;

    progress(Progress::Stage {
        name: "users",
        total: u64::from(users) + u64::from(admins),
    });
    let user_ids = create_users(
        store,
        (0..users).map(|i| plan.user_name(i)),
        false,
        progress,
    )
    .await?;
    let admin_ids = create_users(
        store,
        (0..admins).map(|i| plan.admin_name(i)),
        true,
        progress,
    )
    .await?;

    let cats = &plan.spec.categories;
    progress(Progress::Stage {
        name: "categories",
        total: u64::from(cats.count),
    });
    let mut category_ids = Vec::with_capacity(cats.count as usize);
    for i in 0..cats.count {
        let c = Category {
            name: plan.category_name(i),
            allow_everyone: cats.allow_everyone,
            invitations: cats.invitations,
            file_upload: cats.file_upload,
            history: cats.history,
            // Administrators may create rooms in every provisioned category.
            creators: admin_ids.clone(),
            ..Default::default()
        };
        category_ids.push(store.ensure_category(&c).await?);
        progress(Progress::Advance(1));
    }

    progress(Progress::Stage {
        name: "planning",
        total: 1,
    });
    let rooms = assign::assign(plan);
    progress(Progress::Advance(1));

    progress(Progress::Stage {
        name: "rooms",
        total: rooms.len() as u64,
    });
    let mut room_ids = Vec::with_capacity(rooms.len());
    for batch in rooms.chunks(ROOM_BATCH) {
        let new: Vec<NewRoom> = batch
            .iter()
            .map(|r| {
                let class = &plan.classes[r.class];
                NewRoom {
                    name: class.room_name(r.index),
                    category: category_ids[r.category as usize],
                    kind: r.kind,
                    privacy: r.privacy,
                    description: format!("{} room, Lync-shaped population", class.class),
                }
            })
            .collect();
        let ids = store.create_rooms_bulk(&new).await?;
        for r in &new {
            room_ids.push(lookup(&ids, &r.name)?);
        }
        progress(Progress::Advance(batch.len() as u64));
    }

    let memberships: u64 = rooms.iter().map(|r| r.members.len() as u64).sum();
    progress(Progress::Stage {
        name: "memberships",
        total: memberships,
    });
    let mut grants: Vec<(i64, i64, RoleName)> = Vec::with_capacity(GRANT_BATCH + 20_000);
    let mut granted = 0u64;
    let mut members_in_batch = 0u64;
    for (r, &room_id) in rooms.iter().zip(&room_ids) {
        let class = &plan.classes[r.class];
        let uid = |u: &u32| user_ids[*u as usize];
        grants.extend(
            r.members
                .iter()
                .map(|u| (room_id, uid(u), RoleName::Member)),
        );
        grants.extend(
            r.managers(class)
                .iter()
                .map(|u| (room_id, uid(u), RoleName::Manager)),
        );
        grants.extend(
            r.presenters(class)
                .iter()
                .map(|u| (room_id, uid(u), RoleName::Presenter)),
        );
        members_in_batch += r.members.len() as u64;
        if grants.len() >= GRANT_BATCH {
            store.grant_roles_bulk(&grants).await?;
            granted += grants.len() as u64;
            grants.clear();
            progress(Progress::Advance(std::mem::take(&mut members_in_batch)));
        }
    }
    store.grant_roles_bulk(&grants).await?;
    granted += grants.len() as u64;
    progress(Progress::Advance(members_in_batch));

    let classes = plan
        .classes
        .iter()
        .enumerate()
        .map(|(ci, c)| {
            let of_class = || rooms.iter().filter(move |r| r.class == ci);
            let sizes = || of_class().map(|r| r.members.len() as u32);
            ClassSummary {
                class: c.class.clone(),
                rooms: c.count,
                auditorium: of_class()
                    .filter(|r| r.kind == RoomKind::Auditorium)
                    .count() as u32,
                open: c.open,
                size_min: sizes().min().unwrap_or(0),
                size_max: sizes().max().unwrap_or(0),
                memberships: c.memberships(users),
            }
        })
        .collect();
    Ok(Provisioned {
        summary: Summary {
            users,
            admins,
            categories: cats.count,
            classes,
            memberships,
            grants: granted,
            elapsed: started.elapsed(),
        },
        user_ids,
        admin_ids,
        category_ids,
        rooms,
        room_ids,
    })
}

fn lookup(ids: &HashMap<String, i64>, name: &str) -> Result<i64, ProvisionError> {
    ids.get(name)
        .copied()
        .ok_or_else(|| ProvisionError::MissingId(name.to_string()))
}

/// Create users in batches; returns their ids in the order of `names`.
async fn create_users(
    store: &Store,
    names: impl Iterator<Item = String>,
    admin: bool,
    progress: &(dyn Fn(Progress) + Sync),
) -> Result<Vec<i64>, ProvisionError> {
    let names: Vec<String> = names.collect();
    let mut ids = Vec::with_capacity(names.len());
    for batch in names.chunks(USER_BATCH) {
        let got = store.create_users_bulk_as(batch, admin).await?;
        for n in batch {
            ids.push(lookup(&got, n)?);
        }
        progress(Progress::Advance(batch.len() as u64));
    }
    Ok(ids)
}
