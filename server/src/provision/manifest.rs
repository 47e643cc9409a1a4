//! What provisioning hands the load generator: a tokens CSV (`id,name,token`, one row per
//! user, administrators included) and a JSON population manifest (every room with its id,
//! class, kind, privacy, members, managers and presenters as user ids).
//!
//! The manifest is the contract: ids are assigned by the database, so only it maps users
//! to room *ids*. Names and memberships alone are recomputable from the spec and seed
//! ([`super::assign`]), and the manifest carries the spec for that purpose.

use std::io::{BufWriter, Write};
use std::path::Path;

use serde::{Deserialize, Serialize};

use super::spec::{PopulationPlan, PopulationSpec};
use super::{ProvisionError, Provisioned};
use crate::auth::TokenKey;
use crate::protocol::{Privacy, RoomKind};

/// Version of the manifest layout; bumped on incompatible change.
pub const MANIFEST_VERSION: u32 = 1;

/// The provisioned population, as the load generator reads it.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Manifest {
    /// [`MANIFEST_VERSION`].
    pub version: u32,
    /// The spec that produced it (seed included).
    pub spec: PopulationSpec,
    /// Ids of the ordinary users, by user index (user `i` is named by the spec's pattern
    /// with `{n}` = `i + 1`).
    pub users: Vec<i64>,
    /// Ids of the administrators.
    pub admins: Vec<i64>,
    /// Every room.
    pub rooms: Vec<ManifestRoom>,
}

/// One room of the manifest.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct ManifestRoom {
    /// Room id.
    pub id: i64,
    /// Room name.
    pub name: String,
    /// Size class (e.g. `small`).
    pub class: String,
    /// Normal or auditorium.
    pub kind: RoomKind,
    /// Open, closed or secret.
    pub privacy: Privacy,
    /// Category id.
    pub category: i64,
    /// Users who use the room (for open rooms too), as user ids.
    pub members: Vec<i64>,
    /// Managers (also members).
    pub managers: Vec<i64>,
    /// Presenters of an auditorium (also members).
    pub presenters: Vec<i64>,
}

fn io_err(path: &Path) -> impl FnOnce(std::io::Error) -> ProvisionError + '_ {
    move |source| ProvisionError::Io {
        path: path.display().to_string(),
        source,
    }
}

impl Manifest {
    /// The manifest of a provisioned population.
    pub fn new(plan: &PopulationPlan, done: &Provisioned) -> Manifest {
        let ids = |us: &[u32]| us.iter().map(|u| done.user_ids[*u as usize]).collect();
        let rooms = done
            .rooms
            .iter()
            .zip(&done.room_ids)
            .map(|(r, &id)| {
                let class = &plan.classes[r.class];
                ManifestRoom {
                    id,
                    name: class.room_name(r.index),
                    class: class.class.clone(),
                    kind: r.kind,
                    privacy: r.privacy,
                    category: done.category_ids[r.category as usize],
                    members: ids(&r.members),
                    managers: ids(r.managers(class)),
                    presenters: ids(r.presenters(class)),
                }
            })
            .collect();
        Manifest {
            version: MANIFEST_VERSION,
            spec: plan.spec.clone(),
            users: done.user_ids.clone(),
            admins: done.admin_ids.clone(),
            rooms,
        }
    }

    /// Write as JSON (creating parent folders).
    pub fn write(&self, path: &Path) -> Result<(), ProvisionError> {
        let mut out = create(path)?;
        serde_json::to_writer(&mut out, self).map_err(|source| ProvisionError::Json {
            path: path.display().to_string(),
            source,
        })?;
        out.flush().map_err(io_err(path))
    }

    /// Read a manifest written by [`Manifest::write`].
    pub fn load(path: &Path) -> Result<Manifest, ProvisionError> {
        let file = std::fs::File::open(path).map_err(io_err(path))?;
        serde_json::from_reader(std::io::BufReader::new(file)).map_err(|source| {
            ProvisionError::Json {
                path: path.display().to_string(),
                source,
            }
        })
    }

    /// Room ids of each user id (what `bjoin` with no list joins).
    pub fn rooms_of(&self, user: i64) -> Vec<i64> {
        self.rooms
            .iter()
            .filter(|r| r.members.contains(&user))
            .map(|r| r.id)
            .collect()
    }
}

fn create(path: &Path) -> Result<BufWriter<std::fs::File>, ProvisionError> {
    if let Some(dir) = path.parent().filter(|d| !d.as_os_str().is_empty()) {
        std::fs::create_dir_all(dir).map_err(io_err(dir))?;
    }
    let file = std::fs::File::create(path).map_err(io_err(path))?;
    Ok(BufWriter::with_capacity(1 << 20, file))
}

/// Write `id,name,token` for every user and administrator, tokens valid until `expires`
/// (unix seconds). Names come from patterns the spec validated; a name holding a comma
/// or quote is quoted as CSV requires.
pub fn write_tokens(
    path: &Path,
    plan: &PopulationPlan,
    done: &Provisioned,
    key: &TokenKey,
    expires: i64,
) -> Result<(), ProvisionError> {
    let mut out = create(path)?;
    let rows = done
        .user_ids
        .iter()
        .enumerate()
        .map(|(i, id)| (*id, plan.user_name(i as u32)))
        .chain(
            done.admin_ids
                .iter()
                .enumerate()
                .map(|(i, id)| (*id, plan.admin_name(i as u32))),
        );
    let write = |out: &mut BufWriter<std::fs::File>| -> std::io::Result<()> {
        writeln!(out, "id,name,token")?;
        for (id, name) in rows {
            writeln!(out, "{id},{},{}", csv_field(&name), key.issue(id, expires))?;
        }
        out.flush()
    };
    write(&mut out).map_err(io_err(path))
}

fn csv_field(s: &str) -> String {
    if s.contains([',', '"', '\n', '\r']) {
        format!("\"{}\"", s.replace('"', "\"\""))
    } else {
        s.to_string()
    }
}

/// One row of a tokens file.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TokenRow {
    /// User id.
    pub id: i64,
    /// Sign-in name.
    pub name: String,
    /// Bearer token.
    pub token: String,
}

/// Read a tokens file written by [`write_tokens`].
pub fn read_tokens(path: &Path) -> Result<Vec<TokenRow>, ProvisionError> {
    let text = std::fs::read_to_string(path).map_err(io_err(path))?;
    let bad = |line: usize| ProvisionError::Io {
        path: path.display().to_string(),
        source: std::io::Error::new(
            std::io::ErrorKind::InvalidData,
            format!("line {line}: expected id,name,token"),
        ),
    };
    let mut rows = Vec::new();
    for (n, line) in text.lines().enumerate().skip(1) {
        // id first, token last: neither holds a comma, so the name is what lies between.
        let (id, rest) = line.split_once(',').ok_or_else(|| bad(n + 1))?;
        let (name, token) = rest.rsplit_once(',').ok_or_else(|| bad(n + 1))?;
        let name = match name.strip_prefix('"').and_then(|s| s.strip_suffix('"')) {
            Some(q) => q.replace("\"\"", "\""),
            None => name.to_string(),
        };
        rows.push(TokenRow {
            id: id.parse().map_err(|_| bad(n + 1))?,
            name,
            token: token.to_string(),
        });
    }
    Ok(rows)
}
