//! Image-folder datasets: `ROOT/<label>/.../file`.
//!
//! The first folder level is the label (`ham`, `spam`, `ad`, …); deeper folders form the `subset`
//! (joined with `-` after the label, e.g. `spam/archive/x.gif` → subset `spam-archive`, the
//! convention of the shared manifests; files directly in the label folder have subset = label).
//! Files directly in `ROOT` (READMEs, manifests) and hidden files or folders are not images of the
//! dataset and are skipped.

use std::path::{Path, PathBuf};

use crate::error::{Result, TrainerError};

/// One image file of a dataset.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct DatasetEntry {
    /// Full path on disk.
    pub path: PathBuf,
    /// Path relative to the dataset root with `/` separators (stable across machines).
    pub relative: String,
    /// The first folder level.
    pub label: String,
    /// Label plus deeper folders, joined with `-`.
    pub subset: String,
}

/// The files of a dataset, sorted by relative path.
#[derive(Debug, Clone, Default)]
pub struct Dataset {
    /// The image files.
    pub entries: Vec<DatasetEntry>,
    /// Files directly in the root (not labelled), skipped.
    pub skipped_root_files: usize,
}

/// Lists the dataset under `root`.
pub fn scan(root: &Path) -> Result<Dataset> {
    let dataset_error = |reason: String| TrainerError::Dataset { path: root.to_path_buf(), reason };
    if !root.is_dir() {
        return Err(dataset_error("not a directory".into()));
    }
    let mut dataset = Dataset::default();
    let walker = walkdir::WalkDir::new(root)
        .follow_links(true)
        .sort_by_file_name()
        .into_iter()
        .filter_entry(|e| e.depth() == 0 || !e.file_name().to_string_lossy().starts_with('.'));
    for entry in walker {
        let entry = entry.map_err(|e| dataset_error(format!("cannot list: {e}")))?;
        if !entry.file_type().is_file() {
            continue;
        }
        let relative_path = entry.path().strip_prefix(root).unwrap_or(entry.path());
        let parts: Vec<String> =
            relative_path.components().map(|c| c.as_os_str().to_string_lossy().into_owned()).collect();
        let [label, middle @ .., _file] = parts.as_slice() else {
            dataset.skipped_root_files += 1;
            continue;
        };
        let subset =
            std::iter::once(label.as_str()).chain(middle.iter().map(String::as_str)).collect::<Vec<_>>().join("-");
        dataset.entries.push(DatasetEntry {
            path: entry.path().to_path_buf(),
            relative: parts.join("/"),
            label: label.clone(),
            subset,
        });
    }
    if dataset.entries.is_empty() {
        return Err(dataset_error(
            "no labelled images found (expected ROOT/<label>/<image files>, e.g. ROOT/ham/a.jpg)".into(),
        ));
    }
    Ok(dataset)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn labels_and_subsets_follow_the_folder_layout() {
        let dir = tempfile::tempdir().unwrap();
        let root = dir.path();
        for p in ["ham/a.jpg", "spam/archive/b.gif", "spam/personal/x/c.png", "README.md", "ham/.hidden", ".git/x/y"] {
            let path = root.join(p);
            std::fs::create_dir_all(path.parent().unwrap()).unwrap();
            std::fs::write(path, b"x").unwrap();
        }
        let dataset = scan(root).unwrap();
        let got: Vec<(&str, &str, &str)> =
            dataset.entries.iter().map(|e| (e.relative.as_str(), e.label.as_str(), e.subset.as_str())).collect();
        assert_eq!(
            got,
            vec![
                ("ham/a.jpg", "ham", "ham"),
                ("spam/archive/b.gif", "spam", "spam-archive"),
                ("spam/personal/x/c.png", "spam", "spam-personal-x"),
            ]
        );
        assert_eq!(dataset.skipped_root_files, 1);
    }

    #[test]
    fn empty_or_missing_roots_are_errors() {
        let dir = tempfile::tempdir().unwrap();
        assert!(scan(dir.path()).unwrap_err().to_string().contains("no labelled images"));
        assert!(scan(&dir.path().join("nope")).unwrap_err().to_string().contains("not a directory"));
    }
}
