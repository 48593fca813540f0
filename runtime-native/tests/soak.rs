//! The soak test: `spamlens serve` under 16 concurrent clients for 60 s (`SPAMLENS_SOAK_SECS` to
//! change), interleaving good images with hostile inputs (decompression bombs, corrupt and
//! truncated files, bad base64, malformed JSON and multipart, oversized bodies, too many images,
//! wrong content types, clients that hang up mid-upload). Every request must be answered, nothing
//! may answer 5xx, each kind must get its expected status, and the server's resident memory must
//! not grow by 10% or more after warm-up.

mod support;

use std::io::Write;
use std::net::TcpStream;
use std::sync::Mutex;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::{Duration, Instant};

use base64::Engine as _;
use serde_json::json;
use support::{Server, get, multipart, real_images, try_post};

const CLIENTS: usize = 16;

/// What one kind of request sends and the status it must get (`None`: the client hangs up).
struct Kind {
    name: &'static str,
    content_type: String,
    body: Vec<u8>,
    expect: Option<u16>,
}

fn kinds() -> Vec<Kind> {
    let good = real_images(8);
    let hostile = spamlens_integration_tests::hostile_images();
    let bad = |wanted: &str| hostile.iter().find(|(n, _, _)| *n == wanted).map(|(_, b, _)| b.clone()).unwrap();
    let encode = |b: &[u8]| base64::engine::general_purpose::STANDARD.encode(b);
    let mut kinds: Vec<Kind> = good
        .iter()
        .take(6)
        .map(|(_, bytes)| Kind {
            name: "good raw",
            content_type: "image/jpeg".into(),
            body: bytes.clone(),
            expect: Some(200),
        })
        .collect();
    let (content_type, body) = multipart(&[
        ("a", &good[6].1),
        ("bomb.png", &bad("bomb.png")),
        ("b", &good[7].1),
        ("t.png", &bad("truncated.png")),
    ]);
    kinds.push(Kind { name: "mixed multipart", content_type, body, expect: Some(200) });
    let body = json!({ "images": [encode(&good[8].1), "%%%not-base64%%%", { "name": "gif", "data": encode(&bad("animated.gif")) }] });
    kinds.push(Kind {
        name: "mixed json",
        content_type: "application/json".into(),
        body: body.to_string().into_bytes(),
        expect: Some(200),
    });
    for (name, file) in [
        ("bomb", "bomb.png"),
        ("random bytes", "random.bin"),
        ("truncated header", "truncated-header.jpg"),
        ("empty", "empty.jpg"),
    ] {
        kinds.push(Kind { name, content_type: "image/png".into(), body: bad(file), expect: Some(422) });
    }
    kinds.push(Kind {
        name: "oversized body",
        content_type: "image/jpeg".into(),
        body: vec![0xff; 5 * 1024 * 1024],
        expect: Some(413),
    });
    let tiny = bad("one-pixel.png");
    let many: Vec<(&str, &[u8])> = (0..40).map(|_| ("tiny.png", tiny.as_slice())).collect();
    let (content_type, body) = multipart(&many);
    kinds.push(Kind { name: "too many images", content_type, body, expect: Some(413) });
    kinds.push(Kind {
        name: "malformed json",
        content_type: "application/json".into(),
        body: b"{\"images\": [\"abc\"".to_vec(),
        expect: Some(400),
    });
    kinds.push(Kind {
        name: "malformed multipart",
        content_type: "multipart/form-data; boundary=zz".into(),
        body: b"--zz\r\nContent-Disposition: form-data; name=\"a\"\r\n\r\nabc".to_vec(),
        expect: Some(400),
    });
    kinds.push(Kind {
        name: "wrong content type",
        content_type: "text/html".into(),
        body: b"<img src=x>".to_vec(),
        expect: Some(415),
    });
    kinds.push(Kind {
        name: "hang up mid-upload",
        content_type: "image/jpeg".into(),
        body: good[0].1.clone(),
        expect: None,
    });
    kinds
}

/// Sends half of `body` and closes the connection.
fn hang_up(server: &Server, body: &[u8]) {
    let address = server.base.trim_start_matches("http://");
    let mut stream = TcpStream::connect(address).unwrap();
    let head = format!(
        "POST /v1/classify HTTP/1.1\r\nHost: {address}\r\nContent-Type: image/jpeg\r\nContent-Length: {}\r\n\r\n",
        body.len()
    );
    let _ = stream.write_all(head.as_bytes());
    let _ = stream.write_all(&body[..body.len() / 2]);
}

#[test]
fn sixty_seconds_of_mixed_traffic_at_concurrency_16() {
    let seconds: u64 = std::env::var("SPAMLENS_SOAK_SECS").ok().and_then(|s| s.parse().ok()).unwrap_or(60);
    let duration = Duration::from_secs(seconds);
    let server = Server::start(&["--max-body-mib", "4"]);
    let kinds = kinds();
    let url = server.url("/v1/classify");
    let started = Instant::now();
    let clients_done = AtomicUsize::new(0);
    let sent = AtomicUsize::new(0);
    let failures = Mutex::new(Vec::<String>::new());
    let statuses = Mutex::new(std::collections::BTreeMap::<(&str, u16), usize>::new());
    let rss = Mutex::new(Vec::<(f64, u64)>::new());

    std::thread::scope(|scope| {
        scope.spawn(|| {
            while clients_done.load(Ordering::Relaxed) < CLIENTS {
                rss.lock().unwrap().push((started.elapsed().as_secs_f64(), server.rss_bytes()));
                std::thread::sleep(Duration::from_millis(500));
            }
            rss.lock().unwrap().push((started.elapsed().as_secs_f64(), server.rss_bytes()));
        });
        for client in 0..CLIENTS {
            let (kinds, url, server, sent, failures, statuses, clients_done) =
                (&kinds, &url, &server, &sent, &failures, &statuses, &clients_done);
            scope.spawn(move || {
                let mut turn = client * 7;
                while started.elapsed() < duration {
                    let kind = &kinds[turn % kinds.len()];
                    turn += 1;
                    sent.fetch_add(1, Ordering::Relaxed);
                    let Some(expect) = kind.expect else {
                        hang_up(server, &kind.body);
                        continue;
                    };
                    match try_post(url, &kind.content_type, &kind.body, &[]) {
                        Ok(answer) => {
                            *statuses.lock().unwrap().entry((kind.name, answer.0)).or_default() += 1;
                            if answer.0 != expect {
                                let body: String = answer.1.chars().take(300).collect();
                                failures
                                    .lock()
                                    .unwrap()
                                    .push(format!("{}: {} (expected {expect}): {body}", kind.name, answer.0));
                            }
                        }
                        Err(e) => failures.lock().unwrap().push(format!("{}: no answer: {e}", kind.name)),
                    }
                    if turn % 5 == 0 {
                        let health = get(&server.url("/healthz"), &[]);
                        if health.0 != 200 {
                            failures.lock().unwrap().push(format!("healthz: {}", health.0));
                        }
                    }
                }
                clients_done.fetch_add(1, Ordering::Relaxed);
            });
        }
    });

    let statuses = statuses.into_inner().unwrap();
    let failures = failures.into_inner().unwrap();
    let samples = rss.into_inner().unwrap();
    eprintln!("soak: {} requests in {:.0}s", sent.load(Ordering::Relaxed), started.elapsed().as_secs_f64());
    for ((kind, status), n) in &statuses {
        eprintln!("  {kind:<22} {status}  ×{n}");
    }
    assert!(
        failures.is_empty(),
        "{} failures, first ones:\n{}",
        failures.len(),
        failures[..failures.len().min(20)].join("\n")
    );
    assert!(statuses.keys().all(|(_, status)| *status < 500), "5xx answers: {statuses:?}");
    for kind in &kinds {
        assert!(statuses.keys().any(|(k, _)| *k == kind.name) || kind.expect.is_none(), "{} never ran", kind.name);
    }

    // Memory after warm-up (a quarter of the run) vs at the end.
    let warm = samples.iter().find(|(t, _)| *t >= duration.as_secs_f64() / 4.0).copied().unwrap();
    let end = *samples.last().unwrap();
    let growth = end.1 as f64 / warm.1 as f64 - 1.0;
    eprintln!(
        "soak: RSS {:.0} MiB at {:.0}s, {:.0} MiB at {:.0}s: {:+.1}%",
        warm.1 as f64 / 1048576.0,
        warm.0,
        end.1 as f64 / 1048576.0,
        end.0,
        growth * 100.0
    );
    assert!(growth < 0.10, "RSS grew {:.1}% after warm-up: {samples:?}", growth * 100.0);
    // The server is still healthy and counted what it refused.
    assert_eq!(get(&server.url("/readyz"), &[]).0, 200);
    assert!(server.metric("spamlens_http_requests_total{route=\"/v1/classify\",status=\"413\"}").unwrap() > 0.0);
}
