//! Tokenisation and the pruning rules of CLA_ANN's training phase (section 5.1.2).

use std::collections::BTreeSet;

use serde::{Deserialize, Serialize};

/// How a message becomes tokens.
///
/// The paper: "every substring within the subject header and the message body delimited by white
/// space was considered to be a token", after the headers are separated from the body. Other
/// headers are not tokenised. A token counts once per message (`msg_matched` counts messages).
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(default)]
pub struct Tokenizer {
    /// Lower-case tokens (the paper keeps them as written; so do we by default: capitals are a spam
    /// signal, and it measured no better lower-cased on SpamAssassin).
    pub lowercase: bool,
    /// Prefix subject tokens with `subject:` so they are told apart from body tokens (off: the
    /// paper pools them).
    pub mark_subject: bool,
}

/// A message's distinct tokens, sorted (deterministic iteration for learning and serialisation).
pub type Tokens = BTreeSet<String>;

impl Tokenizer {
    /// The distinct whitespace-delimited tokens of `subject` and `body`.
    pub fn tokens(&self, subject: &str, body: &str) -> Tokens {
        let mut tokens = Tokens::new();
        let mut add = |token: &str, subject: bool| {
            let mut token = if self.lowercase { token.to_lowercase() } else { token.to_owned() };
            if subject && self.mark_subject {
                token.insert_str(0, "subject:");
            }
            tokens.insert(token);
        };
        subject.split_whitespace().for_each(|t| add(t, true));
        body.split_whitespace().for_each(|t| add(t, false));
        tokens
    }
}

/// The paper's "rubbish words" rule: tokens longer than 20 characters and addresses of sites are
/// useless as input layers (section 5.1.2).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(default)]
pub struct Pruning {
    /// Longest token kept, in characters (the paper: 20).
    pub max_token_chars: usize,
    /// Drop layers seen in exactly one message, which was spam (`spam_matched = msg_matched = 1`).
    pub drop_single_spam: bool,
    /// Drop addresses of sites: URLs, `www.` names, bare domains and e-mail addresses.
    pub drop_addresses: bool,
}

impl Default for Pruning {
    fn default() -> Self {
        Self { max_token_chars: 20, drop_single_spam: true, drop_addresses: true }
    }
}

impl Pruning {
    /// Whether a token may be an input layer at all (length and address rules).
    pub fn keeps_token(&self, token: &str) -> bool {
        token.chars().count() <= self.max_token_chars && !(self.drop_addresses && is_address(token))
    }

    /// Whether a layer with these counts survives the `spam_matched = msg_matched = 1` rule.
    pub fn keeps_counts(&self, msg_matched: f64, spam_matched: f64, spam_increment: f64) -> bool {
        !(self.drop_single_spam && msg_matched <= 1.0 && spam_matched <= spam_increment)
    }
}

/// URLs, `www.` names, e-mail addresses and bare domain names (`name.tld` with a letters-only
/// top-level label of 2–6 characters, so "e.g." and "3.14" are not addresses).
pub fn is_address(token: &str) -> bool {
    let lower = token.to_ascii_lowercase();
    if lower.contains("://") || lower.contains("www.") || lower.starts_with("mailto:") {
        return true;
    }
    let core = lower.trim_matches(|c: char| !c.is_ascii_alphanumeric());
    if core.contains('@') && core.rsplit('@').next().is_some_and(|d| d.contains('.')) {
        return true;
    }
    let labels: Vec<&str> = core.split('.').collect();
    if labels.len() < 2 || labels.iter().any(|l| l.is_empty()) {
        return false;
    }
    let tld = labels[labels.len() - 1];
    let host_ok = labels[..labels.len() - 1].iter().all(|l| l.chars().all(|c| c.is_ascii_alphanumeric() || c == '-'));
    host_ok && (2..=6).contains(&tld.len()) && tld.chars().all(|c| c.is_ascii_alphabetic()) && labels[0].len() > 1
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn whitespace_tokens_of_subject_and_body_once_each() {
        let tokens = Tokenizer::default().tokens("FREE offer", "Click  here\tFREE\r\nnow!");
        let expected: Vec<&str> = vec!["Click", "FREE", "here", "now!", "offer"];
        assert_eq!(tokens.iter().map(String::as_str).collect::<Vec<_>>(), expected);
        let marked = Tokenizer { lowercase: true, mark_subject: true }.tokens("FREE", "Free");
        assert_eq!(marked.into_iter().collect::<Vec<_>>(), vec!["free".to_owned(), "subject:free".to_owned()]);
    }

    #[test]
    fn addresses_of_sites_are_recognised() {
        for yes in [
            "http://x.com/a",
            "www.example.org",
            "(www.foo.biz)",
            "bob@example.com",
            "<bob@x.co.uk>",
            "example.com",
            "Mailto:x",
        ] {
            assert!(is_address(yes), "{yes}");
        }
        for no in ["e.g.", "3.14", "hello", "end.", "U.S.A.", "a.m.", "file.x86"] {
            assert!(!is_address(no), "{no}");
        }
    }

    #[test]
    fn pruning_rules() {
        let pruning = Pruning::default();
        assert!(pruning.keeps_token("twenty-characters-ok"));
        assert!(!pruning.keeps_token("twenty-one-characters"));
        assert!(!pruning.keeps_token("http://spam.example"));
        assert!(!pruning.keeps_counts(1.0, 1.0, 1.0));
        assert!(pruning.keeps_counts(2.0, 1.0, 1.0));
        assert!(pruning.keeps_counts(2.0, 2.0, 1.0));
    }
}
