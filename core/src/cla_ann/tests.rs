use super::*;

fn toks(text: &str) -> Tokens {
    Tokenizer::default().tokens("", text)
}

fn small_config() -> ClaAnnConfig {
    ClaAnnConfig {
        input_layers: 4,
        threshold: 0.5,
        selection: LayerSelection::SpamMatched,
        merge_every_messages: None,
        merge_every_seconds: None,
        ..ClaAnnConfig::default()
    }
}

#[test]
fn algorithm_2_counts_and_weights() {
    let spam = [toks("buy cheap pills now"), toks("buy cheap watches now"), toks("cheap loans")];
    let ham = [toks("meeting now please"), toks("lunch now"), toks("cheap flights for the team")];
    let filter = ClaAnn::train(small_config(), &spam, &ham).expect("trains");
    let layers: Vec<(&str, f64, f64)> =
        filter.innate_layers().iter().map(|l| (l.token.as_str(), l.msg_matched, l.spam_matched)).collect();
    // "cheap": 3 spam + 1 ham; "now": 2 spam + 2 ham; "buy": 2 spam; single-spam tokens pruned;
    // "meeting" never entered (ham adds no tokens).
    assert_eq!(layers, vec![("cheap", 4.0, 3.0), ("buy", 2.0, 2.0), ("now", 4.0, 2.0)]);
    let cheap = &filter.innate_layers()[0];
    assert!((cheap.weight - 3.0 / 5.0).abs() < 1e-12);
    assert_eq!(filter.training().library_tokens, 6);
    assert_eq!(filter.training().pruned_library_tokens, 3);
}

#[test]
fn scores_are_the_mean_weight_of_matched_layers() {
    let spam = [toks("buy cheap pills now"), toks("buy cheap watches now"), toks("cheap loans")];
    let ham = [toks("meeting now please"), toks("lunch now")];
    let filter = ClaAnn::train(small_config(), &spam, &ham).expect("trains");
    let score = filter.score(&toks("buy cheap stuff"));
    // buy 2/3, cheap 3/4.
    assert!((score.score - (2.0 / 3.0 + 3.0 / 4.0) / 2.0).abs() < 1e-12);
    assert!(score.is_spam);
    assert_eq!(score.matched, 2);
    assert_eq!(score.strongest[0].0, "cheap");
    let none = filter.score(&toks("hello there"));
    assert_eq!((none.score, none.matched, none.is_spam), (0.0, 0, false));
}

#[test]
fn training_needs_both_classes() {
    let err = ClaAnn::train(small_config(), &[toks("a b")], &[]).expect_err("no ham");
    assert!(err.to_string().contains("0 ham"), "{err}");
}

#[test]
fn discriminative_selection_prefers_telling_tokens() {
    // "the" is in every message; "viagra" only in spam; "agenda" mostly ham.
    let spam: Vec<Tokens> = (0..20).map(|i| toks(&format!("the viagra offer{i}"))).collect();
    let mut ham: Vec<Tokens> = (0..20).map(|i| toks(&format!("the agenda item{i}"))).collect();
    ham.push(toks("the"));
    let spam_with_agenda = toks("the agenda viagra");
    let spam: Vec<&Tokens> = spam.iter().chain(std::iter::once(&spam_with_agenda)).collect();
    let config = ClaAnnConfig { input_layers: 2, selection: LayerSelection::Discriminative, ..small_config() };
    let filter = ClaAnn::train(config, spam.iter().copied(), &ham).expect("trains");
    let tokens: Vec<&str> = filter.innate_layers().iter().map(|l| l.token.as_str()).collect();
    assert_eq!(tokens, vec!["viagra", "agenda"]);
    let paper = ClaAnnConfig { input_layers: 2, ..small_config() };
    let filter = ClaAnn::train(paper, spam.iter().copied(), &ham).expect("trains");
    assert_eq!(filter.innate_layers()[0].token, "the");
}

#[test]
fn feedback_moves_the_message_to_the_users_label_and_collects_tokens() {
    let spam = [toks("buy cheap pills now"), toks("buy cheap watches now"), toks("cheap loans")];
    let ham = [toks("meeting now please"), toks("lunch now"), toks("now now")];
    let mut filter = ClaAnn::train(small_config(), &spam, &ham).expect("trains");
    let message = toks("now see our new casino bonus now");
    assert!(!filter.score(&message).is_spam);
    let outcome = filter.feedback(&message, TextLabel::Spam, 1_000);
    assert!(!outcome.before.is_spam && outcome.after.is_spam, "{outcome:?}");
    assert!(outcome.steps >= 1 && outcome.after.score > outcome.before.score);
    // "see", "our", "new", "casino", "bonus" are not innate: they wait in the adaptive layer.
    assert_eq!(outcome.new_adaptive_tokens, 5);
    assert_eq!(filter.adaptive_len(), 5);

    let outcome = filter.feedback(&message, TextLabel::Ham, 1_001);
    assert!(outcome.before.is_spam && !outcome.after.is_spam, "{outcome:?}");
    assert_eq!(outcome.new_adaptive_tokens, 0);
}

#[test]
fn merge_keeps_the_top_layers_and_empties_the_adaptive_layer() {
    let spam = [toks("buy cheap pills now"), toks("buy cheap watches now"), toks("cheap loans")];
    let ham = [toks("meeting now please"), toks("lunch now")];
    let config = ClaAnnConfig { merge_every_messages: Some(3), ..small_config() };
    let mut filter = ClaAnn::train(config, &spam, &ham).expect("trains");
    for t in 0..2 {
        let outcome = filter.feedback(&toks("casino bonus jackpot"), TextLabel::Spam, 10 + t);
        assert!(!outcome.merged);
    }
    let outcome = filter.feedback(&toks("casino bonus"), TextLabel::Spam, 20);
    assert!(outcome.merged);
    assert_eq!(filter.merges(), 1);
    assert_eq!(filter.adaptive_len(), 0);
    let tokens: Vec<&str> = filter.innate_layers().iter().map(|l| l.token.as_str()).collect();
    // casino, bonus: 3 spam each; cheap 3; jackpot 2 (ties broken by token).
    assert_eq!(tokens, vec!["bonus", "casino", "cheap", "buy"]);
    assert!(filter.score(&toks("casino night")).is_spam);
}

#[test]
fn merge_by_time_and_observe_collects_from_spam_verdicts() {
    let spam = [toks("buy cheap pills now"), toks("buy cheap watches now"), toks("cheap loans")];
    let ham = [toks("meeting now please"), toks("lunch now")];
    let config = ClaAnnConfig { merge_every_seconds: Some(60), ..small_config() };
    let mut filter = ClaAnn::train(config, &spam, &ham).expect("trains");
    filter.observe(&toks("buy cheap crypto"), 1_000);
    assert_eq!(filter.adaptive_len(), 1, "crypto collected from a message judged spam");
    filter.observe(&toks("meeting agenda"), 1_030);
    assert_eq!(filter.adaptive_len(), 1, "ham verdicts add no tokens");
    assert_eq!(filter.merges(), 0);
    filter.observe(&toks("lunch"), 1_061);
    assert_eq!(filter.merges(), 1);
}

#[test]
fn self_training_follows_algorithm_3() {
    let spam = [toks("buy cheap pills now"), toks("buy cheap watches now"), toks("cheap loans")];
    let ham = [toks("meeting now please"), toks("lunch now")];
    let config = ClaAnnConfig { self_training: true, learning_rate: 0.5, ..small_config() };
    let mut filter = ClaAnn::train(config, &spam, &ham).expect("trains");
    let before: Vec<f64> = filter.innate_layers().iter().map(|l| l.weight).collect();
    let verdict = filter.observe(&toks("buy cheap"), 5);
    assert!(verdict.is_spam);
    let after: Vec<f64> = filter.innate_layers().iter().map(|l| l.weight).collect();
    // Judged spam: matched layers (cheap, buy) gain |desired - score| × rate; "now" is untouched.
    assert!(after[0] > before[0] && after[1] > before[1]);
    assert_eq!(after[2], before[2]);
}

#[test]
fn state_round_trips_and_bad_state_is_refused() {
    let spam = [toks("buy cheap pills now"), toks("buy cheap watches now"), toks("cheap loans")];
    let ham = [toks("meeting now please"), toks("lunch now")];
    let mut filter = ClaAnn::train(small_config(), &spam, &ham).expect("trains");
    filter.feedback(&toks("casino cheap"), TextLabel::Spam, 7);
    let json = filter.to_json();
    let loaded = ClaAnn::from_json(&json, "state.json").expect("loads");
    assert_eq!(loaded.to_json(), json);
    assert_eq!(loaded.score(&toks("cheap casino")), filter.score(&toks("cheap casino")));

    for (bad, expect) in
        [(&b"{"[..], "state.json: not a spamlens CLA_ANN state"), (&b"[]"[..], "not a spamlens CLA_ANN state")]
    {
        let err = ClaAnn::from_json(bad, "state.json").expect_err("refused");
        assert!(err.to_string().contains(expect), "{err}");
    }
    let text = String::from_utf8(json).expect("utf-8");
    let wrong_format = text.replace(STATE_FORMAT, "something.else");
    let err = ClaAnn::from_json(wrong_format.as_bytes(), "s.json").expect_err("refused");
    assert!(err.to_string().contains("expected 'spamlens.cla_ann.v1'"), "{err}");
    let bad_threshold = text.replace("\"threshold\":0.5", "\"threshold\":7.0");
    let err = ClaAnn::from_json(bad_threshold.as_bytes(), "s.json").expect_err("refused");
    assert!(err.to_string().contains("outside 0..=1"), "{err}");
    // A state whose feedback would loop long (or run backwards) is refused at load.
    let steps = text.replace("\"feedback_max_steps\":20", "\"feedback_max_steps\":4000000000");
    assert_ne!(steps, text, "the state holds feedback_max_steps");
    let err = ClaAnn::from_json(steps.as_bytes(), "s.json").expect_err("refused");
    assert!(err.to_string().contains("s.json: not a spamlens CLA_ANN state: feedback_max_steps 4000000000"), "{err}");
    let rate = text.replace("\"learning_rate\":0.05", "\"learning_rate\":-3.0");
    assert_ne!(rate, text, "the state holds learning_rate");
    let err = ClaAnn::from_json(rate.as_bytes(), "s.json").expect_err("refused");
    assert!(err.to_string().contains("learning_rate -3 is outside 0..=1"), "{err}");
}

#[test]
fn training_refuses_settings_a_saved_state_could_not_load() {
    let config = ClaAnnConfig { feedback_max_steps: MAX_FEEDBACK_STEPS + 1, ..small_config() };
    let err = ClaAnn::train(config, &[toks("cheap pills")], &[toks("lunch")]).expect_err("refused");
    assert!(err.to_string().contains("feedback_max_steps"), "{err}");

    // A threshold changed later is held to the same range, and a refused one leaves the old.
    let mut filter = ClaAnn::train(small_config(), &[toks("cheap pills")], &[toks("lunch")]).expect("trains");
    for bad in [1.5, -0.1, f64::NAN] {
        let err = filter.set_threshold(bad).expect_err("refused");
        assert!(err.to_string().contains("is outside 0..=1"), "{bad}: {err}");
        assert_eq!(filter.config().threshold, 0.5);
    }
    filter.set_threshold(0.8).expect("in range");
    assert_eq!(filter.config().threshold, 0.8);
}

#[test]
fn the_builtin_filter_loads_and_tells_spam_from_ham() {
    let filter = ClaAnn::builtin().expect("the built-in state loads");
    let spam =
        filter.tokens("Cheap meds online", "Buy viagra cheap now! Click here to order, limited offer, free shipping");
    let ham =
        filter.tokens("Re: patch review", "Thanks, I applied the patch to the kernel tree and ran the tests again");
    let (spam, ham) = (filter.score(&spam), filter.score(&ham));
    assert!(spam.score > ham.score, "spam {} vs ham {}", spam.score, ham.score);
}

#[test]
fn adaptive_layer_is_bounded() {
    let spam = [toks("a b"), toks("a b")];
    let ham = [toks("c")];
    let config = ClaAnnConfig { max_adaptive_layers: 100, ..small_config() };
    let mut filter = ClaAnn::train(config, &spam, &ham).expect("trains");
    for i in 0..50 {
        let message: Tokens = (0..10).map(|j| format!("tok{i}_{j}")).collect();
        filter.feedback(&message, TextLabel::Spam, 1);
        assert!(filter.adaptive_len() <= 100);
    }
}
