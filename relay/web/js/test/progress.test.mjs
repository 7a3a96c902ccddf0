// The progress line and the notice of a browser that cannot encrypt
// (src/pages/ui.js): no DOM beyond a fake element.
import { test } from "node:test";
import assert from "node:assert/strict";
import { formatSize, progressText, cryptoTrouble, showCryptoTrouble, progressBar, DEFAULT_SIZE_TEXT, DEFAULT_CRYPTO_TEXT, RATE_AFTER_MS } from "../src/pages/ui.js";
import { available } from "../src/lib/seal.js";

const FR = { ...DEFAULT_SIZE_TEXT, size_bytes: "{n} octets", size_kb: "{n} Ko", size_mb: "{n} Mo", size_gb: "{n} Go", decimal_mark: ",", progress_bytes: "{sent} sur {total}" };

test("formatSize writes sizes as relay/pages.go humanSize does", () => {
  const MiB = 1 << 20;
  for (const [T, n, want] of [
    [DEFAULT_SIZE_TEXT, 0, "0 bytes"],
    [DEFAULT_SIZE_TEXT, 1023, "1023 bytes"],
    [DEFAULT_SIZE_TEXT, 1024, "1 KB"],
    [DEFAULT_SIZE_TEXT, 1536, "1.5 KB"],
    [FR, 1536, "1,5 Ko"],
    [DEFAULT_SIZE_TEXT, 10 * MiB, "10 MB"],
    [DEFAULT_SIZE_TEXT, 10 * MiB - 1, "9.9 MB"],
    [DEFAULT_SIZE_TEXT, 64 * MiB, "64 MB"],
    [DEFAULT_SIZE_TEXT, 2 * 1024 * MiB, "2 GB"],
    [FR, 300, "300 octets"],
    [DEFAULT_SIZE_TEXT, 99 * MiB + MiB / 2, "99 MB"],
  ]) {
    assert.equal(formatSize(n, T), want, `formatSize(${n})`);
  }
});

test("progressText shows bytes sent of the total, and a rate only once it means something", () => {
  const MiB = 1 << 20;
  // The first piece handed over at once: no "162 GiB/s".
  assert.equal(progressText(MiB, 10 * MiB, 6, DEFAULT_SIZE_TEXT), "1 MB of 10 MB");
  assert.equal(progressText(0, 10 * MiB, 0, DEFAULT_SIZE_TEXT), "0 bytes of 10 MB");
  // Long enough, but too little sent yet.
  assert.equal(progressText(512 * 1024, 10 * MiB, 10000, DEFAULT_SIZE_TEXT), "512 KB of 10 MB");
  assert.equal(progressText(2 * MiB, 10 * MiB, 4000, DEFAULT_SIZE_TEXT), "2 MB of 10 MB, 512 KB/s");
  assert.equal(progressText(2 * MiB, 10 * MiB, RATE_AFTER_MS - 1, DEFAULT_SIZE_TEXT), "2 MB of 10 MB");
  // Done: no rate.
  assert.equal(progressText(10 * MiB, 10 * MiB, 20000, DEFAULT_SIZE_TEXT), "10 MB of 10 MB");
  assert.equal(progressText(3 * MiB, 6 * MiB, 1000, FR), "3 Mo sur 6 Mo");
});

function fakeElement() {
  return { hidden: true, textContent: "", value: 0, removeAttribute() {} };
}

test("progressBar shows its text beside the bar, and hides it with the bar", () => {
  const bar = fakeElement();
  const label = fakeElement();
  const p = progressBar(/** @type {any} */ (bar), /** @type {any} */ (label));
  p.set(0.5, "5 MB of 10 MB");
  assert.equal(bar.value, 50);
  assert.equal(label.textContent, "5 MB of 10 MB");
  assert.equal(label.hidden, false);
  p.hide();
  assert.equal(label.hidden, true);
  assert.equal(bar.hidden, true);
});

test("a browser with JavaScript but no crypto is told the real cause", () => {
  const streams = { ReadableStream: function () {}, TransformStream: function () {} };
  const subtle = { digest() {} };
  const crypto = { subtle, getRandomValues() {} };
  // Not a secure context: the browser withholds crypto.subtle.
  const insecure = { isSecureContext: false, crypto: { getRandomValues() {} }, ...streams };
  assert.equal(cryptoTrouble(insecure, available(insecure)), "insecure");
  // A secure context that lacks streams or WebCrypto.
  const noStreams = { isSecureContext: true, crypto };
  assert.equal(cryptoTrouble(noStreams, available(noStreams)), "missing");
  const noSubtle = { isSecureContext: true, crypto: { getRandomValues() {} }, ...streams };
  assert.equal(cryptoTrouble(noSubtle, available(noSubtle)), "missing");
  const fine = { isSecureContext: true, crypto, ...streams };
  assert.equal(cryptoTrouble(fine, available(fine)), null);

  const el = fakeElement();
  const doc = /** @type {any} */ ({ getElementById: (id) => (id === "mode-nocrypto" ? el : null) });
  showCryptoTrouble(doc, null, DEFAULT_CRYPTO_TEXT);
  assert.equal(el.hidden, true);
  showCryptoTrouble(doc, "insecure", DEFAULT_CRYPTO_TEXT);
  assert.equal(el.hidden, false);
  assert.match(el.textContent, /not reached over a secure connection/);
  showCryptoTrouble(doc, "missing", DEFAULT_CRYPTO_TEXT);
  assert.match(el.textContent, /lacks the encryption functions/);
});
