//! The Email.cz image spam dataset v1 (the paper's own): JSON lines of user reactions and a
//! 2048-d ResNet vector per image. [`filter`] turns reactions into labels (paper section 6),
//! [`reader`] streams and filters the file in parallel, [`synth`] writes realistic synthetic lines.
//!
//! Its features come from a different backbone (TF-slim resnet_v1_50 at pool5, caffe
//! preprocessing) than spamlens' own, so a head trained on them does not fit our backbone.

pub mod filter;
pub mod reader;
pub mod synth;

pub use filter::{DropReason, FilterMode, FilterOptions, ImageClass, Reaction, Verdict, label_image};
pub use reader::{EmailCzDataset, IngestOptions, IngestProgress, IngestReport, NoIngestProgress, ingest};
