//! Directory storage: users, categories (with their lists), rooms and room roles — loading
//! all of it at start, changing one thing at a time, and bulk provisioning.

use std::collections::HashMap;

use sqlx::QueryBuilder;

use super::{conflict_as, on_pool, Result, Store, StoreError};
use crate::model::{
    kind_code, kind_from_code, privacy_code, privacy_from_code, role_code, role_from_code,
    Category, Directory, ListKind, Room, User,
};
use crate::protocol::RoleName;

/// Rows per multi-row INSERT: below both engines' bind-parameter limits.
const CHUNK: usize = 2000;

type RoomRow = (
    i64,
    String,
    String,
    i64,
    i16,
    i16,
    bool,
    Option<String>,
    bool,
    i64,
);

/// `WHERE column = $1` when one row is asked for: one text for one row and another for
/// all rows, so that each gets its own query plan.
fn where_one(column: &str, only: Option<i64>) -> String {
    match only {
        Some(_) => format!(" WHERE {column} = $1"),
        None => String::new(),
    }
}

fn room_from_row(r: RoomRow) -> Room {
    Room {
        id: r.0,
        name: r.1,
        description: r.2,
        category: r.3,
        kind: kind_from_code(r.4),
        privacy: privacy_from_code(r.5),
        disabled: r.6,
        addin_url: r.7,
        invitations: r.8,
        last_seq: r.9,
    }
}

/// A room to create in bulk (provisioning).
#[derive(Debug, Clone)]
pub struct NewRoom {
    /// Unique name.
    pub name: String,
    /// Category id.
    pub category: i64,
    /// Settings (id and last_seq are ignored).
    pub kind: crate::protocol::RoomKind,
    /// Privacy.
    pub privacy: crate::protocol::Privacy,
    /// Description.
    pub description: String,
}

impl Store {
    /// Load the whole directory into memory.
    pub async fn load_directory(&self) -> Result<Directory> {
        let mut dir = Directory::default();
        let users: Vec<(i64, String, bool)> = on_pool!(self, read, p =>
            sqlx::query_as("SELECT id, name, admin FROM users").fetch_all(p).await?);
        for (id, name, admin) in users {
            dir.users.insert(id, User { id, name, admin });
        }
        for c in self.categories(None).await? {
            dir.categories.insert(c.id, c);
        }
        let (rooms, roles) = self.rooms(None).await?;
        for r in rooms {
            dir.put_room(r);
        }
        for (room, user, role) in roles {
            dir.set_role(room, user, role, true);
        }
        Ok(dir)
    }

    /// One category with its lists, as stored now (`None`: no such category).
    pub async fn category_by_id(&self, id: i64) -> Result<Option<Category>> {
        Ok(self.categories(Some(id)).await?.pop())
    }

    /// One room with its roles (user, role), as stored now (`None`: no such room).
    pub async fn room_by_id(&self, id: i64) -> Result<Option<(Room, Vec<(i64, RoleName)>)>> {
        let (mut rooms, roles) = self.rooms(Some(id)).await?;
        Ok(rooms
            .pop()
            .map(|r| (r, roles.into_iter().map(|(_, u, role)| (u, role)).collect())))
    }

    /// Every category with its lists, or only the one `only`.
    async fn categories(&self, only: Option<i64>) -> Result<Vec<Category>> {
        let one = |column: &str| where_one(column, only);
        let sql = format!(
            "SELECT id, name, allow_everyone, invitations, file_upload, history FROM categories{}",
            one("id")
        );
        let cats: Vec<(i64, String, bool, bool, bool, bool)> = on_pool!(self, read, p => {
            let q = sqlx::query_as(&sql);
            match only { Some(id) => q.bind(id), None => q }.fetch_all(p).await?
        });
        let mut out: HashMap<i64, Category> = HashMap::with_capacity(cats.len());
        for (id, name, allow_everyone, invitations, file_upload, history) in cats {
            let c = Category {
                id,
                name,
                allow_everyone,
                invitations,
                file_upload,
                history,
                ..Default::default()
            };
            out.insert(id, c);
        }
        let sql = format!(
            "SELECT category_id, kind, user_id FROM category_principals{}",
            one("category_id")
        );
        let lists: Vec<(i64, i16, i64)> = on_pool!(self, read, p => {
            let q = sqlx::query_as(&sql);
            match only { Some(id) => q.bind(id), None => q }.fetch_all(p).await?
        });
        for (cat, kind, user) in lists {
            if let Some(c) = out.get_mut(&cat) {
                match kind {
                    0 => c.allowed.push(user),
                    1 => c.denied.push(user),
                    2 => c.creators.push(user),
                    k => return Err(StoreError::Corrupt(format!("category list kind {k}"))),
                }
            }
        }
        Ok(out.into_values().collect())
    }

    /// Every room and every role (room, user, role), or only those of the room `only`.
    async fn rooms(&self, only: Option<i64>) -> Result<(Vec<Room>, Vec<(i64, i64, RoleName)>)> {
        let one = |column: &str| where_one(column, only);
        let sql = format!(
            "SELECT id, name, description, category_id, kind, privacy, disabled, addin_url, \
             invitations, last_seq FROM rooms{}",
            one("id")
        );
        let rooms: Vec<RoomRow> = on_pool!(self, read, p => {
            let q = sqlx::query_as(&sql);
            match only { Some(id) => q.bind(id), None => q }.fetch_all(p).await?
        });
        let sql = format!(
            "SELECT room_id, user_id, role FROM room_roles{}",
            one("room_id")
        );
        let rows: Vec<(i64, i64, i16)> = on_pool!(self, read, p => {
            let q = sqlx::query_as(&sql);
            match only { Some(id) => q.bind(id), None => q }.fetch_all(p).await?
        });
        let mut roles = Vec::with_capacity(rows.len());
        for (room, user, code) in rows {
            let role =
                role_from_code(code).ok_or_else(|| StoreError::Corrupt(format!("role {code}")))?;
            roles.push((room, user, role));
        }
        Ok((rooms.into_iter().map(room_from_row).collect(), roles))
    }

    /// Create one user; returns its id.
    pub async fn create_user(&self, name: &str, admin: bool) -> Result<i64> {
        let sql = "INSERT INTO users (name, admin) VALUES ($1, $2) RETURNING id";
        Ok(
            on_pool!(self, write, p => sqlx::query_scalar::<_, i64>(sql).bind(name).bind(admin)
            .fetch_one(p).await.map_err(conflict_as("user"))?),
        )
    }

    /// Look a user up by name.
    pub async fn user_by_name(&self, name: &str) -> Result<Option<User>> {
        let sql = "SELECT id, name, admin FROM users WHERE name = $1";
        let row: Option<(i64, String, bool)> =
            on_pool!(self, read, p => sqlx::query_as(sql).bind(name).fetch_optional(p).await?);
        Ok(row.map(|(id, name, admin)| User { id, name, admin }))
    }

    /// Look a user up by id.
    pub async fn user_by_id(&self, id: i64) -> Result<Option<User>> {
        let sql = "SELECT id, name, admin FROM users WHERE id = $1";
        let row: Option<(i64, String, bool)> =
            on_pool!(self, read, p => sqlx::query_as(sql).bind(id).fetch_optional(p).await?);
        Ok(row.map(|(id, name, admin)| User { id, name, admin }))
    }

    /// Create users in bulk; returns name → id. Names that exist already keep their ids.
    pub async fn create_users_bulk(&self, names: &[String]) -> Result<HashMap<String, i64>> {
        self.create_users_bulk_as(names, false).await
    }

    /// Create users in bulk, administrators when `admin`; returns name → id. Names that
    /// exist already keep their ids (and become administrators when `admin`).
    pub async fn create_users_bulk_as(
        &self,
        names: &[String],
        admin: bool,
    ) -> Result<HashMap<String, i64>> {
        let mut out = HashMap::with_capacity(names.len());
        for chunk in names.chunks(CHUNK) {
            let rows: Vec<(i64, String)> = on_pool!(self, write, p => {
                let mut qb = QueryBuilder::new("INSERT INTO users (name, admin) ");
                qb.push_values(chunk, |mut b, n| {
                    b.push_bind(n.as_str()).push_bind(admin);
                });
                qb.push(" ON CONFLICT (name) DO UPDATE SET admin = (users.admin OR excluded.admin) RETURNING id, name");
                qb.build_query_as().fetch_all(p).await?
            });
            out.extend(rows.into_iter().map(|(id, name)| (name, id)));
        }
        Ok(out)
    }

    /// Create a category with its lists; returns its id.
    pub async fn create_category(&self, c: &Category) -> Result<i64> {
        let sql =
            "INSERT INTO categories (name, allow_everyone, invitations, file_upload, history) \
                   VALUES ($1, $2, $3, $4, $5) RETURNING id";
        let id: i64 = on_pool!(self, write, p => sqlx::query_scalar(sql)
            .bind(&c.name).bind(c.allow_everyone).bind(c.invitations).bind(c.file_upload).bind(c.history)
            .fetch_one(p).await.map_err(conflict_as("category"))?);
        self.replace_category_lists(id, c).await?;
        Ok(id)
    }

    /// Create a category, or update the one of that name, with its switches and lists as
    /// given (provisioning re-runs); returns its id.
    pub async fn ensure_category(&self, c: &Category) -> Result<i64> {
        let sql =
            "INSERT INTO categories (name, allow_everyone, invitations, file_upload, history) \
             VALUES ($1, $2, $3, $4, $5) ON CONFLICT (name) DO UPDATE SET \
             allow_everyone = excluded.allow_everyone, invitations = excluded.invitations, \
             file_upload = excluded.file_upload, history = excluded.history RETURNING id";
        let id: i64 = on_pool!(self, write, p => sqlx::query_scalar(sql)
            .bind(&c.name).bind(c.allow_everyone).bind(c.invitations).bind(c.file_upload).bind(c.history)
            .fetch_one(p).await?);
        self.replace_category_lists(id, c).await?;
        Ok(id)
    }

    /// Store a category's switches and lists as given.
    pub async fn update_category(&self, c: &Category) -> Result<()> {
        let sql = "UPDATE categories SET allow_everyone = $1, invitations = $2, file_upload = $3, history = $4 WHERE id = $5";
        on_pool!(self, write, p => sqlx::query(sql)
            .bind(c.allow_everyone).bind(c.invitations).bind(c.file_upload).bind(c.history).bind(c.id)
            .execute(p).await?.rows_affected());
        self.replace_category_lists(c.id, c).await
    }

    async fn replace_category_lists(&self, id: i64, c: &Category) -> Result<()> {
        let mut rows: Vec<(i16, i64)> = Vec::new();
        for (kind, list) in [
            (ListKind::Allowed, &c.allowed),
            (ListKind::Denied, &c.denied),
            (ListKind::Creator, &c.creators),
        ] {
            rows.extend(list.iter().map(|u| (kind as i16, *u)));
        }
        rows.sort_unstable();
        rows.dedup();
        on_pool!(self, write, p => {
            let mut tx = p.begin().await?;
            sqlx::query("DELETE FROM category_principals WHERE category_id = $1").bind(id).execute(&mut *tx).await?;
            for chunk in rows.chunks(CHUNK) {
                let mut qb = QueryBuilder::new("INSERT INTO category_principals (category_id, kind, user_id) ");
                qb.push_values(chunk, |mut b, (kind, user)| {
                    b.push_bind(id).push_bind(*kind).push_bind(*user);
                });
                qb.build().execute(&mut *tx).await?;
            }
            tx.commit().await?;
        });
        Ok(())
    }

    /// Create one room; returns its id.
    /// The room and its creator's roles are written in one transaction: a failure leaves
    /// neither.
    pub async fn create_room(&self, r: &Room, creator_roles: &[(i64, RoleName)]) -> Result<i64> {
        let sql = "INSERT INTO rooms (name, description, category_id, kind, privacy, disabled, addin_url, invitations) \
                   VALUES ($1, $2, $3, $4, $5, $6, $7, $8) RETURNING id";
        let grant = "INSERT INTO room_roles (room_id, user_id, role) VALUES ($1, $2, $3) ON CONFLICT DO NOTHING";
        Ok(on_pool!(self, write, p => {
            let mut tx = p.begin().await?;
            let id: i64 = sqlx::query_scalar(sql)
                .bind(&r.name).bind(&r.description).bind(r.category).bind(kind_code(r.kind))
                .bind(privacy_code(r.privacy)).bind(r.disabled).bind(&r.addin_url).bind(r.invitations)
                .fetch_one(&mut *tx).await.map_err(conflict_as("room"))?;
            for (user, role) in creator_roles {
                sqlx::query(grant).bind(id).bind(*user).bind(role_code(*role)).execute(&mut *tx).await?;
            }
            tx.commit().await?;
            id
        }))
    }

    /// Store a room's settings as given (not its sequence number).
    pub async fn update_room(&self, r: &Room) -> Result<()> {
        let sql = "UPDATE rooms SET name = $1, description = $2, category_id = $3, kind = $4, privacy = $5, \
                   disabled = $6, addin_url = $7, invitations = $8 WHERE id = $9";
        on_pool!(self, write, p => sqlx::query(sql)
            .bind(&r.name).bind(&r.description).bind(r.category).bind(kind_code(r.kind))
            .bind(privacy_code(r.privacy)).bind(r.disabled).bind(&r.addin_url).bind(r.invitations).bind(r.id)
            .execute(p).await.map_err(conflict_as("room"))?.rows_affected());
        Ok(())
    }

    /// Delete a room, its roles and its history.
    pub async fn delete_room(&self, id: i64) -> Result<()> {
        on_pool!(self, write, p => {
            let mut tx = p.begin().await?;
            // The room's row first: it waits for (and then turns away) any commit of a
            // chat server that holds the row's lock, so no message is stored after this.
            for sql in ["DELETE FROM rooms WHERE id = $1", "DELETE FROM messages WHERE room_id = $1",
                        "DELETE FROM room_roles WHERE room_id = $1"] {
                sqlx::query(sql).bind(id).execute(&mut *tx).await?;
            }
            tx.commit().await?;
        });
        Ok(())
    }

    /// Grant or revoke one role.
    pub async fn set_role(&self, room: i64, user: i64, role: RoleName, grant: bool) -> Result<()> {
        let sql = if grant {
            "INSERT INTO room_roles (room_id, user_id, role) VALUES ($1, $2, $3) ON CONFLICT DO NOTHING"
        } else {
            "DELETE FROM room_roles WHERE room_id = $1 AND user_id = $2 AND role = $3"
        };
        on_pool!(self, write, p => sqlx::query(sql).bind(room).bind(user).bind(role_code(role)).execute(p).await?.rows_affected());
        Ok(())
    }

    /// Create rooms in bulk; returns name → id. Existing names keep their ids.
    pub async fn create_rooms_bulk(&self, rooms: &[NewRoom]) -> Result<HashMap<String, i64>> {
        let mut out = HashMap::with_capacity(rooms.len());
        for chunk in rooms.chunks(CHUNK) {
            let rows: Vec<(i64, String)> = on_pool!(self, write, p => {
                let mut qb = QueryBuilder::new("INSERT INTO rooms (name, description, category_id, kind, privacy) ");
                qb.push_values(chunk, |mut b, r| {
                    b.push_bind(r.name.as_str()).push_bind(r.description.as_str()).push_bind(r.category)
                        .push_bind(kind_code(r.kind)).push_bind(privacy_code(r.privacy));
                });
                qb.push(" ON CONFLICT (name) DO UPDATE SET name = excluded.name RETURNING id, name");
                qb.build_query_as().fetch_all(p).await?
            });
            out.extend(rows.into_iter().map(|(id, name)| (name, id)));
        }
        Ok(out)
    }

    /// Grant roles in bulk: (room, user, role) triples; existing grants are kept.
    pub async fn grant_roles_bulk(&self, grants: &[(i64, i64, RoleName)]) -> Result<()> {
        on_pool!(self, write, p => {
            let mut tx = p.begin().await?;
            for chunk in grants.chunks(CHUNK) {
                let mut qb = QueryBuilder::new("INSERT INTO room_roles (room_id, user_id, role) ");
                qb.push_values(chunk, |mut b, (room, user, role)| {
                    b.push_bind(*room).push_bind(*user).push_bind(role_code(*role));
                });
                qb.push(" ON CONFLICT DO NOTHING");
                qb.build().execute(&mut *tx).await?;
            }
            tx.commit().await?;
        });
        Ok(())
    }

    /// Counts of users, rooms and role grants (for provisioning reports).
    pub async fn directory_counts(&self) -> Result<(i64, i64, i64)> {
        let q = |t: &'static str| format!("SELECT COUNT(*) FROM {t}");
        let users: i64 =
            on_pool!(self, read, p => sqlx::query_scalar(&q("users")).fetch_one(p).await?);
        let rooms: i64 =
            on_pool!(self, read, p => sqlx::query_scalar(&q("rooms")).fetch_one(p).await?);
        let roles: i64 =
            on_pool!(self, read, p => sqlx::query_scalar(&q("room_roles")).fetch_one(p).await?);
        Ok((users, rooms, roles))
    }
}
