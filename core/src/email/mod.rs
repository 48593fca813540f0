//! Whole emails → the parts spamlens scores.
//!
//! [`parse_email`] reads one RFC 5322/MIME message (with `mail-parser`) and returns its subject and
//! body text (HTML turned into text) for the text filter, and its images for the image classifier:
//! attachments, inline parts that the HTML links with `cid:`, and `data:` URIs in the HTML. Remote
//! image URLs are listed and never fetched. Nested messages (`message/rfc822`, forwarded mail) are
//! walked down to [`EmailLimits::max_depth`]. A malformed message gives what could be parsed plus
//! [`ParsedEmail::problems`]; only bytes that hold no message at all are an error. [`mbox`] splits
//! mbox files into messages.

pub mod html;
pub mod mbox;

use std::collections::HashSet;

use base64::Engine;
use mail_parser::{Message, MessageParser, MimeHeaders, PartType};

use crate::decode::detect_format;
use crate::error::{Error, Result};
use html::ImageReference;

/// Bounds on what one message may make spamlens do; over a bound the rest is skipped and a
/// problem is recorded.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct EmailLimits {
    /// Largest message accepted at all, in bytes (refused with an error above it).
    pub max_message_bytes: usize,
    /// MIME parts walked, across all nesting levels.
    pub max_parts: usize,
    /// Levels of attached messages (`message/rfc822`) descended into.
    pub max_depth: usize,
    /// Images extracted (attachments, inline parts and data URIs together).
    pub max_images: usize,
    /// Largest single image, in bytes.
    pub max_image_bytes: usize,
    /// Subject and body text kept for the text filter, in bytes.
    pub max_text_bytes: usize,
    /// Remote image URLs listed.
    pub max_remote_images: usize,
}

impl EmailLimits {
    /// 64 MiB per message, 1000 parts, 8 nested messages, 64 images of at most 32 MiB, 1 MiB of
    /// text, 100 remote URLs: more than real mail needs, little enough for a server.
    pub const DEFAULT: EmailLimits = EmailLimits {
        max_message_bytes: 64 * 1024 * 1024,
        max_parts: 1000,
        max_depth: 8,
        max_images: 64,
        max_image_bytes: 32 * 1024 * 1024,
        max_text_bytes: 1024 * 1024,
        max_remote_images: 100,
    };
}

impl Default for EmailLimits {
    fn default() -> Self {
        Self::DEFAULT
    }
}

/// How an image came with the message.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
#[serde(rename_all = "snake_case", tag = "kind")]
pub enum ImageSource {
    /// A MIME part that the HTML does not link (shown as an attachment).
    Attachment,
    /// A MIME part that the HTML shows through `cid:` (the typical image-spam layout).
    Inline {
        /// The part's `Content-ID`, without `<>`, lower-cased.
        content_id: String,
    },
    /// A `data:image/...;base64,` URI inside the HTML.
    DataUri,
}

/// One image of a message, with the bytes the classifier will decode.
#[derive(Clone)]
pub struct EmailImage {
    /// The part's file name, else a name made from its position (`part 3`, `data URI 1`); nested
    /// messages prefix theirs (`message 1 / part 2`).
    pub name: String,
    /// How it came with the message.
    pub source: ImageSource,
    /// The declared `Content-Type` (media type only), if any.
    pub content_type: Option<String>,
    /// The decoded bytes (transfer encoding removed).
    pub bytes: Vec<u8>,
}

impl std::fmt::Debug for EmailImage {
    /// The bytes are summarised (length and first bytes): an image in a log or a test failure is noise.
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("EmailImage")
            .field("name", &self.name)
            .field("source", &self.source)
            .field("content_type", &self.content_type)
            .field("bytes", &format_args!("{} bytes [{}]", self.bytes.len(), first_bytes(&self.bytes)))
            .finish()
    }
}

/// What spamlens reads from one message.
#[derive(Debug, Clone, Default)]
pub struct ParsedEmail {
    /// The decoded `Subject`, empty if none.
    pub subject: String,
    /// The first `From` address, if any.
    pub from: Option<String>,
    /// The `Message-ID`, if any.
    pub message_id: Option<String>,
    /// The `Date` as RFC 3339, if present and valid.
    pub date: Option<String>,
    /// The `Date` as seconds since 1970 (for ordering messages in time).
    pub date_unix: Option<i64>,
    /// Body text: the text parts, HTML parts turned into text, then the subject and text of
    /// attached messages; capped at [`EmailLimits::max_text_bytes`].
    pub body_text: String,
    /// The images, in message order.
    pub images: Vec<EmailImage>,
    /// Remote image URLs referenced by the HTML (deduplicated, never fetched).
    pub remote_images: Vec<String>,
    /// MIME parts walked.
    pub parts: usize,
    /// What could not be read or was skipped (a limit, a broken encoding), each naming the part.
    pub problems: Vec<String>,
}

/// Parses one message (`input` names it in errors). Errors only when the bytes are empty, over
/// [`EmailLimits::max_message_bytes`], or hold no header at all; anything else that is wrong
/// inside the message becomes a problem in the result.
pub fn parse_email(bytes: &[u8], input: &str, limits: &EmailLimits) -> Result<ParsedEmail> {
    if bytes.is_empty() {
        return Err(Error::EmptyInput { input: input.to_owned() });
    }
    if bytes.len() > limits.max_message_bytes {
        return Err(Error::MessageTooLarge {
            input: input.to_owned(),
            bytes: bytes.len(),
            limit: limits.max_message_bytes,
        });
    }
    let body = mbox::strip_envelope_line(bytes);
    let not_a_message = || Error::NotAMessage {
        input: input.to_owned(),
        reason: format!("it does not start with a header line (`Name: value`); first bytes {}", first_bytes(body)),
    };
    // mail-parser finds "headers" in almost anything; a message must start with a header field.
    if !mbox::starts_with_header(body) {
        return Err(not_a_message());
    }
    let message = MessageParser::default()
        .parse(body)
        .filter(|m| !m.parts.is_empty() && !m.parts[0].headers.is_empty())
        .ok_or_else(not_a_message)?;

    let mut parsed = ParsedEmail {
        subject: message.subject().unwrap_or_default().to_owned(),
        from: message.from().and_then(|a| a.first()).and_then(|a| a.address()).map(str::to_owned),
        message_id: message.message_id().map(str::to_owned),
        date: message.date().map(|d| d.to_rfc3339()),
        date_unix: message.date().map(|d| d.to_timestamp()),
        ..ParsedEmail::default()
    };
    let mut walker = Walker {
        limits,
        parsed: &mut parsed,
        seen_remote: HashSet::new(),
        data_uris: 0,
        text_full: false,
        parts_full: false,
    };
    walker.message(&message, "", 0);
    Ok(parsed)
}

struct Walker<'a> {
    limits: &'a EmailLimits,
    parsed: &'a mut ParsedEmail,
    seen_remote: HashSet<String>,
    data_uris: usize,
    text_full: bool,
    /// Set when [`EmailLimits::max_parts`] was reached: the walk stops at every nesting level,
    /// not only in the attached message where the limit was hit.
    parts_full: bool,
}

impl Walker<'_> {
    /// Walks one (possibly attached) message; `prefix` names it in image names and problems.
    fn message(&mut self, message: &Message<'_>, prefix: &str, depth: usize) {
        // Content-IDs that the HTML shows inline, and the HTML's other image references.
        // Every HTML part counts here, also one that mail-parser files as an attachment (an HTML
        // part after a text part in multipart/mixed).
        let mut linked_cids = HashSet::new();
        for part in &message.parts {
            let html = match &part.body {
                PartType::Html(html) => html,
                PartType::Text(text) if part.is_content_type("text", "html") => text,
                _ => continue,
            };
            for reference in html::image_references(html) {
                match reference {
                    ImageReference::ContentId(cid) => {
                        linked_cids.insert(cid);
                    }
                    ImageReference::DataUri { media_type, base64 } => self.data_uri(prefix, &media_type, &base64),
                    ImageReference::Remote(url) => self.remote(url),
                }
            }
        }

        for &id in &message.text_body {
            match message.parts.get(id as usize).map(|p| &p.body) {
                Some(PartType::Text(text)) => self.text(text),
                Some(PartType::Html(html)) => self.text(&mail_parser::decoders::html::html_to_text(html)),
                _ => {}
            }
        }

        let mut attached = 0;
        for (index, part) in message.parts.iter().enumerate() {
            if self.parts_full {
                return;
            }
            self.parsed.parts += 1;
            let part_name = format!("{prefix}part {}", index + 1);
            if self.parsed.parts > self.limits.max_parts {
                self.parsed.problems.push(format!(
                    "{part_name}: over the limit of {} MIME parts; the rest of the message was not read",
                    self.limits.max_parts
                ));
                self.parts_full = true;
                return;
            }
            if part.is_encoding_problem {
                self.parsed
                    .problems
                    .push(format!("{part_name}: its content transfer encoding could not be decoded; used as it was"));
            }
            let content_type = part.content_type().map(|ct| match ct.subtype() {
                Some(sub) => format!("{}/{}", ct.ctype(), sub).to_ascii_lowercase(),
                None => ct.ctype().to_ascii_lowercase(),
            });
            let declared_image = content_type.as_deref().is_some_and(|ct| ct.starts_with("image/"));
            match &part.body {
                PartType::Text(_) if declared_image => {
                    // mail-parser keeps a part whose transfer encoding is broken as text.
                    self.parsed.problems.push(format!(
                        "{part_name} ({}): the image's transfer encoding could not be decoded; skipped",
                        content_type.as_deref().unwrap_or("image")
                    ));
                }
                PartType::Binary(bytes) | PartType::InlineBinary(bytes) => {
                    // Spam often labels images application/octet-stream: sniff the bytes too.
                    if !declared_image && detect_format(bytes, &part_name).is_err() {
                        continue;
                    }
                    let name = match part.attachment_name() {
                        Some(file) if !file.trim().is_empty() => format!("{prefix}{}", file.trim()),
                        _ => part_name.clone(),
                    };
                    let content_id = part
                        .content_id()
                        .map(|cid| cid.trim().trim_start_matches('<').trim_end_matches('>').to_ascii_lowercase());
                    let source = match content_id {
                        Some(content_id) if linked_cids.contains(&content_id) => ImageSource::Inline { content_id },
                        _ => ImageSource::Attachment,
                    };
                    self.image(name, source, content_type, bytes);
                }
                PartType::Message(nested) => {
                    attached += 1;
                    let nested_prefix = format!("{prefix}message {attached} / ");
                    if depth + 1 > self.limits.max_depth {
                        self.parsed.problems.push(format!(
                            "{part_name}: attached message nested deeper than {} levels; not read",
                            self.limits.max_depth
                        ));
                        continue;
                    }
                    if let Some(subject) = nested.subject() {
                        self.text(subject);
                    }
                    self.message(nested, &nested_prefix, depth + 1);
                }
                PartType::Text(_) | PartType::Html(_) | PartType::Multipart(_) => {}
            }
        }
    }

    fn text(&mut self, text: &str) {
        if self.text_full || text.trim().is_empty() {
            return;
        }
        let body = &mut self.parsed.body_text;
        let room = self.limits.max_text_bytes.saturating_sub(body.len() + 1);
        // No separator when nothing can follow it: a body already at the limit stays there.
        if !body.is_empty() && room > 0 {
            body.push('\n');
        }
        if text.len() <= room {
            body.push_str(text);
            return;
        }
        let mut cut = room;
        while !text.is_char_boundary(cut) {
            cut -= 1;
        }
        body.push_str(&text[..cut]);
        self.text_full = true;
        self.parsed
            .problems
            .push(format!("body text over {} bytes; the rest was not scored", self.limits.max_text_bytes));
    }

    fn data_uri(&mut self, prefix: &str, media_type: &str, payload: &str) {
        self.data_uris += 1;
        let name = format!("{prefix}data URI {}", self.data_uris);
        // Base64 grows 4/3: refuse before decoding what would be over the image limit.
        if payload.len() / 4 * 3 > self.limits.max_image_bytes + 3 {
            self.parsed.problems.push(format!(
                "{name}: about {} bytes, over the image limit of {} bytes; skipped",
                payload.len() / 4 * 3,
                self.limits.max_image_bytes
            ));
            return;
        }
        let cleaned: String = payload.chars().filter(|c| !c.is_ascii_whitespace()).collect();
        let cleaned = percent_decode_base64(&cleaned);
        match base64::engine::general_purpose::STANDARD
            .decode(cleaned.trim_end_matches('='))
            .or_else(|_| base64::engine::general_purpose::STANDARD_NO_PAD.decode(cleaned.trim_end_matches('=')))
        {
            Ok(bytes) => self.image(name, ImageSource::DataUri, Some(media_type.to_owned()), &bytes),
            Err(e) => self.parsed.problems.push(format!("{name}: invalid base64 ({e}); skipped")),
        }
    }

    fn image(&mut self, name: String, source: ImageSource, content_type: Option<String>, bytes: &[u8]) {
        if self.parsed.images.len() >= self.limits.max_images {
            self.parsed
                .problems
                .push(format!("{name}: over the limit of {} images per message; skipped", self.limits.max_images));
            return;
        }
        if bytes.len() > self.limits.max_image_bytes {
            self.parsed.problems.push(format!(
                "{name}: {} bytes, over the image limit of {} bytes; skipped",
                bytes.len(),
                self.limits.max_image_bytes
            ));
            return;
        }
        self.parsed.images.push(EmailImage { name, source, content_type, bytes: bytes.to_vec() });
    }

    fn remote(&mut self, url: String) {
        if self.parsed.remote_images.len() >= self.limits.max_remote_images || !self.seen_remote.insert(url.clone()) {
            return;
        }
        self.parsed.remote_images.push(url);
    }
}

/// The first bytes of `bytes` as hex, for messages about input that is not what it should be.
fn first_bytes(bytes: &[u8]) -> String {
    bytes.iter().take(8).map(|b| format!("{b:02x}")).collect::<Vec<_>>().join(" ")
}

/// `data:` URIs in HTML attributes sometimes percent-encode `+`, `/` and `=`.
fn percent_decode_base64(payload: &str) -> String {
    if !payload.contains('%') {
        return payload.to_owned();
    }
    payload
        .replace("%2B", "+")
        .replace("%2b", "+")
        .replace("%2F", "/")
        .replace("%2f", "/")
        .replace("%3D", "=")
        .replace("%3d", "=")
}

/// Position of the first `needle` byte in `haystack` (the HTML scanner and the mbox splitter
/// both search raw bytes).
pub(crate) fn memchr(needle: u8, haystack: &[u8]) -> Option<usize> {
    haystack.iter().position(|&b| b == needle)
}

#[cfg(test)]
mod tests;
