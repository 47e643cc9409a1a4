//! Reading certificates, private keys and certificate authorities from PEM files; every
//! error names the file.

use std::path::Path;

use rustls::pki_types::pem::PemObject;
use rustls::pki_types::{CertificateDer, PrivateKeyDer};
use rustls::RootCertStore;

use super::TlsError;

/// Every certificate in `path`, in file order (a chain: leaf first).
pub fn certs(path: &Path) -> Result<Vec<CertificateDer<'static>>, TlsError> {
    let certs = CertificateDer::pem_file_iter(path)
        .and_then(|iter| iter.collect::<Result<Vec<_>, _>>())
        .map_err(|e| TlsError::file(path, reading(e)))?;
    if certs.is_empty() {
        return Err(TlsError::file(
            path,
            "no certificate (expected a -----BEGIN CERTIFICATE----- block)",
        ));
    }
    Ok(certs)
}

/// The first private key in `path` (PKCS#8, PKCS#1 or SEC1).
pub fn key(path: &Path) -> Result<PrivateKeyDer<'static>, TlsError> {
    PrivateKeyDer::from_pem_file(path).map_err(|e| match e {
        rustls::pki_types::pem::Error::NoItemsFound => TlsError::file(
            path,
            "no private key (expected a -----BEGIN PRIVATE KEY----- block)",
        ),
        other => TlsError::file(path, reading(other)),
    })
}

/// The certificate authorities in `path`.
pub fn roots(path: &Path) -> Result<RootCertStore, TlsError> {
    let mut store = RootCertStore::empty();
    for cert in certs(path)? {
        store.add(cert).map_err(|e| TlsError::Roots {
            path: path.to_path_buf(),
            message: e.to_string(),
        })?;
    }
    Ok(store)
}

fn reading(e: rustls::pki_types::pem::Error) -> String {
    match e {
        rustls::pki_types::pem::Error::Io(io) => io.to_string(),
        other => format!("not a PEM file: {other}"),
    }
}
