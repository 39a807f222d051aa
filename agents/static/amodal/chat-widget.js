/**
 * amodal chat widget — a dependency-free ES module (no build step).
 *
 *   import { mountChatWidget } from "https://agent.example.com/widget/amodal/chat-widget.js";
 *   const chat = mountChatWidget(document.getElementById("chat"), {
 *     serverUrl: "https://agent.example.com",
 *     scopeId: "household-garcia",
 *     scopeContext: { household_id: "household-garcia" },
 *     getToken: async ({ forceRefresh }) => (await fetch("/my-app/agent-token")).text(),
 *   });
 *
 * It speaks the runtime's chat API (SPEC §3): POST /chat/stream with `scope_id` and `context` in the JSON
 * body and the token as `Authorization: Bearer` (never in a URL), read with fetch + ReadableStream;
 * POST /sessions/<id>/cancel; GET /sessions/history[/<id>]; POST /sessions/history/<id>/feedback (the thumbs
 * under each answer rate its last assistant message: the `done` event's `message_id`, or the history's ids).
 *
 * Classic pages (no modules) use chat-widget-loader.js: `AmodalChat.mount(element, options)`.
 */

export const VERSION = "0.1.0";

/**
 * The chat stream's events as the server publishes them: clients/typescript/events.d.ts, generated from
 * docs/schemas/events.schema.json. `tsc` checks this file against them (clients/typescript/tsconfig.json,
 * run by tests/widget/test_widget_types.py), so the widget and the contract cannot drift.
 * @typedef {import("../../../clients/typescript/events").ChatEvent} ChatEvent
 * @typedef {import("../../../clients/typescript/events").DoneEvent} DoneEvent
 * @typedef {import("../../../clients/typescript/events").ToolCallStartEvent} ToolCallStartEvent
 * @typedef {import("../../../clients/typescript/events").ToolCallResultEvent} ToolCallResultEvent
 * @typedef {import("../../../clients/typescript/events").ConfirmationRequiredEvent} ConfirmationRequiredEvent
 */

const STYLESHEET_ATTR = "data-amodal-chat-styles";
const DEFAULT_IDLE_TIMEOUT_MS = 45000; // the server sends `: keep-alive` every 15 s of silence
const STOP_GRACE_MS = 3000; // after POST /cancel, wait this long for `done` before aborting the fetch
const MAX_RESULT_DISPLAY_CHARS = 20000;
const APPROVAL_PATTERN = /^I (approve|deny) the action \(correlation: ([^)\s]+)\)\s*$/i;

let instanceCounter = 0;

// --- Safe markdown ------------------------------------------------------------------------------------

const HTML_ESCAPES = { "&": "&amp;", "<": "&lt;", ">": "&gt;", '"': "&quot;", "'": "&#39;" };

/** Escape text for HTML element content and attribute values. */
export function escapeHtml(text) {
  return String(text).replace(/[&<>"']/g, (ch) => HTML_ESCAPES[ch]);
}

// Placeholders use characters that are removed from the input first, so they cannot be forged.
const PH_OPEN = "\u0001";
const PH_CLOSE = "\u0002";

function renderEmphasis(html) {
  return html
    .replace(/\*\*(?=\S)([^\n]*?\S)\*\*/g, "<strong>$1</strong>")
    .replace(/(^|[^\w])__(?=\S)([^\n]*?\S)__(?!\w)/g, "$1<strong>$2</strong>")
    .replace(/(^|[^*\w])\*(?=[^\s*])([^*\n]*?[^\s*])\*(?![*\w])/g, "$1<em>$2</em>")
    .replace(/(^|[^\w])_(?=[^\s_])([^_\n]*?[^\s_])_(?!\w)/g, "$1<em>$2</em>");
}

/** Inline markdown of one block's text: escaped first; code spans, http(s) links, bold, italic. */
function renderInline(text) {
  const tokens = [];
  const hold = (html) => `${PH_OPEN}${tokens.push(html) - 1}${PH_CLOSE}`;
  // Code spans are taken out of the raw text: nothing inside them is formatted.
  let out = text.replace(/(`+)([^`]|[^`][\s\S]*?[^`])\1(?!`)/g, (_, ticks, code) => hold(`<code>${escapeHtml(code.trim() || code)}</code>`));
  out = escapeHtml(out);
  // [label](http(s)://url) — other schemes (javascript:, data:, ...) stay plain text.
  out = out.replace(/\[([^\]\n]+)\]\((https?:\/\/[^\s()<>]+?)\)/g, (_, label, url) =>
    hold(`<a href="${url}" target="_blank" rel="noopener noreferrer nofollow">${renderEmphasis(label)}</a>`));
  // Bare URLs.
  out = out.replace(/(^|[\s(])(https?:\/\/[^\s<>"']*[^\s<>"'.,;:!?)\]])/g, (_, lead, url) =>
    lead + hold(`<a href="${url}" target="_blank" rel="noopener noreferrer nofollow">${url}</a>`));
  out = renderEmphasis(out);
  return out.replace(new RegExp(`${PH_OPEN}(\\d+)${PH_CLOSE}`, "g"), (_, i) => tokens[Number(i)]);
}

const LIST_ITEM = /^\s{0,3}(?:([-*+])|(\d{1,9})[.)])\s+(.*)$/;
const FENCE = /^\s{0,3}(```+|~~~+)\s*([\w+#.-]*)\s*$/;
const HEADING = /^\s{0,3}(#{1,6})\s+(.*?)\s*#*\s*$/;
const QUOTE = /^\s{0,3}>\s?(.*)$/;
const RULE = /^\s{0,3}([-*_])(\s*\1){2,}\s*$/;

/**
 * Markdown to HTML, safe by construction: every piece of the input is HTML-escaped before any markup is
 * added, and links are produced only for http(s) URLs. Supports paragraphs, line breaks, **bold**,
 * *italic*, `code`, fenced code blocks, [links](https://...), bullet and numbered lists, headings (shown
 * as bold lines), block quotes and rules. An unclosed code fence (while streaming) runs to the end.
 */
export function renderMarkdown(source) {
  const lines = String(source ?? "").replace(/[\u0001\u0002]/g, "").replace(/\r\n?/g, "\n").split("\n");
  const html = [];
  let paragraph = [];
  let list = null; // {type: "ul"|"ol", start, items: [string]}
  let quote = [];

  const flushParagraph = () => {
    if (paragraph.length) html.push(`<p>${paragraph.map(renderInline).join("<br>")}</p>`);
    paragraph = [];
  };
  const flushList = () => {
    if (!list) return;
    const start = list.type === "ol" && list.start !== 1 ? ` start="${list.start}"` : "";
    html.push(`<${list.type}${start}>${list.items.map((item) => `<li>${renderInline(item)}</li>`).join("")}</${list.type}>`);
    list = null;
  };
  const flushQuote = () => {
    if (quote.length) html.push(`<blockquote>${renderMarkdown(quote.join("\n"))}</blockquote>`);
    quote = [];
  };
  const flushAll = () => { flushParagraph(); flushList(); flushQuote(); };

  for (let i = 0; i < lines.length; i += 1) {
    const line = lines[i];
    const fence = FENCE.exec(line);
    if (fence) {
      flushAll();
      const marker = fence[1];
      const closing = new RegExp(`^\\s{0,3}${marker[0] === "`" ? "`" : "~"}{${marker.length},}\\s*$`);
      const code = [];
      let j = i + 1;
      while (j < lines.length && !closing.test(lines[j])) {
        code.push(lines[j]);
        j += 1;
      }
      const language = fence[2] ? ` class="language-${escapeHtml(fence[2].replace(/[^\w+#.-]/g, ""))}"` : "";
      html.push(`<pre><code${language}>${escapeHtml(code.join("\n"))}</code></pre>`);
      i = j; // skip the closing fence (or run to the end when it is missing)
      continue;
    }
    if (!line.trim()) { flushAll(); continue; }
    const quoted = QUOTE.exec(line);
    if (quoted) { flushParagraph(); flushList(); quote.push(quoted[1]); continue; }
    flushQuote();
    if (RULE.test(line) && !paragraph.length) { flushList(); html.push("<hr>"); continue; }
    const heading = HEADING.exec(line);
    if (heading) {
      flushParagraph(); flushList();
      html.push(`<p class="amc-md-heading"><strong>${renderInline(heading[2])}</strong></p>`);
      continue;
    }
    const item = LIST_ITEM.exec(line);
    if (item) {
      flushParagraph();
      const type = item[1] ? "ul" : "ol";
      if (!list || list.type !== type) { flushList(); list = { type, start: type === "ol" ? Number(item[2]) : 1, items: [] }; }
      list.items.push(item[3]);
      continue;
    }
    if (list && /^\s{2,}\S/.test(line)) { list.items[list.items.length - 1] += ` ${line.trim()}`; continue; }
    flushList();
    paragraph.push(line.trim());
  }
  flushAll();
  return html.join("");
}

// --- Server-sent events ------------------------------------------------------------------------------

/**
 * An incremental parser for `text/event-stream` (the WHATWG rules): feed it text in arbitrary pieces with
 * `push(text)`; it calls `onFrame` once per complete frame, in order:
 *   {type: "event", event: "message", data: "<the data lines joined by \n>", id: "..."} for a frame with
 *   data, and {type: "comment", text: "keep-alive"} for each comment line (`: keep-alive`).
 * Frames may be split across pushes anywhere (even between \r and \n); a push may hold many frames.
 * `end()` reports whether an unfinished frame was left over (a stream that was cut off).
 */
export function createSseParser(onFrame) {
  let buffer = "";
  let afterCR = false; // the previous push ended with \r: a leading \n belongs to that line end
  let data = [];
  let eventName = "";
  let lastId = "";
  let hasData = false;
  let hasFields = false;

  function dispatch() {
    if (hasData) {
      onFrame({ type: "event", event: eventName || "message", data: data.join("\n"), id: lastId });
    }
    data = []; eventName = ""; hasData = false; hasFields = false;
  }

  function processLine(line) {
    if (line === "") { dispatch(); return; }
    if (line[0] === ":") { onFrame({ type: "comment", text: line.slice(1).replace(/^ /, "") }); return; }
    const colon = line.indexOf(":");
    const field = colon === -1 ? line : line.slice(0, colon);
    let value = colon === -1 ? "" : line.slice(colon + 1);
    if (value[0] === " ") value = value.slice(1);
    hasFields = true;
    if (field === "data") { data.push(value); hasData = true; }
    else if (field === "event") eventName = value;
    else if (field === "id") { if (!value.includes("\u0000")) lastId = value; }
    // `retry` and unknown fields are ignored.
  }

  return {
    push(text) {
      if (!text) return;
      if (afterCR && text[0] === "\n") text = text.slice(1);
      afterCR = false;
      buffer += text;
      let start = 0;
      for (let i = 0; i < buffer.length; i += 1) {
        const ch = buffer.charCodeAt(i);
        if (ch !== 10 && ch !== 13) continue;
        processLine(buffer.slice(start, i));
        if (ch === 13) {
          if (i + 1 < buffer.length) { if (buffer.charCodeAt(i + 1) === 10) i += 1; }
          else afterCR = true;
        }
        start = i + 1;
      }
      buffer = buffer.slice(start);
    },
    /** The stream ended: true when it stopped inside a frame (the rest is discarded, as the spec says). */
    end() {
      const unfinished = buffer !== "" || hasFields;
      buffer = ""; data = []; eventName = ""; hasData = false; hasFields = false; afterCR = false;
      return unfinished;
    },
  };
}

/**
 * Read a fetch Response body (a ReadableStream of bytes) as server-sent events. UTF-8 is decoded
 * incrementally, so a character split across network reads is kept whole. Resolves with
 * {complete: boolean} once the body ends (complete = false when it ended inside a frame).
 * @param {ReadableStream<Uint8Array>} body
 * @param {(frame: {type: string, event?: string, data?: string, id?: string, text?: string}) => void} onFrame
 * @param {{idleTimeoutMs?: number, onIdle?: () => void}} [options]
 */
export async function readEventStream(body, onFrame, { idleTimeoutMs = 0, onIdle } = {}) {
  const reader = body.getReader();
  const decoder = new TextDecoder("utf-8");
  const parser = createSseParser(onFrame);
  let timer = null;
  const arm = () => {
    if (!idleTimeoutMs) return;
    clearTimeout(timer);
    timer = setTimeout(() => { if (onIdle) onIdle(); reader.cancel().catch(() => {}); }, idleTimeoutMs);
  };
  arm();
  try {
    for (;;) {
      const { value, done } = await reader.read();
      if (done) break;
      arm();
      parser.push(decoder.decode(value, { stream: true }));
    }
    parser.push(decoder.decode());
    return { complete: !parser.end() };
  } finally {
    clearTimeout(timer);
    try { reader.releaseLock(); } catch (_) { /* already released */ }
  }
}

// --- Errors ---------------------------------------------------------------------------------------------

/** An error the widget can explain: `kind` is "http", "network", "auth" or "stream". */
export class ChatWidgetError extends Error {
  /**
   * @param {string} kind
   * @param {string} message
   * @param {{status?: number, code?: string, cause?: unknown}} [details]
   */
  constructor(kind, message, { status = 0, code = "", cause } = {}) {
    super(message);
    this.name = "ChatWidgetError";
    this.kind = kind;
    this.status = status;
    this.code = code;
    if (cause) this.cause = cause;
  }
}

async function errorFromResponse(response) {
  let code = "";
  let message = "";
  try {
    const body = await response.json();
    if (body && body.error) { code = String(body.error.code || ""); message = String(body.error.message || ""); }
  } catch (_) { /* not JSON */ }
  return new ChatWidgetError("http", message || `The server answered ${response.status}.`, { status: response.status, code });
}

/**
 * The note a resumed conversation shows for a saved message's error code (the live stream's sentence is not
 * stored, only its code).
 * @param {string} code
 */
function savedErrorNote(code) {
  if (code === "budget_exceeded") return "Not answered: this account had used its budget for the period.";
  return `This answer did not finish (${code}).`;
}

/** What the banner says for an error, and which action it offers ("retry", "new" or none). */
function describeError(error, serverUrl) {
  if (error.kind === "network" && typeof navigator !== "undefined" && navigator.onLine === false) {
    return { title: "You're offline", detail: "Reconnect to the internet, then retry: the message was not sent.", action: "retry" };
  }
  if (error.kind === "network") {
    return {
      title: "Can't reach the assistant",
      detail: `The connection to ${serverUrl || "the server"} failed: you may be offline, or this page's origin is not allowed to call it (CORS).`,
      action: "retry",
    };
  }
  if (error.kind === "stream") {
    return { title: "The connection was lost", detail: "The answer stopped before it was finished.", action: "retry" };
  }
  if (error.kind === "auth") {
    return { title: "Couldn't sign you in", detail: error.message || "The page could not provide a token.", action: "retry" };
  }
  const { status, code, message } = error;
  if (status === 401) {
    return { title: "Your sign-in has expired or is not valid", detail: message || "Sign in again and retry.", action: "retry" };
  }
  if (code === "scope_required") {
    return { title: "No workspace selected", detail: `${message} (The page embedding this chat must pass a scope.)`, action: null };
  }
  if (code === "session_not_found") {
    return { title: "This conversation is no longer available", detail: message || "It may have been deleted.", action: "new" };
  }
  if (status === 409 || code === "session_busy") {
    return { title: "Still answering the previous message", detail: message || "Try again in a moment.", action: "retry" };
  }
  if (status === 400 || status === 403 || status === 404) {
    return { title: "The message was not accepted", detail: message || `HTTP ${status}`, action: null };
  }
  return { title: "The assistant is unavailable right now", detail: message || `The server answered ${status}.`, action: "retry" };
}

// --- DOM helpers ------------------------------------------------------------------------------------------

function h(tag, attrs = {}, ...children) {
  const node = document.createElement(tag);
  for (const [key, value] of Object.entries(attrs)) {
    if (value === null || value === undefined || value === false) continue;
    if (key === "class") node.className = value;
    else if (key === "text") node.textContent = value;
    else if (key.startsWith("on") && typeof value === "function") node.addEventListener(key.slice(2), value);
    else node.setAttribute(key, value === true ? "" : String(value));
  }
  for (const child of children.flat()) {
    if (child === null || child === undefined || child === false) continue;
    node.append(child instanceof Node ? child : document.createTextNode(String(child)));
  }
  return node;
}

const ICONS = {
  send: '<path d="M3.4 20.4 21 12 3.4 3.6l-.01 6.53L15 12 3.39 13.87z"/>',
  stop: '<rect x="5" y="5" width="14" height="14" rx="2.5"/>',
  plus: '<path d="M19 13h-6v6h-2v-6H5v-2h6V5h2v6h6z"/>',
  history: '<path d="M13 3a9 9 0 0 0-9 9H1l3.9 3.9.1.1L9 12H6a7 7 0 1 1 2.05 4.95l-1.42 1.42A9 9 0 1 0 13 3zm-1 5v5l4.25 2.52.77-1.28-3.52-2.09V8z"/>',
  close: '<path d="M19 6.41 17.59 5 12 10.59 6.41 5 5 6.41 10.59 12 5 17.59 6.41 19 12 13.41 17.59 19 19 17.59 13.41 12z"/>',
  alert: '<path d="M12 2a10 10 0 1 0 0 20 10 10 0 0 0 0-20zm1 15h-2v-2h2zm0-4h-2V7h2z"/>',
  tool: '<path d="M22.7 19 13.6 9.9c.9-2.3.4-5-1.5-6.9-2-2-5-2.4-7.4-1.3L9 6 6 9 1.6 4.7C.4 7.1.9 10.1 2.9 12.1c1.9 1.9 4.6 2.4 6.9 1.5l9.1 9.1c.4.4 1 .4 1.4 0l2.3-2.3c.5-.4.5-1.1.1-1.4z"/>',
  shield: '<path d="M12 1 3 5v6c0 5.55 3.84 10.74 9 12 5.16-1.26 9-6.45 9-12V5zm-1 16-4-4 1.41-1.41L11 14.17l5.59-5.59L18 10z"/>',
  thumbUp: '<path d="M1 21h4V9H1v12zm22-11c0-1.1-.9-2-2-2h-6.31l.95-4.57.03-.32c0-.41-.17-.79-.44-1.06L14.17 1 7.59 7.59C7.22 7.95 7 8.45 7 9v10c0 1.1.9 2 2 2h9c.83 0 1.54-.5 1.84-1.22l3.02-7.05c.09-.23.14-.47.14-.73v-2z"/>',
  thumbDown: '<path d="M15 3H6c-.83 0-1.54.5-1.84 1.22l-3.02 7.05c-.09.23-.14.47-.14.73v2c0 1.1.9 2 2 2h6.31l-.95 4.57-.03.32c0 .41.17.79.44 1.06L9.83 23l6.59-6.59c.36-.36.58-.86.58-1.41V5c0-1.1-.9-2-2-2zm4 0v12h4V3h-4z"/>',
  spark: '<path d="M12 2l2.4 6.6L21 11l-6.6 2.4L12 20l-2.4-6.6L3 11l6.6-2.4z"/>',
};

function icon(name) {
  const span = document.createElement("span");
  span.className = "amc-icon";
  span.setAttribute("aria-hidden", "true");
  span.innerHTML = `<svg viewBox="0 0 24 24" width="18" height="18" focusable="false">${ICONS[name]}</svg>`;
  return span;
}

function formatDuration(ms) {
  if (typeof ms !== "number" || !Number.isFinite(ms)) return "";
  return ms < 1000 ? `${Math.round(ms)} ms` : `${(ms / 1000).toFixed(ms < 10000 ? 1 : 0)} s`;
}

function formatTime(iso) {
  const date = iso ? new Date(iso) : new Date();
  if (Number.isNaN(date.getTime())) return "";
  return date.toLocaleTimeString([], { hour: "2-digit", minute: "2-digit" });
}

function formatWhen(iso) {
  const date = new Date(iso);
  if (Number.isNaN(date.getTime())) return "";
  const today = new Date();
  if (date.toDateString() === today.toDateString()) return formatTime(iso);
  return date.toLocaleDateString([], { month: "short", day: "numeric" });
}

function prettyJson(value) {
  if (typeof value === "string") {
    try { return JSON.stringify(JSON.parse(value), null, 2); } catch (_) { return value; }
  }
  try { return JSON.stringify(value, null, 2); } catch (_) { return String(value); }
}

function clip(text, limit = MAX_RESULT_DISPLAY_CHARS) {
  return text.length > limit ? `${text.slice(0, limit)}\n… (${text.length - limit} more characters)` : text;
}

function toolSummary(name, parameters) {
  const p = parameters && typeof parameters === "object" ? parameters : {};
  if (name === "request" && p.method && p.endpoint) return `${String(p.method).toUpperCase()} ${p.endpoint}${p.connection ? ` · ${p.connection}` : ""}`;
  if (p.store) return `${p.action ? `${p.action} ` : ""}${p.store}`;
  if (p.action) return String(p.action);
  return "";
}

function stylesheetUrl() {
  try { return new URL("./chat-widget.css", import.meta.url).href; } catch (_) { return null; }
}

function ensureStylesheet(doc, href) {
  if (!href) return Promise.resolve();
  const existing = [...doc.querySelectorAll(`link[${STYLESHEET_ATTR}]`)].find((link) => link.href === href);
  if (existing) {
    return existing.sheet ? Promise.resolve() : new Promise((resolve) => {
      existing.addEventListener("load", resolve, { once: true });
      existing.addEventListener("error", resolve, { once: true });
      setTimeout(resolve, 3000);
    });
  }
  const link = doc.createElement("link");
  link.rel = "stylesheet";
  link.href = href;
  link.setAttribute(STYLESHEET_ATTR, "");
  const loaded = new Promise((resolve) => {
    link.addEventListener("load", resolve, { once: true });
    link.addEventListener("error", resolve, { once: true });
    setTimeout(resolve, 3000);
  });
  doc.head.append(link);
  return loaded;
}

// --- The widget ---------------------------------------------------------------------------------------------

/**
 * Mount a chat widget into `element`. Options:
 * - serverUrl: the runtime's base URL ("" = this origin).
 * - getToken({forceRefresh}): returns the bearer token (or a promise of it); called before every request.
 *   After a 401 it is called once more with forceRefresh: true and the request is retried once.
 * - scopeId, scopeContext: sent as `scope_id` / `context` in the body (a token's claims take precedence).
 * - user: {id?, name?} shown on the user's messages; with `id` (the token's `sub`), a resumed conversation shows
 *   that user's earlier ratings on its thumbs.
 * - sessionId: resume this session (its history is loaded and shown).
 * - onSessionCreated(id), onNewConversation(), onEvent(event), onError(error): callbacks.
 * - theme: {mode, primaryColor, onPrimaryColor, headerText, subtitle, placeholder}. `mode` is "auto" (the
 *   default: light or dark as the visitor's system prefers, `prefers-color-scheme`), "light" or "dark".
 * - showHistory: a drawer listing this scope's earlier conversations.
 * - suggestions: short prompts shown as buttons while the conversation is empty.
 * - stylesheet: URL of the CSS (default: chat-widget.css next to this module); false to skip.
 * - idleTimeoutMs: treat a silent stream as lost after this long (default 45 s; keep-alives reset it).
 * Returns a controller: {sessionId, send(text), stop(), newConversation(), openSession(id), setThemeMode(mode),
 * focus(), destroy()}.
 * @typedef {object} ChatWidgetOptions
 * @property {string} [serverUrl]
 * @property {(request: {forceRefresh: boolean}) => string | null | Promise<string | null>} [getToken]
 * @property {string | null} [token]
 * @property {string | null} [scopeId]
 * @property {Record<string, string>} [scopeContext]
 * @property {{id?: string, name?: string}} [user]
 * @property {string | null} [sessionId]
 * @property {(sessionId: string) => void} [onSessionCreated]
 * @property {() => void} [onNewConversation]
 * @property {(event: ChatEvent) => void} [onEvent]
 * @property {(error: Error) => void} [onError]
 * @property {{mode?: string, primaryColor?: string, onPrimaryColor?: string, headerText?: string, subtitle?: string, placeholder?: string, emptyTitle?: string, emptyText?: string}} [theme]
 * @property {boolean} [showHistory]
 * @property {string[]} [suggestions]
 * @property {string | false} [stylesheet]
 * @property {number} [idleTimeoutMs]
 */
const THEME_MODES = ["auto", "light", "dark"];

function checkedThemeMode(mode) {
  if (mode === undefined || mode === null) return "auto";
  if (!THEME_MODES.includes(mode)) throw new TypeError(`mountChatWidget: theme.mode must be one of ${THEME_MODES.join(", ")}, not ${JSON.stringify(mode)}.`);
  return mode;
}

/**
 * @param {HTMLElement} element
 * @param {ChatWidgetOptions} [options]
 */
export function mountChatWidget(element, options = {}) {
  if (!element || typeof element.appendChild !== "function") throw new TypeError("mountChatWidget: element must be a DOM element.");
  const doc = element.ownerDocument || document;
  const opts = { ...options };
  const serverUrl = String(opts.serverUrl || "").replace(/\/+$/, "");
  const theme = opts.theme || {};
  const themeMode = checkedThemeMode(theme.mode);
  const uid = `amc-${(instanceCounter += 1)}`;
  const idleTimeoutMs = opts.idleTimeoutMs === undefined ? DEFAULT_IDLE_TIMEOUT_MS : Number(opts.idleTimeoutMs);

  const state = {
    sessionId: opts.sessionId || null,
    busy: false,
    abort: null,
    stopping: false,
    stopTimer: null,
    turn: null,
    lastSend: null,
    queue: [],
    destroyed: false,
    historyOpen: false,
  };

  // ----- structure
  const log = h("div", { class: "amc-log", role: "log", "aria-live": "polite", "aria-relevant": "additions", "aria-label": "Conversation", tabindex: "0", id: `${uid}-log` });
  const emptyState = h("div", { class: "amc-empty" },
    h("div", { class: "amc-empty-badge" }, icon("spark")),
    h("p", { class: "amc-empty-title", text: theme.emptyTitle || "How can I help?" }),
    h("p", { class: "amc-empty-text", text: theme.emptyText || "Ask a question to start the conversation." }));
  const suggestionList = h("div", { class: "amc-suggestions", role: "group", "aria-label": "Suggestions" });
  for (const suggestion of opts.suggestions || []) {
    suggestionList.append(h("button", { type: "button", class: "amc-chip", onclick: () => { send(suggestion); input.focus(); } }, suggestion));
  }
  if ((opts.suggestions || []).length) emptyState.append(suggestionList);

  const bannerTitle = h("strong", { class: "amc-banner-title" });
  const bannerDetail = h("span", { class: "amc-banner-detail" });
  const bannerAction = h("button", { type: "button", class: "amc-btn amc-btn-small amc-banner-action" });
  const bannerClose = h("button", { type: "button", class: "amc-icon-btn amc-banner-close", "aria-label": "Dismiss the error", onclick: () => hideBanner() }, icon("close"));
  const banner = h("div", { class: "amc-banner", role: "alert", hidden: true },
    icon("alert"), h("div", { class: "amc-banner-text" }, bannerTitle, bannerDetail), bannerAction, bannerClose);

  const input = h("textarea", {
    class: "amc-input", rows: "1", id: `${uid}-input`, "aria-label": "Message",
    placeholder: theme.placeholder || "Type a message…", maxlength: "100000", autocomplete: "off",
  });
  const sendButton = h("button", { type: "submit", class: "amc-send", "aria-label": "Send message", title: "Send (Enter)" }, icon("send"));
  const stopButton = h("button", { type: "button", class: "amc-stop", "aria-label": "Stop generating", title: "Stop (Esc)", hidden: true, onclick: () => stop() }, icon("stop"));
  const form = h("form", { class: "amc-composer", "aria-label": "Send a message" }, input, sendButton, stopButton);
  const status = h("div", { class: "amc-sr-only", role: "status", "aria-live": "polite" });

  const newButton = h("button", { type: "button", class: "amc-icon-btn", "aria-label": "New conversation", title: "New conversation", onclick: () => newConversation() }, icon("plus"));
  const historyButton = opts.showHistory
    ? h("button", { type: "button", class: "amc-icon-btn", "aria-label": "Earlier conversations", title: "Earlier conversations", "aria-expanded": "false", "aria-controls": `${uid}-history`, onclick: () => toggleHistory() }, icon("history"))
    : null;
  const header = h("div", { class: "amc-header" },
    h("div", { class: "amc-header-mark", "aria-hidden": "true" }, icon("spark")),
    h("div", { class: "amc-header-text" },
      h("div", { class: "amc-title", id: `${uid}-title`, text: theme.headerText || "Assistant" }),
      theme.subtitle ? h("div", { class: "amc-subtitle", text: theme.subtitle }) : null),
    h("div", { class: "amc-header-actions" }, historyButton, newButton));

  const historyList = h("ul", { class: "amc-history-list" });
  const historyStatus = h("p", { class: "amc-history-status" });
  const historyPanel = opts.showHistory
    ? h("div", { class: "amc-history", id: `${uid}-history`, role: "dialog", "aria-label": "Earlier conversations", hidden: true },
      h("div", { class: "amc-history-head" },
        h("strong", { text: "Earlier conversations" }),
        h("button", { type: "button", class: "amc-icon-btn", "aria-label": "Close the list", onclick: () => toggleHistory(false) }, icon("close"))),
      historyStatus, historyList)
    : null;

  const root = h("section", { class: "amc-root", "aria-labelledby": `${uid}-title`, "data-amodal-chat": VERSION },
    header, banner, h("div", { class: "amc-body" }, log, historyPanel), form, status);
  root.style.visibility = "hidden";
  // data-amc-theme is the mode asked for; data-amc-scheme the one shown (the stylesheet reads it).
  const darkQuery = doc.defaultView && doc.defaultView.matchMedia ? doc.defaultView.matchMedia("(prefers-color-scheme: dark)") : null;
  const showScheme = () => {
    const mode = root.dataset.amcTheme;
    root.dataset.amcScheme = mode === "auto" ? (darkQuery && darkQuery.matches ? "dark" : "light") : mode;
  };
  root.dataset.amcTheme = themeMode;
  showScheme();
  if (darkQuery) darkQuery.addEventListener("change", showScheme);
  if (theme.primaryColor) root.style.setProperty("--amc-primary", theme.primaryColor);
  // A host's own primary keeps the light scheme's white text in both schemes unless it names another.
  if (theme.primaryColor || theme.onPrimaryColor) root.style.setProperty("--amc-on-primary", theme.onPrimaryColor || "#ffffff");
  log.append(emptyState);
  element.append(root);

  const href = opts.stylesheet === false ? null : (opts.stylesheet || stylesheetUrl());
  ensureStylesheet(doc, href).then(() => { root.style.visibility = ""; });

  // ----- small helpers
  const emit = (event) => { try { if (opts.onEvent) opts.onEvent(event); } catch (err) { console.error(err); } };
  const announce = (text) => { status.textContent = ""; setTimeout(() => { status.textContent = text; }, 30); };
  const url = (path) => `${serverUrl}${path}`;
  const nearBottom = () => log.scrollHeight - log.scrollTop - log.clientHeight < 96;
  const scrollToEnd = (force = false) => { if (force || nearBottom()) log.scrollTop = log.scrollHeight; };
  const withScroll = (fn) => { const stick = nearBottom(); fn(); if (stick) log.scrollTop = log.scrollHeight; };

  function setBusy(busy) {
    state.busy = busy;
    root.classList.toggle("amc-busy", busy);
    log.setAttribute("aria-busy", busy ? "true" : "false");
    sendButton.hidden = busy;
    stopButton.hidden = !busy;
    stopButton.disabled = false;
    if (busy && doc.activeElement === sendButton) input.focus();
  }

  function showBanner(error, retry) {
    const info = describeError(error, serverUrl);
    bannerTitle.textContent = info.title;
    bannerDetail.textContent = info.detail;
    banner.dataset.kind = error.kind;
    banner.dataset.code = error.code || "";
    banner.dataset.status = error.status ? String(error.status) : "";
    bannerAction.hidden = !info.action;
    bannerAction.onclick = null;
    if (info.action === "retry" && retry) {
      bannerAction.textContent = "Retry";
      bannerAction.onclick = () => { hideBanner(); retry(); };
    } else if (info.action === "new") {
      bannerAction.textContent = "Start a new conversation";
      bannerAction.onclick = () => { hideBanner(); newConversation(); };
    } else {
      bannerAction.hidden = true;
    }
    banner.hidden = false;
    try { if (opts.onError) opts.onError(error); } catch (err) { console.error(err); }
  }

  function hideBanner() { banner.hidden = true; }

  async function token(forceRefresh) {
    if (typeof opts.getToken !== "function") return opts.token || null;
    try {
      const value = await opts.getToken({ forceRefresh });
      return value ? String(value) : null;
    } catch (cause) {
      throw new ChatWidgetError("auth", `Getting a token failed: ${cause && cause.message ? cause.message : cause}`, { cause });
    }
  }

  /** fetch with a fresh token; on 401 get a new token once and retry once. Network failures throw. */
  async function apiFetch(path, init = {}) {
    const attempt = async (forceRefresh) => {
      const bearer = await token(forceRefresh);
      const headers = { Accept: "application/json", ...(init.headers || {}) };
      if (bearer) headers.Authorization = `Bearer ${bearer}`;
      try {
        return await fetch(url(path), { ...init, headers, credentials: "omit", mode: "cors", cache: "no-store" });
      } catch (cause) {
        if (cause && cause.name === "AbortError") throw cause;
        throw new ChatWidgetError("network", "The request failed before the server answered.", { cause });
      }
    };
    let response = await attempt(false);
    if (response.status === 401 && typeof opts.getToken === "function") {
      try { await response.body?.cancel(); } catch (_) { /* ignore */ }
      response = await attempt(true);
    }
    return response;
  }

  const scopeQuery = () => (opts.scopeId ? `scope_id=${encodeURIComponent(opts.scopeId)}` : "");

  // ----- rendering: messages
  function clearEmpty() { if (emptyState.isConnected) emptyState.remove(); }

  function renderUserMessage(text, timestamp) {
    clearEmpty();
    const approval = APPROVAL_PATTERN.exec(text);
    let node;
    if (approval) {
      const approved = approval[1].toLowerCase() === "approve";
      node = h("div", { class: `amc-msg amc-msg-user amc-msg-decision ${approved ? "amc-approved" : "amc-denied"}` },
        h("span", { class: "amc-sr-only", text: `${opts.user && opts.user.name ? opts.user.name : "You"}: ` }),
        h("span", { class: "amc-decision", title: text }, approved ? "✓ You approved the action" : "✕ You declined the action"));
    } else {
      node = h("div", { class: "amc-msg amc-msg-user" },
        h("span", { class: "amc-sr-only", text: `${opts.user && opts.user.name ? opts.user.name : "You"} said: ` }),
        h("div", { class: "amc-bubble", title: formatTime(timestamp) }, text));
    }
    withScroll(() => log.append(node));
    return node;
  }

  function createTurn() {
    clearEmpty();
    const typing = h("div", { class: "amc-typing", "aria-label": "The assistant is typing" }, h("span"), h("span"), h("span"));
    const body = h("div", { class: "amc-turn-body" });
    const node = h("div", { class: "amc-msg amc-msg-assistant" },
      h("span", { class: "amc-sr-only", text: "Assistant said: " }), body);
    const turn = {
      node, body, typing, segment: null, tools: new Map(), usage: null, textSeen: false,
      showTyping() { if (!typing.isConnected) withScroll(() => body.append(typing)); },
      hideTyping() { typing.remove(); },
      appendText(content) {
        if (!this.segment) {
          this.segment = { text: "", el: h("div", { class: "amc-text amc-md" }) };
          body.insertBefore(this.segment.el, typing.isConnected ? typing : null);
        }
        this.segment.text += content;
        this.textSeen = true;
        const seg = this.segment;
        if (!seg.pending) {
          seg.pending = true;
          const paint = () => { seg.pending = false; withScroll(() => { seg.el.innerHTML = renderMarkdown(seg.text); }); };
          if (typeof requestAnimationFrame === "function" && !doc.hidden) requestAnimationFrame(paint); else paint();
        }
      },
      flushText() { if (this.segment) this.segment.el.innerHTML = renderMarkdown(this.segment.text); },
      /** @param {ToolCallStartEvent} evt */
      addTool(evt) {
        this.flushText();
        this.segment = null;
        const row = renderToolRow(evt.tool_name, evt.parameters, "running");
        this.tools.set(evt.tool_id, row);
        withScroll(() => body.insertBefore(row.node, typing.isConnected ? typing : null));
      },
      /** @param {ToolCallResultEvent} evt */
      finishTool(evt) {
        const row = this.tools.get(evt.tool_id);
        if (row) row.finish(evt.status, evt.duration_ms, evt.status === "error" ? evt.error : evt.result);
      },
      addNode(child) {
        this.flushText();
        this.segment = null;
        withScroll(() => body.insertBefore(child, typing.isConnected ? typing : null));
      },
      addNote(text, kind = "info") { this.addNode(h("div", { class: `amc-note amc-note-${kind}` }, text)); },
      addFeedback(messageId, rating) { if (messageId) withScroll(() => node.append(renderFeedback(messageId, rating))); },
    };
    withScroll(() => log.append(node));
    return turn;
  }

  function renderToolRow(name, parameters, initialStatus, duration, payload) {
    const statusLabel = h("span", { class: "amc-tool-status" });
    const durationLabel = h("span", { class: "amc-tool-duration" });
    const summaryText = toolSummary(name, parameters);
    const resultBlock = h("div", { class: "amc-tool-section", hidden: true },
      h("div", { class: "amc-tool-label", text: "Result" }), h("pre", { class: "amc-pre" }));
    const details = h("details", { class: "amc-tool" },
      h("summary", { class: "amc-tool-summary" },
        h("span", { class: "amc-tool-dot", "aria-hidden": "true" }),
        h("span", { class: "amc-tool-name" }, name),
        summaryText ? h("span", { class: "amc-tool-args" }, summaryText) : null,
        h("span", { class: "amc-tool-meta" }, statusLabel, durationLabel)),
      h("div", { class: "amc-tool-section" },
        h("div", { class: "amc-tool-label", text: "Parameters" }),
        h("pre", { class: "amc-pre", text: clip(prettyJson(parameters ?? {})) })),
      resultBlock);
    const row = {
      node: details,
      finish(outcome, ms, content) {
        details.dataset.status = outcome;
        statusLabel.textContent = outcome === "success" ? "done" : outcome === "error" ? "failed" : "running…";
        durationLabel.textContent = ms !== undefined && ms !== null && outcome !== "running" ? formatDuration(ms) : "";
        if (content !== undefined && content !== null && outcome !== "running") {
          resultBlock.hidden = false;
          resultBlock.firstChild.textContent = outcome === "error" ? "Error" : "Result";
          resultBlock.lastChild.textContent = clip(prettyJson(content));
        }
      },
    };
    row.finish(initialStatus, duration, payload);
    return row;
  }

  /**
   * Thumbs up / down under a finished answer, rating its last assistant message (`messageId`); `rating` is
   * the user's earlier one (1, -1 or 0). A click sends it at once; the pressed thumb shows the rating kept.
   * A failure is shown beside the thumbs and the earlier state comes back; a retry is one more click.
   */
  function renderFeedback(messageId, rating = 0) {
    const sessionId = state.sessionId;
    let current = rating;
    let pending = false;
    const error = h("span", { class: "amc-feedback-error", role: "alert", hidden: true });
    const thumb = (value, label, iconName) => h("button", {
      type: "button", class: "amc-icon-btn amc-feedback-btn", "aria-label": label, title: label,
      "aria-pressed": value === current ? "true" : "false", "data-rating": String(value),
      onclick: () => choose(value),
    }, icon(iconName));
    const up = thumb(1, "Good answer", "thumbUp");
    const down = thumb(-1, "Bad answer", "thumbDown");
    const bar = h("div", { class: "amc-feedback", role: "group", "aria-label": "Rate this answer", "data-message-id": messageId },
      up, down, error);
    const show = (value) => {
      up.setAttribute("aria-pressed", value === 1 ? "true" : "false");
      down.setAttribute("aria-pressed", value === -1 ? "true" : "false");
    };
    async function choose(value) {
      if (pending || value === current) return;
      pending = true;
      bar.setAttribute("aria-busy", "true");
      error.hidden = true;
      show(value);
      try {
        const body = { message_id: messageId, rating: value };
        if (opts.scopeId !== undefined && opts.scopeId !== null) body.scope_id = opts.scopeId;
        const response = await apiFetch(`/sessions/history/${encodeURIComponent(sessionId)}/feedback`, {
          method: "POST",
          headers: { "Content-Type": "application/json" },
          body: JSON.stringify(body),
        });
        if (!response.ok) throw await errorFromResponse(response);
        current = value;
        announce("Thanks for your feedback");
      } catch (err) {
        show(current);
        const reason = err instanceof ChatWidgetError && err.kind === "http" ? err.message : describeError(
          err instanceof ChatWidgetError ? err : new ChatWidgetError("network", String(err)), serverUrl).title;
        error.textContent = `Your feedback was not sent: ${reason}`;
        error.hidden = false;
      } finally {
        pending = false;
        bar.removeAttribute("aria-busy");
      }
    }
    return bar;
  }

  /** @param {ConfirmationRequiredEvent} evt */
  function renderConfirmation(turn, evt) {
    const approveButton = h("button", { type: "button", class: "amc-btn amc-btn-primary" }, "Approve");
    const denyButton = h("button", { type: "button", class: "amc-btn" }, "Deny");
    const outcome = h("span", { class: "amc-confirm-outcome", role: "status" });
    const params = evt.params && Object.keys(evt.params).length ? evt.params : null;
    const card = h("div", { class: "amc-confirm", role: "group", "aria-label": "Approval needed", "data-correlation-id": evt.correlation_id },
      h("div", { class: "amc-confirm-head" }, icon("shield"), h("strong", { text: "Approval needed" })),
      h("p", { class: "amc-confirm-action" },
        h("code", {}, `${String(evt.method || "").toUpperCase()} ${evt.endpoint || ""}`),
        evt.connection ? h("span", { class: "amc-confirm-conn" }, ` on ${evt.connection}`) : null),
      evt.reason ? h("p", { class: "amc-confirm-reason", text: evt.reason }) : null,
      params ? h("pre", { class: "amc-pre amc-confirm-params", text: clip(prettyJson(params), 4000) }) : null,
      h("div", { class: "amc-confirm-buttons" }, approveButton, denyButton, outcome));
    const decide = (approve) => {
      approveButton.disabled = true;
      denyButton.disabled = true;
      card.dataset.decision = approve ? "approved" : "denied";
      outcome.textContent = approve ? "Approved" : "Declined";
      send(`I ${approve ? "approve" : "deny"} the action (correlation: ${evt.correlation_id})`);
    };
    approveButton.addEventListener("click", () => decide(true));
    denyButton.addEventListener("click", () => decide(false));
    turn.addNode(card);
  }

  // ----- streaming
  /** @param {ChatEvent} evt */
  function handleEvent(evt, turn) {
    switch (evt.type) {
      case "init":
        if (evt.session_id && evt.session_id !== state.sessionId) {
          state.sessionId = evt.session_id;
          try { if (opts.onSessionCreated) opts.onSessionCreated(evt.session_id); } catch (err) { console.error(err); }
        }
        turn.started = true;
        break;
      case "text_delta":
        turn.appendText(evt.content || "");
        break;
      case "tool_call_start":
        turn.addTool(evt);
        break;
      case "tool_call_result":
        turn.finishTool(evt);
        break;
      case "confirmation_required":
        renderConfirmation(turn, evt);
        break;
      case "error":
        turn.addNote(evt.message || evt.code || "The assistant reported an error.", "error");
        break;
      case "done":
        turn.done = evt;
        break;
      default:
        break; // usage and unknown events only go to onEvent
    }
  }

  async function streamMessage(text, turn) {
    const controller = new AbortController();
    state.abort = controller;
    const body = { message: text };
    if (state.sessionId) body.session_id = state.sessionId;
    if (opts.scopeId !== undefined && opts.scopeId !== null) body.scope_id = opts.scopeId;
    if (opts.scopeContext) body.context = opts.scopeContext;
    const response = await apiFetch("/chat/stream", {
      method: "POST",
      headers: { "Content-Type": "application/json", Accept: "text/event-stream" },
      body: JSON.stringify(body),
      signal: controller.signal,
    });
    if (!response.ok) throw await errorFromResponse(response);
    if (!response.body) throw new ChatWidgetError("stream", "The browser cannot read streamed responses.");
    let idle = false;
    const result = await readEventStream(response.body, (frame) => {
      if (frame.type !== "event") return;
      let evt;
      try { evt = JSON.parse(frame.data); } catch (_) { return; }
      if (!evt || typeof evt !== "object") return;
      handleEvent(evt, turn);
      emit(evt);
    }, { idleTimeoutMs, onIdle: () => { idle = true; } });
    if (!turn.done) {
      throw new ChatWidgetError("stream", idle ? "No data arrived for too long." : "The stream ended before the answer was complete.", { code: result.complete ? "" : "truncated" });
    }
  }

  /**
   * @param {string} text
   * @param {{userNode?: HTMLElement | null, retry?: boolean}} [options]
   */
  async function runMessage(text, { userNode, retry = false } = {}) {
    hideBanner();
    setBusy(true);
    state.stopping = false;
    state.lastSend = { text, userNode };
    if (userNode) userNode.classList.remove("amc-msg-failed");
    const turn = createTurn();
    state.turn = turn;
    turn.showTyping();
    announce("Sending…");
    try {
      await streamMessage(text, turn);
      turn.hideTyping();
      turn.flushText();
      if (turn.done.reason === "user_abort") turn.addNote("Stopped.", "muted");
      if (!turn.textSeen && !turn.tools.size && turn.body.children.length === 0 && turn.done.reason !== "user_abort") {
        turn.addNote("(no answer)", "muted");
      }
      turn.addFeedback(turn.done.message_id);
      announce(turn.done.reason === "user_abort" ? "Stopped." : "The assistant answered.");
    } catch (error) {
      turn.hideTyping();
      turn.flushText();
      const aborted = (error && error.name === "AbortError") || state.stopping;
      if (aborted && state.stopping) {
        turn.addNote("Stopped.", "muted");
        announce("Stopped.");
      } else if (!state.destroyed) {
        const err = error instanceof ChatWidgetError ? error : new ChatWidgetError("network", String(error && error.message ? error.message : error), { cause: error });
        if (!turn.started) {
          turn.node.remove();
          if (userNode) userNode.classList.add("amc-msg-failed");
        } else {
          turn.addNote("Interrupted.", "muted");
        }
        showBanner(err, () => runMessage(text, { userNode, retry: true }));
        announce(describeError(err, serverUrl).title);
      }
    } finally {
      clearTimeout(state.stopTimer);
      state.abort = null;
      state.turn = null;
      state.stopping = false;
      if (!state.destroyed) {
        setBusy(false);
        const next = state.queue.shift();
        if (next !== undefined) setTimeout(() => send(next), 0);
      }
    }
    return retry;
  }

  // ----- actions
  function send(text) {
    if (state.destroyed) return false;
    const message = String(text ?? "").trim() ? String(text) : "";
    if (!message) return false;
    if (state.busy) { state.queue.push(message); return true; }
    if (state.historyOpen) toggleHistory(false);
    const userNode = renderUserMessage(message);
    scrollToEnd(true);
    runMessage(message, { userNode });
    return true;
  }

  async function stop() {
    if (!state.busy || state.stopping) return;
    state.stopping = true;
    stopButton.disabled = true;
    announce("Stopping…");
    const abortNow = () => { if (state.abort) state.abort.abort(); };
    if (state.turn && state.turn.started && state.sessionId) {
      state.stopTimer = setTimeout(abortNow, STOP_GRACE_MS);
      try {
        const response = await apiFetch(`/sessions/${encodeURIComponent(state.sessionId)}/cancel`, {
          method: "POST",
          headers: { "Content-Type": "application/json" },
          body: JSON.stringify(opts.scopeId ? { scope_id: opts.scopeId } : {}),
        });
        if (!response.ok) abortNow();
      } catch (_) {
        abortNow();
      }
    } else {
      abortNow();
    }
    input.focus();
  }

  function resetLog() {
    log.replaceChildren(emptyState);
    log.scrollTop = 0;
  }

  function newConversation() {
    if (state.destroyed) return;
    state.queue = [];
    if (state.busy) { state.stopping = true; if (state.abort) state.abort.abort(); }
    state.sessionId = null;
    hideBanner();
    if (state.historyOpen) toggleHistory(false);
    resetLog();
    try { if (opts.onNewConversation) opts.onNewConversation(); } catch (err) { console.error(err); }
    announce("New conversation.");
    input.focus();
  }

  function renderHistory(detail) {
    resetLog();
    const userId = opts.user && opts.user.id !== undefined && opts.user.id !== null ? String(opts.user.id) : null;
    const ratings = new Map((detail.feedback || [])
      .filter((item) => item.message_id && userId !== null && item.user === userId)
      .map((item) => [item.message_id, item.rating]));
    let turn = null;
    let lastAssistant = null;
    const endTurn = () => {
      if (turn && lastAssistant) turn.addFeedback(lastAssistant, ratings.get(lastAssistant) || 0);
      turn = null;
      lastAssistant = null;
    };
    for (const message of detail.messages || []) {
      if (message.role === "user") {
        endTurn();
        renderUserMessage(message.text || "", message.timestamp);
        if (message.error) {  // refused before anything ran (over the budget): no answer follows
          turn = createTurn();
          turn.addNote(savedErrorNote(message.error), "error");
          turn.segment = null;
        }
        continue;
      }
      if (!turn) turn = createTurn();
      lastAssistant = message.id;
      if (message.text) { turn.appendText(message.text); turn.flushText(); }
      for (const call of message.toolCalls || []) {
        const row = renderToolRow(call.toolName, call.parameters ?? call.args, call.status || "success", call.duration_ms,
          call.status === "error" ? call.error : call.result);
        turn.addNode(row.node);
      }
      if (message.interrupted) turn.addNote("Interrupted.", "muted");
      else if (message.error) turn.addNote(savedErrorNote(message.error), "error");
      turn.segment = null;
    }
    endTurn();
    scrollToEnd(true);
  }

  async function openSession(id, { focusInput = true } = {}) {
    if (state.destroyed || !id) return;
    if (state.busy) { state.stopping = true; if (state.abort) state.abort.abort(); }
    state.sessionId = id;
    hideBanner();
    if (state.historyOpen) toggleHistory(false);
    resetLog();
    clearEmpty();
    const loading = h("div", { class: "amc-loading", role: "status" }, "Loading the conversation…");
    log.append(loading);
    try {
      const query = scopeQuery();
      const response = await apiFetch(`/sessions/history/${encodeURIComponent(id)}${query ? `?${query}` : ""}`, { method: "GET" });
      if (!response.ok) throw await errorFromResponse(response);
      const detail = await response.json();
      if (state.sessionId !== id) return; // another conversation was chosen meanwhile
      renderHistory(detail);
      announce("Conversation loaded.");
    } catch (error) {
      loading.remove();
      if (!log.children.length) log.append(emptyState);
      const err = error instanceof ChatWidgetError ? error : new ChatWidgetError("network", String(error), { cause: error });
      if (err.code === "session_not_found") state.sessionId = null;
      showBanner(err, () => openSession(id));
    }
    if (focusInput) input.focus();
  }

  async function loadHistoryList() {
    historyList.replaceChildren();
    historyStatus.textContent = "Loading…";
    historyStatus.hidden = false;
    try {
      const query = ["limit=30", scopeQuery()].filter(Boolean).join("&");
      const response = await apiFetch(`/sessions/history?${query}`, { method: "GET" });
      if (!response.ok) throw await errorFromResponse(response);
      const sessions = await response.json();
      if (!Array.isArray(sessions) || !sessions.length) { historyStatus.textContent = "No earlier conversations yet."; return; }
      historyStatus.hidden = true;
      for (const session of sessions) {
        const current = session.id === state.sessionId;
        historyList.append(h("li", {},
          h("button", { type: "button", class: `amc-history-item${current ? " amc-current" : ""}`, "aria-current": current ? "true" : null, onclick: () => openSession(session.id) },
            h("span", { class: "amc-history-title" }, session.title || "Untitled conversation"),
            h("span", { class: "amc-history-meta" }, `${formatWhen(session.updated_at)} · ${session.message_count || 0} messages`))));
      }
      const first = historyList.querySelector("button");
      if (first) first.focus();
    } catch (error) {
      historyStatus.textContent = error instanceof ChatWidgetError ? describeError(error, serverUrl).title : "Could not load the list.";
    }
  }

  function toggleHistory(open = !state.historyOpen) {
    if (!historyPanel) return;
    state.historyOpen = open;
    historyPanel.hidden = !open;
    historyButton.setAttribute("aria-expanded", open ? "true" : "false");
    if (open) loadHistoryList(); else historyButton.focus();
  }

  // ----- composer
  const autosize = () => {
    input.style.height = "auto";
    input.style.height = `${Math.min(input.scrollHeight, 160)}px`;
  };
  const onSubmit = (event) => {
    event.preventDefault();
    if (state.busy) return;
    if (send(input.value)) { input.value = ""; autosize(); }
    input.focus();
  };
  const onKeyDown = (event) => {
    if (event.key === "Enter" && !event.shiftKey && !event.isComposing) { event.preventDefault(); onSubmit(event); }
    else if (event.key === "Escape" && state.busy) { event.preventDefault(); stop(); }
  };
  const onRootKeyDown = (event) => {
    if (event.key === "Escape" && state.historyOpen) { event.preventDefault(); toggleHistory(false); }
  };
  form.addEventListener("submit", onSubmit);
  input.addEventListener("keydown", onKeyDown);
  input.addEventListener("input", autosize);
  root.addEventListener("keydown", onRootKeyDown);

  if (state.sessionId) openSession(state.sessionId, { focusInput: false });

  const controller = {
    get sessionId() { return state.sessionId; },
    get busy() { return state.busy; },
    element: root,
    send,
    stop,
    newConversation,
    openSession: (id) => openSession(id),
    setThemeMode(mode) {
      root.dataset.amcTheme = checkedThemeMode(mode);
      showScheme();
    },
    focus: () => input.focus(),
    destroy() {
      if (state.destroyed) return;
      state.destroyed = true;
      state.stopping = true;
      clearTimeout(state.stopTimer);
      if (state.abort) state.abort.abort();
      form.removeEventListener("submit", onSubmit);
      input.removeEventListener("keydown", onKeyDown);
      input.removeEventListener("input", autosize);
      root.removeEventListener("keydown", onRootKeyDown);
      if (darkQuery) darkQuery.removeEventListener("change", showScheme);
      root.remove();
    },
  };
  return controller;
}

export default mountChatWidget;
