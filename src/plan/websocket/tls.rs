//! `tls = { ca = "ca.pem" }` or `tls = { insecure = true }` for a `wss://`
//! url: which certificates the flood trusts. Without `tls`, the webpki
//! roots (Mozilla's list) are trusted.

use std::path::PathBuf;

use serde::Deserialize;

use crate::plan::kinds::{At, SpecError};

#[derive(Clone, Debug, Default, PartialEq, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct TlsSpec {
    /// A PEM file of certificates to trust (relative to the suite), e.g.
    /// the team's own CA; the webpki roots are then not used.
    #[serde(default)]
    pub ca: Option<PathBuf>,
    /// Skip certificate verification (every report says so).
    #[serde(default)]
    pub insecure: Option<bool>,
}

/// `tls` only with a `wss://` url, and not both ways at once.
pub fn check(tls: Option<&TlsSpec>, url: Option<&str>) -> Result<(), SpecError> {
    let secure = url.is_some_and(|u| u.starts_with("wss://"));
    let Some(t) = tls else { return Ok(()) };
    if !secure {
        return Err(SpecError::new(
            At::Key("tls"),
            "`tls` configures `wss://` urls; this scenario's url is not one",
        ));
    }
    if t.ca.is_some() && t.insecure == Some(true) {
        return Err(SpecError::new(
            At::Key("tls"),
            "give either `tls.ca` (trust this CA) or `tls.insecure = true` (trust anything), not both",
        ));
    }
    if t.ca.as_ref().is_some_and(|c| c.as_os_str().is_empty()) {
        return Err(SpecError::new(
            At::Key("tls.ca"),
            "`tls.ca` must name a PEM file",
        ));
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn tls_goes_with_wss() {
        let ca = TlsSpec {
            ca: Some("ca.pem".into()),
            insecure: None,
        };
        assert!(check(Some(&ca), Some("wss://h:1/")).is_ok());
        assert!(check(None, Some("wss://h:1/")).is_ok());
        let e = check(Some(&ca), Some("ws://h:1/")).unwrap_err();
        assert!(e.message.contains("`wss://`"), "{e:?}");
        let both = TlsSpec {
            ca: Some("ca.pem".into()),
            insecure: Some(true),
        };
        assert!(
            check(Some(&both), Some("wss://h:1/"))
                .unwrap_err()
                .message
                .contains("not both")
        );
    }
}
