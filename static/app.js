// walkie web client: plain JS modules, no build step. Speaks wire protocol
// v1 (docs/protocol.md). This module holds the connection, the frames from
// the server and the user's actions; state.js the state, view.js the
// drawing, text.js links and days, storage.js what a reload keeps.

import { $, conversation, mentionsMe, otherUser, state } from "./state.js";
import { forget, remember, remembered } from "./storage.js";
import { atBottom, bindActions, render, renderDirectory, renderTyping, scrollToBottom, setConnection } from "./view.js";

const NAME = /^[A-Za-z0-9_.-]{1,32}$/;
const TYPING_SHOWN_MS = 5000;
const TYPING_SEND_EVERY_MS = 2000;
const READ_EVERY_MS = 500;
// The largest `limit` the server takes: catching up after a long absence
// takes as few requests as possible (flood control counts each one).
const PAGE = 200;
// A catch-up request the server could not act on (`rate_limited`,
// `internal`) is asked again after this long.
const RETRY_MS = 1000;
// The room directory is asked for again this often while the page shows.
const DIRECTORY_EVERY_MS = 30000;

// ---- connection -------------------------------------------------------

function send(frame) {
  if (state.socket && state.socket.readyState === WebSocket.OPEN && state.welcomed) {
    state.socket.send(JSON.stringify(frame));
    return true;
  }
  return false;
}

function socketUrl() {
  const url = new URL("ws", location.href);
  url.protocol = location.protocol === "https:" ? "wss:" : "ws:";
  if (state.wantName) url.searchParams.set("name", state.wantName);
  if (state.wantToken) url.searchParams.set("token", state.wantToken);
  return url;
}

/** A fresh idempotency key: a resend with it is never stored twice. */
function newKey() {
  const bytes = crypto.getRandomValues(new Uint8Array(16));
  return Array.from(bytes, (b) => b.toString(16).padStart(2, "0")).join("");
}

/** Connects after `delay` ms; a later call replaces an earlier one, so at
 * most one reconnection waits at a time. */
function connectLater(delay) {
  clearTimeout(state.reconnectTimer);
  state.reconnectTimer = setTimeout(connect, delay);
}

function connect() {
  const wait = state.offlineUntil - Date.now();
  if (wait > 0) return connectLater(wait);
  setConnection("connecting");
  const socket = new WebSocket(socketUrl());
  state.socket = socket;
  state.welcomed = false;
  socket.onmessage = (event) => {
    let frame;
    try {
      frame = JSON.parse(event.data);
    } catch {
      return;
    }
    handle(frame);
  };
  socket.onclose = () => {
    if (state.socket !== socket || state.signedOut) return;
    const wasWelcomed = state.welcomed;
    state.welcomed = false;
    setConnection("closed");
    // What was sent but not acknowledged goes again, with its key, once
    // the connection is back: the server stores each message once.
    for (const room of state.rooms.values()) {
      room.readSent = 0;
      // Requests on the old connection get no answer; resume() asks again.
      room.olderRef = null;
      room.catchUpRef = null;
      for (const item of room.pending) if (item.state === "pending") item.sent = false;
    }
    render();
    const delay = Math.min(10000, 500 * 2 ** state.retries++);
    if (!wasWelcomed && !state.me) return explainRefusal(delay);
    connectLater(delay);
  };
}

/** The first connection failed. A refusal (bad name, token, origin, full
 * server) shows the form with the reason; a server out of reach is tried
 * again after `delay` when the page is signing in from what it remembered
 * (a reload while the server restarts). */
async function explainRefusal(delay) {
  const error = $('[data-testid="signin-error"]');
  let reason = "the server could not be reached";
  let refused = false;
  try {
    const url = socketUrl();
    url.protocol = location.protocol;
    const response = await fetch(url);
    const text = await response.text();
    refused = [400, 401, 403, 503].includes(response.status);
    if (refused) reason = `${response.status}: ${text}`;
    if (response.status === 401) $("#token-label").hidden = false;
  } catch {
    // keep the generic reason
  }
  if (state.restoring && !refused) return connectLater(delay);
  state.restoring = false;
  error.textContent = `Connection refused (${reason})`;
  error.hidden = false;
  $('[data-testid="signin-name"]').value = state.wantName;
  $("#signin").hidden = false;
}

// ---- frames from the server --------------------------------------------

function handle(frame) {
  switch (frame.type) {
    case "welcome":
      state.me = frame.name;
      state.welcomed = true;
      state.retries = 0;
      $('[data-testid="me"]').textContent = frame.name;
      $("#signin").hidden = true;
      $("#chat").hidden = false;
      setConnection("open");
      state.restoring = false;
      resume();
      refreshDirectory();
      persist();
      // The link's name and room are taken: a reload goes by what is remembered.
      if (location.search) history.replaceState(null, "", location.pathname);
      break;
    case "rooms":
      state.directory = frame.rooms;
      return renderDirectory(); // nothing else changed
    case "read":
      onRead(frame);
      break;
    case "inbox":
      onInbox(frame);
      break;
    case "joined":
      onJoined(frame);
      break;
    case "left":
      state.rooms.delete(frame.room);
      if (state.current === frame.room) state.current = null;
      persist();
      refreshDirectory();
      break;
    case "message":
      onMessage(frame);
      break;
    case "history":
      onHistory(frame);
      break;
    case "presence":
      onPresence(frame);
      break;
    case "members":
      conversation(frame.room).members = frame.members;
      break;
    case "typing":
      onTyping(frame);
      return renderTyping(); // nothing else changed
    case "mention":
      // Kept mentions arrive right after welcome, maybe for the room just
      // opened: those are read already.
      if (frame.room !== state.current || document.hidden) conversation(frame.room).mentions += 1;
      notify(`${frame.from} mentioned you in #${frame.room}`, frame.text, frame.room);
      break;
    case "error":
      onError(frame);
      break;
  }
  render();
}

/** After (re)connecting: rejoin rooms from where we were (a conversation
 * is not joined: it catches up by `history`), send what waits. */
function resume() {
  // A link's `room` opens once, on the first connection.
  if (state.linkRoom) {
    conversation(state.linkRoom).wanted = true;
    state.current = state.linkRoom;
    state.linkRoom = null;
  }
  for (const room of state.rooms.values()) {
    if (!room.direct) sendJoin(room);
    else if (room.lastId === null) loadLatest(room);
    else catchUp(room);
    for (const item of room.pending) if (!item.sent && item.state === "pending") transmit(room, item);
  }
  send({ type: "inbox", ref: ref() });
}

/** Adds messages from anywhere (live, `joined`, `history`) in id order,
 * each id once: a page may repeat what also came live. Then moves `lastId`
 * over every id now held without a hole. */
function addMessages(room, messages) {
  for (const message of messages) {
    if (room.ids.has(message.id)) continue;
    room.ids.add(message.id);
    room.messages.push(message);
  }
  room.messages.sort((a, b) => a.id - b.id);
  // The first messages a tab gets open its window: nothing before them is
  // missing (older ones are loaded by scrolling up).
  if (room.lastId === null && room.messages.length) room.lastId = room.messages[0].id - 1;
  while (room.ids.has(room.lastId + 1)) room.lastId += 1;
}

/** Ids have no holes (docs/protocol.md): a message shown beyond `lastId`
 * means some before it have not come yet. */
function hasGap(room) {
  return room.messages.length > 0 && room.messages[room.messages.length - 1].id > room.lastId;
}

/** Asks for the messages after `lastId`, one page; onHistory asks for the
 * next while the server says `more`. Used after a reconnect and when a
 * live id jumps; one such request per conversation at a time. Live
 * messages keep showing meanwhile: addMessages puts each in its place. */
function catchUp(room) {
  if (room.catchUpRef || room.lastId === null) return;
  const reference = ref();
  const frame = { type: "history", room: room.name, since: room.lastId, limit: PAGE, ref: reference };
  if (send(frame)) room.catchUpRef = reference;
}

/** The latest page of a conversation the tab has nothing of yet. */
function loadLatest(room) {
  send({ type: "history", room: room.name, ref: ref() });
}

/** `join`, from where the tab stands. With `since`, `joined` holds the page
 * after it and its `more` says newer ones wait (onJoined asks for them);
 * without, it holds the latest page and `more` says older ones exist. */
function sendJoin(room) {
  room.wanted = true; // remembered for a reload (see persist)
  const from = room.lastId === null ? {} : { since: room.lastId, limit: PAGE };
  send({ type: "join", room: room.name, ...from, ref: ref() });
}

function onJoined(frame) {
  const room = conversation(frame.room);
  const resumed = room.lastId !== null; // so the join had `since`: see sendJoin
  room.joined = true;
  room.members = frame.members;
  if (!resumed) room.more = frame.more;
  addMessages(room, frame.history);
  room.lastId ??= 0; // an empty room: nothing can be missing
  if (resumed && frame.more) catchUp(room);
  if (state.current === frame.room && room.dividerAfter === null && frame.unread > 0) {
    // Opened before its read state was known (a reload): mark the first unread now.
    room.dividerAfter = frame.last_read;
    room.scrollToDivider = true;
  }
  room.lastRead = Math.max(room.lastRead ?? 0, frame.last_read ?? 0);
  if (state.current !== frame.room) room.unread = frame.unread ?? room.unread;
  if (!state.current) openRoom(frame.room);
  reachDivider(room);
  markRead(room);
  persist();
}

/** Loads older pages of the open room until its first unread message, the
 * divider's place, is shown (a page holds the latest messages only). */
function reachDivider(room) {
  if (state.current !== room.name || room.dividerAfter === null || !room.more) return;
  const oldest = room.messages[0]?.id;
  if (oldest === undefined || oldest <= room.dividerAfter + 1) return;
  room.seekingDivider = true; // the page that comes scrolls to the divider
  loadOlder();
}

/** Tells the server the open room is read up to its last message, so
 * every tab of the user clears its badges. At most one `read` every
 * READ_EVERY_MS, for the highest id: a busy room must not flood the server
 * (flood control counts every frame). */
function markRead(room) {
  if (state.current !== room.name || document.hidden || !room.lastId) return;
  if (room.lastId <= Math.max(room.readSent ?? 0, room.lastRead ?? 0)) return;
  if (state.readTimer) return;
  state.readTimer = setTimeout(() => {
    state.readTimer = null;
    const current = state.current && state.rooms.get(state.current);
    if (current && !document.hidden) sendRead(current);
  }, READ_EVERY_MS);
}

/** Sends `read` for everything `room` shows, unless the server has it. */
function sendRead(room) {
  if (!room.lastId || room.lastId <= Math.max(room.readSent ?? 0, room.lastRead ?? 0)) return;
  if (send({ type: "read", room: room.name, id: room.lastId })) room.readSent = room.lastId;
}

function onRead(frame) {
  const room = state.rooms.get(frame.room);
  if (!room) return;
  room.lastRead = Math.max(room.lastRead ?? 0, frame.id);
  if (room.lastRead >= room.lastId) {
    room.unread = 0;
    room.mentions = 0;
  } else if (!frame.ref) {
    // Read elsewhere, but not all: the server's counts are the truth.
    send({ type: "inbox" });
  }
}

function onInbox(frame) {
  for (const entry of frame.conversations) {
    if (!entry.room.startsWith("@") && !state.rooms.has(entry.room)) continue;
    const room = conversation(entry.room);
    room.lastRead = Math.max(room.lastRead ?? 0, entry.last_read);
    if (state.current === entry.room) continue;
    room.unread = entry.unread;
    room.mentions = entry.mentions;
  }
}

function onMessage(frame) {
  const room = conversation(frame.room);
  if (frame.ref && room.pending.some((item) => item.ref === frame.ref)) {
    room.pending = room.pending.filter((item) => item.ref !== frame.ref);
    persist();
  }
  const isNew = !room.ids.has(frame.id);
  // Only a conversation gets messages before any page: older ones exist
  // unless this is its first.
  if (room.lastId === null) room.more = frame.id > 1;
  addMessages(room, [frame]);
  if (hasGap(room)) catchUp(room);
  // Sending moves the sender's own cursor on the server, silently.
  if (frame.from === state.me) room.lastRead = Math.max(room.lastRead ?? 0, frame.id);
  const fromOther = isNew && frame.from !== state.me;
  if (fromOther && (state.current !== frame.room || document.hidden)) {
    room.unread += 1;
    if (!room.direct && mentionsMe(frame.text)) room.mentions += 1;
  }
  if (fromOther && (room.direct || mentionsMe(frame.text))) {
    notify(room.direct ? frame.from : `${frame.from} in #${frame.room}`, frame.text, frame.room);
  }
  if (isNew && state.current === frame.room && !atBottom()) state.newBelow = true;
  clearTyping(frame.room, frame.from);
  markRead(room);
}

/** A desktop notification, with the tab hidden and the user's permission
 * (asked for on a click of `notify-enable`, never on its own). */
function notify(title, body, room) {
  if (!document.hidden || !("Notification" in window) || Notification.permission !== "granted") return;
  const notification = new Notification(title, { body, tag: room });
  notification.onclick = () => {
    window.focus();
    joinRoom(room);
  };
}

function onHistory(frame) {
  const room = state.rooms.get(frame.room);
  if (!room) return; // left meanwhile
  if (frame.ref && frame.ref === room.catchUpRef) {
    onNewerPage(room, frame);
  } else {
    // Older messages, or a conversation's latest page: either way `more`
    // says whether older ones exist.
    if (frame.ref && frame.ref === room.olderRef) room.olderRef = null;
    room.more = frame.more;
    addMessages(room, frame.messages);
    room.lastId ??= 0; // an empty conversation: nothing can be missing
    if (room.seekingDivider) {
      room.seekingDivider = false;
      room.scrollToDivider = true;
    }
    reachDivider(room);
  }
  markRead(room);
}

/** A page of catchUp(): asks for the next while newer messages wait, or
 * while a live one is still ahead of what the pages filled (a page that
 * brought nothing does not ask again, so a gap the server cannot fill
 * never loops). */
function onNewerPage(room, frame) {
  room.catchUpRef = null;
  addMessages(room, frame.messages);
  if (frame.more || (frame.messages.length > 0 && hasGap(room))) catchUp(room);
}

function onPresence(frame) {
  const room = conversation(frame.room);
  const members = new Set(room.members);
  if (frame.event === "join") members.add(frame.name);
  else members.delete(frame.name);
  room.members = [...members].sort();
}

function onTyping(frame) {
  let typing = state.typing.get(frame.room);
  if (!typing) state.typing.set(frame.room, (typing = new Map()));
  clearTimeout(typing.get(frame.from));
  typing.set(frame.from, setTimeout(() => { clearTyping(frame.room, frame.from); render(); }, TYPING_SHOWN_MS));
}

function clearTyping(room, name) {
  const typing = state.typing.get(room);
  if (!typing) return;
  clearTimeout(typing.get(name));
  typing.delete(name);
}

function onError(frame) {
  for (const room of state.rooms.values()) {
    const item = room.pending.find((p) => p.ref === frame.ref);
    if (item) item.state = "failed";
    if (frame.ref && frame.ref === room.olderRef) room.olderRef = null;
    if (frame.ref && frame.ref === room.catchUpRef) retryCatchUp(room, frame.code);
  }
  if (!frame.ref || !frame.ref.startsWith("say-")) console.warn("walkie:", frame.code, frame.message);
}

/** A catch-up request was refused. Flood control or a server hiccup pass:
 * ask again a little later, unless the room was left or another request
 * took over meanwhile. */
function retryCatchUp(room, code) {
  room.catchUpRef = null;
  if (code !== "rate_limited" && code !== "internal") return;
  setTimeout(() => {
    if (state.rooms.get(room.name) === room) catchUp(room);
  }, RETRY_MS);
}

// ---- actions ---------------------------------------------------------

function ref() {
  return `r${state.nextRef++}`;
}

function joinRoom(name) {
  const known = state.rooms.get(name);
  if (known?.joined || known?.direct) return openRoom(name);
  sendJoin(conversation(name));
  openRoom(name);
}

function openRoom(name) {
  // What the room being left showed was read, even within READ_EVERY_MS.
  const leaving = state.current && state.rooms.get(state.current);
  if (leaving && leaving.name !== name && !document.hidden) sendRead(leaving);
  state.current = name;
  const room = conversation(name);
  // The divider marks where reading stopped, for as long as the room stays open.
  room.dividerAfter = room.unread > 0 ? room.lastRead ?? 0 : null;
  room.scrollToDivider = room.dividerAfter !== null;
  room.unread = 0;
  room.mentions = 0;
  state.newBelow = false;
  if (room.direct && room.messages.length === 0) {
    room.more = false;
    loadLatest(room);
  }
  markRead(room);
  persist();
  render();
  if (!room.scrollToDivider) scrollToBottom();
  reachDivider(room);
}

/** Remembers who is signed in and which rooms are open, for a reload. */
function persist() {
  if (!state.me || state.signedOut) return;
  const kept = [...state.rooms.values()].filter((room) => room.wanted || room.direct);
  const rooms = kept.map((room) => room.name);
  // Messages not yet acknowledged go again after a reload, with their keys.
  const pending = kept.flatMap((room) =>
    room.pending.filter((item) => item.state === "pending").map((item) => ({ room: room.name, key: item.key, text: item.text })));
  remember({ name: state.me, token: state.wantToken, rooms, current: state.current, pending });
}

/** Asks the server for its rooms, for the directory. */
function refreshDirectory() {
  send({ type: "rooms", ref: ref() });
}

/** Disconnects and forgets everything remembered: back to the sign-in form. */
function signOut() {
  state.signedOut = true;
  forget();
  clearTimeout(state.reconnectTimer);
  const socket = state.socket;
  state.socket = null;
  socket?.close();
  Object.assign(state, { me: null, welcomed: false, current: null, directory: [], newBelow: false });
  state.rooms.clear();
  state.typing.clear();
  for (const list of ["#room-list", "#directory", "#message-list", "#member-list"]) $(list).replaceChildren();
  $('[data-testid="me"]').textContent = "";
  $("#chat").hidden = true;
  $("#signout").hidden = true;
  $("#notify-enable").hidden = true;
  $("#offline-banner").hidden = true;
  $("#signin").hidden = false;
  for (const input of ["signin-name", "signin-token", "composer", "directory-filter", "room-input"]) {
    $(`[data-testid="${input}"]`).value = "";
  }
  setConnection("closed");
  document.title = "walkie";
  history.replaceState(null, "", location.pathname);
}

function transmit(room, item) {
  const common = { text: item.text, ref: item.ref, idempotency_key: item.key };
  const frame = room.direct
    ? { type: "direct", to: otherUser(room.name), ...common }
    : { type: "say", room: room.name, ...common };
  item.sent = send(frame);
  item.state = "pending";
}

function sendMessage(text) {
  if (!state.current || !text.trim()) return;
  const room = conversation(state.current);
  const item = { ref: `say-${state.nextRef++}`, key: newKey(), text, state: "pending", sent: false };
  room.pending.push(item);
  persist();
  transmit(room, item);
  render();
  scrollToBottom();
}

function loadOlder() {
  const room = state.current && conversation(state.current);
  if (!room || !room.more || room.olderRef || room.messages.length === 0) return;
  const reference = ref();
  const frame = { type: "history", room: room.name, before: room.messages[0].id, ref: reference };
  if (send(frame)) room.olderRef = reference;
  render();
}

// ---- wiring ----------------------------------------------------------

bindActions({ openRoom, joinRoom, transmit });

function signIn(name, token) {
  const error = $('[data-testid="signin-error"]');
  if (name && !NAME.test(name)) {
    error.textContent = "A name is 1 to 32 letters, digits, '_', '.' or '-'.";
    error.hidden = false;
    return;
  }
  error.hidden = true;
  state.wantName = name;
  state.wantToken = token;
  state.signedOut = false;
  connect();
}

$("#signin").addEventListener("submit", (event) => {
  event.preventDefault();
  const name = $('[data-testid="signin-name"]').value.trim();
  if (name !== state.wantName) {
    // Someone else: nothing of the remembered session is theirs.
    state.rooms.clear();
    state.current = null;
  }
  signIn(name, $('[data-testid="signin-token"]').value.trim());
});

$("#join-form").addEventListener("submit", (event) => {
  event.preventDefault();
  const input = $('[data-testid="room-input"]');
  const name = input.value.trim();
  if (/^[A-Za-z0-9_.-]{1,64}$/.test(name)) {
    joinRoom(name);
    input.value = "";
  }
});

$("#room-leave").addEventListener("click", () => {
  if (state.current) send({ type: "leave", room: state.current, ref: ref() });
});

const composer = $("#composer");
composer.addEventListener("keydown", (event) => {
  if (event.key === "Enter" && !event.shiftKey) {
    event.preventDefault();
    $("#composer-form").requestSubmit();
  }
});
composer.addEventListener("input", () => {
  const now = Date.now();
  if (state.current && now - state.lastTypingSent > TYPING_SEND_EVERY_MS) {
    state.lastTypingSent = now;
    send({ type: "typing", room: state.current });
  }
});
$("#composer-form").addEventListener("submit", (event) => {
  event.preventDefault();
  sendMessage(composer.value);
  composer.value = "";
});

$("#message-list").addEventListener("scroll", (event) => {
  if (event.target.scrollTop === 0) loadOlder();
  if (state.newBelow && atBottom()) {
    state.newBelow = false;
    $("#jump-latest").hidden = true;
  }
});

$("#jump-latest").addEventListener("click", () => {
  scrollToBottom();
  composer.focus();
});

$("#signout").addEventListener("click", signOut);

$("#notify-enable").addEventListener("click", async () => {
  await Notification.requestPermission();
  render();
});

const filter = $("#directory-filter");
filter.addEventListener("input", renderDirectory);
filter.addEventListener("focus", refreshDirectory);

// Escape: clears the room filter there; anywhere else, back to writing.
document.addEventListener("keydown", (event) => {
  if (event.key !== "Escape" || !state.me) return;
  if (document.activeElement === filter && filter.value) {
    filter.value = "";
    renderDirectory();
  } else {
    composer.focus();
  }
});

setInterval(() => {
  if (!document.hidden) refreshDirectory();
}, DIRECTORY_EVERY_MS);

document.addEventListener("visibilitychange", () => {
  if (!document.hidden && state.current) {
    const room = conversation(state.current);
    room.unread = 0;
    markRead(room);
    refreshDirectory();
    render();
  }
});

const params = new URLSearchParams(location.search);
const session = remembered();
const name = params.has("name") ? params.get("name") : session?.name;
const restoring = session !== null && session.name === name;
if (restoring) {
  // Coming back (a reload, a new visit): the same rooms, the same room
  // open, and what was not acknowledged yet.
  const rooms = Array.isArray(session.rooms) ? session.rooms.filter((room) => typeof room === "string") : [];
  for (const room of rooms) conversation(room).wanted = true;
  if (rooms.includes(session.current)) state.current = session.current;
  for (const item of Array.isArray(session.pending) ? session.pending : []) {
    if (!rooms.includes(item?.room) || typeof item.text !== "string" || typeof item.key !== "string") continue;
    const pending = { ref: `say-${state.nextRef++}`, key: item.key, text: item.text, state: "pending", sent: false };
    conversation(item.room).pending.push(pending);
  }
}
state.linkRoom = params.get("room");
if (name) {
  state.restoring = restoring;
  $('[data-testid="signin-name"]').value = name;
  const token = params.get("token") ?? (restoring ? session.token ?? "" : "");
  signIn(name, token);
}

// Signed out in another tab: this one signs out too.
window.addEventListener("storage", (event) => {
  if (event.key === "walkie.session" && event.newValue === null && state.me) signOut();
});

// For tests and the curious: the live connection (`walkieDebug.socket.close()`
// simulates a dropped network).
window.walkieDebug = {
  get socket() {
    return state.socket;
  },
  /** Drops the connection and stays offline for `ms` (then reconnects). */
  offline(ms) {
    state.offlineUntil = Date.now() + ms;
    state.socket?.close();
  },
  /** Ends `offline` early: reconnects now if the connection is down. */
  online() {
    state.offlineUntil = 0;
    if (state.socket?.readyState === WebSocket.CLOSED) connectLater(0);
  },
};
