//! Image-folder datasets: `ROOT/<label>/.../file`.
//!
//! The first folder level is the label (`ham`, `spam`, `ad`, …); deeper folders form the `subset`
//! (joined with `-` after the label, e.g. `spam/archive/x.gif` → subset `spam-archive`, the
//! convention of the shared manifests; files directly in the label folder have subset = label).
//! Files directly in `ROOT` (READMEs, manifests) and hidden files or folders are not images of the
//! dataset and are skipped.
//!
//! A folder with a `reactions.jsonl` is a feedback log (written by `spamlens feedback`, `spamlens
//! serve --feedback-dir` or a page's store): its images are labelled by the users' reactions, in the
//! Email.cz vocabulary, as the first paper's dataset was (section 5): per image (by sha256) the most
//! common class among its reactions (mark spam → spam, mark ad → ad, unmark spam / mark non-ad →
//! ham), kept when that class has more than half of the image's reactions.

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
    /// What was left out and why (feedback logs: malformed lines, inconsistent or missing images).
    pub problems: Vec<String>,
}

/// The reaction log of a feedback folder.
pub const FEEDBACK_LOG: &str = "reactions.jsonl";

/// Lists the dataset under `root`.
pub fn scan(root: &Path) -> Result<Dataset> {
    let dataset_error = |reason: String| TrainerError::Dataset { path: root.to_path_buf(), reason };
    if !root.is_dir() {
        return Err(dataset_error("not a directory".into()));
    }
    if root.join(FEEDBACK_LOG).is_file() {
        return scan_feedback_log(root);
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

/// The images of a feedback folder, labelled by their reactions (see the module docs).
fn scan_feedback_log(root: &Path) -> Result<Dataset> {
    use spamlens_core::feedback::FeedbackRecord;
    use std::collections::BTreeMap;
    let log = root.join(FEEDBACK_LOG);
    let text = std::fs::read_to_string(&log).map_err(|source| TrainerError::Io { path: log.clone(), source })?;
    let mut dataset = Dataset::default();
    // sha256 → (stored file, class → reactions)
    let mut images: BTreeMap<String, (Option<String>, BTreeMap<&'static str, usize>)> = BTreeMap::new();
    for (number, line) in text.lines().enumerate() {
        if line.trim().is_empty() {
            continue;
        }
        let record: FeedbackRecord = match serde_json::from_str(line) {
            Ok(record) => record,
            Err(e) => {
                dataset.problems.push(format!("{}:{}: not a reaction record: {e}", log.display(), number + 1));
                continue;
            }
        };
        for image in record.images {
            let entry = images.entry(image.sha256).or_default();
            if entry.0.is_none() {
                entry.0 = image.file;
            }
            *entry.1.entry(record.reaction.class()).or_default() += 1;
        }
    }
    for (sha256, (file, classes)) in images {
        let total: usize = classes.values().sum();
        let Some((&class, &count)) = classes.iter().max_by_key(|(_, n)| **n) else { continue };
        if count * 2 <= total {
            dataset.problems.push(format!("image {sha256}: inconsistent reactions {classes:?}; left out"));
            continue;
        }
        let Some(file) = file else {
            dataset.problems.push(format!("image {sha256}: the log keeps no bytes for it; left out"));
            continue;
        };
        let path = root.join(&file);
        if file.contains("..") || !path.is_file() {
            dataset.problems.push(format!("image {sha256}: {} is missing; left out", path.display()));
            continue;
        }
        dataset.entries.push(DatasetEntry {
            path,
            relative: file,
            label: class.to_owned(),
            subset: format!("feedback-{class}"),
        });
    }
    if dataset.entries.is_empty() {
        return Err(TrainerError::Dataset {
            path: root.to_path_buf(),
            reason: format!(
                "the feedback log {} labels no image{}",
                log.display(),
                dataset.problems.first().map(|p| format!(" ({p})")).unwrap_or_default()
            ),
        });
    }
    Ok(dataset)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_feedback_log_labels_images_by_their_reactions() {
        let dir = tempfile::tempdir().unwrap();
        let root = dir.path();
        std::fs::create_dir_all(root.join("images")).unwrap();
        for name in ["a", "b", "c"] {
            std::fs::write(root.join("images").join(format!("{name}.png")), b"x").unwrap();
        }
        let record = |reaction: &str, images: &[&str]| {
            let images: Vec<String> = images
                .iter()
                .map(|n| format!(r#"{{"sha256":"{n}","name":"{n}.png","file":"images/{n}.png"}}"#))
                .collect();
            format!(
                r#"{{"time_unix":1,"message":"m","label":"spam","reaction":"{reaction}","images":[{}],"text_score_before":0.1,"text_score_after":0.9}}"#,
                images.join(",")
            )
        };
        let log = [
            record("USER_MESSAGE_MARK_SPAM", &["a", "b"]),
            record("USER_MESSAGE_MARK_SPAM", &["a"]),
            record("USER_MESSAGE_UNMARK_SPAM", &["b", "c"]),
            "{ not json".to_owned(),
            record("USER_MESSAGE_MARK_NONAD", &["c", "missing"]),
        ]
        .join("\n");
        std::fs::write(root.join(FEEDBACK_LOG), log).unwrap();
        let dataset = scan(root).unwrap();
        let got: Vec<(&str, &str)> = dataset.entries.iter().map(|e| (e.relative.as_str(), e.label.as_str())).collect();
        assert_eq!(got, vec![("images/a.png", "spam"), ("images/c.png", "ham")]);
        assert_eq!(dataset.problems.len(), 3, "{:?}", dataset.problems);
        assert!(dataset.problems[0].contains("reactions.jsonl:4: not a reaction record"), "{:?}", dataset.problems);
        assert!(dataset.problems.iter().any(|p| p.contains("image b: inconsistent")), "{:?}", dataset.problems);
        assert!(
            dataset.problems.iter().any(|p| p.contains("image missing") && p.contains("is missing")),
            "{:?}",
            dataset.problems
        );
    }

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
