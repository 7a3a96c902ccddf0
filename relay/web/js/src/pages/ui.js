// @ts-check
// What both pages share on the DOM side: the data the relay embeds in a
// page (#amana-text, #amana-desk, #amana-check), the status line, the
// progress bar, elements built with their text, and the switch out of the
// no-JavaScript mode. Every text is set with textContent, never as HTML.

/** @typedef {(...parts: Array<string | null | undefined>) => void} Say */

/**
 * @typedef {object} Progress
 * @property {(fraction: number | null, text?: string) => void} set shows the bar at fraction (0 to 1), or indeterminate for null, with text beside it
 * @property {() => void} hide hides the bar
 * @property {() => void} complete sets the bar to 100% and hides it
 */

/**
 * readJSON parses the JSON text of the element id, or returns null.
 * @param {Document} doc
 * @param {string} id
 * @returns {unknown}
 */
export function readJSON(doc, id) {
  const el = doc.getElementById(id);
  if (!el) {
    return null;
  }
  try {
    return JSON.parse(el.textContent ?? "");
  } catch {
    return null;
  }
}

/**
 * loadText is defaults with each string #amana-text gives for one of its
 * keys; other members are ignored.
 * @template {Record<string, string>} T
 * @param {Document} doc
 * @param {T} defaults
 * @returns {T}
 */
export function loadText(doc, defaults) {
  const t = Object.assign({}, defaults);
  const given = /** @type {Record<string, unknown> | null} */ (readJSON(doc, "amana-text"));
  if (given && typeof given === "object") {
    for (const k of /** @type {Array<keyof T>} */ (Object.keys(defaults))) {
      const v = given[/** @type {string} */ (k)];
      if (typeof v === "string") {
        t[k] = /** @type {T[keyof T]} */ (v);
      }
    }
  }
  return t;
}

/**
 * apiPath resolves a page's API prefix ("/api/v1" when none is given)
 * against loc and returns its path, or null when it is on another origin:
 * the relay sends no CORS headers, and a page talks to nobody else.
 * @param {unknown} api
 * @param {{href: string, origin: string}} loc
 * @returns {string | null}
 */
export function apiPath(api, loc) {
  const u = new URL(typeof api === "string" && api !== "" ? api : "/api/v1", loc.href);
  return u.origin === loc.origin ? u.pathname.replace(/\/+$/, "") : null;
}

/**
 * fill replaces each {key} of template with values[key], when values has it.
 * @param {string} template
 * @param {Record<string, string>} values
 * @returns {string}
 */
export function fill(template, values) {
  return template.replace(/\{(\w+)\}/g, (m, k) => (Object.prototype.hasOwnProperty.call(values, k) ? values[k] : m));
}

/**
 * fillIsolated sets el's content to template with each {key} replaced by a
 * <bdi> holding values[key], left to right for the keys in ltr (times,
 * IDs), as the relay's pages do (tIsolated in relay/pages.go): a name or a
 * time keeps its own order in a sentence of the other direction, and a time
 * ("when", class "when") is not broken across lines. Text only, never HTML.
 * @param {HTMLElement} el
 * @param {string} template
 * @param {Record<string, string>} values
 * @param {string[]} [ltr]
 * @returns {HTMLElement}
 */
export function fillIsolated(el, template, values, ltr = []) {
  const doc = el.ownerDocument;
  el.replaceChildren();
  let last = 0;
  for (const m of template.matchAll(/\{(\w+)\}/g)) {
    const k = m[1];
    if (!Object.prototype.hasOwnProperty.call(values, k)) {
      continue;
    }
    const at = /** @type {number} */ (m.index);
    el.append(doc.createTextNode(template.slice(last, at)));
    /** @type {Record<string, string>} */
    const attrs = ltr.includes(k) ? { dir: "ltr" } : {};
    if (k === "when" && ltr.includes(k)) {
      attrs.class = "when";
    }
    el.append(element(doc, "bdi", values[k], attrs));
    last = at + m[0].length;
  }
  el.append(doc.createTextNode(template.slice(last)));
  return el;
}

/**
 * formatWhen shows an RFC 3339 time the one way every page writes a time,
 * at the hour the relay keeps: "2006-01-02 15:00 UTC" (pageTimeLayout in
 * relay/pages.go).
 * @param {unknown} s
 * @returns {string}
 */
export function formatWhen(s) {
  const t = new Date(/** @type {string} */ (s));
  if (typeof s !== "string" || Number.isNaN(t.getTime())) {
    return String(s);
  }
  /** @param {number} n */
  const p = (n) => String(n).padStart(2, "0");
  return `${String(t.getUTCFullYear()).padStart(4, "0")}-${p(t.getUTCMonth() + 1)}-${p(t.getUTCDate())} ${p(t.getUTCHours())}:00 UTC`;
}

/**
 * statusLine returns the function that shows a message in status: the
 * non-empty strings of its arguments, joined by spaces. Without a status
 * element it does nothing.
 * @param {HTMLElement | null} status
 * @returns {Say}
 */
export function statusLine(status) {
  return (...parts) => {
    if (status) {
      status.textContent = parts.filter((p) => typeof p === "string" && p !== "").join(" ");
    }
  };
}

/**
 * The catalogue's words for sizes and progress (relay/web/i18n).
 * @typedef {{size_bytes: string, size_kb: string, size_mb: string, size_gb: string, decimal_mark: string,
 *   progress_bytes: string, progress_rate: string}} SizeText
 */

/** @type {SizeText} */
export const DEFAULT_SIZE_TEXT = {
  size_bytes: "{n} bytes",
  size_kb: "{n} KB",
  size_mb: "{n} MB",
  size_gb: "{n} GB",
  decimal_mark: ".",
  progress_bytes: "{sent} of {total}",
  progress_rate: "{sent} of {total}, {rate}/s",
};

/**
 * formatSize writes n bytes as the relay's pages do (relay/pages.go
 * humanSize): a unit is 1024 of the one below, and the figure is rounded
 * down, to one decimal under 10.
 * @param {number} n
 * @param {SizeText} T
 * @returns {string}
 */
export function formatSize(n, T) {
  const units = [T.size_bytes, T.size_kb, T.size_mb, T.size_gb];
  n = Math.max(0, Math.floor(n));
  let u = 0;
  let div = 1;
  while (u < units.length - 1 && n >= div * 1024) {
    u++;
    div *= 1024;
  }
  const tenths = Math.floor((n * 10) / div);
  const s = u === 0 || tenths >= 100 || tenths % 10 === 0 ? String(Math.floor(n / div)) : `${Math.floor(tenths / 10)}${T.decimal_mark}${tenths % 10}`;
  return fill(units[u], { n: s });
}

// A rate is shown only once it means something: the first pieces go into
// the browser's and the network's buffers at once, and a rate taken then
// reads like "162 GiB/s".
export const RATE_AFTER_MS = 3000;
export const RATE_AFTER_BYTES = 1 << 20;

/**
 * progressText says how much of total has been sent, and how fast once
 * elapsedMs and sent are past RATE_AFTER_MS and RATE_AFTER_BYTES.
 * @param {number} sent
 * @param {number} total
 * @param {number} elapsedMs since the first byte was handed over
 * @param {SizeText} T
 * @returns {string}
 */
export function progressText(sent, total, elapsedMs, T) {
  const v = { sent: formatSize(sent, T), total: formatSize(total, T) };
  if (elapsedMs >= RATE_AFTER_MS && sent >= RATE_AFTER_BYTES && sent < total) {
    return fill(T.progress_rate, Object.assign(v, { rate: formatSize((sent * 1000) / elapsedMs, T) }));
  }
  return fill(T.progress_bytes, v);
}

/**
 * cryptoTrouble says why a browser running this script cannot encrypt in
 * the page: "insecure" when the page is not in a secure context (the
 * browser then withholds WebCrypto), "missing" when it is but lacks what
 * the page needs, or null when nothing is wrong. available (lib/seal.js)
 * decides; this only names the cause.
 * @param {{isSecureContext?: boolean}} g
 * @param {boolean} ok what available(g) said
 * @returns {"insecure" | "missing" | null}
 */
export function cryptoTrouble(g, ok) {
  if (ok) {
    return null;
  }
  return g.isSecureContext === false ? "insecure" : "missing";
}

/**
 * showCryptoTrouble shows, in #mode-nocrypto, why the page stays in its
 * no-JavaScript mode although JavaScript is on.
 * @param {Document} doc
 * @param {"insecure" | "missing" | null} trouble
 * @param {{no_crypto_insecure: string, no_crypto_missing: string}} T
 */
export function showCryptoTrouble(doc, trouble, T) {
  const el = doc.getElementById("mode-nocrypto");
  if (!el || trouble === null) {
    return;
  }
  el.textContent = trouble === "insecure" ? T.no_crypto_insecure : T.no_crypto_missing;
  el.hidden = false;
}

export const DEFAULT_CRYPTO_TEXT = {
  no_crypto_insecure:
    "JavaScript is on, but this browser does not let the page encrypt: the page was not reached over a secure connection (an .onion address or https), so the browser turns its encryption functions (WebCrypto) off. This page works the no-JavaScript way described below instead.",
  no_crypto_missing:
    "JavaScript is on, but this browser lacks the encryption functions this page needs (WebCrypto and streams). This page works the no-JavaScript way described below instead. A current Tor Browser or Firefox has them.",
};

/**
 * progressBar drives a <progress> element, and label beside it with how
 * much was sent; without them it does nothing.
 * @param {HTMLProgressElement | null} progress
 * @param {HTMLElement | null} [label]
 * @returns {Progress}
 */
export function progressBar(progress, label = null) {
  /** @param {string} text */
  const say = (text) => {
    if (label) {
      label.textContent = text;
      label.hidden = text === "";
    }
  };
  return {
    set(fraction, text = "") {
      say(text);
      if (!progress) {
        return;
      }
      progress.hidden = false;
      if (fraction === null) {
        progress.removeAttribute("value"); // indeterminate
        progress.textContent = "";
      } else {
        const pct = Math.max(0, Math.min(100, Math.floor(fraction * 100)));
        progress.value = pct;
        progress.textContent = `${pct}%`;
      }
    },
    hide() {
      say("");
      if (progress) {
        progress.hidden = true;
      }
    },
    complete() {
      say("");
      if (progress) {
        progress.value = 100;
        progress.hidden = true;
      }
    },
  };
}

/**
 * element makes a tag with text (when given) and attributes.
 * @param {Document} doc
 * @param {string} tag
 * @param {string} [text]
 * @param {Record<string, string>} [attrs]
 * @returns {HTMLElement}
 */
export function element(doc, tag, text, attrs = {}) {
  const e = doc.createElement(tag);
  if (text !== undefined) {
    e.textContent = text;
  }
  for (const [k, v] of Object.entries(attrs)) {
    e.setAttribute(k, v);
  }
  return e;
}

/**
 * setText sets the text of the element id, if the page has it.
 * @param {Document} doc
 * @param {string} id
 * @param {unknown} v
 */
export function setText(doc, id, v) {
  const el = doc.getElementById(id);
  if (el) {
    el.textContent = typeof v === "string" ? v : String(v);
  }
}

/**
 * showScriptMode shows #mode-js and hides #mode-server, the page's
 * no-JavaScript explanation.
 * @param {Document} doc
 */
export function showScriptMode(doc) {
  const modeJS = doc.getElementById("mode-js");
  const modeServer = doc.getElementById("mode-server");
  if (modeJS) {
    modeJS.hidden = false;
  }
  if (modeServer) {
    modeServer.hidden = true;
  }
}
