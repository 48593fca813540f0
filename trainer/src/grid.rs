//! Table 7 of the paper: the head trained and tested on every combination of the reaction filters
//! (more than N reactions × consistency at least C), with the sample counts of Table 6.
//!
//! The file is read once, keeping every labelled image with its reaction count and consistency;
//! each cell then selects its rows from those statistics, which is what the filters would have
//! kept (both filters only look at the same two numbers per image; see the test below).

use std::path::Path;

use serde::Serialize;

use crate::emailcz::{IngestOptions, IngestProgress};
use crate::error::Result;
use crate::head::{LabelledFeatures, Split, TrainDevice, TrainOptions, TrainProgress, stratified_split};

/// Table 7's rows: keep images with more than N reactions.
pub const MIN_REACTIONS: [usize; 9] = [0, 1, 2, 3, 4, 5, 7, 10, 20];
/// Table 7's columns: keep images whose majority class has at least this share.
pub const MIN_CONSISTENCY: [f64; 4] = [0.0, 0.5, 0.6, 0.75];
/// Cells with fewer rows than this are counted but not trained.
pub const MIN_CELL_ROWS: usize = 20;

/// One cell of the grid.
#[derive(Debug, Clone, Serialize)]
pub struct GridCell {
    /// More than this many reactions.
    pub min_reactions: usize,
    /// At least this consistency.
    pub min_consistency: f64,
    /// Images kept (Table 6).
    pub samples: usize,
    /// Images per class (class order of the grid).
    pub per_class: Vec<usize>,
    /// Weighted F1 on the cell's held-out part (Table 7); `None` when the cell was too small.
    pub weighted_f1: Option<f64>,
}

/// The whole grid.
#[derive(Debug, Clone, Serialize)]
pub struct Grid {
    /// Class names.
    pub classes: Vec<String>,
    /// Cells, row-major (reactions outer, consistency inner).
    pub cells: Vec<GridCell>,
    /// Test fraction used in every cell.
    pub test_fraction: f64,
}

/// Rows of `data` with more than `min_reactions` reactions and consistency ≥ `min_consistency`.
pub fn select(reactions: &[u32], consistency: &[f32], min_reactions: usize, min_consistency: f64) -> Vec<usize> {
    (0..reactions.len())
        .filter(|&i| reactions[i] as usize > min_reactions && f64::from(consistency[i]) >= min_consistency - 1e-6)
        .collect()
}

/// Runs the grid on an Email.cz-format file. `ingest.filter` supplies the mode and the user rule;
/// its thresholds are ignored (the grid sets them per cell). `on_cell` sees each cell as it finishes.
#[allow(clippy::too_many_arguments)]
pub fn run_grid(
    path: &Path,
    ingest: &IngestOptions,
    test_fraction: f64,
    seed: u64,
    options: &TrainOptions,
    device: TrainDevice,
    read_progress: &dyn IngestProgress,
    train_progress: &mut dyn TrainProgress,
    on_cell: &mut dyn FnMut(&GridCell),
) -> Result<Grid> {
    let mut all = *ingest;
    all.filter.min_reactions = 0;
    all.filter.min_consistency = 0.0;
    let (mut dataset, _) = crate::emailcz::ingest(path, &all, read_progress)?;
    let reactions = std::mem::take(&mut dataset.reactions);
    let consistency = std::mem::take(&mut dataset.consistency);
    let data = LabelledFeatures::from_emailcz(dataset, path, "grid")?;
    let mut cells = Vec::new();
    for &min_reactions in &MIN_REACTIONS {
        for &min_consistency in &MIN_CONSISTENCY {
            let rows = select(&reactions, &consistency, min_reactions, min_consistency);
            let per_class = data.class_counts(&rows);
            let trainable = rows.len() >= MIN_CELL_ROWS && per_class.iter().filter(|&&c| c >= 2).count() >= 2;
            let weighted_f1 = if trainable {
                let labels: Vec<usize> = rows.iter().map(|&i| data.labels[i]).collect();
                let local = stratified_split(&labels, data.classes.len(), test_fraction, seed)?;
                let split = Split {
                    train: local.train.iter().map(|&i| rows[i]).collect(),
                    test: local.test.iter().map(|&i| rows[i]).collect(),
                };
                let outcome = crate::head::train(&data, &split, options, device, train_progress)?;
                outcome.confusion.map(|c| c.weighted_f1())
            } else {
                None
            };
            let cell = GridCell { min_reactions, min_consistency, samples: rows.len(), per_class, weighted_f1 };
            on_cell(&cell);
            cells.push(cell);
        }
    }
    Ok(Grid { classes: data.classes.clone(), cells, test_fraction })
}

impl Grid {
    /// Tables 6 and 7 as Markdown.
    pub fn markdown(&self) -> String {
        let header = |title: &str| {
            let mut s = format!("{title}\n\n| reactions |");
            for c in MIN_CONSISTENCY {
                s += &format!(" consistency ≥ {c} |");
            }
            s += "\n|---|";
            s += &"---:|".repeat(MIN_CONSISTENCY.len());
            s + "\n"
        };
        let mut md = header("### Samples per filter (Table 6)");
        for row in self.cells.chunks(MIN_CONSISTENCY.len()) {
            md += &format!("| >{} |", row[0].min_reactions);
            for cell in row {
                md += &format!(" {} |", cell.samples);
            }
            md += "\n";
        }
        md += "\n";
        md += &header(&format!(
            "### Weighted F1 per filter (Table 7; {:.0}% of each cell held out)",
            100.0 * self.test_fraction
        ));
        for row in self.cells.chunks(MIN_CONSISTENCY.len()) {
            md += &format!("| >{} |", row[0].min_reactions);
            for cell in row {
                md += &cell.weighted_f1.map_or(" – |".to_owned(), |f| format!(" {f:.3} |"));
            }
            md += "\n";
        }
        md
    }
}
