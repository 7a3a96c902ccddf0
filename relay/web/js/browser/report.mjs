// report.mjs opens a static report page written by 'amana report --html'
// in Debian's Chromium with playwright-core, for the Go end-to-end test
// test/e2e/report_browser_test.go. It prints one JSON object: the page's
// computed direction, the requests it made (a static report makes none
// but its own file), console lines, and the screenshot's path. It is not
// part of the bundle served to submitters.
//
// usage: node report.mjs '{"file": "/abs/report-ar.html", "screenshot": "/abs/out.png", "chromium": "/usr/bin/chromium"}'
import { chromium } from "playwright-core";
import { pathToFileURL } from "node:url";

const cfg = JSON.parse(process.argv[2]);
const out = { requests: [], console: [] };
let browser;
try {
  browser = await chromium.launch({
    executablePath: cfg.chromium || "/usr/bin/chromium", headless: true,
    args: ["--headless", "--no-sandbox", "--disable-gpu", "--no-first-run", "--disable-background-networking",
      "--disable-component-update", "--disable-sync"],
  });
  out.browserVersion = browser.version();
  const page = await (await browser.newContext({ viewport: { width: 1000, height: 900 } })).newPage();
  const url = pathToFileURL(cfg.file).href;
  page.on("request", (r) => { if (r.url() !== url) out.requests.push(r.url()); });
  page.on("console", (m) => out.console.push(m.type() + ": " + m.text()));
  await page.goto(url, { waitUntil: "load" });
  Object.assign(out, await page.evaluate(() => {
    const h1 = document.querySelector("h1");
    return {
      dir: getComputedStyle(document.documentElement).direction,
      bodyDir: getComputedStyle(document.body).direction,
      lang: document.documentElement.lang,
      title: h1 ? h1.textContent : "",
      // Where the heading's text starts, in pixels from the heading box's
      // right edge (right to left) and from its left edge (left to right).
      textFromRight: h1 ? (() => { const r = document.createRange(); r.selectNodeContents(h1); return Math.round(h1.getBoundingClientRect().right - r.getBoundingClientRect().right); })() : -1,
      textFromLeft: h1 ? (() => { const r = document.createRange(); r.selectNodeContents(h1); return Math.round(r.getBoundingClientRect().left - h1.getBoundingClientRect().left); })() : -1,
      charts: document.querySelectorAll("svg").length,
      scripts: document.scripts.length,
    };
  }));
  await page.screenshot({ path: cfg.screenshot, fullPage: true });
  out.screenshot = cfg.screenshot;
} catch (e) {
  out.error = String(e && e.stack || e);
} finally {
  if (browser) await browser.close();
}
process.stdout.write(JSON.stringify(out) + "\n");
