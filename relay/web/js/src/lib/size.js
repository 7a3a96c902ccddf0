// @ts-check
// The exact size a report will have once sealed, known before any file is
// read, so that both pages can refuse what the relay would refuse without
// sending anything.

import { marshalReport, paddedSize, tarSize } from "./bundle.js";
import { ciphertextSize } from "./seal.js";

// TooLarge: the sealed report would be larger than the relay takes.
export class TooLarge extends Error {}

// fileType is the media type the browser declares for a file, as it would in
// a multipart submission.
/** @param {{type?: unknown}} f @returns {string} */
export function fileType(f) {
  return typeof f.type === "string" && f.type !== "" ? f.type : "application/octet-stream";
}

// sealedSize is the exact ciphertext length of report with files
// ({name, size, type}) encrypted to recipients. It needs no file's bytes:
// the report's length does not depend on the digests, which are always 64
// hex characters.
/**
 * @param {import("./bundle.js").Report} report
 * @param {Array<{name: string, size: number, type?: unknown}>} files
 * @param {string[]} recipients
 * @returns {number}
 */
export function sealedSize(report, files, recipients) {
  const r = Object.assign({}, report, {
    attachments: files.map((f) => ({ name: f.name, size: f.size, sha256: "0".repeat(64), type: fileType(f) })),
  });
  return ciphertextSize(paddedSize(tarSize(marshalReport(r).length, files.map((f) => f.size))), recipients);
}
