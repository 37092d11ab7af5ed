// What the browser remembers between visits: the name, the token and the
// open rooms, until the user signs out. Storage may be unavailable (a
// private window, a full quota): the page then works without remembering.

const KEY = "walkie.session";

/** The remembered session, `{name, token, rooms, current}`, or null. */
export function remembered() {
  try {
    const session = JSON.parse(localStorage.getItem(KEY));
    return session && typeof session.name === "string" ? session : null;
  } catch {
    return null;
  }
}

export function remember(session) {
  try {
    localStorage.setItem(KEY, JSON.stringify(session));
  } catch {
    // not remembered: a reload asks to sign in again
  }
}

export function forget() {
  try {
    localStorage.removeItem(KEY);
  } catch {
    // nothing was remembered
  }
}
