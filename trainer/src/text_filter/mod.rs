//! The text filter (CLA_ANN, `spamlens_core::cla_ann`): labelled mail corpora ([`corpus`]),
//! training with a threshold chosen on the training data, and the evaluations of the paper and
//! beyond ([`evaluate`]), rendered as the paper's tables ([`tables`]).

pub mod corpus;
pub mod evaluate;

pub use corpus::{CorpusMessage, MailCorpus};
pub use evaluate::{BinaryCounts, CrossValidation, OnlineRun, ProtocolRow, ThresholdRule};

/// Markdown renderings of the evaluations.
pub mod tables {
    use super::evaluate::{BinaryCounts, CrossValidation, OnlineRun, ProtocolRow};

    fn pct(x: f64) -> String {
        format!("{:.3}%", 100.0 * x)
    }

    /// The paper's Tables 1, 2 and 3 for the protocol rows.
    pub fn protocol(rows: &[ProtocolRow]) -> String {
        let mut out = String::new();
        out.push_str("Table 1: spam precision, recall\n\n| input layers | threshold | spam precision | spam recall |\n| ---: | ---: | ---: | ---: |\n");
        for r in rows {
            out.push_str(&format!(
                "| {} | {:.4} | {} | {} |\n",
                r.input_layers,
                r.threshold,
                pct(r.counts.spam_precision()),
                pct(r.counts.spam_recall())
            ));
        }
        out.push_str("\nTable 2: ham precision, recall\n\n| input layers | ham precision | ham recall |\n| ---: | ---: | ---: |\n");
        for r in rows {
            out.push_str(&format!(
                "| {} | {} | {} |\n",
                r.input_layers,
                pct(r.counts.ham_precision()),
                pct(r.counts.ham_recall())
            ));
        }
        out.push_str(
            "\nTable 3: false positive, false negative, total error (shares of all test messages, as in the paper)\n\n\
             | input layers | false positive | false negative | total error | ham called spam | spam missed |\n\
             | ---: | ---: | ---: | ---: | ---: | ---: |\n",
        );
        for r in rows {
            out.push_str(&format!(
                "| {} | {} | {} | {} | {} / {} | {} / {} |\n",
                r.input_layers,
                pct(r.counts.false_positive_share()),
                pct(r.counts.false_negative_share()),
                pct(r.counts.false_positive_share() + r.counts.false_negative_share()),
                r.counts.false_spam,
                r.counts.false_spam + r.counts.true_ham,
                r.counts.false_ham,
                r.counts.false_ham + r.counts.true_spam,
            ));
        }
        out
    }

    /// One line of counts: the four shares a mail operator asks for.
    pub fn counts_line(c: &BinaryCounts) -> String {
        format!(
            "{} messages: spam P {} R {}, ham P {} R {}; false positive {} (ham→spam rate {}), false negative {}, total error {}",
            c.total(),
            pct(c.spam_precision()),
            pct(c.spam_recall()),
            pct(c.ham_precision()),
            pct(c.ham_recall()),
            pct(c.false_positive_share()),
            pct(c.ham_false_positive_rate()),
            pct(c.false_negative_share()),
            pct(c.false_positive_share() + c.false_negative_share()),
        )
    }

    /// Cross-validation: each fold and the total.
    pub fn cross_validation(cv: &CrossValidation) -> String {
        let mut out = format!("{}-fold cross-validation (stratified, seeded)\n\n", cv.folds.len());
        out.push_str("| fold | threshold | false positive | false negative | total error |\n| ---: | ---: | ---: | ---: | ---: |\n");
        for (i, (c, t)) in cv.folds.iter().zip(&cv.thresholds).enumerate() {
            out.push_str(&format!(
                "| {} | {:.4} | {} | {} | {} |\n",
                i + 1,
                t,
                pct(c.false_positive_share()),
                pct(c.false_negative_share()),
                pct(c.false_positive_share() + c.false_negative_share())
            ));
        }
        out.push_str(&format!("\nall folds: {}\n", counts_line(&cv.total)));
        out
    }

    /// Online mode: the whole stream and each tenth of it.
    pub fn online(run: &OnlineRun) -> String {
        let mut out = format!(
            "Online mode: trained on the oldest {} messages, then each message scored before its label is learnt \
             ({} merges, {} layers new at the end)\n\n| tenth | messages | false positive | false negative | total error |\n| ---: | ---: | ---: | ---: | ---: |\n",
            run.warmup, run.merges, run.new_layers
        );
        for (i, c) in run.by_tenth.iter().enumerate() {
            out.push_str(&format!(
                "| {} | {} | {} | {} | {} |\n",
                i + 1,
                c.total(),
                pct(c.false_positive_share()),
                pct(c.false_negative_share()),
                pct(c.false_positive_share() + c.false_negative_share())
            ));
        }
        out.push_str(&format!("\nwhole stream: {}\n", counts_line(&run.counts)));
        out
    }
}
