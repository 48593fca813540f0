//! mbox files: many messages, each introduced by a `From ` separator line.
//!
//! A message starts at a line beginning with `From ` that opens the file or follows an empty line
//! (the separator that mbox writers put between messages). Lines that writers escaped as
//! `>From `, `>>From `, … lose one `>` (mboxrd). Single messages saved with a leading `From ` line
//! (the SpamAssassin corpus, `formail` output) are one message, not an mbox: [`is_mbox`] tells them
//! apart by whether a second separator line is followed by a header.

use super::memchr;

/// One message cut out of an mbox: where it started and its bytes without the separator line.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct MboxMessage {
    /// 1-based line number of the `From ` separator in the mbox, for error messages.
    pub line: usize,
    /// The message bytes, separator removed and `>From ` lines unescaped.
    pub bytes: Vec<u8>,
}

/// Whether `bytes` hold several messages in mbox format (more than one separator line).
///
/// A file that starts with `From ` and has no second separator followed by a header line is a
/// single message with an envelope line, and is parsed as one.
pub fn is_mbox(bytes: &[u8]) -> bool {
    if !bytes.starts_with(b"From ") {
        return false;
    }
    separators(bytes).nth(1).is_some()
}

/// Splits an mbox into its messages. Bytes before the first separator (if any) are ignored; a file
/// without separators is returned as one message.
pub fn split_mbox(bytes: &[u8]) -> Vec<MboxMessage> {
    let starts: Vec<(usize, usize)> = separators(bytes).collect();
    if starts.is_empty() {
        return vec![MboxMessage { line: 1, bytes: bytes.to_vec() }];
    }
    let mut messages = Vec::with_capacity(starts.len());
    for (index, &(offset, line)) in starts.iter().enumerate() {
        let end = starts.get(index + 1).map_or(bytes.len(), |&(next, _)| next);
        let body_start = memchr(b'\n', &bytes[offset..end]).map_or(end, |p| offset + p + 1);
        messages.push(MboxMessage { line, bytes: unescape_from_lines(&bytes[body_start..end]) });
    }
    messages
}

/// Strips a leading envelope line (`From sender date`) from a single message, if it has one.
pub fn strip_envelope_line(bytes: &[u8]) -> &[u8] {
    if bytes.starts_with(b"From ") {
        memchr(b'\n', bytes).map_or(&bytes[bytes.len()..], |p| &bytes[p + 1..])
    } else {
        bytes
    }
}

/// (byte offset, 1-based line number) of every separator line whose next line looks like a header.
fn separators(bytes: &[u8]) -> impl Iterator<Item = (usize, usize)> + '_ {
    let mut offset = 0;
    let mut line = 1;
    let mut previous_blank = true;
    std::iter::from_fn(move || {
        while offset < bytes.len() {
            let end = memchr(b'\n', &bytes[offset..]).map_or(bytes.len(), |p| offset + p + 1);
            let text = &bytes[offset..end];
            let (start, number) = (offset, line);
            let is_separator = previous_blank && text.starts_with(b"From ") && next_line_is_header(&bytes[end..]);
            previous_blank = text.iter().all(|b| b.is_ascii_whitespace());
            offset = end;
            line += 1;
            if is_separator {
                return Some((start, number));
            }
        }
        None
    })
}

/// Whether a message starts with a header field (`Name: value`), after any leading blank lines.
pub fn starts_with_header(bytes: &[u8]) -> bool {
    let start = bytes.iter().position(|b| !matches!(b, b'\r' | b'\n')).unwrap_or(bytes.len());
    next_line_is_header(&bytes[start..])
}

/// `Name: value` with a field name of letters, digits, `-` and `_`. RFC 5322 allows any printable
/// ASCII, but real headers use these, and the stricter rule keeps JSON (`{"id": …`) and other
/// text from passing for a message.
fn next_line_is_header(rest: &[u8]) -> bool {
    let line = &rest[..memchr(b'\n', rest).unwrap_or(rest.len())];
    match memchr(b':', line) {
        Some(colon) if colon > 0 => line[..colon].iter().all(|&b| b.is_ascii_alphanumeric() || b == b'-' || b == b'_'),
        _ => false,
    }
}

fn unescape_from_lines(bytes: &[u8]) -> Vec<u8> {
    let mut out = Vec::with_capacity(bytes.len());
    for line in bytes.split_inclusive(|&b| b == b'\n') {
        let quotes = line.iter().take_while(|&&b| b == b'>').count();
        if quotes > 0 && line[quotes..].starts_with(b"From ") {
            out.extend_from_slice(&line[1..]);
        } else {
            out.extend_from_slice(line);
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    const MBOX: &[u8] = b"From a@example.com Thu Aug 22 12:36:23 2002\nSubject: one\n\nbody\n>From here, escaped\n\n\
From b@example.com Thu Aug 22 12:40:00 2002\nSubject: two\n\nFrom the body, not a separator\n";

    #[test]
    fn splits_at_separators_and_unescapes() {
        assert!(is_mbox(MBOX));
        let messages = split_mbox(MBOX);
        assert_eq!(messages.len(), 2);
        assert_eq!(messages[0].line, 1);
        assert_eq!(messages[0].bytes, b"Subject: one\n\nbody\nFrom here, escaped\n\n");
        assert_eq!(messages[1].line, 7);
        assert_eq!(messages[1].bytes, b"Subject: two\n\nFrom the body, not a separator\n");
    }

    #[test]
    fn a_single_message_with_an_envelope_line_is_not_an_mbox() {
        let single = b"From a@example.com Thu Aug 22 12:36:23 2002\nSubject: one\n\nhello\n\nFrom me, with love\n";
        assert!(!is_mbox(single));
        assert_eq!(strip_envelope_line(single), &single[44..]);
        assert!(starts_with_header(strip_envelope_line(single)));
        assert!(!starts_with_header(b"\x89PNG\r\n"));
        assert!(!starts_with_header(b"{\"id\":\"00001\",\"group\":\"spam-1\"}"));
        assert!(starts_with_header(b"\r\nX-Spam_Flag: YES\r\n"));
        assert!(!is_mbox(b"Subject: plain\n\nbody\n"));
        assert_eq!(split_mbox(b"Subject: x\n\n").len(), 1);
    }
}
