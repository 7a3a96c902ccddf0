// What the submission page (main.js) and the check page (check.js) share:
// reading the data the relay puts in a page, and the exact size a report
// will have once sealed, known before any file is read.

import { marshalReport, paddedSize, tarSize } from "./bundle.js";
import { ciphertextSize } from "./seal.js";

// TooLarge: the sealed report would be larger than the relay takes.
export class TooLarge extends Error {}

// readJSON parses the JSON text of the element id, or returns null.
export function readJSON(doc, id) {
  const el = doc.getElementById(id);
  if (!el) {
    return null;
  }
  try {
    return JSON.parse(el.textContent);
  } catch {
    return null;
  }
}

// loadText is defaults with each string #amana-text gives for one of its
// keys; other members are ignored.
export function loadText(doc, defaults) {
  const t = Object.assign({}, defaults);
  const given = readJSON(doc, "amana-text");
  if (given && typeof given === "object") {
    for (const k of Object.keys(defaults)) {
      if (typeof given[k] === "string") {
        t[k] = given[k];
      }
    }
  }
  return t;
}

// apiPath resolves a page's API prefix ("/api/v1" when none is given)
// against loc and returns its path, or null when it is on another origin:
// the relay sends no CORS headers, and a page talks to nobody else.
export function apiPath(api, loc) {
  const u = new URL(typeof api === "string" && api !== "" ? api : "/api/v1", loc.href);
  return u.origin === loc.origin ? u.pathname.replace(/\/+$/, "") : null;
}

// fileType is the media type the browser declares for a file, as it would in
// a multipart submission.
export function fileType(f) {
  return typeof f.type === "string" && f.type !== "" ? f.type : "application/octet-stream";
}

// sealedSize is the exact ciphertext length of report with files
// ({name, size, type}) encrypted to recipients. It needs no file's bytes:
// the report's length does not depend on the digests, which are always 64
// hex characters.
export function sealedSize(report, files, recipients) {
  const r = Object.assign({}, report, {
    attachments: files.map((f) => ({ name: f.name, size: f.size, sha256: "0".repeat(64), type: fileType(f) })),
  });
  return ciphertextSize(paddedSize(tarSize(marshalReport(r).length, files.map((f) => f.size))), recipients);
}
