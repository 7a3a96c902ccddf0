// The split of src/ (README.md): src/lib holds the protocol, with no DOM,
// and src/pages the code that wires the page to it. A source scan keeps it
// true: no file under src/lib names document, window or navigator (comments
// aside), nor imports from src/pages; every source file is type-checked.

import { test } from "node:test";
import assert from "node:assert/strict";
import { readdirSync, readFileSync } from "node:fs";
import { fileURLToPath } from "node:url";
import { join, relative } from "node:path";

const SRC = fileURLToPath(new URL("../src/", import.meta.url));

function sources(dir) {
  const out = [];
  for (const e of readdirSync(dir, { withFileTypes: true })) {
    const p = join(dir, e.name);
    if (e.isDirectory()) {
      out.push(...sources(p));
    } else if (e.name.endsWith(".js")) {
      out.push(p);
    }
  }
  return out.sort();
}

// code is a source without its comments. It is crude (a "//" inside a
// string ends the line early), which can only hide a name that follows it
// on the same line.
function code(text) {
  return text.replace(/\/\*[\s\S]*?\*\//g, "").replace(/\/\/.*$/gm, "");
}

test("layout: src/lib has modules, src/pages has both pages", () => {
  const names = sources(SRC).map((p) => relative(SRC, p));
  for (const want of ["lib/bundle.js", "lib/seal.js", "lib/route.js", "pages/ui.js", "pages/desk.js", "pages/check.js", "main.js"]) {
    assert.ok(names.includes(want), `src/${want} is missing`);
  }
});

test("layout: src/lib uses no DOM", () => {
  const lib = sources(join(SRC, "lib"));
  assert.ok(lib.length > 0);
  for (const p of lib) {
    const c = code(readFileSync(p, "utf8"));
    for (const name of ["document", "window", "navigator"]) {
      assert.doesNotMatch(c, new RegExp(`\\b${name}\\b`), `${relative(SRC, p)} uses ${name}: DOM code goes in src/pages`);
    }
    assert.doesNotMatch(c, /from\s+["'][^"']*pages\//, `${relative(SRC, p)} imports from src/pages`);
  }
});

test("layout: the scan sees a DOM name", () => {
  assert.match(code('const d = document.getElementById("x"); // window'), /\bdocument\b/);
  assert.doesNotMatch(code("// window\n/* navigator */ const x = 1;"), /\b(window|navigator)\b/);
});

test("layout: every source file is type-checked", () => {
  for (const p of sources(SRC)) {
    assert.match(readFileSync(p, "utf8"), /^\/\/ @ts-check\n/, `${relative(SRC, p)} does not start with // @ts-check`);
  }
});
