//! Honest evaluation of a head recipe: group-aware k-fold cross-validation over labelled image
//! datasets, per task (e.g. Dredze personal / public / combined, Image Spam Hunter, all), with a
//! calibrated operating point chosen inside each training fold.
//!
//! For every fold the recipe ([`fit_recipe`]) sees only the other folds: it holds out a
//! group-aware validation part of them, trains (early stopping on validation when asked), fits a
//! temperature on validation, and picks the spam threshold that keeps validation ham→spam false
//! positives within the target. The held-out fold is then scored once. Reported numbers pool the
//! out-of-fold scores of all folds: weighted F1 and ham→spam false positives both at the most
//! probable class and at the recipe's own threshold, spam recall at 1% and 0.1% false positives,
//! ROC AUC and average precision, with ROC and precision–recall plots.

pub mod cross_validation;
pub mod fused;
pub mod groups;
pub mod pool;
pub mod recipe;
pub mod report;

pub use cross_validation::*;
pub use pool::*;
pub use recipe::*;

/// [`TaskResult::model`] of the image head alone.
pub const MODEL_IMAGE: &str = "image";
/// [`TaskResult::model`] of the text model alone.
pub const MODEL_TEXT: &str = "text";
/// [`TaskResult::model`] of the fused head.
pub const MODEL_FUSED: &str = "fused";

/// The class whose false positives an operating point bounds, and the class it protects.
pub const SPAM: &str = "spam";
/// See [`SPAM`].
pub const HAM: &str = "ham";

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn curves_rank_by_log_odds_where_probabilities_saturate() {
        assert_eq!(spam_log_odds(&[0.0, 3.0], 1), 3.0);
        assert!((spam_log_odds(&[1.0, 2.0, 0.0], 1) - (2.0 - (1f32.exp() + 1.0).ln())).abs() < 1e-6);
        assert_eq!(spam_log_odds(&[5.0], 0), f32::INFINITY);

        // Four spam and one ham all at p(spam) = 1.0 in f32; the log-odds put the ham last.
        let task = TaskSpec { name: "t".into(), members: Vec::new() };
        let classes = ["ham".to_string(), "spam".to_string()];
        let labels = vec![1, 1, 1, 1, 0, 0];
        let probabilities = [0.0, 1.0].repeat(5).into_iter().chain([0.9, 0.1]).collect::<Vec<f32>>();
        let saturated = OutOfFold {
            pool_rows: (0..6).collect(),
            labels,
            probabilities,
            thresholds: vec![Some(0.5); 6],
            spam_log_odds: None,
        };
        let tied = summarise(&task, &classes, &saturated, 6).unwrap();
        assert_eq!(tied.recall_at_fp_1pct, Some(0.0), "a ham tied with every spam");
        let ranked = OutOfFold { spam_log_odds: Some(vec![40.0, 39.0, 38.0, 37.0, 20.0, -2.0]), ..saturated };
        let result = summarise(&task, &classes, &ranked, 6).unwrap();
        assert_eq!(result.recall_at_fp_1pct, Some(1.0));
        assert_eq!(result.roc_auc, Some(1.0));
        // Decisions at the threshold still read the probabilities: the saturated ham is a false positive.
        let at_threshold = result.at_threshold.unwrap();
        assert_eq!(at_threshold.ham_to_spam_false_positive_rate, Some(0.5));
    }

    #[test]
    fn text_like_images_have_few_colours_and_sharp_edges() {
        let stripes = image::RgbImage::from_fn(100, 100, |x, _| image::Rgb(if x % 10 < 5 { [0; 3] } else { [255; 3] }));
        let [colours, edges] = colour_and_edge_signals(&stripes);
        assert!((colours - 3f32.log2()).abs() < 1e-6, "{colours}");
        assert!((edges - 0.2).abs() < 0.02, "{edges}");
        let smooth = image::RgbImage::from_fn(256, 64, |x, y| image::Rgb([x as u8, y as u8, 128]));
        let [colours, edges] = colour_and_edge_signals(&smooth);
        assert!(colours > 13.0, "{colours}");
        assert_eq!(edges, 0.0);
        assert_eq!(colour_and_edge_signals(&image::RgbImage::new(1, 1)), [1.0, 0.0]);
    }

    #[test]
    fn task_specs_parse_and_refuse_nonsense() {
        let t = TaskSpec::parse("personal=dredze2007/ham+dredze2007/spam/personal").unwrap();
        assert_eq!(t.name, "personal");
        assert_eq!(
            t.members,
            [("dredze2007".to_owned(), "ham/".to_owned()), ("dredze2007".to_owned(), "spam/personal/".to_owned())]
        );
        assert_eq!(TaskSpec::parse("all=a+b").unwrap().members[1], ("b".to_owned(), String::new()));
        for bad in ["nothing", "=a", "x=", "x=a+"] {
            assert!(TaskSpec::parse(bad).is_err(), "{bad}");
        }
    }
}
