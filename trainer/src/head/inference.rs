//! Running a trained head over feature rows: probabilities in batches, and the predicted class.

use burn::tensor::backend::Backend;
use burn::tensor::{Tensor, TensorData};

use super::data::LabelledFeatures;
use super::model::Head;
use crate::error::{Result, TrainerError};

/// Class probabilities for the rows `indices`, `batch_size` rows at a time; row-major
/// `indices.len() × classes`.
pub fn probabilities<B: Backend>(
    head: &Head<B>,
    data: &LabelledFeatures,
    indices: &[usize],
    batch_size: usize,
    device: &B::Device,
) -> Result<Vec<f32>> {
    let mut out = Vec::with_capacity(indices.len() * data.classes.len());
    for chunk in indices.chunks(batch_size.max(1)) {
        let x = Tensor::<B, 2>::from_data(TensorData::new(data.gather(chunk), [chunk.len(), data.dim]), device);
        out.extend(probabilities_of(head.forward(x))?);
    }
    Ok(out)
}

/// Softmax of a batch of logits, read back as row-major f32 values.
pub fn probabilities_of<B: Backend>(logits: Tensor<B, 2>) -> Result<Vec<f32>> {
    burn::tensor::activation::softmax(logits, 1)
        .into_data()
        .convert::<f32>()
        .into_vec::<f32>()
        .map_err(|e| TrainerError::Graph(format!("reading head output: {e:?}")))
}

/// The most probable class of each row of a row-major probability matrix (first one on ties).
pub fn argmax_rows(probabilities: &[f32], classes: usize) -> Vec<usize> {
    probabilities
        .chunks_exact(classes.max(1))
        .map(|row| {
            row.iter()
                .enumerate()
                .fold((0, f32::NEG_INFINITY), |best, (i, &p)| if p > best.1 { (i, p) } else { best })
                .0
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn argmax_takes_the_first_maximum() {
        assert_eq!(argmax_rows(&[0.2, 0.8, 0.5, 0.5, 0.1, 0.9], 2), vec![1, 0, 1]);
        assert_eq!(argmax_rows(&[0.2, 0.3, 0.5], 3), vec![2]);
    }
}
