//! The population spec as written (TOML, [`PopulationSpec`]) and its validated form
//! ([`PopulationPlan`]): raw → checked, two types, so nothing downstream re-checks.
//!
//! Room counts are derived when not given: `count = max(ceil(users × rooms_per_user /
//! size), rooms_per_user)` — the second term because a user cannot hold the same room
//! twice. Auditorium and open rooms are `round(count × share)` rooms of the class.
//! This module does no I/O beyond parsing text it is handed.

use serde::{Deserialize, Serialize};

use crate::protocol::Privacy;

/// A spec that cannot be used; `field` names the offending key (e.g. `rooms[1].size`).
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum SpecError {
    /// The text is not valid TOML for a spec (unknown or mistyped field, syntax).
    #[error("population spec: {0}")]
    Parse(String),
    /// A field has a value outside its range.
    #[error("population spec: {field}: {message}")]
    Invalid {
        /// The field, as a TOML path.
        field: String,
        /// What is wrong with it.
        message: String,
    },
}

fn invalid(field: impl Into<String>, message: impl Into<String>) -> SpecError {
    SpecError::Invalid {
        field: field.into(),
        message: message.into(),
    }
}

/// A population to provision, as written in a TOML file (see docs/PROVISION.md).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct PopulationSpec {
    /// Seed of every shuffle: the same spec and seed give the same population.
    #[serde(default = "default_seed")]
    pub seed: u64,
    /// Users and administrators.
    pub users: UsersSpec,
    /// Categories the rooms are spread over.
    #[serde(default)]
    pub categories: CategoriesSpec,
    /// Room classes (e.g. small, medium, large).
    #[serde(default)]
    pub rooms: Vec<RoomClassSpec>,
}

/// The `[users]` table.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct UsersSpec {
    /// Ordinary users (room members).
    pub count: u32,
    /// Sign-in name pattern; `{n}` is replaced by 1..=count.
    #[serde(default = "default_user_name")]
    pub name: String,
    /// Persistent Chat administrators, created besides the ordinary users.
    #[serde(default)]
    pub admins: u32,
    /// Administrator name pattern; `{n}` is replaced by 1..=admins.
    #[serde(default = "default_admin_name")]
    pub admin_name: String,
    /// Lifetime of the issued tokens, in hours.
    #[serde(default = "default_ttl")]
    pub token_ttl_hours: u64,
}

/// The `[categories]` table: `count` categories with the same switches.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct CategoriesSpec {
    /// How many categories; rooms are dealt over them in turn.
    #[serde(default = "one")]
    pub count: u32,
    /// Name pattern; `{n}` is replaced by 1..=count.
    #[serde(default = "default_category_name")]
    pub name: String,
    /// AllowedMembers = everyone.
    #[serde(default = "yes")]
    pub allow_everyone: bool,
    /// Invitations switch.
    #[serde(default = "yes")]
    pub invitations: bool,
    /// File upload switch.
    #[serde(default = "yes")]
    pub file_upload: bool,
    /// Chat history switch.
    #[serde(default = "yes")]
    pub history: bool,
}

impl Default for CategoriesSpec {
    fn default() -> Self {
        Self {
            count: 1,
            name: default_category_name(),
            allow_everyone: true,
            invitations: true,
            file_upload: true,
            history: true,
        }
    }
}

/// One `[[rooms]]` entry: a class of rooms of one size.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RoomClassSpec {
    /// Class name (unique), e.g. `small`.
    pub class: String,
    /// Members per room; with `count` absent, derives it.
    #[serde(default)]
    pub size: Option<u32>,
    /// Rooms of the class; wins over `size` when both are given.
    #[serde(default)]
    pub count: Option<u32>,
    /// Rooms of this class every user is a member of.
    pub rooms_per_user: u32,
    /// Share of the rooms that are auditoriums (0–1).
    #[serde(default)]
    pub auditorium: f64,
    /// Share of the rooms that are open (0–1).
    #[serde(default)]
    pub open: f64,
    /// Privacy of the rooms that are not open: `closed` (default) or `secret`.
    #[serde(default)]
    pub privacy: Privacy,
    /// Presenters per auditorium room (taken from its members).
    #[serde(default = "six")]
    pub presenters: u32,
    /// Managers per room (taken from its members).
    #[serde(default = "one")]
    pub managers: u32,
    /// Room name pattern; `{class}` and `{n}` (1..=count) are replaced.
    #[serde(default = "default_room_name")]
    pub name: String,
}

fn default_seed() -> u64 {
    2013
}
fn default_user_name() -> String {
    "user{n}@chatcap.test".into()
}
fn default_admin_name() -> String {
    "admin{n}@chatcap.test".into()
}
fn default_category_name() -> String {
    "category-{n}".into()
}
fn default_room_name() -> String {
    "{class}-{n}".into()
}
fn default_ttl() -> u64 {
    24 * 365
}
fn one() -> u32 {
    1
}
fn six() -> u32 {
    6
}
fn yes() -> bool {
    true
}

/// Most users a spec may ask for (keeps every index in a `u32`).
pub const MAX_USERS: u32 = 10_000_000;

impl RoomClassSpec {
    /// A class of the Lync 2013 model: rooms sized `size`, `per_user` per user, with the
    /// auditorium and open shares of the capacity-planning table.
    pub fn lync(class: &str, size: u32, per_user: u32, auditorium: f64, open: f64) -> Self {
        Self {
            class: class.into(),
            size: Some(size),
            count: None,
            rooms_per_user: per_user,
            auditorium,
            open,
            privacy: Privacy::Closed,
            presenters: 6,
            managers: 1,
            name: default_room_name(),
        }
    }
}

impl PopulationSpec {
    /// The Lync 2013 performance user model (DESIGN.md), scaled to `users`: rooms of
    /// 30 / 150 / 16,000 members, 12 / 2 / 2 per user, auditoriums 1% / 1% / 50%, open
    /// 3% / 3% / 50%. At 80,000 users: 32,000 + 1,067 + 10 = 33,077 rooms and 1,280,000
    /// memberships. One administrator, one category.
    pub fn lync2013(users: u32) -> Self {
        Self {
            seed: default_seed(),
            users: UsersSpec {
                count: users,
                name: default_user_name(),
                admins: 1,
                admin_name: default_admin_name(),
                token_ttl_hours: default_ttl(),
            },
            categories: CategoriesSpec {
                name: "lync2013-{n}".into(),
                ..Default::default()
            },
            rooms: vec![
                RoomClassSpec::lync("small", 30, 12, 0.01, 0.03),
                RoomClassSpec::lync("medium", 150, 2, 0.01, 0.03),
                RoomClassSpec::lync("large", 16_000, 2, 0.5, 0.5),
            ],
        }
    }

    /// Parse a spec from TOML text (unknown fields are refused).
    pub fn from_toml(text: &str) -> Result<Self, SpecError> {
        toml::from_str(text).map_err(|e| {
            // Located and worded as scenario and topology files are (the toml crate's own
            // message is empty for some characters).
            let p =
                crate::toml_spans::Source::new(std::path::Path::new(""), text).syntax_problem(&e);
            SpecError::Parse(format!("line {}: {}: {}", p.line, p.field, p.message))
        })
    }

    /// Check every field and derive room counts.
    pub fn validate(&self) -> Result<PopulationPlan, SpecError> {
        let u = &self.users;
        if u.count == 0 || u.count > MAX_USERS {
            return Err(invalid(
                "users.count",
                format!("must be 1–{MAX_USERS}, not {}", u.count),
            ));
        }
        pattern("users.name", &u.name, &["{n}"])?;
        if u.admins > 1000 {
            return Err(invalid("users.admins", "must be at most 1000"));
        }
        pattern("users.admin_name", &u.admin_name, &["{n}"])?;
        if u.admins > 0 && u.admin_name == u.name {
            return Err(invalid(
                "users.admin_name",
                "must differ from users.name (the names would collide)",
            ));
        }
        if u.token_ttl_hours == 0 {
            return Err(invalid("users.token_ttl_hours", "must be above 0"));
        }
        let c = &self.categories;
        if c.count == 0 || c.count > 10_000 {
            return Err(invalid("categories.count", "must be 1–10000"));
        }
        pattern("categories.name", &c.name, &["{n}"])?;
        let mut classes = Vec::with_capacity(self.rooms.len());
        for (i, r) in self.rooms.iter().enumerate() {
            let f = |name: &str| format!("rooms[{i}].{name}");
            if r.class.trim().is_empty() {
                return Err(invalid(f("class"), "must not be empty"));
            }
            if self.rooms[..i].iter().any(|o| o.class == r.class) {
                return Err(invalid(f("class"), format!("{:?} is used twice", r.class)));
            }
            pattern(&f("name"), &r.name, &["{n}", "{class}"])?;
            if r.rooms_per_user == 0 {
                return Err(invalid(f("rooms_per_user"), "must be at least 1"));
            }
            for (name, share) in [("auditorium", r.auditorium), ("open", r.open)] {
                if !(0.0..=1.0).contains(&share) {
                    return Err(invalid(f(name), format!("must be 0–1, not {share}")));
                }
            }
            if r.privacy == Privacy::Open {
                return Err(invalid(
                    f("privacy"),
                    "must be closed or secret (use `open` for the share of open rooms)",
                ));
            }
            if r.managers == 0 {
                return Err(invalid(f("managers"), "must be at least 1"));
            }
            let memberships = u64::from(u.count) * u64::from(r.rooms_per_user);
            let count = match (r.count, r.size) {
                (Some(0), _) => return Err(invalid(f("count"), "must be at least 1")),
                (Some(n), _) => u64::from(n),
                (None, Some(0)) => return Err(invalid(f("size"), "must be at least 1")),
                (None, Some(size)) => memberships
                    .div_ceil(u64::from(size))
                    .max(u64::from(r.rooms_per_user)),
                (None, None) => return Err(invalid(f("size"), "give size or count")),
            };
            if count < u64::from(r.rooms_per_user) {
                return Err(invalid(
                    f("count"),
                    format!(
                        "{count} rooms cannot give every user {} distinct rooms",
                        r.rooms_per_user
                    ),
                ));
            }
            if count > memberships {
                return Err(invalid(
                    f("count"),
                    format!(
                        "{count} rooms but only {memberships} memberships: rooms would be empty"
                    ),
                ));
            }
            if count > 10_000_000 {
                return Err(invalid(f("count"), "must be at most 10,000,000"));
            }
            let count = count as u32;
            classes.push(ClassPlan {
                class: r.class.clone(),
                count,
                rooms_per_user: r.rooms_per_user,
                auditorium: share_of(count, r.auditorium),
                open: share_of(count, r.open),
                privacy: r.privacy,
                presenters: r.presenters,
                managers: r.managers,
                name: r.name.clone(),
            });
        }
        Ok(PopulationPlan {
            spec: self.clone(),
            classes,
        })
    }
}

fn share_of(count: u32, share: f64) -> u32 {
    ((f64::from(count) * share).round() as u32).min(count)
}

fn pattern(field: &str, value: &str, needs: &[&str]) -> Result<(), SpecError> {
    if let Some(missing) = needs.iter().find(|n| **n == "{n}" && !value.contains(**n)) {
        return Err(invalid(
            field,
            format!("{value:?} must contain {missing} (names must be unique)"),
        ));
    }
    if value.trim().is_empty() {
        return Err(invalid(field, "must not be empty"));
    }
    Ok(())
}

/// A validated population: the spec plus the derived per-class numbers.
#[derive(Debug, Clone, PartialEq)]
pub struct PopulationPlan {
    /// The spec it came from (for the manifest and the names).
    pub spec: PopulationSpec,
    /// Room classes with their counts.
    pub classes: Vec<ClassPlan>,
}

/// One room class, ready to assign.
#[derive(Debug, Clone, PartialEq)]
pub struct ClassPlan {
    /// Class name.
    pub class: String,
    /// Rooms of the class.
    pub count: u32,
    /// Rooms of the class per user.
    pub rooms_per_user: u32,
    /// Auditorium rooms.
    pub auditorium: u32,
    /// Open rooms.
    pub open: u32,
    /// Privacy of the rooms that are not open.
    pub privacy: Privacy,
    /// Presenters per auditorium room.
    pub presenters: u32,
    /// Managers per room.
    pub managers: u32,
    /// Room name pattern.
    pub name: String,
}

impl ClassPlan {
    /// Memberships of the class: users × rooms per user.
    pub fn memberships(&self, users: u32) -> u64 {
        u64::from(users) * u64::from(self.rooms_per_user)
    }

    /// The name of room `n` (0-based) of the class.
    pub fn room_name(&self, n: u32) -> String {
        self.name
            .replace("{class}", &self.class)
            .replace("{n}", &(n + 1).to_string())
    }
}

impl PopulationPlan {
    /// Ordinary users.
    pub fn users(&self) -> u32 {
        self.spec.users.count
    }

    /// The name of ordinary user `i` (0-based).
    pub fn user_name(&self, i: u32) -> String {
        self.spec.users.name.replace("{n}", &(i + 1).to_string())
    }

    /// The name of administrator `i` (0-based).
    pub fn admin_name(&self, i: u32) -> String {
        self.spec
            .users
            .admin_name
            .replace("{n}", &(i + 1).to_string())
    }

    /// The name of category `i` (0-based).
    pub fn category_name(&self, i: u32) -> String {
        self.spec
            .categories
            .name
            .replace("{n}", &(i + 1).to_string())
    }

    /// Rooms in all classes.
    pub fn total_rooms(&self) -> u64 {
        self.classes.iter().map(|c| u64::from(c.count)).sum()
    }

    /// Memberships in all classes.
    pub fn total_memberships(&self) -> u64 {
        self.classes
            .iter()
            .map(|c| c.memberships(self.users()))
            .sum()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn lync2013_at_80000_matches_the_capacity_table() {
        let plan = PopulationSpec::lync2013(80_000).validate().unwrap();
        let counts: Vec<_> = plan.classes.iter().map(|c| c.count).collect();
        assert_eq!(counts, [32_000, 1_067, 10]);
        assert_eq!(plan.total_rooms(), 33_077);
        assert_eq!(plan.total_memberships(), 1_280_000);
        let aud: Vec<_> = plan.classes.iter().map(|c| c.auditorium).collect();
        let open: Vec<_> = plan.classes.iter().map(|c| c.open).collect();
        assert_eq!(aud, [320, 11, 5]);
        assert_eq!(open, [960, 32, 5]);
    }

    #[test]
    fn lync2013_scales_down_without_breaking_distinctness() {
        let plan = PopulationSpec::lync2013(20_000).validate().unwrap();
        let counts: Vec<_> = plan.classes.iter().map(|c| c.count).collect();
        assert_eq!(counts, [8_000, 267, 3]);
        let plan = PopulationSpec::lync2013(600).validate().unwrap();
        let counts: Vec<_> = plan.classes.iter().map(|c| c.count).collect();
        assert_eq!(counts, [240, 8, 2]);
    }

    #[test]
    fn spec_parses_from_toml_with_defaults() {
        let spec = PopulationSpec::from_toml(
            "[users]\ncount = 10\n[[rooms]]\nclass = \"s\"\nsize = 5\nrooms_per_user = 2\n",
        )
        .unwrap();
        let plan = spec.validate().unwrap();
        assert_eq!(plan.classes[0].count, 4);
        assert_eq!(plan.user_name(0), "user1@chatcap.test");
        assert_eq!(plan.classes[0].room_name(3), "s-4");
        assert_eq!(spec.seed, 2013);
    }

    fn err_field(toml: &str) -> String {
        match PopulationSpec::from_toml(toml).and_then(|s| s.validate()) {
            Err(SpecError::Invalid { field, .. }) => field,
            Err(SpecError::Parse(m)) => format!("parse: {m}"),
            Ok(_) => "ok".into(),
        }
    }

    #[test]
    fn syntax_errors_name_the_line_and_field() {
        assert_eq!(
            err_field("[users]\ncount = \"ten\"\n"),
            "parse: line 2: users.count: invalid type: string \"ten\", expected u32"
        );
        let control = err_field("# a\u{1d}b\n[users]\ncount = 10\n");
        assert!(
            control.starts_with("parse: line 1: (top level): unexpected control character U+001D"),
            "{control}"
        );
    }

    #[test]
    fn validation_errors_name_the_field() {
        let base = "[users]\ncount = 10\n";
        assert_eq!(err_field("[users]\ncount = 0\n"), "users.count");
        assert_eq!(
            err_field("[users]\ncount = 5\nname = \"same\"\n"),
            "users.name"
        );
        let room = |extra: &str| format!("{base}[[rooms]]\nclass = \"s\"\n{extra}");
        assert_eq!(err_field(&room("rooms_per_user = 2\n")), "rooms[0].size");
        assert_eq!(
            err_field(&room("size = 0\nrooms_per_user = 2\n")),
            "rooms[0].size"
        );
        assert_eq!(
            err_field(&room("count = 1\nrooms_per_user = 2\n")),
            "rooms[0].count"
        );
        assert_eq!(
            err_field(&room("size = 5\nrooms_per_user = 0\n")),
            "rooms[0].rooms_per_user"
        );
        assert_eq!(
            err_field(&room("size = 5\nrooms_per_user = 1\nopen = 1.5\n")),
            "rooms[0].open"
        );
        assert_eq!(
            err_field(&room("size = 5\nrooms_per_user = 1\nprivacy = \"open\"\n")),
            "rooms[0].privacy"
        );
        let twice = format!(
            "{}[[rooms]]\nclass = \"s\"\nsize = 5\nrooms_per_user = 1\n",
            room("size = 5\nrooms_per_user = 1\n")
        );
        assert_eq!(err_field(&twice), "rooms[1].class");
        let unknown = err_field(&room("size = 5\nrooms_per_user = 1\nsizes = 3\n"));
        assert!(unknown.contains("unknown field `sizes`"), "{unknown}");
    }
}
