//! `spamlens serve` end to end: the real binary on an ephemeral loopback port with the real default
//! model (built-in head + the fetched ResNet-50), every route against the OpenAPI document it serves
//! (generated from its types; `openapi_schemathesis.rs` fuzzes the server against it), every error
//! status, limits, the token, and shutdown with requests in flight.

mod support;

use std::collections::BTreeSet;
use std::io::{Read, Write};
use std::net::TcpStream;
use std::time::Duration;

use serde_json::{Value, json};
use spamlens_integration_tests::Embed;
use support::{Server, get, header, json, multipart, post, real_images, try_post};

/// Every operation the server has (without `--demo`), as (method, path).
const ROUTES: [(&str, &str); 8] = [
    ("get", "/healthz"),
    ("get", "/metrics"),
    ("get", "/openapi.json"),
    ("get", "/readyz"),
    ("get", "/v1/model"),
    ("post", "/v1/classify"),
    ("post", "/v1/feedback"),
    ("post", "/v1/scan"),
];

/// The image media types the document lists for a raw classify body.
const IMAGE_TYPES: [&str; 8] = [
    "image/bmp",
    "image/gif",
    "image/jpeg",
    "image/png",
    "image/tiff",
    "image/vnd.microsoft.icon",
    "image/webp",
    "image/x-icon",
];

/// The schema `reference` (`#/components/schemas/X`) points at, or `schema` itself.
fn resolve<'a>(spec: &'a Value, schema: &'a Value) -> &'a Value {
    match schema.get("$ref").and_then(Value::as_str) {
        Some(reference) => {
            let name =
                reference.strip_prefix("#/components/schemas/").unwrap_or_else(|| panic!("odd $ref {reference}"));
            let target = &spec["components"]["schemas"][name];
            assert!(target.is_object(), "{reference} is not in the document");
            target
        }
        None => schema,
    }
}

/// The properties an object schema requires, through `$ref` and `allOf`.
fn required_keys(spec: &Value, schema: &Value) -> BTreeSet<String> {
    let schema = resolve(spec, schema);
    let mut keys: BTreeSet<String> =
        schema["required"].as_array().into_iter().flatten().filter_map(|k| k.as_str().map(str::to_owned)).collect();
    for part in schema["allOf"].as_array().into_iter().flatten() {
        keys.extend(required_keys(spec, part));
    }
    keys
}

/// Checks an answer on `method path` against the served document: the status is documented for
/// the operation, the media type is one the status documents, a JSON body holds the properties its
/// schema requires, and a documented `Retry-After` is there. (Schemathesis checks whole bodies.)
fn conforms(spec: &Value, method: &str, path: &str, answer: &support::Answer) {
    let operation = &spec["paths"][path][method];
    assert!(operation.is_object(), "{method} {path} is not in the OpenAPI document");
    let status = answer.0.to_string();
    let documented = &operation["responses"][&status];
    assert!(documented.is_object(), "{method} {path} answered {status}, which is not documented: {}", answer.1);
    if let Some(content) = documented["content"].as_object() {
        let media_type =
            header(answer, "content-type").unwrap_or_default().split(';').next().unwrap_or_default().trim();
        assert!(content.contains_key(media_type), "{method} {path} {status}: {media_type} is not one of {content:?}");
        if media_type == "application/json" {
            let value = json(answer);
            for key in required_keys(spec, &content[media_type]["schema"]) {
                assert!(value.get(&key).is_some(), "{method} {path} {status}: required '{key}' missing in {value}");
            }
        }
    }
    if documented.get("headers").and_then(|h| h.get("Retry-After")).is_some() {
        assert!(header(answer, "retry-after").is_some(), "{method} {path} {status} has no Retry-After");
    }
}

/// The OpenAPI document `server` serves.
fn served(server: &Server) -> Value {
    let answer = get(&server.url("/openapi.json"), &[]);
    assert_eq!(answer.0, 200, "{}", answer.1);
    assert_eq!(header(&answer, "content-type"), Some("application/json"));
    json(&answer)
}

/// Sends `method path` with an empty body and no token on a fresh connection: (status, `Allow`).
fn bare_request(server: &Server, method: &str, path: &str) -> (u16, Option<String>) {
    let address = server.base.trim_start_matches("http://");
    let mut stream = TcpStream::connect(address).unwrap();
    write!(stream, "{method} {path} HTTP/1.1\r\nHost: {address}\r\nContent-Length: 0\r\nConnection: close\r\n\r\n")
        .unwrap();
    let mut text = String::new();
    stream.set_read_timeout(Some(Duration::from_secs(60))).unwrap();
    let _ = stream.read_to_string(&mut text);
    let status = text.split(' ').nth(1).and_then(|s| s.parse().ok()).unwrap_or_else(|| panic!("no status: {text}"));
    let allow = text.lines().take_while(|l| !l.is_empty()).find_map(|l| {
        l.split_once(':').filter(|(k, _)| k.eq_ignore_ascii_case("allow")).map(|(_, v)| v.trim().to_owned())
    });
    (status, allow)
}

/// An image-spam image from the shared Image Spam Hunter set that the built-in model calls spam.
fn spam_image() -> Vec<u8> {
    let dir = spamlens_integration_tests::imagespam_dataset("image-spam-hunter").join("spam");
    let mut files: Vec<_> = std::fs::read_dir(&dir).unwrap().map(|e| e.unwrap().path()).collect();
    files.sort();
    std::fs::read(&files[0]).unwrap()
}

fn eagle() -> Vec<u8> {
    std::fs::read(spamlens_integration_tests::models_dir().join("testimages/bald_eagle.jpeg")).unwrap()
}

#[test]
fn the_served_openapi_document_is_the_router_and_every_route_answers_as_it_says() {
    let server = Server::start(&[]);
    let spec = served(&server);
    assert_eq!(spec["openapi"], "3.1.0");

    // The document's operations are the server's routes, and the other way round: each documented
    // operation is routed, and each documented path refuses every other method with 405 whose
    // Allow names exactly the documented methods.
    let mut documented = BTreeSet::new();
    for (path, item) in spec["paths"].as_object().unwrap() {
        let methods: BTreeSet<String> = item.as_object().unwrap().keys().cloned().collect();
        for method in &methods {
            documented.insert((method.clone(), path.clone()));
            let (status, _) = bare_request(&server, &method.to_ascii_uppercase(), path);
            assert!(status != 404 && status != 405, "{method} {path} is documented but answered {status}");
            assert!(
                spec["paths"][path][method]["responses"][status.to_string()].is_object(),
                "{method} {path}: {status}"
            );
        }
        let (status, allow) = bare_request(&server, "DELETE", path);
        assert_eq!(status, 405, "DELETE {path}");
        let allowed: BTreeSet<String> = allow
            .unwrap_or_default()
            .split(',')
            .map(|m| m.trim().to_ascii_lowercase())
            .filter(|m| !m.is_empty() && m != "head")
            .collect();
        assert_eq!(allowed, methods, "Allow on {path}");
    }
    let routes: BTreeSet<(String, String)> = ROUTES.iter().map(|(m, p)| ((*m).to_owned(), (*p).to_owned())).collect();
    assert_eq!(documented, routes, "documented operations vs the server's routes");

    // Bodies are described as the server parses them: images by their media types (not any bytes),
    // multipart parts and JSON base64 for several; messages as message/rfc822.
    let classify = &spec["paths"]["/v1/classify"]["post"]["requestBody"]["content"];
    let mut expected: BTreeSet<&str> = IMAGE_TYPES.into_iter().collect();
    expected.extend(["multipart/form-data", "application/json"]);
    assert_eq!(classify.as_object().unwrap().keys().map(String::as_str).collect::<BTreeSet<_>>(), expected);
    for media_type in IMAGE_TYPES {
        assert_eq!(
            classify[media_type]["schema"],
            json!({"type": "string", "format": "binary", "description": "An encoded image."})
        );
    }
    assert_eq!(classify["multipart/form-data"]["schema"]["additionalProperties"]["format"], "binary");
    let images = &resolve(&spec, &classify["application/json"]["schema"])["properties"]["images"];
    assert_eq!(images["minItems"], 1);
    for path in ["/v1/scan", "/v1/feedback"] {
        let content = &spec["paths"][path]["post"]["requestBody"]["content"];
        assert_eq!(content.as_object().unwrap().keys().collect::<Vec<_>>(), ["message/rfc822"], "{path}");
        assert_eq!(content["message/rfc822"]["schema"]["format"], "binary");
    }
    // Every error answer is documented with the error body (422 on classify lists each image's error).
    for (method, path) in ROUTES {
        for (status, response) in spec["paths"][path][method]["responses"].as_object().unwrap() {
            if status.starts_with('2') || (path == "/v1/classify" && status == "422") {
                continue;
            }
            let schema = &response["content"]["application/json"]["schema"];
            assert_eq!(schema["$ref"], "#/components/schemas/Error", "{method} {path} {status}");
        }
    }
    // Without --token-file nothing needs a token, and the document says so.
    assert!(spec["paths"]["/v1/classify"]["post"].get("security").is_none());
    assert!(spec["paths"]["/v1/classify"]["post"]["responses"].get("401").is_none());
}

#[test]
fn every_route_answers_as_the_openapi_document_says() {
    let server = Server::start(&[]);
    let spec = served(&server);

    let health = get(&server.url("/healthz"), &[]);
    conforms(&spec, "get", "/healthz", &health);
    let ready = get(&server.url("/readyz"), &[]);
    conforms(&spec, "get", "/readyz", &ready);
    let model = get(&server.url("/v1/model"), &[]);
    conforms(&spec, "get", "/v1/model", &model);
    let model = json(&model);
    assert_eq!(model["labels"], json!(["ham", "spam"]));
    assert_eq!(model["sha256"], json(&ready)["model"]);
    assert_eq!(model["metadata"]["spamlens.kind"], "combined");
    assert_eq!(model["server"]["max_batch"], 1);
    assert_eq!(model["server"]["auth"], false);

    let classified = post(&server.url("/v1/classify?name=eagle.jpg"), "image/jpeg", &eagle(), &[]);
    conforms(&spec, "post", "/v1/classify", &classified);
    let body = json(&classified);
    assert_eq!(body["images"][0]["name"], "eagle.jpg");
    assert_eq!(body["images"][0]["label"], "ham");
    assert_eq!((body["images"][0]["width"].as_u64(), body["images"][0]["height"].as_u64()), (Some(800), Some(600)));

    // A whole email: the spam image inline (cid), the photo attached, spammy text.
    let (spam, photo) = (spam_image(), eagle());
    let message = spamlens_integration_tests::build_email(
        "Cheap meds online - best prices!!!",
        "Click here to buy now. Limited offer, order today and save 80% on all products.",
        &[("offer.jpg", &spam, Embed::Inline), ("eagle.jpg", &photo, Embed::Attachment)],
    );
    let scanned = post(&server.url("/v1/scan?name=offer.eml"), "message/rfc822", &message, &[]);
    conforms(&spec, "post", "/v1/scan", &scanned);
    let body = json(&scanned);
    assert_eq!(body["message"], "offer.eml");
    assert_eq!(body["verdict"]["label"], "spam", "{body}");
    assert_eq!(body["images"][0]["source"]["kind"], "inline");
    assert_eq!(body["images"][0]["label"], "spam");
    assert_eq!(body["images"][1]["label"], "ham");
    assert!(body["text"]["score"].as_f64().is_some());
    let not_mail = post(&server.url("/v1/scan"), "message/rfc822", b"\x89PNG not a message", &[]);
    conforms(&spec, "post", "/v1/scan", &not_mail);
    assert_eq!(json(&not_mail)["error"]["code"], "not_a_message");

    let feedback = post(&server.url("/v1/feedback?label=spam&name=offer.eml"), "message/rfc822", &message, &[]);
    conforms(&spec, "post", "/v1/feedback", &feedback);
    let body = json(&feedback);
    assert_eq!(body["reaction"], "USER_MESSAGE_MARK_SPAM");
    assert_eq!((&body["state_saved"], &body["logged"]), (&json!(false), &json!(false)));
    let unlabelled = post(&server.url("/v1/feedback"), "message/rfc822", &message, &[]);
    conforms(&spec, "post", "/v1/feedback", &unlabelled);
    assert_eq!(unlabelled.0, 400);

    let wrong = get(&server.url("/v1/classify"), &[]);
    assert_eq!(wrong.0, 405);
    assert_eq!(json(&wrong)["error"]["code"], "method_not_allowed");
    assert_eq!(header(&wrong, "allow"), Some("POST"));
    let missing = get(&server.url("/v2/classify"), &[]);
    assert_eq!(missing.0, 404);
    assert_eq!(json(&missing)["error"]["code"], "not_found");

    let metrics = get(&server.url("/metrics"), &[]);
    conforms(&spec, "get", "/metrics", &metrics);
    let text = &metrics.1;
    for series in [
        "spamlens_http_requests_total{route=\"/v1/classify\",status=\"200\"} 1",
        "spamlens_http_requests_total{route=\"/v1/classify\",status=\"405\"} 1",
        "spamlens_http_requests_total{route=\"unmatched\",status=\"404\"} 1",
        "spamlens_http_requests_total{route=\"/v1/scan\",status=\"200\"} 1",
        "spamlens_http_requests_total{route=\"/v1/scan\",status=\"400\"} 1",
        "spamlens_http_requests_total{route=\"/v1/feedback\",status=\"200\"} 1",
        "spamlens_http_requests_total{route=\"/v1/feedback\",status=\"400\"} 1",
        "spamlens_images_total{outcome=\"ham\"} 2",
        "spamlens_images_total{outcome=\"spam\"} 1",
        "spamlens_inference_batch_size_count 3",
        // The built-in model reads text: OCR runs on the decode pool and is timed.
        "spamlens_ocr_images_total{outcome=\"read\"}",
        "spamlens_ocr_seconds_count",
        "spamlens_ready 1",
        "spamlens_queue_capacity 128",
    ] {
        assert!(text.contains(series), "/metrics lacks '{series}':\n{text}");
    }
    for series in [
        "spamlens_http_request_duration_seconds_bucket{le=\"+Inf\",route=\"/v1/classify\"}",
        "spamlens_images_per_second",
        "spamlens_inference_queue_depth",
        "spamlens_images_in_flight",
        "spamlens_model_info{sha256=\"",
        "process_resident_memory_bytes",
    ] {
        assert!(text.contains(series), "/metrics lacks '{series}':\n{text}");
    }
    // Every route the server has answered on is documented, and every documented route was called.
    let answered: BTreeSet<String> = text
        .lines()
        .filter_map(|l| l.strip_prefix("spamlens_http_requests_total{route=\""))
        .filter_map(|l| l.split('"').next())
        .filter(|r| *r != "unmatched")
        .map(str::to_owned)
        .collect();
    let documented: BTreeSet<String> = spec["paths"].as_object().unwrap().keys().cloned().collect();
    let called: BTreeSet<String> = answered.iter().cloned().chain(["/metrics".to_owned()]).collect();
    assert_eq!(called, documented, "routes answered vs documented");
}

#[test]
fn raw_multipart_and_json_bodies_classify_like_the_cli() {
    let images = real_images(12);
    let dir = tempfile::tempdir().unwrap();
    let mut files = Vec::new();
    for (name, bytes) in &images {
        let path = dir.path().join(name);
        std::fs::write(&path, bytes).unwrap();
        files.push(path);
    }
    let out = support::spamlens().arg("classify").arg("--json").args(&files).output().unwrap();
    assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
    let cli: Vec<Value> =
        String::from_utf8_lossy(&out.stdout).lines().map(|l| serde_json::from_str(l).unwrap()).collect();

    let server = Server::start(&["--max-batch", "8"]);
    let compare = |answer: &Value, reference: &Value| {
        assert_eq!(answer["label"], reference["label"], "{answer} vs {reference}");
        assert_eq!((&answer["width"], &answer["height"]), (&reference["width"], &reference["height"]));
        for (class, p) in reference["probabilities"].as_object().unwrap() {
            let diff = (answer["probabilities"][class].as_f64().unwrap() - p.as_f64().unwrap()).abs();
            assert!(diff < 1e-6, "{class}: server vs CLI differ by {diff}: {answer} vs {reference}");
        }
    };

    // One raw body per image, several at once (so the batcher sees concurrent requests).
    std::thread::scope(|scope| {
        let handles: Vec<_> = images
            .iter()
            .map(|(name, bytes)| {
                let url = server.url(&format!("/v1/classify?name={name}"));
                scope.spawn(move || json(&post(&url, "application/octet-stream", bytes, &[])))
            })
            .collect();
        for (handle, reference) in handles.into_iter().zip(&cli) {
            let answer = handle.join().unwrap();
            assert_eq!(answer["classified"], 1, "{answer}");
            compare(&answer["images"][0], reference);
        }
    });

    // All of them in one multipart form, in order.
    let parts: Vec<(&str, &[u8])> = images.iter().map(|(n, b)| (n.as_str(), b.as_slice())).collect();
    let (content_type, body) = multipart(&parts);
    let answer = json(&post(&server.url("/v1/classify"), &content_type, &body, &[]));
    assert_eq!(answer["classified"], images.len(), "{answer}");
    for ((item, reference), (name, _)) in answer["images"].as_array().unwrap().iter().zip(&cli).zip(&images) {
        assert_eq!(item["name"], name.as_str());
        compare(item, reference);
    }

    // JSON with base64 strings and named objects.
    use base64::Engine as _;
    let encode = |b: &[u8]| base64::engine::general_purpose::STANDARD.encode(b);
    let body = json!({ "images": [encode(&images[0].1), { "name": "second", "data": encode(&images[1].1) }] });
    let answer = json(&post(&server.url("/v1/classify"), "application/json", body.to_string().as_bytes(), &[]));
    assert_eq!(answer["images"][0]["name"], "images[0]");
    assert_eq!(answer["images"][1]["name"], "second");
    compare(&answer["images"][0], &cli[0]);
    compare(&answer["images"][1], &cli[1]);

    // The batcher ran some multi-image batches.
    let batches = server.metric("spamlens_inference_batch_size_count").unwrap();
    let images_run = server.metric("spamlens_inference_batch_size_sum").unwrap();
    assert!(images_run > batches, "{images_run} images in {batches} batches: no batching happened");
}

#[test]
fn good_images_are_classified_and_broken_ones_reported_in_one_request() {
    let server = Server::start(&["--max-image-pixels", "50000000"]);
    let hostile = spamlens_integration_tests::hostile_images();
    let good = real_images(0);
    let mut parts: Vec<(&str, &[u8])> = good.iter().map(|(n, b)| (n.as_str(), b.as_slice())).collect();
    parts.extend(hostile.iter().map(|(n, b, _)| (*n, b.as_slice())));
    let (content_type, body) = multipart(&parts);
    let answer = post(&server.url("/v1/classify"), &content_type, &body, &[]);
    assert_eq!(answer.0, 200, "{}", answer.1);
    let answer = json(&answer);
    let items = answer["images"].as_array().unwrap();
    assert_eq!(items.len(), parts.len());
    let by_name = |name: &str| items.iter().find(|i| i["name"] == name).unwrap_or_else(|| panic!("no {name}"));
    for (name, _) in &good {
        assert!(by_name(name)["label"].is_string(), "{}", by_name(name));
    }
    for (name, _, expect) in &hostile {
        let item = by_name(name);
        match expect {
            spamlens_integration_tests::Expect::Image => assert!(item["label"].is_string(), "{item}"),
            spamlens_integration_tests::Expect::Error => {
                let message = item["error"]["message"].as_str().unwrap_or_else(|| panic!("{item}"));
                assert!(message.starts_with(name), "the error names the image: {item}");
            }
            spamlens_integration_tests::Expect::Either => {}
        }
    }
    assert_eq!(by_name("empty.jpg")["error"]["code"], "empty_image");
    assert_eq!(by_name("random.bin")["error"]["code"], "unsupported_format");
    assert_eq!(by_name("bomb.png")["error"]["code"], "image_too_large");
    assert_eq!(by_name("truncated.png")["error"]["code"], "corrupt_image");
    let failed = items.iter().filter(|i| i.get("error").is_some()).count();
    assert_eq!(answer["failed"], failed);
    assert_eq!(answer["classified"], items.len() - failed);
    assert!(server.metric("spamlens_images_total{outcome=\"image_too_large\"}").unwrap() >= 1.0);
}

/// A request that has sent its head and part of its body, and waits.
fn stalled_upload(server: &Server, path: &str) -> TcpStream {
    let address = server.base.trim_start_matches("http://");
    let mut stream = TcpStream::connect(address).unwrap();
    write!(
        stream,
        "POST {path} HTTP/1.1\r\nHost: {address}\r\nContent-Type: image/jpeg\r\nContent-Length: 100000\r\n\r\n"
    )
    .unwrap();
    stream.write_all(&[0xff, 0xd8, 0xff, 0xe0]).unwrap();
    stream.flush().unwrap();
    stream
}

/// Polls /metrics until `series` satisfies `test` (at most 10 s).
fn wait_until(server: &Server, series: &str, test: impl Fn(f64) -> bool) {
    for _ in 0..1000 {
        if server.metric(series).is_some_and(&test) {
            return;
        }
        std::thread::sleep(Duration::from_millis(10));
    }
    panic!("{series} never got where the test waits for it (now {:?})", server.metric(series));
}

fn wait_for_metric(server: &Server, series: &str, wanted: f64) {
    wait_until(server, series, |v| v == wanted);
}

#[test]
fn every_error_is_json_with_a_code_and_the_documented_status() {
    let server = Server::start(&["--max-body-mib", "1", "--max-images", "3", "--max-image-pixels", "3000"]);
    let spec = served(&server);
    let url = server.url("/v1/classify");
    let check = |answer: support::Answer, status: u16, code: &str, words: &str| {
        assert_eq!(answer.0, status, "{}", answer.1);
        conforms(&spec, "post", "/v1/classify", &answer);
        let body = json(&answer);
        let found = if status == 422 { &body["images"][0]["error"] } else { &body["error"] };
        assert_eq!(found["code"], code, "{body}");
        assert!(found["message"].as_str().unwrap().contains(words), "'{words}' not in {body}");
    };
    check(post(&url, "application/json", b"{\"images\": [", &[]), 400, "bad_request", "not valid JSON");
    check(post(&url, "application/json", b"{\"images\": []}", &[]), 400, "bad_request", "no images");
    check(post(&url, "multipart/form-data; boundary=x", b"--x\r\ngarbage", &[]), 400, "bad_request", "multipart");
    check(post(&url, "multipart/form-data", b"", &[]), 400, "bad_request", "multipart");
    check(post(&url, "text/plain", b"hello", &[]), 415, "unsupported_media_type", "text/plain");
    // Over the body limit (the whole body is sent; the answer still comes).
    check(post(&url, "image/png", &vec![0u8; 1_500_000], &[]), 413, "payload_too_large", "over the limit of 1048576");
    let parts = [("a.jpg", &eagle()[..]), ("b.jpg", &eagle()[..]), ("c.jpg", &eagle()[..]), ("d.jpg", &eagle()[..])];
    let (content_type, body) = multipart(&parts);
    check(post(&url, &content_type, &body, &[]), 413, "too_many_images", "4 images, over the limit of 3");
    // Nothing classifiable: 422 with each image's reason; the pixel limit is the server's flag.
    check(post(&url, "image/jpeg", &eagle(), &[]), 422, "image_too_large", "over the pixel limit of 3000");
    check(post(&url, "image/jpeg", b"", &[]), 422, "empty_image", "empty input");
    let tiny =
        spamlens_integration_tests::hostile_images().into_iter().find(|(n, _, _)| *n == "one-pixel.png").unwrap();
    assert_eq!(post(&url, "image/png", &tiny.1, &[]).0, 200);
    // Not documented anywhere: 404 and 405 are JSON too.
    let missing = get(&server.url("/v1/nothing"), &[]);
    assert_eq!((missing.0, json(&missing)["error"]["code"].as_str()), (404, Some("not_found")));
    let wrong = post(&server.url("/healthz"), "image/jpeg", b"x", &[]);
    assert_eq!((wrong.0, json(&wrong)["error"]["code"].as_str()), (405, Some("method_not_allowed")));
}

#[test]
fn a_full_queue_answers_503_with_retry_after() {
    let server = Server::start(&["--workers", "1", "--max-queue", "3", "--max-images", "3", "--max-batch", "1"]);
    let spec = served(&server);
    let url = server.url("/v1/classify");
    let images = real_images(0);
    let parts: Vec<(&str, &[u8])> = images.iter().map(|(n, b)| (n.as_str(), b.as_slice())).collect();
    let (content_type, body) = multipart(&parts);
    std::thread::scope(|scope| {
        let first = scope.spawn(|| post(&url, &content_type, &body, &[]));
        wait_for_metric(&server, "spamlens_images_in_flight", 3.0);
        let refused = post(&url, "image/jpeg", &eagle(), &[]);
        assert_eq!(refused.0, 503, "{}", refused.1);
        conforms(&spec, "post", "/v1/classify", &refused);
        assert_eq!(json(&refused)["error"]["code"], "overloaded");
        assert!(json(&refused)["error"]["message"].as_str().unwrap().contains("3 of 3 images in flight"));
        assert_eq!(header(&refused, "retry-after"), Some("1"));
        assert_eq!(first.join().unwrap().0, 200);
    });
    // Capacity is given back: the same request now goes through.
    assert_eq!(post(&url, "image/jpeg", &eagle(), &[]).0, 200);
    wait_for_metric(&server, "spamlens_images_in_flight", 0.0);
}

#[test]
fn the_request_limit_and_the_timeout_answer_503() {
    let server = Server::start(&["--max-requests", "1", "--request-timeout-secs", "1.5"]);
    let spec = served(&server);
    let url = server.url("/v1/classify");
    let mut stalled = stalled_upload(&server, "/v1/classify");
    wait_for_metric(&server, "spamlens_requests_in_flight", 1.0);
    let refused = post(&url, "image/jpeg", &eagle(), &[]);
    assert_eq!(refused.0, 503, "{}", refused.1);
    conforms(&spec, "post", "/v1/classify", &refused);
    assert!(json(&refused)["error"]["message"].as_str().unwrap().contains("--max-requests"));
    // The stalled upload itself is answered when its time is up.
    let mut answer = String::new();
    stalled.set_read_timeout(Some(Duration::from_secs(20))).unwrap();
    let _ = stalled.read_to_string(&mut answer);
    assert!(answer.starts_with("HTTP/1.1 503"), "{answer}");
    assert!(answer.contains("\"code\":\"timeout\""), "{answer}");
    assert!(answer.to_ascii_lowercase().contains("retry-after: 1"), "{answer}");
    // And the server is fine afterwards.
    assert_eq!(post(&url, "image/jpeg", &eagle(), &[]).0, 200);
}

#[test]
fn feedback_persists_the_filter_logs_reactions_and_changes_the_next_scan() {
    let dir = tempfile::tempdir().unwrap();
    let state = dir.path().join("filter.json");
    let log = dir.path().join("reactions");
    let server = Server::start(&["--text-filter", state.to_str().unwrap(), "--feedback-dir", log.to_str().unwrap()]);
    let spec = served(&server);
    let photo = eagle();
    let message = |n: usize| {
        spamlens_integration_tests::build_email(
            &format!("Re: update {n}"),
            &format!(
                "Hello, your parcel {} could not be delivered. Please confirm the address so the driver can try again tomorrow.",
                7000 + n
            ),
            &[("label.jpg", &photo, Embed::Attachment)],
        )
    };
    let first = json(&post(&server.url("/v1/scan?name=parcel3.eml"), "message/rfc822", &message(3), &[]));
    assert_eq!(first["verdict"]["label"], "ham", "{first}");
    for n in 0..2 {
        let answer = post(&server.url("/v1/feedback?label=spam"), "message/rfc822", &message(n), &[]);
        conforms(&spec, "post", "/v1/feedback", &answer);
        let body = json(&answer);
        assert_eq!((&body["state_saved"], &body["logged"]), (&json!(true), &json!(true)), "{body}");
        assert_eq!(body["after"]["is_spam"], true);
        assert_eq!(body["images"][0]["name"], "label.jpg");
    }
    let second = json(&post(&server.url("/v1/scan?name=parcel3.eml"), "message/rfc822", &message(3), &[]));
    assert_eq!(second["verdict"]["label"], "spam", "{second}");
    assert_eq!(second["verdict"]["decided_by"], "text");

    let model = json(&get(&server.url("/v1/model"), &[]));
    assert_eq!(model["text_filter"]["state_file"], state.display().to_string());
    let records = std::fs::read_to_string(log.join("reactions.jsonl")).unwrap();
    assert_eq!(records.lines().count(), 2);
    let record: Value = serde_json::from_str(records.lines().next().unwrap()).unwrap();
    assert_eq!(record["reaction"], "USER_MESSAGE_MARK_SPAM");
    let stored = log.join(record["images"][0]["file"].as_str().unwrap());
    assert_eq!(std::fs::read(stored).unwrap(), photo);

    // The saved state is what a restarted server (or `spamlens scan --text-filter`) loads.
    drop(server);
    let restarted = Server::start(&["--text-filter", state.to_str().unwrap()]);
    let third = json(&post(&restarted.url("/v1/scan"), "message/rfc822", &message(4), &[]));
    assert_eq!(third["verdict"]["label"], "spam", "{third}");
    let wrong_type = post(&restarted.url("/v1/scan"), "image/png", &photo, &[]);
    conforms(&spec, "post", "/v1/scan", &wrong_type);
    assert_eq!(wrong_type.0, 415);
    let bad_label = post(&restarted.url("/v1/feedback?label=maybe"), "message/rfc822", &message(5), &[]);
    assert_eq!(
        (bad_label.0, json(&bad_label)["error"]["message"].as_str()),
        (400, Some("label: 'maybe' is not a label (spam or ham)"))
    );
}

/// Concurrent "mark as spam" requests: every one is answered 200, counted in the saved filter and
/// logged once; the file on disk is the state after the last of them, never an older one.
#[test]
fn concurrent_feedback_loses_no_update() {
    let dir = tempfile::tempdir().unwrap();
    let state = dir.path().join("filter.json");
    let log = dir.path().join("reactions");
    let server = Server::start(&["--text-filter", state.to_str().unwrap(), "--feedback-dir", log.to_str().unwrap()]);
    let url = server.url("/v1/feedback?label=spam");
    let message = |n: usize| {
        spamlens_integration_tests::build_email(
            &format!("Offer {n}"),
            &format!("Cheap watches and pills, order {n} today, limited stock, click now"),
            &[],
        )
    };
    let counted = |path: &std::path::Path| -> f64 {
        let state: Value = serde_json::from_slice(&std::fs::read(path).unwrap()).unwrap();
        state["all_messages"].as_f64().unwrap()
    };
    assert_eq!(post(&server.url("/v1/feedback?label=spam&name=first"), "message/rfc822", &message(0), &[]).0, 200);
    let before = counted(&state);
    const N: usize = 16;
    let answers: Vec<(u16, String)> = std::thread::scope(|scope| {
        let handles: Vec<_> = (1..=N)
            .map(|n| {
                let (url, body) = (format!("{url}&name=concurrent-{n}"), message(n));
                scope.spawn(move || {
                    let answer = post(&url, "message/rfc822", &body, &[]);
                    (answer.0, answer.1)
                })
            })
            .collect();
        handles.into_iter().map(|h| h.join().unwrap()).collect()
    });
    for (status, body) in &answers {
        assert_eq!(*status, 200, "{body}");
        let body: Value = serde_json::from_str(body).unwrap();
        assert_eq!((&body["state_saved"], &body["logged"]), (&json!(true), &json!(true)), "{body}");
    }
    assert_eq!(counted(&state), before + N as f64, "the saved filter lost an update");
    let records = std::fs::read_to_string(log.join("reactions.jsonl")).unwrap();
    let names: BTreeSet<String> = records
        .lines()
        .map(|l| serde_json::from_str::<Value>(l).unwrap()["message"].as_str().unwrap().to_owned())
        .collect();
    assert_eq!(records.lines().count(), N + 1);
    for n in 1..=N {
        assert!(names.contains(&format!("concurrent-{n}")), "concurrent-{n} is not in the log");
    }
    let leftovers: Vec<_> = std::fs::read_dir(dir.path())
        .unwrap()
        .filter_map(|e| e.ok().map(|e| e.file_name().to_string_lossy().into_owned()))
        .filter(|name| name.contains(".part"))
        .collect();
    assert!(leftovers.is_empty(), "temporary files left: {leftovers:?}");
}

#[test]
fn the_token_guards_the_api_but_not_health() {
    let dir = tempfile::tempdir().unwrap();
    let token_file = dir.path().join("token");
    std::fs::write(&token_file, "correct-horse-battery\n").unwrap();
    let mut permissions = std::fs::metadata(&token_file).unwrap().permissions();
    std::os::unix::fs::PermissionsExt::set_mode(&mut permissions, 0o600);
    std::fs::set_permissions(&token_file, permissions).unwrap();
    let server = Server::start(&["--token-file", token_file.to_str().unwrap()]);
    let spec = served(&server);
    // The document served with --token-file asks for the bearer token where the server does.
    assert_eq!(spec["components"]["securitySchemes"]["bearer"]["scheme"], "bearer");
    for (method, path) in ROUTES {
        let security = &spec["paths"][path][method]["security"];
        let open = ["/healthz", "/readyz", "/openapi.json"].contains(&path);
        assert_eq!(security.is_null(), open, "{method} {path}: {security}");
        assert_eq!(spec["paths"][path][method]["responses"]["401"].is_null(), open, "{method} {path}");
    }
    let url = server.url("/v1/classify");
    let missing = post(&url, "image/jpeg", &eagle(), &[]);
    assert_eq!(missing.0, 401);
    conforms(&spec, "post", "/v1/classify", &missing);
    assert_eq!(header(&missing, "www-authenticate"), Some("Bearer"));
    let wrong = post(&url, "image/jpeg", &eagle(), &[("Authorization", "Bearer correct-horse")]);
    assert_eq!((wrong.0, json(&wrong)["error"]["message"].as_str()), (401, Some("the bearer token is wrong")));
    let right = post(&url, "image/jpeg", &eagle(), &[("Authorization", "Bearer correct-horse-battery")]);
    assert_eq!(right.0, 200, "{}", right.1);
    assert_eq!(get(&server.url("/metrics"), &[]).0, 401);
    assert_eq!(get(&server.url("/v1/model"), &[]).0, 401);
    let message = spamlens_integration_tests::build_email("hi", "hello", &[]);
    for route in ["/v1/scan", "/v1/feedback?label=ham"] {
        let refused = post(&server.url(route), "message/rfc822", &message, &[]);
        assert_eq!(refused.0, 401, "{route}");
    }
    let scanned =
        post(&server.url("/v1/scan"), "message/rfc822", &message, &[("Authorization", "Bearer correct-horse-battery")]);
    assert_eq!(scanned.0, 200, "{}", scanned.1);
    let model = get(&server.url("/v1/model"), &[("Authorization", "Bearer correct-horse-battery")]);
    assert_eq!(json(&model)["server"]["auth"], true);
    for open in ["/healthz", "/readyz", "/openapi.json"] {
        assert_eq!(get(&server.url(open), &[]).0, 200, "{open}");
    }
}

#[test]
fn shutdown_answers_every_request_in_flight_and_exits_0() {
    let mut server = Server::start(&["--workers", "1", "--max-batch", "2"]);
    let url = server.url("/v1/classify");
    let images = real_images(2);
    let (content_type, body) = multipart(&[("a.jpg", &images[0].1), ("b.jpg", &images[3].1)]);
    let answers = std::thread::scope(|scope| {
        let requests: Vec<_> = (0..6).map(|_| scope.spawn(|| try_post(&url, &content_type, &body, &[]))).collect();
        wait_until(&server, "spamlens_images_in_flight", |n| n >= 8.0);
        server.terminate();
        requests.into_iter().map(|r| r.join().unwrap()).collect::<Vec<_>>()
    });
    for answer in &answers {
        let answer = answer.as_ref().unwrap_or_else(|e| panic!("a request in flight got no answer: {e}"));
        assert_eq!(answer.0, 200, "{}", answer.1);
        assert_eq!(json(answer)["classified"], 2);
    }
    let status = server.wait_exit(Duration::from_secs(30));
    assert!(status.success(), "exit status {status}");
    // Nothing listens any more.
    assert!(TcpStream::connect(server.base.trim_start_matches("http://")).is_err());
}

#[test]
fn the_demo_page_is_served_beside_the_api() {
    let package = support::workspace().join("runtime-wasm/js/dist/spamlens_simd.wasm");
    assert!(package.is_file(), "{} is missing: run runtime-wasm/build.sh", package.display());
    let server = Server::start(&["--demo"]);
    let page = get(&server.url("/"), &[]);
    assert_eq!(page.0, 200);
    assert!(page.1.contains("<html"), "{}", page.1);
    assert!(header(&page, "content-security-policy").is_some_and(|c| c.contains("wasm-unsafe-eval")));
    let manifest = json(&get(&server.url("/model.json"), &[]));
    let model = json(&get(&server.url("/v1/model"), &[]));
    // The built-in model runs here in f32 and goes to browsers with int8 compute: the same head,
    // labels and thresholds, a quarter of the bytes.
    assert_ne!(manifest["sha256"], model["sha256"]);
    assert_eq!(manifest["labels"], model["labels"]);
    let (served, running) = (manifest["bytes"].as_u64().unwrap(), model["bytes"].as_u64().unwrap());
    assert!(served * 3 < running && served > 20_000_000, "served {served} bytes, running {running}");
    let served_sha = manifest["sha256"].as_str().unwrap();
    let sidecar = get(&server.url(&format!("/models/{served_sha}.onnx.sha256")), &[]);
    assert!(sidecar.1.starts_with(served_sha));
    let download = get(&server.url(&format!("/models/{served_sha}.onnx")), &[]);
    assert_eq!(download.0, 200);
    assert_eq!(header(&download, "content-length"), Some(served.to_string().as_str()));
    // The API keeps its JSON errors; the page's files come from the page's folder.
    assert_eq!(json(&get(&server.url("/v1/classify"), &[]))["error"]["code"], "method_not_allowed");
    assert_eq!(get(&server.url("/demo.js"), &[]).0, 200);
}

#[test]
fn the_server_is_live_but_not_ready_while_the_model_loads() {
    // A fresh cache: the built-in head is combined with the backbone first (seconds), so the server
    // listens well before the model is in.
    let cache = tempfile::tempdir().unwrap();
    let mut command = support::spamlens();
    command.env("SPAMLENS_CACHE", cache.path());
    let server = Server::spawn_command(command, &[]);
    let spec = served(&server);
    let health = get(&server.url("/healthz"), &[]);
    conforms(&spec, "get", "/healthz", &health);
    for (method, path) in [("get", "/readyz"), ("get", "/v1/model"), ("post", "/v1/classify")] {
        let answer = if method == "get" {
            get(&server.url(path), &[])
        } else {
            post(&server.url(path), "image/jpeg", &eagle(), &[])
        };
        assert_eq!(answer.0, 503, "{path}: {}", answer.1);
        conforms(&spec, method, path, &answer);
        assert_eq!(json(&answer)["error"]["code"], "not_ready");
    }
    assert_eq!(server.metric("spamlens_ready"), Some(0.0));
    server.wait_for_line("spamlens serve: ready", Duration::from_secs(300));
    assert_eq!(get(&server.url("/readyz"), &[]).0, 200);
    assert_eq!(post(&server.url("/v1/classify"), "image/jpeg", &eagle(), &[]).0, 200);
}

#[test]
fn bad_flags_and_models_fail_at_start_with_a_clear_message() {
    let dir = tempfile::tempdir().unwrap();
    let not_a_model = dir.path().join("notes.onnx");
    std::fs::write(&not_a_model, b"this is not a model").unwrap();
    let out =
        support::spamlens().args(["serve", "--listen", "127.0.0.1:0", "--model"]).arg(&not_a_model).output().unwrap();
    assert!(!out.status.success());
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(stderr.contains("notes.onnx") && stderr.contains("cannot load"), "{stderr}");

    let out = support::spamlens().args(["serve", "--max-images", "10", "--max-queue", "5"]).output().unwrap();
    assert!(!out.status.success());
    assert!(String::from_utf8_lossy(&out.stderr).contains("could never be admitted"));
    let out = support::spamlens().args(["serve", "--token-file", "/nonexistent/token"]).output().unwrap();
    assert!(String::from_utf8_lossy(&out.stderr).contains("reading the token file /nonexistent/token"));
    let out = support::spamlens().args(["serve", "--workers", "0"]).output().unwrap();
    assert!(String::from_utf8_lossy(&out.stderr).contains("--workers must be at least 1"));
}
