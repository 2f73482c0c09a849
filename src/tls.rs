//! Which certificate authorities lifeboat trusts when it is the TLS client, and how a
//! refused certificate is put into words.
//!
//! Owns:
//! - [`ExtraRoots`], the authorities a podmin adds in a PEM bundle
//!   (`federation.extra_ca_file` for other pods, `mail.smtp_ca_file` for the SMTP
//!   server), read and checked by [`ExtraRoots::read`] — at configuration time, so a
//!   bad bundle is refused at start with the other configuration problems.
//! - The trust each client gets from them: [`ExtraRoots::http_roots`] for the outbound
//!   HTTP client (the Mozilla roots compiled into lifeboat, which is what ureq trusts by
//!   default, plus the extra ones) and [`ExtraRoots::smtp_connector`] for mail (the
//!   system's roots through the platform verifier, which is what mail-send trusts by
//!   default, plus the extra ones). The extra authorities are only ever added:
//!   verification is never relaxed.
//! - [`certificate_problem`], plain words for the certificate failures a podmin meets
//!   (an unknown authority, another host's name, an expired certificate).
//!
//! Does not own: the connections themselves ([`crate::http_client`], [`crate::mail`]),
//! nor TLS on lifeboat's own listening side, which a reverse proxy terminates (README,
//! "Running it for real").

use std::fmt;
use std::io::Read;
use std::path::{Path, PathBuf};
use std::sync::Arc;

use rustls::{CertificateError, RootCertStore};
use rustls_pki_types::pem::{PemObject, SectionKind, SliceIter};
use rustls_pki_types::CertificateDer;

/// The largest CA bundle read (the whole Mozilla list is about 250 KiB as PEM).
const MAX_BUNDLE_BYTES: u64 = 4 * 1024 * 1024;

/// Certificate authorities trusted in addition to the default roots; empty when no
/// bundle is configured. `Debug` shows where they came from and how many there are.
#[derive(Clone, Default)]
pub struct ExtraRoots {
    source: Option<PathBuf>,
    certs: Vec<CertificateDer<'static>>,
}

impl fmt::Debug for ExtraRoots {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("ExtraRoots")
            .field("source", &self.source)
            .field("certificates", &self.certs.len())
            .finish()
    }
}

impl ExtraRoots {
    /// No extra authorities: the default roots only.
    pub fn none() -> ExtraRoots {
        ExtraRoots::default()
    }

    /// The bundle at `path`, when one is configured.
    pub fn from_option(path: Option<&Path>) -> std::result::Result<ExtraRoots, String> {
        path.map_or(Ok(ExtraRoots::none()), ExtraRoots::read)
    }

    /// Reads a PEM bundle: one or more `CERTIFICATE` sections, each usable as a trust
    /// anchor. Other sections (a private key pasted by mistake, say) are refused
    /// rather than skipped, so that a wrong file is noticed.
    pub fn read(path: &Path) -> std::result::Result<ExtraRoots, String> {
        let mut text = Vec::new();
        std::fs::File::open(path)
            .and_then(|file| file.take(MAX_BUNDLE_BYTES + 1).read_to_end(&mut text))
            .map_err(|e| format!("cannot read {}: {e}", path.display()))?;
        if text.len() as u64 > MAX_BUNDLE_BYTES {
            return Err(format!(
                "{} is larger than {} MiB; it should hold a few PEM certificates",
                path.display(),
                MAX_BUNDLE_BYTES >> 20
            ));
        }
        let mut certs = Vec::new();
        for (n, section) in SliceIter::<Section>::new(&text).enumerate() {
            let not_pem = |e: &dyn fmt::Display| format!("{}: not a PEM certificate bundle: {e}", path.display());
            match section.map_err(|e| not_pem(&e))? {
                Section::Certificate(der) => {
                    let cert = CertificateDer::from(der);
                    // The same check rustls makes when it builds a root store.
                    RootCertStore::empty().add(cert.clone()).map_err(|e| {
                        format!(
                            "{}: certificate {} cannot be a certificate authority: {e}",
                            path.display(),
                            n + 1
                        )
                    })?;
                    certs.push(cert);
                }
                Section::Other(kind) => {
                    return Err(format!(
                        "{}: holds a {kind} section; only CERTIFICATE sections belong in a CA bundle",
                        path.display()
                    ))
                }
            }
        }
        if certs.is_empty() {
            return Err(format!(
                "{}: no PEM certificate in it (expected -----BEGIN CERTIFICATE-----)",
                path.display()
            ));
        }
        Ok(ExtraRoots {
            source: Some(path.to_path_buf()),
            certs,
        })
    }

    /// Whether there are no extra authorities.
    pub fn is_empty(&self) -> bool {
        self.certs.is_empty()
    }

    /// How many extra authorities there are.
    pub fn len(&self) -> usize {
        self.certs.len()
    }

    /// The roots for the outbound HTTP client. Without extra authorities this is
    /// ureq's own default (the Mozilla roots of `webpki-roots`); with them, the same
    /// Mozilla list (from `webpki-root-certs`, which carries it as certificates) plus
    /// the extra ones.
    pub fn http_roots(&self) -> ureq::tls::RootCerts {
        if self.certs.is_empty() {
            return ureq::tls::RootCerts::WebPki;
        }
        webpki_root_certs::TLS_SERVER_ROOT_CERTS
            .iter()
            .chain(&self.certs)
            .map(|der| ureq::tls::Certificate::from_der(der.as_ref()).to_owned())
            .collect::<Vec<_>>()
            .into()
    }

    /// A TLS connector for mail: the system's roots, verified as mail-send's own
    /// default does (the platform verifier), plus the extra authorities.
    pub fn smtp_connector(&self) -> std::result::Result<tokio_rustls::TlsConnector, String> {
        let provider = Arc::new(rustls::crypto::ring::default_provider());
        let verifier =
            rustls_platform_verifier::Verifier::new_with_extra_roots(self.certs.iter().cloned(), provider.clone())
                .map_err(|e| format!("cannot load the certificate authorities: {e}"))?;
        let config = rustls::ClientConfig::builder_with_provider(provider)
            .with_safe_default_protocol_versions()
            .map_err(|e| format!("cannot set up TLS: {e}"))?
            // Not dangerous: the platform verifier verifies fully; this is how rustls
            // takes a verifier of another crate.
            .dangerous()
            .with_custom_certificate_verifier(Arc::new(verifier))
            .with_no_client_auth();
        Ok(tokio_rustls::TlsConnector::from(Arc::new(config)))
    }

    /// " and N more from FILE", for start-up lines saying what is trusted.
    pub fn describe(&self) -> String {
        match &self.source {
            Some(path) if !self.certs.is_empty() => {
                format!(" and {} more from {}", self.certs.len(), path.display())
            }
            _ => String::new(),
        }
    }
}

/// A PEM section: a certificate, or the label of anything else.
enum Section {
    Certificate(Vec<u8>),
    Other(&'static str),
}

impl PemObject for Section {
    fn from_pem(kind: SectionKind, der: Vec<u8>) -> Option<Self> {
        Some(match kind {
            SectionKind::Certificate => Section::Certificate(der),
            SectionKind::PrivateKey | SectionKind::RsaPrivateKey | SectionKind::EcPrivateKey => {
                Section::Other("private key")
            }
            SectionKind::PublicKey => Section::Other("PUBLIC KEY"),
            SectionKind::Crl => Section::Other("X509 CRL"),
            SectionKind::Csr => Section::Other("CERTIFICATE REQUEST"),
            _ => Section::Other("non-certificate"),
        })
    }
}

/// Plain words for a refused certificate, or `None` when `error` is not about the
/// peer's certificate or is one rustls already words well.
pub fn certificate_problem(error: &rustls::Error) -> Option<&'static str> {
    let rustls::Error::InvalidCertificate(problem) = error else {
        return None;
    };
    Some(match problem {
        CertificateError::UnknownIssuer => "its certificate is not from a certificate authority this pod trusts",
        CertificateError::NotValidForName | CertificateError::NotValidForNameContext { .. } => {
            "its certificate is for another host name"
        }
        CertificateError::Expired | CertificateError::ExpiredContext { .. } => "its certificate has expired",
        CertificateError::NotValidYet | CertificateError::NotValidYetContext { .. } => {
            "its certificate is not valid yet"
        }
        CertificateError::Revoked => "its certificate is revoked",
        _ => return None,
    })
}

/// `error` as a podmin reads it: the plain words first when there are some, then what
/// rustls said.
pub fn describe_error(error: &rustls::Error) -> String {
    match certificate_problem(error) {
        Some(words) => format!("{words} ({error})"),
        None => error.to_string(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn bundle(text: &str) -> (tempfile::TempDir, PathBuf) {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("ca.pem");
        std::fs::write(&path, text).unwrap();
        (dir, path)
    }

    fn pem(label: &str, der: &[u8]) -> String {
        use base64::Engine as _;
        let b64 = base64::engine::general_purpose::STANDARD.encode(der);
        let lines: Vec<&str> = b64
            .as_bytes()
            .chunks(64)
            .map(|c| std::str::from_utf8(c).unwrap())
            .collect();
        format!("-----BEGIN {label}-----\n{}\n-----END {label}-----\n", lines.join("\n"))
    }

    #[test]
    fn a_bundle_of_real_authorities_is_read() {
        let roots = &webpki_root_certs::TLS_SERVER_ROOT_CERTS[..2];
        let text = format!(
            "# two roots\n{}\n{}",
            pem("CERTIFICATE", &roots[0]),
            pem("CERTIFICATE", &roots[1])
        );
        let (_dir, path) = bundle(&text);
        let extra = ExtraRoots::read(&path).unwrap();
        assert_eq!(extra.len(), 2);
        assert_eq!(extra.certs[0].as_ref(), roots[0].as_ref());
        assert!(extra.describe().contains("2 more from"));
        assert!(!format!("{extra:?}").contains("der"), "Debug shows counts, not bytes");
        match extra.http_roots() {
            ureq::tls::RootCerts::Specific(all) => {
                assert_eq!(all.len(), webpki_root_certs::TLS_SERVER_ROOT_CERTS.len() + 2)
            }
            other => panic!("expected the Mozilla roots and the extra ones, got {other:?}"),
        }
        extra.smtp_connector().unwrap();
        assert!(matches!(ExtraRoots::none().http_roots(), ureq::tls::RootCerts::WebPki));
    }

    #[test]
    fn bad_bundles_are_refused_with_the_reason() {
        let root = &webpki_root_certs::TLS_SERVER_ROOT_CERTS[0];
        let cases = [
            ("", "no PEM certificate"),
            ("just some text\n", "no PEM certificate"),
            (
                "-----BEGIN CERTIFICATE-----\n!!!!\n-----END CERTIFICATE-----\n",
                "not a PEM certificate bundle",
            ),
            ("-----BEGIN CERTIFICATE-----\nMIIB\n", "not a PEM certificate bundle"),
            (
                &*pem("CERTIFICATE", b"not DER at all"),
                "certificate 1 cannot be a certificate authority",
            ),
            (
                &*format!("{}{}", pem("CERTIFICATE", root), pem("PRIVATE KEY", b"secret")),
                "only CERTIFICATE sections",
            ),
        ];
        for (text, expected) in cases {
            let (_dir, path) = bundle(text);
            let e = ExtraRoots::read(&path).unwrap_err();
            assert!(e.contains(expected), "{text:?}: {e}");
            assert!(!e.contains("secret"));
        }
        let e = ExtraRoots::read(Path::new("/nonexistent/ca.pem")).unwrap_err();
        assert!(e.contains("cannot read /nonexistent/ca.pem"), "{e}");
        let (_dir, path) = bundle(&"x".repeat(MAX_BUNDLE_BYTES as usize + 1));
        assert!(ExtraRoots::read(&path).unwrap_err().contains("larger than"));
    }

    #[test]
    fn certificate_failures_are_put_into_words() {
        let unknown = rustls::Error::InvalidCertificate(CertificateError::UnknownIssuer);
        let text = describe_error(&unknown);
        assert!(
            text.starts_with("its certificate is not from a certificate authority this pod trusts ("),
            "{text}"
        );
        assert!(text.contains("UnknownIssuer"), "{text}");
        let name = rustls::Error::InvalidCertificate(CertificateError::NotValidForName);
        assert!(describe_error(&name).contains("another host name"));
        let other = rustls::Error::DecryptError;
        assert_eq!(describe_error(&other), other.to_string());
    }
}
