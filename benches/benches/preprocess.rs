//! Decode + preprocess cost per image (the CPU work that runs beside the backbone).

use criterion::{Criterion, Throughput, criterion_group, criterion_main};
use spamlens_core::{DecodeLimits, Preprocessing, prepare_image};

fn decode_and_preprocess(c: &mut Criterion) {
    let mut group = c.benchmark_group("decode+preprocess");
    for path in spamlens_benches::test_images() {
        let bytes = std::fs::read(&path).expect("test image");
        let name = path.file_name().map(|n| n.to_string_lossy().into_owned()).unwrap_or_default();
        group.throughput(Throughput::Elements(1));
        group.bench_function(&name, |b| {
            b.iter(|| prepare_image(&bytes, &name, &DecodeLimits::DEFAULT, &Preprocessing::RESNET_IMAGENET))
        });
    }
    group.finish();
}

criterion_group!(benches, decode_and_preprocess);
criterion_main!(benches);
