//! TLS to Postgres, configured as libpq users write it: `sslmode` and `sslrootcert` in the
//! URL's query string (`?sslmode=verify-full&sslrootcert=/etc/cdcql/ca.pem`) or in a
//! key=value string. The same settings apply to the query connection (tokio-postgres, with the
//! rustls connector below) and to the replication connection (pgwire-replication's own rustls).
//!
//! | sslmode | encrypted | certificate checked | host name checked |
//! |---|---|---|---|
//! | `disable` | no | | |
//! | `allow`, `prefer` (default) | if the server offers TLS | no | no |
//! | `require` | yes | only with `sslrootcert` (then as `verify-ca`, like libpq) | no |
//! | `verify-ca` | yes | yes | no |
//! | `verify-full` | yes | yes | yes |
//!
//! `sslrootcert` is a PEM file of CA certificates, or `system` for the Mozilla roots. Without
//! it, `verify-ca`/`verify-full` use `~/.postgresql/root.crt` as libpq does, and fail with a
//! clear message when that file does not exist.

use std::future::Future;
use std::io;
use std::path::{Path, PathBuf};
use std::pin::Pin;
use std::sync::Arc;
use std::task::{Context, Poll};

use rustls::client::danger::{HandshakeSignatureValid, ServerCertVerified, ServerCertVerifier};
use rustls::client::WebPkiServerVerifier;
use rustls::crypto::CryptoProvider;
use rustls::pki_types::pem::PemObject;
use rustls::pki_types::{CertificateDer, ServerName, UnixTime};
use rustls::{CertificateError, ClientConfig, DigitallySignedStruct, RootCertStore};
use tokio::io::{AsyncRead, AsyncWrite, ReadBuf};
use tokio_postgres::tls::{ChannelBinding, MakeTlsConnect, TlsConnect};

use crate::plan::conninfo;

/// libpq's `sslmode`, less `allow` (read as `prefer`).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum SslMode {
    Disable,
    Prefer,
    Require,
    VerifyCa,
    VerifyFull,
}

impl SslMode {
    fn name(self) -> &'static str {
        match self {
            SslMode::Disable => "disable",
            SslMode::Prefer => "prefer",
            SslMode::Require => "require",
            SslMode::VerifyCa => "verify-ca",
            SslMode::VerifyFull => "verify-full",
        }
    }
}

/// Which CAs a verifying mode trusts.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum RootCerts {
    File(PathBuf),
    /// `sslrootcert=system`: the Mozilla root program's CAs.
    System,
}

impl std::fmt::Display for RootCerts {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            RootCerts::File(p) => write!(f, "sslrootcert={}", p.display()),
            RootCerts::System => f.write_str("sslrootcert=system"),
        }
    }
}

/// The TLS part of a connection string, with libpq's rules applied.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TlsSettings {
    /// As written (or `prefer`), for messages.
    pub requested: SslMode,
    /// What is done: `require` with a root certificate becomes `verify-ca`.
    pub mode: SslMode,
    /// Set exactly when `mode` verifies certificates.
    pub roots: Option<RootCerts>,
}

/// Keys cdcql reads itself and removes before the driver sees the string.
pub const TLS_KEYS: &[&str] = &["sslmode", "sslrootcert"];

impl TlsSettings {
    /// Reads `sslmode` and `sslrootcert` from a connection string.
    pub fn from_conninfo(s: &str) -> Result<Self, String> {
        Self::with_home(s, home())
    }

    /// [`Self::from_conninfo`] with `home` as the home directory (for libpq's default
    /// `~/.postgresql/root.crt`).
    fn with_home(s: &str, home: Option<PathBuf>) -> Result<Self, String> {
        let requested = match conninfo::get(s, "sslmode").as_deref() {
            None | Some("prefer") | Some("allow") => SslMode::Prefer,
            Some("disable") => SslMode::Disable,
            Some("require") => SslMode::Require,
            Some("verify-ca") => SslMode::VerifyCa,
            Some("verify-full") => SslMode::VerifyFull,
            Some(other) => {
                return Err(format!(
                    "sslmode={other} is not a TLS mode: use disable, prefer, require, verify-ca \
                     or verify-full"
                ))
            }
        };
        let given = conninfo::get(s, "sslrootcert").map(|v| match v.as_str() {
            "system" => RootCerts::System,
            path => RootCerts::File(match (path.strip_prefix("~/"), &home) {
                (Some(rest), Some(h)) => h.join(rest),
                _ => PathBuf::from(path),
            }),
        });
        let (mode, roots) = match (requested, given) {
            (SslMode::Disable | SslMode::Prefer, _) => (requested, None),
            (SslMode::Require, None) => (SslMode::Require, None),
            (SslMode::Require, Some(r)) => (SslMode::VerifyCa, Some(r)),
            (m, Some(r)) => (m, Some(r)),
            (m, None) => {
                let default = home.map(|h| h.join(".postgresql/root.crt"));
                match default.filter(|p| p.exists()) {
                    Some(p) => (m, Some(RootCerts::File(p))),
                    None => {
                        return Err(format!(
                            "sslmode={} checks the server's certificate, but no CA certificate \
                             is given: add sslrootcert=/path/to/ca.pem (the CA that signed the \
                             server's certificate) to the connection URL, or sslrootcert=system \
                             for a publicly signed server",
                            m.name()
                        ))
                    }
                }
            }
        };
        Ok(TlsSettings {
            requested,
            mode,
            roots,
        })
    }

    /// The setting for tokio-postgres, which checks nothing itself: verification is the
    /// connector's job.
    pub fn driver_mode(&self) -> tokio_postgres::config::SslMode {
        match self.mode {
            SslMode::Disable => tokio_postgres::config::SslMode::Disable,
            SslMode::Prefer => tokio_postgres::config::SslMode::Prefer,
            _ => tokio_postgres::config::SslMode::Require,
        }
    }

    /// The same settings for the replication connection. `host` is what the certificate must
    /// name under `verify-full` (an IP address is checked against the certificate's IP names).
    pub fn replication(&self, host: &str) -> pgwire_replication::TlsConfig {
        use pgwire_replication::TlsConfig;
        let ca = match &self.roots {
            Some(RootCerts::File(p)) => Some(p.clone()),
            _ => None,
        };
        let mut cfg = match self.mode {
            SslMode::Disable => TlsConfig::disabled(),
            SslMode::Prefer => TlsConfig {
                mode: pgwire_replication::SslMode::Prefer,
                ..TlsConfig::default()
            },
            SslMode::Require => TlsConfig::require(),
            SslMode::VerifyCa => TlsConfig::verify_ca(ca),
            SslMode::VerifyFull => TlsConfig::verify_full(ca),
        };
        // Naming the host explicitly lets pgwire-replication verify an IP address against
        // the certificate instead of refusing it outright.
        if self.mode == SslMode::VerifyFull {
            cfg = cfg.with_sni_hostname(host);
        }
        cfg
    }

    /// The replication connection's settings for `verify-ca`, given a name the certificate
    /// lists (see [`Self::certificate_name`]): checked as `verify-full` against that name, which
    /// checks the chain exactly as `verify-ca` does.
    pub fn replication_as(&self, name: &str) -> pgwire_replication::TlsConfig {
        let ca = match &self.roots {
            Some(RootCerts::File(p)) => Some(p.clone()),
            _ => None,
        };
        pgwire_replication::TlsConfig::verify_full(ca).with_sni_hostname(name)
    }

    /// A name the server's certificate lists, read in a handshake that checks the chain as
    /// `verify-ca` does (and fails as it would). pgwire-replication's own `verify-ca` still
    /// refuses a certificate that does not name the host: it knows only rustls's older error
    /// for that, so the replication connection is checked against this name instead.
    pub async fn certificate_name(&self, host: &str, port: u16) -> Result<Option<String>, String> {
        use tokio::io::{AsyncReadExt, AsyncWriteExt};
        let Some(roots) = &self.roots else {
            return Ok(None);
        };
        let provider = Arc::new(rustls::crypto::ring::default_provider());
        let store = Arc::new(load_roots(roots)?);
        let inner = WebPkiServerVerifier::builder_with_provider(store, provider.clone())
            .build()
            .map_err(|e| format!("cannot use {roots}: {e}"))?;
        let names = Arc::new(std::sync::Mutex::new(Vec::new()));
        let verifier = Arc::new(NamesOf {
            inner,
            names: names.clone(),
        });
        let config = ClientConfig::builder_with_provider(provider)
            .with_safe_default_protocol_versions()
            .map_err(|e| format!("TLS setup: {e}"))?
            .dangerous()
            .with_custom_certificate_verifier(verifier)
            .with_no_client_auth();
        let io = |e: io::Error| format!("connecting to {host}:{port}: {e}");
        let mut tcp = tokio::net::TcpStream::connect((host, port))
            .await
            .map_err(io)?;
        // SSLRequest: length 8, code 80877103.
        tcp.write_all(&[0, 0, 0, 8, 0x04, 0xd2, 0x16, 0x2f])
            .await
            .map_err(io)?;
        let mut answer = [0u8; 1];
        tcp.read_exact(&mut answer).await.map_err(io)?;
        if answer[0] != b'S' {
            return Err(format!(
                "the server at {host}:{port} does not offer TLS, which sslmode={} requires",
                self.requested.name()
            ));
        }
        // A name no certificate lists, so that the verifier learns the names it does list.
        let probe = ServerName::try_from("cdcql-name-probe.invalid")
            .map_err(|e| format!("TLS setup: {e}"))?;
        let mut stream = tokio_rustls::TlsConnector::from(Arc::new(config))
            .connect(probe, tcp)
            .await
            .map_err(|e| {
                e.get_ref()
                    .and_then(|inner| inner.downcast_ref::<rustls::Error>())
                    .map_or_else(
                        || format!("TLS handshake with {host} failed: {e}"),
                        |r| self.explain(host, r),
                    )
            })?;
        let _ = stream.shutdown().await;
        let names = names.lock().map(|n| n.clone()).unwrap_or_default();
        Ok(names.iter().find_map(|n| presented_name(n)))
    }

    /// The rustls connector for tokio-postgres.
    pub fn connector(&self) -> Result<MakeRustls, String> {
        let provider = Arc::new(rustls::crypto::ring::default_provider());
        let verifier: Arc<dyn ServerCertVerifier> = match (&self.roots, self.mode) {
            (None, _) | (_, SslMode::Disable | SslMode::Prefer | SslMode::Require) => {
                Arc::new(AcceptAny(provider.clone()))
            }
            (Some(roots), mode) => {
                let store = Arc::new(load_roots(roots)?);
                let inner = WebPkiServerVerifier::builder_with_provider(store, provider.clone())
                    .build()
                    .map_err(|e| format!("cannot use {roots}: {e}"))?;
                if mode == SslMode::VerifyFull {
                    inner
                } else {
                    Arc::new(IgnoreName(inner))
                }
            }
        };
        let config = ClientConfig::builder_with_provider(provider)
            .with_safe_default_protocol_versions()
            .map_err(|e| format!("TLS setup: {e}"))?
            .dangerous()
            .with_custom_certificate_verifier(verifier)
            .with_no_client_auth();
        Ok(MakeRustls {
            config: Arc::new(config),
            settings: Arc::new(self.clone()),
        })
    }

    /// A handshake failure in words that say what to change.
    pub fn explain(&self, host: &str, error: &rustls::Error) -> String {
        match error {
            rustls::Error::InvalidCertificate(CertificateError::UnknownIssuer) => format!(
                "the server's certificate is not signed by a CA in {}: set sslrootcert to the \
                 CA certificate that signed it",
                self.roots
                    .as_ref()
                    .map_or_else(|| "the trusted roots".to_string(), |r| r.to_string())
            ),
            rustls::Error::InvalidCertificate(
                CertificateError::NotValidForName | CertificateError::NotValidForNameContext { .. },
            ) => format!(
                "the server's certificate is not valid for the host name `{host}` \
                 (sslmode=verify-full checks it): connect with a name the certificate lists, \
                 or use sslmode=verify-ca to check only the CA ({error})"
            ),
            rustls::Error::InvalidCertificate(
                CertificateError::Expired | CertificateError::ExpiredContext { .. },
            ) => format!("the server's certificate has expired ({error})"),
            other => format!("TLS handshake with {host} failed: {other}"),
        }
    }

    /// The same, for errors that reach us only as text (from the replication client).
    pub fn explain_text(&self, host: &str, text: &str) -> String {
        let known = if text.contains("UnknownIssuer") {
            Some(rustls::Error::InvalidCertificate(
                CertificateError::UnknownIssuer,
            ))
        } else if text.contains("NotValidForName") || text.contains("not valid for name") {
            Some(rustls::Error::InvalidCertificate(
                CertificateError::NotValidForName,
            ))
        } else if text.contains("Expired") {
            Some(rustls::Error::InvalidCertificate(CertificateError::Expired))
        } else {
            None
        };
        match known {
            Some(e) => self.explain(host, &e),
            None => text.to_string(),
        }
    }
}

fn home() -> Option<PathBuf> {
    std::env::var_os("HOME").map(PathBuf::from)
}

fn load_roots(roots: &RootCerts) -> Result<RootCertStore, String> {
    let mut store = RootCertStore::empty();
    match roots {
        RootCerts::System => store.extend(webpki_roots::TLS_SERVER_ROOTS.iter().cloned()),
        RootCerts::File(path) => {
            let certs = read_pem(path)?;
            let (added, _) = store.add_parsable_certificates(certs);
            if added == 0 {
                return Err(format!(
                    "sslrootcert file {} holds no usable CA certificate (expected PEM: \
                     -----BEGIN CERTIFICATE-----)",
                    path.display()
                ));
            }
        }
    }
    Ok(store)
}

fn read_pem(path: &Path) -> Result<Vec<CertificateDer<'static>>, String> {
    let bytes = std::fs::read(path)
        .map_err(|e| format!("cannot read sslrootcert {}: {e}", path.display()))?;
    CertificateDer::pem_slice_iter(&bytes)
        .collect::<Result<Vec<_>, _>>()
        .map_err(|e| format!("sslrootcert {} is not a PEM file: {e}", path.display()))
}

/// `prefer` and `require` without a CA: encrypted, but any certificate is accepted (libpq's
/// behaviour). The handshake's signatures are still checked.
#[derive(Debug)]
struct AcceptAny(Arc<CryptoProvider>);

impl ServerCertVerifier for AcceptAny {
    fn verify_server_cert(
        &self,
        _end_entity: &CertificateDer<'_>,
        _intermediates: &[CertificateDer<'_>],
        _server_name: &ServerName<'_>,
        _ocsp: &[u8],
        _now: UnixTime,
    ) -> Result<ServerCertVerified, rustls::Error> {
        Ok(ServerCertVerified::assertion())
    }

    fn verify_tls12_signature(
        &self,
        message: &[u8],
        cert: &CertificateDer<'_>,
        dss: &DigitallySignedStruct,
    ) -> Result<HandshakeSignatureValid, rustls::Error> {
        rustls::crypto::verify_tls12_signature(
            message,
            cert,
            dss,
            &self.0.signature_verification_algorithms,
        )
    }

    fn verify_tls13_signature(
        &self,
        message: &[u8],
        cert: &CertificateDer<'_>,
        dss: &DigitallySignedStruct,
    ) -> Result<HandshakeSignatureValid, rustls::Error> {
        rustls::crypto::verify_tls13_signature(
            message,
            cert,
            dss,
            &self.0.signature_verification_algorithms,
        )
    }

    fn supported_verify_schemes(&self) -> Vec<rustls::SignatureScheme> {
        self.0.signature_verification_algorithms.supported_schemes()
    }
}

/// `verify-ca`: the chain must lead to a trusted CA; the name in the certificate is not checked.
#[derive(Debug)]
struct IgnoreName(Arc<WebPkiServerVerifier>);

impl ServerCertVerifier for IgnoreName {
    fn verify_server_cert(
        &self,
        end_entity: &CertificateDer<'_>,
        intermediates: &[CertificateDer<'_>],
        server_name: &ServerName<'_>,
        ocsp: &[u8],
        now: UnixTime,
    ) -> Result<ServerCertVerified, rustls::Error> {
        match self
            .0
            .verify_server_cert(end_entity, intermediates, server_name, ocsp, now)
        {
            Err(rustls::Error::InvalidCertificate(
                CertificateError::NotValidForName | CertificateError::NotValidForNameContext { .. },
            )) => Ok(ServerCertVerified::assertion()),
            other => other,
        }
    }

    fn verify_tls12_signature(
        &self,
        message: &[u8],
        cert: &CertificateDer<'_>,
        dss: &DigitallySignedStruct,
    ) -> Result<HandshakeSignatureValid, rustls::Error> {
        self.0.verify_tls12_signature(message, cert, dss)
    }

    fn verify_tls13_signature(
        &self,
        message: &[u8],
        cert: &CertificateDer<'_>,
        dss: &DigitallySignedStruct,
    ) -> Result<HandshakeSignatureValid, rustls::Error> {
        self.0.verify_tls13_signature(message, cert, dss)
    }

    fn supported_verify_schemes(&self) -> Vec<rustls::SignatureScheme> {
        self.0.supported_verify_schemes()
    }
}

/// A name from rustls's list of the names a certificate presents (`DnsName("db.example")`,
/// `IpAddress(10.0.0.5)`), usable as a server name; a wildcard gets a label filled in.
fn presented_name(presented: &str) -> Option<String> {
    if let Some(dns) = presented
        .strip_prefix("DnsName(\"")
        .and_then(|s| s.strip_suffix("\")"))
    {
        return Some(match dns.strip_prefix("*.") {
            Some(rest) => format!("cdcql.{rest}"),
            None => dns.to_string(),
        });
    }
    presented
        .strip_prefix("IpAddress(")
        .and_then(|s| s.strip_suffix(')'))
        .filter(|ip| ip.parse::<std::net::IpAddr>().is_ok())
        .map(str::to_string)
}

/// Checks the chain like `verify-ca` and records the names the certificate lists.
#[derive(Debug)]
struct NamesOf {
    inner: Arc<WebPkiServerVerifier>,
    names: Arc<std::sync::Mutex<Vec<String>>>,
}

impl ServerCertVerifier for NamesOf {
    fn verify_server_cert(
        &self,
        end_entity: &CertificateDer<'_>,
        intermediates: &[CertificateDer<'_>],
        server_name: &ServerName<'_>,
        ocsp: &[u8],
        now: UnixTime,
    ) -> Result<ServerCertVerified, rustls::Error> {
        match self
            .inner
            .verify_server_cert(end_entity, intermediates, server_name, ocsp, now)
        {
            Err(rustls::Error::InvalidCertificate(CertificateError::NotValidForNameContext {
                presented,
                ..
            })) => {
                if let Ok(mut names) = self.names.lock() {
                    *names = presented;
                }
                Ok(ServerCertVerified::assertion())
            }
            Err(rustls::Error::InvalidCertificate(CertificateError::NotValidForName)) => {
                Ok(ServerCertVerified::assertion())
            }
            other => other,
        }
    }

    fn verify_tls12_signature(
        &self,
        message: &[u8],
        cert: &CertificateDer<'_>,
        dss: &DigitallySignedStruct,
    ) -> Result<HandshakeSignatureValid, rustls::Error> {
        self.inner.verify_tls12_signature(message, cert, dss)
    }

    fn verify_tls13_signature(
        &self,
        message: &[u8],
        cert: &CertificateDer<'_>,
        dss: &DigitallySignedStruct,
    ) -> Result<HandshakeSignatureValid, rustls::Error> {
        self.inner.verify_tls13_signature(message, cert, dss)
    }

    fn supported_verify_schemes(&self) -> Vec<rustls::SignatureScheme> {
        self.inner.supported_verify_schemes()
    }
}

/// tokio-postgres's TLS hook, backed by rustls.
#[derive(Clone)]
pub struct MakeRustls {
    config: Arc<ClientConfig>,
    settings: Arc<TlsSettings>,
}

/// A TLS failure, already explained.
#[derive(Debug)]
pub struct TlsError(String);

impl std::fmt::Display for TlsError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(&self.0)
    }
}

impl std::error::Error for TlsError {}

impl<S> MakeTlsConnect<S> for MakeRustls
where
    S: AsyncRead + AsyncWrite + Unpin + Send + 'static,
{
    type Stream = RustlsStream<S>;
    type TlsConnect = RustlsConnect;
    type Error = TlsError;

    fn make_tls_connect(&mut self, domain: &str) -> Result<RustlsConnect, TlsError> {
        let name = ServerName::try_from(domain.to_string())
            .map_err(|_| TlsError(format!("`{domain}` is not a valid host name for TLS")))?;
        Ok(RustlsConnect {
            connector: tokio_rustls::TlsConnector::from(self.config.clone()),
            name,
            host: domain.to_string(),
            settings: self.settings.clone(),
        })
    }
}

pub struct RustlsConnect {
    connector: tokio_rustls::TlsConnector,
    name: ServerName<'static>,
    host: String,
    settings: Arc<TlsSettings>,
}

impl<S> TlsConnect<S> for RustlsConnect
where
    S: AsyncRead + AsyncWrite + Unpin + Send + 'static,
{
    type Stream = RustlsStream<S>;
    type Error = TlsError;
    type Future = Pin<Box<dyn Future<Output = Result<RustlsStream<S>, TlsError>> + Send>>;

    fn connect(self, stream: S) -> Self::Future {
        Box::pin(async move {
            self.connector
                .connect(self.name, stream)
                .await
                .map(|s| RustlsStream(Box::new(s)))
                .map_err(|e| {
                    let explained = e
                        .get_ref()
                        .and_then(|inner| inner.downcast_ref::<rustls::Error>())
                        .map(|r| self.settings.explain(&self.host, r));
                    TlsError(
                        explained.unwrap_or_else(|| {
                            format!("TLS handshake with {} failed: {e}", self.host)
                        }),
                    )
                })
        })
    }
}

pub struct RustlsStream<S>(Box<tokio_rustls::client::TlsStream<S>>);

impl<S: AsyncRead + AsyncWrite + Unpin> AsyncRead for RustlsStream<S> {
    fn poll_read(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &mut ReadBuf<'_>,
    ) -> Poll<io::Result<()>> {
        Pin::new(&mut *self.0).poll_read(cx, buf)
    }
}

impl<S: AsyncRead + AsyncWrite + Unpin> AsyncWrite for RustlsStream<S> {
    fn poll_write(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &[u8],
    ) -> Poll<io::Result<usize>> {
        Pin::new(&mut *self.0).poll_write(cx, buf)
    }

    fn poll_flush(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        Pin::new(&mut *self.0).poll_flush(cx)
    }

    fn poll_shutdown(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        Pin::new(&mut *self.0).poll_shutdown(cx)
    }
}

impl<S: AsyncRead + AsyncWrite + Unpin> tokio_postgres::tls::TlsStream for RustlsStream<S> {
    /// No `tls-server-end-point` binding: it needs the certificate's signature hash, and SCRAM
    /// works without it (`channel_binding=prefer`, the default).
    fn channel_binding(&self) -> ChannelBinding {
        ChannelBinding::none()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn settings(s: &str) -> Result<TlsSettings, String> {
        TlsSettings::from_conninfo(s)
    }

    #[test]
    fn libpq_modes() {
        assert_eq!(settings("postgres://db/x").unwrap().mode, SslMode::Prefer);
        assert_eq!(
            settings("postgres://db/x?sslmode=disable").unwrap().mode,
            SslMode::Disable
        );
        let r = settings("postgres://db/x?sslmode=require").unwrap();
        assert_eq!((r.mode, r.roots), (SslMode::Require, None));
        // libpq: `require` with a root certificate verifies the chain.
        let r = settings("host=db sslmode=require sslrootcert=/ca.pem").unwrap();
        assert_eq!(r.mode, SslMode::VerifyCa);
        assert_eq!(r.roots, Some(RootCerts::File("/ca.pem".into())));
        let r = settings("postgres://db/x?sslmode=verify-full&sslrootcert=system").unwrap();
        assert_eq!(
            (r.mode, r.roots),
            (SslMode::VerifyFull, Some(RootCerts::System))
        );
        let e = settings("postgres://db/x?sslmode=verify_full").unwrap_err();
        assert!(e.contains("verify-full"), "{e}");
    }

    #[test]
    fn verifying_without_a_ca_says_what_to_add() {
        let home = std::env::temp_dir().join("cdcql-no-such-home");
        let e =
            TlsSettings::with_home("postgres://db/x?sslmode=verify-full", Some(home)).unwrap_err();
        assert!(e.contains("sslrootcert=/path/to/ca.pem"), "{e}");
    }

    #[test]
    fn names_from_rustls_lists() {
        assert_eq!(
            presented_name("DnsName(\"db.example\")").as_deref(),
            Some("db.example")
        );
        assert_eq!(
            presented_name("DnsName(\"*.example\")").as_deref(),
            Some("cdcql.example")
        );
        assert_eq!(
            presented_name("IpAddress(10.0.0.5)").as_deref(),
            Some("10.0.0.5")
        );
        assert_eq!(presented_name("DirectoryName"), None);
    }

    #[test]
    fn unreadable_root_file_is_named() {
        let s =
            settings("postgres://db/x?sslmode=verify-ca&sslrootcert=/nonexistent/ca.pem").unwrap();
        let e = s.connector().err().unwrap();
        assert!(e.contains("/nonexistent/ca.pem"), "{e}");
    }
}
