//! Feature extraction into a store: caching by content hash, identical bytes computed once,
//! stale rows dropped, features of another backbone never mixed in, pandas/pyarrow can read it.

use std::path::Path;
use std::process::Command;

use spamlens_integration_tests as fixtures;
use spamlens_trainer::features::{Backbone, ExtractOptions, FeatureStore, NoExtractProgress, extract_to_store};

fn copy_sample(root: &Path, n: usize) -> Vec<String> {
    let dredze = fixtures::imagespam_dataset("dredze2007");
    let rows = fixtures::manifest(&dredze);
    let mut copied = Vec::new();
    for (path, _, _) in rows.iter().step_by(rows.len() / n).take(n) {
        let dest = root.join(path);
        std::fs::create_dir_all(dest.parent().unwrap()).unwrap();
        std::fs::copy(dredze.join(path), &dest).unwrap();
        copied.push(path.clone());
    }
    copied
}

#[test]
fn second_run_reuses_identical_bytes_are_computed_once_and_stale_rows_go() {
    let dir = tempfile::tempdir().unwrap();
    let root = dir.path().join("data");
    let copied = copy_sample(&root, 8);
    // The same bytes under another label: one computation, two rows.
    std::fs::create_dir_all(root.join("ad")).unwrap();
    std::fs::copy(root.join(&copied[0]), root.join("ad/copy.bin")).unwrap();

    let backbone = Backbone::load(&fixtures::reference_backbone(), None).unwrap();
    let store_path = dir.path().join("store.parquet");
    let options = ExtractOptions { batch_size: 3, checkpoint_every: 4, ..Default::default() };
    let first = extract_to_store(&root, &store_path, &backbone, &options, &NoExtractProgress).unwrap();
    assert_eq!((first.files, first.computed, first.duplicates, first.reused), (9, 8, 1, 0));
    assert_eq!(first.rows, 9);
    assert!(first.failures.is_empty(), "{:?}", first.failures);

    let store = FeatureStore::read(&store_path).unwrap();
    assert_eq!(store.provenance.backbone_sha256, backbone.provenance.backbone_sha256);
    assert_eq!(store.feature_dim, 2048);
    let copy = store.rows.iter().find(|r| r.path == "ad/copy.bin").unwrap();
    let original = store.rows.iter().find(|r| r.path == copied[0]).unwrap();
    assert_eq!((copy.label.as_str(), copy.subset.as_str()), ("ad", "ad"));
    assert_eq!(copy.sha256, original.sha256);
    assert_eq!(copy.features, original.features);

    // Nothing new: everything reused. One file removed: its row goes.
    std::fs::remove_file(root.join(&copied[1])).unwrap();
    let second = extract_to_store(&root, &store_path, &backbone, &options, &NoExtractProgress).unwrap();
    assert_eq!((second.files, second.computed, second.reused, second.removed, second.rows), (8, 0, 8, 1, 8));
    let again = FeatureStore::read(&store_path).unwrap();
    for row in &again.rows {
        let before = store.rows.iter().find(|r| r.path == row.path).unwrap();
        assert_eq!(row, before, "reused rows are unchanged");
    }
}

#[test]
fn a_store_of_another_backbone_is_not_mixed() {
    let dir = tempfile::tempdir().unwrap();
    let root = dir.path().join("data");
    copy_sample(&root, 2);
    let store_path = dir.path().join("store.parquet");
    let foreign = FeatureStore {
        rows: Vec::new(),
        provenance: spamlens_trainer::features::StoreProvenance {
            backbone_sha256: "0".repeat(64),
            ..Default::default()
        },
        feature_dim: 2048,
    };
    foreign.write(&store_path).unwrap();
    let backbone = Backbone::load(&fixtures::reference_backbone(), None).unwrap();
    let err = extract_to_store(&root, &store_path, &backbone, &ExtractOptions::default(), &NoExtractProgress)
        .unwrap_err()
        .to_string();
    assert!(err.contains("features of different backbones cannot be mixed") && err.contains("--rebuild"), "{err}");
    let options = ExtractOptions { rebuild: true, ..Default::default() };
    let report = extract_to_store(&root, &store_path, &backbone, &options, &NoExtractProgress).unwrap();
    assert_eq!(report.rows, 2);
}

#[test]
fn pandas_reads_the_store() {
    let dir = tempfile::tempdir().unwrap();
    let root = dir.path().join("data");
    copy_sample(&root, 3);
    let backbone = Backbone::load(&fixtures::reference_backbone(), None).unwrap();
    let store_path = dir.path().join("store.parquet");
    extract_to_store(&root, &store_path, &backbone, &ExtractOptions::default(), &NoExtractProgress).unwrap();
    let script = r#"
import sys, pyarrow.parquet as pq
table = pq.read_table(sys.argv[1])
meta = pq.read_metadata(sys.argv[1]).metadata
df = table.to_pandas()
assert list(df.columns) == ["sha256", "path", "label", "subset", "width", "height", "format", "features"], df.columns
assert len(df) == 3 and all(len(f) == 2048 for f in df.features)
print(meta[b"spamlens.backbone_sha256"].decode(), len(df))
"#;
    let python = std::env::var("PYTHON").unwrap_or_else(|_| "python3".into());
    let out = Command::new(&python).arg("-c").arg(script).arg(&store_path).output().expect("run python");
    assert!(
        out.status.success(),
        "pyarrow/pandas could not read the store (`{python} -m pip install pyarrow pandas`):\n{}",
        String::from_utf8_lossy(&out.stderr)
    );
    assert_eq!(String::from_utf8_lossy(&out.stdout).trim(), format!("{} 3", backbone.provenance.backbone_sha256));
}

#[test]
fn identical_broken_files_are_each_listed_under_their_own_name() {
    let dir = tempfile::tempdir().unwrap();
    let root = dir.path().join("data");
    copy_sample(&root, 1);
    std::fs::create_dir_all(root.join("spam")).unwrap();
    std::fs::write(root.join("spam/a.gif"), b"GIF89a broken").unwrap();
    std::fs::write(root.join("spam/b.gif"), b"GIF89a broken").unwrap();
    let backbone = Backbone::load(&fixtures::reference_backbone(), None).unwrap();
    let store_path = dir.path().join("store.parquet");
    let report =
        extract_to_store(&root, &store_path, &backbone, &ExtractOptions::default(), &NoExtractProgress).unwrap();
    assert_eq!((report.rows, report.duplicates, report.failures.len()), (1, 1, 2));
    let paths: Vec<&str> = report.failures.iter().map(|f| f.path.as_str()).collect();
    assert_eq!(paths, ["spam/a.gif", "spam/b.gif"]);
    for failure in &report.failures {
        assert!(failure.error.starts_with(&failure.path), "{failure:?}");
    }
    assert!(report.failures[1].error.contains("same bytes as spam/a.gif, which failed: spam/a.gif: corrupt"));
}

#[test]
fn a_feedback_log_is_a_dataset_labelled_by_its_reactions() {
    use spamlens_core::cla_ann::TextLabel;
    use spamlens_core::feedback::{FeedbackImage, FeedbackRecord, Reaction};
    let dir = tempfile::tempdir().unwrap();
    let root = dir.path().join("me.json.feedback");
    std::fs::create_dir_all(root.join("images")).unwrap();
    let sample = fixtures::dataset_sample(3);
    let mut images = Vec::new();
    for path in &sample {
        let bytes = std::fs::read(path).unwrap();
        let sha256 = spamlens_core::scan::sha256_hex(&bytes);
        let file = format!("images/{sha256}.img");
        std::fs::write(root.join(&file), &bytes).unwrap();
        images.push(FeedbackImage { sha256, name: path.display().to_string(), file: Some(file) });
    }
    // Two users mark the message with images 0 and 1 as spam; one says image 2's message is not spam.
    let record = |label: TextLabel, images: Vec<FeedbackImage>| FeedbackRecord {
        time_unix: 1,
        message: "m.eml".into(),
        message_id: None,
        label,
        reaction: Reaction::for_label(label),
        images,
        text_score_before: 0.2,
        text_score_after: 0.8,
    };
    let log = [
        record(TextLabel::Spam, images[..2].to_vec()),
        record(TextLabel::Spam, images[..2].to_vec()),
        record(TextLabel::Ham, vec![images[2].clone()]),
    ]
    .iter()
    .map(|r| serde_json::to_string(r).unwrap())
    .collect::<Vec<_>>()
    .join("\n");
    std::fs::write(root.join("reactions.jsonl"), log).unwrap();

    let backbone = Backbone::load(&fixtures::reference_backbone(), None).unwrap();
    let store_path = dir.path().join("feedback.parquet");
    let report =
        extract_to_store(&root, &store_path, &backbone, &ExtractOptions::default(), &NoExtractProgress).unwrap();
    assert!(report.failures.is_empty(), "{:?}", report.failures);
    let store = FeatureStore::read(&store_path).unwrap();
    let mut labels: Vec<(String, String)> = store.rows.iter().map(|r| (r.sha256.clone(), r.label.clone())).collect();
    labels.sort();
    let mut expected = vec![
        (images[0].sha256.clone(), "spam".to_owned()),
        (images[1].sha256.clone(), "spam".to_owned()),
        (images[2].sha256.clone(), "ham".to_owned()),
    ];
    expected.sort();
    assert_eq!(labels, expected);
    assert!(store.rows.iter().all(|r| r.features.len() == 2048));
}

/// A `tiles` store holds, per image, the mean of the backbone's features over the image's views
/// (letterbox + tiles), each view run alone here; batching views of several images together must
/// not mix them up.
#[test]
fn a_tiles_store_averages_each_images_views() {
    use spamlens_core::{DecodeLimits, Fit, prepare_image};

    let dir = tempfile::tempdir().unwrap();
    let root = dir.path().join("data");
    let copied = copy_sample(&root, 6);
    let backbone = Backbone::load(&fixtures::reference_backbone(), None).unwrap().with_fit(Fit::Tiles);
    let store_path = dir.path().join("store.tiles.parquet");
    let options = ExtractOptions { batch_size: 4, jobs: 1, ..Default::default() };
    let report = extract_to_store(&root, &store_path, &backbone, &options, &NoExtractProgress).unwrap();
    assert!(report.failures.is_empty(), "{:?}", report.failures);
    let store = FeatureStore::read(&store_path).unwrap();
    assert_eq!(store.provenance.preprocessing, backbone.preprocessing.describe());
    assert!(store.provenance.preprocessing.contains("features averaged over the views"));

    let mut several_views = 0;
    for path in &copied {
        let bytes = std::fs::read(root.join(path)).unwrap();
        let prepared = prepare_image(&bytes, path, &DecodeLimits::DEFAULT, &backbone.preprocessing).unwrap();
        assert_eq!(prepared.views, backbone.preprocessing.view_count(prepared.width, prepared.height));
        several_views += usize::from(prepared.views > 1);
        let per_view = backbone.preprocessing.values_per_image();
        let mut mean = vec![0.0f32; 2048];
        for view in prepared.tensor.chunks_exact(per_view) {
            let out = backbone.model.run(view.to_vec(), 1).unwrap();
            let features = out.take(&backbone.provenance.feature_tensor).unwrap();
            mean.iter_mut().zip(features.rows().next().unwrap()).for_each(|(m, v)| *m += v / prepared.views as f32);
        }
        let row = store.rows.iter().find(|r| &r.path == path).unwrap();
        let worst = row.features.iter().zip(&mean).map(|(a, b)| (a - b).abs()).fold(0.0f32, f32::max);
        assert!(worst < 1e-3, "{path}: stored features differ from the mean of its views by {worst}");
    }
    assert!(several_views >= 2, "the sample should hold elongated images ({several_views} had tiles)");
}
