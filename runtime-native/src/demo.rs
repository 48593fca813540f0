//! `spamlens demo`: serves the browser demo page (`www/`), the JS package (`runtime-wasm/js`, built
//! by `runtime-wasm/build.sh`) and a combined model, with the MIME types, cache headers and
//! security headers a webmail deployment would use; or exports the same files as a static site
//! that any static server can host.
//!
//! Layout (served and exported alike):
//! - `/` … the demo page's files; `/pkg/` … the JS package (`src/`, `dist/`, types);
//! - `/model.json` … `{ url, sha256, bytes, name, labels }`, revalidated on every load;
//! - `/models/<sha256>.onnx` … the model, content-addressed, so it is cached forever (`immutable`);
//! - `/models/<sha256>.onnx.sha256` … the sidecar the JS package reads when given only a URL;
//! - `/models/tessdata/<language>.traineddata` … for a model that reads text, its OCR trained data
//!   (the files the native engine uses; the page checks them against the model's contract).

use std::net::SocketAddr;
use std::path::{Path, PathBuf};

use anyhow::{Context, Result, bail};
use axum::Router;
use axum::extract::{Path as UrlPath, State};
use axum::http::{HeaderValue, StatusCode, header};
use axum::response::{IntoResponse, Response};
use axum::routing::get;
use spamlens_core::{Classifier, ModelOptions};
use tower_http::compression::CompressionLayer;
use tower_http::compression::predicate::{DefaultPredicate, NotForContentType, Predicate};
use tower_http::services::{ServeDir, ServeFile};
use tower_http::set_header::SetResponseHeaderLayer;

/// The content security policy the demo runs under: the strict kind webmail uses (no inline
/// script, no eval; only `wasm-unsafe-eval` so WebAssembly can compile).
pub const CONTENT_SECURITY_POLICY: &str = "default-src 'self'; script-src 'self' 'wasm-unsafe-eval'; \
     worker-src 'self'; connect-src 'self'; img-src 'self' blob: data:; style-src 'self'; \
     object-src 'none'; base-uri 'none'; frame-ancestors 'none'";

/// Files of the JS package that the page needs (what `npm pack` ships, without the README).
const PACKAGE_FILES: [&str; 7] = [
    "package.json",
    "index.d.ts",
    "src",
    "dist/spamlens_wasm.js",
    "dist/spamlens_simd.wasm",
    "dist/spamlens_relaxed.wasm",
    "dist/tesseract",
];

/// What the demo serves: the page, the package and one checked model.
#[derive(Debug, Clone)]
pub struct DemoSite {
    www: PathBuf,
    package: PathBuf,
    model: PathBuf,
    model_name: String,
    sha256: String,
    bytes: u64,
    labels: Vec<String>,
    /// For a model that reads text: the trained data folder and the languages to serve from it.
    tessdata: Option<(PathBuf, Vec<String>)>,
}

/// `flag`, else `$env`, else `./relative`, else the checkout this binary was built from.
fn locate(flag: Option<PathBuf>, env: &str, relative: &str) -> PathBuf {
    if let Some(path) = flag {
        return path;
    }
    if let Some(path) = std::env::var_os(env) {
        return PathBuf::from(path);
    }
    let here = PathBuf::from(relative);
    if here.exists() {
        return here;
    }
    Path::new(env!("CARGO_MANIFEST_DIR")).join("..").join(relative)
}

impl DemoSite {
    /// Finds the page (`--www`, `$SPAMLENS_WWW`, `www/`) and the built package (`--package`,
    /// `$SPAMLENS_JS`, `runtime-wasm/js/`), and checks that `model` is a spamlens classifier
    /// before a browser downloads it (26 MB for the built-in model with int8 compute, ~96 MB in f32).
    pub fn prepare(www: Option<PathBuf>, package: Option<PathBuf>, model: &Path) -> Result<Self> {
        let (www, package) = Self::locate_files(www, package)?;
        let model_name = model.display().to_string();
        let bytes = std::fs::read(model).with_context(|| format!("reading {model_name}"))?;
        let classifier = Classifier::from_bytes(&bytes, &model_name, &ModelOptions::default())
            .with_context(|| format!("{model_name} cannot be served to the demo"))?;
        Self::with_classifier(www, package, model, &classifier, bytes.len() as u64)
    }

    /// The page's and the package's folders (see [`DemoSite::prepare`]), checked to hold a page and
    /// a built package.
    pub fn locate_files(www: Option<PathBuf>, package: Option<PathBuf>) -> Result<(PathBuf, PathBuf)> {
        let www = locate(www, "SPAMLENS_WWW", "www");
        if !www.join("index.html").is_file() {
            bail!("{}: no index.html; pass --www with the demo page's folder (www/ in a checkout)", www.display());
        }
        let package = locate(package, "SPAMLENS_JS", "runtime-wasm/js");
        for file in PACKAGE_FILES {
            if !package.join(file).exists() {
                bail!(
                    "{}: the JS package is not built ({file} is missing); run runtime-wasm/build.sh \
                     (or pass --package with a built package folder)",
                    package.display()
                );
            }
        }
        Ok((www, package))
    }

    /// The site for a model the caller has already loaded as `classifier` from `model` (`bytes`
    /// long), as `spamlens serve --demo` does: no second load.
    /// A model that reads text brings its OCR trained data, found as the native engine finds it.
    pub fn with_classifier(
        www: PathBuf,
        package: PathBuf,
        model: &Path,
        classifier: &Classifier,
        bytes: u64,
    ) -> Result<Self> {
        Self::serving(www, package, model, classifier, classifier.model().sha256().to_owned(), bytes)
    }

    /// The site serving `model`, a quantised variant of the model `classifier` runs (int8: same
    /// labels, thresholds and OCR contract), without loading it a second time: only its
    /// bytes are read, for their sha256 and size.
    pub fn with_variant_of(www: PathBuf, package: PathBuf, model: &Path, classifier: &Classifier) -> Result<Self> {
        let bytes = std::fs::read(model).with_context(|| format!("reading {}", model.display()))?;
        let sha256 = spamlens_core::scan::sha256_hex(&bytes);
        Self::serving(www, package, model, classifier, sha256, bytes.len() as u64)
    }

    fn serving(
        www: PathBuf,
        package: PathBuf,
        model: &Path,
        classifier: &Classifier,
        sha256: String,
        bytes: u64,
    ) -> Result<Self> {
        let tessdata = match classifier.declared_text_inputs() {
            None => None,
            Some(text) => {
                let dir = spamlens_ocr::tessdata::locate(None, &spamlens_model::backbone::default_cache_dir())
                    .context("the demo page reads text in images and needs the OCR trained data")?;
                let languages = text.contract().data.iter().map(|d| d.language.clone()).collect();
                Some((dir.path().to_path_buf(), languages))
            }
        };
        Ok(DemoSite {
            tessdata,
            www,
            package,
            model: model.to_path_buf(),
            sha256,
            bytes,
            labels: classifier.labels().to_vec(),
            model_name: model.file_name().map_or_else(|| "model.onnx".to_owned(), |n| n.to_string_lossy().into_owned()),
        })
    }

    /// The model's sha256.
    pub fn sha256(&self) -> &str {
        &self.sha256
    }

    /// `model.json`: where the page finds the model and what it is.
    pub fn manifest(&self) -> serde_json::Value {
        serde_json::json!({
            "url": format!("models/{}.onnx", self.sha256),
            "sha256": self.sha256,
            "bytes": self.bytes,
            "name": self.model_name,
            "labels": self.labels,
            "ocr_data": self.tessdata.as_ref().map(|_| "models/tessdata/"),
        })
    }

    fn sidecar(&self) -> String {
        format!("{}  {}.onnx\n", self.sha256, self.sha256)
    }

    /// The HTTP routes (see the module docs).
    pub fn router(&self) -> Router {
        let no_cache = HeaderValue::from_static("no-cache");
        let model_file = ServeFile::new(&self.model);
        let compress = CompressionLayer::new()
            .gzip(true)
            .compress_when(DefaultPredicate::new().and(NotForContentType::const_new("application/octet-stream")));
        Router::new()
            .route("/model.json", get(manifest))
            .route("/models/{file}", get(model))
            .route("/models/tessdata/{file}", get(trained_data))
            // Only the package's shipped files: never node_modules or anything else beside them.
            .nest_service("/pkg/src", ServeDir::new(self.package.join("src")))
            .nest_service("/pkg/dist", ServeDir::new(self.package.join("dist")))
            .route_service("/pkg/package.json", ServeFile::new(self.package.join("package.json")))
            .route_service("/pkg/index.d.ts", ServeFile::new(self.package.join("index.d.ts")))
            .fallback_service(ServeDir::new(&self.www))
            .with_state(Served { site: self.clone(), model_file })
            // Inner routes set their own caching (the model: immutable); everything else revalidates.
            .layer(SetResponseHeaderLayer::if_not_present(header::CACHE_CONTROL, no_cache))
            .layer(SetResponseHeaderLayer::overriding(
                header::X_CONTENT_TYPE_OPTIONS,
                HeaderValue::from_static("nosniff"),
            ))
            .layer(SetResponseHeaderLayer::overriding(
                header::CONTENT_SECURITY_POLICY,
                HeaderValue::from_static(CONTENT_SECURITY_POLICY),
            ))
            // Cross-origin isolation: precise timers for the millis shown, and threads if ever used.
            .layer(SetResponseHeaderLayer::overriding(
                header::HeaderName::from_static("cross-origin-opener-policy"),
                HeaderValue::from_static("same-origin"),
            ))
            .layer(SetResponseHeaderLayer::overriding(
                header::HeaderName::from_static("cross-origin-embedder-policy"),
                HeaderValue::from_static("require-corp"),
            ))
            .layer(compress)
    }

    /// Writes the site as plain files into `dir` (created; existing files replaced), for any
    /// static server: the page, `pkg/`, `model.json` and `models/<sha256>.onnx` (+ `.sha256`).
    pub fn export(&self, dir: &Path) -> Result<()> {
        std::fs::create_dir_all(dir).with_context(|| format!("creating {}", dir.display()))?;
        copy_tree(&self.www, dir)?;
        for file in PACKAGE_FILES {
            let from = self.package.join(file);
            let to = dir.join("pkg").join(file);
            if from.is_dir() {
                copy_tree(&from, &to)?;
            } else {
                copy_file(&from, &to)?;
            }
        }
        let models = dir.join("models");
        std::fs::create_dir_all(&models).with_context(|| format!("creating {}", models.display()))?;
        let target = models.join(format!("{}.onnx", self.sha256));
        // A hard link saves 100 MB when the export sits on the model's file system.
        if !target.exists() && std::fs::hard_link(&self.model, &target).is_err() {
            copy_file(&self.model, &target)?;
        }
        write_file(&models.join(format!("{}.onnx.sha256", self.sha256)), self.sidecar().as_bytes())?;
        if let Some((folder, languages)) = &self.tessdata {
            for language in languages {
                let file = format!("{language}.traineddata");
                copy_file(&folder.join(&file), &models.join("tessdata").join(&file))?;
            }
        }
        let manifest = serde_json::to_vec_pretty(&self.manifest()).context("encoding model.json")?;
        write_file(&dir.join("model.json"), &manifest)
    }
}

fn write_file(path: &Path, bytes: &[u8]) -> Result<()> {
    std::fs::write(path, bytes).with_context(|| format!("writing {}", path.display()))
}

fn copy_file(from: &Path, to: &Path) -> Result<()> {
    if let Some(parent) = to.parent() {
        std::fs::create_dir_all(parent).with_context(|| format!("creating {}", parent.display()))?;
    }
    std::fs::copy(from, to).with_context(|| format!("copying {} to {}", from.display(), to.display()))?;
    Ok(())
}

fn copy_tree(from: &Path, to: &Path) -> Result<()> {
    for entry in walkdir::WalkDir::new(from).follow_links(true) {
        let entry = entry.with_context(|| format!("reading {}", from.display()))?;
        if entry.file_type().is_file() {
            let relative = entry.path().strip_prefix(from).context("walking a folder")?;
            copy_file(entry.path(), &to.join(relative))?;
        }
    }
    Ok(())
}

#[derive(Clone)]
struct Served {
    site: DemoSite,
    model_file: ServeFile,
}

async fn manifest(State(served): State<Served>) -> Response {
    axum::Json(served.site.manifest()).into_response()
}

async fn model(
    State(served): State<Served>,
    UrlPath(file): UrlPath<String>,
    request: axum::extract::Request,
) -> Response {
    let sha = &served.site.sha256;
    if file == format!("{sha}.onnx") {
        let mut service = served.model_file.clone();
        let result = tower::ServiceExt::oneshot(&mut service, request).await;
        let mut response = match result {
            Ok(response) => response.into_response(),
            Err(never) => match never {},
        };
        response
            .headers_mut()
            .insert(header::CACHE_CONTROL, HeaderValue::from_static("public, max-age=31536000, immutable"));
        return response;
    }
    if file == format!("{sha}.onnx.sha256") {
        return ([(header::CONTENT_TYPE, "text/plain; charset=utf-8")], served.site.sidecar()).into_response();
    }
    (StatusCode::NOT_FOUND, format!("no model '{file}' here; see /model.json")).into_response()
}

async fn trained_data(
    State(served): State<Served>,
    UrlPath(file): UrlPath<String>,
    request: axum::extract::Request,
) -> Response {
    let Some((folder, languages)) = &served.site.tessdata else {
        return (StatusCode::NOT_FOUND, "this model reads no text").into_response();
    };
    if !languages.iter().any(|l| file == format!("{l}.traineddata")) {
        return (StatusCode::NOT_FOUND, format!("no trained data '{file}' here")).into_response();
    }
    let result = tower::ServiceExt::oneshot(ServeFile::new(folder.join(&file)), request).await;
    let mut response = match result {
        Ok(response) => response.into_response(),
        Err(never) => match never {},
    };
    // The page checks and caches the files by sha256; a new pinned version has a new hash.
    response.headers_mut().insert(header::CACHE_CONTROL, HeaderValue::from_static("no-cache"));
    response.headers_mut().insert(header::CONTENT_TYPE, HeaderValue::from_static("application/octet-stream"));
    response
}

/// Serves `site` on `listen` until SIGINT/SIGTERM, printing the URL once bound (port 0 picks one).
pub async fn serve(site: &DemoSite, listen: SocketAddr) -> Result<()> {
    let listener = tokio::net::TcpListener::bind(listen).await.with_context(|| format!("binding {listen}"))?;
    let bound = listener.local_addr().context("reading the bound address")?;
    println!("spamlens demo: http://{bound}/  (model sha256 {})", site.sha256);
    axum::serve(listener, site.router()).with_graceful_shutdown(shutdown_signal()).await.context("serving the demo")
}

/// Resolves on SIGINT (Ctrl-C) or SIGTERM.
pub async fn shutdown_signal() {
    let interrupt = async {
        if tokio::signal::ctrl_c().await.is_err() {
            std::future::pending::<()>().await;
        }
    };
    #[cfg(unix)]
    let terminate = async {
        match tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate()) {
            Ok(mut signal) => {
                signal.recv().await;
            }
            Err(_) => std::future::pending::<()>().await,
        }
    };
    #[cfg(not(unix))]
    let terminate = std::future::pending::<()>();
    tokio::select! {
        () = interrupt => {}
        () = terminate => {}
    }
}
