//! Who a message mentions: `@name` in its text.
//!
//! Pure text rules, used where a stored message's mentions are needed: by
//! the writer, which records them in the message's own transaction (so
//! unread mention counts are never lost), and by the notification worker,
//! which routes `mention` frames.

use crate::domain::{is_name_char, UserName};

/// Most users one message mentions: a text full of `@names` must not turn
/// into thousands of notifications (and kept rows).
pub const MAX_MENTIONS_PER_MESSAGE: usize = 20;

/// The users a text mentions: for each `@`, the longest run of name
/// characters after it with trailing dots dropped, when that is a valid
/// name; once each, in order, never `sender`, at most
/// [`MAX_MENTIONS_PER_MESSAGE`].
pub fn mentioned_users(text: &str, sender: &UserName) -> Vec<UserName> {
    let mut users: Vec<UserName> = Vec::new();
    for (at, _) in text.match_indices('@') {
        if users.len() == MAX_MENTIONS_PER_MESSAGE {
            break;
        }
        let after = &text[at + 1..];
        let end = after.find(|c: char| !is_name_char(c)).unwrap_or(after.len());
        let candidate = after[..end].trim_end_matches('.');
        let Ok(user) = UserName::parse(candidate) else {
            continue;
        };
        if &user != sender && !users.contains(&user) {
            users.push(user);
        }
    }
    users
}

#[cfg(test)]
mod tests {
    use super::*;

    fn names(text: &str, sender: &str) -> Vec<String> {
        let sender = UserName::parse(sender).unwrap();
        mentioned_users(text, &sender).into_iter().map(String::from).collect()
    }

    #[test]
    fn a_mention_is_the_longest_run_of_name_characters() {
        assert_eq!(names("hi @bob, and @carol_2!", "alice"), ["bob", "carol_2"]);
        assert_eq!(names("@bob.smith is here", "alice"), ["bob.smith"]);
    }

    #[test]
    fn trailing_dots_are_dropped() {
        assert_eq!(names("thanks @bob.", "alice"), ["bob"]);
        assert_eq!(names("thanks @bob...", "alice"), ["bob"]);
    }

    #[test]
    fn each_user_once_never_the_sender_case_sensitive() {
        assert_eq!(names("@bob @bob @alice @Bob", "alice"), ["bob", "Bob"]);
    }

    #[test]
    fn a_message_mentions_a_bounded_number_of_users() {
        let text: String = (0..50).map(|i| format!("@u{i} ")).collect();
        let mentioned = names(&text, "alice");
        assert_eq!(mentioned.len(), MAX_MENTIONS_PER_MESSAGE);
        assert_eq!(mentioned[0], "u0");
    }

    #[test]
    fn non_names_mention_nobody() {
        assert!(names("@ @. @@ a@", "alice").is_empty());
        assert!(names(&format!("@{}", "x".repeat(33)), "alice").is_empty());
        assert_eq!(names("mail@bob", "alice"), ["bob"]);
    }
}
