//! Obtaining the pinned tarball: a local copy, the cache, or a verified download
//! ([`spamlens_fetch`]).

use std::path::{Path, PathBuf};

use super::{TARBALL_FILE, TARBALL_SHA256, TARBALL_URL};
use crate::error::{ModelError, Result};

pub use spamlens_fetch::{DownloadProgress, NoProgress};

/// How the tarball was obtained.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum TarballOrigin {
    /// It was already in the cache and its checksum matched.
    Cached,
    /// It was downloaded now (and is cached from now on).
    Downloaded,
    /// The caller gave a local file.
    LocalFile,
}

impl std::fmt::Display for TarballOrigin {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(match self {
            Self::Cached => "cached",
            Self::Downloaded => "downloaded",
            Self::LocalFile => "local file",
        })
    }
}

/// sha256 (hex) of a file, streamed.
pub fn sha256_file(path: &Path) -> Result<String> {
    Ok(spamlens_fetch::sha256_file(path)?)
}

/// Fails unless the file at `path` has the sha256 `expected`.
pub fn verify_sha256(path: &Path, expected: &str) -> Result<()> {
    Ok(spamlens_fetch::verify_sha256(path, expected)?)
}

/// The verified tarball: `local` if given (checked), else the cached copy in `cache_dir`, else a
/// fresh download into the cache. Returns its path and how it was obtained.
pub fn obtain_tarball(
    local: Option<&Path>,
    cache_dir: &Path,
    progress: &mut dyn DownloadProgress,
) -> Result<(PathBuf, TarballOrigin)> {
    if let Some(path) = local {
        verify_sha256(path, TARBALL_SHA256)?;
        return Ok((path.to_path_buf(), TarballOrigin::LocalFile));
    }
    let cached = cache_dir.join(TARBALL_FILE);
    if cached.is_file() {
        match verify_sha256(&cached, TARBALL_SHA256) {
            Ok(()) => return Ok((cached, TarballOrigin::Cached)),
            Err(ModelError::Fetch(spamlens_fetch::FetchError::Checksum { actual, .. })) => {
                tracing::warn!(path = %cached.display(), %actual, "cached tarball has the wrong sha256; downloading again");
            }
            Err(e) => return Err(e),
        }
    }
    download_verified(TARBALL_URL, &cached, TARBALL_SHA256, progress)?;
    Ok((cached, TarballOrigin::Downloaded))
}

/// Whether the tarball is in `cache_dir` with the right checksum (no network).
pub fn cached_tarball(cache_dir: &Path) -> Option<PathBuf> {
    let cached = cache_dir.join(TARBALL_FILE);
    verify_sha256(&cached, TARBALL_SHA256).ok().map(|()| cached)
}

/// Downloads `url` to `dest` through a temporary file, hashing as it goes; `dest` appears only if
/// the sha256 is `expected`.
pub fn download_verified(url: &str, dest: &Path, expected: &str, progress: &mut dyn DownloadProgress) -> Result<()> {
    Ok(spamlens_fetch::download_verified(url, dest, expected, progress)?)
}
