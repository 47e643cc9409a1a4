//! Making certificates with rcgen: a certificate authority and the certificates it signs
//! (`chatcap tls issue`: one for every process of a pool, each good for serving and for
//! dialling, as mutual TLS on the links needs), and the self-signed certificate of a single
//! box (`tls.self_signed`).

use std::path::{Path, PathBuf};

use rcgen::{
    BasicConstraints, CertificateParams, DnType, ExtendedKeyUsagePurpose, IsCa, Issuer, KeyPair,
    KeyUsagePurpose,
};
use time::{Duration, OffsetDateTime};

use super::TlsError;

/// When a certificate is valid.
#[derive(Debug, Clone, Copy)]
pub struct Validity {
    /// From.
    pub not_before: OffsetDateTime,
    /// Until.
    pub not_after: OffsetDateTime,
}

impl Validity {
    /// From an hour ago (clocks differ a little) for `days` days.
    pub fn days(days: u32) -> Validity {
        let now = OffsetDateTime::now_utc();
        Validity {
            not_before: now - Duration::hours(1),
            not_after: now + Duration::days(i64::from(days)),
        }
    }

    /// Ended `ago` before now (tests of refused certificates).
    pub fn expired(ago: std::time::Duration) -> Validity {
        let ago = Duration::seconds(i64::try_from(ago.as_secs()).unwrap_or(i64::MAX / 2));
        let now = OffsetDateTime::now_utc();
        Validity {
            not_before: now - ago - Duration::days(30),
            not_after: now - ago,
        }
    }
}

/// A certificate and its private key, PEM.
#[derive(Debug, Clone)]
pub struct Issued {
    /// The certificate.
    pub cert_pem: String,
    /// Its private key (PKCS#8).
    pub key_pem: String,
}

impl Issued {
    /// Write `<dir>/<stem>.pem` and `<dir>/<stem>-key.pem` (the key readable by its owner
    /// only; neither file may exist already); the paths written.
    pub fn write(&self, dir: &Path, stem: &str) -> Result<Files, TlsError> {
        let files = Files {
            cert: dir.join(format!("{stem}.pem")),
            key: dir.join(format!("{stem}-key.pem")),
        };
        write_file(&files.cert, &self.cert_pem, 0o644)?;
        write_file(&files.key, &self.key_pem, 0o600)?;
        Ok(files)
    }
}

/// Where a certificate and its key were written.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Files {
    /// The certificate, PEM.
    pub cert: PathBuf,
    /// Its key, PEM.
    pub key: PathBuf,
}

/// A certificate authority held in memory.
pub struct Authority {
    issuer: Issuer<'static, KeyPair>,
    issued: Issued,
}

impl Authority {
    /// A new authority called `name`.
    pub fn new(name: &str, validity: Validity) -> Result<Authority, TlsError> {
        let mut params = CertificateParams::new(Vec::<String>::new())?;
        params.distinguished_name.push(DnType::CommonName, name);
        params.is_ca = IsCa::Ca(BasicConstraints::Unconstrained);
        params.key_usages = vec![
            KeyUsagePurpose::KeyCertSign,
            KeyUsagePurpose::CrlSign,
            KeyUsagePurpose::DigitalSignature,
        ];
        params.not_before = validity.not_before;
        params.not_after = validity.not_after;
        let key = KeyPair::generate()?;
        let cert = params.self_signed(&key)?;
        let issued = Issued {
            cert_pem: cert.pem(),
            key_pem: key.serialize_pem(),
        };
        Ok(Authority {
            issuer: Issuer::new(params, key),
            issued,
        })
    }

    /// The authority's own certificate and key.
    pub fn own(&self) -> &Issued {
        &self.issued
    }

    /// A certificate for `names` (DNS names or IP addresses; the first is also its common
    /// name), good for serving and for dialling.
    pub fn issue(&self, names: &[String], validity: Validity) -> Result<Issued, TlsError> {
        let params = leaf_params(names, validity)?;
        let key = KeyPair::generate()?;
        let cert = params.signed_by(&key, &self.issuer)?;
        Ok(Issued {
            cert_pem: cert.pem(),
            key_pem: key.serialize_pem(),
        })
    }
}

fn leaf_params(names: &[String], validity: Validity) -> Result<CertificateParams, TlsError> {
    let mut params = CertificateParams::new(names.to_vec())?;
    if let Some(first) = names.first() {
        params.distinguished_name.push(DnType::CommonName, first);
    }
    params.extended_key_usages = vec![
        ExtendedKeyUsagePurpose::ServerAuth,
        ExtendedKeyUsagePurpose::ClientAuth,
    ];
    params.key_usages = vec![KeyUsagePurpose::DigitalSignature];
    params.not_before = validity.not_before;
    params.not_after = validity.not_after;
    Ok(params)
}

/// A self-signed certificate for `names`.
pub fn self_signed(names: &[String], validity: Validity) -> Result<Issued, TlsError> {
    let params = leaf_params(names, validity)?;
    let key = KeyPair::generate()?;
    let cert = params.self_signed(&key)?;
    Ok(Issued {
        cert_pem: cert.pem(),
        key_pem: key.serialize_pem(),
    })
}

/// How long a single box's self-signed certificate lasts.
pub const SELF_SIGNED_DAYS: u32 = 365;

/// A kept self-signed certificate is made anew this long before it expires.
const RENEW_BEFORE: Duration = Duration::days(7);

/// How long to wait for another process making the self-signed certificate.
const MAKING_TIMEOUT: std::time::Duration = std::time::Duration::from_secs(20);

/// The single box's self-signed certificate in `dir` (`self-signed.pem`,
/// `self-signed-key.pem`, and `self-signed.names`: its expiry and names), valid for `names`
/// plus `localhost` and `127.0.0.1`. Made on first start and kept, so that clients trusting
/// the file keep trusting the server after a restart; made anew (with a warning) when it
/// expires within 7 days or lacks one of the names. Processes sharing `dir` take turns
/// (`self-signed.lock`), and the files appear by renaming, key first: whoever sees the
/// certificate sees its key.
pub fn self_signed_for(dir: &Path, names: &[String]) -> Result<Files, TlsError> {
    let files = Files {
        cert: dir.join("self-signed.pem"),
        key: dir.join("self-signed-key.pem"),
    };
    let mut all: Vec<String> = names.to_vec();
    for name in ["localhost", "127.0.0.1"] {
        if !all.iter().any(|n| n == name) {
            all.push(name.to_string());
        }
    }
    std::fs::create_dir_all(dir).map_err(|e| TlsError::file(dir, e))?;
    let meta = dir.join("self-signed.names");
    let lock = dir.join("self-signed.lock");
    let deadline = std::time::Instant::now() + MAKING_TIMEOUT;
    loop {
        match kept(&files, &meta, &all) {
            Kept::Good => {
                tracing::info!(cert = %files.cert.display(), "client port: the self-signed certificate made earlier");
                return Ok(files);
            }
            Kept::Stale(why) if !lock.exists() => {
                tracing::warn!(cert = %files.cert.display(), "client port: making the self-signed certificate anew: {why}");
            }
            _ => {}
        }
        match std::fs::OpenOptions::new()
            .write(true)
            .create_new(true)
            .open(&lock)
        {
            Ok(_) => {
                let made = make_self_signed(dir, &files, &meta, &all);
                let _ = std::fs::remove_file(&lock);
                made?;
                tracing::info!(cert = %files.cert.display(), names = ?all, "client port: made a self-signed certificate; clients trust this file");
                return Ok(files);
            }
            Err(e) if e.kind() == std::io::ErrorKind::AlreadyExists => {
                if std::time::Instant::now() >= deadline {
                    return Err(TlsError::file(
                        &lock,
                        "another process has been making the self-signed certificate for 20 s; delete this file if none is starting",
                    ));
                }
                std::thread::sleep(std::time::Duration::from_millis(100));
            }
            Err(e) => return Err(TlsError::file(&lock, e)),
        }
    }
}

/// What a kept self-signed certificate is worth.
enum Kept {
    Good,
    Missing,
    Stale(String),
}

fn kept(files: &Files, meta: &Path, names: &[String]) -> Kept {
    if !files.cert.exists() {
        return Kept::Missing;
    }
    let Ok(text) = std::fs::read_to_string(meta) else {
        return Kept::Stale(format!("{} is missing", meta.display()));
    };
    let mut lines = text.lines();
    let not_after = lines.next().and_then(|l| l.trim().parse::<i64>().ok());
    let kept_names: Vec<&str> = lines.map(str::trim).collect();
    let now = OffsetDateTime::now_utc();
    match not_after {
        Some(t) if t > (now + RENEW_BEFORE).unix_timestamp() => {}
        Some(_) => return Kept::Stale("it expires within 7 days".into()),
        None => return Kept::Stale(format!("{} does not parse", meta.display())),
    }
    match names.iter().find(|n| !kept_names.contains(&n.as_str())) {
        Some(n) => Kept::Stale(format!("it does not name {n}")),
        None => Kept::Good,
    }
}

fn make_self_signed(
    dir: &Path,
    files: &Files,
    meta: &Path,
    names: &[String],
) -> Result<(), TlsError> {
    let validity = Validity::days(SELF_SIGNED_DAYS);
    let stem = format!("self-signed.new-{}", std::process::id());
    let fresh = self_signed(names, validity)?;
    let _ = std::fs::remove_file(dir.join(format!("{stem}.pem")));
    let _ = std::fs::remove_file(dir.join(format!("{stem}-key.pem")));
    let made = fresh.write(dir, &stem)?;
    let rename =
        |from: &Path, to: &Path| std::fs::rename(from, to).map_err(|e| TlsError::file(to, e));
    rename(&made.key, &files.key)?;
    rename(&made.cert, &files.cert)?;
    let mut text = format!("{}\n", validity.not_after.unix_timestamp());
    for n in names {
        text += &format!("{n}\n");
    }
    std::fs::write(meta, text).map_err(|e| TlsError::file(meta, e))
}

fn write_file(path: &Path, text: &str, mode: u32) -> Result<(), TlsError> {
    use std::io::Write;
    use std::os::unix::fs::OpenOptionsExt;
    let mut file = std::fs::OpenOptions::new()
        .write(true)
        .create_new(true)
        .mode(mode)
        .open(path)
        .map_err(|e| match e.kind() {
            std::io::ErrorKind::AlreadyExists => {
                TlsError::file(path, "exists already; not overwritten")
            }
            _ => TlsError::file(path, e),
        })?;
    file.write_all(text.as_bytes())
        .map_err(|e| TlsError::file(path, e))
}
