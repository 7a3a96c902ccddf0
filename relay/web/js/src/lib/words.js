// @ts-check
// The receipt word list, shared with the Go side: esbuild's text loader
// embeds crypto/receipt-words.txt in the bundle (package.json's build
// script). Node cannot import it; tests read the file and build a Wordlist.

import text from "../../../../../crypto/receipt-words.txt";
import { Wordlist } from "./receipt.js";

/** @type {Wordlist | null} */
let list = null;

// wordlist returns the Wordlist, built on first use.
/** @returns {Wordlist} */
export function wordlist() {
  if (list === null) {
    list = new Wordlist(text);
  }
  return list;
}
