// The page's few helpers: the document (every text set as text, never as HTML) and the
// tab's storage (what a reload keeps: the open conversation and unread counts, never a text).

export function hook(name, root = document) {
  return root.querySelector(`[data-test="${name}"]`);
}

export function el(tag, attrs = {}, ...children) {
  const node = document.createElement(tag);
  for (const [key, value] of Object.entries(attrs)) {
    if (key === "text") node.textContent = value;
    else if (value !== null && value !== undefined) node.setAttribute(key, value);
  }
  node.append(...children);
  return node;
}

export function show(node, visible) {
  node.hidden = !visible;
}

/** An error line: `text` shown, or hidden when null. */
export function say(name, text) {
  const node = hook(name);
  node.textContent = text ?? "";
  show(node, text !== null && text !== undefined);
}

export function store(key, value) {
  sessionStorage.setItem(`nymchat.${key}`, JSON.stringify(value));
}

export function stored(key, otherwise) {
  try {
    return JSON.parse(sessionStorage.getItem(`nymchat.${key}`)) ?? otherwise;
  } catch {
    return otherwise;
  }
}
