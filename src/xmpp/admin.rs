//! Provisioning third-party XMPP servers through their own administration interfaces —
//! users, rooms and their affiliations, as `chatcap provision` writes them into chatcap's
//! database: ejabberd through the HTTP API of `mod_http_api` (`POST /api/<command>` with a
//! JSON body), Prosody through its admin shell (`prosodyctl shell`, Lua). [`Server`] is
//! either, behind one set of operations.

use std::net::SocketAddr;

use bytes::Bytes;
use chatcap_server::tls::Stream;
use http_body_util::Full;
use hyper::header;
use serde_json::{json, Value};

use super::XmppError;
use crate::runner::http::exchange;

/// An ejabberd's HTTP API, for one XMPP domain and its MUC service.
#[derive(Debug, Clone)]
pub struct Ejabberd {
    /// Where `mod_http_api` listens.
    pub api: SocketAddr,
    /// The XMPP domain (`chatcap.test`).
    pub domain: String,
    /// The MUC service (`conference.chatcap.test`).
    pub service: String,
}

impl Ejabberd {
    /// The API at `api` for `domain`, rooms on `conference.<domain>`.
    pub fn new(api: SocketAddr, domain: &str) -> Ejabberd {
        Ejabberd {
            api,
            domain: domain.to_string(),
            service: format!("conference.{domain}"),
        }
    }

    /// Run `command` with `args`; its JSON answer. A refusal (`{"status": "error"}` or a
    /// status other than 200) is an error with the server's message.
    pub async fn call(&self, command: &str, args: Value) -> Result<Value, XmppError> {
        let failed = |m: String| XmppError::Admin(format!("{command}: {m}"));
        let request = hyper::Request::post(format!("/api/{command}"))
            .header(header::HOST, self.api.to_string())
            .header(header::CONTENT_TYPE, "application/json")
            .header(header::CONNECTION, "close")
            .body(Full::new(Bytes::from(args.to_string())))
            .map_err(|e| failed(e.to_string()))?;
        let tcp = tokio::net::TcpStream::connect(self.api)
            .await
            .map_err(|e| failed(format!("cannot reach {}: {e}", self.api)))?;
        let reply = exchange(Stream::Plain(tcp), request, 1 << 20)
            .await
            .map_err(|e| failed(e.to_string()))?;
        let body: Value = serde_json::from_slice(&reply.body)
            .unwrap_or_else(|_| Value::String(String::from_utf8_lossy(&reply.body).into_owned()));
        if reply.status != 200 || body.get("status").and_then(Value::as_str) == Some("error") {
            return Err(failed(format!("HTTP {}: {body}", reply.status)));
        }
        Ok(body)
    }

    /// Register `user` (local part) with `password`.
    pub async fn register(&self, user: &str, password: &str) -> Result<(), XmppError> {
        let args = json!({"user": user, "host": self.domain, "password": password});
        self.call("register", args).await.map(drop)
    }

    /// Create the persistent, archived room `name`, open or members-only.
    pub async fn create_room(&self, name: &str, members_only: bool) -> Result<(), XmppError> {
        let option = |name: &str, value: bool| json!({"name": name, "value": value.to_string()});
        let args = json!({
            "name": name,
            "service": self.service,
            "host": self.domain,
            "options": [
                option("persistent", true),
                option("mam", true),
                option("members_only", members_only),
            ],
        });
        self.call("create_room_with_opts", args).await.map(drop)
    }

    /// Give `user` (local part) the `affiliation` (`member`, `admin`, `owner`, `none`) in
    /// room `name`.
    pub async fn set_affiliation(
        &self,
        name: &str,
        user: &str,
        affiliation: &str,
    ) -> Result<(), XmppError> {
        let args = json!({
            "name": name,
            "service": self.service,
            "jid": format!("{user}@{}", self.domain),
            "affiliation": affiliation,
        });
        self.call("set_room_affiliation", args).await.map(drop)
    }

    /// A room's bare JID.
    pub fn room_jid(&self, name: &str) -> String {
        format!("{name}@{}", self.service)
    }
}

/// A Prosody server's admin shell (`prosodyctl --config FILE shell`), for one domain and
/// its MUC component.
#[derive(Debug, Clone)]
pub struct Prosody {
    /// The server's configuration file (it names the admin socket).
    pub config: std::path::PathBuf,
    /// The XMPP domain (`chatcap.test`).
    pub domain: String,
    /// The MUC component (`conference.chatcap.test`).
    pub service: String,
}

/// `text` as a Lua string literal.
fn lua(text: &str) -> String {
    let mut out = String::from("\"");
    for c in text.chars() {
        match c {
            '\\' => out.push_str("\\\\"),
            '"' => out.push_str("\\\""),
            '\n' => out.push_str("\\n"),
            c if c.is_control() => out.push_str(&format!("\\u{{{:x}}}", c as u32)),
            c => out.push(c),
        }
    }
    out.push('"');
    out
}

impl Prosody {
    /// The shell of the server configured by `config`, for `domain`, rooms on
    /// `conference.<domain>`.
    pub fn new(config: std::path::PathBuf, domain: &str) -> Prosody {
        Prosody {
            config,
            domain: domain.to_string(),
            service: format!("conference.{domain}"),
        }
    }

    /// Run the Lua `code` in the admin shell; it ends with `return 'ok'` and raises an
    /// error to refuse, whose message comes back in the error.
    pub async fn shell(&self, what: &str, code: &str) -> Result<(), XmppError> {
        let failed = |m: String| XmppError::Admin(format!("{what}: {m}"));
        let out = tokio::process::Command::new("prosodyctl")
            .arg("--config")
            .arg(&self.config)
            .arg("shell")
            .arg(format!("> {code}"))
            .output()
            .await
            .map_err(|e| failed(format!("cannot run prosodyctl: {e}")))?;
        let stdout = String::from_utf8_lossy(&out.stdout);
        if out.status.success() && stdout.contains("Result: ok") {
            return Ok(());
        }
        let stderr = String::from_utf8_lossy(&out.stderr);
        // The error raised goes to stderr; stdout starts with Prosody's banners.
        let said = stderr
            .lines()
            .rfind(|l| !l.trim().is_empty())
            .unwrap_or("no error message");
        Err(failed(format!("{} ({})", said.trim(), out.status)))
    }

    /// Register `user` (local part) with `password`.
    pub async fn register(&self, user: &str, password: &str) -> Result<(), XmppError> {
        let (u, p, d) = (lua(user), lua(password), lua(&self.domain));
        let code = format!(
            "local um = require'core.usermanager'; \
             if um.user_exists({u}, {d}) then error('user ' .. {u} .. ' exists already', 0) end; \
             local ok, err = um.create_user({u}, {p}, {d}); \
             if not ok then error(tostring(err), 0) end; return 'ok'"
        );
        self.shell("register", &code).await
    }

    /// Create the persistent room `name` (archived: the component logs every room),
    /// open or members-only.
    pub async fn create_room(&self, name: &str, members_only: bool) -> Result<(), XmppError> {
        let (jid, service) = (lua(&self.room_jid(name)), lua(&self.service));
        let code = format!(
            "local muc = prosody.hosts[{service}].modules.muc; \
             if muc.get_room_from_jid({jid}) then error('room ' .. {jid} .. ' exists already', 0) end; \
             local room = muc.create_room({jid}); room:set_persistent(true); \
             room:set_members_only({members_only}); room:save(true); return 'ok'"
        );
        self.shell("create_room", &code).await
    }

    /// Give `user` (local part) the `affiliation` in room `name`.
    pub async fn set_affiliation(
        &self,
        name: &str,
        user: &str,
        affiliation: &str,
    ) -> Result<(), XmppError> {
        let (jid, service) = (lua(&self.room_jid(name)), lua(&self.service));
        let (who, what) = (lua(&format!("{user}@{}", self.domain)), lua(affiliation));
        let code = format!(
            "local room = prosody.hosts[{service}].modules.muc.get_room_from_jid({jid}); \
             if not room then error('no room ' .. {jid}, 0) end; \
             local ok, err = room:set_affiliation(true, {who}, {what}); \
             if not ok then error(tostring(err), 0) end; return 'ok'"
        );
        self.shell("set_affiliation", &code).await
    }

    /// A room's bare JID.
    pub fn room_jid(&self, name: &str) -> String {
        format!("{name}@{}", self.service)
    }
}

/// An XMPP server to provision, ejabberd or Prosody.
#[derive(Debug, Clone)]
pub enum Server {
    /// Through its HTTP API.
    Ejabberd(Ejabberd),
    /// Through its admin shell.
    Prosody(Prosody),
}

impl Server {
    /// Register `user` (local part) with `password`.
    pub async fn register(&self, user: &str, password: &str) -> Result<(), XmppError> {
        match self {
            Server::Ejabberd(e) => e.register(user, password).await,
            Server::Prosody(p) => p.register(user, password).await,
        }
    }

    /// Create the persistent, archived room `name`, open or members-only.
    pub async fn create_room(&self, name: &str, members_only: bool) -> Result<(), XmppError> {
        match self {
            Server::Ejabberd(e) => e.create_room(name, members_only).await,
            Server::Prosody(p) => p.create_room(name, members_only).await,
        }
    }

    /// Give `user` the `affiliation` in room `name`.
    pub async fn set_affiliation(
        &self,
        name: &str,
        user: &str,
        affiliation: &str,
    ) -> Result<(), XmppError> {
        match self {
            Server::Ejabberd(e) => e.set_affiliation(name, user, affiliation).await,
            Server::Prosody(p) => p.set_affiliation(name, user, affiliation).await,
        }
    }

    /// A room's bare JID.
    pub fn room_jid(&self, name: &str) -> String {
        match self {
            Server::Ejabberd(e) => e.room_jid(name),
            Server::Prosody(p) => p.room_jid(name),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::lua;

    #[test]
    fn lua_literals_escape_quotes_backslashes_and_controls() {
        assert_eq!(lua("a\"b\\c\nd\u{1}2"), "\"a\\\"b\\\\c\\nd\\u{1}2\"");
        assert_eq!(lua("plain"), "\"plain\"");
    }
}
