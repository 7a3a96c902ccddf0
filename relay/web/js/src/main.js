// @ts-check
// The bundle's entry (package.json's build script): it wires the page it
// finds, the check page (pages/check.js) or the submission page
// (pages/desk.js), once the document is parsed. What either page does in
// the browser is in src/lib, which touches no DOM.

import { wordlist } from "./lib/words.js";
import { initCheck } from "./pages/check.js";
import { initDesk } from "./pages/desk.js";

function init() {
  const words = wordlist();
  if (document.getElementById("check-form")) {
    initCheck(words, window);
    return;
  }
  initDesk(words, window);
}

if (typeof document !== "undefined") {
  if (document.readyState === "loading") {
    document.addEventListener("DOMContentLoaded", init, { once: true });
  } else {
    init();
  }
}
