// How a message's text and time are shown: links, days. Pure functions of
// their arguments, so the browser tests can call them directly.

// An http(s) URL: up to the next white space or character that cannot
// end a URL in running text.
const URL_PATTERN = /\bhttps?:\/\/[^\s<>"'`]+/gi;

/** `url` without the punctuation that ends the sentence around it: a
 * trailing `.`, `,`, `!`, `?`, `;`, `:`, and a `)` with no `(` to close.
 * One pass from each end: a hostile text costs its length, no more. */
function trimmed(url) {
  let open = 0;
  let close = 0;
  for (const char of url) {
    if (char === "(") open += 1;
    else if (char === ")") close += 1;
  }
  let end = url.length;
  while (end > 0) {
    const char = url[end - 1];
    if (".,!?;:".includes(char)) end -= 1;
    else if (char === ")" && close > open) {
      end -= 1;
      close -= 1;
    } else break;
  }
  return url.slice(0, end);
}

/** The nodes that show `text`: text nodes, and an `<a>` for each http(s)
 * URL in it (opening in a new tab, no referrer, no access to this page).
 * Nothing else of the text becomes markup. */
export function linkified(text) {
  const nodes = [];
  let from = 0;
  for (const match of text.matchAll(URL_PATTERN)) {
    const url = trimmed(match[0]);
    let parsed = null;
    try {
      parsed = new URL(url);
    } catch {
      continue; // not a URL after all: stays text
    }
    if (parsed.protocol !== "http:" && parsed.protocol !== "https:") continue;
    if (match.index > from) nodes.push(document.createTextNode(text.slice(from, match.index)));
    const link = document.createElement("a");
    link.href = parsed.href;
    link.textContent = url;
    link.target = "_blank";
    link.rel = "noopener noreferrer";
    link.dataset.testid = "message-link";
    nodes.push(link);
    from = match.index + url.length;
  }
  if (from < text.length) nodes.push(document.createTextNode(text.slice(from)));
  return nodes;
}

function startOfDay(date) {
  return new Date(date.getFullYear(), date.getMonth(), date.getDate());
}

/** The local calendar day of `date`, as a key two dates share when they
 * fall on the same day. */
export function dayKey(date) {
  return startOfDay(date).getTime();
}

/** The label of `date`'s day, seen on `now`: "Today", "Yesterday", or the
 * date ("Monday, 30 November 2026"; the year only when not this year). */
export function dayLabel(date, now = new Date()) {
  const days = Math.round((startOfDay(now) - startOfDay(date)) / 86400000);
  if (days === 0) return "Today";
  if (days === 1) return "Yesterday";
  const options = { weekday: "long", month: "long", day: "numeric" };
  if (date.getFullYear() !== now.getFullYear()) options.year = "numeric";
  return date.toLocaleDateString([], options);
}
