// Drawing the page from the state: the room list, the directory, the open
// conversation, the header and banner. Every user-supplied string goes in
// with textContent (links are made as elements: text.js). What a click
// does is the app's: bindActions hands the view those functions.

import { dayKey, dayLabel, linkified } from "./text.js";
import { $, conversation, conversationWith, mentionsMe, otherUser, state } from "./state.js";

// Messages of one sender closer together than this share one header.
const GROUP_WITHIN_MS = 5 * 60 * 1000;
// Closer than this to the bottom of the list counts as reading the newest.
const AT_BOTTOM_PX = 40;

/** What the view's buttons and items do: `openRoom(name)`,
 * `joinRoom(name)`, `transmit(room, item)`. */
let actions = {};

export function bindActions(app) {
  actions = app;
}

export function setConnection(value) {
  const element = $('[data-testid="connection-state"]');
  element.dataset.state = value;
  element.textContent = value;
}


function element(tag, attributes = {}, text) {
  const node = document.createElement(tag);
  for (const [key, value] of Object.entries(attributes)) {
    if (value !== undefined && value !== null) node.setAttribute(key, value);
  }
  if (text !== undefined) node.textContent = text;
  return node;
}

function title(name) {
  return name.startsWith("@") ? otherUser(name) : name;
}

/** Replaces `list`'s items by `items`, keeping the keyboard focus on the
 * item of the same room or name: lists are drawn anew on every frame. */
function redraw(list, items) {
  const focused = list.contains(document.activeElement) ? document.activeElement.dataset : null;
  list.replaceChildren(...items);
  const attribute = focused?.room !== undefined ? "room" : "name";
  const key = focused?.[attribute];
  if (key === undefined) return;
  [...list.children].find((item) => item.dataset[attribute] === key)?.focus({ preventScroll: true });
}

/** A list item that does `action` on a click or Enter. */
function actionable(item, action) {
  item.onclick = action;
  item.onkeydown = (event) => { if (event.key === "Enter") action(); };
  return item;
}

function renderRooms() {
  const items = [];
  for (const room of state.rooms.values()) {
    const item = element("li", {
      "data-testid": "room-item",
      "data-room": room.name,
      "aria-current": room.name === state.current ? "true" : undefined,
      tabindex: "0",
      role: "button",
    });
    item.append(element("span", { class: "room-name" }, room.direct ? `@ ${title(room.name)}` : `# ${room.name}`));
    if (!room.direct) item.append(element("span", { "data-testid": "room-count", class: "count" }, String(room.members.length)));
    if (room.unread) item.append(element("span", { "data-testid": "unread-badge", class: "badge" }, String(room.unread)));
    if (room.mentions) item.append(element("span", { "data-testid": "mention-badge", class: "badge mention" }, String(room.mentions)));
    items.push(actionable(item, () => actions.openRoom(room.name)));
  }
  redraw($("#room-list"), items);
}

function renderMessage(message, previous, stateName, pendingItem) {
  const mention = !message.room?.startsWith("@") && mentionsMe(message.text);
  const node = element("li", {
    "data-testid": "message",
    "data-id": message.id ?? "",
    "data-from": message.from,
    "data-state": stateName,
    "data-mention": mention ? "true" : undefined,
    class: "message",
  });
  const when = message.ts ? new Date(message.ts) : new Date();
  if (groupedWith(message, previous)) node.classList.add("grouped");
  const head = element("div", { class: "head" });
  head.append(element("span", { class: "from" }, message.from));
  const time = element("time", { "data-testid": "message-time", datetime: message.ts ?? "", title: message.ts ?? "" },
    when.toLocaleTimeString([], { hour: "2-digit", minute: "2-digit" }));
  head.append(time);
  const text = element("div", { "data-testid": "message-text", class: "text" });
  text.append(...linkified(message.text));
  node.append(head, text);
  if (stateName === "failed") {
    const retry = element("button", { "data-testid": "message-retry", type: "button" }, "Retry");
    retry.onclick = () => { actions.transmit(conversation(state.current), pendingItem); render(); };
    node.append(retry);
  }
  return node;
}

/** Whether `message` continues `previous`'s run: same sender, within
 * GROUP_WITHIN_MS (it then shows no header of its own). */
function groupedWith(message, previous) {
  return Boolean(previous && previous.from === message.from && message.ts && previous.ts &&
    new Date(message.ts) - new Date(previous.ts) < GROUP_WITHIN_MS);
}

/** A stored message's node. Stored messages never change, and the list is
 * drawn anew on every event: each is drawn once per room and kept (a
 * second time only if it starts or ends a run). */
function storedNode(room, message, previous) {
  const grouped = groupedWith(message, previous);
  room.nodes ??= new Map();
  const kept = room.nodes.get(message.id);
  if (kept && kept.grouped === grouped) return kept.node;
  const node = renderMessage(message, previous, "sent");
  room.nodes.set(message.id, { grouped, node });
  return node;
}

/** A separator line in the message list (a day, or where unread begins). */
function separator(testid, className, text) {
  return element("li", { "data-testid": testid, class: className, role: "separator" }, text);
}

function renderConversation() {
  const room = state.current && state.rooms.get(state.current);
  $("#room-title").textContent = room ? title(room.name) : "No room open";
  $("#room-leave").hidden = !room || room.direct;
  $("#history-loading").hidden = !(room && room.olderRef);
  const list = $("#message-list");
  const wasAtBottom = atBottom();
  list.replaceChildren();
  $("#jump-latest").hidden = !(room && state.newBelow);
  if (!room) return;
  let previous = null;
  let divider = null;
  const now = new Date();
  for (const message of room.messages) {
    const day = new Date(message.ts);
    if (!previous || dayKey(day) !== dayKey(new Date(previous.ts))) {
      list.append(separator("day-separator", "day", dayLabel(day, now)));
      previous = null; // a new day starts a new group
    }
    const unread = room.dividerAfter !== null && message.id > room.dividerAfter && message.from !== state.me;
    if (unread && !divider) {
      divider = separator("unread-divider", "unread-divider", "New messages");
      list.append(divider);
      previous = null;
    }
    list.append(storedNode(room, message, previous));
    previous = message;
  }
  for (const item of room.pending) {
    list.append(renderMessage({ from: state.me, text: item.text, room: room.name }, null, item.state, item));
  }
  if (room.scrollToDivider && divider) {
    room.scrollToDivider = false;
    divider.scrollIntoView({ block: "start" });
  } else if (wasAtBottom) {
    scrollToBottom();
  }
  const members = (room.direct ? [] : room.members).map((name) => {
    const member = element("li", { "data-testid": "member", "data-name": name, tabindex: "0", role: "button" }, name);
    return actionable(member, () => { if (name !== state.me) actions.openRoom(conversationWith(name)); });
  });
  redraw($("#member-list"), members);
  renderTyping();
}

/** Who types in the open conversation. */
export function renderTyping() {
  const typing = [...(state.current && state.typing.get(state.current)?.keys() || [])];
  $("#typing").textContent = typing.length ? `${typing.join(", ")} ${typing.length > 1 ? "are" : "is"} typing…` : "";
}

export function renderDirectory() {
  const filter = $("#directory-filter").value.trim().toLowerCase();
  const items = [];
  for (const room of state.directory) {
    if (filter && !room.name.toLowerCase().includes(filter)) continue;
    const item = element("li", {
      "data-testid": "directory-item",
      "data-room": room.name,
      "data-members": String(room.members),
      tabindex: "0",
      role: "button",
      "aria-label": `Join ${room.name}, ${room.members} online`,
    });
    item.append(element("span", { class: "room-name" }, `# ${room.name}`));
    item.append(element("span", { class: "count" }, `${room.members} online`));
    items.push(actionable(item, () => actions.joinRoom(room.name)));
  }
  redraw($("#directory"), items);
}

/** What shows outside the conversation: the tab title's unread total, the
 * offline banner, the header's buttons. */
function renderChrome() {
  let unread = 0;
  let waiting = 0;
  for (const room of state.rooms.values()) {
    unread += room.unread;
    waiting += room.pending.filter((item) => item.state === "pending").length;
  }
  document.title = unread ? `(${unread}) walkie` : "walkie";
  const banner = $("#offline-banner");
  banner.hidden = state.welcomed || state.signedOut;
  const messages = waiting === 1 ? "1 message waits" : `${waiting} messages wait`;
  banner.textContent = `Connection lost: reconnecting… ${messages} to be sent.`;
  $("#signout").hidden = false;
  $("#notify-enable").hidden = !("Notification" in window) || Notification.permission !== "default";
}

export function render() {
  if (!state.me) return;
  renderChrome();
  renderRooms();
  renderDirectory();
  renderConversation();
}

/** Whether the message list shows its newest message. */
export function atBottom() {
  const list = $("#message-list");
  return list.scrollHeight - list.scrollTop - list.clientHeight < AT_BOTTOM_PX;
}

export function scrollToBottom() {
  const list = $("#message-list");
  list.scrollTop = list.scrollHeight;
  state.newBelow = false;
  $("#jump-latest").hidden = true;
}
