//! The TLS settings of every HTTP client of the process, made once.
//!
//! reqwest builds a certificate verifier for each client, and the platform's verifier reads and
//! parses every certificate of the system's store when it is made. A run of many sources (one
//! per HubSpot portal, each with an API and a token client) spent most of its start-up there:
//! about a third of a second for 53 sources. These are the same settings reqwest makes (the
//! platform's roots, ring, TLS 1.2 and 1.3, HTTP/2 or 1.1 by ALPN), made on first use.

use std::sync::{Arc, OnceLock};

use crate::error::HttpError;

/// The settings every client is built with: a cheap clone of one made on first use.
pub(crate) fn client_config() -> Result<rustls::ClientConfig, HttpError> {
    static CONFIG: OnceLock<Result<rustls::ClientConfig, String>> = OnceLock::new();
    CONFIG
        .get_or_init(|| make().map_err(|e| e.to_string()))
        .clone()
        .map_err(|e| HttpError::Auth(format!("cannot set up TLS: {e}")))
}

fn make() -> Result<rustls::ClientConfig, rustls::Error> {
    let provider = Arc::new(rustls::crypto::ring::default_provider());
    let verifier = rustls_platform_verifier::Verifier::new(provider.clone())?;
    let mut config = rustls::ClientConfig::builder_with_provider(provider)
        .with_safe_default_protocol_versions()?
        .dangerous()
        .with_custom_certificate_verifier(Arc::new(verifier))
        .with_no_client_auth();
    config.alpn_protocols = vec![b"h2".to_vec(), b"http/1.1".to_vec()];
    Ok(config)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn clients_offer_http2_then_http1() {
        let config = client_config().expect("the system has root certificates");
        assert_eq!(config.alpn_protocols, [b"h2".to_vec(), b"http/1.1".to_vec()]);
        let again = client_config().expect("made once");
        assert_eq!(again.alpn_protocols, config.alpn_protocols);
        crate::HttpClient::new().expect("reqwest takes the settings");
    }
}
