use super::*;
use base64::Engine;

fn png(width: u32, height: u32) -> Vec<u8> {
    let image = image::RgbImage::from_pixel(width, height, image::Rgb([200, 10, 10]));
    let mut out = std::io::Cursor::new(Vec::new());
    image.write_to(&mut out, image::ImageFormat::Png).expect("encode test PNG");
    out.into_inner()
}

fn b64(bytes: &[u8]) -> String {
    let text = base64::engine::general_purpose::STANDARD.encode(bytes);
    text.as_bytes().chunks(76).map(|c| std::str::from_utf8(c).unwrap_or("")).collect::<Vec<_>>().join("\r\n")
}

/// A realistic image-spam layout: multipart/related HTML with a cid image, a data URI, a remote
/// image, plus an attachment labelled application/octet-stream and a plain-text alternative.
fn spam_message() -> Vec<u8> {
    let inline = png(30, 20);
    let attached = png(10, 10);
    let data_uri = b64(&png(4, 4)).replace("\r\n", "");
    format!(
        "From spammer@example.com Mon Jan  1 00:00:00 2007\r\n\
From: \"Deals\" <deals@example.com>\r\n\
To: you@example.org\r\n\
Subject: =?utf-8?q?Cheap_=E2=82=AC_pills?=\r\n\
Date: Mon, 1 Jan 2007 10:00:00 +0000\r\n\
Message-ID: <abc@example.com>\r\n\
MIME-Version: 1.0\r\n\
Content-Type: multipart/mixed; boundary=\"outer\"\r\n\
\r\n\
--outer\r\n\
Content-Type: multipart/related; boundary=\"rel\"\r\n\
\r\n\
--rel\r\n\
Content-Type: multipart/alternative; boundary=\"alt\"\r\n\
\r\n\
--alt\r\n\
Content-Type: text/plain; charset=utf-8\r\n\
\r\n\
Buy now, limited offer\r\n\
--alt\r\n\
Content-Type: text/html; charset=utf-8\r\n\
\r\n\
<html><body><p>Buy <b>now</b></p><img src=\"cid:banner@x\"><img src=\"data:image/png;base64,{data_uri}\">\
<img src=\"http://tracker.example/p.gif\"><img src=\"http://tracker.example/p.gif\"></body></html>\r\n\
--alt--\r\n\
--rel\r\n\
Content-Type: image/png; name=\"banner.png\"\r\n\
Content-Transfer-Encoding: base64\r\n\
Content-ID: <Banner@X>\r\n\
\r\n\
{inline}\r\n\
--rel--\r\n\
--outer\r\n\
Content-Type: application/octet-stream; name=\"photo.dat\"\r\n\
Content-Disposition: attachment; filename=\"photo.dat\"\r\n\
Content-Transfer-Encoding: base64\r\n\
\r\n\
{attached}\r\n\
--outer\r\n\
Content-Type: application/pdf; name=\"terms.pdf\"\r\n\
Content-Transfer-Encoding: base64\r\n\
\r\n\
JVBERi0xLjQK\r\n\
--outer--\r\n",
        inline = b64(&inline),
        attached = b64(&attached),
    )
    .into_bytes()
}

#[test]
fn extracts_text_inline_attached_and_data_uri_images() {
    let parsed = parse_email(&spam_message(), "spam.eml", &EmailLimits::DEFAULT).expect("parses");
    assert_eq!(parsed.subject, "Cheap € pills");
    assert_eq!(parsed.from.as_deref(), Some("deals@example.com"));
    assert_eq!(parsed.message_id.as_deref(), Some("abc@example.com"));
    assert_eq!(parsed.date.as_deref(), Some("2007-01-01T10:00:00Z"));
    assert!(parsed.body_text.contains("Buy now, limited offer"), "{:?}", parsed.body_text);
    let summary: Vec<(&str, &ImageSource)> = parsed.images.iter().map(|i| (i.name.as_str(), &i.source)).collect();
    assert_eq!(
        summary,
        vec![
            ("data URI 1", &ImageSource::DataUri),
            ("banner.png", &ImageSource::Inline { content_id: "banner@x".into() }),
            ("photo.dat", &ImageSource::Attachment),
        ]
    );
    for image in &parsed.images {
        let decoded = crate::decode_rgb(&image.bytes, &image.name, &crate::DecodeLimits::DEFAULT).expect("decodes");
        assert!(decoded.width() >= 4);
    }
    assert_eq!(parsed.images[1].content_type.as_deref(), Some("image/png"));
    assert_eq!(parsed.remote_images, vec!["http://tracker.example/p.gif".to_owned()]);
    assert!(parsed.problems.is_empty(), "{:?}", parsed.problems);
}

#[test]
fn html_only_message_gives_its_text() {
    let raw = b"Subject: hi\r\nContent-Type: text/html\r\n\r\n<html><head><style>p{}</style></head><body><p>Hello <i>there</i></p><script>var x=1</script></body></html>";
    let parsed = parse_email(raw, "h.eml", &EmailLimits::DEFAULT).expect("parses");
    assert!(parsed.body_text.contains("Hello there"), "{:?}", parsed.body_text);
    assert!(!parsed.body_text.contains("var x"), "{:?}", parsed.body_text);
    assert!(parsed.images.is_empty());
}

#[test]
fn attached_messages_are_walked_to_the_depth_limit() {
    let innermost = format!(
        "Subject: inner\r\nContent-Type: image/png\r\nContent-Transfer-Encoding: base64\r\n\r\n{}\r\n",
        b64(&png(5, 5))
    );
    let wrap = |inner: &str, n: usize| {
        format!(
            "Subject: level {n}\r\nContent-Type: multipart/mixed; boundary=\"b{n}\"\r\n\r\n--b{n}\r\nContent-Type: text/plain\r\n\r\nforwarded {n}\r\n--b{n}\r\nContent-Type: message/rfc822\r\n\r\n{inner}\r\n--b{n}--\r\n"
        )
    };
    let two_deep = wrap(&wrap(&innermost, 2), 1);
    let parsed = parse_email(two_deep.as_bytes(), "fwd.eml", &EmailLimits::DEFAULT).expect("parses");
    assert_eq!(parsed.images.len(), 1, "{:?}", parsed.problems);
    assert_eq!(parsed.images[0].name, "message 1 / message 1 / part 1");
    assert!(parsed.body_text.contains("forwarded 1") && parsed.body_text.contains("forwarded 2"));
    assert!(parsed.body_text.contains("inner"));

    let limits = EmailLimits { max_depth: 1, ..EmailLimits::DEFAULT };
    let parsed = parse_email(two_deep.as_bytes(), "fwd.eml", &limits).expect("parses");
    assert!(parsed.images.is_empty());
    assert!(parsed.problems.iter().any(|p| p.contains("nested deeper than 1")), "{:?}", parsed.problems);
}

#[test]
fn limits_skip_and_report() {
    let message = spam_message();
    let limits = EmailLimits { max_images: 1, max_remote_images: 0, max_text_bytes: 5, ..EmailLimits::DEFAULT };
    let parsed = parse_email(&message, "spam.eml", &limits).expect("parses");
    assert_eq!(parsed.images.len(), 1);
    assert!(parsed.remote_images.is_empty());
    assert!(parsed.body_text.len() <= 5);
    assert!(parsed.problems.iter().any(|p| p.contains("over the limit of 1 images")), "{:?}", parsed.problems);
    assert!(parsed.problems.iter().any(|p| p.contains("body text over 5 bytes")), "{:?}", parsed.problems);

    let limits = EmailLimits { max_image_bytes: 50, ..EmailLimits::DEFAULT };
    let parsed = parse_email(&message, "spam.eml", &limits).expect("parses");
    assert!(parsed.images.iter().all(|i| i.bytes.len() <= 50));
    assert!(parsed.problems.iter().any(|p| p.contains("over the image limit of 50 bytes")), "{:?}", parsed.problems);

    let limits = EmailLimits { max_parts: 3, ..EmailLimits::DEFAULT };
    let parsed = parse_email(&message, "spam.eml", &limits).expect("parses");
    assert!(parsed.problems.iter().any(|p| p.contains("over the limit of 3 MIME parts")), "{:?}", parsed.problems);

    let limits = EmailLimits { max_message_bytes: 100, ..EmailLimits::DEFAULT };
    let err = parse_email(&message, "spam.eml", &limits).expect_err("too large");
    assert!(err.to_string().starts_with("spam.eml: ") && err.to_string().contains("limit of 100 bytes"), "{err}");
}

#[test]
fn not_a_message_is_an_error_naming_the_input() {
    for (bytes, expect) in
        [(&b""[..], "empty input"), (&b"\x89PNG\r\n\x1a\n\0\0\0"[..], "does not start with a header line")]
    {
        let err = parse_email(bytes, "upload #2", &EmailLimits::DEFAULT).expect_err("refused");
        assert!(err.to_string().starts_with("upload #2: ") && err.to_string().contains(expect), "{err}");
    }
}

#[test]
fn broken_parts_keep_the_rest() {
    let raw = "Subject: broken\r\nContent-Type: multipart/mixed; boundary=\"x\"\r\n\r\n--x\r\nContent-Type: text/plain\r\n\r\nstill here\r\n\
--x\r\nContent-Type: image/gif\r\nContent-Transfer-Encoding: base64\r\n\r\n!!!! not base64 ****\r\n\
--x\r\nContent-Type: text/html\r\n\r\n<img src=\"data:image/png;base64,@@@@\"><img src=\"cid:missing\">\r\n";
    let parsed = parse_email(raw.as_bytes(), "broken.eml", &EmailLimits::DEFAULT).expect("parses what it can");
    assert!(parsed.body_text.contains("still here"));
    assert!(parsed.problems.iter().any(|p| p.contains("data URI 1: invalid base64")), "{:?}", parsed.problems);
    assert!(
        parsed
            .problems
            .iter()
            .any(|p| p.contains("part 3 (image/gif): the image's transfer encoding could not be decoded")),
        "{:?}",
        parsed.problems
    );
    assert!(parsed.images.is_empty(), "{:?}", parsed.images);
}

#[test]
fn hostile_structures_do_not_panic_or_blow_up() {
    // 20000 nested multiparts, 50000 empty parts, 5000 nested message/rfc822 levels, binary junk.
    let mut nested = String::from("Subject: deep\r\n");
    for n in 0..20_000 {
        nested.push_str(&format!("Content-Type: multipart/mixed; boundary=\"{n}\"\r\n\r\n--{n}\r\n"));
    }
    let mut many = String::from("Subject: many\r\nContent-Type: multipart/mixed; boundary=\"z\"\r\n\r\n");
    for _ in 0..50_000 {
        many.push_str("--z\r\nContent-Type: image/png\r\n\r\n\r\n");
    }
    let mut rfc822 = String::new();
    for _ in 0..5_000 {
        rfc822.push_str("Subject: fwd\r\nContent-Type: message/rfc822\r\n\r\n");
    }
    let junk: Vec<u8> = (0..200_000u32).map(|i| (i.wrapping_mul(2_654_435_761) >> 13) as u8).collect();
    for (name, bytes) in
        [("nested", nested.as_bytes()), ("many", many.as_bytes()), ("rfc822", rfc822.as_bytes()), ("junk", &junk)]
    {
        if let Ok(parsed) = parse_email(bytes, name, &EmailLimits::DEFAULT) {
            assert!(parsed.images.len() <= EmailLimits::DEFAULT.max_images, "{name}");
            assert!(parsed.parts <= EmailLimits::DEFAULT.max_parts + 1, "{name}");
        }
    }
}

/// Found by the `parse_email` fuzz target: a part limit hit inside an attached message stopped
/// only that message's walk; each enclosing message counted and reported one more part after it.
#[test]
fn the_part_limit_stops_the_walk_at_every_nesting_level() {
    let inner = "Subject: inner\r\nContent-Type: multipart/mixed; boundary=\"i\"\r\n\r\n\
--i\r\n\r\na\r\n--i\r\n\r\nb\r\n--i\r\n\r\nc\r\n--i--\r\n";
    let raw = format!(
        "Subject: outer\r\nContent-Type: multipart/mixed; boundary=\"o\"\r\n\r\n\
--o\r\nContent-Type: message/rfc822\r\n\r\n{inner}\r\n--o\r\n\r\nafter\r\n--o\r\n\r\nmore\r\n--o--\r\n"
    );
    let limits = EmailLimits { max_parts: 3, ..EmailLimits::DEFAULT };
    let parsed = parse_email(raw.as_bytes(), "nested.eml", &limits).expect("parses");
    assert_eq!(parsed.parts, limits.max_parts + 1, "{:?}", parsed.problems);
    let over: Vec<&String> = parsed.problems.iter().filter(|p| p.contains("over the limit of 3 MIME parts")).collect();
    assert_eq!(over, ["message 1 / part 2: over the limit of 3 MIME parts; the rest of the message was not read"]);

    // The fuzzer's input, minimised: a broken multipart with an attached message, under 8 parts.
    let fuzzed = b"F:\r\nContent-Type: multipart/mixed; boundary=\"o\"\r\n\r\n---\n\xff\xffz\x87\r\n--ouyt\r\n\n\
caf\xe9 cr\xe8me\r\n--ouom>\n\n------- =_aaaaaaaaaa2\n\x002\n25869.co\x04UUUUUUVe.coz\x87\r\n--oueryID\n\
Content-Type: message/rfc822\r\n\r\nSu:8bit\r\n\r\n@e";
    let limits = EmailLimits { max_parts: 8, ..EmailLimits::DEFAULT };
    let parsed = parse_email(fuzzed, "fuzzed.eml", &limits).expect("parses");
    assert!(parsed.parts <= limits.max_parts + 1, "{} parts: {:?}", parsed.parts, parsed.problems);
}

/// Found by the `parse_email` fuzz target: a body that reached `max_text_bytes` exactly got one
/// more `\n` (the separator before the next text), one byte over the limit.
#[test]
fn body_text_that_fills_the_limit_exactly_stays_within_it() {
    // "abc" and "defg" fill 8 bytes exactly ("abc\ndefg"); the subject of the attached message
    // comes next and finds no room.
    let raw = "Subject: outer\r\nContent-Type: multipart/mixed; boundary=\"o\"\r\n\r\n\
--o\r\nContent-Type: text/plain\r\n\r\nabc\r\n--o\r\nContent-Type: text/plain\r\n\r\ndefg\r\n\
--o\r\nContent-Type: message/rfc822\r\n\r\nSubject: more\r\n\r\nxyz\r\n--o--\r\n";
    let limits = EmailLimits { max_text_bytes: 8, ..EmailLimits::DEFAULT };
    let parsed = parse_email(raw.as_bytes(), "full.eml", &limits).expect("parses");
    assert_eq!(parsed.body_text, "abc\ndefg");
    assert!(parsed.problems.iter().any(|p| p.contains("body text over 8 bytes")), "{:?}", parsed.problems);
}
