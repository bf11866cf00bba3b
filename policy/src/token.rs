//! The route token: what makes a routing header value one that only geolb sets.
//!
//! The generated VirtualServices route `<routing header>: <region>.<token>` (exact
//! match) to the region's subset; a bare region, or a region with another token,
//! matches no region route and takes the route without header match. The token is
//! derived from a secret the user keeps out of the repository, so a client (at an
//! ingress gateway: anyone) cannot pick a region while the filter is not the one
//! setting the header (crashed under FAIL_OPEN, absent from a listener, pass-through,
//! unconfigured). The filter only carries the token it is given; deriving it is the
//! generator's job (feature `derive-token`, kept out of the wasm module).

/// Fewest characters a route token may have: 128 bits in unpadded base64url.
pub const MIN_TOKEN_LEN: usize = 22;
/// Most characters a route token may have.
pub const MAX_TOKEN_LEN: usize = 64;
/// Fewest bytes a route secret may have.
pub const MIN_SECRET_LEN: usize = 32;

/// Whether `token` can be a route token: URL-safe base64 characters
/// (`A-Z a-z 0-9 - _`), [`MIN_TOKEN_LEN`]..=[`MAX_TOKEN_LEN`] of them. Such a value
/// needs no quoting in YAML or in a header, and Envoy compares it byte for byte.
pub fn check_route_token(token: &str) -> Result<(), &'static str> {
    if token.len() < MIN_TOKEN_LEN {
        return Err("shorter than 22 characters (128 bits)");
    }
    if token.len() > MAX_TOKEN_LEN {
        return Err("longer than 64 characters");
    }
    if !token
        .bytes()
        .all(|b| b.is_ascii_alphanumeric() || matches!(b, b'-' | b'_'))
    {
        return Err("only letters, digits, '-' and '_' are allowed (URL-safe base64)");
    }
    Ok(())
}

/// The routing header value that routes to `region`: `<region>.<token>`. The one
/// place the format is written: the filter precomputes it per region, the generator
/// renders it into the VirtualServices' exact matches.
pub fn route_header_value(region: &str, token: &str) -> String {
    let mut value = String::with_capacity(region.len() + 1 + token.len());
    value.push_str(region);
    value.push('.');
    value.push_str(token);
    value
}

#[cfg(feature = "derive-token")]
pub use derive::{RouteSecret, SecretError, derive_route_token};

#[cfg(feature = "derive-token")]
mod derive {
    use std::fmt;

    use hmac::{Hmac, Mac};
    use sha2::Sha256;

    use super::MIN_SECRET_LEN;

    /// Domain separation: a token is an HMAC of this label and the mesh, so the same
    /// secret used for anything else never yields a route token, nor the reverse.
    const TOKEN_LABEL: &[u8] = b"geolb.io/v1alpha1 route token\n";
    /// Bytes of the HMAC kept: 128 bits, 22 characters of unpadded base64url.
    const TOKEN_BYTES: usize = 16;

    /// A route secret of at least [`MIN_SECRET_LEN`] bytes. Its `Debug` shows only
    /// its length: the secret never reaches a log or an error message.
    #[derive(Clone, PartialEq, Eq)]
    pub struct RouteSecret(Vec<u8>);

    /// Why a text is not a usable route secret.
    #[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
    pub enum SecretError {
        /// Fewer bytes than [`MIN_SECRET_LEN`].
        #[error("is {len} bytes long; a route secret needs at least {min}")]
        TooShort {
            /// Its length.
            len: usize,
            /// The minimum.
            min: usize,
        },
    }

    impl RouteSecret {
        /// Accepts a secret of at least [`MIN_SECRET_LEN`] bytes.
        pub fn new(secret: impl Into<Vec<u8>>) -> Result<Self, SecretError> {
            let secret = secret.into();
            if secret.len() < MIN_SECRET_LEN {
                return Err(SecretError::TooShort {
                    len: secret.len(),
                    min: MIN_SECRET_LEN,
                });
            }
            Ok(Self(secret))
        }
    }

    impl fmt::Debug for RouteSecret {
        fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
            write!(f, "RouteSecret({} bytes, redacted)", self.0.len())
        }
    }

    /// The route token of `mesh` under `secret`: HMAC-SHA256(secret, label ‖ mesh),
    /// truncated to 128 bits, unpadded base64url (22 characters). Deterministic, so
    /// `render` and `check` agree without storing it; one per mesh, so two meshes
    /// under one secret do not accept each other's values.
    pub fn derive_route_token(secret: &RouteSecret, mesh: &str) -> String {
        let mut mac = match Hmac::<Sha256>::new_from_slice(&secret.0) {
            Ok(mac) => mac,
            // HMAC takes keys of any length; this arm is never taken.
            Err(_) => return String::new(),
        };
        mac.update(TOKEN_LABEL);
        mac.update(mesh.as_bytes());
        let digest = mac.finalize().into_bytes();
        let kept = digest.get(..TOKEN_BYTES).unwrap_or_default();
        data_encoding::BASE64URL_NOPAD.encode(kept)
    }
}
