//! Turning one image's user reactions into a label, as the paper's section 6 defines it.
//!
//! Paper mode ([`FilterMode::Paper`], the default):
//! 1. A user whose reactions to the image disagree is dropped (`drop_inconsistent_users`). We
//!    compare *classes*, not raw strings: `UNMARK_SPAM` and `MARK_NONAD` both say "this belongs in
//!    the inbox", so a user who sent both agrees with themself. The remaining reactions form one
//!    flat list (the paper: "it simplifies the reaction structure to a flat array").
//! 2. Reactions map to classes: `MARK_SPAM` → spam, `MARK_AD` → ad, `UNMARK_SPAM`/`MARK_NONAD` → ham.
//! 3. The image is kept when it has more than `min_reactions` reactions (Table 7's ">N" rows).
//! 4. Its label is the most common class; a tie for the top is dropped (and counted).
//! 5. Consistency (eq. 1) = reactions of the top class / all reactions; kept when ≥ `min_consistency`.
//!
//! Reference-code mode ([`FilterMode::ReferenceCode`]) reproduces what the paper's Keras repository
//! does instead, so results can be compared with its tables: every user with more than one reaction
//! is discarded, the vote and the consistency are computed on the raw reaction strings (four values),
//! and only the winning reaction is mapped to a class.

use std::fmt;

/// One reaction of the Email.cz vocabulary.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum Reaction {
    /// `USER_MESSAGE_MARK_SPAM`: moved to spam.
    MarkSpam,
    /// `USER_MESSAGE_UNMARK_SPAM`: moved out of spam.
    UnmarkSpam,
    /// `USER_MESSAGE_MARK_AD`: moved to newsletters/ads.
    MarkAd,
    /// `USER_MESSAGE_MARK_NONAD`: moved out of newsletters/ads.
    MarkNonad,
}

impl Reaction {
    /// All four reactions.
    pub const ALL: [Reaction; 4] = [Reaction::MarkSpam, Reaction::UnmarkSpam, Reaction::MarkAd, Reaction::MarkNonad];

    /// Parses the dataset's spelling.
    pub fn parse(text: &str) -> Option<Reaction> {
        Some(match text {
            "USER_MESSAGE_MARK_SPAM" => Reaction::MarkSpam,
            "USER_MESSAGE_UNMARK_SPAM" => Reaction::UnmarkSpam,
            "USER_MESSAGE_MARK_AD" => Reaction::MarkAd,
            "USER_MESSAGE_MARK_NONAD" => Reaction::MarkNonad,
            _ => return None,
        })
    }

    /// The dataset's spelling.
    pub fn as_str(self) -> &'static str {
        match self {
            Reaction::MarkSpam => "USER_MESSAGE_MARK_SPAM",
            Reaction::UnmarkSpam => "USER_MESSAGE_UNMARK_SPAM",
            Reaction::MarkAd => "USER_MESSAGE_MARK_AD",
            Reaction::MarkNonad => "USER_MESSAGE_MARK_NONAD",
        }
    }

    /// The class the reaction says the image belongs to (the paper's merge of the two "unmark"s).
    pub fn class(self) -> ImageClass {
        match self {
            Reaction::MarkSpam => ImageClass::Spam,
            Reaction::MarkAd => ImageClass::Ad,
            Reaction::UnmarkSpam | Reaction::MarkNonad => ImageClass::Ham,
        }
    }
}

/// The three classes spamlens predicts.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum ImageClass {
    /// Belongs in the inbox.
    Ham,
    /// Unsolicited.
    Spam,
    /// Newsletter / advertisement.
    Ad,
}

impl ImageClass {
    /// All classes, in label-index order.
    pub const ALL: [ImageClass; 3] = [ImageClass::Ham, ImageClass::Spam, ImageClass::Ad];

    /// Lower-case name (`ham`, `spam`, `ad`).
    pub fn as_str(self) -> &'static str {
        match self {
            ImageClass::Ham => "ham",
            ImageClass::Spam => "spam",
            ImageClass::Ad => "ad",
        }
    }

    /// Position in [`ImageClass::ALL`].
    pub fn index(self) -> usize {
        self as usize
    }
}

impl fmt::Display for ImageClass {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// Which definition of the filters to apply (see the module docs).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum FilterMode {
    /// The paper's text.
    #[default]
    Paper,
    /// The paper's reference code.
    ReferenceCode,
}

/// The filters, each a flag.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct FilterOptions {
    /// Paper text or reference code.
    pub mode: FilterMode,
    /// Drop a user's reactions when they disagree (paper mode only).
    pub drop_inconsistent_users: bool,
    /// Keep images with *more than* this many (valid) reactions.
    pub min_reactions: usize,
    /// Keep images whose top class has at least this share of the reactions (0..=1).
    pub min_consistency: f64,
}

impl Default for FilterOptions {
    fn default() -> Self {
        Self { mode: FilterMode::Paper, drop_inconsistent_users: true, min_reactions: 0, min_consistency: 0.0 }
    }
}

/// Why an image was not used.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum DropReason {
    /// No reaction left (none recorded, or all users dropped).
    NoReactions,
    /// Not more than `min_reactions` reactions.
    TooFewReactions,
    /// Two or more classes share the top count.
    Tie,
    /// The top class has less than `min_consistency` of the reactions.
    Inconsistent,
}

impl DropReason {
    /// All reasons, for reports.
    pub const ALL: [DropReason; 4] =
        [DropReason::NoReactions, DropReason::TooFewReactions, DropReason::Tie, DropReason::Inconsistent];

    /// Short name for reports.
    pub fn as_str(self) -> &'static str {
        match self {
            DropReason::NoReactions => "no reactions",
            DropReason::TooFewReactions => "too few reactions",
            DropReason::Tie => "tie",
            DropReason::Inconsistent => "below min consistency",
        }
    }
}

/// The outcome for one image.
#[derive(Debug, Clone, Copy, PartialEq)]
pub enum Verdict {
    /// Use the image with this label.
    Keep {
        /// The label.
        class: ImageClass,
        /// Valid reactions counted.
        reactions: usize,
        /// Share of the top class (eq. 1, as a fraction).
        consistency: f64,
    },
    /// Do not use the image.
    Drop(DropReason),
}

/// Applies the filters to one image's reactions, grouped by user.
pub fn label_image(users: &[Vec<Reaction>], options: &FilterOptions) -> Verdict {
    match options.mode {
        FilterMode::Paper => label_paper(users, options),
        FilterMode::ReferenceCode => label_reference_code(users, options),
    }
}

fn label_paper(users: &[Vec<Reaction>], options: &FilterOptions) -> Verdict {
    let mut counts = [0usize; 3];
    for user in users {
        let Some(first) = user.first() else { continue };
        let agrees = user.iter().all(|r| r.class() == first.class());
        if options.drop_inconsistent_users && !agrees {
            continue;
        }
        for reaction in user {
            counts[reaction.class().index()] += 1;
        }
    }
    decide(&counts, options).map_or_else(Verdict::Drop, |(top, reactions, consistency)| Verdict::Keep {
        class: ImageClass::ALL[top],
        reactions,
        consistency,
    })
}

fn label_reference_code(users: &[Vec<Reaction>], options: &FilterOptions) -> Verdict {
    let mut counts = [0usize; 4];
    for user in users {
        if let [only] = user.as_slice() {
            counts[Reaction::ALL.iter().position(|r| r == only).unwrap_or(0)] += 1;
        }
    }
    decide(&counts, options).map_or_else(Verdict::Drop, |(top, reactions, consistency)| Verdict::Keep {
        class: Reaction::ALL[top].class(),
        reactions,
        consistency,
    })
}

/// The winning index, the reaction count and the consistency, or why there is none.
fn decide(counts: &[usize], options: &FilterOptions) -> Result<(usize, usize, f64), DropReason> {
    let total: usize = counts.iter().sum();
    if total == 0 {
        return Err(DropReason::NoReactions);
    }
    if total <= options.min_reactions {
        return Err(DropReason::TooFewReactions);
    }
    let best = counts.iter().copied().max().unwrap_or(0);
    let winners: Vec<usize> = (0..counts.len()).filter(|&i| counts[i] == best).collect();
    let [top] = winners.as_slice() else {
        return Err(DropReason::Tie);
    };
    let consistency = best as f64 / total as f64;
    if consistency < options.min_consistency {
        return Err(DropReason::Inconsistent);
    }
    Ok((*top, total, consistency))
}

#[cfg(test)]
mod tests {
    use super::Reaction::*;
    use super::*;

    fn paper() -> FilterOptions {
        FilterOptions::default()
    }

    fn keep(class: ImageClass, reactions: usize, consistency: f64) -> Verdict {
        Verdict::Keep { class, reactions, consistency }
    }

    #[test]
    fn reactions_merge_into_three_classes() {
        assert_eq!(MarkSpam.class(), ImageClass::Spam);
        assert_eq!(MarkAd.class(), ImageClass::Ad);
        assert_eq!(UnmarkSpam.class(), ImageClass::Ham);
        assert_eq!(MarkNonad.class(), ImageClass::Ham);
        for r in Reaction::ALL {
            assert_eq!(Reaction::parse(r.as_str()), Some(r));
        }
        assert_eq!(Reaction::parse("USER_MESSAGE_MARK_SPAMX"), None);
    }

    #[test]
    fn empty_reaction_lists_are_dropped() {
        assert_eq!(label_image(&[], &paper()), Verdict::Drop(DropReason::NoReactions));
        assert_eq!(label_image(&[vec![], vec![]], &paper()), Verdict::Drop(DropReason::NoReactions));
    }

    #[test]
    fn majority_class_wins_with_eq1_consistency() {
        // 3 spam, 1 ham (from two users who agree with themselves).
        let users = vec![vec![MarkSpam], vec![MarkSpam, MarkSpam], vec![UnmarkSpam]];
        assert_eq!(label_image(&users, &paper()), keep(ImageClass::Spam, 4, 0.75));
    }

    #[test]
    fn unmark_spam_and_mark_nonad_are_one_class() {
        let users = vec![vec![UnmarkSpam], vec![MarkNonad], vec![MarkAd]];
        assert_eq!(label_image(&users, &paper()), keep(ImageClass::Ham, 3, 2.0 / 3.0));
        // One user sending both "unmark"s agrees with themself.
        let users = vec![vec![UnmarkSpam, MarkNonad]];
        assert_eq!(label_image(&users, &paper()), keep(ImageClass::Ham, 2, 1.0));
    }

    #[test]
    fn inconsistent_users_are_dropped_when_asked() {
        // The second user says spam and ad: dropped, so the ad reaction of user 3 ties with user 1.
        let users = vec![vec![MarkSpam], vec![MarkSpam, MarkAd], vec![MarkAd]];
        assert_eq!(label_image(&users, &paper()), Verdict::Drop(DropReason::Tie));
        let keep_all = FilterOptions { drop_inconsistent_users: false, ..paper() };
        assert_eq!(label_image(&users, &keep_all), Verdict::Drop(DropReason::Tie));
        let users = vec![vec![MarkSpam], vec![MarkSpam, MarkAd]];
        assert_eq!(label_image(&users, &paper()), keep(ImageClass::Spam, 1, 1.0));
        assert_eq!(label_image(&users, &keep_all), keep(ImageClass::Spam, 3, 2.0 / 3.0));
    }

    #[test]
    fn ties_are_dropped() {
        let users = vec![vec![MarkSpam], vec![MarkNonad]];
        assert_eq!(label_image(&users, &paper()), Verdict::Drop(DropReason::Tie));
        let users = vec![vec![MarkSpam], vec![MarkAd], vec![UnmarkSpam]];
        assert_eq!(label_image(&users, &paper()), Verdict::Drop(DropReason::Tie));
    }

    #[test]
    fn min_reactions_keeps_strictly_more() {
        let users = vec![vec![MarkSpam], vec![MarkSpam]];
        let over_1 = FilterOptions { min_reactions: 1, ..paper() };
        let over_2 = FilterOptions { min_reactions: 2, ..paper() };
        assert_eq!(label_image(&users, &over_1), keep(ImageClass::Spam, 2, 1.0));
        assert_eq!(label_image(&users, &over_2), Verdict::Drop(DropReason::TooFewReactions));
    }

    #[test]
    fn min_consistency_is_inclusive() {
        let users = vec![vec![MarkAd], vec![MarkAd], vec![MarkAd], vec![MarkSpam]];
        let at = FilterOptions { min_consistency: 0.75, ..paper() };
        let above = FilterOptions { min_consistency: 0.76, ..paper() };
        assert_eq!(label_image(&users, &at), keep(ImageClass::Ad, 4, 0.75));
        assert_eq!(label_image(&users, &above), Verdict::Drop(DropReason::Inconsistent));
    }

    #[test]
    fn reference_code_discards_multi_reaction_users_and_votes_on_raw_strings() {
        let reference = FilterOptions { mode: FilterMode::ReferenceCode, ..paper() };
        // Paper: 2 ham vs 1 spam → ham. Reference code: UNMARK_SPAM and MARK_NONAD are different
        // strings, so the raw vote is a three-way tie.
        let users = vec![vec![UnmarkSpam], vec![MarkNonad], vec![MarkSpam]];
        assert_eq!(label_image(&users, &paper()), keep(ImageClass::Ham, 3, 2.0 / 3.0));
        assert_eq!(label_image(&users, &reference), Verdict::Drop(DropReason::Tie));
        // The user with two reactions is discarded even though they agree.
        let users = vec![vec![MarkSpam, MarkSpam], vec![MarkNonad]];
        assert_eq!(label_image(&users, &reference), keep(ImageClass::Ham, 1, 1.0));
        assert_eq!(label_image(&users, &paper()), keep(ImageClass::Spam, 3, 2.0 / 3.0));
    }
}
