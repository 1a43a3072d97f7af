//! The rustls client configuration of a `wss://` flood (ring provider):
//! the webpki roots, a PEM file of the team's own CAs, or no verification
//! at all (`tls.insecure`, which the executor reports as a warning).

use std::sync::Arc;

use rustls::client::danger::{HandshakeSignatureValid, ServerCertVerified, ServerCertVerifier};
use rustls::crypto::{WebPkiSupportedAlgorithms, ring};
use rustls::pki_types::pem::PemObject;
use rustls::pki_types::{CertificateDer, ServerName, UnixTime};
use rustls::{ClientConfig, DigitallySignedStruct, RootCertStore, SignatureScheme};

/// Which server certificates a flood trusts.
#[derive(Clone, Debug, PartialEq)]
pub enum Trust {
    /// Mozilla's roots (webpki-roots).
    WebPki,
    /// The certificates of this PEM text only.
    Pem(Vec<u8>),
    /// Any certificate: no verification.
    Insecure,
}

/// The client configuration for `trust`.
pub fn client_config(trust: &Trust) -> Result<Arc<ClientConfig>, String> {
    let provider = Arc::new(provider());
    let builder = ClientConfig::builder_with_provider(provider.clone())
        .with_safe_default_protocol_versions()
        .map_err(|e| format!("TLS set-up: {e}"))?;
    let config = match trust {
        Trust::Insecure => builder
            .dangerous()
            .with_custom_certificate_verifier(Arc::new(NoVerification(
                provider.signature_verification_algorithms,
            )))
            .with_no_client_auth(),
        Trust::WebPki => {
            let roots = RootCertStore::from_iter(webpki_roots::TLS_SERVER_ROOTS.iter().cloned());
            builder.with_root_certificates(roots).with_no_client_auth()
        }
        Trust::Pem(pem) => builder
            .with_root_certificates(pem_roots(pem)?)
            .with_no_client_auth(),
    };
    Ok(Arc::new(config))
}

/// rustls with *ring*: it builds with a C compiler alone (aws-lc-rs, the
/// default, needs more). rustls 0.23.48 deprecated it for lacking
/// post-quantum key exchange, which a load generator's handshakes do not
/// need.
#[allow(deprecated)]
fn provider() -> rustls::crypto::CryptoProvider {
    ring::default_provider()
}

fn pem_roots(pem: &[u8]) -> Result<RootCertStore, String> {
    let mut roots = RootCertStore::empty();
    for cert in CertificateDer::pem_slice_iter(pem) {
        let cert = cert.map_err(|e| format!("not a PEM certificate file: {e}"))?;
        roots
            .add(cert)
            .map_err(|e| format!("a certificate that cannot be a root: {e}"))?;
    }
    if roots.is_empty() {
        return Err("no certificate in it".into());
    }
    Ok(roots)
}

/// Accepts every certificate; signatures are still checked, so the
/// handshake itself is sound.
#[derive(Debug)]
struct NoVerification(WebPkiSupportedAlgorithms);

impl ServerCertVerifier for NoVerification {
    fn verify_server_cert(
        &self,
        _: &CertificateDer<'_>,
        _: &[CertificateDer<'_>],
        _: &ServerName<'_>,
        _: &[u8],
        _: UnixTime,
    ) -> Result<ServerCertVerified, rustls::Error> {
        Ok(ServerCertVerified::assertion())
    }

    fn verify_tls12_signature(
        &self,
        message: &[u8],
        cert: &CertificateDer<'_>,
        dss: &DigitallySignedStruct,
    ) -> Result<HandshakeSignatureValid, rustls::Error> {
        rustls::crypto::verify_tls12_signature(message, cert, dss, &self.0)
    }

    fn verify_tls13_signature(
        &self,
        message: &[u8],
        cert: &CertificateDer<'_>,
        dss: &DigitallySignedStruct,
    ) -> Result<HandshakeSignatureValid, rustls::Error> {
        rustls::crypto::verify_tls13_signature(message, cert, dss, &self.0)
    }

    fn supported_verify_schemes(&self) -> Vec<SignatureScheme> {
        self.0.supported_schemes()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_trust_builds() {
        assert!(client_config(&Trust::WebPki).is_ok());
        assert!(client_config(&Trust::Insecure).is_ok());
        let e = client_config(&Trust::Pem(b"not pem".to_vec())).unwrap_err();
        assert!(e.contains("no certificate"), "{e}");
    }
}
