//! Loading and running ONNX models with tract.
//!
//! Weights stored as int8 behind `DequantizeLinear` are widened to f32 once, at load ([`widen`]).
//!
//! A [`Model`] is parsed once, optimised with a symbolic batch dimension `N`, and then shared by
//! reference between threads: [`Model::run`] takes `&self`, and each call gets its own tract state,
//! so a server or a feature extractor can run several batches at once on one loaded model.

use std::collections::BTreeMap;
use std::sync::Arc;

use prost::Message;
use sha2::{Digest, Sha256};
use tract_onnx::pb;
use tract_onnx::prelude::*;

use crate::error::{Error, Result};

pub mod tuning;
mod widen;

pub use widen::float_initializer;

/// How a model is prepared for running.
#[derive(Debug, Clone, Default)]
pub struct ModelOptions {
    /// Threads tract may use inside one inference (matrix products split across a private pool).
    /// `None` or `Some(1)` runs each inference on the calling thread, which is the better choice
    /// when several inferences already run in parallel. Ignored on WebAssembly.
    pub intra_op_threads: Option<usize>,
    /// Compute only these outputs (by ONNX name), in this order. `None` keeps all graph outputs.
    pub outputs: Option<Vec<String>>,
    /// How batches are executed.
    pub batching: Batching,
    /// The bytes' sha256 (64 hex digits) when the caller has already computed it, so the load
    /// does not hash them again: a browser hashes with WebCrypto in ~1/20 of the time sha2 takes
    /// in wasm (0.7 s for a 26 MB model). `None` hashes here. The caller vouches for the value.
    pub sha256: Option<String>,
}

/// How [`Model::run`] executes a batch.
///
/// tract cannot optimise every graph with a symbolic batch dimension (0.23.9 fails on the
/// ResNet-50's strided 1×1 convolutions), and for convolutional backbones a plan optimised for one
/// image is also the fastest per image on CPU (measured: 160 ms/image at batch 1 vs 185 ms/image at
/// batch 8 on 2 cores). Small dense graphs (a classifier head) do gain from real batches.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum Batching {
    /// Optimise with a symbolic batch `N`; if tract cannot, fall back to [`Batching::PerItem`].
    #[default]
    Auto,
    /// Optimise with a symbolic batch and fail if tract cannot.
    Symbolic,
    /// Optimise for batch 1 and run the items of a batch one after the other.
    PerItem,
}

/// A loaded, optimised ONNX model with one float input whose first dimension is the batch.
#[derive(Debug)]
pub struct Model {
    name: String,
    plan: Arc<TypedRunnableModel>,
    /// The plan runs one item at a time (see [`Batching`]).
    per_item: bool,
    /// The graph's inputs in graph order (a classifier's image first; a fused model adds its text
    /// inputs).
    inputs: Vec<ModelInput>,
    output_names: Vec<String>,
    metadata: BTreeMap<String, String>,
    sha256: String,
    load_phases: LoadPhases,
}

/// How long each step of [`Model::from_bytes`] took, in order: where a model's load time goes
/// (printed by `spamlens-throughput --load-phases` and the browser bench).
#[derive(Debug, Clone, Default, PartialEq, serde::Serialize)]
pub struct LoadPhases(pub Vec<LoadPhase>);

/// One step of a model load and its wall-clock time.
#[derive(Debug, Clone, PartialEq, serde::Serialize)]
pub struct LoadPhase {
    /// The step: `sha256`, `protobuf`, `widen weights`, `onnx graph`, `typing`, `declutter`,
    /// `optimise` (tract's codegen: kernel selection, weight packing) or `plan`.
    pub phase: &'static str,
    /// Milliseconds it took.
    pub millis: f64,
}

impl LoadPhases {
    /// Runs `step` and records its time as `phase`.
    fn time<T>(&mut self, phase: &'static str, step: impl FnOnce() -> T) -> T {
        let started = web_time::Instant::now();
        let out = step();
        self.0.push(LoadPhase { phase, millis: started.elapsed().as_secs_f64() * 1e3 });
        out
    }

    /// The sum of all phases, in milliseconds.
    pub fn total_millis(&self) -> f64 {
        self.0.iter().map(|p| p.millis).sum()
    }
}

/// One input tensor of a model: its name and its dimensions after the batch dimension.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ModelInput {
    /// The ONNX input name.
    pub name: String,
    /// Dimensions after the batch dimension, e.g. `[3, 224, 224]` or `[2048]`.
    pub dims: Vec<usize>,
}

impl ModelInput {
    /// Number of f32 values one batch item takes in this input.
    pub fn values_per_item(&self) -> usize {
        self.dims.iter().product()
    }
}

/// Average time one node of the optimised plan took in [`Model::profile`].
#[derive(Debug, Clone)]
pub struct NodeTiming {
    /// The node's name (ONNX node or output name, with tract's suffixes for nodes it split).
    pub name: String,
    /// The optimised operator, e.g. `OptMatMul` or `Conv`.
    pub op: String,
    /// What tract reports about the operator (kernel, packing, geometry).
    pub detail: String,
    /// The output facts (datum type and shape).
    pub output: String,
    /// Mean wall time per run.
    pub time: std::time::Duration,
}

/// The outputs of one [`Model::run`]: f32 tensors by name, each with the batch as first dimension.
#[derive(Debug, Clone)]
pub struct ModelOutputs {
    model: String,
    names: Vec<String>,
    tensors: Vec<OutputTensor>,
}

/// One output tensor: a shape and its values in row-major order.
#[derive(Debug, Clone, PartialEq)]
pub struct OutputTensor {
    /// The tensor's shape; `shape[0]` is the batch size.
    pub shape: Vec<usize>,
    /// Row-major values.
    pub values: Vec<f32>,
}

impl OutputTensor {
    /// Number of values per batch item (the product of the shape after the batch dimension).
    pub fn row_len(&self) -> usize {
        self.shape.iter().skip(1).product()
    }

    /// The values of batch item `index`, or `None` past the end of the batch.
    pub fn row(&self, index: usize) -> Option<&[f32]> {
        let len = self.row_len();
        self.values.get(index * len..(index + 1) * len)
    }

    /// Iterates over batch items.
    pub fn rows(&self) -> impl Iterator<Item = &[f32]> {
        self.values.chunks_exact(self.row_len().max(1))
    }
}

impl ModelOutputs {
    /// The output named `name`.
    pub fn get(&self, name: &str) -> Result<&OutputTensor> {
        self.names.iter().position(|n| n == name).map(|i| &self.tensors[i]).ok_or_else(|| Error::NoSuchOutput {
            model: self.model.clone(),
            name: name.to_owned(),
            available: self.names.join(", "),
        })
    }

    /// Takes the output named `name` out of the set.
    pub fn take(mut self, name: &str) -> Result<OutputTensor> {
        let index = self.names.iter().position(|n| n == name).ok_or_else(|| Error::NoSuchOutput {
            model: self.model.clone(),
            name: name.to_owned(),
            available: self.names.join(", "),
        })?;
        Ok(self.tensors.swap_remove(index))
    }

    /// Output names in graph order.
    pub fn names(&self) -> &[String] {
        &self.names
    }
}

impl Model {
    /// Parses, checks and optimises ONNX `bytes`; `name` is used in every error about this model.
    pub fn from_bytes(bytes: &[u8], name: &str, options: &ModelOptions) -> Result<Self> {
        Self::load(std::borrow::Cow::Borrowed(bytes), name, options)
    }

    /// [`Model::from_bytes`] taking the bytes, which are freed as soon as they are parsed: where
    /// memory never shrinks (a WebAssembly worker), the load's peak is then one copy lower.
    pub fn from_vec(bytes: Vec<u8>, name: &str, options: &ModelOptions) -> Result<Self> {
        Self::load(std::borrow::Cow::Owned(bytes), name, options)
    }

    fn load(bytes: std::borrow::Cow<'_, [u8]>, name: &str, options: &ModelOptions) -> Result<Self> {
        let load_error = |reason: String| Error::ModelLoad { model: name.to_owned(), reason };
        let signature_error = |reason: String| Error::ModelSignature { model: name.to_owned(), reason };
        if bytes.is_empty() {
            return Err(load_error("empty file (0 bytes)".into()));
        }
        let mut phases = LoadPhases::default();
        let sha256 = match &options.sha256 {
            Some(known) if known.len() == 64 && known.bytes().all(|b| b.is_ascii_hexdigit()) => {
                known.to_ascii_lowercase()
            }
            Some(other) => return Err(load_error(format!("the given sha256 '{other}' is not 64 hex digits"))),
            None => phases.time("sha256", || hex::encode(Sha256::digest(&bytes))),
        };
        let decoded = phases.time("protobuf", || pb::ModelProto::decode(&*bytes));
        drop(bytes);
        let mut proto = decoded.map_err(|e| load_error(format!("not an ONNX protobuf ({e})")))?;
        let graph = proto.graph.as_mut().ok_or_else(|| load_error("the ONNX file has no graph".into()))?;
        phases
            .time("widen weights", || widen::dequantize_constant_weights(graph))
            .map_err(|e| load_error(format!("stored weights: {e}")))?;
        let graph = &*graph;
        if graph.node.is_empty() {
            return Err(load_error("the ONNX graph has no nodes".into()));
        }
        let metadata: BTreeMap<String, String> =
            proto.metadata_props.iter().map(|p| (p.key.clone(), p.value.clone())).collect();

        // Graph inputs that are not initialisers are what the caller must feed.
        let initialisers: std::collections::HashSet<&str> = graph.initializer.iter().map(|t| t.name.as_str()).collect();
        let inputs: Vec<&pb::ValueInfoProto> =
            graph.input.iter().filter(|i| !initialisers.contains(i.name.as_str())).collect();
        if inputs.is_empty() {
            return Err(signature_error("the graph has no input tensor".into()));
        }
        let inputs: Vec<ModelInput> = inputs
            .iter()
            .map(|input| Ok(ModelInput { name: input.name.clone(), dims: per_item_dims(input)? }))
            .collect::<Result<_, String>>()
            .map_err(signature_error)?;
        let graph_outputs: Vec<String> = graph.output.iter().map(|o| o.name.clone()).collect();

        let mut model = phases
            .time("onnx graph", || tract_onnx::onnx().model_for_proto_model(&proto))
            .map_err(|e| load_error(format!("{e:#}")))?;
        drop(proto);

        let output_names = match &options.outputs {
            None => graph_outputs,
            Some(wanted) => {
                let all = model.output_outlets().map_err(|e| load_error(format!("{e:#}")))?.to_vec();
                let mut selected = Vec::with_capacity(wanted.len());
                for wanted_name in wanted {
                    let index =
                        graph_outputs.iter().position(|o| o == wanted_name).ok_or_else(|| Error::NoSuchOutput {
                            model: name.to_owned(),
                            name: wanted_name.clone(),
                            available: graph_outputs.join(", "),
                        })?;
                    selected.push(all[index]);
                }
                model.select_output_outlets(&selected).map_err(|e| load_error(format!("{e:#}")))?;
                wanted.clone()
            }
        };

        let run_options = RunOptions { executor: executor(options.intra_op_threads), ..Default::default() };
        // The same steps as tract's `into_optimized` (typing, declutter, codegen), timed apart.
        let prepare =
            |mut model: InferenceModel, batch: TDim, phases: &mut LoadPhases| -> Result<Arc<TypedRunnableModel>> {
                for (index, input) in inputs.iter().enumerate() {
                    let mut shape: TVec<TDim> = tvec![batch.clone()];
                    shape.extend(input.dims.iter().map(|&d| TDim::from(d)));
                    model
                        .set_input_fact(index, InferenceFact::dt_shape(f32::datum_type(), shape))
                        .map_err(|e| signature_error(format!("{e:#}")))?;
                }
                tuning::with_engine_knobs(|| {
                    let tract_error = |e: TractError| load_error(format!("{e:#}"));
                    let mut typed = phases.time("typing", || model.into_typed()).map_err(tract_error)?;
                    phases.time("declutter", || typed.declutter()).map_err(tract_error)?;
                    phases.time("optimise", || typed.optimize()).map_err(tract_error)?;
                    phases.time("plan", || typed.into_runnable_with_options(&run_options)).map_err(tract_error)
                })
            };
        let symbol: TDim = model.symbols.sym("N").into();
        let (plan, per_item) = match options.batching {
            Batching::Symbolic => (prepare(model, symbol, &mut phases)?, false),
            Batching::PerItem => (prepare(model, 1.into(), &mut phases)?, true),
            Batching::Auto => {
                // A failed symbolic attempt stays in the phases: it is part of the load's time.
                match prepare(model.clone(), symbol, &mut phases) {
                    Ok(plan) => (plan, false),
                    Err(_) => (prepare(model, 1.into(), &mut phases)?, true),
                }
            }
        };

        Ok(Model { name: name.to_owned(), plan, per_item, inputs, output_names, metadata, sha256, load_phases: phases })
    }

    /// How long each step of this model's load took.
    pub fn load_phases(&self) -> &LoadPhases {
        &self.load_phases
    }

    /// The name given at load time (used in errors).
    pub fn name(&self) -> &str {
        &self.name
    }

    /// The `metadata_props` of the ONNX file.
    pub fn metadata(&self) -> &BTreeMap<String, String> {
        &self.metadata
    }

    /// The sha256 (hex) of the ONNX bytes this model was loaded from.
    pub fn sha256(&self) -> &str {
        &self.sha256
    }

    /// The first input tensor's name (the image of a classifier).
    pub fn input_name(&self) -> &str {
        &self.inputs[0].name
    }

    /// The first input's dimensions after the batch dimension, e.g. `[3, 224, 224]`.
    pub fn input_dims(&self) -> &[usize] {
        &self.inputs[0].dims
    }

    /// Number of f32 values one batch item takes in the first input.
    pub fn values_per_item(&self) -> usize {
        self.inputs[0].values_per_item()
    }

    /// Every input, in graph order.
    pub fn inputs(&self) -> &[ModelInput] {
        &self.inputs
    }

    /// Output names, in the order [`run`](Self::run) returns them.
    pub fn output_names(&self) -> &[String] {
        &self.output_names
    }

    /// A human-readable summary (sha256, input, outputs, metadata), one item per line, as the
    /// command-line tools print it.
    pub fn describe(&self) -> String {
        let inputs: Vec<String> = self
            .inputs
            .iter()
            .map(|i| {
                let dims: Vec<String> = i.dims.iter().map(ToString::to_string).collect();
                format!("{} [N, {}]", i.name, dims.join(", "))
            })
            .collect();
        let mut out = format!(
            "sha256:  {}\ninput:   {}\noutputs: {}\n",
            self.sha256,
            inputs.join(", "),
            self.output_names.join(", ")
        );
        for (key, value) in &self.metadata {
            out += &format!("  {key}: {value}\n");
        }
        out
    }

    /// Runs one batch of a one-input model: `input` holds `batch` items of
    /// [`values_per_item`](Self::values_per_item) floats each, row-major.
    pub fn run(&self, input: Vec<f32>, batch: usize) -> Result<ModelOutputs> {
        self.run_inputs(vec![input], batch)
    }

    /// Runs one batch: one buffer per [`input`](Self::inputs), in graph order, each holding
    /// `batch` items row-major.
    pub fn run_inputs(&self, inputs: Vec<Vec<f32>>, batch: usize) -> Result<ModelOutputs> {
        if inputs.len() != self.inputs.len() {
            return Err(Error::Inference {
                model: self.name.clone(),
                reason: format!("{} input buffers for a graph of {} inputs", inputs.len(), self.inputs.len()),
            });
        }
        for (buffer, input) in inputs.iter().zip(&self.inputs) {
            let per_item = input.values_per_item();
            if batch == 0 || buffer.len() != batch * per_item {
                return Err(Error::BatchShape {
                    model: self.name.clone(),
                    got: buffer.len(),
                    batch,
                    per_image: per_item,
                });
            }
        }
        if !self.per_item {
            return self.run_plan(inputs, batch);
        }
        let mut merged: Option<Vec<OutputTensor>> = None;
        for item in 0..batch {
            let slices: Vec<Vec<f32>> = inputs
                .iter()
                .zip(&self.inputs)
                .map(|(buffer, input)| {
                    let n = input.values_per_item();
                    buffer[item * n..(item + 1) * n].to_vec()
                })
                .collect();
            let outputs = self.run_plan(slices, 1)?;
            match merged.as_mut() {
                None => merged = Some(outputs.tensors),
                Some(acc) => {
                    for (acc, tensor) in acc.iter_mut().zip(outputs.tensors) {
                        acc.shape[0] += 1;
                        acc.values.extend_from_slice(&tensor.values);
                    }
                }
            }
        }
        Ok(ModelOutputs {
            model: self.name.clone(),
            names: self.output_names.clone(),
            tensors: merged.unwrap_or_default(),
        })
    }

    /// Runs one batch `rounds` times and returns where the time went, one entry per node of the
    /// optimised plan in execution order (for benches: which operators and kernels dominate).
    pub fn profile(&self, inputs: Vec<Vec<f32>>, batch: usize, rounds: usize) -> Result<Vec<NodeTiming>> {
        let inference_error = |reason: String| Error::Inference { model: self.name.clone(), reason };
        if self.per_item && batch != 1 {
            return Err(inference_error(format!(
                "its plan runs one item at a time; cannot profile a batch of {batch}"
            )));
        }
        let rounds = rounds.max(1);
        let values = self.input_values(inputs, batch)?;
        let model = self.plan.model();
        let mut totals: Vec<std::time::Duration> = vec![std::time::Duration::ZERO; model.nodes().len()];
        let mut state = tract_onnx::tract_core::plan::SimpleState::new(&self.plan)
            .map_err(|e| inference_error(format!("{e:#}")))?;
        for _ in 0..rounds {
            state
                .run_plan_with_eval(values.clone(), |ctx, op_state, node, input| {
                    let started = std::time::Instant::now();
                    let out = tract_onnx::tract_core::plan::eval(ctx, op_state, node, input);
                    totals[node.id] += started.elapsed();
                    out
                })
                .map_err(|e| inference_error(format!("{e:#}")))?;
        }
        Ok(self
            .plan
            .order_without_consts()
            .iter()
            .map(|&id| {
                let node = &model.nodes()[id];
                NodeTiming {
                    name: node.name.clone(),
                    op: node.op().name().to_string(),
                    detail: node.op().info().unwrap_or_default().join("; "),
                    output: node.outputs.iter().map(|o| format!("{:?}", o.fact)).collect::<Vec<_>>().join(", "),
                    time: totals[id].div_f64(rounds as f64),
                }
            })
            .collect())
    }

    /// Whether batches are run one item at a time (see [`Batching`]).
    pub fn runs_per_item(&self) -> bool {
        self.per_item
    }

    /// The plan's input values: one buffer per input, `batch` items each.
    fn input_values(&self, inputs: Vec<Vec<f32>>, batch: usize) -> Result<TVec<TValue>> {
        let mut values: TVec<TValue> = tvec![];
        for (buffer, input) in inputs.into_iter().zip(&self.inputs) {
            let mut shape = Vec::with_capacity(input.dims.len() + 1);
            shape.push(batch);
            shape.extend_from_slice(&input.dims);
            let tensor = tract_ndarray::ArrayD::from_shape_vec(shape, buffer)
                .map_err(|e| Error::Inference { model: self.name.clone(), reason: e.to_string() })?
                .into_tensor();
            values.push(tensor.into());
        }
        Ok(values)
    }

    fn run_plan(&self, inputs: Vec<Vec<f32>>, batch: usize) -> Result<ModelOutputs> {
        let inference_error = |reason: String| Error::Inference { model: self.name.clone(), reason };
        let values = self.input_values(inputs, batch)?;
        let outputs = self.plan.run(values).map_err(|e| inference_error(format!("{e:#}")))?;
        if outputs.len() != self.output_names.len() {
            return Err(inference_error(format!(
                "graph returned {} outputs, expected {}",
                outputs.len(),
                self.output_names.len()
            )));
        }
        let mut tensors = Vec::with_capacity(outputs.len());
        for (value, name) in outputs.into_iter().zip(&self.output_names) {
            let view = (*value)
                .to_plain_array_view::<f32>()
                .map_err(|e| inference_error(format!("output {name} is not f32: {e}")))?;
            tensors.push(OutputTensor { shape: view.shape().to_vec(), values: view.iter().copied().collect() });
        }
        Ok(ModelOutputs { model: self.name.clone(), names: self.output_names.clone(), tensors })
    }
}

/// The fixed dimensions after the batch dimension of a graph input (which must be f32).
fn per_item_dims(input: &pb::ValueInfoProto) -> Result<Vec<usize>, String> {
    use pb::type_proto::Value;
    let name = &input.name;
    let Some(Value::TensorType(tensor)) = input.r#type.as_ref().and_then(|t| t.value.as_ref()) else {
        return Err(format!("input '{name}' is not a tensor"));
    };
    if tensor.elem_type != pb::tensor_proto::DataType::Float as i32 {
        return Err(format!("input '{name}' has element type {}, expected float32", tensor.elem_type));
    }
    let dims = tensor.shape.as_ref().map(|s| s.dim.as_slice()).unwrap_or_default();
    if dims.len() < 2 {
        return Err(format!("input '{name}' has rank {}, expected a batch dimension and more", dims.len()));
    }
    dims[1..]
        .iter()
        .enumerate()
        .map(|(i, d)| match d.value {
            Some(pb::tensor_shape_proto::dimension::Value::DimValue(v)) if v > 0 => Ok(v as usize),
            _ => Err(format!("input '{name}' dimension {} is not a fixed positive size", i + 1)),
        })
        .collect()
}

#[cfg(not(target_arch = "wasm32"))]
fn executor(threads: Option<usize>) -> Option<tract_onnx::prelude::tract_linalg::multithread::Executor> {
    use tract_onnx::prelude::tract_linalg::multithread::Executor;
    match threads {
        Some(n) if n > 1 => Some(Executor::multithread(n)),
        _ => Some(Executor::SingleThread),
    }
}

#[cfg(target_arch = "wasm32")]
fn executor(_threads: Option<usize>) -> Option<tract_onnx::prelude::tract_linalg::multithread::Executor> {
    None
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn garbage_is_a_named_load_error() {
        let err = Model::from_bytes(b"\x08\x07garbage\xff\xff", "junk.onnx", &ModelOptions::default()).unwrap_err();
        assert!(err.to_string().starts_with("model junk.onnx: cannot load"), "{err}");
        let err = Model::from_bytes(&[], "empty.onnx", &ModelOptions::default()).unwrap_err();
        assert_eq!(err.to_string(), "model empty.onnx: cannot load: empty file (0 bytes)");
    }

    /// The built-in head (a small real graph, committed in the repository).
    fn head_bytes() -> Vec<u8> {
        let path = concat!(env!("CARGO_MANIFEST_DIR"), "/../models/default/head.onnx");
        std::fs::read(path).unwrap_or_else(|e| panic!("{path}: {e}"))
    }

    #[test]
    fn a_given_sha256_is_used_instead_of_hashing() {
        let bytes = head_bytes();
        let hashed = Model::from_bytes(&bytes, "head.onnx", &ModelOptions::default()).unwrap();
        assert_eq!(hashed.sha256(), hex::encode(Sha256::digest(&bytes)));
        let phases: Vec<&str> = hashed.load_phases().0.iter().map(|p| p.phase).collect();
        assert_eq!(phases[..2], ["sha256", "protobuf"]);
        assert!(phases.ends_with(&["typing", "declutter", "optimise", "plan"]), "{phases:?}");

        let known = hashed.sha256().to_ascii_uppercase();
        let options = ModelOptions { sha256: Some(known), ..ModelOptions::default() };
        let given = Model::from_bytes(&bytes, "head.onnx", &options).unwrap();
        assert_eq!(given.sha256(), hashed.sha256(), "reported lower-case");
        assert!(given.load_phases().0.iter().all(|p| p.phase != "sha256"));

        let options = ModelOptions { sha256: Some("abc".into()), ..ModelOptions::default() };
        let err = Model::from_bytes(&bytes, "head.onnx", &options).unwrap_err();
        assert_eq!(err.to_string(), "model head.onnx: cannot load: the given sha256 'abc' is not 64 hex digits");
    }
}
