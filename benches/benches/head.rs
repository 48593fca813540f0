//! The head on each backend: one training step (forward, backward, Adam) and inference, at batch
//! 1, 64 and 5000 (the reference code's batch). CPU is burn's ndarray backend; the CUDA group runs
//! in a build with `--features cuda` when a GPU answers, and says it skipped otherwise.
//!
//! Run: `cargo bench -p spamlens-benches --bench head` (add `--features cuda` on a GPU machine).

use criterion::{BenchmarkId, Criterion, Throughput, criterion_group, criterion_main};
use spamlens_trainer::head::training::HeadTrainer;
use spamlens_trainer::head::{Head, HeadConfig};
use spamlens_trainer::random::SplitMix64;

const BATCHES: [usize; 3] = [1, 64, 5000];
const DIM: usize = 2048;

fn features(rows: usize) -> (Vec<f32>, Vec<usize>) {
    let mut rng = SplitMix64::new(5);
    // ResNet pool features are non-negative and sparse-ish; exponential-like magnitudes.
    let x = (0..rows * DIM).map(|_| (-(1.0 - rng.unit()).ln() * 0.5) as f32).collect();
    let y = (0..rows).map(|i| i % 2).collect();
    (x, y)
}

fn bench_backend<B: burn::tensor::backend::AutodiffBackend>(c: &mut Criterion, name: &str, device: &B::Device) {
    let config = HeadConfig { input_dim: DIM, hidden: vec![2048], classes: 2, dropout: 0.0 };
    let mut group = c.benchmark_group(format!("head_train_step/{name}"));
    group.sample_size(10);
    for batch in BATCHES {
        let (x, y) = features(batch);
        let mut trainer = HeadTrainer::<B, _>::new(&config, &[1.0, 1.0], 1e-3, 0.0, 1, device);
        group.throughput(Throughput::Elements(batch as u64));
        group.bench_with_input(BenchmarkId::from_parameter(batch), &batch, |b, _| {
            b.iter(|| trainer.step(x.clone(), &y));
        });
    }
    group.finish();

    let mut group = c.benchmark_group(format!("head_inference/{name}"));
    group.sample_size(10);
    let head: Head<B::InnerBackend> = burn::module::AutodiffModule::valid(&config.init::<B>(device));
    for batch in BATCHES {
        let (x, _) = features(batch);
        group.throughput(Throughput::Elements(batch as u64));
        group.bench_with_input(BenchmarkId::from_parameter(batch), &batch, |b, _| {
            b.iter(|| {
                let t = burn::tensor::Tensor::<B::InnerBackend, 2>::from_data(
                    burn::tensor::TensorData::new(x.clone(), [batch, DIM]),
                    device,
                );
                // Reading the values back forces the computation (GPU backends are asynchronous).
                head.probabilities(t).into_data()
            });
        });
    }
    group.finish();
}

fn cpu(c: &mut Criterion) {
    type Cpu = burn::backend::Autodiff<burn::backend::NdArray<f32>>;
    bench_backend::<Cpu>(c, "cpu", &Default::default());
}

#[cfg(feature = "cuda")]
fn cuda(c: &mut Criterion) {
    type Gpu = burn::backend::Autodiff<burn::backend::Cuda<f32, i32>>;
    let device = burn::backend::cuda::CudaDevice::new(0);
    let probe = std::panic::catch_unwind(|| {
        let t = burn::tensor::Tensor::<Gpu, 1>::from_floats([1.0, 2.0], &device);
        t.sum().into_scalar()
    });
    match probe {
        Ok(_) => bench_backend::<Gpu>(c, "cuda", &device),
        Err(_) => eprintln!("head benches: CUDA group skipped: no CUDA device or driver answered"),
    }
}

#[cfg(not(feature = "cuda"))]
fn cuda(_: &mut Criterion) {
    eprintln!("head benches: CUDA group skipped: built without the `cuda` feature");
}

criterion_group!(benches, cpu, cuda);
criterion_main!(benches);
