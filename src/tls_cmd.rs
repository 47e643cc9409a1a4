//! TLS on the command line: `serve`'s TLS flags ([`TlsArgs`]) and `chatcap tls issue`,
//! which makes a certificate authority and the certificates it signs for a pool's links
//! (docs/TLS.md).

use std::path::{Path, PathBuf};

use anyhow::Context;
use chatcap_server::config::TlsConfig;
use chatcap_server::tls::issue::{Authority, Validity};
use clap::{Args, Subcommand};

use crate::usage::UsageError;

/// `serve`'s TLS flags; each overrides the settings file's `[tls]`.
#[derive(Debug, Default, Args)]
pub struct TlsArgs {
    /// Client port over TLS (wss://, https://): the certificate chain, PEM (with --tls-key).
    #[arg(long, value_name = "PEM", requires = "tls_key")]
    pub tls_cert: Option<PathBuf>,
    /// The private key of --tls-cert, PEM.
    #[arg(long, value_name = "PEM", requires = "tls_cert")]
    pub tls_key: Option<PathBuf>,
    /// Client port over TLS with a self-signed certificate made for this box on first start
    /// and kept in <data-dir>/tls/self-signed.pem (give that file to clients to trust).
    #[arg(long, conflicts_with = "tls_cert")]
    pub tls_self_signed: bool,
    /// Mutual TLS on the links (front end ↔ chat server, the pool port): the certificate
    /// authority every party's certificate must be signed by, PEM (with --link-cert and
    /// --link-key; `chatcap tls issue` makes all three).
    #[arg(long, value_name = "PEM", requires_all = ["link_cert", "link_key"])]
    pub link_ca: Option<PathBuf>,
    /// This process's link certificate, PEM.
    #[arg(long, value_name = "PEM", requires = "link_ca")]
    pub link_cert: Option<PathBuf>,
    /// The private key of --link-cert, PEM.
    #[arg(long, value_name = "PEM", requires = "link_ca")]
    pub link_key: Option<PathBuf>,
}

impl TlsArgs {
    /// Apply the flags given to `tls`.
    pub fn apply(&self, tls: &mut TlsConfig) {
        if let (Some(cert), Some(key)) = (&self.tls_cert, &self.tls_key) {
            tls.cert = Some(cert.clone());
            tls.key = Some(key.clone());
            tls.self_signed = false;
        }
        if self.tls_self_signed {
            tls.self_signed = true;
            tls.cert = None;
            tls.key = None;
        }
        if let Some(ca) = &self.link_ca {
            tls.link_ca = Some(ca.clone());
            tls.link_cert = self.link_cert.clone();
            tls.link_key = self.link_key.clone();
        }
    }
}

/// `tls` subcommands.
#[derive(Debug, Subcommand)]
pub enum TlsCommand {
    /// Make a certificate authority (ca.pem, ca-key.pem) and certificates it signs, each
    /// good for serving and for dialling: give every process of a pool the CA and one of
    /// them (serve --link-ca ca.pem --link-cert NAME.pem --link-key NAME-key.pem).
    Issue(IssueArgs),
}

/// Options of `tls issue`.
#[derive(Debug, Args)]
pub struct IssueArgs {
    /// The folder to write into (created; must not hold a ca.pem already).
    #[arg(long, value_name = "DIR")]
    pub out: PathBuf,
    /// A certificate to make: STEM=NAME[,NAME…] writes STEM.pem and STEM-key.pem, valid for
    /// STEM and the DNS names and IP addresses given (a dialler checks the address it
    /// dialled; the pool port checks that a server's or `admin`'s certificate names it: use
    /// the topology names as stems). Repeatable; default node=127.0.0.1,localhost.
    #[arg(long = "cert", value_name = "STEM=NAMES")]
    pub certs: Vec<String>,
    /// Days the certificates are valid.
    #[arg(long, default_value_t = 825)]
    pub days: u32,
}

/// `STEM=NAME,NAME…` → (stem, names).
fn parse_cert(spec: &str) -> Result<(String, Vec<String>), UsageError> {
    let bad = || {
        UsageError(format!(
            "--cert {spec:?}: expected STEM=NAME[,NAME…], e.g. chat1=10.0.0.11,chat1.corp"
        ))
    };
    let (stem, names) = spec.split_once('=').ok_or_else(bad)?;
    let names: Vec<String> = names
        .split(',')
        .map(str::trim)
        .filter(|n| !n.is_empty())
        .map(String::from)
        .collect();
    let stem_ok = !stem.is_empty()
        && stem
            .chars()
            .all(|c| c.is_ascii_alphanumeric() || c == '-' || c == '_' || c == '.');
    if !stem_ok || names.is_empty() {
        return Err(bad());
    }
    if stem == "ca" || stem == "ca-key" || stem.ends_with("-key") {
        return Err(UsageError(format!(
            "--cert {spec:?}: the stem {stem:?} would collide with the CA's or a key's file name"
        )));
    }
    // The stem is also a name of the certificate: the pool port binds a server's name
    // (and `admin`) to it.
    let mut all = vec![stem.to_string()];
    all.extend(names.into_iter().filter(|n| n != stem));
    Ok((stem.to_string(), all))
}

/// Run a `tls` subcommand.
pub fn run(cmd: TlsCommand) -> anyhow::Result<()> {
    match cmd {
        TlsCommand::Issue(args) => issue(&args),
    }
}

fn issue(args: &IssueArgs) -> anyhow::Result<()> {
    let specs = if args.certs.is_empty() {
        vec!["node=127.0.0.1,localhost".to_string()]
    } else {
        args.certs.clone()
    };
    let certs = specs
        .iter()
        .map(|s| parse_cert(s))
        .collect::<Result<Vec<_>, _>>()?;
    let mut stems: Vec<&str> = certs.iter().map(|(s, _)| s.as_str()).collect();
    stems.sort_unstable();
    if let Some(w) = stems.windows(2).find(|w| w[0] == w[1]) {
        return Err(UsageError(format!("--cert {}: the stem is given twice", w[0])).into());
    }
    if args.days == 0 {
        return Err(UsageError("--days must be at least 1".into()).into());
    }
    if args.out.join("ca.pem").exists() {
        return Err(UsageError(format!(
            "{} already holds a ca.pem: choose another folder (a new CA would not sign for the old one)",
            args.out.display()
        ))
        .into());
    }
    std::fs::create_dir_all(&args.out)
        .with_context(|| format!("creating {}", args.out.display()))?;
    let validity = Validity::days(args.days);
    // A name of its own: a certificate from another `tls issue` run is then refused as
    // signed by an unknown authority, not as a bad signature from this one.
    let tag: u32 = rand::random();
    let ca = Authority::new(&format!("chatcap link CA {tag:08x}"), validity)?;
    let written = ca.own().write(&args.out, "ca")?;
    println!("CA           {}", shown(&written.cert));
    for (stem, names) in certs {
        let files = ca.issue(&names, validity)?.write(&args.out, &stem)?;
        println!(
            "certificate  {}  (key {})  for {}",
            shown(&files.cert),
            shown(&files.key),
            names.join(", ")
        );
    }
    Ok(())
}

fn shown(p: &Path) -> String {
    p.display().to_string()
}
