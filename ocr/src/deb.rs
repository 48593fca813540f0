//! Reading one file out of a Debian package: an `ar` archive whose `data.tar.xz` member holds the
//! installed files.

use std::io::Read;

use crate::error::{OcrSetupError, Result};

/// Largest file taken out of a package (the biggest trained data file is 4.1 MB).
pub const MAX_MEMBER_BYTES: u64 = 64 * 1024 * 1024;

/// The bytes of `path` (as listed in the package, e.g. `./usr/share/…/eng.traineddata`) inside
/// the package bytes `deb`; `package` names it in errors.
pub fn extract_file(deb: &[u8], path: &str, package: &str) -> Result<Vec<u8>> {
    let bad = |reason: String| OcrSetupError::Package { package: package.to_owned(), reason };
    let mut archive = ar::Archive::new(deb);
    let mut data = None;
    while let Some(entry) = archive.next_entry() {
        let mut entry = entry.map_err(|e| bad(format!("not a Debian package (ar: {e})")))?;
        let name = String::from_utf8_lossy(entry.header().identifier()).into_owned();
        if name.starts_with("data.tar") {
            if name != "data.tar.xz" {
                return Err(bad(format!("its data member is {name}; only data.tar.xz is read")));
            }
            let mut compressed = Vec::new();
            entry
                .by_ref()
                .take(MAX_MEMBER_BYTES + 1)
                .read_to_end(&mut compressed)
                .map_err(|e| bad(format!("reading {name}: {e}")))?;
            data = Some(compressed);
            break;
        }
    }
    let compressed = data.ok_or_else(|| bad("no data.tar.xz member".into()))?;
    let mut tar_bytes = Vec::new();
    lzma_rs::xz_decompress(&mut std::io::Cursor::new(compressed), &mut tar_bytes)
        .map_err(|e| bad(format!("data.tar.xz does not decompress: {e}")))?;
    let mut tar = tar::Archive::new(std::io::Cursor::new(tar_bytes));
    let wanted = path.trim_start_matches("./");
    for entry in tar.entries().map_err(|e| bad(format!("data.tar: {e}")))? {
        let mut entry = entry.map_err(|e| bad(format!("data.tar: {e}")))?;
        let entry_path = entry.path().map_err(|e| bad(format!("data.tar: {e}")))?.to_string_lossy().into_owned();
        if entry_path.trim_start_matches("./") == wanted {
            if entry.size() > MAX_MEMBER_BYTES {
                return Err(bad(format!("{path} is {} bytes, over {MAX_MEMBER_BYTES}", entry.size())));
            }
            let mut bytes = Vec::with_capacity(entry.size() as usize);
            entry.read_to_end(&mut bytes).map_err(|e| bad(format!("reading {path}: {e}")))?;
            return Ok(bytes);
        }
    }
    Err(bad(format!("{path} is not in the package")))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn tar_xz(files: &[(&str, &[u8])]) -> Vec<u8> {
        let mut builder = tar::Builder::new(Vec::new());
        for (path, bytes) in files {
            let mut header = tar::Header::new_gnu();
            header.set_size(bytes.len() as u64);
            header.set_mode(0o644);
            header.set_cksum();
            builder.append_data(&mut header, path, *bytes).unwrap();
        }
        let tar = builder.into_inner().unwrap();
        let mut xz = Vec::new();
        lzma_rs::xz_compress(&mut std::io::Cursor::new(tar), &mut xz).unwrap();
        xz
    }

    fn deb(members: &[(&str, Vec<u8>)]) -> Vec<u8> {
        let mut builder = ar::Builder::new(Vec::new());
        for (name, bytes) in members {
            let header = ar::Header::new(name.as_bytes().to_vec(), bytes.len() as u64);
            builder.append(&header, bytes.as_slice()).unwrap();
        }
        builder.into_inner().unwrap()
    }

    #[test]
    fn finds_the_file_and_names_what_is_wrong() {
        let package = deb(&[
            ("debian-binary", b"2.0\n".to_vec()),
            ("control.tar.xz", tar_xz(&[("./control", b"Package: x")])),
            ("data.tar.xz", tar_xz(&[("./usr/share/x/eng.traineddata", b"weights")])),
        ]);
        assert_eq!(extract_file(&package, "./usr/share/x/eng.traineddata", "x.deb").unwrap(), b"weights");
        let err = extract_file(&package, "./usr/share/x/rus.traineddata", "x.deb").unwrap_err().to_string();
        assert_eq!(err, "x.deb: ./usr/share/x/rus.traineddata is not in the package");
        let err = extract_file(b"<html>not found</html>", "a", "y.deb").unwrap_err().to_string();
        assert!(err.starts_with("y.deb: not a Debian package"), "{err}");
        let gz = deb(&[("data.tar.gz", vec![1, 2, 3])]);
        assert!(extract_file(&gz, "a", "z.deb").unwrap_err().to_string().contains("only data.tar.xz"));
        let broken = deb(&[("data.tar.xz", vec![1, 2, 3])]);
        assert!(extract_file(&broken, "a", "w.deb").unwrap_err().to_string().contains("does not decompress"));
    }
}
