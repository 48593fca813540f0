//! The optional bearer token (`--token-file`): compared as sha256 digests in constant time, so
//! neither the token's bytes nor its length leak through response timing.

use std::path::Path;

use anyhow::{Context, Result, bail};
use sha2::{Digest, Sha256};

/// The token clients must send as `Authorization: Bearer <token>`.
#[derive(Clone)]
pub struct BearerToken {
    digest: [u8; 32],
}

impl std::fmt::Debug for BearerToken {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("BearerToken(…)")
    }
}

impl BearerToken {
    /// Reads the token from `path` (surrounding whitespace trimmed). Refuses an empty file, and
    /// warns when the file is readable by other users.
    pub fn from_file(path: &Path) -> Result<Self> {
        let text =
            std::fs::read_to_string(path).with_context(|| format!("reading the token file {}", path.display()))?;
        let token = text.trim();
        if token.is_empty() {
            bail!("the token file {} is empty", path.display());
        }
        if token.chars().any(|c| c.is_whitespace() || c.is_control()) {
            bail!(
                "the token in {} contains whitespace or control characters; use one line of printable text",
                path.display()
            );
        }
        #[cfg(unix)]
        {
            use std::os::unix::fs::PermissionsExt;
            if let Ok(meta) = std::fs::metadata(path)
                && meta.permissions().mode() & 0o077 != 0
            {
                tracing::warn!(file = %path.display(), "the token file is readable by other users; chmod 600 it");
            }
        }
        Ok(Self::new(token))
    }

    /// A token from its text.
    pub fn new(token: &str) -> Self {
        BearerToken { digest: Sha256::digest(token.as_bytes()).into() }
    }

    /// Whether an `Authorization` header value carries this token.
    pub fn accepts(&self, authorization: Option<&[u8]>) -> bool {
        let Some(value) = authorization else { return false };
        let Some(presented) = value.strip_prefix(b"Bearer ").or_else(|| value.strip_prefix(b"bearer ")) else {
            return false;
        };
        let presented: [u8; 32] = Sha256::digest(presented.trim_ascii()).into();
        // Constant time: every byte is compared whatever the earlier ones were.
        presented.iter().zip(&self.digest).fold(0u8, |diff, (a, b)| diff | (a ^ b)) == 0
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn only_the_exact_token_is_accepted() {
        let token = BearerToken::new("s3cret-token");
        assert!(token.accepts(Some(b"Bearer s3cret-token")));
        assert!(token.accepts(Some(b"bearer s3cret-token ")));
        assert!(!token.accepts(None));
        assert!(!token.accepts(Some(b"s3cret-token")));
        assert!(!token.accepts(Some(b"Bearer s3cret-toke")));
        assert!(!token.accepts(Some(b"Bearer s3cret-token2")));
        assert!(!token.accepts(Some(b"Basic czNjcmV0")));
        assert!(!token.accepts(Some(b"Bearer ")));
    }

    #[test]
    fn token_files_are_checked() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("token");
        std::fs::write(&path, "  abc123\n").unwrap();
        assert!(BearerToken::from_file(&path).unwrap().accepts(Some(b"Bearer abc123")));
        std::fs::write(&path, "\n").unwrap();
        assert!(BearerToken::from_file(&path).unwrap_err().to_string().contains("is empty"));
        std::fs::write(&path, "two words").unwrap();
        assert!(BearerToken::from_file(&path).unwrap_err().to_string().contains("whitespace"));
        let missing = BearerToken::from_file(&dir.path().join("nope")).unwrap_err();
        assert!(format!("{missing:#}").contains("reading the token file"), "{missing:#}");
    }
}
