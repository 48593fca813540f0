//! Streaming, parallel ingest of the Email.cz image spam dataset v1 (`.json` or `.json.gz`).
//!
//! Each line is `[[[reactions of user 1], [reactions of user 2], ...], [2048 floats]]`. One thread
//! reads (and gunzips) lines in chunks, worker threads parse and filter them, and the calling
//! thread reassembles the results in file order, so the text is never held in memory and the
//! output is deterministic. Malformed lines are counted and the first 20 reported with their line
//! numbers; with `strict` the first one is fatal.

use std::collections::BTreeMap;
use std::fs::File;
use std::io::{BufRead, BufReader, Read};
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::Instant;

use super::filter::{DropReason, FilterOptions, ImageClass, Reaction, Verdict, label_image};
use crate::error::{Result, TrainerError};

/// Width of the dataset's feature vectors.
pub const EMAILCZ_FEATURE_DIM: usize = 2048;
/// How many malformed lines are reported individually.
pub const REPORTED_MALFORMED: usize = 20;
const CHUNK_LINES: usize = 256;

/// Options of [`ingest`].
#[derive(Debug, Clone, Copy)]
pub struct IngestOptions {
    /// The label filters.
    pub filter: FilterOptions,
    /// Fail on the first malformed line instead of skipping it.
    pub strict: bool,
    /// Stop after this many lines.
    pub max_lines: Option<usize>,
    /// Parsing threads.
    pub threads: usize,
}

impl Default for IngestOptions {
    fn default() -> Self {
        Self {
            filter: FilterOptions::default(),
            strict: false,
            max_lines: None,
            threads: std::thread::available_parallelism().map(|n| n.get()).unwrap_or(2),
        }
    }
}

/// The kept images: labels and reaction statistics, features in one flat row-major buffer.
#[derive(Debug, Clone, Default)]
pub struct EmailCzDataset {
    /// `labels.len() × EMAILCZ_FEATURE_DIM` floats.
    pub features: Vec<f32>,
    /// One label per kept image.
    pub labels: Vec<ImageClass>,
    /// Valid reactions per kept image.
    pub reactions: Vec<u32>,
    /// Consistency (eq. 1) per kept image.
    pub consistency: Vec<f32>,
    /// 1-based line number of each kept image in the file.
    pub lines: Vec<u64>,
}

impl EmailCzDataset {
    /// Number of kept images.
    pub fn len(&self) -> usize {
        self.labels.len()
    }
    /// Whether no image was kept.
    pub fn is_empty(&self) -> bool {
        self.labels.is_empty()
    }
    /// Features of image `index`.
    pub fn row(&self, index: usize) -> Option<&[f32]> {
        self.features.get(index * EMAILCZ_FEATURE_DIM..(index + 1) * EMAILCZ_FEATURE_DIM)
    }
}

/// What [`ingest`] saw.
#[derive(Debug, Clone, Default)]
pub struct IngestReport {
    /// Lines read (blank lines excluded).
    pub lines: u64,
    /// Images kept.
    pub kept: u64,
    /// Images dropped by the filters, by reason.
    pub dropped: BTreeMap<DropReason, u64>,
    /// Kept images per class.
    pub per_class: BTreeMap<ImageClass, u64>,
    /// Malformed lines skipped.
    pub malformed: u64,
    /// The first [`REPORTED_MALFORMED`] malformed lines: (line number, problem).
    pub first_malformed: Vec<(u64, String)>,
    /// Bytes read from the file (compressed size for `.gz`).
    pub bytes: u64,
    /// Wall time.
    pub seconds: f64,
}

/// Progress of a long ingest, in bytes of the file.
pub trait IngestProgress: Sync {
    /// The file has `total` bytes.
    fn start(&self, total: u64);
    /// `done` bytes have been read so far.
    fn advance(&self, done: u64);
}

/// An [`IngestProgress`] that shows nothing.
pub struct NoIngestProgress;

impl IngestProgress for NoIngestProgress {
    fn start(&self, _total: u64) {}
    fn advance(&self, _done: u64) {}
}

/// One line's parse: a verdict and its features, or what is wrong with it.
type LineOutcome = std::result::Result<(Verdict, Vec<f32>), String>;

/// Parses and labels one line.
pub fn parse_line(line: &str, filter: &FilterOptions) -> LineOutcome {
    let (users, features): (Vec<Vec<&str>>, Vec<f32>) =
        serde_json::from_str(line).map_err(|e| format!("not [[[reactions], ...], [floats]]: {e}"))?;
    if features.len() != EMAILCZ_FEATURE_DIM {
        return Err(format!("{} feature values, expected {EMAILCZ_FEATURE_DIM}", features.len()));
    }
    if let Some(bad) = features.iter().position(|v| !v.is_finite()) {
        return Err(format!("feature {bad} is not a finite number"));
    }
    let users: Vec<Vec<Reaction>> = users
        .iter()
        .map(|user| {
            user.iter()
                .map(|text| Reaction::parse(text).ok_or_else(|| format!("unknown reaction '{text}'")))
                .collect::<std::result::Result<Vec<_>, _>>()
        })
        .collect::<std::result::Result<_, _>>()?;
    Ok((label_image(&users, filter), features))
}

struct Chunk {
    index: usize,
    first_line: u64,
    lines: Vec<String>,
}

struct ParsedChunk {
    index: usize,
    first_line: u64,
    outcomes: Vec<LineOutcome>,
}

/// Counts bytes read from the file for progress.
struct CountingReader<R> {
    inner: R,
    count: std::sync::Arc<AtomicU64>,
}

impl<R: Read> Read for CountingReader<R> {
    fn read(&mut self, buf: &mut [u8]) -> std::io::Result<usize> {
        let n = self.inner.read(buf)?;
        self.count.fetch_add(n as u64, Ordering::Relaxed);
        Ok(n)
    }
}

fn open_lines(path: &Path, count: std::sync::Arc<AtomicU64>) -> Result<Box<dyn BufRead + Send>> {
    let mut file = File::open(path).map_err(|e| TrainerError::io(path, e))?;
    let mut magic = [0u8; 2];
    let gzipped = file.read(&mut magic).map_err(|e| TrainerError::io(path, e))? == 2 && magic == [0x1f, 0x8b];
    drop(file);
    let file = File::open(path).map_err(|e| TrainerError::io(path, e))?;
    let counted = CountingReader { inner: file, count };
    Ok(if gzipped {
        Box::new(BufReader::with_capacity(1 << 20, flate2::read::MultiGzDecoder::new(BufReader::new(counted))))
    } else {
        Box::new(BufReader::with_capacity(1 << 20, counted))
    })
}

/// Reads, parses and filters the file at `path` (see the module docs).
pub fn ingest(
    path: &Path,
    options: &IngestOptions,
    progress: &dyn IngestProgress,
) -> Result<(EmailCzDataset, IngestReport)> {
    let started = Instant::now();
    let total = std::fs::metadata(path).map_err(|e| TrainerError::io(path, e))?.len();
    progress.start(total);
    let counter = std::sync::Arc::new(AtomicU64::new(0));
    let mut reader = open_lines(path, counter.clone())?;
    let threads = options.threads.max(1);
    let (chunk_tx, chunk_rx) = crossbeam_channel::bounded::<Chunk>(threads * 2);
    let (done_tx, done_rx) = crossbeam_channel::bounded::<ParsedChunk>(threads * 2);
    let filter = options.filter;
    let max_lines = options.max_lines.map(|n| n as u64);
    let path_buf: PathBuf = path.to_path_buf();

    let mut dataset = EmailCzDataset::default();
    let mut report = IngestReport::default();
    let mut fatal: Option<TrainerError> = None;

    std::thread::scope(|scope| {
        // Reader: lines → chunks.
        let reader_handle = scope.spawn(move || -> Result<()> {
            let mut index = 0;
            let mut line_no = 0u64;
            let mut lines = Vec::with_capacity(CHUNK_LINES);
            let mut first_line = 1;
            loop {
                if max_lines.is_some_and(|max| line_no >= max) {
                    break;
                }
                let mut line = String::new();
                let n = reader.read_line(&mut line).map_err(|e| TrainerError::Dataset {
                    path: path_buf.clone(),
                    reason: format!("line {}: {e}", line_no + 1),
                })?;
                if n == 0 {
                    break;
                }
                line_no += 1;
                if lines.is_empty() {
                    first_line = line_no;
                }
                lines.push(line);
                if lines.len() == CHUNK_LINES {
                    let chunk = Chunk { index, first_line, lines: std::mem::take(&mut lines) };
                    if chunk_tx.send(chunk).is_err() {
                        return Ok(()); // the collector stopped (strict mode)
                    }
                    index += 1;
                }
            }
            if !lines.is_empty() {
                let _ = chunk_tx.send(Chunk { index, first_line, lines });
            }
            Ok(())
        });
        // Workers: chunks → parsed chunks.
        for _ in 0..threads {
            let chunk_rx = chunk_rx.clone();
            let done_tx = done_tx.clone();
            scope.spawn(move || {
                for chunk in chunk_rx.iter() {
                    let outcomes = chunk
                        .lines
                        .iter()
                        .map(|line| {
                            let line = line.trim_end_matches(['\n', '\r']);
                            if line.trim().is_empty() { Err(String::new()) } else { parse_line(line, &filter) }
                        })
                        .collect();
                    if done_tx.send(ParsedChunk { index: chunk.index, first_line: chunk.first_line, outcomes }).is_err()
                    {
                        return;
                    }
                }
            });
        }
        drop(done_tx);
        drop(chunk_rx);

        // Collector: reassemble in file order.
        let mut pending: BTreeMap<usize, ParsedChunk> = BTreeMap::new();
        let mut next = 0;
        'collect: for parsed in done_rx.iter() {
            pending.insert(parsed.index, parsed);
            while let Some(chunk) = pending.remove(&next) {
                next += 1;
                for (offset, outcome) in chunk.outcomes.into_iter().enumerate() {
                    let line_no = chunk.first_line + offset as u64;
                    match outcome {
                        Err(problem) if problem.is_empty() => {} // blank line
                        Err(problem) => {
                            report.lines += 1;
                            report.malformed += 1;
                            if options.strict {
                                fatal = Some(TrainerError::Dataset {
                                    path: path.to_path_buf(),
                                    reason: format!("line {line_no}: {problem} (--strict)"),
                                });
                                break 'collect;
                            }
                            if report.first_malformed.len() < REPORTED_MALFORMED {
                                report.first_malformed.push((line_no, problem));
                            }
                        }
                        Ok((Verdict::Drop(reason), _)) => {
                            report.lines += 1;
                            *report.dropped.entry(reason).or_default() += 1;
                        }
                        Ok((Verdict::Keep { class, reactions, consistency }, features)) => {
                            report.lines += 1;
                            report.kept += 1;
                            *report.per_class.entry(class).or_default() += 1;
                            dataset.features.extend_from_slice(&features);
                            dataset.labels.push(class);
                            dataset.reactions.push(u32::try_from(reactions).unwrap_or(u32::MAX));
                            dataset.consistency.push(consistency as f32);
                            dataset.lines.push(line_no);
                        }
                    }
                }
                progress.advance(counter.load(Ordering::Relaxed));
            }
        }
        drop(done_rx);
        match reader_handle.join() {
            Ok(Ok(())) => {}
            Ok(Err(e)) => {
                fatal.get_or_insert(e);
            }
            Err(_) => {
                fatal.get_or_insert(TrainerError::Dataset {
                    path: path.to_path_buf(),
                    reason: "the reading thread panicked".into(),
                });
            }
        }
    });
    if let Some(e) = fatal {
        return Err(e);
    }
    report.bytes = counter.load(Ordering::Relaxed);
    report.seconds = started.elapsed().as_secs_f64();
    Ok((dataset, report))
}
