//! `spamlens scan` and `spamlens feedback` on real mail: SpamAssassin messages (single files and
//! an mbox), messages built from the shared image sets, and hostile input.

use std::path::{Path, PathBuf};
use std::process::Command;

use serde_json::Value;
use spamlens_integration_tests::{Embed, SPAMASSASSIN_IMAGE_MESSAGES, build_email, spamassassin_corpus};

fn spamlens() -> Command {
    let mut command = Command::new(env!("CARGO_BIN_EXE_spamlens"));
    command.env_remove("SPAMLENS_MODEL").env_remove("SPAMLENS_TEXT_FILTER");
    command
}

fn corpus_file(id: &str) -> PathBuf {
    spamassassin_corpus().join("data").join(id)
}

fn json_lines(stdout: &[u8]) -> Vec<Value> {
    String::from_utf8_lossy(stdout).lines().map(|l| serde_json::from_str(l).expect("a JSON line")).collect()
}

/// The backbone `spamlens-train backbone fetch` writes (the built-in head needs exactly it).
fn fetched_backbone() -> PathBuf {
    let path = spamlens_model::backbone::default_backbone_path();
    assert!(path.is_file(), "{} is missing: run target/debug/spamlens-train backbone fetch", path.display());
    path
}

#[test]
fn scan_text_only_reads_files_folders_and_mboxes_in_order() {
    let dir = tempfile::tempdir().unwrap();
    let spam = std::fs::read(corpus_file("spam-2/00001.317e78fa8ee2f54cd4890fdc09ba8176.txt")).unwrap();
    let ham = std::fs::read(corpus_file("easy-ham-1/00001.7c53336b37003a9286aba55d2945844c.txt")).unwrap();
    // An mbox: two messages with their envelope lines, separated by a blank line.
    let mut mbox = spam.clone();
    mbox.extend_from_slice(b"\n");
    mbox.extend_from_slice(&ham);
    let mbox_path = dir.path().join("box.mbox");
    std::fs::write(&mbox_path, &mbox).unwrap();
    let junk = dir.path().join("junk.eml");
    std::fs::write(&junk, b"\x89PNG\r\n\x1a\n not mail").unwrap();

    let out = spamlens()
        .args(["scan", "--no-images", "--json"])
        .arg(corpus_file("spam-2/00001.317e78fa8ee2f54cd4890fdc09ba8176.txt"))
        .arg(&mbox_path)
        .arg(&junk)
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(1), "a message that is not mail fails the run");
    let lines = json_lines(&out.stdout);
    assert_eq!(lines.len(), 4, "{lines:?}");
    assert_eq!(lines[0]["verdict"]["label"], "spam", "{}", lines[0]);
    assert_eq!(lines[0]["verdict"]["decided_by"], "text");
    assert!(lines[1]["message"].as_str().unwrap().ends_with("box.mbox#1 (line 1)"), "{}", lines[1]);
    assert_eq!(lines[1]["verdict"]["label"], "spam");
    assert!(lines[2]["message"].as_str().unwrap().contains("box.mbox#2"), "{}", lines[2]);
    assert_eq!(lines[2]["verdict"]["label"], "ham");
    assert_eq!(lines[2]["subject"], "Re: New Sequences Window");
    let error = lines[3]["error"].as_str().unwrap();
    assert!(error.contains("junk.eml: not an email message"), "{error}");
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(stderr.contains("4 messages: 1 ham, 2 spam; 1 unreadable"), "{stderr}");

    // A folder is walked; the table names every message.
    let out = spamlens().args(["scan", "--no-images"]).arg(dir.path()).output().unwrap();
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert!(stdout.lines().next().unwrap().starts_with("label"), "{stdout}");
    assert_eq!(stdout.lines().count(), 4, "{stdout}");
}

#[test]
fn scan_with_images_combines_text_and_image_verdicts() {
    let backbone = fetched_backbone();
    let cache = tempfile::tempdir().unwrap();
    let dir = tempfile::tempdir().unwrap();
    let ish = spamlens_integration_tests::imagespam_dataset("image-spam-hunter");
    // The first of a few images of a class that the built-in model labels so on its own (its
    // operating point trades recall for 1% ham→spam, so not every spam image is called spam).
    let pick = |label: &str| {
        let mut files: Vec<PathBuf> = std::fs::read_dir(ish.join(label)).unwrap().map(|e| e.unwrap().path()).collect();
        files.sort();
        let out = spamlens()
            .env("SPAMLENS_CACHE", cache.path())
            .args(["classify", "--json", "--backbone"])
            .arg(&backbone)
            .args(&files[..8])
            .output()
            .unwrap();
        let lines = json_lines(&out.stdout);
        let index =
            lines.iter().position(|l| l["label"] == label).unwrap_or_else(|| panic!("no {label} among {lines:?}"));
        std::fs::read(&files[index]).unwrap()
    };
    let (spam_image, ham_image) = (pick("spam"), pick("ham"));
    let plain = "Hi Anna, the minutes of Tuesday's meeting are attached. See you next week, Tom";
    let messages = [
        ("inline-spam.eml", build_email("Minutes", plain, &[("scan.jpg", &spam_image, Embed::Inline)])),
        ("data-uri-spam.eml", build_email("Minutes", plain, &[("scan.jpg", &spam_image, Embed::DataUri)])),
        ("photo.eml", build_email("Minutes", plain, &[("photo.jpg", &ham_image, Embed::Attachment)])),
    ];
    for (name, bytes) in &messages {
        std::fs::write(dir.path().join(name), bytes).unwrap();
    }
    let out = spamlens()
        .env("SPAMLENS_CACHE", cache.path())
        .args(["scan", "--json", "--backbone"])
        .arg(&backbone)
        .arg(dir.path().join("inline-spam.eml"))
        .arg(dir.path().join("data-uri-spam.eml"))
        .arg(dir.path().join("photo.eml"))
        .output()
        .unwrap();
    assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
    let lines = json_lines(&out.stdout);
    // The image's words join the message's text: the plain body alone is ham to the text filter,
    // the body with the text drawn in the spam image is spam too.
    for (line, source) in lines[..2].iter().zip(["inline", "data_uri"]) {
        assert_eq!(line["verdict"]["label"], "spam", "{line}");
        assert_eq!(line["verdict"]["decided_by"], "image+text", "{line}");
        assert_eq!(line["images"][0]["source"]["kind"], source);
        assert!(line["images"][0]["text"]["text"].as_str().is_some_and(|t| t.len() > 100), "{line}");
        assert_eq!(line["text"]["is_spam"], true, "{line}");
    }
    assert_eq!(lines[2]["verdict"]["label"], "ham", "{}", lines[2]);
    // Without OCR the image decides alone and the text filter sees only the plain body.
    let out = spamlens()
        .env("SPAMLENS_CACHE", cache.path())
        .args(["scan", "--json", "--no-ocr", "--backbone"])
        .arg(&backbone)
        .arg(dir.path().join("inline-spam.eml"))
        .output()
        .unwrap();
    assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
    let line = &json_lines(&out.stdout)[0];
    assert_eq!(line["text"]["is_spam"], false, "{line}");
    assert!(line["images"][0].get("text").is_none(), "{line}");
    assert_eq!(lines[2]["images"][0]["source"]["kind"], "attachment");
    assert_eq!(lines[2]["images"][0]["label"], "ham");

    // The 15 SpamAssassin messages with images: every image is classified or says why not.
    let files: Vec<PathBuf> = SPAMASSASSIN_IMAGE_MESSAGES.iter().map(|id| corpus_file(id)).collect();
    let out = spamlens()
        .env("SPAMLENS_CACHE", cache.path())
        .args(["scan", "--json", "--backbone"])
        .arg(&backbone)
        .args(&files)
        .output()
        .unwrap();
    assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
    let lines = json_lines(&out.stdout);
    assert_eq!(lines.len(), 15);
    let images: Vec<&Value> = lines.iter().flat_map(|l| l["images"].as_array().unwrap()).collect();
    let classified = images.iter().filter(|i| i["label"].is_string()).count();
    assert!(images.iter().all(|i| i["label"].is_string() || i["error"].is_string()));
    assert!(classified >= 40, "{classified} of {} images classified", images.len());
    // The corpus folder (`data/spam-1/…`, `data/hard-ham-1/…`) says which messages are spam.
    let is_spam = |l: &&Value| l["message"].as_str().unwrap().contains("/data/spam-");
    let (spam_messages, ham_messages): (Vec<&Value>, Vec<&Value>) = lines.iter().partition(is_spam);
    assert_eq!((spam_messages.len(), ham_messages.len()), (11, 4));
    let caught = spam_messages.iter().filter(|l| l["verdict"]["label"] == "spam").count();
    assert!(caught >= 6, "{caught} of {} spam messages with images called spam", spam_messages.len());
    // The built-in model's operating point (1% ham→spam) keeps newsletter banners and screenshots in
    // ham mail from deciding a verdict: the paper-recipe head called 3 of these 4 spam; the fused
    // model calls one banner spam ("Learn About Successful TV Solutions - Register for a Free Web
    // Seminar", p(spam) 0.86 at threshold 0.82; the image-only head before it had 0.87 under 0.93),
    // a marketing mail the text filter already calls spam.
    let decided_by_images =
        ham_messages.iter().filter(|ham| ham["verdict"]["decided_by"].as_str().unwrap().contains("image")).count();
    assert!(decided_by_images <= 1, "{decided_by_images} of 4 hard-ham messages decided by an image: {ham_messages:?}");
}

#[test]
fn feedback_teaches_the_users_filter_and_logs_the_reaction() {
    let dir = tempfile::tempdir().unwrap();
    let state = dir.path().join("me.json");
    // A campaign the built-in filter lets through: plain, polite text.
    let campaign = |n: usize| {
        build_email(
            &format!("Re: update {n}"),
            &format!(
                "Hello, your parcel {} could not be delivered. Please confirm the address so the driver can \
                 try again tomorrow.",
                7000 + n
            ),
            &[("label.png", &tiny_png(), Embed::Attachment)],
        )
    };
    for n in 0..5 {
        std::fs::write(dir.path().join(format!("parcel{n}.eml")), campaign(n)).unwrap();
    }
    let scan = |file: &str, filter: Option<&Path>| {
        let mut command = spamlens();
        command.args(["scan", "--no-images", "--json"]);
        if let Some(filter) = filter {
            command.arg("--text-filter").arg(filter);
        }
        let out = command.arg(dir.path().join(file)).output().unwrap();
        json_lines(&out.stdout).remove(0)
    };
    let before = scan("parcel4.eml", None);
    assert_eq!(before["verdict"]["label"], "ham", "{before}");

    let out = spamlens()
        .args(["feedback", "--label", "spam", "--state"])
        .arg(&state)
        .arg(dir.path().join("parcel0.eml"))
        .arg(dir.path().join("parcel1.eml"))
        .output()
        .unwrap();
    assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert!(stdout.contains("parcel0.eml: marked spam — text score"), "{stdout}");
    assert!(stdout.contains("1 image logged"), "{stdout}");

    let after = scan("parcel4.eml", Some(&state));
    assert_eq!(after["verdict"]["label"], "spam", "{after}");
    assert!(after["text"]["score"].as_f64() > before["text"]["score"].as_f64());

    let log_dir = dir.path().join("me.json.feedback");
    let log = std::fs::read_to_string(log_dir.join("reactions.jsonl")).unwrap();
    let records: Vec<Value> = log.lines().map(|l| serde_json::from_str(l).unwrap()).collect();
    assert_eq!(records.len(), 2);
    assert_eq!(records[0]["reaction"], "USER_MESSAGE_MARK_SPAM");
    assert_eq!(records[0]["label"], "spam");
    let file = records[0]["images"][0]["file"].as_str().unwrap();
    assert_eq!(std::fs::read(log_dir.join(file)).unwrap(), tiny_png());
    assert_eq!(records[0]["images"][0]["sha256"], records[1]["images"][0]["sha256"], "one image, stored once");

    // A bad label and a broken state file are clear errors that name the problem.
    let out = spamlens()
        .args(["feedback", "--label", "maybe", "--state"])
        .arg(&state)
        .arg(dir.path().join("parcel0.eml"))
        .output()
        .unwrap();
    assert!(!out.status.success());
    assert!(String::from_utf8_lossy(&out.stderr).contains("'maybe' is not a label"));
    std::fs::write(dir.path().join("broken.json"), b"{\"format\": 3").unwrap();
    let out = spamlens()
        .args(["scan", "--no-images", "--text-filter"])
        .arg(dir.path().join("broken.json"))
        .arg(dir.path().join("parcel0.eml"))
        .output()
        .unwrap();
    assert!(!out.status.success());
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(stderr.contains("broken.json: not a spamlens CLA_ANN state"), "{stderr}");
}

fn tiny_png() -> Vec<u8> {
    let image = image::RgbImage::from_pixel(8, 8, image::Rgb([10, 200, 30]));
    let mut out = std::io::Cursor::new(Vec::new());
    image.write_to(&mut out, image::ImageFormat::Png).unwrap();
    out.into_inner()
}

#[test]
fn scan_learn_collects_new_spam_tokens_in_the_adaptive_layer() {
    let dir = tempfile::tempdir().unwrap();
    let state = dir.path().join("me.json");
    let spam: Vec<PathBuf> =
        ["spam-2/00001.317e78fa8ee2f54cd4890fdc09ba8176.txt", "spam-1/00256.edd9bfb44729edf3c4f177814fd8c9e1.txt"]
            .iter()
            .map(|id| corpus_file(id))
            .collect();
    let out = spamlens()
        .args(["scan", "--no-images", "--json", "--learn", "--text-filter"])
        .arg(&state)
        .args(&spam)
        .output()
        .unwrap();
    assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
    assert!(String::from_utf8_lossy(&out.stderr).contains("adaptive tokens waiting"));
    let saved: Value = serde_json::from_slice(&std::fs::read(&state).unwrap()).unwrap();
    let adaptive = saved["adaptive"].as_object().unwrap();
    assert!(adaptive.len() > 20, "tokens of the messages judged spam wait for the next merge: {}", adaptive.len());
    let out = spamlens().args(["scan", "--no-images", "--learn"]).args(&spam).output().unwrap();
    assert!(!out.status.success(), "--learn without a state file is refused");
}
