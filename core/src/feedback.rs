//! The user's "mark as spam / not spam" as a record: what the text filter learnt from it at once,
//! and the reaction on the message's images in the Email.cz reaction vocabulary, so the trainer
//! can later retrain the image head from the images users reacted to (as the first paper's
//! dataset was collected, section 5).
//!
//! Runtimes decide where records go (a JSON Lines log beside the user's filter state on the
//! command line, a folder on the server, IndexedDB in the browser); the format is this one.

use serde::{Deserialize, Serialize};

use crate::cla_ann::TextLabel;

/// Email.cz's user reactions (the first paper, section 5.3).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub enum Reaction {
    /// Moved to spam.
    #[serde(rename = "USER_MESSAGE_MARK_SPAM")]
    MarkSpam,
    /// Moved out of spam.
    #[serde(rename = "USER_MESSAGE_UNMARK_SPAM")]
    UnmarkSpam,
    /// Moved to newsletters / ads.
    #[serde(rename = "USER_MESSAGE_MARK_AD")]
    MarkAd,
    /// Moved out of newsletters / ads.
    #[serde(rename = "USER_MESSAGE_MARK_NONAD")]
    MarkNonad,
}

impl Reaction {
    /// The reaction a "mark as spam" (spam) or "not spam" (ham) click is.
    pub fn for_label(label: TextLabel) -> Reaction {
        match label {
            TextLabel::Spam => Reaction::MarkSpam,
            TextLabel::Ham => Reaction::UnmarkSpam,
        }
    }

    /// The image class the reaction says (the paper merges both "unmark" reactions into one
    /// inbox class, here `ham`).
    pub fn class(self) -> &'static str {
        match self {
            Reaction::MarkSpam => "spam",
            Reaction::MarkAd => "ad",
            Reaction::UnmarkSpam | Reaction::MarkNonad => "ham",
        }
    }
}

/// One image the user reacted to.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct FeedbackImage {
    /// sha256 of the image bytes (the key that joins reactions of many users to one image).
    pub sha256: String,
    /// Its name in the message.
    pub name: String,
    /// Where the runtime stored the bytes, relative to the log (absent if it keeps none).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub file: Option<String>,
}

/// One feedback event.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct FeedbackRecord {
    /// When, in seconds since 1970.
    pub time_unix: u64,
    /// The caller's name for the message.
    pub message: String,
    /// The message's Message-ID, if any.
    #[serde(default)]
    pub message_id: Option<String>,
    /// The label the user gave.
    pub label: TextLabel,
    /// The same as an Email.cz reaction.
    pub reaction: Reaction,
    /// The message's images.
    pub images: Vec<FeedbackImage>,
    /// Text-filter score before the feedback.
    pub text_score_before: f64,
    /// Text-filter score after it.
    pub text_score_after: f64,
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn reactions_use_the_emailcz_spelling() {
        let json = serde_json::to_string(&Reaction::for_label(TextLabel::Spam)).unwrap_or_default();
        assert_eq!(json, "\"USER_MESSAGE_MARK_SPAM\"");
        let back: Reaction = serde_json::from_str("\"USER_MESSAGE_MARK_NONAD\"").expect("parses");
        assert_eq!((back, back.class()), (Reaction::MarkNonad, "ham"));
        assert_eq!(Reaction::for_label(TextLabel::Ham), Reaction::UnmarkSpam);
    }
}
