//! Widening stored weights once, at load: a model may keep its weights as 8-bit integers with
//! per-channel scales (a quarter of the download) read through `DequantizeLinear`. tract folds
//! such constant subgraphs itself only while the result stays under 4 MiB, so ResNet-50's larger
//! weights would be dequantised (and their kernels repacked) on every inference; and its generic
//! evaluation of the broadcast arithmetic takes seconds. Here each `DequantizeLinear` whose inputs
//! are all initialisers becomes an f32 initialiser before tract sees the graph.

use std::collections::HashMap;

use tract_onnx::pb;
use tract_onnx::pb::tensor_proto::DataType;

/// Replaces every `DequantizeLinear` of initialisers (int8 or uint8 values, f32 scale per tensor
/// or along `axis`, optional zero point) with the f32 initialiser it computes, and drops the
/// integer initialisers nothing else reads. Returns how many were widened; a malformed one is an
/// error naming the node.
pub(crate) fn dequantize_constant_weights(graph: &mut pb::GraphProto) -> Result<usize, String> {
    let index: HashMap<String, usize> =
        graph.initializer.iter().enumerate().map(|(i, t)| (t.name.clone(), i)).collect();
    let mut widened = Vec::new();
    let mut folded = vec![false; graph.node.len()];
    for (position, node) in graph.node.iter().enumerate() {
        if node.op_type != "DequantizeLinear" || !node.domain.is_empty() {
            continue;
        }
        let inputs: Option<Vec<&pb::TensorProto>> =
            node.input.iter().filter(|n| !n.is_empty()).map(|n| index.get(n).map(|&i| &graph.initializer[i])).collect();
        let Some(inputs) = inputs else { continue };
        let output = node.output.first().ok_or_else(|| format!("DequantizeLinear {}: no output", node.name))?;
        let axis = node.attribute.iter().find(|a| a.name == "axis").map_or(1, |a| a.i);
        let values = dequantize(&inputs, axis).map_err(|reason| format!("DequantizeLinear {}: {reason}", node.name))?;
        widened.push(pb::TensorProto {
            name: output.clone(),
            dims: inputs[0].dims.clone(),
            data_type: DataType::Float as i32,
            raw_data: values.iter().flat_map(|v| v.to_le_bytes()).collect(),
            ..Default::default()
        });
        folded[position] = true;
    }
    if widened.is_empty() {
        return Ok(0);
    }
    let mut position = 0;
    graph.node.retain(|_| {
        position += 1;
        !folded[position - 1]
    });
    let still_read: std::collections::HashSet<&str> =
        graph.node.iter().flat_map(|n| n.input.iter().map(String::as_str)).collect();
    let outputs: std::collections::HashSet<&str> = graph.output.iter().map(|o| o.name.as_str()).collect();
    let widened_names: std::collections::HashSet<String> = widened.iter().map(|t| t.name.clone()).collect();
    let mut dropped = std::collections::HashSet::new();
    graph.initializer.retain(|t| {
        let keep = still_read.contains(t.name.as_str())
            || outputs.contains(t.name.as_str())
            || widened_names.contains(&t.name);
        if !keep {
            dropped.insert(t.name.clone());
        }
        keep
    });
    // An IR-3 style graph lists its initialisers among its inputs: a dropped one must not become
    // an input the caller has to feed.
    graph.input.retain(|i| !dropped.contains(&i.name));
    let count = widened.len();
    graph.initializer.extend(widened);
    Ok(count)
}

/// `(x - zero_point) * scale` of one `DequantizeLinear`'s constant inputs.
fn dequantize(inputs: &[&pb::TensorProto], axis: i64) -> Result<Vec<f32>, String> {
    let (x, scale) = match inputs {
        [x, scale] | [x, scale, _] => (*x, *scale),
        _ => return Err(format!("{} inputs (2 or 3 expected)", inputs.len())),
    };
    let values = integers(x)?;
    let scales = scales(scale)?;
    let zero_points = match inputs.get(2) {
        Some(zp) => integers(zp)?,
        None => vec![0; scales.len()],
    };
    if zero_points.len() != scales.len() {
        return Err(format!("{} zero points for {} scales", zero_points.len(), scales.len()));
    }
    if scales.len() == 1 {
        return Ok(values.iter().map(|&q| (q - zero_points[0]) as f32 * scales[0]).collect());
    }
    let rank = x.dims.len() as i64;
    let axis = if axis < 0 { axis + rank } else { axis };
    let dims: Vec<usize> = x.dims.iter().map(|&d| usize::try_from(d).unwrap_or(0)).collect();
    let axis =
        usize::try_from(axis).ok().filter(|&a| a < dims.len()).ok_or_else(|| format!("axis out of rank {rank}"))?;
    if dims[axis] != scales.len() {
        return Err(format!("{} scales along axis {axis} of dims {:?}", scales.len(), x.dims));
    }
    let inner: usize = dims[axis + 1..].iter().product();
    Ok(values
        .iter()
        .enumerate()
        .map(|(i, &q)| {
            let channel = (i / inner.max(1)) % scales.len();
            (q - zero_points[channel]) as f32 * scales[channel]
        })
        .collect())
}

fn element_count(t: &pb::TensorProto) -> Result<usize, String> {
    t.dims.iter().try_fold(1usize, |n, &d| {
        usize::try_from(d)
            .ok()
            .and_then(|d| n.checked_mul(d))
            .ok_or_else(|| format!("{}: bad dims {:?}", t.name, t.dims))
    })
}

/// The values of an INT8 or UINT8 initialiser as i32.
fn integers(t: &pb::TensorProto) -> Result<Vec<i32>, String> {
    let count = element_count(t)?;
    let values: Vec<i32> = match DataType::try_from(t.data_type) {
        Ok(DataType::Int8) if !t.raw_data.is_empty() => t.raw_data.iter().map(|&b| i32::from(b as i8)).collect(),
        Ok(DataType::Uint8) if !t.raw_data.is_empty() => t.raw_data.iter().map(|&b| i32::from(b)).collect(),
        Ok(DataType::Int8 | DataType::Uint8) => t.int32_data.clone(),
        _ => return Err(format!("{}: element type {} is not int8 or uint8", t.name, t.data_type)),
    };
    if values.len() != count {
        return Err(format!("{}: {} values for dims {:?}", t.name, values.len(), t.dims));
    }
    Ok(values)
}

/// The values of a FLOAT initialiser stored in the file (`raw_data` little-endian, or
/// `float_data`), checked against its dims; errors name the tensor.
pub fn float_initializer(t: &pb::TensorProto) -> Result<Vec<f32>, String> {
    if t.data_type != DataType::Float as i32 {
        return Err(format!("{}: element type {} is not float", t.name, t.data_type));
    }
    if t.data_location == Some(pb::tensor_proto::DataLocation::External as i32) {
        return Err(format!("{}: external data is not supported", t.name));
    }
    if !t.raw_data.len().is_multiple_of(4) {
        return Err(format!("{}: {} raw bytes are not whole f32 values", t.name, t.raw_data.len()));
    }
    let values: Vec<f32> = if t.raw_data.is_empty() {
        t.float_data.clone()
    } else {
        t.raw_data.chunks_exact(4).map(|b| f32::from_le_bytes([b[0], b[1], b[2], b[3]])).collect()
    };
    if values.len() != element_count(t)? {
        return Err(format!("{}: {} values for dims {:?}", t.name, values.len(), t.dims));
    }
    Ok(values)
}

/// The scales of a `DequantizeLinear`: a FLOAT initialiser of positive finite values.
fn scales(t: &pb::TensorProto) -> Result<Vec<f32>, String> {
    let values = float_initializer(t)?;
    if values.is_empty() {
        return Err(format!("{}: no scale", t.name));
    }
    if let Some(s) = values.iter().find(|s| !s.is_finite() || **s <= 0.0) {
        return Err(format!("{}: scale {s} is not a positive finite number", t.name));
    }
    Ok(values)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn tensor(name: &str, dims: &[i64], data_type: DataType, raw_data: Vec<u8>) -> pb::TensorProto {
        pb::TensorProto {
            name: name.into(),
            dims: dims.to_vec(),
            data_type: data_type as i32,
            raw_data,
            ..Default::default()
        }
    }

    fn floats_raw(values: &[f32]) -> Vec<u8> {
        values.iter().flat_map(|v| v.to_le_bytes()).collect()
    }

    fn dequantize_node(inputs: &[&str], output: &str, axis: Option<i64>) -> pb::NodeProto {
        pb::NodeProto {
            name: format!("{output}.dq"),
            op_type: "DequantizeLinear".into(),
            input: inputs.iter().map(|s| (*s).to_owned()).collect(),
            output: vec![output.into()],
            attribute: axis
                .map(|i| pb::AttributeProto {
                    name: "axis".into(),
                    r#type: pb::attribute_proto::AttributeType::Int as i32,
                    i,
                    ..Default::default()
                })
                .into_iter()
                .collect(),
            ..Default::default()
        }
    }

    fn widened(graph: &pb::GraphProto, name: &str) -> Vec<f32> {
        let t = graph.initializer.iter().find(|t| t.name == name).expect("widened initialiser");
        assert_eq!(t.data_type, DataType::Float as i32);
        t.raw_data.chunks_exact(4).map(|b| f32::from_le_bytes([b[0], b[1], b[2], b[3]])).collect()
    }

    #[test]
    fn per_axis_int8_and_per_tensor_uint8_widen_to_what_dequantize_linear_means() {
        let mut graph = pb::GraphProto {
            initializer: vec![
                // [2, 3] int8 along axis 0: rows scaled by 0.5 and 2.
                tensor("w", &[2, 3], DataType::Int8, [1i8, -2, 3, 4, -5, 127].iter().map(|&q| q as u8).collect()),
                tensor("w.scale", &[2], DataType::Float, floats_raw(&[0.5, 2.0])),
                tensor("w.zero", &[2], DataType::Int8, vec![0, 0]),
                // uint8 per tensor with zero point 128.
                tensor("u", &[3], DataType::Uint8, vec![128, 130, 0]),
                tensor("u.scale", &[], DataType::Float, floats_raw(&[0.25])),
                tensor("u.zero", &[], DataType::Uint8, vec![128]),
            ],
            node: vec![
                dequantize_node(&["w", "w.scale", "w.zero"], "w_f32", Some(0)),
                dequantize_node(&["u", "u.scale", "u.zero"], "u_f32", None),
                pb::NodeProto {
                    op_type: "Add".into(),
                    input: vec!["x".into(), "w_f32".into()],
                    output: vec!["y".into()],
                    ..Default::default()
                },
            ],
            // IR-3 style: an initialiser listed among the inputs.
            input: ["x", "w"].iter().map(|n| pb::ValueInfoProto { name: (*n).into(), ..Default::default() }).collect(),
            ..Default::default()
        };
        assert_eq!(dequantize_constant_weights(&mut graph).unwrap(), 2);
        assert_eq!(widened(&graph, "w_f32"), vec![0.5, -1.0, 1.5, 8.0, -10.0, 254.0]);
        assert_eq!(widened(&graph, "u_f32"), vec![0.0, 0.5, -32.0]);
        // The dequantisations are gone, their integer inputs too; the Add stays.
        assert_eq!(graph.node.len(), 1);
        assert!(graph.initializer.iter().all(|t| t.data_type == DataType::Float as i32), "{:?}", graph.initializer);
        let inputs: Vec<&str> = graph.input.iter().map(|i| i.name.as_str()).collect();
        assert_eq!(inputs, ["x"], "a dropped initialiser is no graph input");
    }

    #[test]
    fn a_dequantize_of_a_graph_input_is_left_to_tract_and_bad_scales_are_named() {
        let mut graph = pb::GraphProto {
            initializer: vec![tensor("s", &[], DataType::Float, floats_raw(&[0.1]))],
            node: vec![dequantize_node(&["x", "s"], "y", None)],
            ..Default::default()
        };
        assert_eq!(dequantize_constant_weights(&mut graph).unwrap(), 0);
        assert_eq!(graph.node.len(), 1);

        let mut graph = pb::GraphProto {
            initializer: vec![
                tensor("w", &[2, 2], DataType::Int8, vec![1, 2, 3, 4]),
                tensor("w.scale", &[2], DataType::Float, floats_raw(&[0.5, -1.0])),
            ],
            node: vec![dequantize_node(&["w", "w.scale"], "w_f32", Some(0))],
            ..Default::default()
        };
        let err = dequantize_constant_weights(&mut graph).unwrap_err();
        assert!(err.contains("w_f32.dq") && err.contains("not a positive finite number"), "{err}");

        let mut graph = pb::GraphProto {
            initializer: vec![
                tensor("w", &[2, 2], DataType::Int8, vec![1, 2, 3]),
                tensor("w.scale", &[], DataType::Float, floats_raw(&[0.5])),
            ],
            node: vec![dequantize_node(&["w", "w.scale"], "w_f32", None)],
            ..Default::default()
        };
        let err = dequantize_constant_weights(&mut graph).unwrap_err();
        assert!(err.contains("3 values for dims [2, 2]"), "{err}");
    }
}
