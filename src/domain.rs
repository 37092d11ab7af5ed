//! Validated values of the chat domain.
//!
//! Every type here validates on construction (`parse`, or serde through
//! `try_from`), so a `RoomName` that exists is a valid room name and the rest
//! of the crate never checks it again. The rules are those of the wire
//! protocol (`docs/protocol.md`).

use std::fmt;
use std::sync::atomic::{AtomicU64, Ordering};

use serde::{Deserialize, Serialize};

/// Characters allowed in user and room names: `[A-Za-z0-9_.-]`.
pub fn is_name_char(c: char) -> bool {
    c.is_ascii_alphanumeric() || matches!(c, '_' | '.' | '-')
}

fn check_name(value: &str, what: &str, max: usize) -> Result<(), String> {
    let len = value.chars().count();
    if len == 0 || len > max {
        return Err(format!("{what} must be 1 to {max} characters"));
    }
    if !value.chars().all(is_name_char) {
        return Err(format!("{what} may only contain letters, digits, '_', '.' and '-'"));
    }
    Ok(())
}

/// A user's display name: 1 to 32 characters from `[A-Za-z0-9_.-]`.
///
/// A user *is* a name: several sessions (tabs) may share one.
#[derive(Debug, Clone, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
#[serde(try_from = "String", into = "String")]
pub struct UserName(String);

impl UserName {
    /// Longest name accepted.
    pub const MAX_CHARS: usize = 32;

    /// Validates `value` as a user name.
    pub fn parse(value: impl Into<String>) -> Result<Self, String> {
        let value = value.into();
        check_name(&value, "name", Self::MAX_CHARS)?;
        Ok(Self(value))
    }

    /// A random `guest-<4 hex digits>` name for a client that gave none.
    pub fn guest() -> Self {
        Self(format!("guest-{:04x}", fastrand::u16(..)))
    }

    /// The name as sent on the wire and stored in the database.
    pub fn as_str(&self) -> &str {
        &self.0
    }
}

/// A room's name: 1 to 64 characters from `[A-Za-z0-9_.-]`.
///
/// It can never start with `@`, which is how direct conversations are told
/// apart from rooms everywhere, the database included.
#[derive(Debug, Clone, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
#[serde(try_from = "String", into = "String")]
pub struct RoomName(String);

impl RoomName {
    /// Longest room name accepted.
    pub const MAX_CHARS: usize = 64;

    /// Validates `value` as a room name.
    pub fn parse(value: impl Into<String>) -> Result<Self, String> {
        let value = value.into();
        check_name(&value, "room", Self::MAX_CHARS)?;
        Ok(Self(value))
    }

    /// The room name as sent on the wire and stored in the database.
    pub fn as_str(&self) -> &str {
        &self.0
    }
}

/// The direct conversation of two users: `"@" + the two names sorted and
/// joined by "+"` (`@alice+bob`; a user talking to themself: `@bo+bo`).
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub struct Conversation {
    first: UserName,
    second: UserName,
    /// `@first+second`, made once: it is the key of every lookup.
    key: String,
}

impl Conversation {
    /// A SQL `LIKE` pattern that matches every conversation's name and no
    /// room's, so a store can list rooms without knowing the naming rule.
    pub const LIKE_PATTERN: &'static str = "@%";

    /// The conversation between `a` and `b`, whatever their order.
    pub fn between(a: UserName, b: UserName) -> Self {
        let (first, second) = if a <= b { (a, b) } else { (b, a) };
        let key = format!("@{first}+{second}");
        Self { first, second, key }
    }

    /// Parses `@a+b`; the names must be valid and already sorted, so each
    /// conversation has exactly one name.
    pub fn parse(value: &str) -> Result<Self, String> {
        let invalid = || format!("'{value}' is not a direct conversation name (@alice+bob)");
        let rest = value.strip_prefix('@').ok_or_else(invalid)?;
        let (a, b) = rest.split_once('+').ok_or_else(invalid)?;
        let (first, second) = (UserName::parse(a)?, UserName::parse(b)?);
        if first > second {
            return Err(format!(
                "direct conversation names list the two names sorted: @{second}+{first}"
            ));
        }
        Ok(Self::between(first, second))
    }

    /// The conversation's name, `@alice+bob`.
    pub fn as_str(&self) -> &str {
        &self.key
    }

    /// Whether `user` is one of the two people of this conversation.
    pub fn includes(&self, user: &UserName) -> bool {
        &self.first == user || &self.second == user
    }

    /// The two users (the same one twice for a conversation with oneself).
    pub fn users(&self) -> [&UserName; 2] {
        [&self.first, &self.second]
    }
}

impl fmt::Display for Conversation {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.key)
    }
}

/// Where messages live: a room, or a direct conversation.
///
/// Both have their own id sequence and history; only rooms have members.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub enum Channel {
    /// A named room (`lobby`): joined explicitly, has members and presence.
    Room(RoomName),
    /// A direct conversation (`@alice+bob`): never joined, readable by its two users only.
    Direct(Conversation),
}

impl Channel {
    /// Parses a room name or, when it starts with `@`, a conversation name.
    pub fn parse(value: &str) -> Result<Self, String> {
        if value.starts_with('@') {
            Conversation::parse(value).map(Channel::Direct)
        } else {
            RoomName::parse(value).map(Channel::Room)
        }
    }

    /// The name used on the wire and as the key in the database.
    pub fn as_str(&self) -> &str {
        match self {
            Channel::Room(room) => room.as_str(),
            Channel::Direct(conversation) => conversation.as_str(),
        }
    }

    /// The room, unless this is a direct conversation.
    pub fn room(&self) -> Option<&RoomName> {
        match self {
            Channel::Room(room) => Some(room),
            Channel::Direct(_) => None,
        }
    }
}

impl fmt::Display for Channel {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

impl Serialize for Channel {
    fn serialize<S: serde::Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        serializer.serialize_str(self.as_str())
    }
}

impl From<RoomName> for Channel {
    fn from(room: RoomName) -> Self {
        Channel::Room(room)
    }
}

impl<'de> Deserialize<'de> for Channel {
    fn deserialize<D: serde::Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        let value = String::deserialize(deserializer)?;
        Channel::parse(&value).map_err(serde::de::Error::custom)
    }
}

/// A message's text: 1 to N Unicode scalar values (N is configurable,
/// 4000 by default), not only white space.
///
/// Deserializing checks everything but the length, which depends on the
/// server's configuration: [`Text::check_length`] does that.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(try_from = "String")]
pub struct Text(String);

impl Text {
    /// Validates `value` against the server's `max_chars`.
    pub fn parse(value: impl Into<String>, max_chars: usize) -> Result<Self, String> {
        let text = Self::try_from(value.into())?;
        text.check_length(max_chars)?;
        Ok(text)
    }

    /// Whether the text fits the server's `max_chars`.
    pub fn check_length(&self, max_chars: usize) -> Result<(), String> {
        if self.0.chars().count() > max_chars {
            return Err(format!("text must be at most {max_chars} characters"));
        }
        Ok(())
    }

    /// The text as the client sent it (white space kept).
    pub fn as_str(&self) -> &str {
        &self.0
    }

    /// Unwraps the text, to store or send it without a copy.
    pub fn into_string(self) -> String {
        self.0
    }
}

/// The client's `ref`: up to 64 characters, echoed on the frame's reply and
/// on every error the frame causes.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Ref(String);

impl Ref {
    /// Longest `ref` accepted.
    pub const MAX_CHARS: usize = 64;

    /// Accepts any string of at most [`Ref::MAX_CHARS`] characters, the empty one included.
    pub fn parse(value: impl Into<String>) -> Result<Self, String> {
        let value = value.into();
        if value.chars().count() > Self::MAX_CHARS {
            return Err(format!("ref must be a string of at most {} characters", Self::MAX_CHARS));
        }
        Ok(Self(value))
    }
}

/// A client's key for exactly-once sending: 1 to 64 characters, unique per
/// sending user (a UUID, say).
#[derive(Debug, Clone, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(try_from = "String", into = "String")]
pub struct IdempotencyKey(String);

impl IdempotencyKey {
    /// Longest key accepted.
    pub const MAX_CHARS: usize = 64;

    /// Validates `value` as a key.
    pub fn parse(value: impl Into<String>) -> Result<Self, String> {
        let value = value.into();
        if value.is_empty() || value.chars().count() > Self::MAX_CHARS {
            return Err(format!("idempotency_key must be 1 to {} characters", Self::MAX_CHARS));
        }
        Ok(Self(value))
    }

    /// The key as the client sent it.
    pub fn as_str(&self) -> &str {
        &self.0
    }
}

impl TryFrom<String> for IdempotencyKey {
    type Error = String;
    fn try_from(value: String) -> Result<Self, String> {
        Self::parse(value)
    }
}

/// How many messages a `join` or `history` returns: 1 to 200, default 50.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize)]
#[serde(try_from = "u64")]
pub struct Limit(u16);

impl Limit {
    /// Largest `limit` a client may ask for; more is a `bad_request`.
    pub const MAX: u16 = 200;

    /// The number of messages to return, always 1 to [`Limit::MAX`].
    pub fn get(self) -> usize {
        usize::from(self.0)
    }
}

impl Default for Limit {
    fn default() -> Self {
        Self(50)
    }
}

impl TryFrom<u64> for Limit {
    type Error = String;

    fn try_from(value: u64) -> Result<Self, Self::Error> {
        match u16::try_from(value) {
            Ok(limit) if (1..=Self::MAX).contains(&limit) => Ok(Self(limit)),
            _ => Err(format!("limit must be 1 to {}", Self::MAX)),
        }
    }
}

/// A message's position in its room or conversation: 1, 2, 3… with no holes.
pub type MessageId = u64;

/// One WebSocket connection, addressable on its own (a "channel" in Django
/// Channels' terms). Shown as `s-<hex>`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct SessionId(u64);

impl SessionId {
    /// A process-wide unique id for a new connection.
    pub fn next() -> Self {
        static NEXT: AtomicU64 = AtomicU64::new(1);
        Self(NEXT.fetch_add(1, Ordering::Relaxed))
    }
}

impl fmt::Display for SessionId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "s-{:04x}", self.0)
    }
}

impl Serialize for SessionId {
    fn serialize<S: serde::Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        serializer.collect_str(self)
    }
}

macro_rules! string_newtype_impls {
    ($($name:ident),*) => {$(
        impl fmt::Display for $name {
            fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                f.write_str(&self.0)
            }
        }

        impl From<$name> for String {
            fn from(value: $name) -> String {
                value.0
            }
        }
    )*};
}
string_newtype_impls!(UserName, RoomName, Text, Ref, IdempotencyKey);

impl TryFrom<String> for UserName {
    type Error = String;
    fn try_from(value: String) -> Result<Self, String> {
        Self::parse(value)
    }
}

/// Lets maps keyed by room be looked up with the `&str` a frame carries.
impl std::borrow::Borrow<str> for RoomName {
    fn borrow(&self) -> &str {
        &self.0
    }
}

impl TryFrom<String> for Text {
    type Error = String;
    fn try_from(value: String) -> Result<Self, String> {
        if value.trim().is_empty() {
            return Err("text must not be empty or only white space".into());
        }
        Ok(Self(value))
    }
}

impl TryFrom<String> for RoomName {
    type Error = String;
    fn try_from(value: String) -> Result<Self, String> {
        Self::parse(value)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names_accept_the_protocol_characters_only() {
        assert!(UserName::parse("alice_B.9-x").is_ok());
        assert!(UserName::parse("").is_err());
        assert!(UserName::parse("a".repeat(33)).is_err());
        assert!(UserName::parse("a".repeat(32)).is_ok());
        assert!(UserName::parse("al ice").is_err());
        assert!(UserName::parse("bob@x").is_err());
        assert!(RoomName::parse("r".repeat(64)).is_ok());
        assert!(RoomName::parse("r".repeat(65)).is_err());
        assert!(RoomName::parse("@a+b").is_err());
    }

    #[test]
    fn guest_names_are_valid_names() {
        let guest = UserName::guest();
        assert!(guest.as_str().starts_with("guest-"));
        assert_eq!(guest.as_str().len(), 10);
        assert!(UserName::parse(guest.as_str()).is_ok());
    }

    #[test]
    fn conversation_names_are_sorted_and_canonical() {
        let alice = UserName::parse("alice").unwrap();
        let bob = UserName::parse("bob").unwrap();
        let conversation = Conversation::between(bob.clone(), alice.clone());
        assert_eq!(conversation.to_string(), "@alice+bob");
        assert!(conversation.includes(&alice) && conversation.includes(&bob));
        assert_eq!(Conversation::parse("@alice+bob").unwrap(), conversation);
        assert!(Conversation::parse("@bob+alice").is_err());
        assert!(Conversation::parse("alice+bob").is_err());
        assert!(Conversation::parse("@alice").is_err());
        assert_eq!(Conversation::parse("@bo+bo").unwrap().to_string(), "@bo+bo");
    }

    #[test]
    fn channels_tell_rooms_from_conversations() {
        assert!(matches!(Channel::parse("lobby"), Ok(Channel::Room(_))));
        assert!(matches!(Channel::parse("@a+b"), Ok(Channel::Direct(_))));
        assert!(Channel::parse("@b+a").is_err());
    }

    #[test]
    fn text_counts_scalar_values_and_rejects_blank() {
        assert!(Text::parse("   \n", 10).is_err());
        assert!(Text::parse("", 10).is_err());
        assert!(Text::parse("é".repeat(10), 10).is_ok());
        assert!(Text::parse("é".repeat(11), 10).is_err());
    }

    #[test]
    fn limit_is_one_to_two_hundred() {
        assert!(Limit::try_from(0).is_err());
        assert_eq!(Limit::try_from(200).unwrap().get(), 200);
        assert!(Limit::try_from(201).is_err());
        assert_eq!(Limit::default().get(), 50);
    }

    #[test]
    fn session_ids_are_unique_and_shown_in_hex() {
        let (a, b) = (SessionId::next(), SessionId::next());
        assert_ne!(a, b);
        assert!(a.to_string().starts_with("s-"));
    }
}
