//! Classification metrics: confusion matrix, per-class precision/recall/F1, weighted F1 (the
//! paper's headline number, computed as scikit-learn's `average="weighted"`), and the
//! ham→spam false-positive rate that matters most to a mail operator.

use serde::Serialize;

use crate::error::{Result, TrainerError};

/// Counts of (actual, predicted) pairs over a fixed, ordered label set.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct ConfusionMatrix {
    /// Label names; indices into this list are the class ids.
    pub labels: Vec<String>,
    /// `counts[actual][predicted]`.
    pub counts: Vec<Vec<u64>>,
}

/// Precision, recall and F1 of one class.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct ClassMetrics {
    /// Class name.
    pub label: String,
    /// TP / (TP + FP); 0 when nothing was predicted as this class.
    pub precision: f64,
    /// TP / (TP + FN); 0 when the class has no samples.
    pub recall: f64,
    /// Harmonic mean of precision and recall; 0 when both are 0.
    pub f1: f64,
    /// Samples whose actual class is this one.
    pub support: u64,
}

/// Everything a report prints, in one serialisable value.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct MetricsSummary {
    /// Per-class metrics in label order.
    pub classes: Vec<ClassMetrics>,
    /// Support-weighted mean F1.
    pub weighted_f1: f64,
    /// Share of correct predictions.
    pub accuracy: f64,
    /// Share of actual ham predicted as spam, when both labels exist.
    pub ham_to_spam_false_positive_rate: Option<f64>,
    /// The matrix itself.
    pub confusion: ConfusionMatrix,
}

impl ConfusionMatrix {
    /// An empty matrix over `labels`.
    pub fn new(labels: &[&str]) -> Self {
        let n = labels.len();
        Self { labels: labels.iter().map(|l| (*l).to_owned()).collect(), counts: vec![vec![0; n]; n] }
    }

    /// Counts the pairs `(actual[i], predicted[i])`; ids must be below the number of labels.
    pub fn from_predictions(labels: &[&str], actual: &[usize], predicted: &[usize]) -> Result<Self> {
        if actual.len() != predicted.len() {
            return Err(TrainerError::Metrics(format!(
                "{} actual labels but {} predictions",
                actual.len(),
                predicted.len()
            )));
        }
        let mut matrix = Self::new(labels);
        for (&a, &p) in actual.iter().zip(predicted) {
            matrix.add(a, p)?;
        }
        Ok(matrix)
    }

    /// Counts one pair.
    pub fn add(&mut self, actual: usize, predicted: usize) -> Result<()> {
        let n = self.labels.len();
        if actual >= n || predicted >= n {
            return Err(TrainerError::Metrics(format!(
                "class id {} out of range for {n} labels",
                actual.max(predicted)
            )));
        }
        self.counts[actual][predicted] += 1;
        Ok(())
    }

    /// Number of counted samples.
    pub fn total(&self) -> u64 {
        self.counts.iter().flatten().sum()
    }

    /// Per-class precision, recall, F1 and support.
    pub fn per_class(&self) -> Vec<ClassMetrics> {
        let n = self.labels.len();
        (0..n)
            .map(|c| {
                let tp = self.counts[c][c] as f64;
                let predicted: u64 = (0..n).map(|a| self.counts[a][c]).sum();
                let support: u64 = self.counts[c].iter().sum();
                let precision = if predicted == 0 { 0.0 } else { tp / predicted as f64 };
                let recall = if support == 0 { 0.0 } else { tp / support as f64 };
                let f1 = if precision + recall == 0.0 { 0.0 } else { 2.0 * precision * recall / (precision + recall) };
                ClassMetrics { label: self.labels[c].clone(), precision, recall, f1, support }
            })
            .collect()
    }

    /// Support-weighted mean of the per-class F1 (scikit-learn's `average="weighted"`).
    pub fn weighted_f1(&self) -> f64 {
        let total = self.total();
        if total == 0 {
            return 0.0;
        }
        self.per_class().iter().map(|m| m.f1 * m.support as f64).sum::<f64>() / total as f64
    }

    /// Share of correct predictions.
    pub fn accuracy(&self) -> f64 {
        let total = self.total();
        if total == 0 {
            return 0.0;
        }
        (0..self.labels.len()).map(|c| self.counts[c][c]).sum::<u64>() as f64 / total as f64
    }

    /// Share of samples of class `negative` predicted as `positive` (e.g. ham called spam), or
    /// `None` when either label is unknown or there are no `negative` samples.
    pub fn false_positive_rate(&self, negative: &str, positive: &str) -> Option<f64> {
        let n = self.labels.iter().position(|l| l == negative)?;
        let p = self.labels.iter().position(|l| l == positive)?;
        let support: u64 = self.counts[n].iter().sum();
        (support > 0).then(|| self.counts[n][p] as f64 / support as f64)
    }

    /// All metrics in one value (for JSON reports).
    pub fn summary(&self) -> MetricsSummary {
        MetricsSummary {
            classes: self.per_class(),
            weighted_f1: self.weighted_f1(),
            accuracy: self.accuracy(),
            ham_to_spam_false_positive_rate: self.false_positive_rate("ham", "spam"),
            confusion: self.clone(),
        }
    }

    /// A plain-text table: per-class metrics, the weighted F1, and the matrix.
    pub fn table(&self) -> String {
        let mut out = format!("{:<10} {:>9} {:>9} {:>9} {:>9}\n", "class", "precision", "recall", "f1", "support");
        for m in self.per_class() {
            out += &format!("{:<10} {:>9.4} {:>9.4} {:>9.4} {:>9}\n", m.label, m.precision, m.recall, m.f1, m.support);
        }
        out += &format!("{:<10} {:>29.4} {:>9}\n", "weighted", self.weighted_f1(), self.total());
        if let Some(fpr) = self.false_positive_rate("ham", "spam") {
            out += &format!("ham→spam false-positive rate: {:.4}\n", fpr);
        }
        out += &format!("{:<10}", "actual\\pred");
        for label in &self.labels {
            out += &format!(" {label:>9}");
        }
        out += "\n";
        for (label, row) in self.labels.iter().zip(&self.counts) {
            out += &format!("{label:<11}");
            for count in row {
                out += &format!(" {count:>9}");
            }
            out += "\n";
        }
        out
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// y_true = [0,0,0,0,1,1,1,2,2,2], y_pred = [0,0,1,2,1,1,0,2,2,1]. By hand: precision
    /// [2/3, 1/2, 2/3], recall [1/2, 2/3, 2/3], F1 [4/7, 4/7, 2/3], weighted F1
    /// (4·4/7 + 3·4/7 + 3·2/3) / 10 = 0.6.
    #[test]
    fn matches_scikit_learn_on_a_hand_worked_example() {
        let actual = [0, 0, 0, 0, 1, 1, 1, 2, 2, 2];
        let predicted = [0, 0, 1, 2, 1, 1, 0, 2, 2, 1];
        let m = ConfusionMatrix::from_predictions(&["ham", "spam", "ad"], &actual, &predicted).unwrap();
        assert_eq!(m.counts, vec![vec![2, 1, 1], vec![1, 2, 0], vec![0, 1, 2]]);
        let per = m.per_class();
        let close = |a: f64, b: f64| (a - b).abs() < 1e-12;
        assert!(close(per[0].precision, 2.0 / 3.0) && close(per[0].recall, 0.5));
        assert!(close(per[1].precision, 0.5) && close(per[1].recall, 2.0 / 3.0));
        assert!(close(per[2].precision, 2.0 / 3.0) && close(per[2].recall, 2.0 / 3.0));
        assert!(close(m.weighted_f1(), 0.6), "{}", m.weighted_f1());
        assert!(close(per[0].f1, 4.0 / 7.0) && close(per[2].f1, 2.0 / 3.0));
        assert!(close(m.accuracy(), 0.6));
        assert_eq!(m.false_positive_rate("ham", "spam"), Some(0.25));
        assert!(m.table().contains("weighted"));
        let json = serde_json::to_value(m.summary()).unwrap();
        assert_eq!(json["confusion"]["counts"][0][1], 1);
    }

    #[test]
    fn empty_classes_and_bad_ids_are_handled() {
        let m = ConfusionMatrix::from_predictions(&["ham", "spam"], &[1, 1], &[1, 1]).unwrap();
        assert_eq!(m.per_class()[0].precision, 0.0);
        assert_eq!(m.per_class()[0].f1, 0.0);
        assert_eq!(m.weighted_f1(), 1.0);
        assert_eq!(m.false_positive_rate("ham", "spam"), None);
        assert!(ConfusionMatrix::from_predictions(&["ham"], &[0], &[3]).is_err());
        assert!(ConfusionMatrix::from_predictions(&["ham"], &[0], &[]).is_err());
        assert_eq!(ConfusionMatrix::new(&["a"]).weighted_f1(), 0.0);
    }
}
