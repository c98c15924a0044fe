//! Postgres over TLS as `DATABASE_URL` asks, with libpq's `sslmode` meanings: `disable`,
//! `prefer` and `require` encrypt without checking the server's certificate (`require` refuses
//! a server without TLS), `verify-ca` checks it against `sslrootcert`, `verify-full` also checks
//! that it names the host. tokio-postgres knows only the first three and no `sslrootcert`, so
//! those are taken out of the URL here and enforced by the connector.

use std::path::PathBuf;
use std::sync::Arc;

use rustls::client::WebPkiServerVerifier;
use rustls::client::danger::{HandshakeSignatureValid, ServerCertVerified, ServerCertVerifier};
use rustls::pki_types::pem::PemObject as _;
use rustls::pki_types::{CertificateDer, ServerName, UnixTime};
use rustls::{
    CertificateError, DigitallySignedStruct, Error as TlsError, RootCertStore, SignatureScheme,
};
use tokio_postgres::config::SslMode;
use tokio_postgres_rustls::MakeRustlsConnect;

/// How the connection to Postgres is secured.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum PgSslMode {
    /// Plain.
    Disable,
    /// TLS when the server offers it, unchecked.
    Prefer,
    /// TLS always, unchecked.
    Require,
    /// TLS always, the certificate checked against the root certificates.
    VerifyCa,
    /// TLS always, the certificate checked and naming the host.
    VerifyFull,
}

/// The TLS part of a database URL.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PgTls {
    /// The `sslmode` asked for (libpq's default: `prefer`).
    pub mode: PgSslMode,
    /// `sslrootcert`: the root certificates (PEM) that verify the server's.
    pub root_cert: Option<PathBuf>,
}

impl Default for PgTls {
    fn default() -> Self {
        PgTls {
            mode: PgSslMode::Prefer,
            root_cert: None,
        }
    }
}

/// A database URL's connection settings and its TLS part.
pub fn parse_url(url: &str) -> Result<(tokio_postgres::Config, PgTls), String> {
    let (base, query) = url.split_once('?').unwrap_or((url, ""));
    let mut tls = PgTls::default();
    let mut kept = Vec::new();
    for pair in query.split('&').filter(|pair| !pair.is_empty()) {
        let (key, value) = pair.split_once('=').unwrap_or((pair, ""));
        match key {
            "sslmode" => {
                tls.mode = match value {
                    "disable" => PgSslMode::Disable,
                    "allow" | "prefer" => PgSslMode::Prefer,
                    "require" => PgSslMode::Require,
                    "verify-ca" => PgSslMode::VerifyCa,
                    "verify-full" => PgSslMode::VerifyFull,
                    other => {
                        return Err(format!(
                            "sslmode={other}: expected disable, prefer, require, verify-ca or verify-full"
                        ));
                    }
                };
            }
            "sslrootcert" => tls.root_cert = Some(PathBuf::from(percent_decode(value))),
            _ => kept.push(pair),
        }
    }
    let url = if kept.is_empty() {
        base.to_owned()
    } else {
        format!("{base}?{}", kept.join("&"))
    };
    let mut config: tokio_postgres::Config = url
        .parse()
        .map_err(|_| "DATABASE_URL is not a valid Postgres connection URL".to_owned())?;
    config.ssl_mode(match tls.mode {
        PgSslMode::Disable => SslMode::Disable,
        PgSslMode::Prefer => SslMode::Prefer,
        PgSslMode::Require | PgSslMode::VerifyCa | PgSslMode::VerifyFull => SslMode::Require,
    });
    Ok((config, tls))
}

/// `%XX` escapes of a URL parameter (a path may hold spaces or slashes written so).
fn percent_decode(text: &str) -> String {
    let bytes = text.as_bytes();
    let mut out = Vec::with_capacity(bytes.len());
    let mut index = 0;
    while index < bytes.len() {
        let hex = bytes
            .get(index + 1..index + 3)
            .and_then(|pair| std::str::from_utf8(pair).ok())
            .and_then(|pair| u8::from_str_radix(pair, 16).ok());
        match (bytes[index], hex) {
            (b'%', Some(byte)) => {
                out.push(byte);
                index += 3;
            }
            (byte, _) => {
                out.push(byte);
                index += 1;
            }
        }
    }
    String::from_utf8_lossy(&out).into_owned()
}

/// The TLS connector of a database's connections.
#[derive(Clone)]
pub struct PgConnector {
    make: MakeRustlsConnect,
    mode: PgSslMode,
}

impl std::fmt::Debug for PgConnector {
    fn fmt(&self, formatter: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        formatter
            .debug_struct("PgConnector")
            .field("mode", &self.mode)
            .finish_non_exhaustive()
    }
}

impl PgConnector {
    /// What tokio-postgres connects with.
    pub fn make(&self) -> MakeRustlsConnect {
        self.make.clone()
    }
}

/// The connector for `tls`: every pooled connection and the event listener use it.
pub fn connector(tls: &PgTls) -> Result<PgConnector, String> {
    let provider = Arc::new(rustls::crypto::ring::default_provider());
    let builder = rustls::ClientConfig::builder_with_provider(Arc::clone(&provider))
        .with_safe_default_protocol_versions()
        .map_err(|error| format!("TLS setup: {error}"))?;
    let verifier: Arc<dyn ServerCertVerifier> = match tls.mode {
        PgSslMode::Disable | PgSslMode::Prefer | PgSslMode::Require => {
            Arc::new(Unchecked(provider))
        }
        PgSslMode::VerifyCa | PgSslMode::VerifyFull => {
            let path = tls.root_cert.clone().ok_or_else(|| {
                "sslmode=verify-ca and verify-full need sslrootcert=<PEM file> in DATABASE_URL"
                    .to_owned()
            })?;
            let mut roots = RootCertStore::empty();
            for cert in CertificateDer::pem_file_iter(&path)
                .map_err(|error| format!("sslrootcert {}: {error}", path.display()))?
            {
                let cert =
                    cert.map_err(|error| format!("sslrootcert {}: {error}", path.display()))?;
                roots
                    .add(cert)
                    .map_err(|error| format!("sslrootcert {}: {error}", path.display()))?;
            }
            let webpki = WebPkiServerVerifier::builder_with_provider(Arc::new(roots), provider)
                .build()
                .map_err(|error| format!("sslrootcert {}: {error}", path.display()))?;
            Arc::new(Checked {
                webpki,
                check_name: tls.mode == PgSslMode::VerifyFull,
            })
        }
    };
    let config = builder
        .dangerous()
        .with_custom_certificate_verifier(verifier)
        .with_no_client_auth();
    Ok(PgConnector {
        make: MakeRustlsConnect::new(config),
        mode: tls.mode,
    })
}

/// `verify-ca` / `verify-full`: the chain against the roots; the host name only for the latter.
#[derive(Debug)]
struct Checked {
    webpki: Arc<WebPkiServerVerifier>,
    check_name: bool,
}

impl ServerCertVerifier for Checked {
    fn verify_server_cert(
        &self,
        end_entity: &CertificateDer<'_>,
        intermediates: &[CertificateDer<'_>],
        server_name: &ServerName<'_>,
        ocsp: &[u8],
        now: UnixTime,
    ) -> Result<ServerCertVerified, TlsError> {
        match self
            .webpki
            .verify_server_cert(end_entity, intermediates, server_name, ocsp, now)
        {
            Err(TlsError::InvalidCertificate(CertificateError::NotValidForName))
            | Err(TlsError::InvalidCertificate(CertificateError::NotValidForNameContext {
                ..
            })) if !self.check_name => Ok(ServerCertVerified::assertion()),
            other => other,
        }
    }

    fn verify_tls12_signature(
        &self,
        message: &[u8],
        cert: &CertificateDer<'_>,
        signature: &DigitallySignedStruct,
    ) -> Result<HandshakeSignatureValid, TlsError> {
        self.webpki.verify_tls12_signature(message, cert, signature)
    }

    fn verify_tls13_signature(
        &self,
        message: &[u8],
        cert: &CertificateDer<'_>,
        signature: &DigitallySignedStruct,
    ) -> Result<HandshakeSignatureValid, TlsError> {
        self.webpki.verify_tls13_signature(message, cert, signature)
    }

    fn supported_verify_schemes(&self) -> Vec<SignatureScheme> {
        self.webpki.supported_verify_schemes()
    }
}

/// `prefer` / `require`: encryption without checking who answers (libpq's meaning); the
/// handshake's signatures are still checked against the certificate presented.
#[derive(Debug)]
struct Unchecked(Arc<rustls::crypto::CryptoProvider>);

impl ServerCertVerifier for Unchecked {
    fn verify_server_cert(
        &self,
        _end_entity: &CertificateDer<'_>,
        _intermediates: &[CertificateDer<'_>],
        _server_name: &ServerName<'_>,
        _ocsp: &[u8],
        _now: UnixTime,
    ) -> Result<ServerCertVerified, TlsError> {
        Ok(ServerCertVerified::assertion())
    }

    fn verify_tls12_signature(
        &self,
        message: &[u8],
        cert: &CertificateDer<'_>,
        signature: &DigitallySignedStruct,
    ) -> Result<HandshakeSignatureValid, TlsError> {
        rustls::crypto::verify_tls12_signature(
            message,
            cert,
            signature,
            &self.0.signature_verification_algorithms,
        )
    }

    fn verify_tls13_signature(
        &self,
        message: &[u8],
        cert: &CertificateDer<'_>,
        signature: &DigitallySignedStruct,
    ) -> Result<HandshakeSignatureValid, TlsError> {
        rustls::crypto::verify_tls13_signature(
            message,
            cert,
            signature,
            &self.0.signature_verification_algorithms,
        )
    }

    fn supported_verify_schemes(&self) -> Vec<SignatureScheme> {
        self.0.signature_verification_algorithms.supported_schemes()
    }
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;

    #[test]
    fn sslmode_and_sslrootcert_are_taken_out_of_the_url() {
        let (config, tls) = parse_url(
            "postgres://u:p@db.example:5433/app?sslmode=verify-full&sslrootcert=%2Fetc%2Fca.pem&application_name=x",
        )
        .unwrap();
        assert_eq!(tls.mode, PgSslMode::VerifyFull);
        assert_eq!(tls.root_cert, Some(PathBuf::from("/etc/ca.pem")));
        assert_eq!(config.get_ssl_mode(), SslMode::Require);
        assert_eq!(config.get_application_name(), Some("x"));
        let (config, tls) = parse_url("postgres://u@localhost/app").unwrap();
        assert_eq!(tls, PgTls::default());
        assert_eq!(config.get_ssl_mode(), SslMode::Prefer);
        assert!(parse_url("postgres://u@localhost/app?sslmode=sometimes").is_err());
    }

    #[test]
    fn verification_needs_a_root_certificate() {
        let tls = PgTls {
            mode: PgSslMode::VerifyFull,
            root_cert: None,
        };
        assert!(connector(&tls).unwrap_err().contains("sslrootcert"));
        assert!(connector(&PgTls::default()).is_ok());
    }
}
