//! Hostile and awkward images: an `Ok` tensor or a clear error naming the file, never a panic;
//! a feature-store run over a folder mixing them keeps every good image.

use spamlens_core::{DecodeLimits, Error, Preprocessing, prepare_image};
use spamlens_integration_tests as fixtures;
use spamlens_integration_tests::Expect;
use spamlens_trainer::features::{Backbone, ExtractOptions, FeatureStore, NoExtractProgress, extract_to_store};

#[test]
fn every_hostile_image_gives_a_tensor_or_a_named_error() {
    for (name, bytes, expect) in fixtures::hostile_images() {
        let result = std::panic::catch_unwind(|| {
            prepare_image(&bytes, name, &DecodeLimits::DEFAULT, &Preprocessing::RESNET_IMAGENET)
        })
        .unwrap_or_else(|_| panic!("{name}: decoding panicked"));
        match result {
            Ok(image) => {
                assert_ne!(
                    expect,
                    Expect::Error,
                    "{name}: expected an error, got a {}x{} image",
                    image.width,
                    image.height
                );
                assert_eq!(image.tensor.len(), 3 * 224 * 224);
                assert!(image.tensor.iter().all(|v| v.is_finite()), "{name}: non-finite tensor");
            }
            Err(e) => {
                assert_ne!(expect, Expect::Image, "{name}: expected a tensor, got: {e}");
                let message = e.to_string();
                assert!(message.starts_with(name), "{name}: error does not name the input: {message}");
            }
        }
    }
}

#[test]
fn limits_are_enforced_before_decoding() {
    let images = fixtures::hostile_images();
    let bytes_of = |wanted: &str| images.iter().find(|(n, _, _)| *n == wanted).map(|(_, b, _)| b.clone()).unwrap();

    let err = prepare_image(&bytes_of("bomb.png"), "bomb.png", &DecodeLimits::DEFAULT, &Preprocessing::RESNET_IMAGENET)
        .unwrap_err();
    assert!(matches!(err, Error::DimensionsTooLarge { width: 100_000, height: 100_000, .. }), "{err}");
    assert!(err.to_string().contains("over the dimension limit of 16384x16384"), "{err}");

    let narrow = DecodeLimits { max_width: 4096, max_height: 4096, ..DecodeLimits::DEFAULT };
    let err =
        prepare_image(&bytes_of("strip-10000x3.png"), "strip", &narrow, &Preprocessing::RESNET_IMAGENET).unwrap_err();
    assert!(matches!(err, Error::DimensionsTooLarge { width: 10_000, height: 3, .. }), "{err}");

    let small_memory = DecodeLimits { max_decoded_bytes: 50_000, ..DecodeLimits::DEFAULT };
    let err = prepare_image(&bytes_of("strip-10000x3.png"), "strip", &small_memory, &Preprocessing::RESNET_IMAGENET)
        .unwrap_err();
    assert!(matches!(err, Error::DecodedSizeTooLarge { needed: 120_000, limit: 50_000, .. }), "{err}");

    // The pixel count is its own limit: 30000 pixels in a strip that passes the side limits.
    let few_pixels = DecodeLimits { max_pixels: 29_999, ..DecodeLimits::DEFAULT };
    let err = prepare_image(&bytes_of("strip-10000x3.png"), "strip", &few_pixels, &Preprocessing::RESNET_IMAGENET)
        .unwrap_err();
    assert!(matches!(err, Error::TooManyPixels { pixels: 30_000, limit: 29_999, .. }), "{err}");
    assert!(err.to_string().contains("10000x3 = 30000 pixels, over the pixel limit of 29999"), "{err}");
    let enough = DecodeLimits { max_pixels: 30_000, ..DecodeLimits::DEFAULT };
    assert!(prepare_image(&bytes_of("strip-10000x3.png"), "strip", &enough, &Preprocessing::RESNET_IMAGENET).is_ok());
}

#[test]
fn awkward_colour_models_decode_to_sensible_pixels() {
    let images = fixtures::hostile_images();
    let decode = |wanted: &str| {
        let bytes = images.iter().find(|(n, _, _)| *n == wanted).map(|(_, b, _)| b.clone()).unwrap();
        spamlens_core::decode_rgb(&bytes, wanted, &DecodeLimits::DEFAULT).unwrap()
    };
    // The first GIF frame is black-ish red/green 0,255,64.
    let gif = decode("animated.gif");
    assert_eq!((gif.width(), gif.height()), (40, 30));
    let px = gif.rgb.get_pixel(5, 5).0;
    assert!(px[0] < 10 && px[1] > 245, "first frame expected, got {px:?}");
    // Transparent half of the 16-bit RGBA PNG is white.
    let rgba16 = decode("rgba16.png");
    assert_eq!(rgba16.rgb.get_pixel(40, 10).0, [255, 255, 255]);
    assert_ne!(rgba16.rgb.get_pixel(10, 10).0, [255, 255, 255]);
    // CMYK JPEG comes out as RGB.
    let cmyk = decode("cmyk.jpg");
    assert_eq!((cmyk.width(), cmyk.height(), cmyk.format.as_str()), (64, 48, "JPEG"));
}

#[test]
fn store_run_over_a_mixed_folder_keeps_every_good_image() {
    let dir = tempfile::tempdir().unwrap();
    let root = dir.path().join("mixed");
    std::fs::create_dir_all(root.join("ham")).unwrap();
    std::fs::create_dir_all(root.join("spam")).unwrap();
    let hostile = fixtures::hostile_images();
    for (name, bytes, _) in &hostile {
        std::fs::write(root.join("spam").join(name), bytes).unwrap();
    }
    for (path, _) in fixtures::test_images() {
        std::fs::copy(&path, root.join("ham").join(path.file_name().unwrap())).unwrap();
    }
    let backbone = Backbone::load(&fixtures::reference_backbone(), None).unwrap();
    let store_path = dir.path().join("mixed.parquet");
    let report =
        extract_to_store(&root, &store_path, &backbone, &ExtractOptions::default(), &NoExtractProgress).unwrap();
    assert_eq!(report.files, hostile.len() + 3);
    assert_eq!(report.rows + report.failures.len(), report.files, "every file is a row or a listed failure");
    for failure in &report.failures {
        assert!(failure.error.starts_with(&failure.path), "error names its file: {failure:?}");
    }
    let store = FeatureStore::read(&store_path).unwrap();
    assert_eq!(store.rows.len(), report.rows);
    for (name, _, expect) in &hostile {
        let path = format!("spam/{name}");
        let stored = store.rows.iter().any(|r| r.path == path);
        let failed = report.failures.iter().any(|f| f.path == path);
        assert!(stored != failed, "{path}: exactly one of row and failure");
        match expect {
            Expect::Image => assert!(stored, "{path} must be in the store"),
            Expect::Error => assert!(failed, "{path} must be listed as failed"),
            Expect::Either => {}
        }
    }
    for (path, _) in fixtures::test_images() {
        let path = format!("ham/{}", path.file_name().unwrap().to_string_lossy());
        assert!(store.rows.iter().any(|r| r.path == path), "{path} must be in the store");
    }
    let failures = std::fs::read_to_string(report.failures_file.unwrap()).unwrap();
    assert_eq!(failures.lines().count(), report.failures.len());
    assert!(failures.contains("spam/bomb.png") && failures.contains("dimension limit"));

    assert!(store.rows.iter().all(|r| r.features.len() == 2048));
    assert!(store.rows.iter().any(|r| r.path == "spam/strip-10000x3.png" && r.width == 10_000 && r.height == 3));
}
