//! [`Mirror`]: who is present on the other nodes, as this node last heard.
//!
//! Each node keeps its own presence in Redis (a hash per node, see
//! `link`) and announces every change with a number that follows the
//! previous one. The mirror applies those changes in order; a change that
//! skips a number means some were lost, and the node's whole hash is read
//! again ([`Applied::Reload`]). A node whose hash expired is dead: its
//! entries go.
//!
//! Plain data with no actix and no Redis in it, so the rules are unit
//! tested directly. What it returns is what changed cluster-wide outside
//! this node (a name appearing or vanishing in a room); the `ChatServer`
//! turns that into `presence` frames for its own sessions.

use std::collections::{BTreeSet, HashMap, HashSet};

use super::NodeId;
use crate::domain::{RoomName, UserName};

/// Where a name is present: in a room, or connected at all.
#[derive(Debug, Clone, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum Scope {
    /// Connected (a session of the name is open), for mentions.
    Online,
    /// In this room.
    Room(RoomName),
}

/// One name in one scope: an entry of a node's presence.
#[derive(Debug, Clone, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct Entry {
    /// Online, or in which room.
    pub scope: Scope,
    /// The user.
    pub name: UserName,
}

impl Entry {
    /// The entry as a Redis hash field: `room name`, or `@ name` for
    /// online (a room name never starts with `@`, names hold no space).
    pub fn field(&self) -> String {
        match &self.scope {
            Scope::Online => format!("@ {}", self.name),
            Scope::Room(room) => format!("{room} {}", self.name),
        }
    }

    /// The entry a hash field stands for; `None` for anything else.
    pub fn parse(field: &str) -> Option<Self> {
        let (scope, name) = field.split_once(' ')?;
        let name = UserName::parse(name).ok()?;
        let scope = match scope {
            "@" => Scope::Online,
            room => Scope::Room(RoomName::parse(room).ok()?),
        };
        Some(Self { scope, name })
    }
}

/// An entry that appeared on, or vanished from, every other node taken
/// together (its first node added it, or its last node dropped it).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Transition {
    /// What appeared or vanished.
    pub entry: Entry,
    /// True when it appeared.
    pub present: bool,
}

/// What [`Mirror::apply`] did.
#[derive(Debug, PartialEq, Eq)]
pub enum Applied {
    /// Applied; the transition, if the change made one.
    Done(Option<Transition>),
    /// Changes of that node were missed: read its whole presence again.
    Reload,
}

#[derive(Debug, Default)]
struct NodeState {
    /// The number of the last change applied.
    seq: u64,
    entries: HashSet<Entry>,
}

/// See the module doc.
#[derive(Debug, Default)]
pub struct Mirror {
    nodes: HashMap<NodeId, NodeState>,
    /// On how many nodes each entry is.
    counts: HashMap<Entry, usize>,
    /// The names present in each room, on any of them.
    by_room: HashMap<RoomName, BTreeSet<UserName>>,
}

impl Mirror {
    /// Applies change `seq` of `node`: `entry` added (`present`) or removed.
    pub fn apply(&mut self, node: &NodeId, seq: u64, entry: Entry, present: bool) -> Applied {
        let state = self.nodes.entry(node.clone()).or_default();
        if seq <= state.seq {
            return Applied::Done(None); // already in a snapshot read since
        }
        if seq != state.seq + 1 {
            return Applied::Reload;
        }
        state.seq = seq;
        let changed = if present {
            state.entries.insert(entry.clone())
        } else {
            state.entries.remove(&entry)
        };
        Applied::Done(if changed { self.count(entry, present) } else { None })
    }

    /// Replaces what `node` holds by a snapshot numbered `seq`, unless a
    /// later change was applied already.
    pub fn replace(&mut self, node: &NodeId, seq: u64, entries: HashSet<Entry>) -> Vec<Transition> {
        let state = self.nodes.entry(node.clone()).or_default();
        if seq < state.seq {
            return Vec::new();
        }
        state.seq = seq;
        let old = std::mem::replace(&mut state.entries, entries.clone());
        let gone: Vec<Entry> = old.difference(&entries).cloned().collect();
        let new: Vec<Entry> = entries.difference(&old).cloned().collect();
        let mut transitions: Vec<Transition> =
            gone.into_iter().filter_map(|entry| self.count(entry, false)).collect();
        transitions.extend(new.into_iter().filter_map(|entry| self.count(entry, true)));
        transitions
    }

    /// Forgets a dead node; returns what vanished with it.
    pub fn remove_node(&mut self, node: &NodeId) -> Vec<Transition> {
        let Some(state) = self.nodes.remove(node) else {
            return Vec::new();
        };
        state.entries.into_iter().filter_map(|entry| self.count(entry, false)).collect()
    }

    /// Whether `entry` is present on another node.
    pub fn contains(&self, entry: &Entry) -> bool {
        self.counts.contains_key(entry)
    }

    /// The names in `room` on other nodes, each once, sorted.
    pub fn names_in(&self, room: &RoomName) -> impl Iterator<Item = &UserName> {
        self.by_room.get(room).into_iter().flatten()
    }

    /// Counts `entry` in or out; a transition when it crossed zero.
    fn count(&mut self, entry: Entry, present: bool) -> Option<Transition> {
        let count = self.counts.entry(entry.clone()).or_insert(0);
        if present {
            *count += 1;
            if *count > 1 {
                return None;
            }
            if let Scope::Room(room) = &entry.scope {
                self.by_room.entry(room.clone()).or_default().insert(entry.name.clone());
            }
        } else {
            *count = count.saturating_sub(1);
            if *count > 0 {
                return None;
            }
            self.counts.remove(&entry);
            if let Scope::Room(room) = &entry.scope {
                if let Some(names) = self.by_room.get_mut(room) {
                    names.remove(&entry.name);
                    if names.is_empty() {
                        self.by_room.remove(room);
                    }
                }
            }
        }
        Some(Transition { entry, present })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn entry(room: &str, name: &str) -> Entry {
        Entry {
            scope: Scope::Room(RoomName::parse(room).unwrap()),
            name: UserName::parse(name).unwrap(),
        }
    }

    fn node(name: &str) -> NodeId {
        name.to_owned()
    }

    #[test]
    fn a_name_appears_on_its_first_node_and_vanishes_with_its_last() {
        let mut mirror = Mirror::default();
        let alice = entry("lobby", "alice");
        let first = mirror.apply(&node("a"), 1, alice.clone(), true);
        assert_eq!(first, Applied::Done(Some(Transition { entry: alice.clone(), present: true })));
        assert_eq!(mirror.apply(&node("b"), 1, alice.clone(), true), Applied::Done(None));
        assert_eq!(mirror.apply(&node("a"), 2, alice.clone(), false), Applied::Done(None));
        let gone = mirror.remove_node(&node("b"));
        assert_eq!(gone, vec![Transition { entry: alice.clone(), present: false }]);
        assert!(!mirror.contains(&alice));
    }

    #[test]
    fn a_skipped_change_asks_for_a_reload_and_a_snapshot_settles_it() {
        let mut mirror = Mirror::default();
        let (alice, bob) = (entry("lobby", "alice"), entry("lobby", "bob"));
        mirror.apply(&node("a"), 1, alice.clone(), true);
        assert_eq!(mirror.apply(&node("a"), 3, bob.clone(), true), Applied::Reload);
        let transitions = mirror.replace(&node("a"), 3, HashSet::from([bob.clone()]));
        assert_eq!(transitions.len(), 2, "alice left, bob came: {transitions:?}");
        assert_eq!(mirror.apply(&node("a"), 3, bob.clone(), true), Applied::Done(None));
        assert!(mirror.replace(&node("a"), 2, HashSet::new()).is_empty(), "an older snapshot");
        let lobby = RoomName::parse("lobby").unwrap();
        let names: Vec<_> = mirror.names_in(&lobby).collect();
        assert_eq!(names, vec![&bob.name]);
    }

    #[test]
    fn entries_survive_their_hash_field() {
        for entry in [entry("lobby", "alice"), Entry { scope: Scope::Online, ..entry("x", "bo") }] {
            assert_eq!(Entry::parse(&entry.field()), Some(entry));
        }
        assert_eq!(Entry::parse("seq"), None);
    }
}
