//! CLA_ANN: the continuously learning token perceptron of Sabri et al. (section 5, Algorithms 1–4),
//! spamlens's text filter.
//!
//! - **Training (Algorithm 2)**: every token of the spam training messages becomes a layer with
//!   `msg_matched` (messages containing it) and `spam_matched` (+ `spam_increment` per spam
//!   message); ham messages add to `msg_matched` of tokens already there. A layer's weight is
//!   `spam_matched / (msg_matched + 1)`. The library is pruned (section 5.1.2: single-spam layers,
//!   tokens over 20 characters, addresses of sites) and the top [`ClaAnnConfig::input_layers`]
//!   become the innate input layer.
//! - **Application (Algorithm 3)**: a message's score is the mean weight of the innate layers it
//!   contains; above [`ClaAnnConfig::threshold`] it is spam. Tokens of a message judged spam that
//!   are not innate layers are collected in the adaptive input layer.
//! - **Correction**: the perceptron rule moves the weights of the matched layers by
//!   `learning_rate × error` towards the desired output (0.9999 spam, 0.1111 ham).
//! - **Merge (Algorithm 4)**: every [`ClaAnnConfig::merge_every_messages`] messages or
//!   [`ClaAnnConfig::merge_every_seconds`], adaptive and innate layers are merged, ordered and the
//!   top ones kept; the adaptive layer is emptied.
//!
//! Where the paper is ambiguous, the choice is made here, documented at the field that controls
//! it, and configurable. The whole state serialises to JSON, so each user can keep their own.

pub mod tokens;

use std::collections::{BTreeMap, HashMap};

use serde::{Deserialize, Serialize};

use crate::error::{Error, Result};
pub use tokens::{Pruning, Tokenizer, Tokens};

/// How the innate input layer is chosen from the library, at training and at each merge.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum LayerSelection {
    /// Algorithm 4 as written: descending `spam_matched`. Keeps the most frequent spam tokens,
    /// which are mostly function words ("the", "to", "you") that ham shares.
    SpamMatched,
    /// Descending `|weight − spam share| × ln(1 + msg_matched)`: how far a layer's weight is from
    /// what a token that says nothing would get, times the log of its support. Keeps tokens that
    /// tell spam from ham, in either direction. On the paper's SpamAssassin protocol it cut false
    /// positives by half at the same false-negative rate (see the trainer's `text-filter` report).
    Discriminative,
}

/// Every setting of the filter; stored with its state so a saved filter behaves the same.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(default)]
pub struct ClaAnnConfig {
    /// Size of the innate input layer (the paper's "number of input layers", 200…1000).
    pub input_layers: usize,
    /// Score above which a message is spam (the paper: "a cutoff between 0 and 1 chosen by the
    /// user"); training sets it from the training data (see the trainer).
    pub threshold: f64,
    /// The perceptron's learning rate for corrections.
    pub learning_rate: f64,
    /// Added to `spam_matched` per spam message containing a token (the paper's `spam_increment`).
    pub spam_increment: f64,
    /// Desired output for spam (the paper: 0.9999).
    pub desired_spam: f64,
    /// Desired output for ham (the paper: 0.1111).
    pub desired_ham: f64,
    /// How messages become tokens.
    pub tokenizer: Tokenizer,
    /// Which library entries can be layers at all.
    pub pruning: Pruning,
    /// How layers are ranked at training and merge.
    pub selection: LayerSelection,
    /// Merge after this many messages since the last merge (Algorithm 1, criterion 1); None: never.
    pub merge_every_messages: Option<u64>,
    /// Merge when this many seconds passed since the last merge (criterion 2); None: never.
    pub merge_every_seconds: Option<u64>,
    /// Most tokens kept in the adaptive layer between merges; past it, the least supported are
    /// dropped (the paper's table is unbounded; a user's state must not grow without bound).
    pub max_adaptive_layers: usize,
    /// Algorithm 3 as written corrects weights after every message using the filter's own verdict
    /// (self-training). Off by default: corrections then come only from labelled feedback, since
    /// self-training reinforces the filter's own mistakes.
    pub self_training: bool,
    /// Corrections applied per feedback message, at most: feedback repeats the perceptron step
    /// until the message gets the label the user gave (or this many steps), so that one "mark as
    /// spam" is felt at once.
    pub feedback_max_steps: u32,
}

impl Default for ClaAnnConfig {
    fn default() -> Self {
        Self {
            input_layers: 1000,
            threshold: 0.65,
            learning_rate: 0.05,
            spam_increment: 1.0,
            desired_spam: 0.9999,
            desired_ham: 0.1111,
            tokenizer: Tokenizer::default(),
            pruning: Pruning::default(),
            selection: LayerSelection::Discriminative,
            merge_every_messages: Some(1000),
            merge_every_seconds: Some(7 * 24 * 3600),
            max_adaptive_layers: 20_000,
            self_training: false,
            feedback_max_steps: 20,
        }
    }
}

/// One input layer: a token, its counts and its weight.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Layer {
    /// The token.
    pub token: String,
    /// Messages that contained it (spam and ham).
    pub msg_matched: f64,
    /// Sum of `spam_increment` over the spam messages that contained it.
    pub spam_matched: f64,
    /// Its weight: `spam_matched / (msg_matched + 1)` when made, then moved by corrections.
    pub weight: f64,
}

impl Layer {
    fn from_counts(token: String, counts: Counts) -> Self {
        Layer { token, msg_matched: counts.msg, spam_matched: counts.spam, weight: counts.weight() }
    }
}

/// `msg_matched` and `spam_matched` of a token in the library or the adaptive layer.
#[derive(Debug, Clone, Copy, Default, PartialEq, Serialize, Deserialize)]
pub struct Counts {
    /// Messages that contained the token.
    pub msg: f64,
    /// Spam increments from the spam messages that contained it.
    pub spam: f64,
}

impl Counts {
    /// The paper's weight, `spam_matched / (msg_matched + 1)`.
    pub fn weight(&self) -> f64 {
        self.spam / (self.msg + 1.0)
    }
}

/// The label of a message, for training and feedback.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
#[serde(rename_all = "snake_case")]
pub enum TextLabel {
    /// Unsolicited mail.
    Spam,
    /// Legitimate mail.
    Ham,
}

impl std::str::FromStr for TextLabel {
    type Err = String;
    fn from_str(s: &str) -> std::result::Result<Self, String> {
        match s.trim().to_ascii_lowercase().as_str() {
            "spam" => Ok(TextLabel::Spam),
            "ham" | "not spam" | "not_spam" | "notspam" => Ok(TextLabel::Ham),
            other => Err(format!("'{other}' is not a label (spam or ham)")),
        }
    }
}

impl std::fmt::Display for TextLabel {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(match self {
            TextLabel::Spam => "spam",
            TextLabel::Ham => "ham",
        })
    }
}

/// The filter's judgement of one message.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct TextScore {
    /// Mean weight of the matched innate layers (0 when none matched).
    pub score: f64,
    /// `score > threshold`.
    pub is_spam: bool,
    /// The threshold in force.
    pub threshold: f64,
    /// How many innate layers the message contains.
    pub matched: usize,
    /// The matched layers with the highest weights (at most 5): why it scored as it did.
    pub strongest: Vec<(String, f64)>,
}

/// What training saw, kept in the state for model cards and reports.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct TrainingSummary {
    /// Spam messages of the training corpus.
    pub spam_messages: u64,
    /// Ham messages of the training corpus.
    pub ham_messages: u64,
    /// Distinct tokens in the library before pruning.
    pub library_tokens: u64,
    /// Library entries left after pruning.
    pub pruned_library_tokens: u64,
}

/// What feedback changed.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct FeedbackOutcome {
    /// The score before the feedback.
    pub before: TextScore,
    /// The score after it.
    pub after: TextScore,
    /// Perceptron steps applied.
    pub steps: u32,
    /// New tokens put into the adaptive layer.
    pub new_adaptive_tokens: usize,
    /// Whether this feedback triggered a merge (Algorithm 4).
    pub merged: bool,
}

/// The CLA_ANN filter: configuration, innate and adaptive layers, merge bookkeeping.
#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(try_from = "ClaAnnState", into = "ClaAnnState")]
pub struct ClaAnn {
    config: ClaAnnConfig,
    innate: Vec<Layer>,
    index: HashMap<String, usize>,
    adaptive: HashMap<String, Counts>,
    /// Share of spam among the messages counted so far (the "says nothing" weight for
    /// [`LayerSelection::Discriminative`]).
    spam_messages: f64,
    all_messages: f64,
    messages_since_merge: u64,
    last_merge_unix: u64,
    merges: u64,
    training: TrainingSummary,
}

/// The serialised form of [`ClaAnn`] (the index is rebuilt on load).
#[derive(Debug, Clone, Serialize, Deserialize)]
struct ClaAnnState {
    format: String,
    config: ClaAnnConfig,
    innate: Vec<Layer>,
    adaptive: BTreeMap<String, Counts>,
    spam_messages: f64,
    all_messages: f64,
    messages_since_merge: u64,
    last_merge_unix: u64,
    merges: u64,
    training: TrainingSummary,
}

/// The `format` tag of a serialised filter.
pub const STATE_FORMAT: &str = "spamlens.cla_ann.v1";

/// The built-in filter's saved state: CLA_ANN trained on the SpamAssassin public corpus by the
/// command in `models/default/TEXT_FILTER.md`. Compiled in once, here, so that the CLI, the server
/// and the browser package score text with no file to ship; [`ClaAnn::builtin`] loads it.
pub const BUILTIN_STATE: &[u8] = include_bytes!("../../../models/default/text-filter.json");

/// Most corrections one feedback message may apply ([`ClaAnnConfig::feedback_max_steps`]): each is
/// a pass over the message's tokens, so a loaded state cannot make one "mark as spam" run for long.
pub const MAX_FEEDBACK_STEPS: u32 = 1000;

impl ClaAnnConfig {
    /// Why these settings cannot run a filter (a number out of its range), if they cannot.
    fn problem(&self) -> Option<String> {
        if !(0.0..=1.0).contains(&self.threshold) {
            return Some(format!("threshold {} is outside 0..=1", self.threshold));
        }
        for (name, value) in [
            ("learning_rate", self.learning_rate),
            ("desired_spam", self.desired_spam),
            ("desired_ham", self.desired_ham),
        ] {
            if !(0.0..=1.0).contains(&value) {
                return Some(format!("{name} {value} is outside 0..=1"));
            }
        }
        if !self.spam_increment.is_finite() || self.spam_increment <= 0.0 {
            return Some(format!("spam_increment {} is not a positive number", self.spam_increment));
        }
        if self.feedback_max_steps > MAX_FEEDBACK_STEPS {
            return Some(format!(
                "feedback_max_steps {} is over the limit of {MAX_FEEDBACK_STEPS}",
                self.feedback_max_steps
            ));
        }
        None
    }
}

impl TryFrom<ClaAnnState> for ClaAnn {
    type Error = String;
    fn try_from(state: ClaAnnState) -> std::result::Result<Self, String> {
        if state.format != STATE_FORMAT {
            return Err(format!("format is '{}', expected '{STATE_FORMAT}'", state.format));
        }
        if let Some(bad) =
            state.innate.iter().find(|l| !l.weight.is_finite() || l.msg_matched < 0.0 || l.spam_matched < 0.0)
        {
            return Err(format!("layer '{}' has invalid numbers", bad.token));
        }
        if let Some(problem) = state.config.problem() {
            return Err(problem);
        }
        let index = state.innate.iter().enumerate().map(|(i, l)| (l.token.clone(), i)).collect();
        Ok(ClaAnn {
            config: state.config,
            innate: state.innate,
            index,
            adaptive: state.adaptive.into_iter().collect(),
            spam_messages: state.spam_messages,
            all_messages: state.all_messages,
            messages_since_merge: state.messages_since_merge,
            last_merge_unix: state.last_merge_unix,
            merges: state.merges,
            training: state.training,
        })
    }
}

impl From<ClaAnn> for ClaAnnState {
    fn from(model: ClaAnn) -> Self {
        ClaAnnState {
            format: STATE_FORMAT.to_owned(),
            config: model.config,
            innate: model.innate,
            adaptive: model.adaptive.into_iter().collect(),
            spam_messages: model.spam_messages,
            all_messages: model.all_messages,
            messages_since_merge: model.messages_since_merge,
            last_merge_unix: model.last_merge_unix,
            merges: model.merges,
            training: model.training,
        }
    }
}

/// Algorithm 2's library: counts of every token of the training corpus.
#[derive(Debug, Clone, Default)]
pub struct Library {
    counts: HashMap<String, Counts>,
    spam_messages: u64,
    ham_messages: u64,
}

impl Library {
    /// An empty library.
    pub fn new() -> Self {
        Self::default()
    }

    /// Adds one spam message: each of its tokens gets `msg_matched + 1` and `spam_matched +
    /// spam_increment`, new tokens are added.
    pub fn add_spam(&mut self, tokens: &Tokens, spam_increment: f64) {
        self.spam_messages += 1;
        for token in tokens {
            let counts = self.counts.entry(token.clone()).or_default();
            counts.msg += 1.0;
            counts.spam += spam_increment;
        }
    }

    /// Adds one ham message: tokens already in the library get `msg_matched + 1`. Ham counts only
    /// tokens that spam brought in, so feed all spam before the ham (as Algorithm 2 does).
    pub fn add_ham(&mut self, tokens: &Tokens) {
        self.ham_messages += 1;
        for token in tokens {
            if let Some(counts) = self.counts.get_mut(token) {
                counts.msg += 1.0;
            }
        }
    }

    /// Distinct tokens in the library.
    pub fn len(&self) -> usize {
        self.counts.len()
    }

    /// Whether no token was added.
    pub fn is_empty(&self) -> bool {
        self.counts.is_empty()
    }

    /// Prunes the library and keeps the top `config.input_layers` layers as the innate layer.
    /// Fails when the training data holds no spam or no ham message.
    pub fn into_filter(self, config: ClaAnnConfig) -> Result<ClaAnn> {
        if let Some(problem) = config.problem() {
            return Err(Error::TextFilter { reason: format!("text filter settings: {problem}") });
        }
        if self.spam_messages == 0 || self.ham_messages == 0 {
            return Err(Error::TextFilter {
                reason: format!(
                    "training needs spam and ham messages (got {} spam, {} ham)",
                    self.spam_messages, self.ham_messages
                ),
            });
        }
        let library_tokens = self.counts.len() as u64;
        let spam_share = self.spam_messages as f64 / (self.spam_messages + self.ham_messages) as f64;
        let candidates: Vec<Layer> = self
            .counts
            .into_iter()
            .filter(|(token, c)| {
                config.pruning.keeps_token(token) && config.pruning.keeps_counts(c.msg, c.spam, config.spam_increment)
            })
            .map(|(token, counts)| Layer::from_counts(token, counts))
            .collect();
        let pruned_library_tokens = candidates.len() as u64;
        let innate = select_top(candidates, config.selection, spam_share, config.input_layers);
        let index = innate.iter().enumerate().map(|(i, l)| (l.token.clone(), i)).collect();
        Ok(ClaAnn {
            config,
            innate,
            index,
            adaptive: HashMap::new(),
            spam_messages: self.spam_messages as f64,
            all_messages: (self.spam_messages + self.ham_messages) as f64,
            messages_since_merge: 0,
            last_merge_unix: 0,
            merges: 0,
            training: TrainingSummary {
                spam_messages: self.spam_messages,
                ham_messages: self.ham_messages,
                library_tokens,
                pruned_library_tokens,
            },
        })
    }
}

/// Orders layers by `selection` (ties by token, for determinism) and keeps the first `keep`.
fn select_top(mut layers: Vec<Layer>, selection: LayerSelection, spam_share: f64, keep: usize) -> Vec<Layer> {
    let rank = |l: &Layer| match selection {
        LayerSelection::SpamMatched => l.spam_matched,
        LayerSelection::Discriminative => (l.weight - spam_share).abs() * (1.0 + l.msg_matched).ln(),
    };
    let order = |a: &Layer, b: &Layer| rank(b).total_cmp(&rank(a)).then_with(|| a.token.cmp(&b.token));
    if selection == LayerSelection::Discriminative {
        let (mut spammy, mut hammy): (Vec<Layer>, Vec<Layer>) = layers.into_iter().partition(|l| l.weight > spam_share);
        spammy.sort_by(order);
        hammy.sort_by(order);
        let half = keep.div_ceil(2);
        let take_spam = half.max(keep.saturating_sub(hammy.len())).min(spammy.len());
        spammy.truncate(take_spam);
        hammy.truncate(keep - take_spam);
        spammy.extend(hammy);
        spammy.sort_by(order);
        return spammy;
    }
    layers.sort_by(order);
    layers.truncate(keep);
    layers
}

impl ClaAnn {
    /// Trains a filter on labelled messages (Algorithm 2): all spam first, then the ham.
    pub fn train<'a>(
        config: ClaAnnConfig,
        spam: impl IntoIterator<Item = &'a Tokens>,
        ham: impl IntoIterator<Item = &'a Tokens>,
    ) -> Result<ClaAnn> {
        let mut library = Library::new();
        for tokens in spam {
            library.add_spam(tokens, config.spam_increment);
        }
        for tokens in ham {
            library.add_ham(tokens);
        }
        library.into_filter(config)
    }

    /// The built-in filter ([`BUILTIN_STATE`]).
    pub fn builtin() -> Result<ClaAnn> {
        Self::from_json(BUILTIN_STATE, "built-in text filter")
    }

    /// Reads a filter saved by [`ClaAnn::to_json`]; `input` names the file in errors.
    pub fn from_json(bytes: &[u8], input: &str) -> Result<ClaAnn> {
        serde_json::from_slice(bytes)
            .map_err(|e| Error::TextFilter { reason: format!("{input}: not a spamlens CLA_ANN state: {e}") })
    }

    /// The whole state as JSON (configuration, layers, counters).
    pub fn to_json(&self) -> Vec<u8> {
        // Serialising plain data (strings, finite numbers, maps with string keys) cannot fail.
        serde_json::to_vec(self).unwrap_or_default()
    }

    /// The configuration in force.
    pub fn config(&self) -> &ClaAnnConfig {
        &self.config
    }

    /// Changes the spam threshold (must lie in 0..=1).
    pub fn set_threshold(&mut self, threshold: f64) -> Result<()> {
        let config = ClaAnnConfig { threshold, ..self.config.clone() };
        if let Some(reason) = config.problem() {
            return Err(Error::TextFilter { reason });
        }
        self.config = config;
        Ok(())
    }

    /// The innate input layer, in selection order.
    pub fn innate_layers(&self) -> &[Layer] {
        &self.innate
    }

    /// Tokens waiting in the adaptive layer.
    pub fn adaptive_len(&self) -> usize {
        self.adaptive.len()
    }

    /// How many merges (Algorithm 4) this filter has done.
    pub fn merges(&self) -> u64 {
        self.merges
    }

    /// What training saw.
    pub fn training(&self) -> &TrainingSummary {
        &self.training
    }

    /// Tokenises a message with this filter's tokenizer.
    pub fn tokens(&self, subject: &str, body: &str) -> Tokens {
        self.config.tokenizer.tokens(subject, body)
    }

    /// Scores a message without changing anything (the paper's testing phase).
    pub fn score(&self, tokens: &Tokens) -> TextScore {
        let mut total = 0.0;
        let mut matched: Vec<&Layer> = Vec::new();
        for token in tokens {
            if let Some(&i) = self.index.get(token) {
                total += self.innate[i].weight;
                matched.push(&self.innate[i]);
            }
        }
        // No matched layer: nothing says spam, so the score is 0 (the paper divides by zero here).
        let score = if matched.is_empty() { 0.0 } else { total / matched.len() as f64 };
        matched.sort_by(|a, b| b.weight.total_cmp(&a.weight).then_with(|| a.token.cmp(&b.token)));
        TextScore {
            score,
            is_spam: score > self.config.threshold,
            threshold: self.config.threshold,
            matched: matched.len(),
            strongest: matched.iter().take(5).map(|l| (l.token.clone(), l.weight)).collect(),
        }
    }

    /// Algorithm 3 on a received message: scores it, collects the new tokens of a message judged
    /// spam in the adaptive layer, applies the self-training correction when
    /// [`ClaAnnConfig::self_training`] is on, and merges when a criterion of Algorithm 1 is met.
    /// `now_unix` is the caller's clock in seconds (core has none of its own).
    pub fn observe(&mut self, tokens: &Tokens, now_unix: u64) -> TextScore {
        let verdict = self.score(tokens);
        if self.config.self_training && verdict.matched > 0 {
            // As written: each matched layer's desired output follows its own weight, and the
            // correction's sign follows the verdict.
            let correction_sign = if verdict.is_spam { 1.0 } else { -1.0 };
            for token in tokens {
                if let Some(&i) = self.index.get(token) {
                    let layer = &mut self.innate[i];
                    let desired = if layer.weight > self.config.threshold {
                        self.config.desired_spam
                    } else {
                        self.config.desired_ham
                    };
                    let correction = (desired - verdict.score).abs() * self.config.learning_rate;
                    layer.weight = (layer.weight + correction_sign * correction).clamp(0.0, 1.0);
                }
            }
        }
        let label = if verdict.is_spam { TextLabel::Spam } else { TextLabel::Ham };
        self.count_message(tokens, label);
        self.maybe_merge(now_unix);
        verdict
    }

    /// The user's "mark as spam / not spam": the perceptron correction towards the desired output of
    /// `label` on the matched layers, repeated until the message gets that label (at most
    /// [`ClaAnnConfig::feedback_max_steps`]); counts updated; a spam message's new tokens go to the
    /// adaptive layer; a merge when a criterion is met.
    pub fn feedback(&mut self, tokens: &Tokens, label: TextLabel, now_unix: u64) -> FeedbackOutcome {
        let before = self.score(tokens);
        let desired = match label {
            TextLabel::Spam => self.config.desired_spam,
            TextLabel::Ham => self.config.desired_ham,
        };
        let mut steps = 0;
        let mut current = before.clone();
        // Error-driven, as a perceptron learns: a message that already has the user's label
        // changes no weight (its counts still change below).
        while current.matched > 0
            && steps < self.config.feedback_max_steps
            && current.is_spam != (label == TextLabel::Spam)
        {
            let correction = (desired - current.score) * self.config.learning_rate;
            for token in tokens {
                if let Some(&i) = self.index.get(token) {
                    let layer = &mut self.innate[i];
                    layer.weight = (layer.weight + correction).clamp(0.0, 1.0);
                }
            }
            steps += 1;
            current = self.score(tokens);
        }
        let adaptive_before = self.adaptive.len();
        self.count_message(tokens, label);
        let new_adaptive_tokens = self.adaptive.len().saturating_sub(adaptive_before);
        let merged = self.maybe_merge(now_unix);
        FeedbackOutcome { before, after: self.score(tokens), steps, new_adaptive_tokens, merged }
    }

    /// Counts a message into the layers' statistics: innate and adaptive layers it contains get
    /// `msg_matched + 1` (and `spam_matched + spam_increment` for spam); a spam message's tokens
    /// that are not innate layers join the adaptive layer (Algorithm 3's continuous learning).
    fn count_message(&mut self, tokens: &Tokens, label: TextLabel) {
        let spam = label == TextLabel::Spam;
        let increment = if spam { self.config.spam_increment } else { 0.0 };
        for token in tokens {
            if let Some(&i) = self.index.get(token) {
                let layer = &mut self.innate[i];
                layer.msg_matched += 1.0;
                layer.spam_matched += increment;
            } else if let Some(counts) = self.adaptive.get_mut(token) {
                counts.msg += 1.0;
                counts.spam += increment;
            } else if spam && self.config.pruning.keeps_token(token) {
                self.adaptive.insert(token.clone(), Counts { msg: 1.0, spam: increment });
            }
        }
        if self.adaptive.len() > self.config.max_adaptive_layers {
            self.shrink_adaptive();
        }
        self.all_messages += 1.0;
        if spam {
            self.spam_messages += 1.0;
        }
        self.messages_since_merge += 1;
    }

    /// Drops the least supported adaptive tokens down to 3/4 of the bound (amortised, so a full
    /// adaptive layer is not re-sorted on every message).
    fn shrink_adaptive(&mut self) {
        let keep = self.config.max_adaptive_layers * 3 / 4;
        let mut entries: Vec<(String, Counts)> = self.adaptive.drain().collect();
        entries.sort_by(|a, b| {
            b.1.spam.total_cmp(&a.1.spam).then_with(|| b.1.msg.total_cmp(&a.1.msg)).then_with(|| a.0.cmp(&b.0))
        });
        entries.truncate(keep);
        self.adaptive = entries.into_iter().collect();
    }

    fn maybe_merge(&mut self, now_unix: u64) -> bool {
        if self.last_merge_unix == 0 {
            self.last_merge_unix = now_unix;
        }
        let by_count = self.config.merge_every_messages.is_some_and(|n| self.messages_since_merge >= n);
        let by_time =
            self.config.merge_every_seconds.is_some_and(|s| now_unix.saturating_sub(self.last_merge_unix) >= s);
        if by_count || by_time {
            self.merge(now_unix);
            true
        } else {
            false
        }
    }

    /// Algorithm 4: merges the adaptive layer into the innate one, ranks all by the configured
    /// selection, keeps the top [`ClaAnnConfig::input_layers`] and empties the adaptive layer.
    /// Innate layers keep their corrected weights; adaptive tokens enter with the paper's weight
    /// from their counts (pruned by the same rules as training).
    pub fn merge(&mut self, now_unix: u64) {
        let spam_share = if self.all_messages > 0.0 { self.spam_messages / self.all_messages } else { 0.5 };
        let mut layers = std::mem::take(&mut self.innate);
        for (token, counts) in self.adaptive.drain() {
            if self.config.pruning.keeps_counts(counts.msg, counts.spam, self.config.spam_increment) {
                layers.push(Layer::from_counts(token, counts));
            }
        }
        self.innate = select_top(layers, self.config.selection, spam_share, self.config.input_layers);
        self.index = self.innate.iter().enumerate().map(|(i, l)| (l.token.clone(), i)).collect();
        self.messages_since_merge = 0;
        self.last_merge_unix = now_unix;
        self.merges += 1;
    }
}

#[cfg(test)]
mod tests;
