//! The CLA_ANN text filter and whole-email parsing on the SpamAssassin public corpus: the paper's
//! protocol, the 15 messages that carry images, and feedback on a held-back spam campaign.

use spamlens_core::cla_ann::{ClaAnnConfig, LayerSelection, TextLabel};
use spamlens_core::email::{EmailLimits, ImageSource, parse_email};
use spamlens_integration_tests::{SPAMASSASSIN_IMAGE_MESSAGES, spamassassin_corpus};
use spamlens_trainer::text_filter::{MailCorpus, ThresholdRule, evaluate};

fn corpus() -> MailCorpus {
    MailCorpus::load(&spamassassin_corpus()).expect("load the SpamAssassin corpus")
}

#[test]
fn every_message_of_the_corpus_parses() {
    let corpus = corpus();
    assert!(corpus.failures.is_empty(), "{:?}", corpus.failures.first());
    assert_eq!(corpus.messages.len(), 6046);
    assert_eq!(corpus.counts(), (1896, 4150));
    let with_subject = corpus.messages.iter().filter(|m| !m.subject.is_empty()).count();
    let with_body = corpus.messages.iter().filter(|m| m.body.split_whitespace().count() >= 3).count();
    assert!(with_subject > 5900, "{with_subject} messages with a subject");
    assert!(with_body > 5950, "{with_body} messages with a body");
    let dated = corpus.messages.iter().filter(|m| m.date_unix.is_some()).count();
    assert!(dated > 5900, "{dated} dated messages");
}

#[test]
fn the_papers_protocol_with_our_defaults_beats_the_papers_total_error() {
    let corpus = corpus();
    let config = ClaAnnConfig::default();
    let rule = ThresholdRule { max_ham_fp: 0.01, ..ThresholdRule::default() };
    let tokens = evaluate::tokenize(&corpus, &config);
    let rows = evaluate::paper_protocol(&corpus, &tokens, &config, &[300, 1000], &rule, 2010).expect("protocol");
    for row in &rows {
        eprintln!(
            "{} layers: threshold {:.4}, false positive {:.3}%, false negative {:.3}%",
            row.input_layers,
            row.threshold,
            100.0 * row.counts.false_positive_share(),
            100.0 * row.counts.false_negative_share()
        );
        assert_eq!(row.counts.total(), 682 + 3435);
    }
    // Measured: 300 layers 0.510% / 5.247%; 1000 layers 0.437% / 3.401% (total 3.84%). The paper's
    // best total error is 4.202% (300 layers: 0.534% / 3.668%).
    let best = &rows[1].counts;
    assert!(best.false_positive_share() <= 0.006, "{best:?}");
    assert!(best.false_negative_share() <= 0.04, "{best:?}");
    assert!(best.false_positive_share() + best.false_negative_share() < 0.04202, "{best:?}");

    // The paper's own ordering (descending spam_matched) misses about twice as much spam here.
    let paper = ClaAnnConfig { selection: LayerSelection::SpamMatched, ..config };
    let rows = evaluate::paper_protocol(&corpus, &tokens, &paper, &[1000], &rule, 2010).expect("protocol");
    assert!(rows[0].counts.false_negative_share() > 1.5 * best.false_negative_share(), "{:?}", rows[0].counts);
}

#[test]
fn the_fifteen_messages_with_images_give_their_images() {
    let root = spamassassin_corpus().join("data");
    let mut decoded = 0;
    let mut total = 0;
    for id in SPAMASSASSIN_IMAGE_MESSAGES {
        let bytes = std::fs::read(root.join(id)).expect("read message");
        let parsed = parse_email(&bytes, id, &EmailLimits::DEFAULT).expect("parses");
        assert!(
            parsed.images.iter().any(|i| i.content_type.as_deref().is_some_and(|t| t.starts_with("image/"))),
            "{id}: no image/* part found ({:?}, {:?})",
            parsed.images,
            parsed.problems
        );
        for image in &parsed.images {
            total += 1;
            if spamlens_core::decode_rgb(&image.bytes, &image.name, &spamlens_core::DecodeLimits::DEFAULT).is_ok() {
                decoded += 1;
            }
        }
    }
    eprintln!("{total} images in 15 messages, {decoded} decode");
    assert!(total >= 15);
    assert!(decoded * 10 >= total * 8, "{decoded} of {total} decode");
}

#[test]
fn inline_images_are_told_from_attachments_in_real_spam() {
    let root = spamassassin_corpus().join("data");
    let mut inline = 0;
    for id in SPAMASSASSIN_IMAGE_MESSAGES {
        let bytes = std::fs::read(root.join(id)).expect("read message");
        let parsed = parse_email(&bytes, id, &EmailLimits::DEFAULT).expect("parses");
        inline += parsed.images.iter().filter(|i| matches!(i.source, ImageSource::Inline { .. })).count();
    }
    assert!(inline >= 1, "no cid-linked image in the 15 messages");
}

#[test]
fn feedback_on_a_held_back_campaign_makes_its_next_messages_spam() {
    let corpus = corpus();
    let config = ClaAnnConfig::default();
    let rule = ThresholdRule { max_ham_fp: 0.01, ..ThresholdRule::default() };
    let tokens = evaluate::tokenize(&corpus, &config);
    let split = evaluate::draw_split(&corpus, evaluate::PAPER_SPLIT, 2010).expect("split");
    let pick = |ids: &[usize]| ids.iter().map(|&i| &tokens[i]).collect::<Vec<_>>();
    let (mut filter, _) =
        evaluate::train_filter(&config, &pick(&split.train_spam), &pick(&split.train_ham), &rule, 2010).expect("train");

    // A campaign: a test spam message the filter misses, sent again with a changing greeting, order
    // number and link (what campaign tools vary).
    let missed = split
        .test_spam
        .iter()
        .copied()
        .find(|&i| !filter.score(&tokens[i]).is_spam && tokens[i].len() > 40 && filter.score(&tokens[i]).matched >= 5)
        .expect("a missed spam message");
    let template = &corpus.messages[missed];
    let variant = |n: usize| {
        let body = format!("Dear customer{n},\n{}\nOrder #{}\nhttp://offer{n}.example/\n", template.body, 1000 + n * 7);
        filter.tokens(&format!("{} {n}", template.subject), &body)
    };
    let campaign: Vec<_> = (0..12).map(variant).collect();
    assert!(campaign.iter().all(|t| !filter.score(t).is_spam), "the campaign starts unrecognised");

    let ham: Vec<_> = split.test_ham.iter().take(1000).map(|&i| &tokens[i]).collect();
    let ham_fp_before = ham.iter().filter(|t| filter.score(t).is_spam).count();
    for (n, message) in campaign.iter().take(3).enumerate() {
        let outcome = filter.feedback(message, TextLabel::Spam, 1_700_000_000 + n as u64);
        assert!(outcome.after.is_spam, "{outcome:?}");
    }
    let caught = campaign[3..].iter().filter(|t| filter.score(t).is_spam).count();
    assert_eq!(caught, 9, "the next 9 messages of the campaign score as spam");
    let ham_fp_after = ham.iter().filter(|t| filter.score(t).is_spam).count();
    eprintln!("ham called spam of 1000 test ham: {ham_fp_before} before the feedback, {ham_fp_after} after");
    assert!(ham_fp_after <= ham_fp_before + 10, "feedback on one campaign must not flood the ham");
}
