//! What a training run leaves behind besides the model: `report.json` (options, data, class
//! weights, per-epoch history, held-out metrics), `report.md` (the same for people), and PNG plots.

pub mod plots;

use std::path::{Path, PathBuf};

use serde::Serialize;

use crate::error::{Result, TrainerError};
use crate::head::{EpochRecord, TrainOptions};
use crate::metrics::MetricsSummary;

/// The data a head was trained and tested on.
#[derive(Debug, Clone, Serialize)]
pub struct DataSummary {
    /// Files and filters.
    pub description: String,
    /// Feature source (backbone sha256 or Email.cz).
    pub feature_source: String,
    /// Class names in output order.
    pub classes: Vec<String>,
    /// Training rows per class.
    pub train_counts: Vec<usize>,
    /// Test rows per class.
    pub test_counts: Vec<usize>,
    /// How the test side was chosen.
    pub split: String,
}

/// Everything about one training run.
#[derive(Debug, Clone, Serialize)]
pub struct TrainingReport {
    /// spamlens version.
    pub spamlens_version: String,
    /// When the report was written.
    pub created: String,
    /// Hyper-parameters.
    pub options: TrainOptions,
    /// The head's shape.
    pub head: String,
    /// Where the training ran.
    pub device: String,
    /// The data.
    pub data: DataSummary,
    /// Loss weight per class.
    pub class_weights: Vec<f32>,
    /// Training throughput (rows per second, optimiser steps only).
    pub samples_per_second: f64,
    /// Per-epoch history.
    pub history: Vec<EpochRecord>,
    /// Held-out metrics of the final head.
    pub test_metrics: Option<MetricsSummary>,
    /// Files written next to the report.
    pub files: Vec<String>,
}

impl TrainingReport {
    /// Markdown for people: the run, the data, the metrics table and the last epochs.
    pub fn markdown(&self) -> String {
        let mut md =
            format!("# spamlens head training report\n\n- spamlens {} · {}\n", self.spamlens_version, self.created);
        md += &format!("- head: {} · device: {}\n", self.head, self.device);
        md += &format!(
            "- epochs {} · batch {} · Adam lr {} · class weights {} ({}) · seed {}\n",
            self.options.epochs,
            self.options.batch_size,
            self.options.learning_rate,
            if self.options.class_weights { "on" } else { "off" },
            self.class_weights.iter().map(|w| format!("{w:.3}")).collect::<Vec<_>>().join(", "),
            self.options.seed
        );
        md += &format!("- training throughput: {:.0} rows/s\n\n## Data\n\n", self.samples_per_second);
        md += &format!(
            "{}\n\nFeatures: {}. Split: {}.\n\n",
            self.data.description, self.data.feature_source, self.data.split
        );
        md += "| class | train | test |\n|---|---:|---:|\n";
        for (i, class) in self.data.classes.iter().enumerate() {
            md += &format!("| {class} | {} | {} |\n", self.data.train_counts[i], self.data.test_counts[i]);
        }
        if let Some(m) = &self.test_metrics {
            md += "\n## Held-out metrics\n\n| class | precision | recall | F1 | support |\n|---|---:|---:|---:|---:|\n";
            for c in &m.classes {
                md +=
                    &format!("| {} | {:.4} | {:.4} | {:.4} | {} |\n", c.label, c.precision, c.recall, c.f1, c.support);
            }
            md += &format!("\nWeighted F1 **{:.4}**, accuracy {:.4}", m.weighted_f1, m.accuracy);
            if let Some(fpr) = m.ham_to_spam_false_positive_rate {
                md += &format!(", ham→spam false-positive rate {:.4}", fpr);
            }
            md += ".\n\nConfusion matrix (rows actual, columns predicted):\n\n| |";
            for l in &m.confusion.labels {
                md += &format!(" {l} |");
            }
            md += "\n|---|";
            md += &"---:|".repeat(m.confusion.labels.len());
            md += "\n";
            for (l, row) in m.confusion.labels.iter().zip(&m.confusion.counts) {
                md += &format!("| **{l}** |");
                for c in row {
                    md += &format!(" {c} |");
                }
                md += "\n";
            }
        }
        md += "\n## Epochs\n\n| epoch | train loss | test loss | test weighted F1 | seconds |\n|---:|---:|---:|---:|---:|\n";
        let fmt = |v: Option<f64>| v.map_or("–".to_owned(), |v| format!("{v:.4}"));
        let n = self.history.len();
        for r in
            self.history.iter().enumerate().filter(|(i, _)| *i < 5 || *i + 5 >= n || (i + 1) % 10 == 0).map(|(_, r)| r)
        {
            md += &format!(
                "| {} | {:.4} | {} | {} | {:.2} |\n",
                r.epoch,
                r.train_loss,
                fmt(r.test_loss),
                fmt(r.test_weighted_f1),
                r.train_seconds
            );
        }
        if !self.files.is_empty() {
            md += &format!("\nFiles: {}.\n", self.files.join(", "));
        }
        md
    }

    /// Writes `report.json` and `report.md` into `dir`; returns their paths.
    pub fn write(&self, dir: &Path) -> Result<Vec<PathBuf>> {
        let json = serde_json::to_vec_pretty(self)
            .map_err(|e| TrainerError::Metrics(format!("serialising the report: {e}")))?;
        let json_path = dir.join("report.json");
        spamlens_fetch::write_atomically(&json_path, &json)?;
        let md_path = dir.join("report.md");
        spamlens_fetch::write_atomically(&md_path, self.markdown().as_bytes())?;
        Ok(vec![json_path, md_path])
    }
}
