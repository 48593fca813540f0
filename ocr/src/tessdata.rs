//! The OCR trained data: which files, where they are found, how they are fetched.
//!
//! spamlens reads English, Russian and simplified Chinese (the datasets' spam uses all three) with
//! Debian's packages of Tesseract's "fast" LSTM models, `tesseract-lang` 1:4.1.0-2 (Apache-2.0).
//! Every file is pinned by sha256; a fused model records the same hashes in its contract, and the
//! browser is served these very files, so native and browser OCR read with the same data.
//!
//! A folder is usable when it holds all three files with the pinned hashes. Looked for, in order:
//! `--tessdata DIR` / `$SPAMLENS_TESSDATA`, the spamlens cache (`<cache>/tessdata/4.1.0-2`, where
//! `spamlens-train ocr-data fetch` puts them), Debian's own install
//! (`/usr/share/tesseract-ocr/5/tessdata`, present after `apt install tesseract-ocr-eng
//! tesseract-ocr-rus tesseract-ocr-chi-sim`).

use std::path::{Path, PathBuf};

use spamlens_core::ocr::TrainedData;
use spamlens_fetch::DownloadProgress;

use crate::error::{OcrSetupError, Result};

/// One language's pinned trained data and the Debian package it comes in.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct TrainedDataPin {
    /// Tesseract's language code.
    pub language: &'static str,
    /// The Debian package.
    pub package: &'static str,
    /// Its version.
    pub version: &'static str,
    /// Where Debian's archive serves it.
    pub url: &'static str,
    /// sha256 of the `.deb`.
    pub deb_sha256: &'static str,
    /// The file's path inside the package.
    pub path_in_package: &'static str,
    /// sha256 of the `.traineddata` file.
    pub sha256: &'static str,
    /// Its size in bytes.
    pub bytes: u64,
}

impl TrainedDataPin {
    /// The file name in a tessdata folder (`eng.traineddata`).
    pub fn file_name(&self) -> String {
        format!("{}.traineddata", self.language)
    }
}

/// The version folder under `<cache>/tessdata`.
pub const DATA_VERSION: &str = "4.1.0-2";

/// Environment variable naming a tessdata folder to use.
pub const TESSDATA_ENV: &str = "SPAMLENS_TESSDATA";

/// Debian's own tessdata folders, newest layout first.
pub const SYSTEM_DIRS: [&str; 3] =
    ["/usr/share/tesseract-ocr/5/tessdata", "/usr/share/tesseract-ocr/4.00/tessdata", "/usr/share/tessdata"];

/// The trained data every spamlens runtime loads, in the order given to the engine.
pub const TRAINED_DATA: [TrainedDataPin; 3] = [
    TrainedDataPin {
        language: "eng",
        package: "tesseract-ocr-eng",
        version: "1:4.1.0-2",
        url: "https://deb.debian.org/debian/pool/main/t/tesseract-lang/tesseract-ocr-eng_4.1.0-2_all.deb",
        deb_sha256: "9242d054563262398f8cf41fbd96fcc72f9dde70db16de18539882a6cff74f9d",
        path_in_package: "./usr/share/tesseract-ocr/5/tessdata/eng.traineddata",
        sha256: "7d4322bd2a7749724879683fc3912cb542f19906c83bcc1a52132556427170b2",
        bytes: 4_113_088,
    },
    TrainedDataPin {
        language: "rus",
        package: "tesseract-ocr-rus",
        version: "1:4.1.0-2",
        url: "https://deb.debian.org/debian/pool/main/t/tesseract-lang/tesseract-ocr-rus_4.1.0-2_all.deb",
        deb_sha256: "115f30363bacd85ba48f1e4d038f3d942e6d2afe271198ea3204bbf67ab2d3f1",
        path_in_package: "./usr/share/tesseract-ocr/5/tessdata/rus.traineddata",
        sha256: "e16e5e036cce1d9ec2b00063cf8b54472625b9e14d893a169e2b0dedeb4df225",
        bytes: 3_861_738,
    },
    TrainedDataPin {
        language: "chi_sim",
        package: "tesseract-ocr-chi-sim",
        version: "1:4.1.0-2",
        url: "https://deb.debian.org/debian/pool/main/t/tesseract-lang/tesseract-ocr-chi-sim_4.1.0-2_all.deb",
        deb_sha256: "035f20a3e317343c1b88f6db546225eda9b5857078729c009662e0b3e0fb5d57",
        path_in_package: "./usr/share/tesseract-ocr/5/tessdata/chi_sim.traineddata",
        sha256: "a5fcb6f0db1e1d6d8522f39db4e848f05984669172e584e8d76b6b3141e1f730",
        bytes: 2_469_156,
    },
];

/// The trained data as a model's contract records it.
pub fn pinned_data() -> Vec<TrainedData> {
    TRAINED_DATA.iter().map(|p| TrainedData { language: p.language.into(), sha256: p.sha256.into() }).collect()
}

/// A folder holding every pinned file with its pinned hash.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TessdataDir {
    path: PathBuf,
}

impl TessdataDir {
    /// `dir` if it holds every pinned file with the right hash; the error names the first file that
    /// is missing or different.
    pub fn open(dir: &Path) -> Result<TessdataDir> {
        for pin in &TRAINED_DATA {
            let file = dir.join(pin.file_name());
            let actual = spamlens_fetch::sha256_file(&file)?;
            if actual != pin.sha256 {
                return Err(OcrSetupError::DataMismatch {
                    path: file,
                    what: format!("{} {}", pin.package, pin.version),
                    expected: pin.sha256.into(),
                    actual,
                });
            }
        }
        Ok(TessdataDir { path: dir.to_path_buf() })
    }

    /// The folder.
    pub fn path(&self) -> &Path {
        &self.path
    }

    /// Languages as Tesseract takes them: `eng+rus+chi_sim`.
    pub fn languages(&self) -> String {
        TRAINED_DATA.iter().map(|p| p.language).collect::<Vec<_>>().join("+")
    }

    /// Total size of the files in bytes.
    pub fn bytes(&self) -> u64 {
        TRAINED_DATA.iter().map(|p| p.bytes).sum()
    }
}

/// Where `spamlens-train ocr-data fetch` keeps the files: `<cache>/tessdata/4.1.0-2`.
pub fn cache_path(cache_dir: &Path) -> PathBuf {
    cache_dir.join("tessdata").join(DATA_VERSION)
}

/// Finds a usable folder: `explicit` (then it must be usable: its error is returned), else
/// `$SPAMLENS_TESSDATA`, the cache, and Debian's folders in turn.
pub fn locate(explicit: Option<&Path>, cache_dir: &Path) -> Result<TessdataDir> {
    if let Some(dir) = explicit {
        return TessdataDir::open(dir);
    }
    if let Some(dir) = std::env::var_os(TESSDATA_ENV) {
        return TessdataDir::open(Path::new(&dir));
    }
    let mut candidates = vec![cache_path(cache_dir)];
    candidates.extend(SYSTEM_DIRS.iter().map(PathBuf::from));
    let mut looked_at = Vec::new();
    for dir in &candidates {
        match TessdataDir::open(dir) {
            Ok(found) => return Ok(found),
            Err(e) => looked_at.push(format!("{}: {}", dir.display(), short_reason(&e))),
        }
    }
    Err(OcrSetupError::DataMissing { looked_at: looked_at.join("; ") })
}

fn short_reason(e: &OcrSetupError) -> String {
    match e {
        OcrSetupError::Fetch(spamlens_fetch::FetchError::Io { path, source })
            if source.kind() == std::io::ErrorKind::NotFound =>
        {
            format!("no {}", path.file_name().map(|n| n.to_string_lossy()).unwrap_or_default())
        }
        OcrSetupError::DataMismatch { path, .. } => {
            format!("{} is another version", path.file_name().map(|n| n.to_string_lossy()).unwrap_or_default())
        }
        other => other.to_string(),
    }
}

/// How one file was obtained by [`fetch`].
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum FetchOrigin {
    /// Already in the cache with the pinned hash.
    Cached,
    /// Copied from Debian's own install (same hash).
    CopiedFrom(PathBuf),
    /// Downloaded from Debian's archive now.
    Downloaded,
}

/// Makes the cache folder usable: every pinned file is kept if already there, else copied from
/// Debian's install when the hash matches, else taken out of its package downloaded from Debian's
/// archive (package and file both verified). `progress` is told each download.
pub fn fetch(
    cache_dir: &Path,
    progress: &mut dyn FnMut(&TrainedDataPin) -> Box<dyn DownloadProgress>,
) -> Result<(TessdataDir, Vec<(TrainedDataPin, FetchOrigin)>)> {
    let dir = cache_path(cache_dir);
    std::fs::create_dir_all(&dir).map_err(|e| spamlens_fetch::FetchError::io(&dir, e))?;
    let mut origins = Vec::new();
    for pin in TRAINED_DATA {
        let dest = dir.join(pin.file_name());
        if spamlens_fetch::verify_sha256(&dest, pin.sha256).is_ok() {
            origins.push((pin, FetchOrigin::Cached));
            continue;
        }
        let system = SYSTEM_DIRS
            .iter()
            .map(|d| Path::new(d).join(pin.file_name()))
            .find(|f| spamlens_fetch::verify_sha256(f, pin.sha256).is_ok());
        if let Some(source) = system {
            let bytes = std::fs::read(&source).map_err(|e| spamlens_fetch::FetchError::io(&source, e))?;
            write_verified(&dest, &bytes, &pin)?;
            origins.push((pin, FetchOrigin::CopiedFrom(source)));
            continue;
        }
        let deb_path = cache_dir.join("packages").join(pin.url.rsplit('/').next().unwrap_or(pin.package));
        if spamlens_fetch::verify_sha256(&deb_path, pin.deb_sha256).is_err() {
            let mut bar = progress(&pin);
            spamlens_fetch::download_verified(pin.url, &deb_path, pin.deb_sha256, bar.as_mut())?;
        }
        let deb = std::fs::read(&deb_path).map_err(|e| spamlens_fetch::FetchError::io(&deb_path, e))?;
        let bytes = crate::deb::extract_file(&deb, pin.path_in_package, pin.package)?;
        write_verified(&dest, &bytes, &pin)?;
        origins.push((pin, FetchOrigin::Downloaded));
    }
    Ok((TessdataDir::open(&dir)?, origins))
}

fn write_verified(dest: &Path, bytes: &[u8], pin: &TrainedDataPin) -> Result<()> {
    let actual = spamlens_fetch::sha256_bytes(bytes);
    if actual != pin.sha256 {
        return Err(OcrSetupError::DataMismatch {
            path: dest.to_path_buf(),
            what: format!("{} {}", pin.package, pin.version),
            expected: pin.sha256.into(),
            actual,
        });
    }
    Ok(spamlens_fetch::write_atomically(dest, bytes)?)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn an_incomplete_or_foreign_folder_is_refused_with_the_file_named() {
        let dir = tempfile::tempdir().unwrap();
        let err = TessdataDir::open(dir.path()).unwrap_err().to_string();
        assert!(err.contains("eng.traineddata"), "{err}");
        std::fs::write(dir.path().join("eng.traineddata"), b"not the model").unwrap();
        let err = TessdataDir::open(dir.path()).unwrap_err().to_string();
        assert!(err.contains("eng.traineddata: sha256 is") && err.contains("tesseract-ocr-eng 1:4.1.0-2"), "{err}");
        let err = locate(Some(dir.path()), dir.path()).unwrap_err().to_string();
        assert!(err.contains("eng.traineddata: sha256 is"), "an explicit folder must be usable: {err}");
        let missing = OcrSetupError::DataMissing { looked_at: "x: no eng.traineddata".into() }.to_string();
        assert!(missing.contains("spamlens-train ocr-data fetch") && missing.contains("--no-ocr"), "{missing}");
    }

    #[test]
    fn pins_are_consistent() {
        for pin in TRAINED_DATA {
            assert!(pin.url.ends_with(&format!("{}_4.1.0-2_all.deb", pin.package)), "{}", pin.url);
            assert!(pin.path_in_package.ends_with(&pin.file_name()));
            assert_eq!(pin.sha256.len(), 64);
            assert_eq!(pin.deb_sha256.len(), 64);
        }
        assert_eq!(pinned_data().iter().map(|d| d.language.as_str()).collect::<Vec<_>>(), ["eng", "rus", "chi_sim"]);
    }
}
