// nymchat web: the page. One more face of the engine, speaking its JSON-RPC API
// (docs/API.md) over the websocket /api. State lives in the engine: a reload asks again.
// Everything the network or a person wrote is set as text (textContent, createElement):
// never as HTML.
//
// data-test hooks (the browser tests use only these):
//   banner-connection                 "connection to nymchat web lost, retrying"
//     (banner-connection-hint inside: after a few failures, open the new link)
//   statusbar, status-node, status-nym   the node / the nym-client unreachable
//   setup, setup-loading, setup-error
//   setup-new: setup-passphrase, setup-passphrase-again, setup-create
//   setup-locked: setup-unlock-passphrase, setup-unlock
//   setup-unregistered: setup-username, setup-node, setup-nym, setup-register
//   main (data-view = list | conversation | details), me, notify
//   new-conversation-form, new-conversation, new-conversation-go, new-group-open,
//     new-group-form, new-group-name, new-group-members, new-group-go, sidebar-error,
//     sidebar-note (a group joined or left by another's doing),
//     conversations, no-conversations
//   conversation (data-id = "bob", "bob@work", "#team"; data-kind = contact | group)
//     with unread (its count), verified-mark, key-changed-mark, direct-mark inside
//   no-conversation, conversation-title, conversation-verified, back, details-open
//   messages; message (data-id, data-direction = in | out, data-status = queued |
//     accepted | delivered | failed | received) with message-sender, message-text,
//     message-status inside; notice (a line of what happened, not a message)
//   composer-form, composer, send, conversation-error, conversation-pane
//   banner-key-changed, key-changed-name, new-safety-number, trust-form, trust-number,
//     trust
//   banner-group (a member's key mismatch: sending blocked)
//   details, details-back, details-error, no-details
//   details-contact: details-name, safety-number, verified-state, verify,
//     direct-state, direct-invite, direct-accept, direct-decline, direct-end
//   details-group: group-members, group-member (data-name, data-trust) with
//     group-remove inside, group-add-form, group-add-name, group-add, group-leave

import { el, hook, say, show, store, stored } from "./dom.js";
import { Rpc } from "./rpc.js";
import { Setup } from "./setup.js";

const METHOD_NOT_FOUND = -32601;
const EXIT_KEY_CHANGED = 5;
const HISTORY = 200; // messages shown of a conversation
const STATUS_RANK = { queued: 0, accepted: 1, delivered: 2, failed: 3 };
const STATUS_WORDS = {
  queued: "queued",
  accepted: "sent · accepted by the node",
  delivered: "delivered",
  failed: "failed",
};
const DIRECT_STATES = {
  null: "Off: your messages go through the node.",
  inviting: "You invited them; waiting for their answer.",
  invited: "They invite you to direct mode: accepting shows your nym address to them only.",
  accepted: "On, the direct path not confirmed yet.",
  on: "On: your messages no longer pass through the node.",
};
const TRUST_WORDS = {
  you: "you",
  verified: "verified",
  pinned: "contact, not verified",
  unconfirmed: "not a contact",
  mismatch: "KEY MISMATCH: not the key you pinned",
};

const rpc = new Rpc({ open: connected, lost: connectionLost, event: onEvent });
const setup = new Setup(rpc);

// --- what the page holds ---------------------------------------------------------------

const state = {
  me: null,
  serving: false, // the main screen is up (the engine serves this connection)
  conversations: new Map(), // name as shown ("bob", "#team") -> conversation
  open: stored("open", null), // the conversation shown
  unread: new Map(Object.entries(stored("unread", {}))),
  rows: new Map(), // message id -> its row, in the open conversation
  statuses: new Map(), // message id -> the furthest status heard of
  drafts: new Map(), // conversation -> what was typed (in memory: no text in the tab's storage)
};

function setView(view) {
  hook("main").dataset.view = view;
  store("view", view);
}

function conversationOf(name) {
  return state.conversations.get(name);
}

function groupKey(name) {
  return name.startsWith("#") ? name : `#${name}`;
}

/** A contact's direct-mode state, from the words `contacts.list` gives. */
function directState(words) {
  if (!words) return null;
  if (words === "inviting" || words.includes("invitation sent")) return "inviting";
  if (words === "invited" || words.includes("invited you")) return "invited";
  if (words === "accepted" || words.includes("not confirmed")) return "accepted";
  return "on";
}

// --- connecting ---------------------------------------------------------------------------

let failures = 0; // connections lost or refused in a row

function connectionLost() {
  failures += 1;
  show(hook("banner-connection"), true);
  // A `nymchat web` started again has another address and cookie: this tab cannot follow.
  show(hook("banner-connection-hint"), failures >= 4);
}

async function connected() {
  failures = 0;
  show(hook("banner-connection"), false);
  let stage;
  try {
    stage = await rpc.call("setup.state");
  } catch (e) {
    if (e.code !== METHOD_NOT_FOUND) return;
    stage = { stage: "ready" };
  }
  if (stage.stage !== "ready") {
    show(hook("main"), false);
    setup.show(stage);
    return;
  }
  try {
    await startMain();
  } catch (e) {
    if (e.code === METHOD_NOT_FOUND) setTimeout(() => rpc.restart(), 300); // setup still serves
  }
}

async function startMain() {
  await rpc.call("subscribe");
  const status = await rpc.call("status");
  state.me = status.username;
  state.serving = true;
  show(hook("setup"), false);
  show(hook("main"), true);
  hook("me").textContent = state.me ?? "";
  nodeStatus(status.node_answers === false ? "does not answer" : null);
  showNotifyButton();
  await refreshLists();
  if (state.open !== null && conversationOf(state.open)) {
    const view = stored("view", "conversation"); // (opening it shows the conversation)
    await openConversation(state.open, false);
    setView(view);
  } else {
    state.open = null;
    setView("list");
    hook("new-conversation").focus();
  }
}

// --- the conversation list ----------------------------------------------------------

async function refreshLists() {
  const [contacts, groups] = await Promise.all([
    rpc.call("contacts.list"),
    rpc.call("group.list"),
  ]);
  const conversations = new Map();
  for (const c of contacts.contacts) {
    if (!c.contact) continue; // a blocked name that is no contact
    conversations.set(c.username, {
      name: c.username,
      id: c.id ?? c.username,
      kind: "contact",
      verified: c.verified,
      keyChanged: c.key_changed,
      direct: directState(c.direct),
      blocked: c.blocked,
    });
  }
  for (const g of groups.groups) {
    const name = groupKey(g.name);
    conversations.set(name, {
      name,
      id: name,
      kind: "group",
      mismatch: g.members.some((m) => m.trust === "mismatch"),
    });
  }
  state.conversations = conversations;
  renderList();
  if (state.open !== null && !conversations.has(state.open)) closeConversation();
  else if (state.open !== null) renderHeader();
}

function renderList() {
  const list = hook("conversations");
  const items = [...state.conversations.values()].sort(
    (a, b) => a.kind.localeCompare(b.kind) || a.name.localeCompare(b.name),
  );
  list.replaceChildren(
    ...items.map((c) => {
      const unread = state.unread.get(c.name) ?? 0;
      const button = el(
        "button",
        {
          type: "button",
          "data-test": "conversation",
          "data-id": c.name,
          "data-kind": c.kind,
          "aria-current": c.name === state.open ? "true" : null,
        },
        el("span", { class: "name", text: c.name }),
      );
      if (c.verified && !c.keyChanged) {
        button.append(
          el("span", { class: "mark ok", "data-test": "verified-mark", title: "verified" }, "✔"),
        );
      }
      if (c.keyChanged || c.mismatch) {
        button.append(
          el("span", { class: "mark bad", "data-test": "key-changed-mark", text: "key changed" }),
        );
      }
      if (c.direct === "on") {
        button.append(el("span", { class: "mark", "data-test": "direct-mark", text: "direct" }));
      }
      if (c.blocked) button.append(el("span", { class: "mark", text: "blocked" }));
      if (unread > 0) {
        const count = { class: "unread", "data-test": "unread", "aria-label": `${unread} unread` };
        button.append(el("span", { ...count, text: String(unread) }));
      }
      button.addEventListener("click", () => openConversation(c.name, true));
      return el("li", {}, button);
    }),
  );
  show(hook("no-conversations"), items.length === 0);
  const unread = items.reduce((sum, c) => sum + (state.unread.get(c.name) ?? 0), 0);
  const title = state.me ? `${state.me} · nymchat` : "nymchat";
  document.title = unread > 0 ? `(${unread}) ${title}` : title; // (names no one)
}

function countUnread(name, delta) {
  state.unread.set(name, delta === null ? 0 : (state.unread.get(name) ?? 0) + delta);
  store("unread", Object.fromEntries(state.unread));
  renderList();
}

hook("new-conversation-form").addEventListener("submit", async (e) => {
  e.preventDefault();
  say("sidebar-error", null);
  const field = hook("new-conversation");
  const button = hook("new-conversation-go");
  button.disabled = true;
  try {
    const found = await rpc.call("lookup", { name: field.value.trim() });
    field.value = "";
    await refreshLists();
    await openConversation(found.contact.username, true);
  } catch (error) {
    say("sidebar-error", error.message);
  } finally {
    button.disabled = false;
  }
});

hook("new-group-form").addEventListener("submit", async (e) => {
  e.preventDefault();
  say("sidebar-error", null);
  const members = hook("new-group-members").value.split(/[\s,]+/).filter(Boolean);
  const button = hook("new-group-go");
  button.disabled = true;
  try {
    const name = hook("new-group-name").value.trim();
    const made = await rpc.call("group.create", { name, members });
    hook("new-group-name").value = "";
    hook("new-group-members").value = "";
    hook("new-group-form").closest("details").open = false;
    await refreshLists();
    await openConversation(groupKey(made.group.name), true);
  } catch (error) {
    say("sidebar-error", error.message);
  } finally {
    button.disabled = false;
  }
});

// --- a conversation ---------------------------------------------------------------------

function closeConversation() {
  state.open = null;
  store("open", null);
  state.rows.clear();
  show(hook("no-conversation"), true);
  show(document.querySelector(".conversation-inner"), false);
  renderDetails();
  setView("list");
  renderList();
}

async function openConversation(name, focus) {
  const conversation = conversationOf(name);
  if (!conversation) return;
  state.open = name;
  store("open", name);
  state.rows.clear();
  if (!document.hidden) countUnread(name, null);
  say("sidebar-note", null);
  show(hook("no-conversation"), false);
  show(document.querySelector(".conversation-inner"), true);
  hook("messages").replaceChildren();
  say("conversation-error", null);
  hook("composer").value = state.drafts.get(name) ?? "";
  renderHeader();
  setView("conversation");
  if (focus) hook("composer").focus();
  const details = renderDetails();
  try {
    const history = await rpc.call("history", { name: conversation.id, last: HISTORY });
    if (state.open !== name) return;
    for (const m of history.messages) addMessage(fromHistory(m));
    scrollToEnd();
  } catch (error) {
    say("conversation-error", error.message);
  }
  await details;
}

/** The title, marks, key-change banner and composer of the open conversation. */
function renderHeader() {
  const c = conversationOf(state.open);
  if (!c) return;
  hook("conversation-title").textContent = c.name;
  show(hook("conversation-verified"), Boolean(c.verified && !c.keyChanged));
  const banner = hook("banner-key-changed");
  show(banner, Boolean(c.keyChanged));
  if (c.keyChanged) {
    hook("key-changed-name").textContent = c.name;
    showNewKey(c);
  }
  const group = hook("banner-group");
  show(group, Boolean(c.mismatch));
  group.textContent = c.mismatch
    ? "A member's key in this group is not the one you pinned for them: sending here is " +
      "blocked. See the members in the details."
    : "";
  const blocked = Boolean(c.keyChanged || c.mismatch);
  hook("composer").disabled = blocked;
  hook("send").disabled = blocked;
  renderList();
}

async function showNewKey(c) {
  try {
    const shown = await rpc.call("contacts.show", { name: c.id });
    if (state.open === c.name) {
      hook("new-safety-number").textContent = shown.contact.new_key?.safety_number ?? "";
    }
  } catch (error) {
    say("conversation-error", error.message);
  }
}

function fromHistory(m) {
  return {
    id: m.id,
    direction: m.direction,
    sender: m.direction === "in" ? (m.author ?? m.from) : state.me,
    text: m.text,
    status: m.direction === "in" ? "received" : m.status,
    reason: m.reason ?? null,
    time: m.time_ms,
  };
}

function timeOf(ms) {
  const when = new Date(ms);
  const today = new Date().toDateString() === when.toDateString();
  return today
    ? when.toLocaleTimeString([], { hour: "2-digit", minute: "2-digit" })
    : when.toLocaleString([], { dateStyle: "short", timeStyle: "short" });
}

function addMessage(m) {
  if (state.rows.has(m.id)) return;
  const heard = state.statuses.get(m.id);
  if (m.direction === "out" && heard && STATUS_RANK[heard.status] > STATUS_RANK[m.status]) {
    Object.assign(m, heard);
  }
  const row = el(
    "li",
    {
      class: `message ${m.direction}`,
      "data-test": "message",
      "data-id": m.id,
      "data-direction": m.direction,
    },
    el(
      "div",
      { class: "meta" },
      el("span", { class: "sender", "data-test": "message-sender", text: m.sender ?? "" }),
      el("time", { datetime: new Date(m.time).toISOString(), text: timeOf(m.time) }),
    ),
    el("div", { class: "text", "data-test": "message-text", text: m.text }),
  );
  if (m.direction === "out") {
    row.append(el("div", { class: "status", "data-test": "message-status" }));
  }
  state.rows.set(m.id, row);
  setStatus(row, m.status, m.reason);
  hook("messages").append(row);
}

function setStatus(row, status, reason) {
  row.dataset.status = status;
  const words = hook("message-status", row);
  if (words) {
    words.textContent =
      status === "failed" ? `failed: ${reason ?? "not sent"}` : STATUS_WORDS[status];
  }
}

/** A message of ours moved on: its row (if shown) follows, never backwards. */
function statusChanged(id, status, reason) {
  const heard = state.statuses.get(id);
  if (heard && (heard.status === "delivered" || STATUS_RANK[heard.status] > STATUS_RANK[status])) {
    return;
  }
  state.statuses.set(id, { status, reason });
  const row = state.rows.get(id);
  if (row) setStatus(row, status, reason);
}

function notice(name, text) {
  if (state.open !== name) return;
  hook("messages").append(el("li", { class: "notice", "data-test": "notice", text }));
  scrollToEnd();
}

function scrollToEnd() {
  const list = hook("messages");
  list.scrollTop = list.scrollHeight;
}

async function send() {
  const c = conversationOf(state.open);
  const composer = hook("composer");
  const text = composer.value;
  if (!c || composer.disabled || !text.trim()) return;
  say("conversation-error", null);
  composer.value = "";
  state.drafts.delete(c.name);
  try {
    const sent = await rpc.call("send", { to: c.id, text, wait: false });
    if (state.open === c.name) {
      const { message_id: id, status } = sent;
      addMessage({ id, direction: "out", sender: state.me, text, status, time: Date.now() });
      scrollToEnd();
    }
  } catch (error) {
    if (!composer.value) composer.value = text;
    say("conversation-error", error.message);
    if (error.exit === EXIT_KEY_CHANGED) await refreshLists();
  }
}

hook("composer-form").addEventListener("submit", (e) => {
  e.preventDefault();
  send();
});

hook("composer").addEventListener("keydown", (e) => {
  if (e.key === "Enter" && !e.shiftKey && !e.isComposing) {
    e.preventDefault();
    send();
  }
});

hook("composer").addEventListener("input", () => {
  if (state.open !== null) state.drafts.set(state.open, hook("composer").value);
});

hook("trust-form").addEventListener("submit", async (e) => {
  e.preventDefault();
  const c = conversationOf(state.open);
  if (!c) return;
  const field = hook("trust-number");
  try {
    await rpc.call("contacts.trust", { name: c.id, number: field.value.trim() });
    field.value = "";
    say("conversation-error", null);
    await refreshLists();
    await renderDetails();
    hook("composer").focus();
  } catch (error) {
    say("conversation-error", error.message);
  }
});

// --- details: safety number, direct mode, group members --------------------------------

async function renderDetails() {
  const c = conversationOf(state.open);
  say("details-error", null);
  show(hook("no-details"), !c);
  show(hook("details-contact"), c?.kind === "contact");
  show(hook("details-group"), c?.kind === "group");
  if (!c) return;
  try {
    if (c.kind === "contact") await contactDetails(c);
    else await groupDetails(c);
  } catch (error) {
    say("details-error", error.message);
  }
}

async function contactDetails(c) {
  hook("details-name").textContent = c.name;
  const shown = (await rpc.call("contacts.show", { name: c.id })).contact;
  if (state.open !== c.name) return;
  hook("safety-number").textContent = shown.safety_number;
  hook("verified-state").textContent = shown.key_changed
    ? "Their key changed: this is the number of the key you had. The new one is in the " +
      "conversation."
    : shown.verified
      ? "✔ verified: you compared this number with them."
      : "Not verified yet.";
  show(hook("verify"), !shown.verified && !shown.key_changed);
  hook("direct-state").textContent = DIRECT_STATES[c.direct];
  show(hook("direct-invite"), c.direct === null);
  show(hook("direct-accept"), c.direct === "invited");
  show(hook("direct-decline"), c.direct === "invited");
  show(hook("direct-end"), c.direct === "inviting" || c.direct === "accepted" || c.direct === "on");
}

async function groupDetails(c) {
  const group = (await rpc.call("group.show", { name: c.id })).group;
  if (state.open !== c.name) return;
  hook("group-members").replaceChildren(
    ...group.members.map((m) => {
      const name = m.name ?? `(unnamed ${m.identity.slice(0, 8)})`;
      const row = el(
        "li",
        {
          "data-test": "group-member",
          "data-name": name,
          "data-trust": m.trust,
          class: `trust-${m.trust}`,
        },
        el("span", { class: "name", text: name }),
        el("span", { class: "trust", text: TRUST_WORDS[m.trust] ?? m.trust }),
      );
      if (m.trust !== "you" && m.name) {
        const remove = el("button", {
          type: "button",
          class: "quiet",
          "data-test": "group-remove",
          "aria-label": `remove ${name}`,
          text: "remove",
        });
        remove.addEventListener("click", () => groupChange("group.remove", c, m.name));
        row.append(remove);
      }
      return row;
    }),
  );
}

/** A change asked from the details: the lists and the details are asked again after;
 * false (the error shown) if it failed. */
async function change(method, params) {
  say("details-error", null);
  try {
    await rpc.call(method, params);
    await refreshLists();
    await renderDetails();
    return true;
  } catch (error) {
    say("details-error", error.message);
    return false;
  }
}

function groupChange(method, c, member) {
  return change(method, { name: c.id, members: [member] });
}

hook("group-add-form").addEventListener("submit", async (e) => {
  e.preventDefault();
  const c = conversationOf(state.open);
  const field = hook("group-add-name");
  if (c && field.value.trim() && (await groupChange("group.add", c, field.value.trim()))) {
    field.value = "";
  }
});

const leaving = { group: null, timer: null }; // the group whose leave button asks again

function leaveAsked(group) {
  clearTimeout(leaving.timer);
  leaving.group = group;
  hook("group-leave").textContent = group
    ? "click again to leave: you will not read it any more"
    : "leave the group";
  if (group) leaving.timer = setTimeout(() => leaveAsked(null), 5000);
}

hook("group-leave").addEventListener("click", () => {
  const c = conversationOf(state.open);
  if (!c) return;
  if (leaving.group !== c.name) {
    leaveAsked(c.name);
    return;
  }
  leaveAsked(null);
  change("group.leave", { name: c.id });
});

hook("verify").addEventListener("click", () => {
  const c = conversationOf(state.open);
  if (c) change("contacts.verify", { name: c.id });
});

for (const action of ["invite", "accept", "decline", "end"]) {
  hook(`direct-${action}`).addEventListener("click", () => {
    const c = conversationOf(state.open);
    if (c) change(`direct.${action}`, { name: c.id });
  });
}

// --- events --------------------------------------------------------------------------------

const DIRECT_NOTICES = {
  invited: (who) => `${who} invites you to direct mode (see the details to accept or decline)`,
  inviting: (who) => `you invited ${who} to direct mode`,
  accepted: (who) => `direct mode accepted; checking the direct path to ${who}`,
  on: () => "direct mode is on: messages no longer pass through the node",
  ended: () => "direct mode ended: messages go through the node again",
  declined: (who) => `${who} declined direct mode`,
  failed: (_, reason) => `direct mode failed${reason ? `: ${reason}` : ""}; back through the node`,
};

function onEvent(event) {
  if (!state.serving) return;
  // What an event asks again of the engine is asked again after a lost connection anyway.
  Promise.resolve(dispatch(event)).catch(() => {});
}

function dispatch(event) {
  switch (event.type) {
    case "message_received":
      return messageReceived(event);
    case "status_changed":
      return statusChanged(event.message_id, event.status, event.reason);
    case "receipt_received":
      return statusChanged(event.message_id, "delivered", null);
    case "outbox_not_sent":
      if (event.for_good) statusChanged(event.message_id, "failed", event.reason);
      return;
    case "key_changed":
    case "contact_moved":
      return refreshLists().then(renderDetails);
    case "direct_changed":
      notice(
        event.username,
        DIRECT_NOTICES[event.change]?.(event.username, event.reason) ??
          `direct mode: ${event.change}`,
      );
      return refreshLists().then(renderDetails);
    case "group_joined":
    case "group_removed":
      say("sidebar-note", `${groupKey(event.group)}: ${groupNotice(event)}`);
    // falls through: the group's conversation says it too (if open)
    case "group_changed":
    case "group_split":
      notice(groupKey(event.group), groupNotice(event));
      return refreshLists().then(renderDetails);
    case "session_reset":
      return notice(event.username, "the session broke; the next message starts a new one");
    case "message_unreadable":
      return notice(
        event.sender,
        `a message from ${event.sender} could not be read: ${event.reason}`,
      );
    case "node_unreachable":
      return nodeStatus(`does not answer (${event.reason})`);
    case "node_reachable":
      return nodeStatus(null);
    case "nym_client_lost":
      return nymStatus(true);
    case "nym_client_back":
      return nymStatus(false);
    default:
      return undefined; // new types come: ignored
  }
}

function groupNotice(event) {
  switch (event.type) {
    case "group_joined":
      return `${event.by ?? "someone"} added you to the group`;
    case "group_removed":
      return "you were removed from the group: nothing said here reaches you any more";
    case "group_split":
      return "a change in the group could not be applied: the group may have split";
    default: {
      const said = [];
      if (event.added?.length) said.push(`added ${event.added.join(", ")}`);
      if (event.removed?.length) said.push(`removed ${event.removed.join(", ")}`);
      if (!said.length) return "the group's keys moved on";
      return `${event.by ?? "someone"} ${said.join("; ")}`;
    }
  }
}

async function messageReceived(event) {
  const name = event.group ? groupKey(event.group) : event.sender;
  const seen = state.open === name && !document.hidden;
  if (state.open === name) {
    addMessage({
      id: event.message_id,
      direction: "in",
      sender: event.sender,
      text: event.text,
      status: "received",
      time: event.sent_ms,
    });
    scrollToEnd();
  }
  if (!seen) {
    countUnread(name, 1);
    notifyOf(event.sender);
  }
  if (!conversationOf(name)) await refreshLists(); // a new person, or a group just joined
}

document.addEventListener("visibilitychange", () => {
  if (!document.hidden && state.open !== null) countUnread(state.open, null);
});

// --- the status bar and notifications ---------------------------------------------------

function nodeStatus(trouble) {
  const line = hook("status-node");
  line.textContent = trouble
    ? `The node ${trouble}: messages wait here and leave when it is back.`
    : "";
  show(line, Boolean(trouble));
}

function nymStatus(lost) {
  const line = hook("status-nym");
  line.textContent = lost
    ? "The nym-client is unreachable: nothing is sent or received until it is back."
    : "";
  show(line, lost);
}

function showNotifyButton() {
  show(hook("notify"), "Notification" in window && Notification.permission === "default");
}

hook("notify").addEventListener("click", async () => {
  await Notification.requestPermission();
  showNotifyButton();
});

function notifyOf(sender) {
  if (!document.hidden || !("Notification" in window) || Notification.permission !== "granted") {
    return;
  }
  try {
    const body = `new message from ${sender}`; // (never the text)
    new Notification("nymchat", { body, tag: "nymchat", icon: "/icon.svg" });
  } catch {
    // (a browser that notifies only from a service worker: nothing to show)
  }
}

// --- moving about: narrow layout and the keyboard -----------------------------------

hook("back").addEventListener("click", () => goBack());
hook("details-back").addEventListener("click", () => goBack());
hook("details-open").addEventListener("click", () => {
  setView("details");
  hook("details-back").focus();
});

function goBack() {
  const view = hook("main").dataset.view;
  if (view === "details") {
    setView("conversation");
    hook("details-open").focus();
  } else if (view === "conversation") {
    setView("list");
    const open = [...document.querySelectorAll('[data-test="conversation"]')].find(
      (b) => b.dataset.id === state.open,
    );
    (open ?? hook("new-conversation")).focus();
  }
}

document.addEventListener("keydown", (e) => {
  if (e.key === "Escape" && state.serving && !e.defaultPrevented) {
    e.preventDefault();
    goBack();
  }
});

rpc.connect();
