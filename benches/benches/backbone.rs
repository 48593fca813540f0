//! Backbone inference latency at batch 1 and 8, single-threaded and with 2 intra-op threads.

use criterion::{BenchmarkId, Criterion, Throughput, criterion_group, criterion_main};
use spamlens_core::{Batching, DecodeLimits, Model, ModelOptions, Preprocessing, prepare_image};

fn backbone(c: &mut Criterion) {
    let bytes = std::fs::read(spamlens_benches::backbone_path()).expect("backbone");
    let images: Vec<Vec<f32>> = spamlens_benches::test_images()
        .iter()
        .map(|p| {
            let data = std::fs::read(p).expect("image");
            prepare_image(&data, "bench", &DecodeLimits::DEFAULT, &Preprocessing::RESNET_IMAGENET)
                .expect("prepare")
                .tensor
        })
        .collect();
    let mut group = c.benchmark_group("backbone");
    group.sample_size(10);
    for threads in [1usize, 2] {
        let options =
            ModelOptions { intra_op_threads: Some(threads), batching: Batching::PerItem, ..Default::default() };
        let model = Model::from_bytes(&bytes, "backbone", &options).expect("load");
        for batch in [1usize, 8] {
            let input: Vec<f32> = images.iter().cycle().take(batch).flatten().copied().collect();
            group.throughput(Throughput::Elements(batch as u64));
            group.bench_with_input(BenchmarkId::new(format!("threads{threads}"), batch), &batch, |b, &batch| {
                b.iter(|| model.run(input.clone(), batch).expect("run"))
            });
        }
    }
    group.finish();
}

criterion_group!(benches, backbone);
criterion_main!(benches);
