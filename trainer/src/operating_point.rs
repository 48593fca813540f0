//! Calibration and the operating point: temperature scaling of the head's logits on a validation
//! set, the spam threshold for a target ham→spam false-positive rate, and the ROC / precision–recall
//! curves the reports draw.

use serde::Serialize;

/// Fits the temperature `T` that minimises the negative log-likelihood of `softmax(logits / T)`
/// on labelled rows (`logits` row-major, `classes` per row); golden-section search over log T in
/// [0.25, 8] (a validation part that the head separates perfectly would otherwise drive T to 0
/// and the probabilities to 0 or 1). Returns 1 when there is nothing to fit.
pub fn fit_temperature(logits: &[f32], labels: &[usize], classes: usize) -> f32 {
    if labels.is_empty() || classes < 2 {
        return 1.0;
    }
    let nll = |log_t: f64| -> f64 {
        let t = log_t.exp();
        logits
            .chunks_exact(classes)
            .zip(labels)
            .map(|(row, &label)| {
                let scaled: Vec<f64> = row.iter().map(|&z| f64::from(z) / t).collect();
                let max = scaled.iter().copied().fold(f64::NEG_INFINITY, f64::max);
                let log_sum = scaled.iter().map(|z| (z - max).exp()).sum::<f64>().ln() + max;
                log_sum - scaled[label]
            })
            .sum()
    };
    let (mut lo, mut hi) = (0.25f64.ln(), 8f64.ln());
    let ratio = (5f64.sqrt() - 1.0) / 2.0;
    for _ in 0..60 {
        let a = hi - ratio * (hi - lo);
        let b = lo + ratio * (hi - lo);
        if nll(a) < nll(b) {
            hi = b;
        } else {
            lo = a;
        }
    }
    ((lo + hi) / 2.0).exp() as f32
}

/// The lowest spam threshold that keeps the share of `ham_scores` (spam probabilities of ham
/// images) at or above it within `target_fp`, clamped to [`floor`, 0.9999]: `floor` (0.5 in
/// practice) keeps an image that is more likely ham than spam from ever being called spam.
pub fn threshold_for_false_positive_rate(ham_scores: &[f32], target_fp: f64, floor: f32) -> f32 {
    let mut sorted: Vec<f32> = ham_scores.iter().copied().filter(|s| s.is_finite()).collect();
    sorted.sort_by(|a, b| b.total_cmp(a));
    let allowed = (target_fp * sorted.len() as f64).floor() as usize;
    let threshold = match sorted.get(allowed) {
        // Just above the first ham score that must not pass, so ties fall below the threshold.
        Some(&score) => next_up(score),
        None => floor,
    };
    threshold.clamp(floor, 0.9999)
}

fn next_up(x: f32) -> f32 {
    if x.is_nan() || x == f32::INFINITY {
        return x;
    }
    f32::from_bits(if x >= 0.0 { x.to_bits() + 1 } else { x.to_bits() - 1 })
}

/// One point of a ROC / precision–recall sweep: spam called at scores ≥ `threshold`.
#[derive(Debug, Clone, Copy, PartialEq, Serialize)]
pub struct CurvePoint {
    /// The score cut: p(spam), or spam log-odds for results that kept them
    /// ([`OutOfFold::spam_log_odds`](super::OutOfFold::spam_log_odds)).
    pub threshold: f32,
    /// Share of ham at or above it (ham→spam false-positive rate).
    pub false_positive_rate: f64,
    /// Share of spam at or above it (spam recall).
    pub recall: f64,
    /// Spam share among everything at or above it (1 when nothing is).
    pub precision: f64,
}

/// The ROC and precision–recall curve of spam scores against `is_spam`, one point per distinct
/// score (highest first), plus the area under the ROC curve and the average precision.
#[derive(Debug, Clone, Serialize)]
pub struct Curves {
    /// Points from the strictest threshold to the loosest.
    pub points: Vec<CurvePoint>,
    /// Area under the ROC curve (trapezoids).
    pub roc_auc: f64,
    /// Average precision (precision summed over the recall steps, scikit-learn's definition).
    pub average_precision: f64,
}

impl Curves {
    /// Sweeps every distinct score.
    pub fn new(scores: &[f32], is_spam: &[bool]) -> Curves {
        let mut order: Vec<usize> = (0..scores.len()).collect();
        order.sort_by(|&a, &b| scores[b].total_cmp(&scores[a]));
        let positives = is_spam.iter().filter(|&&s| s).count().max(1) as f64;
        let negatives = is_spam.iter().filter(|&&s| !s).count().max(1) as f64;
        let (mut tp, mut fp) = (0usize, 0usize);
        let mut points =
            vec![CurvePoint { threshold: f32::INFINITY, false_positive_rate: 0.0, recall: 0.0, precision: 1.0 }];
        let mut i = 0;
        while i < order.len() {
            let score = scores[order[i]];
            while i < order.len() && scores[order[i]] == score {
                if is_spam[order[i]] {
                    tp += 1
                } else {
                    fp += 1
                }
                i += 1;
            }
            points.push(CurvePoint {
                threshold: score,
                false_positive_rate: fp as f64 / negatives,
                recall: tp as f64 / positives,
                precision: tp as f64 / (tp + fp).max(1) as f64,
            });
        }
        let roc_auc = points
            .windows(2)
            .map(|w| (w[1].false_positive_rate - w[0].false_positive_rate) * (w[1].recall + w[0].recall) / 2.0)
            .sum();
        let average_precision = points.windows(2).map(|w| (w[1].recall - w[0].recall) * w[1].precision).sum();
        Curves { points, roc_auc, average_precision }
    }

    /// The highest spam recall with a false-positive rate at or below `max_fp` (the best any
    /// threshold could do on these scores; an oracle, not a deployable threshold).
    pub fn recall_at_false_positive_rate(&self, max_fp: f64) -> f64 {
        self.points.iter().filter(|p| p.false_positive_rate <= max_fp + 1e-12).map(|p| p.recall).fold(0.0, f64::max)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn temperature_softens_overconfident_logits() {
        // Logits ±4 but only 80% right: the fitted temperature must be above 1.
        let mut logits = Vec::new();
        let mut labels = Vec::new();
        for i in 0..100 {
            logits.extend([4.0, -4.0]);
            labels.push(usize::from(i % 5 == 0));
        }
        let t = fit_temperature(&logits, &labels, 2);
        // Optimum: sigmoid(8 / T) = 0.8 → T = 8 / ln 4 ≈ 5.77.
        assert!((t - 5.77).abs() < 0.05, "T = {t}");
        // Perfectly separated: as sharp as allowed, not 0.
        let sharp = fit_temperature(&[1.0, -1.0, -1.0, 1.0], &[0, 1], 2);
        assert!((sharp - 0.25).abs() < 1e-3, "T = {sharp}");
        assert_eq!(fit_temperature(&[], &[], 2), 1.0);
    }

    #[test]
    fn threshold_keeps_false_positives_within_target() {
        let ham: Vec<f32> = (0..1000).map(|i| i as f32 / 1000.0).collect();
        let t = threshold_for_false_positive_rate(&ham, 0.01, 0.5);
        let passed = ham.iter().filter(|&&s| s >= t).count();
        assert!(passed <= 10, "{passed} ham at or above {t}");
        assert!(passed >= 9, "not needlessly strict: {passed}");
        assert_eq!(threshold_for_false_positive_rate(&[0.1, 0.2], 0.01, 0.5), 0.5, "floor");
        assert_eq!(threshold_for_false_positive_rate(&[], 0.01, 0.5), 0.5);
        assert!(threshold_for_false_positive_rate(&[1.0; 10], 0.0, 0.5) <= 0.9999);
    }

    #[test]
    fn curves_of_a_perfect_and_a_random_ranking() {
        let scores = [0.9, 0.8, 0.3, 0.2];
        let perfect = Curves::new(&scores, &[true, true, false, false]);
        assert!((perfect.roc_auc - 1.0).abs() < 1e-12);
        assert!((perfect.average_precision - 1.0).abs() < 1e-12);
        assert_eq!(perfect.recall_at_false_positive_rate(0.0), 1.0);
        let inverted = Curves::new(&scores, &[false, false, true, true]);
        assert!(inverted.roc_auc.abs() < 1e-12);
        assert_eq!(inverted.recall_at_false_positive_rate(0.01), 0.0);
        let tied = Curves::new(&[0.5; 4], &[true, false, true, false]);
        assert!((tied.roc_auc - 0.5).abs() < 1e-12);
    }
}
