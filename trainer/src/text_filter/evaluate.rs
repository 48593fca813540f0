//! Training and evaluating CLA_ANN: the paper's protocol (section 5.1.2–5.1.3, Tables 1–3),
//! stratified k-fold cross-validation, and the online mode (time order, learning as it goes).
//!
//! The paper leaves the threshold to the user. Here it is chosen on the training data alone: the
//! training messages are scored out of fold (an inner cross-validation, so no message is scored
//! by a filter that counted it), and the threshold is the lowest score at which at most
//! [`ThresholdRule::max_ham_fp`] of the training ham would be called spam. The test messages
//! never influence it.

use serde::Serialize;
use spamlens_core::cla_ann::{ClaAnn, ClaAnnConfig, TextLabel, Tokens};

use super::corpus::MailCorpus;
use crate::error::{Result, TrainerError};
use crate::random::SplitMix64;

/// How the spam threshold is chosen from the training data.
#[derive(Debug, Clone, Copy, PartialEq, Serialize)]
pub struct ThresholdRule {
    /// Largest share of training ham (scored out of fold) allowed above the threshold.
    pub max_ham_fp: f64,
    /// Folds of the inner cross-validation that scores the training messages.
    pub folds: usize,
}

impl Default for ThresholdRule {
    /// 0.3% of ham, 5 folds.
    fn default() -> Self {
        Self { max_ham_fp: 0.003, folds: 5 }
    }
}

/// Spam/ham confusion counts (spam is the positive class).
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize)]
pub struct BinaryCounts {
    /// Spam called spam.
    pub true_spam: u64,
    /// Ham called spam (false positives).
    pub false_spam: u64,
    /// Ham called ham.
    pub true_ham: u64,
    /// Spam called ham (false negatives).
    pub false_ham: u64,
}

impl BinaryCounts {
    /// Counts one prediction.
    pub fn add(&mut self, actual: TextLabel, predicted_spam: bool) {
        match (actual, predicted_spam) {
            (TextLabel::Spam, true) => self.true_spam += 1,
            (TextLabel::Spam, false) => self.false_ham += 1,
            (TextLabel::Ham, true) => self.false_spam += 1,
            (TextLabel::Ham, false) => self.true_ham += 1,
        }
    }

    /// Adds another set of counts.
    pub fn merge(&mut self, other: &BinaryCounts) {
        self.true_spam += other.true_spam;
        self.false_spam += other.false_spam;
        self.true_ham += other.true_ham;
        self.false_ham += other.false_ham;
    }

    /// All messages counted.
    pub fn total(&self) -> u64 {
        self.true_spam + self.false_spam + self.true_ham + self.false_ham
    }

    fn ratio(num: u64, den: u64) -> f64 {
        if den == 0 { 0.0 } else { num as f64 / den as f64 }
    }

    /// Of the messages called spam, the share that is spam.
    pub fn spam_precision(&self) -> f64 {
        Self::ratio(self.true_spam, self.true_spam + self.false_spam)
    }
    /// Of the spam, the share called spam.
    pub fn spam_recall(&self) -> f64 {
        Self::ratio(self.true_spam, self.true_spam + self.false_ham)
    }
    /// Of the messages called ham, the share that is ham.
    pub fn ham_precision(&self) -> f64 {
        Self::ratio(self.true_ham, self.true_ham + self.false_ham)
    }
    /// Of the ham, the share called ham.
    pub fn ham_recall(&self) -> f64 {
        Self::ratio(self.true_ham, self.true_ham + self.false_spam)
    }
    /// False positives as a share of all test messages (how the paper's Table 3 counts them).
    pub fn false_positive_share(&self) -> f64 {
        Self::ratio(self.false_spam, self.total())
    }
    /// False negatives as a share of all test messages (Table 3).
    pub fn false_negative_share(&self) -> f64 {
        Self::ratio(self.false_ham, self.total())
    }
    /// Ham called spam as a share of the ham (what a mail operator calls the false-positive rate).
    pub fn ham_false_positive_rate(&self) -> f64 {
        Self::ratio(self.false_spam, self.false_spam + self.true_ham)
    }
}

/// Indices of the corpus's messages on each side of a split.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Split {
    /// Training spam.
    pub train_spam: Vec<usize>,
    /// Training ham.
    pub train_ham: Vec<usize>,
    /// Test spam.
    pub test_spam: Vec<usize>,
    /// Test ham.
    pub test_ham: Vec<usize>,
}

/// The paper's split sizes (section 5.1.2 and 5.1.3): train 1075 spam + 710 ham, test 682 spam +
/// 3435 ham.
pub const PAPER_SPLIT: (usize, usize, usize, usize) = (1075, 710, 682, 3435);

/// A seeded draw of `sizes` = (train spam, train ham, test spam, test ham) messages; the rest are
/// unused. Fails when the corpus has too few of a class.
pub fn draw_split(corpus: &MailCorpus, sizes: (usize, usize, usize, usize), seed: u64) -> Result<Split> {
    let mut spam: Vec<usize> = Vec::new();
    let mut ham: Vec<usize> = Vec::new();
    for (i, m) in corpus.messages.iter().enumerate() {
        match m.label {
            TextLabel::Spam => spam.push(i),
            TextLabel::Ham => ham.push(i),
        }
    }
    let (train_spam, train_ham, test_spam, test_ham) = sizes;
    if spam.len() < train_spam + test_spam || ham.len() < train_ham + test_ham {
        return Err(TrainerError::Dataset {
            path: corpus.root.clone(),
            reason: format!(
                "the split needs {} spam and {} ham, the corpus has {} and {}",
                train_spam + test_spam,
                train_ham + test_ham,
                spam.len(),
                ham.len()
            ),
        });
    }
    let mut rng = SplitMix64::new(seed);
    rng.shuffle(&mut spam);
    rng.shuffle(&mut ham);
    Ok(Split {
        train_spam: spam[..train_spam].to_vec(),
        train_ham: ham[..train_ham].to_vec(),
        test_spam: spam[train_spam..train_spam + test_spam].to_vec(),
        test_ham: ham[train_ham..train_ham + test_ham].to_vec(),
    })
}

/// The lowest threshold at which at most `max_ham_fp` of `ham_scores` lie above it (a message is
/// spam when its score is strictly above the threshold).
pub fn choose_threshold(ham_scores: &[f64], max_ham_fp: f64) -> f64 {
    if ham_scores.is_empty() {
        return 0.5;
    }
    let mut sorted = ham_scores.to_vec();
    sorted.sort_by(f64::total_cmp);
    let allowed = (max_ham_fp.clamp(0.0, 1.0) * sorted.len() as f64).floor() as usize;
    // With `allowed` ham above it, the threshold is the (n - allowed)-th smallest score.
    let index = sorted.len().saturating_sub(allowed + 1);
    sorted[index].clamp(0.0, 1.0)
}

/// How a trained filter's threshold was chosen.
#[derive(Debug, Clone, Copy, PartialEq, Serialize)]
pub struct ThresholdChoice {
    /// The threshold set on the filter.
    pub threshold: f64,
    /// Out-of-fold training counts at that threshold.
    pub training_counts: BinaryCounts,
}

/// Trains a filter on `spam` and `ham` token sets and sets its threshold by `rule` from
/// out-of-fold scores of the same training messages.
pub fn train_filter(
    config: &ClaAnnConfig,
    spam: &[&Tokens],
    ham: &[&Tokens],
    rule: &ThresholdRule,
    seed: u64,
) -> Result<(ClaAnn, ThresholdChoice)> {
    let folds = rule.folds.max(2);
    let spam_folds = fold_of(spam.len(), folds, seed);
    let ham_folds = fold_of(ham.len(), folds, seed ^ 0x5eed);
    let mut spam_scores = vec![0.0; spam.len()];
    let mut ham_scores = vec![0.0; ham.len()];
    for fold in 0..folds {
        let train_spam = spam.iter().zip(&spam_folds).filter(|(_, f)| **f != fold).map(|(t, _)| *t);
        let train_ham = ham.iter().zip(&ham_folds).filter(|(_, f)| **f != fold).map(|(t, _)| *t);
        let filter = ClaAnn::train(config.clone(), train_spam, train_ham).map_err(core_error)?;
        for (i, tokens) in spam.iter().enumerate().filter(|(i, _)| spam_folds[*i] == fold) {
            spam_scores[i] = filter.score(tokens).score;
        }
        for (i, tokens) in ham.iter().enumerate().filter(|(i, _)| ham_folds[*i] == fold) {
            ham_scores[i] = filter.score(tokens).score;
        }
    }
    let threshold = choose_threshold(&ham_scores, rule.max_ham_fp);
    let mut training_counts = BinaryCounts::default();
    spam_scores.iter().for_each(|&s| training_counts.add(TextLabel::Spam, s > threshold));
    ham_scores.iter().for_each(|&s| training_counts.add(TextLabel::Ham, s > threshold));
    let mut filter = ClaAnn::train(config.clone(), spam.iter().copied(), ham.iter().copied()).map_err(core_error)?;
    filter.set_threshold(threshold).map_err(core_error)?;
    Ok((filter, ThresholdChoice { threshold, training_counts }))
}

/// A seeded fold number for each of `n` items (balanced: fold sizes differ by at most one).
fn fold_of(n: usize, folds: usize, seed: u64) -> Vec<usize> {
    let mut order: Vec<usize> = (0..n).collect();
    SplitMix64::new(seed).shuffle(&mut order);
    let mut fold = vec![0; n];
    for (position, &item) in order.iter().enumerate() {
        fold[item] = position % folds;
    }
    fold
}

fn core_error(e: spamlens_core::Error) -> TrainerError {
    TrainerError::TextFilter(e.to_string())
}

/// Every message's tokens under `config`'s tokenizer, in corpus order.
pub fn tokenize(corpus: &MailCorpus, config: &ClaAnnConfig) -> Vec<Tokens> {
    use rayon::prelude::*;
    corpus.messages.par_iter().map(|m| config.tokenizer.tokens(&m.subject, &m.body)).collect()
}

/// One row of the paper's Tables 1–3: a filter with `input_layers` layers on the test side.
#[derive(Debug, Clone, Serialize)]
pub struct ProtocolRow {
    /// Size of the innate input layer.
    pub input_layers: usize,
    /// The threshold chosen on the training side.
    pub threshold: f64,
    /// Test counts.
    pub counts: BinaryCounts,
}

/// The paper's protocol for each of `layer_sizes`: one seeded split, a filter trained on its
/// training side (threshold by `rule`), scored on its test side without learning.
pub fn paper_protocol(
    corpus: &MailCorpus,
    tokens: &[Tokens],
    config: &ClaAnnConfig,
    layer_sizes: &[usize],
    rule: &ThresholdRule,
    seed: u64,
) -> Result<Vec<ProtocolRow>> {
    let split = draw_split(corpus, PAPER_SPLIT, seed)?;
    let pick = |ids: &[usize]| ids.iter().map(|&i| &tokens[i]).collect::<Vec<_>>();
    let (train_spam, train_ham) = (pick(&split.train_spam), pick(&split.train_ham));
    layer_sizes
        .iter()
        .map(|&input_layers| {
            let config = ClaAnnConfig { input_layers, ..config.clone() };
            let (filter, choice) = train_filter(&config, &train_spam, &train_ham, rule, seed)?;
            let mut counts = BinaryCounts::default();
            for &i in &split.test_spam {
                counts.add(TextLabel::Spam, filter.score(&tokens[i]).is_spam);
            }
            for &i in &split.test_ham {
                counts.add(TextLabel::Ham, filter.score(&tokens[i]).is_spam);
            }
            Ok(ProtocolRow { input_layers, threshold: choice.threshold, counts })
        })
        .collect()
}

/// Stratified k-fold cross-validation over the whole corpus.
#[derive(Debug, Clone, Serialize)]
pub struct CrossValidation {
    /// Test counts of each fold.
    pub folds: Vec<BinaryCounts>,
    /// Thresholds chosen in each fold.
    pub thresholds: Vec<f64>,
    /// All folds together.
    pub total: BinaryCounts,
}

/// Stratified `k`-fold cross-validation: each fold's filter is trained (threshold by `rule`) on the
/// other folds and scored on it.
pub fn cross_validate(
    corpus: &MailCorpus,
    tokens: &[Tokens],
    config: &ClaAnnConfig,
    k: usize,
    rule: &ThresholdRule,
    seed: u64,
) -> Result<CrossValidation> {
    if k < 2 {
        return Err(TrainerError::TextFilter(format!("cross-validation needs at least 2 folds, got {k}")));
    }
    let labels: Vec<TextLabel> = corpus.messages.iter().map(|m| m.label).collect();
    let spam_ids: Vec<usize> = (0..labels.len()).filter(|&i| labels[i] == TextLabel::Spam).collect();
    let ham_ids: Vec<usize> = (0..labels.len()).filter(|&i| labels[i] == TextLabel::Ham).collect();
    let mut fold = vec![0; labels.len()];
    for (ids, salt) in [(&spam_ids, 0), (&ham_ids, 1)] {
        for (position, f) in fold_of(ids.len(), k, seed ^ salt).into_iter().enumerate() {
            fold[ids[position]] = f;
        }
    }
    let mut result = CrossValidation { folds: Vec::new(), thresholds: Vec::new(), total: BinaryCounts::default() };
    for f in 0..k {
        let train = |label| {
            (0..labels.len()).filter(|&i| fold[i] != f && labels[i] == label).map(|i| &tokens[i]).collect::<Vec<_>>()
        };
        let (filter, choice) = train_filter(config, &train(TextLabel::Spam), &train(TextLabel::Ham), rule, seed)?;
        let mut counts = BinaryCounts::default();
        for i in (0..labels.len()).filter(|&i| fold[i] == f) {
            counts.add(labels[i], filter.score(&tokens[i]).is_spam);
        }
        result.total.merge(&counts);
        result.folds.push(counts);
        result.thresholds.push(choice.threshold);
    }
    Ok(result)
}

/// The online mode's result.
#[derive(Debug, Clone, Serialize)]
pub struct OnlineRun {
    /// Messages the first filter was trained on (the oldest ones).
    pub warmup: usize,
    /// Counts over every message after the warm-up, each scored before its label was learnt.
    pub counts: BinaryCounts,
    /// The same counts for each tenth of the stream, oldest first.
    pub by_tenth: Vec<BinaryCounts>,
    /// Merges (Algorithm 4) done on the way.
    pub merges: u64,
    /// Layers that were not in the first innate layer at the end.
    pub new_layers: usize,
}

/// Online mode: messages in time order (by `Date`; undated ones last, in corpus order). A filter is
/// trained on the oldest `warmup_fraction`; then each message is scored, counted, and learnt with
/// its true label through [`ClaAnn::feedback`], as a user's "mark as spam / not spam" would.
pub fn online(
    corpus: &MailCorpus,
    tokens: &[Tokens],
    config: &ClaAnnConfig,
    warmup_fraction: f64,
    rule: &ThresholdRule,
    seed: u64,
) -> Result<OnlineRun> {
    let mut order: Vec<usize> = (0..corpus.messages.len()).collect();
    order.sort_by_key(|&i| (corpus.messages[i].date_unix.is_none(), corpus.messages[i].date_unix.unwrap_or(0), i));
    let warmup = ((order.len() as f64) * warmup_fraction.clamp(0.01, 0.99)).round() as usize;
    let (first, stream) = order.split_at(warmup);
    let side =
        |label| first.iter().filter(|&&i| corpus.messages[i].label == label).map(|&i| &tokens[i]).collect::<Vec<_>>();
    let (mut filter, _) = train_filter(config, &side(TextLabel::Spam), &side(TextLabel::Ham), rule, seed)?;
    let initial: std::collections::HashSet<String> = filter.innate_layers().iter().map(|l| l.token.clone()).collect();
    let mut counts = BinaryCounts::default();
    let mut by_tenth = vec![BinaryCounts::default(); 10];
    let start_time = first.last().and_then(|&i| corpus.messages[i].date_unix).unwrap_or(0).max(1) as u64;
    for (position, &i) in stream.iter().enumerate() {
        let message = &corpus.messages[i];
        let verdict = filter.score(&tokens[i]);
        counts.add(message.label, verdict.is_spam);
        by_tenth[position * 10 / stream.len().max(1)].add(message.label, verdict.is_spam);
        let now = message.date_unix.map_or(start_time, |d| d.max(1) as u64);
        filter.feedback(&tokens[i], message.label, now);
    }
    let new_layers = filter.innate_layers().iter().filter(|l| !initial.contains(&l.token)).count();
    Ok(OnlineRun { warmup, counts, by_tenth, merges: filter.merges(), new_layers })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn threshold_allows_the_stated_share_of_ham() {
        let ham: Vec<f64> = (0..1000).map(|i| i as f64 / 1000.0).collect();
        let t = choose_threshold(&ham, 0.003);
        assert_eq!(ham.iter().filter(|&&s| s > t).count(), 3);
        let t = choose_threshold(&ham, 0.0);
        assert_eq!(ham.iter().filter(|&&s| s > t).count(), 0);
        assert_eq!(choose_threshold(&[], 0.01), 0.5);
    }

    #[test]
    fn counts_give_the_papers_shares() {
        // Table 1–3's 300-layer row: spam recall 77.859% of 682, ham recall 99.360% of 3435.
        let counts = BinaryCounts { true_spam: 531, false_ham: 151, true_ham: 3413, false_spam: 22 };
        assert!((counts.false_positive_share() - 0.00534).abs() < 1e-4);
        assert!((counts.false_negative_share() - 0.03668).abs() < 1e-4);
        assert!((counts.spam_recall() - 0.77859).abs() < 1e-4);
        assert!((counts.ham_recall() - 0.99360).abs() < 1e-4);
    }

    #[test]
    fn folds_are_balanced_and_seeded() {
        let folds = fold_of(11, 5, 3);
        assert_eq!(folds, fold_of(11, 5, 3));
        for f in 0..5 {
            let n = folds.iter().filter(|&&x| x == f).count();
            assert!((2..=3).contains(&n));
        }
    }
}
