//! A small, typed ONNX graph builder over tract-onnx's `pb` types.

use prost::Message;
use tract_onnx::pb;

use crate::error::{ModelError, Result};

/// ONNX IR version written (IR 7 = ONNX 1.6+, what opset 13 readers accept everywhere).
pub const IR_VERSION: i64 = 7;
/// The default-domain operator set written.
pub const OPSET: i64 = 13;

/// A node attribute value.
#[derive(Debug, Clone, PartialEq)]
pub enum Attribute {
    /// One integer (`INT`).
    Int(i64),
    /// A list of integers (`INTS`).
    Ints(Vec<i64>),
    /// One float (`FLOAT`).
    Float(f32),
}

/// A graph output: its tensor name and its dimensions, `None` standing for the symbolic batch `N`.
#[derive(Debug, Clone, PartialEq)]
pub struct OutputSpec {
    /// Tensor name.
    pub name: String,
    /// Dimensions; `None` is the batch dimension `N`.
    pub dims: Vec<Option<usize>>,
}

/// Builds one ONNX model: float inputs with a symbolic batch, nodes in topological order,
/// float initialisers, and `metadata_props`.
#[derive(Debug, Default)]
pub struct OnnxGraphBuilder {
    graph: pb::GraphProto,
    metadata: Vec<(String, String)>,
    producer_name: String,
    producer_version: String,
    doc_string: String,
    names: std::collections::HashSet<String>,
}

/// The name of the symbolic batch dimension in every graph spamlens writes.
pub const BATCH_DIM: &str = "N";

impl OnnxGraphBuilder {
    /// An empty graph called `graph_name`.
    pub fn new(graph_name: &str) -> Self {
        let graph = pb::GraphProto { name: graph_name.to_owned(), ..Default::default() };
        Self {
            graph,
            producer_name: "spamlens".to_owned(),
            producer_version: env!("CARGO_PKG_VERSION").to_owned(),
            ..Default::default()
        }
    }

    /// Sets the model's `doc_string`.
    pub fn doc_string(&mut self, text: &str) -> &mut Self {
        text.clone_into(&mut self.doc_string);
        self
    }

    /// Sets the producer name recorded in the file.
    pub fn producer(&mut self, name: &str) -> &mut Self {
        name.clone_into(&mut self.producer_name);
        self
    }

    /// Declares a float graph input of shape `[N, dims...]`.
    pub fn input(&mut self, name: &str, dims: &[usize]) -> Result<&mut Self> {
        self.claim(name)?;
        let mut all: Vec<Option<usize>> = vec![None];
        all.extend(dims.iter().copied().map(Some));
        self.graph.input.push(value_info(name, &all));
        Ok(self)
    }

    /// Declares a float graph output.
    pub fn output(&mut self, spec: &OutputSpec) -> &mut Self {
        self.graph.output.push(value_info(&spec.name, &spec.dims));
        self
    }

    /// Adds a float32 initialiser with the given dimensions; `values` must have their product.
    pub fn initializer(&mut self, name: &str, dims: &[usize], values: &[f32]) -> Result<&mut Self> {
        let expected: usize = dims.iter().product();
        if expected != values.len() {
            return Err(ModelError::Graph(format!(
                "initializer {name}: {} values for dims {dims:?} ({expected} expected)",
                values.len()
            )));
        }
        self.claim(name)?;
        let mut raw = Vec::with_capacity(values.len() * 4);
        for v in values {
            raw.extend_from_slice(&v.to_le_bytes());
        }
        self.graph.initializer.push(pb::TensorProto {
            name: name.to_owned(),
            dims: dims.iter().map(|&d| d as i64).collect(),
            data_type: pb::tensor_proto::DataType::Float as i32,
            raw_data: raw,
            ..Default::default()
        });
        Ok(self)
    }

    /// Adds an initialiser stored as IEEE half floats (FLOAT16): half the bytes, for shipping. Read it
    /// through a `Cast` to float; the values are rounded to the nearest half.
    pub fn initializer_f16(&mut self, name: &str, dims: &[usize], values: &[f32]) -> Result<&mut Self> {
        let expected: usize = dims.iter().product();
        if expected != values.len() {
            return Err(ModelError::Graph(format!(
                "initializer {name}: {} values for dims {dims:?} ({expected} expected)",
                values.len()
            )));
        }
        if let Some(v) = values.iter().find(|v| v.is_finite() && v.abs() > f32::from(half::f16::MAX)) {
            return Err(ModelError::Graph(format!("initializer {name}: {v} does not fit in a half float")));
        }
        self.claim(name)?;
        let mut raw = Vec::with_capacity(values.len() * 2);
        for v in values {
            raw.extend_from_slice(&half::f16::from_f32(*v).to_le_bytes());
        }
        self.graph.initializer.push(pb::TensorProto {
            name: name.to_owned(),
            dims: dims.iter().map(|&d| d as i64).collect(),
            data_type: pb::tensor_proto::DataType::Float16 as i32,
            raw_data: raw,
            ..Default::default()
        });
        Ok(self)
    }

    /// Adds a node of the default domain; `name` is the node name, outputs must be new names.
    pub fn node(
        &mut self,
        op_type: &str,
        name: &str,
        inputs: &[&str],
        outputs: &[&str],
        attributes: &[(&str, Attribute)],
    ) -> Result<&mut Self> {
        for input in inputs {
            if !self.names.contains(*input) {
                return Err(ModelError::Graph(format!(
                    "node {name} ({op_type}) reads '{input}', which no earlier node, input or initializer defines"
                )));
            }
        }
        for output in outputs {
            self.claim(output)?;
        }
        self.graph.node.push(pb::NodeProto {
            input: inputs.iter().map(|s| (*s).to_owned()).collect(),
            output: outputs.iter().map(|s| (*s).to_owned()).collect(),
            name: name.to_owned(),
            op_type: op_type.to_owned(),
            attribute: attributes.iter().map(|(k, v)| attribute(k, v)).collect(),
            ..Default::default()
        });
        Ok(self)
    }

    /// Adds (or replaces) a `metadata_props` entry.
    pub fn metadata(&mut self, key: &str, value: &str) -> &mut Self {
        self.metadata.retain(|(k, _)| k != key);
        self.metadata.push((key.to_owned(), value.to_owned()));
        self
    }

    /// Starts from an existing model: its graph, metadata, and every tensor name it defines, so that
    /// nodes can be appended to it (a head on a backbone's features).
    pub fn from_model(model: pb::ModelProto) -> Result<Self> {
        let graph = model.graph.ok_or_else(|| ModelError::Graph("the model has no graph".into()))?;
        let mut builder = Self {
            producer_name: "spamlens".to_owned(),
            producer_version: env!("CARGO_PKG_VERSION").to_owned(),
            doc_string: model.doc_string,
            metadata: model.metadata_props.into_iter().map(|p| (p.key, p.value)).collect(),
            ..Default::default()
        };
        let defined = graph
            .input
            .iter()
            .map(|i| i.name.clone())
            .chain(graph.initializer.iter().map(|t| t.name.clone()))
            .chain(graph.node.iter().flat_map(|n| n.output.iter().cloned()))
            .filter(|n| !n.is_empty());
        builder.names.extend(defined);
        builder.graph = graph;
        Ok(builder)
    }

    /// Removes every graph output (before declaring new ones).
    pub fn clear_outputs(&mut self) -> &mut Self {
        self.graph.output.clear();
        self
    }

    /// Renames the graph.
    pub fn graph_name(&mut self, name: &str) -> &mut Self {
        name.clone_into(&mut self.graph.name);
        self
    }

    /// Drops nodes and initialisers that no graph output depends on (e.g. a backbone's ImageNet
    /// classifier once a head replaces it), so the written file carries no dead weights.
    pub fn prune_to_outputs(&mut self) -> &mut Self {
        let mut needed: std::collections::HashSet<String> = self.graph.output.iter().map(|o| o.name.clone()).collect();
        let mut keep = vec![false; self.graph.node.len()];
        for (i, node) in self.graph.node.iter().enumerate().rev() {
            if node.output.iter().any(|o| needed.contains(o)) {
                keep[i] = true;
                needed.extend(node.input.iter().filter(|n| !n.is_empty()).cloned());
            }
        }
        let mut index = 0;
        self.graph.node.retain(|_| {
            index += 1;
            keep[index - 1]
        });
        self.graph.initializer.retain(|t| needed.contains(&t.name));
        self.graph.value_info.retain(|v| needed.contains(&v.name));
        self.names = needed
            .into_iter()
            .chain(self.graph.input.iter().map(|i| i.name.clone()))
            .chain(self.graph.node.iter().flat_map(|n| n.output.iter().cloned()))
            .collect();
        self
    }

    /// The value of a `metadata_props` entry.
    pub fn metadata_value(&self, key: &str) -> Option<&str> {
        self.metadata.iter().find(|(k, _)| k == key).map(|(_, v)| v.as_str())
    }

    /// Removes every `metadata_props` entry and returns them.
    pub fn take_metadata(&mut self) -> Vec<(String, String)> {
        std::mem::take(&mut self.metadata)
    }

    /// Whether a tensor of this name exists already.
    pub fn defines(&self, name: &str) -> bool {
        self.names.contains(name)
    }

    /// Checks that every output is produced, then encodes the model as ONNX protobuf bytes.
    pub fn encode(&self) -> Result<Vec<u8>> {
        for output in &self.graph.output {
            if !self.names.contains(&output.name) {
                return Err(ModelError::Graph(format!("graph output '{}' is never produced", output.name)));
            }
        }
        let model = pb::ModelProto {
            ir_version: IR_VERSION,
            opset_import: vec![pb::OperatorSetIdProto { domain: String::new(), version: OPSET }],
            producer_name: self.producer_name.clone(),
            producer_version: self.producer_version.clone(),
            doc_string: self.doc_string.clone(),
            graph: Some(self.graph.clone()),
            metadata_props: self
                .metadata
                .iter()
                .map(|(k, v)| pb::StringStringEntryProto { key: k.clone(), value: v.clone() })
                .collect(),
            ..Default::default()
        };
        Ok(model.encode_to_vec())
    }

    fn claim(&mut self, name: &str) -> Result<()> {
        if !self.names.insert(name.to_owned()) {
            return Err(ModelError::Graph(format!("tensor name '{name}' is defined twice")));
        }
        Ok(())
    }
}

fn value_info(name: &str, dims: &[Option<usize>]) -> pb::ValueInfoProto {
    use pb::tensor_shape_proto::{Dimension, dimension::Value};
    let dim = dims
        .iter()
        .map(|d| Dimension {
            value: Some(match d {
                Some(size) => Value::DimValue(*size as i64),
                None => Value::DimParam(BATCH_DIM.to_owned()),
            }),
            ..Default::default()
        })
        .collect();
    pb::ValueInfoProto {
        name: name.to_owned(),
        r#type: Some(pb::TypeProto {
            value: Some(pb::type_proto::Value::TensorType(pb::type_proto::Tensor {
                elem_type: pb::tensor_proto::DataType::Float as i32,
                shape: Some(pb::TensorShapeProto { dim }),
            })),
            ..Default::default()
        }),
        ..Default::default()
    }
}

fn attribute(name: &str, value: &Attribute) -> pb::AttributeProto {
    use pb::attribute_proto::AttributeType;
    let mut proto = pb::AttributeProto { name: name.to_owned(), ..Default::default() };
    match value {
        Attribute::Int(i) => {
            proto.r#type = AttributeType::Int as i32;
            proto.i = *i;
        }
        Attribute::Ints(ints) => {
            proto.r#type = AttributeType::Ints as i32;
            proto.ints.clone_from(ints);
        }
        Attribute::Float(f) => {
            proto.r#type = AttributeType::Float as i32;
            proto.f = *f;
        }
    }
    proto
}

/// One `metadata_props` value of an encoded ONNX model (`None`: absent, or not a readable model).
pub fn read_metadata(bytes: &[u8], key: &str) -> Option<String> {
    let model = pb::ModelProto::decode(bytes).ok()?;
    model.metadata_props.into_iter().find(|p| p.key == key).map(|p| p.value)
}

#[cfg(test)]
mod tests {
    use super::*;
    use spamlens_core::{Model, ModelOptions};

    /// A two-node graph written by the builder runs under tract with the expected values.
    #[test]
    fn built_graph_runs_in_tract() {
        let mut b = OnnxGraphBuilder::new("affine");
        b.input("x", &[3]).unwrap();
        b.initializer("w", &[3, 2], &[1.0, 0.0, 0.0, 1.0, 1.0, 1.0]).unwrap();
        b.initializer("b", &[2], &[0.5, -0.5]).unwrap();
        b.node("Gemm", "fc", &["x", "w", "b"], &["y"], &[]).unwrap();
        b.node("Relu", "relu", &["y"], &["z"], &[]).unwrap();
        b.output(&OutputSpec { name: "z".into(), dims: vec![None, Some(2)] });
        b.metadata("labels", "a,b");
        let bytes = b.encode().unwrap();
        let model = Model::from_bytes(&bytes, "affine", &ModelOptions::default()).unwrap();
        assert_eq!(model.metadata().get("labels").map(String::as_str), Some("a,b"));
        let out = model.run(vec![1.0, 2.0, 3.0, -5.0, 0.0, 0.0], 2).unwrap();
        let z = out.get("z").unwrap();
        assert_eq!(z.shape, vec![2, 2]);
        assert_eq!(z.values, vec![4.5, 4.5, 0.0, 0.0]);
    }

    #[test]
    fn dangling_inputs_and_duplicate_names_are_refused() {
        let mut b = OnnxGraphBuilder::new("bad");
        b.input("x", &[3]).unwrap();
        assert!(b.node("Relu", "r", &["nope"], &["y"], &[]).is_err());
        assert!(b.initializer("x", &[1], &[0.0]).is_err());
        assert!(b.initializer("w", &[2], &[0.0]).is_err());
        b.output(&OutputSpec { name: "never".into(), dims: vec![None] });
        assert!(b.encode().is_err());
    }
}
