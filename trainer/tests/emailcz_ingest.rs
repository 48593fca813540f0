//! Streaming ingest of Email.cz-format files: labels, counts, malformed lines, order, gzip.

use std::io::Write;

use spamlens_trainer::emailcz::{
    DropReason, FilterOptions, ImageClass, IngestOptions, NoIngestProgress, ingest, synth,
};

fn features(value: &str) -> String {
    vec![value; 2048].join(", ")
}

fn line(users: &str, value: &str) -> String {
    format!("[{users}, [{}]]\n", features(value))
}

fn hand_made() -> String {
    let mut text = String::new();
    text += &line(r#"[["USER_MESSAGE_MARK_SPAM"], ["USER_MESSAGE_MARK_SPAM"]]"#, "0.5"); // 1 spam
    text += &line(r#"[["USER_MESSAGE_UNMARK_SPAM"], ["USER_MESSAGE_MARK_NONAD"]]"#, "0.25"); // 2 ham
    text += "\n"; // 3 blank
    text += &line(r#"[["USER_MESSAGE_MARK_AD"], ["USER_MESSAGE_MARK_SPAM"]]"#, "0.0"); // 4 tie
    text += &line(r#"[]"#, "0.0"); // 5 no reactions
    text += "[[[\"USER_MESSAGE_MARK_SPAM\"]], [1.0, 2.0]]\n"; // 6 too few floats
    text += &line(r#"[["USER_MESSAGE_MARK_EGGS"]]"#, "0.0"); // 7 unknown reaction
    text += "{not json\n"; // 8
    text += &line(r#"[["USER_MESSAGE_MARK_AD", "USER_MESSAGE_MARK_AD"], ["USER_MESSAGE_MARK_AD"]]"#, "3.0517578e-05"); // 9 ad
    text
}

#[test]
fn hand_made_lines_are_labelled_counted_and_reported_by_line_number() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("small.json");
    std::fs::write(&path, hand_made()).unwrap();
    let (data, report) = ingest(&path, &IngestOptions::default(), &NoIngestProgress).unwrap();
    assert_eq!(report.lines, 8, "blank lines are not counted");
    assert_eq!(report.kept, 3);
    assert_eq!(data.labels, vec![ImageClass::Spam, ImageClass::Ham, ImageClass::Ad]);
    assert_eq!(data.lines, vec![1, 2, 9]);
    assert_eq!(data.reactions, vec![2, 2, 3]);
    assert_eq!(data.row(1).unwrap()[7], 0.25);
    assert_eq!(data.row(2).unwrap()[0], 3.051_757_8e-5);
    assert_eq!(report.dropped.get(&DropReason::Tie), Some(&1));
    assert_eq!(report.dropped.get(&DropReason::NoReactions), Some(&1));
    assert_eq!(report.malformed, 3);
    let lines: Vec<u64> = report.first_malformed.iter().map(|(n, _)| *n).collect();
    assert_eq!(lines, vec![6, 7, 8]);
    assert!(report.first_malformed[0].1.contains("2 feature values, expected 2048"));
    assert!(report.first_malformed[1].1.contains("unknown reaction 'USER_MESSAGE_MARK_EGGS'"));
}

#[test]
fn strict_mode_fails_on_the_first_malformed_line() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("small.json");
    std::fs::write(&path, hand_made()).unwrap();
    let options = IngestOptions { strict: true, ..IngestOptions::default() };
    let err = ingest(&path, &options, &NoIngestProgress).unwrap_err().to_string();
    assert!(err.contains("small.json") && err.contains("line 6:") && err.contains("--strict"), "{err}");
}

#[test]
fn filters_apply_during_ingest() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("small.json");
    std::fs::write(&path, hand_made()).unwrap();
    let options = IngestOptions {
        filter: FilterOptions { min_reactions: 2, ..FilterOptions::default() },
        ..IngestOptions::default()
    };
    let (data, report) = ingest(&path, &options, &NoIngestProgress).unwrap();
    assert_eq!(data.labels, vec![ImageClass::Ad]);
    // Lines 1, 2 and 4 have exactly two reactions (the reaction count is checked before ties).
    assert_eq!(report.dropped.get(&DropReason::TooFewReactions), Some(&3));
}

#[test]
fn gzip_and_plain_synthetic_files_give_the_same_ordered_result_on_any_thread_count() {
    let dir = tempfile::tempdir().unwrap();
    let plain = dir.path().join("synth.json");
    let gz = dir.path().join("synth.json.gz");
    let mut text = Vec::new();
    synth::write_lines(1500, 42, &mut text, &mut |_| {}).unwrap();
    std::fs::write(&plain, &text).unwrap();
    let mut encoder = flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::fast());
    encoder.write_all(&text).unwrap();
    std::fs::write(&gz, encoder.finish().unwrap()).unwrap();

    let one_thread = IngestOptions { threads: 1, ..IngestOptions::default() };
    let (a, report_a) = ingest(&plain, &one_thread, &NoIngestProgress).unwrap();
    let (b, report_b) =
        ingest(&gz, &IngestOptions { threads: 3, ..IngestOptions::default() }, &NoIngestProgress).unwrap();
    assert_eq!(report_a.lines, 1500);
    assert_eq!(report_a.malformed, 0);
    assert_eq!((report_a.kept, report_b.kept), (report_b.kept, report_a.kept));
    assert!(report_a.kept > 1300, "most synthetic images are labelled: {}", report_a.kept);
    assert_eq!(a.labels, b.labels);
    assert_eq!(a.lines, b.lines);
    assert_eq!(a.features, b.features);
    assert!(a.features.iter().all(|v| *v >= 0.0));
    // Every class appears, spam most often (Table 4).
    let spam = report_a.per_class[&ImageClass::Spam];
    assert!(spam > report_a.per_class[&ImageClass::Ham] && spam > report_a.per_class[&ImageClass::Ad]);

    let capped = IngestOptions { max_lines: Some(100), ..IngestOptions::default() };
    let (_, report) = ingest(&gz, &capped, &NoIngestProgress).unwrap();
    assert_eq!(report.lines, 100);
}

/// The grid reads the file once and selects each cell from the kept images' reaction counts and
/// consistency; that must keep exactly what ingesting with the cell's filters keeps.
#[test]
fn grid_cells_select_what_the_filters_would_keep() {
    use spamlens_trainer::emailcz::FilterMode;
    use spamlens_trainer::grid::{MIN_CONSISTENCY, MIN_REACTIONS, select};
    let dir = tempfile::tempdir().unwrap();
    let plain = dir.path().join("synth.json");
    let mut text = Vec::new();
    synth::write_lines(3000, 7, &mut text, &mut |_| {}).unwrap();
    std::fs::write(&plain, &text).unwrap();
    for mode in [FilterMode::Paper, FilterMode::ReferenceCode] {
        let mut base = IngestOptions::default();
        base.filter.mode = mode;
        let (all, _) = ingest(&plain, &base, &NoIngestProgress).unwrap();
        for &n in &MIN_REACTIONS {
            for &c in &MIN_CONSISTENCY {
                let mut options = base;
                options.filter.min_reactions = n;
                options.filter.min_consistency = c;
                let (filtered, _) = ingest(&plain, &options, &NoIngestProgress).unwrap();
                let rows = select(&all.reactions, &all.consistency, n, c);
                let selected: Vec<u64> = rows.iter().map(|&i| all.lines[i]).collect();
                assert_eq!(selected, filtered.lines, "{mode:?}, >{n} reactions, consistency ≥ {c}");
            }
        }
    }
}
