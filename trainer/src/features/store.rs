//! The feature store: one Parquet file, one row per image file.
//!
//! Columns: `sha256`, `path` (relative to the dataset root), `label`, `subset`, `width`, `height`,
//! `format`, `features` (`FixedSizeList<f32, 2048>`). File-level key/value metadata records the
//! backbone's sha256 (features from different backbones must never be mixed), its preprocessing,
//! and the spamlens version. Snappy compression; readable by pandas/pyarrow and Spark.

use std::collections::HashMap;
use std::fs::File;
use std::path::{Path, PathBuf};
use std::sync::Arc;

use arrow_array::{Array, ArrayRef, FixedSizeListArray, Float32Array, RecordBatch, StringArray, UInt32Array};
use arrow_schema::{DataType, Field, Schema};
use parquet::arrow::ArrowWriter;
use parquet::arrow::arrow_reader::ParquetRecordBatchReaderBuilder;
use parquet::basic::Compression;
use parquet::file::metadata::KeyValue;
use parquet::file::properties::WriterProperties;

use crate::error::{Result, TrainerError};

/// Metadata key: sha256 of the backbone ONNX the features came from.
pub const META_BACKBONE_SHA256: &str = "spamlens.backbone_sha256";
/// Metadata key: the backbone's preprocessing contract.
pub const META_PREPROCESSING: &str = "spamlens.preprocessing";
/// Metadata key: the backbone output the features were read from.
pub const META_FEATURE_TENSOR: &str = "spamlens.feature_tensor";
/// Metadata key: the backbone's `source` metadata.
pub const META_BACKBONE_SOURCE: &str = "spamlens.backbone_source";
/// Metadata key: the spamlens version that wrote the store.
pub const META_WRITER: &str = "spamlens.writer";

/// Rows per Parquet row group (≈ 8 MB of features).
const ROW_GROUP_ROWS: usize = 1024;

/// One stored image.
#[derive(Debug, Clone, PartialEq)]
pub struct FeatureRow {
    /// sha256 (hex) of the file's bytes.
    pub sha256: String,
    /// Path relative to the dataset root, `/`-separated.
    pub path: String,
    /// Label (first folder level).
    pub label: String,
    /// Subset (label and deeper folders).
    pub subset: String,
    /// Decoded width in pixels.
    pub width: u32,
    /// Decoded height in pixels.
    pub height: u32,
    /// Detected format (JPEG, PNG, …).
    pub format: String,
    /// The backbone features.
    pub features: Vec<f32>,
}

/// Where the features came from; stored as file metadata.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct StoreProvenance {
    /// sha256 of the backbone ONNX.
    pub backbone_sha256: String,
    /// The backbone's `source` metadata entry.
    pub backbone_source: String,
    /// The preprocessing contract.
    pub preprocessing: String,
    /// The output tensor name.
    pub feature_tensor: String,
}

/// A whole store in memory.
#[derive(Debug, Clone, Default)]
pub struct FeatureStore {
    /// Rows in file order.
    pub rows: Vec<FeatureRow>,
    /// Provenance metadata.
    pub provenance: StoreProvenance,
    /// Width of every feature vector.
    pub feature_dim: usize,
}

fn schema(feature_dim: usize) -> Arc<Schema> {
    let item = Arc::new(Field::new("item", DataType::Float32, false));
    Arc::new(Schema::new(vec![
        Field::new("sha256", DataType::Utf8, false),
        Field::new("path", DataType::Utf8, false),
        Field::new("label", DataType::Utf8, false),
        Field::new("subset", DataType::Utf8, false),
        Field::new("width", DataType::UInt32, false),
        Field::new("height", DataType::UInt32, false),
        Field::new("format", DataType::Utf8, false),
        Field::new("features", DataType::FixedSizeList(item, feature_dim as i32), false),
    ]))
}

impl FeatureStore {
    /// Reads the store at `path`.
    pub fn read(path: &Path) -> Result<FeatureStore> {
        let store_error = |reason: String| TrainerError::Store { path: path.to_path_buf(), reason };
        let file = File::open(path).map_err(|e| TrainerError::io(path, e))?;
        let builder = ParquetRecordBatchReaderBuilder::try_new(file)
            .map_err(|e| store_error(format!("not a Parquet file ({e})")))?;
        let kv: HashMap<String, String> = builder
            .metadata()
            .file_metadata()
            .key_value_metadata()
            .map(|kvs| kvs.iter().filter_map(|kv| Some((kv.key.clone(), kv.value.clone()?))).collect())
            .unwrap_or_default();
        let field = |key: &str| kv.get(key).cloned().unwrap_or_default();
        let provenance = StoreProvenance {
            backbone_sha256: field(META_BACKBONE_SHA256),
            backbone_source: field(META_BACKBONE_SOURCE),
            preprocessing: field(META_PREPROCESSING),
            feature_tensor: field(META_FEATURE_TENSOR),
        };
        if provenance.backbone_sha256.is_empty() {
            return Err(store_error(format!("no '{META_BACKBONE_SHA256}' metadata; not a spamlens feature store")));
        }
        let feature_dim = match builder.schema().field_with_name("features").map(|f| f.data_type().clone()) {
            Ok(DataType::FixedSizeList(item, n)) if *item.data_type() == DataType::Float32 && n > 0 => n as usize,
            other => return Err(store_error(format!("column 'features' is {other:?}, expected FixedSizeList<f32>"))),
        };
        let reader = builder.build().map_err(|e| store_error(e.to_string()))?;
        let mut rows = Vec::new();
        for batch in reader {
            let batch = batch.map_err(|e| store_error(e.to_string()))?;
            append_rows(&batch, feature_dim, &mut rows).map_err(store_error)?;
        }
        Ok(FeatureStore { rows, provenance, feature_dim })
    }

    /// Writes the store to `path` atomically (temporary file, then rename).
    pub fn write(&self, path: &Path) -> Result<()> {
        let store_error = |reason: String| TrainerError::Store { path: path.to_path_buf(), reason };
        for row in &self.rows {
            if row.features.len() != self.feature_dim {
                return Err(store_error(format!(
                    "row {} has {} features, the store has {}",
                    row.path,
                    row.features.len(),
                    self.feature_dim
                )));
            }
        }
        if let Some(parent) = path.parent().filter(|p| !p.as_os_str().is_empty()) {
            std::fs::create_dir_all(parent).map_err(|e| TrainerError::io(parent, e))?;
        }
        let tmp = temporary_sibling(path);
        let result = self.write_to(&tmp).map_err(store_error);
        if result.is_err() {
            let _ = std::fs::remove_file(&tmp);
        }
        result?;
        std::fs::rename(&tmp, path).map_err(|e| TrainerError::io(path, e))
    }

    fn write_to(&self, path: &Path) -> std::result::Result<(), String> {
        let file = File::create(path).map_err(|e| format!("{}: {e}", path.display()))?;
        let schema = schema(self.feature_dim);
        let props = WriterProperties::builder()
            .set_compression(Compression::SNAPPY)
            .set_max_row_group_row_count(Some(ROW_GROUP_ROWS))
            .build();
        let mut writer = ArrowWriter::try_new(file, schema.clone(), Some(props)).map_err(|e| e.to_string())?;
        for chunk in self.rows.chunks(ROW_GROUP_ROWS) {
            let batch = to_batch(&schema, chunk, self.feature_dim)?;
            writer.write(&batch).map_err(|e| e.to_string())?;
        }
        let p = &self.provenance;
        for (key, value) in [
            (META_BACKBONE_SHA256, p.backbone_sha256.as_str()),
            (META_BACKBONE_SOURCE, p.backbone_source.as_str()),
            (META_PREPROCESSING, p.preprocessing.as_str()),
            (META_FEATURE_TENSOR, p.feature_tensor.as_str()),
            (META_WRITER, concat!("spamlens-trainer ", env!("CARGO_PKG_VERSION"))),
        ] {
            writer.append_key_value_metadata(KeyValue::new(key.to_owned(), value.to_owned()));
        }
        writer.close().map_err(|e| e.to_string())?;
        Ok(())
    }
}

fn temporary_sibling(path: &Path) -> PathBuf {
    let mut name = path.file_name().map(|n| n.to_os_string()).unwrap_or_default();
    name.push(format!(".tmp{}", std::process::id()));
    path.with_file_name(name)
}

fn to_batch(schema: &Arc<Schema>, rows: &[FeatureRow], dim: usize) -> std::result::Result<RecordBatch, String> {
    let strings =
        |f: fn(&FeatureRow) -> &str| -> ArrayRef { Arc::new(StringArray::from_iter_values(rows.iter().map(f))) };
    let mut values = Vec::with_capacity(rows.len() * dim);
    for row in rows {
        values.extend_from_slice(&row.features);
    }
    let item = Arc::new(Field::new("item", DataType::Float32, false));
    let features = FixedSizeListArray::try_new(item, dim as i32, Arc::new(Float32Array::from(values)), None)
        .map_err(|e| e.to_string())?;
    RecordBatch::try_new(
        schema.clone(),
        vec![
            strings(|r| &r.sha256),
            strings(|r| &r.path),
            strings(|r| &r.label),
            strings(|r| &r.subset),
            Arc::new(UInt32Array::from_iter_values(rows.iter().map(|r| r.width))),
            Arc::new(UInt32Array::from_iter_values(rows.iter().map(|r| r.height))),
            strings(|r| &r.format),
            Arc::new(features),
        ],
    )
    .map_err(|e| e.to_string())
}

fn append_rows(batch: &RecordBatch, dim: usize, rows: &mut Vec<FeatureRow>) -> std::result::Result<(), String> {
    fn column<'a, T: 'static>(batch: &'a RecordBatch, name: &str) -> std::result::Result<&'a T, String> {
        batch
            .column_by_name(name)
            .and_then(|c| c.as_any().downcast_ref::<T>())
            .ok_or_else(|| format!("column '{name}' is missing or has the wrong type"))
    }
    let sha = column::<StringArray>(batch, "sha256")?;
    let path = column::<StringArray>(batch, "path")?;
    let label = column::<StringArray>(batch, "label")?;
    let subset = column::<StringArray>(batch, "subset")?;
    let width = column::<UInt32Array>(batch, "width")?;
    let height = column::<UInt32Array>(batch, "height")?;
    let format = column::<StringArray>(batch, "format")?;
    let features = column::<FixedSizeListArray>(batch, "features")?;
    let values =
        features.values().as_any().downcast_ref::<Float32Array>().ok_or_else(|| "features are not f32".to_string())?;
    if features.null_count() > 0 {
        return Err("features column has nulls".into());
    }
    let offset = features.offset();
    for i in 0..batch.num_rows() {
        let start = (offset + i) * dim;
        let slice = values.values().get(start..start + dim).ok_or("features column is truncated")?;
        rows.push(FeatureRow {
            sha256: sha.value(i).to_owned(),
            path: path.value(i).to_owned(),
            label: label.value(i).to_owned(),
            subset: subset.value(i).to_owned(),
            width: width.value(i),
            height: height.value(i),
            format: format.value(i).to_owned(),
            features: slice.to_vec(),
        });
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn row(i: usize, dim: usize) -> FeatureRow {
        FeatureRow {
            sha256: format!("{i:064x}"),
            path: format!("ham/{i}.png"),
            label: "ham".into(),
            subset: "ham".into(),
            width: i as u32,
            height: 2 * i as u32,
            format: "PNG".into(),
            features: (0..dim).map(|k| (i * dim + k) as f32 * 0.5).collect(),
        }
    }

    #[test]
    fn round_trip_keeps_rows_and_provenance() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("s.parquet");
        let store = FeatureStore {
            rows: (0..2100).map(|i| row(i, 16)).collect(),
            provenance: StoreProvenance {
                backbone_sha256: "ab".repeat(32),
                backbone_source: "test".into(),
                preprocessing: "none".into(),
                feature_tensor: "features".into(),
            },
            feature_dim: 16,
        };
        store.write(&path).unwrap();
        let back = FeatureStore::read(&path).unwrap();
        assert_eq!(back.feature_dim, 16);
        assert_eq!(back.provenance, store.provenance);
        assert_eq!(back.rows, store.rows);
    }

    #[test]
    fn foreign_parquet_and_garbage_are_refused() {
        let dir = tempfile::tempdir().unwrap();
        let garbage = dir.path().join("g.parquet");
        std::fs::write(&garbage, b"PAR1 not really").unwrap();
        let err = FeatureStore::read(&garbage).unwrap_err().to_string();
        assert!(err.contains("not a Parquet file"), "{err}");

        let store = FeatureStore { rows: vec![row(1, 4)], feature_dim: 4, ..Default::default() };
        let unlabelled = dir.path().join("u.parquet");
        store.write(&unlabelled).unwrap();
        let err = FeatureStore::read(&unlabelled).unwrap_err().to_string();
        assert!(err.contains("not a spamlens feature store"), "{err}");
    }

    #[test]
    fn wrong_width_rows_are_refused_before_writing() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("w.parquet");
        let store = FeatureStore { rows: vec![row(1, 4)], feature_dim: 8, ..Default::default() };
        assert!(store.write(&path).is_err());
        assert!(!path.exists());
    }
}
