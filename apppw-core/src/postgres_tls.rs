//! TLS for connections to a PostgreSQL store, with what libpq calls `sslmode=verify-full`: the
//! server's certificate must chain to a trusted CA and name the host connected to (a DNS name or
//! an IP address). The one place that builds the connector, so the store, the CLI and the tests
//! all check certificates the same way. Why rustls (with ring) and not the system OpenSSL:
//! docs/POSTGRESQL.md.
//!
//! The connector only verifies. A connection string must also say `sslmode=require`: with the
//! `postgres` crate's default, `prefer`, a server (or anyone in between) that declines TLS gets a
//! plaintext session.
#![forbid(unsafe_code)]

use std::path::Path;
use std::sync::Arc;

use rustls::pki_types::CertificateDer;
use rustls::pki_types::pem::PemObject;
pub use tokio_postgres_rustls::MakeRustlsConnect;

use crate::Error;

/// Whom to trust for the server's certificate.
#[derive(Debug, Clone, Copy)]
pub enum TrustAnchors<'a> {
    /// Only the CA certificates (PEM) in this file: a site's own CA.
    CaFile(&'a Path),
    /// The host's CA store (on Debian /etc/ssl/certs, from `ca-certificates`), as found by
    /// rustls-native-certs. It honours SSL_CERT_FILE and SSL_CERT_DIR, so only a process whose
    /// environment is its own may use it (apppw-ctl clears its environment first).
    System,
}

impl std::fmt::Display for TrustAnchors<'_> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            TrustAnchors::CaFile(path) => write!(f, "the CA file {}", path.display()),
            TrustAnchors::System => f.write_str("the system's CA store"),
        }
    }
}

/// A TLS connector for `tokio_postgres::Config::connect` that trusts `anchors` and checks the host
/// name. TLS 1.2 and 1.3 only, with rustls' safe defaults; the crypto provider (ring) is given
/// here, not installed process-wide, since the PAM module lives in someone else's process.
pub fn connector(anchors: TrustAnchors<'_>) -> Result<MakeRustlsConnect, Error> {
    let failed = |reason: String| Error::TlsTrust {
        anchors: anchors.to_string(),
        reason,
    };
    let certificates = match anchors {
        TrustAnchors::CaFile(path) => read_ca_file(path).map_err(failed)?,
        TrustAnchors::System => {
            let found = rustls_native_certs::load_native_certs();
            if found.certs.is_empty() {
                let errors: Vec<String> = found.errors.iter().map(ToString::to_string).collect();
                return Err(failed(format!(
                    "no certificates found ({})",
                    if errors.is_empty() {
                        "no error reported".to_owned()
                    } else {
                        errors.join("; ")
                    }
                )));
            }
            found.certs
        }
    };
    let mut roots = rustls::RootCertStore::empty();
    match anchors {
        // A site's own CA file is small and deliberate: every certificate in it must be usable.
        TrustAnchors::CaFile(_) => {
            for certificate in certificates {
                roots
                    .add(certificate)
                    .map_err(|e| failed(format!("a certificate in it is not usable: {e}")))?;
            }
        }
        // A distribution's store may hold a few certificates webpki cannot use; skip those.
        TrustAnchors::System => {
            let (added, _) = roots.add_parsable_certificates(certificates);
            if added == 0 {
                return Err(failed("none of its certificates is usable".to_owned()));
            }
        }
    }
    let config = rustls::ClientConfig::builder_with_provider(Arc::new(
        rustls::crypto::ring::default_provider(),
    ))
    .with_safe_default_protocol_versions()
    .map_err(|e| failed(format!("TLS set-up: {e}")))?
    .with_root_certificates(roots)
    .with_no_client_auth();
    Ok(MakeRustlsConnect::new(config))
}

/// The certificates of a PEM file; at least one.
fn read_ca_file(path: &Path) -> Result<Vec<CertificateDer<'static>>, String> {
    let certificates = CertificateDer::pem_file_iter(path)
        .map_err(pem_error)?
        .collect::<Result<Vec<_>, _>>()
        .map_err(pem_error)?;
    if certificates.is_empty() {
        return Err("it holds no PEM certificate (-----BEGIN CERTIFICATE-----)".to_owned());
    }
    Ok(certificates)
}

fn pem_error(e: rustls::pki_types::pem::Error) -> String {
    match e {
        rustls::pki_types::pem::Error::Io(e) => e.to_string(),
        other => format!("it is not a PEM file ({other})"),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn reason(anchors: TrustAnchors<'_>) -> String {
        match connector(anchors) {
            Err(Error::TlsTrust { reason, .. }) => reason,
            Err(other) => panic!("another error: {other}"),
            Ok(_) => panic!("{anchors} was accepted"),
        }
    }

    #[test]
    fn a_missing_ca_file_is_named() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("ca.crt");
        let err = connector(TrustAnchors::CaFile(&path)).err().unwrap();
        let text = err.to_string();
        assert!(text.contains(&path.display().to_string()), "{text}");
        assert!(text.contains("No such file"), "{text}");
    }

    #[test]
    fn a_ca_file_without_certificates_is_refused() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("ca.crt");
        std::fs::write(&path, "not a certificate\n").unwrap();
        assert!(reason(TrustAnchors::CaFile(&path)).contains("no PEM certificate"));
        // A private key alone is no CA either.
        std::fs::write(
            &path,
            "-----BEGIN PRIVATE KEY-----\nMC4CAQAwBQYDK2VwBCIEIA==\n-----END PRIVATE KEY-----\n",
        )
        .unwrap();
        assert!(reason(TrustAnchors::CaFile(&path)).contains("no PEM certificate"));
    }

    #[test]
    fn a_certificate_that_is_not_der_is_refused() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("ca.crt");
        std::fs::write(
            &path,
            "-----BEGIN CERTIFICATE-----\nAAAA\n-----END CERTIFICATE-----\n",
        )
        .unwrap();
        assert!(reason(TrustAnchors::CaFile(&path)).contains("not usable"));
    }
}
