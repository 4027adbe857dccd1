//! Reading PEM certificate chains, private keys and CA bundles from files, with errors that
//! name the file and say what is wrong.
//!
//! Called when a snapshot is built (start, reload, `torii check`), never per connection. Files
//! are read whole with a size cap; nothing here is kept open.

use std::path::Path;
use std::sync::Arc;

use rustls::pki_types::pem::PemObject;
use rustls::pki_types::{CertificateDer, PrivateKeyDer};
use rustls::RootCertStore;

use crate::config::io_reason;

/// Largest PEM file read (1 MiB): a chain or a CA bundle is far smaller.
const MAX_PEM_BYTES: u64 = 1 << 20;

fn read(path: &Path) -> Result<Vec<u8>, String> {
    use std::io::Read;
    let shown = path.display();
    let file =
        std::fs::File::open(path).map_err(|e| format!("cannot read {shown}: {}", io_reason(&e)))?;
    let mut bytes = Vec::new();
    file.take(MAX_PEM_BYTES + 1)
        .read_to_end(&mut bytes)
        .map_err(|e| format!("cannot read {shown}: {}", io_reason(&e)))?;
    if bytes.len() as u64 > MAX_PEM_BYTES {
        return Err(format!("{shown} is larger than {MAX_PEM_BYTES} bytes"));
    }
    Ok(bytes)
}

/// The certificates of a PEM file, in order (a chain: leaf first). At least one.
pub fn load_certs(path: &Path) -> Result<Vec<CertificateDer<'static>>, String> {
    let bytes = read(path)?;
    let shown = path.display();
    let certs = CertificateDer::pem_slice_iter(&bytes)
        .collect::<Result<Vec<_>, _>>()
        .map_err(|e| format!("{shown}: invalid PEM: {e}"))?;
    if certs.is_empty() {
        return Err(format!("{shown}: no CERTIFICATE block found"));
    }
    Ok(certs)
}

/// The private key of a PEM file (PKCS#8, PKCS#1 RSA or SEC1 EC; the first one found).
pub fn load_key(path: &Path) -> Result<PrivateKeyDer<'static>, String> {
    let bytes = read(path)?;
    PrivateKeyDer::from_pem_slice(&bytes)
        .map_err(|e| format!("{}: no usable private key: {e}", path.display()))
}

/// A root store holding every certificate of a PEM CA bundle.
pub fn load_roots(path: &Path) -> Result<Arc<RootCertStore>, String> {
    let mut roots = RootCertStore::empty();
    for cert in load_certs(path)? {
        roots
            .add(cert)
            .map_err(|e| format!("{}: unusable CA certificate: {e}", path.display()))?;
    }
    Ok(Arc::new(roots))
}

/// The built-in Mozilla root store (webpki-roots): the same on every machine, no file needed.
pub fn builtin_roots() -> Arc<RootCertStore> {
    Arc::new(RootCertStore {
        roots: webpki_roots::TLS_SERVER_ROOTS.to_vec(),
    })
}
