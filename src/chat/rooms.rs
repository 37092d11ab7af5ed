//! [`Registry`]: who is connected, which rooms exist, who is in them.
//!
//! Plain data with no actix in it, so the membership rules (presence on a
//! name's first join and last leave, distinct sorted member names) are unit
//! tested directly. Only this node's sessions are here: the other nodes'
//! members are in the [`Mirror`](crate::cluster::Mirror), and the ids
//! delivered in each room in the [`Sequencer`](super::sequence::Sequencer).
//! `H` is how a session is reached: a
//! [`SessionHandle`](crate::outbound::SessionHandle) in the server,
//! anything in tests.

use std::collections::{BTreeMap, HashMap, HashSet};
use std::sync::Arc;

use crate::domain::{RoomName, SessionId, UserName};

/// One room: its sessions, and their names.
#[derive(Debug)]
pub struct Room<H> {
    /// The room's name, shared with every frame delivered in it.
    pub key: Arc<str>,
    /// Sessions in the room, with the handle to reach each.
    pub members: HashMap<SessionId, H>,
    /// Distinct names in the room and how many of their sessions are in it.
    names: BTreeMap<UserName, usize>,
}

impl<H> Room<H> {
    fn new(name: &RoomName) -> Self {
        Self { key: Arc::from(name.as_str()), members: HashMap::new(), names: BTreeMap::new() }
    }

    /// The distinct names of the room's sessions, sorted.
    pub fn names(&self) -> impl Iterator<Item = &UserName> {
        self.names.keys()
    }

    /// How many distinct names have a session in the room.
    pub fn name_count(&self) -> usize {
        self.names.len()
    }

    /// Whether a session of `name` is in the room.
    pub fn has_name(&self, name: &UserName) -> bool {
        self.names.contains_key(name)
    }
}

#[derive(Debug)]
struct SessionEntry<H> {
    name: UserName,
    handle: H,
    rooms: HashSet<RoomName>,
}

/// What [`Registry::join`] did.
#[derive(Debug, PartialEq, Eq)]
pub struct Joined {
    /// The room did not exist before (it must be stored).
    pub created: bool,
    /// This is the name's first session in the room: announce it.
    pub first_of_name: bool,
}

/// Sessions, names and rooms; see the module doc.
#[derive(Debug)]
pub struct Registry<H> {
    sessions: HashMap<SessionId, SessionEntry<H>>,
    by_name: HashMap<UserName, Vec<SessionId>>,
    rooms: BTreeMap<RoomName, Room<H>>,
}

impl<H> Default for Registry<H> {
    fn default() -> Self {
        Self { sessions: HashMap::new(), by_name: HashMap::new(), rooms: BTreeMap::new() }
    }
}

impl<H: Clone> Registry<H> {
    /// Adds a room known from storage or from another node, or does
    /// nothing if it exists. Returns whether it was new.
    pub fn add_room(&mut self, name: &RoomName) -> bool {
        if self.rooms.contains_key(name) {
            return false;
        }
        self.rooms.insert(name.clone(), Room::new(name));
        true
    }

    /// Registers a session. Returns whether it is its name's only session.
    pub fn connect(&mut self, session: SessionId, name: UserName, handle: H) -> bool {
        let sessions = self.by_name.entry(name.clone()).or_default();
        sessions.push(session);
        let first = sessions.len() == 1;
        self.sessions.insert(session, SessionEntry { name, handle, rooms: HashSet::new() });
        first
    }

    /// Removes a session from everything. Returns its name and the rooms its
    /// name has left with it (those need a `presence` leave).
    pub fn disconnect(&mut self, session: SessionId) -> Option<(UserName, Vec<RoomName>)> {
        let entry = self.sessions.remove(&session)?;
        if let Some(sessions) = self.by_name.get_mut(&entry.name) {
            sessions.retain(|other| *other != session);
            if sessions.is_empty() {
                self.by_name.remove(&entry.name);
            }
        }
        let left = entry
            .rooms
            .into_iter()
            .filter(|room| self.remove_member(room, session, &entry.name))
            .collect();
        Some((entry.name, left))
    }

    /// Puts `session` in `room`, creating the room on first use. `None` for
    /// an unknown session.
    pub fn join(&mut self, session: SessionId, room: &RoomName) -> Option<Joined> {
        let entry = self.sessions.get_mut(&session)?;
        let created = !self.rooms.contains_key(room);
        let state = self.rooms.entry(room.clone()).or_insert_with(|| Room::new(room));
        let mut first_of_name = false;
        if entry.rooms.insert(room.clone()) {
            state.members.insert(session, entry.handle.clone());
            let count = state.names.entry(entry.name.clone()).or_insert(0);
            *count += 1;
            first_of_name = *count == 1;
        }
        Some(Joined { created, first_of_name })
    }

    /// Takes `session` out of `room`. Returns `Some(true)` when its name has
    /// no session left there (announce it), `None` when it was not in it.
    pub fn leave(&mut self, session: SessionId, room: &RoomName) -> Option<bool> {
        let entry = self.sessions.get_mut(&session)?;
        if !entry.rooms.remove(room) {
            return None;
        }
        let name = entry.name.clone();
        Some(self.remove_member(room, session, &name))
    }

    fn remove_member(&mut self, room: &RoomName, session: SessionId, name: &UserName) -> bool {
        let Some(state) = self.rooms.get_mut(room) else {
            return false;
        };
        state.members.remove(&session);
        match state.names.get_mut(name) {
            Some(count) if *count > 1 => {
                *count -= 1;
                false
            }
            Some(_) => {
                state.names.remove(name);
                true
            }
            None => false,
        }
    }

    pub fn room(&self, room: &RoomName) -> Option<&Room<H>> {
        self.rooms.get(room)
    }

    pub fn is_member(&self, session: SessionId, room: &RoomName) -> bool {
        self.sessions.get(&session).is_some_and(|entry| entry.rooms.contains(room))
    }

    pub fn name_of(&self, session: SessionId) -> Option<&UserName> {
        self.sessions.get(&session).map(|entry| &entry.name)
    }

    pub fn handle(&self, session: SessionId) -> Option<&H> {
        self.sessions.get(&session).map(|entry| &entry.handle)
    }

    /// Every session of `name`, with its handle and the rooms it is in.
    pub fn sessions_of<'a>(
        &'a self,
        name: &UserName,
    ) -> impl Iterator<Item = (SessionId, &'a H, &'a HashSet<RoomName>)> + 'a {
        let ids = self.by_name.get(name).map(Vec::as_slice).unwrap_or_default();
        ids.iter().filter_map(|id| {
            let entry = self.sessions.get(id)?;
            Some((*id, &entry.handle, &entry.rooms))
        })
    }

    pub fn is_online(&self, name: &UserName) -> bool {
        self.by_name.contains_key(name)
    }

    /// Every room, sorted by name.
    pub fn rooms(&self) -> impl Iterator<Item = (&RoomName, &Room<H>)> {
        self.rooms.iter()
    }

    /// Sessions in rooms, summed over rooms.
    pub fn memberships(&self) -> usize {
        self.rooms.values().map(|room| room.members.len()).sum()
    }

    /// Every connected session, with its handle.
    pub fn sessions(&self) -> impl Iterator<Item = (SessionId, &H)> {
        self.sessions.iter().map(|(id, entry)| (*id, &entry.handle))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn name(value: &str) -> UserName {
        UserName::parse(value).unwrap()
    }

    fn room(value: &str) -> RoomName {
        RoomName::parse(value).unwrap()
    }

    #[test]
    fn presence_follows_a_names_first_join_and_last_leave() {
        let mut registry = Registry::default();
        let (tab1, tab2) = (SessionId::next(), SessionId::next());
        assert!(registry.connect(tab1, name("alice"), ()));
        assert!(!registry.connect(tab2, name("alice"), ()));
        let lobby = room("lobby");
        let first = registry.join(tab1, &lobby).unwrap();
        assert!(first.created && first.first_of_name);
        let second = registry.join(tab2, &lobby).unwrap();
        assert!(!second.created && !second.first_of_name);
        assert!(registry.room(&lobby).unwrap().has_name(&name("alice")));
        assert_eq!(registry.leave(tab1, &lobby), Some(false));
        assert_eq!(registry.leave(tab1, &lobby), None);
        assert_eq!(registry.leave(tab2, &lobby), Some(true));
        assert_eq!(registry.room(&lobby).unwrap().names().count(), 0);
    }

    #[test]
    fn members_are_distinct_sorted_names() {
        let mut registry = Registry::default();
        let lobby = room("lobby");
        for who in ["carol", "alice", "bob", "alice"] {
            let session = SessionId::next();
            registry.connect(session, name(who), ());
            registry.join(session, &lobby);
        }
        let members: Vec<_> = registry.room(&lobby).unwrap().names().cloned().collect();
        assert_eq!(members, vec![name("alice"), name("bob"), name("carol")]);
    }

    #[test]
    fn disconnect_reports_rooms_the_name_left() {
        let mut registry = Registry::default();
        let (a, b) = (SessionId::next(), SessionId::next());
        registry.connect(a, name("alice"), ());
        registry.connect(b, name("alice"), ());
        registry.join(a, &room("one"));
        registry.join(a, &room("two"));
        registry.join(b, &room("two"));
        let (who, mut left) = registry.disconnect(a).unwrap();
        left.sort();
        assert_eq!((who, left), (name("alice"), vec![room("one")]));
        assert!(registry.is_online(&name("alice")));
        registry.disconnect(b);
        assert!(!registry.is_online(&name("alice")));
        assert!(registry.disconnect(b).is_none());
    }
}
