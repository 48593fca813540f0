//! Image references in an HTML body: `cid:` links to inline parts, `data:` URIs that carry the
//! image in the markup, and remote URLs (listed for the reader, never fetched).
//!
//! This is a tolerant tag scanner, not an HTML parser: spam HTML is often malformed on purpose, and
//! all that is needed here is the value of a few attributes. It looks at `src` of `<img>`,
//! `<image>` and `<input type=image>`, at `background` of any tag, and at `url(...)` in `style`
//! attributes and `<style>` blocks. It runs in one pass over the bytes, so hostile markup costs
//! linear time.

use super::memchr;

/// Where an image reference in HTML points.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum ImageReference {
    /// `cid:ID`: a MIME part of the same message with `Content-ID: <ID>` (stored without `<>`,
    /// lower-cased, percent-decoded).
    ContentId(String),
    /// `data:image/...;base64,...`: the media type and the still-encoded payload.
    DataUri { media_type: String, base64: String },
    /// An `http:`, `https:` or protocol-relative URL.
    Remote(String),
}

/// Every image reference in `html`, in document order (duplicates kept; callers dedupe).
pub fn image_references(html: &str) -> Vec<ImageReference> {
    let bytes = html.as_bytes();
    let mut found = Vec::new();
    let mut pos = 0;
    while let Some(offset) = memchr(b'<', &bytes[pos..]) {
        let start = pos + offset + 1;
        let tag = scan_tag(bytes, start);
        pos = tag.end.max(start);
        let Some(name) = tag.name else { continue };
        let is_image_tag = name.eq_ignore_ascii_case("img")
            || name.eq_ignore_ascii_case("image")
            || (name.eq_ignore_ascii_case("input")
                && tag
                    .attributes
                    .iter()
                    .any(|(k, v)| k.eq_ignore_ascii_case("type") && v.eq_ignore_ascii_case("image")));
        for (key, value) in &tag.attributes {
            if (is_image_tag && key.eq_ignore_ascii_case("src")) || key.eq_ignore_ascii_case("background") {
                found.extend(classify(value));
            } else if key.eq_ignore_ascii_case("style") {
                css_urls(value, &mut found);
            }
        }
        if name.eq_ignore_ascii_case("style") && !tag.closing {
            let body_end = find_ignore_case(bytes, pos, b"</style").unwrap_or(bytes.len());
            css_urls(&html[pos..body_end], &mut found);
            pos = body_end;
        }
    }
    found
}

/// One scanned tag: its name (None for comments, doctype and stray `<`), attributes, where it ends.
struct Tag<'a> {
    name: Option<&'a str>,
    closing: bool,
    attributes: Vec<(&'a str, String)>,
    end: usize,
}

fn scan_tag(bytes: &[u8], start: usize) -> Tag<'_> {
    let text = |a: usize, b: usize| std::str::from_utf8(&bytes[a..b]).unwrap_or("");
    let mut tag = Tag { name: None, closing: false, attributes: Vec::new(), end: start };
    let mut i = start;
    if bytes[i..].starts_with(b"!--") {
        tag.end = find(bytes, i + 3, b"-->").map_or(bytes.len(), |e| e + 3);
        return tag;
    }
    if bytes.get(i) == Some(&b'/') {
        tag.closing = true;
        i += 1;
    }
    let name_start = i;
    while i < bytes.len() && bytes[i].is_ascii_alphanumeric() {
        i += 1;
    }
    if i == name_start {
        // `<` followed by something that is not a tag name (text such as "a < b", `<!DOCTYPE`):
        // skip to the closing `>` only for `<!`/`<?`, otherwise go on right after the `<`.
        if matches!(bytes.get(i), Some(b'!') | Some(b'?')) {
            tag.end = memchr(b'>', &bytes[i..]).map_or(bytes.len(), |e| i + e + 1);
        }
        return tag;
    }
    tag.name = Some(text(name_start, i));
    loop {
        while i < bytes.len() && (bytes[i].is_ascii_whitespace() || bytes[i] == b'/') {
            i += 1;
        }
        if i >= bytes.len() {
            tag.end = bytes.len();
            return tag;
        }
        if bytes[i] == b'>' {
            tag.end = i + 1;
            return tag;
        }
        let key_start = i;
        while i < bytes.len() && !bytes[i].is_ascii_whitespace() && !matches!(bytes[i], b'=' | b'>' | b'/') {
            i += 1;
        }
        let key = text(key_start, i);
        while i < bytes.len() && bytes[i].is_ascii_whitespace() {
            i += 1;
        }
        if bytes.get(i) != Some(&b'=') {
            if !key.is_empty() {
                tag.attributes.push((key, String::new()));
            } else {
                i += 1; // a stray `/` or `=`-less junk byte: never loop on it
            }
            continue;
        }
        i += 1;
        while i < bytes.len() && bytes[i].is_ascii_whitespace() {
            i += 1;
        }
        let value = match bytes.get(i) {
            Some(&quote @ (b'"' | b'\'')) => {
                let value_start = i + 1;
                let value_end = memchr(quote, &bytes[value_start..]).map_or(bytes.len(), |e| value_start + e);
                i = (value_end + 1).min(bytes.len());
                text(value_start, value_end)
            }
            _ => {
                let value_start = i;
                while i < bytes.len() && !bytes[i].is_ascii_whitespace() && bytes[i] != b'>' {
                    i += 1;
                }
                text(value_start, i)
            }
        };
        tag.attributes.push((key, decode_entities(value.trim())));
    }
}

/// `url(...)` values inside CSS text.
fn css_urls(css: &str, found: &mut Vec<ImageReference>) {
    let bytes = css.as_bytes();
    let mut pos = 0;
    while let Some(at) = find_ignore_case(bytes, pos, b"url(") {
        let start = at + 4;
        let end = memchr(b')', &bytes[start..]).map_or(bytes.len(), |e| start + e);
        let value = css[start..end].trim().trim_matches(|c| c == '"' || c == '\'');
        found.extend(classify(&decode_entities(value.trim())));
        pos = end;
    }
}

fn classify(value: &str) -> Option<ImageReference> {
    let value = value.trim();
    let lower_prefix: String = value.chars().take(11).collect::<String>().to_ascii_lowercase();
    if lower_prefix.starts_with("cid:") {
        let id = percent_decode(&value[4..]);
        let id = id.trim().trim_start_matches('<').trim_end_matches('>').to_ascii_lowercase();
        return (!id.is_empty()).then_some(ImageReference::ContentId(id));
    }
    if lower_prefix.starts_with("data:") {
        let rest = &value[5..];
        let comma = rest.find(',')?;
        let header = &rest[..comma];
        let mut params = header.split(';');
        let media_type = params.next().unwrap_or("").trim().to_ascii_lowercase();
        let is_base64 = params.any(|p| p.trim().eq_ignore_ascii_case("base64"));
        if !media_type.starts_with("image/") || !is_base64 {
            return None;
        }
        return Some(ImageReference::DataUri { media_type, base64: rest[comma + 1..].to_owned() });
    }
    if lower_prefix.starts_with("http://") || lower_prefix.starts_with("https://") || value.starts_with("//") {
        return Some(ImageReference::Remote(value.to_owned()));
    }
    None
}

/// The few entities that appear inside attribute values of mail HTML (`&amp;` in URLs, mostly).
fn decode_entities(value: &str) -> String {
    if !value.contains('&') {
        return value.to_owned();
    }
    value
        .replace("&amp;", "&")
        .replace("&quot;", "\"")
        .replace("&#39;", "'")
        .replace("&apos;", "'")
        .replace("&lt;", "<")
        .replace("&gt;", ">")
}

/// `%XX` escapes decoded (content ids are sometimes URL-encoded in `cid:` links, RFC 2392).
fn percent_decode(value: &str) -> String {
    let bytes = value.as_bytes();
    let mut out = Vec::with_capacity(bytes.len());
    let mut i = 0;
    while i < bytes.len() {
        if bytes[i] == b'%'
            && let Some(hex) = bytes.get(i + 1..i + 3)
            && let Ok(hex) = std::str::from_utf8(hex)
            && let Ok(byte) = u8::from_str_radix(hex, 16)
        {
            out.push(byte);
            i += 3;
            continue;
        }
        out.push(bytes[i]);
        i += 1;
    }
    String::from_utf8_lossy(&out).into_owned()
}

fn find(bytes: &[u8], from: usize, needle: &[u8]) -> Option<usize> {
    bytes.get(from..)?.windows(needle.len()).position(|w| w == needle).map(|p| from + p)
}

fn find_ignore_case(bytes: &[u8], from: usize, needle: &[u8]) -> Option<usize> {
    bytes.get(from..)?.windows(needle.len()).position(|w| w.eq_ignore_ascii_case(needle)).map(|p| from + p)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn finds_cid_data_and_remote_references_in_document_order() {
        let html = r#"<html><body background="http://x.example/bg.gif">
            <IMG SRC="cid:Part1.ABC@host" alt=x><img src=cid:%3Cother%3E>
            <img alt="no src"><script src="http://evil.example/a.js"></script>
            <img src='data:image/png;base64,iVBORw0KGgo='>
            <div style="background:url('https://x.example/a.png?x=1&amp;y=2')">hi</div>
            <input type="image" src="//cdn.example/b.jpg">
            <style>td { background-image: url(http://x.example/c.gif) }</style>
            </body></html>"#;
        let refs = image_references(html);
        assert_eq!(
            refs,
            vec![
                ImageReference::Remote("http://x.example/bg.gif".into()),
                ImageReference::ContentId("part1.abc@host".into()),
                ImageReference::ContentId("other".into()),
                ImageReference::DataUri { media_type: "image/png".into(), base64: "iVBORw0KGgo=".into() },
                ImageReference::Remote("https://x.example/a.png?x=1&y=2".into()),
                ImageReference::Remote("//cdn.example/b.jpg".into()),
                ImageReference::Remote("http://x.example/c.gif".into()),
            ]
        );
    }

    #[test]
    fn ignores_non_image_data_uris_comments_and_text() {
        let html = "a < b <!-- <img src=cid:hidden> --> <img src=\"data:text/html;base64,PGI+\"> \
                    <img src=\"data:image/gif,GIF89a\"> <!DOCTYPE html> <img src=/relative.png>";
        assert!(image_references(html).is_empty());
    }

    #[test]
    fn malformed_markup_ends_without_looping() {
        for html in ["<img src=", "<img src=\"cid:x", "<", "<<<<", "<img / / = =", "<style>url(", "<a =>"] {
            let _ = image_references(html);
        }
        assert_eq!(image_references("<img src=\"cid:x"), vec![ImageReference::ContentId("x".into())]);
    }

    #[test]
    fn scanning_is_linear_on_hostile_markup() {
        let html = "<img ".repeat(200_000) + &"url(".repeat(100_000);
        let refs = image_references(&html);
        assert!(refs.is_empty());
    }
}
