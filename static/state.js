// The page's state: who is signed in, the open conversations and what
// each holds. Shared by the connection (app.js) and the view (view.js).

export const $ = (selector) => document.querySelector(selector);

export const state = {
  socket: null,
  me: null,
  welcomed: false,
  wantName: "",
  wantToken: "",
  retries: 0,
  nextRef: 1,
  current: null,
  rooms: new Map(), // name -> conversation state, see conversation()
  typing: new Map(), // room -> Map(name -> timer)
  offlineUntil: 0,
  lastTypingSent: 0,
  directory: [], // the server's rooms: {name, members}
  signedOut: false, // the user signed out: no reconnecting
  newBelow: false, // messages arrived below while the list was scrolled up
};

export function conversation(name) {
  let entry = state.rooms.get(name);
  if (!entry) {
    entry = {
      name,
      direct: name.startsWith("@"),
      joined: false,
      messages: [], // stored messages, oldest first, each id once
      ids: new Set(), // the ids in `messages`
      pending: [], // {ref, text, state}
      // Every message from the oldest shown up to `lastId` is in `messages`:
      // the tab resumes from there. null until the first page or message.
      lastId: null,
      more: false, // older messages exist: scrolling up loads them
      olderRef: null, // the `history` for older messages, while it runs
      catchUpRef: null, // the `history` for newer messages, while it runs
      unread: 0,
      mentions: 0,
      members: [],
      // When the room was opened with unread messages: the divider goes
      // before the first message after this id (null: no divider).
      dividerAfter: null,
      scrollToDivider: false,
    };
    state.rooms.set(name, entry);
  }
  return entry;
}

export function otherUser(room) {
  const [a, b] = room.slice(1).split("+");
  return a === state.me ? b : a;
}

export function conversationWith(user) {
  return "@" + [state.me, user].sort().join("+");
}

export function mentionsMe(text) {
  for (const match of text.matchAll(/@([A-Za-z0-9_.-]+)/g)) {
    if (match[1].replace(/\.+$/, "") === state.me) return true;
  }
  return false;
}
