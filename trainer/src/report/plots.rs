//! PNG plots of a training run (plotters, rendered into memory, encoded with `image`): loss and
//! weighted F1 per epoch, and the confusion matrix as a heat map with counts.

use std::path::{Path, PathBuf};
use std::sync::OnceLock;

use plotters::prelude::*;

use crate::error::{Result, TrainerError};
use crate::head::EpochRecord;
use crate::metrics::ConfusionMatrix;

/// Environment variable naming a TrueType font for plot text (default: DejaVu Sans where Debian
/// and most distributions put it).
pub const FONT_ENV: &str = "SPAMLENS_FONT";

const FONT_CANDIDATES: [&str; 4] = [
    "/usr/share/fonts/truetype/dejavu/DejaVuSans.ttf",
    "/usr/share/fonts/dejavu/DejaVuSans.ttf",
    "/usr/share/fonts/TTF/DejaVuSans.ttf",
    "/usr/share/fonts/truetype/liberation/LiberationSans-Regular.ttf",
];

/// Registers a system font with plotters once; `Err` says which paths were tried.
fn ensure_font() -> std::result::Result<(), String> {
    static FONT: OnceLock<std::result::Result<(), String>> = OnceLock::new();
    FONT.get_or_init(|| {
        let candidates: Vec<PathBuf> = std::env::var_os(FONT_ENV)
            .map(PathBuf::from)
            .into_iter()
            .chain(FONT_CANDIDATES.iter().map(PathBuf::from))
            .collect();
        for path in &candidates {
            if let Ok(bytes) = std::fs::read(path) {
                // plotters keeps fonts for the life of the process; leak the bytes once.
                let bytes: &'static [u8] = Box::leak(bytes.into_boxed_slice());
                if plotters::style::register_font("sans-serif", FontStyle::Normal, bytes).is_ok() {
                    return Ok(());
                }
            }
        }
        Err(format!(
            "no TrueType font for plot labels (tried {}; set {FONT_ENV} or install fonts-dejavu-core)",
            candidates.iter().map(|p| p.display().to_string()).collect::<Vec<_>>().join(", ")
        ))
    })
    .clone()
}

fn plot_error(path: &Path, e: impl std::fmt::Display) -> TrainerError {
    TrainerError::Plot { path: path.to_path_buf(), reason: e.to_string() }
}

fn save_png(path: &Path, buffer: Vec<u8>, width: u32, height: u32) -> Result<()> {
    let image = image::RgbImage::from_raw(width, height, buffer).ok_or_else(|| plot_error(path, "buffer size"))?;
    let mut encoded = std::io::Cursor::new(Vec::new());
    image.write_to(&mut encoded, image::ImageFormat::Png).map_err(|e| plot_error(path, e))?;
    Ok(spamlens_fetch::write_atomically(path, encoded.get_ref())?)
}

/// Training curves: mean train loss and test loss (left), test weighted F1 (right), per epoch.
pub fn training_curves(history: &[EpochRecord], path: &Path) -> Result<()> {
    ensure_font().map_err(|e| plot_error(path, e))?;
    let (width, height) = (1200u32, 480u32);
    let mut buffer = vec![0u8; (width * height * 3) as usize];
    {
        let root = BitMapBackend::with_buffer(&mut buffer, (width, height)).into_drawing_area();
        root.fill(&WHITE).map_err(|e| plot_error(path, e))?;
        let (left, right) = root.split_horizontally(width / 2);
        let epochs = history.len().max(2) as f64;

        let losses: Vec<f64> = history
            .iter()
            .flat_map(|r| std::iter::once(r.train_loss).chain(r.test_loss))
            .filter(|v| v.is_finite())
            .collect();
        let max_loss = losses.iter().cloned().fold(0.0, f64::max).max(1e-3) * 1.05;
        let mut chart = ChartBuilder::on(&left)
            .caption("loss per epoch", ("sans-serif", 22))
            .margin(12)
            .x_label_area_size(40)
            .y_label_area_size(60)
            .build_cartesian_2d(1.0..epochs, 0.0..max_loss)
            .map_err(|e| plot_error(path, e))?;
        chart.configure_mesh().x_desc("epoch").y_desc("cross-entropy").draw().map_err(|e| plot_error(path, e))?;
        chart
            .draw_series(LineSeries::new(history.iter().map(|r| (r.epoch as f64, r.train_loss)), BLUE.stroke_width(2)))
            .map_err(|e| plot_error(path, e))?
            .label("train (class-weighted)")
            .legend(|(x, y)| PathElement::new(vec![(x, y), (x + 20, y)], BLUE.stroke_width(2)));
        if history.iter().any(|r| r.test_loss.is_some()) {
            chart
                .draw_series(LineSeries::new(
                    history.iter().filter_map(|r| Some((r.epoch as f64, r.test_loss?))),
                    RED.stroke_width(2),
                ))
                .map_err(|e| plot_error(path, e))?
                .label("test")
                .legend(|(x, y)| PathElement::new(vec![(x, y), (x + 20, y)], RED.stroke_width(2)));
        }
        chart
            .configure_series_labels()
            .background_style(WHITE.mix(0.8))
            .border_style(BLACK)
            .draw()
            .map_err(|e| plot_error(path, e))?;

        let f1: Vec<(f64, f64)> = history.iter().filter_map(|r| Some((r.epoch as f64, r.test_weighted_f1?))).collect();
        let low = f1.iter().map(|p| p.1).fold(1.0, f64::min).min(0.9);
        let mut chart = ChartBuilder::on(&right)
            .caption("test weighted F1 per epoch", ("sans-serif", 22))
            .margin(12)
            .x_label_area_size(40)
            .y_label_area_size(60)
            .build_cartesian_2d(1.0..epochs, (low - 0.01).max(0.0)..1.0)
            .map_err(|e| plot_error(path, e))?;
        chart.configure_mesh().x_desc("epoch").y_desc("weighted F1").draw().map_err(|e| plot_error(path, e))?;
        chart.draw_series(LineSeries::new(f1, GREEN.stroke_width(2))).map_err(|e| plot_error(path, e))?;
        root.present().map_err(|e| plot_error(path, e))?;
    }
    save_png(path, buffer, width, height)
}

/// The confusion matrix as a heat map (row-normalised colour, raw counts printed).
pub fn confusion_matrix(matrix: &ConfusionMatrix, path: &Path) -> Result<()> {
    ensure_font().map_err(|e| plot_error(path, e))?;
    let n = matrix.labels.len();
    // Segmented ranges include their end, so `0..n - 1` gives n cells (n ≥ 2: a classifier has two classes).
    let n = n.max(2);
    let (width, height) = (220 + 170 * n as u32, 170 + 140 * n as u32);
    let mut buffer = vec![0u8; (width * height * 3) as usize];
    {
        let root = BitMapBackend::with_buffer(&mut buffer, (width, height)).into_drawing_area();
        root.fill(&WHITE).map_err(|e| plot_error(path, e))?;
        let mut chart = ChartBuilder::on(&root)
            .caption("confusion matrix (test)", ("sans-serif", 22))
            .margin(16)
            .x_label_area_size(50)
            .y_label_area_size(90)
            .build_cartesian_2d((0..n - 1).into_segmented(), (0..n - 1).into_segmented())
            .map_err(|e| plot_error(path, e))?;
        let label_of = |v: &SegmentValue<usize>| match v {
            SegmentValue::CenterOf(i) | SegmentValue::Exact(i) => matrix.labels.get(*i).cloned().unwrap_or_default(),
            SegmentValue::Last => String::new(),
        };
        // Rows are drawn top-down: actual class i at y = n-1-i.
        let flipped = |v: &SegmentValue<usize>| match v {
            SegmentValue::CenterOf(i) | SegmentValue::Exact(i) if *i < n => label_of(&SegmentValue::Exact(n - 1 - i)),
            _ => String::new(),
        };
        chart
            .configure_mesh()
            .disable_mesh()
            .x_desc("predicted")
            .y_desc("actual")
            .x_label_formatter(&label_of)
            .y_label_formatter(&flipped)
            .x_labels(n)
            .y_labels(n)
            .draw()
            .map_err(|e| plot_error(path, e))?;
        for (actual, row) in matrix.counts.iter().enumerate() {
            let total: u64 = row.iter().sum::<u64>().max(1);
            for (predicted, &count) in row.iter().enumerate() {
                let share = count as f64 / total as f64;
                let shade = (255.0 * (1.0 - 0.8 * share)) as u8;
                let y = n - 1 - actual;
                chart
                    .draw_series(std::iter::once(Rectangle::new(
                        [
                            (SegmentValue::Exact(predicted), SegmentValue::Exact(y)),
                            (SegmentValue::Exact(predicted + 1), SegmentValue::Exact(y + 1)),
                        ],
                        RGBColor(shade, shade, 255).filled(),
                    )))
                    .map_err(|e| plot_error(path, e))?;
                let colour = if share > 0.6 { WHITE } else { BLACK };
                chart
                    .draw_series(std::iter::once(Text::new(
                        format!("{count} ({:.1}%)", 100.0 * share),
                        (SegmentValue::CenterOf(predicted), SegmentValue::CenterOf(y)),
                        ("sans-serif", 18).into_font().color(&colour).pos(plotters::style::text_anchor::Pos::new(
                            plotters::style::text_anchor::HPos::Center,
                            plotters::style::text_anchor::VPos::Center,
                        )),
                    )))
                    .map_err(|e| plot_error(path, e))?;
            }
        }
        root.present().map_err(|e| plot_error(path, e))?;
    }
    save_png(path, buffer, width, height)
}

/// A task's ROC curve (spam recall against ham→spam false-positive rate, log scale, where the low
/// false-positive end is what a mail operator cares about) and precision–recall curve, with the
/// operating point the recipe chose marked on both.
pub fn roc_and_precision_recall(
    title: &str,
    curves: &crate::operating_point::Curves,
    operating_point: Option<(f64, f64, f64)>,
    path: &Path,
) -> Result<()> {
    ensure_font().map_err(|e| plot_error(path, e))?;
    let (width, height) = (1200u32, 520u32);
    let mut buffer = vec![0u8; (width * height * 3) as usize];
    {
        let root = BitMapBackend::with_buffer(&mut buffer, (width, height)).into_drawing_area();
        root.fill(&WHITE).map_err(|e| plot_error(path, e))?;
        let root = root.titled(title, ("sans-serif", 24)).map_err(|e| plot_error(path, e))?;
        let (left, right) = root.split_horizontally(width / 2);
        const FP_FLOOR: f64 = 1e-3;
        let mut roc = ChartBuilder::on(&left)
            .caption(format!("ROC (AUC {:.4})", curves.roc_auc), ("sans-serif", 20))
            .margin(14)
            .x_label_area_size(42)
            .y_label_area_size(60)
            .build_cartesian_2d((FP_FLOOR..1.0).log_scale(), 0.0..1.0)
            .map_err(|e| plot_error(path, e))?;
        roc.configure_mesh()
            .x_desc("ham→spam false-positive rate (log)")
            .y_desc("spam recall")
            .draw()
            .map_err(|e| plot_error(path, e))?;
        roc.draw_series(LineSeries::new(
            curves.points.iter().map(|p| (p.false_positive_rate.max(FP_FLOOR), p.recall)),
            BLUE.stroke_width(2),
        ))
        .map_err(|e| plot_error(path, e))?;
        for fp in [0.001, 0.01] {
            roc.draw_series(LineSeries::new([(fp, 0.0), (fp, 1.0)], BLACK.mix(0.3)))
                .map_err(|e| plot_error(path, e))?;
        }
        let mut pr = ChartBuilder::on(&right)
            .caption(format!("precision–recall (AP {:.4})", curves.average_precision), ("sans-serif", 20))
            .margin(14)
            .x_label_area_size(42)
            .y_label_area_size(60)
            .build_cartesian_2d(0.0..1.0, 0.5..1.0)
            .map_err(|e| plot_error(path, e))?;
        pr.configure_mesh().x_desc("spam recall").y_desc("spam precision").draw().map_err(|e| plot_error(path, e))?;
        pr.draw_series(LineSeries::new(
            curves.points.iter().skip(1).map(|p| (p.recall, p.precision.max(0.5))),
            BLUE.stroke_width(2),
        ))
        .map_err(|e| plot_error(path, e))?;
        if let Some((fp, recall, precision)) = operating_point {
            roc.draw_series(std::iter::once(Circle::new((fp.max(FP_FLOOR), recall), 6, RED.filled())))
                .map_err(|e| plot_error(path, e))?
                .label("chosen threshold (pooled folds)")
                .legend(|(x, y)| Circle::new((x, y), 5, RED.filled()));
            roc.configure_series_labels()
                .position(SeriesLabelPosition::LowerRight)
                .background_style(WHITE.mix(0.8))
                .border_style(BLACK)
                .draw()
                .map_err(|e| plot_error(path, e))?;
            pr.draw_series(std::iter::once(Circle::new((recall, precision.max(0.5)), 6, RED.filled())))
                .map_err(|e| plot_error(path, e))?;
        }
        root.present().map_err(|e| plot_error(path, e))?;
    }
    save_png(path, buffer, width, height)
}
