//! Downloading the pinned tarball over HTTPS (rustls), verifying it and caching it.

use std::fs::File;
use std::io::{BufReader, Read, Write};
use std::path::{Path, PathBuf};
use std::time::Duration;

use sha2::{Digest, Sha256};

use super::{TARBALL_FILE, TARBALL_SHA256, TARBALL_URL};
use crate::error::{Result, TrainerError};

/// Receives download progress: bytes so far and the total when the server announced it.
pub trait DownloadProgress {
    /// Called once the response headers arrived.
    fn start(&mut self, total: Option<u64>);
    /// Called as bytes arrive.
    fn advance(&mut self, done: u64);
    /// Called when the body is complete.
    fn finish(&mut self);
}

/// A [`DownloadProgress`] that shows nothing.
pub struct NoProgress;

impl DownloadProgress for NoProgress {
    fn start(&mut self, _total: Option<u64>) {}
    fn advance(&mut self, _done: u64) {}
    fn finish(&mut self) {}
}

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

/// Largest body accepted from the registry (the tarball is 95 MB).
const MAX_DOWNLOAD_BYTES: u64 = 512 * 1024 * 1024;

/// sha256 (hex) of a file, streamed.
pub fn sha256_file(path: &Path) -> Result<String> {
    let file = File::open(path).map_err(|e| TrainerError::io(path, e))?;
    let mut reader = BufReader::with_capacity(1 << 20, file);
    let mut hasher = Sha256::new();
    let mut buf = vec![0u8; 1 << 20];
    loop {
        let n = reader.read(&mut buf).map_err(|e| TrainerError::io(path, e))?;
        if n == 0 {
            break;
        }
        hasher.update(&buf[..n]);
    }
    Ok(hex::encode(hasher.finalize()))
}

/// Fails unless the file at `path` has the sha256 `expected`.
pub fn verify_sha256(path: &Path, expected: &str) -> Result<()> {
    let actual = sha256_file(path)?;
    if actual != expected {
        return Err(TrainerError::Checksum { path: path.to_path_buf(), expected: expected.into(), actual });
    }
    Ok(())
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
            Err(TrainerError::Checksum { actual, .. }) => {
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
    let download_error = |reason: String| TrainerError::Download { url: url.to_owned(), reason };
    if let Some(parent) = dest.parent() {
        std::fs::create_dir_all(parent).map_err(|e| TrainerError::io(parent, e))?;
    }
    let agent: ureq::Agent = ureq::Agent::config_builder()
        .timeout_connect(Some(Duration::from_secs(30)))
        .timeout_recv_response(Some(Duration::from_secs(60)))
        .timeout_recv_body(Some(Duration::from_secs(30 * 60)))
        .tls_config(ureq::tls::TlsConfig::builder().root_certs(ureq::tls::RootCerts::PlatformVerifier).build())
        .build()
        .into();
    let response = agent.get(url).call().map_err(|e| download_error(e.to_string()))?;
    let total =
        response.headers().get("content-length").and_then(|v| v.to_str().ok()).and_then(|v| v.parse::<u64>().ok());
    if total.is_some_and(|t| t > MAX_DOWNLOAD_BYTES) {
        return Err(download_error(format!("server announces {total:?} bytes, over the {MAX_DOWNLOAD_BYTES} limit")));
    }
    progress.start(total);
    let mut reader = response.into_body().into_with_config().limit(MAX_DOWNLOAD_BYTES).reader();

    let partial = dest.with_extension("part");
    let mut file = File::create(&partial).map_err(|e| TrainerError::io(&partial, e))?;
    let mut hasher = Sha256::new();
    let mut buf = vec![0u8; 256 * 1024];
    let mut done = 0u64;
    loop {
        let n = reader.read(&mut buf).map_err(|e| download_error(e.to_string()))?;
        if n == 0 {
            break;
        }
        hasher.update(&buf[..n]);
        file.write_all(&buf[..n]).map_err(|e| TrainerError::io(&partial, e))?;
        done += n as u64;
        progress.advance(done);
    }
    file.sync_all().map_err(|e| TrainerError::io(&partial, e))?;
    drop(file);
    progress.finish();
    if let Some(total) = total
        && total != done
    {
        let _ = std::fs::remove_file(&partial);
        return Err(download_error(format!("received {done} of {total} bytes")));
    }
    let actual = hex::encode(hasher.finalize());
    if actual != expected {
        let _ = std::fs::remove_file(&partial);
        return Err(TrainerError::Checksum { path: dest.to_path_buf(), expected: expected.into(), actual });
    }
    std::fs::rename(&partial, dest).map_err(|e| TrainerError::io(dest, e))?;
    Ok(())
}
