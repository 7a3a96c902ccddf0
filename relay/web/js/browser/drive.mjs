// drive.mjs drives Debian's Chromium with playwright-core through one
// submission scenario on an Amana relay's pages, for the Go end-to-end
// tests (cmd/internal/e2e/browser_test.go). It prints one JSON object with
// what it observed. It is not part of the bundle served to submitters.
//
// usage: node drive.mjs '{"url": "...", "desk": "...", ...}'
import { chromium } from "playwright-core";

const cfg = JSON.parse(process.argv[2]);
const out = { cspViolations: [], foreign: [], console: [], progress: [], patches: [] };

const args = ["--headless", "--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run",
  "--disable-background-networking", "--disable-component-update", "--disable-sync"];
if (cfg.jitless) args.push("--js-flags=--jitless");

const browser = await chromium.launch({ executablePath: cfg.chromium || "/usr/bin/chromium", args, headless: true });
try {
  const context = await browser.newContext({ javaScriptEnabled: cfg.js !== false, viewport: { width: 390, height: 844 } });
  const page = await context.newPage();
  const origin = new URL(cfg.url).origin;
  page.on("request", (r) => {
    if (!r.url().startsWith(origin + "/") && !r.url().startsWith("data:")) out.foreign.push(r.url());
    if (r.method() === "PATCH") out.patches.push(Number(r.headers()["upload-offset"]));
  });
  page.on("console", (m) => {
    const t = m.text();
    out.console.push(m.type() + ": " + t);
    if (/Content Security Policy|Refused to/.test(t)) out.cspViolations.push(t);
  });
  page.on("pageerror", (e) => out.console.push("pageerror: " + e.message));
  // Count CSP violations reported to the page itself, too.
  await context.addInitScript(() => {
    document.addEventListener("securitypolicyviolation", (e) => console.error("Refused to load: CSP " + e.violatedDirective + " " + e.blockedURI));
  });
  if (cfg.abortPatch) {
    let n = 0;
    await page.route("**/api/v1/uploads/*", async (route) => {
      if (route.request().method() === "PATCH" && ++n === cfg.abortPatch) {
        await route.abort("connectionreset");
        return;
      }
      await route.continue();
    });
  }
  await page.goto(`${cfg.url}/desks/${cfg.desk}?lang=${cfg.lang || "en"}`);
  out.dir = await page.evaluate(() => document.documentElement.dir);
  out.lang = await page.evaluate(() => document.documentElement.lang);
  if (cfg.screenshot) {
    await page.screenshot({ path: cfg.screenshot, fullPage: true });
    out.screenshot = cfg.screenshot;
  }
  if (cfg.text === undefined) {
    out.modeJS = await page.isVisible("#mode-js");
  } else {
    await page.fill('textarea[name="f.what"]', cfg.text);
    if (cfg.category) await page.selectOption('select[name="category"]', cfg.category);
    if (cfg.file) await page.setInputFiles('input[name="files"]', cfg.file);
    out.modeJS = await page.isVisible("#mode-js");
    if (cfg.js === false) {
      await Promise.all([page.waitForURL("**/submit", { timeout: 120000 }), page.click("#send")]);
      out.receipt = {
        id: await page.textContent("dl dd:nth-of-type(1)"),
        sha256: await page.textContent("dl dd:nth-of-type(2)"),
        received: await page.textContent("dl dd:nth-of-type(3)"),
      };
      out.body = await page.textContent("main");
    } else {
      await page.click("#send");
      const deadline = Date.now() + (cfg.timeout || 180000);
      while (Date.now() < deadline) {
        const v = await page.evaluate(() => {
          const p = document.querySelector("#progress");
          return { value: p ? p.value : null, hidden: p ? p.hidden : true, done: !document.querySelector("#receipt").hidden,
            status: document.querySelector("#status").textContent };
        });
        if (!v.hidden && (out.progress.length === 0 || out.progress[out.progress.length - 1] !== v.value)) out.progress.push(v.value);
        out.status = v.status;
        if (v.done) break;
        if (await page.isVisible("#send-server")) break; // encryption failed
        await page.waitForTimeout(50);
      }
      out.receipt = {
        id: await page.textContent("#receipt-id"),
        sha256: await page.textContent("#receipt-sha256"),
        received: await page.textContent("#receipt-received"),
      };
    }
  }
} catch (e) {
  out.error = String(e && e.stack || e);
} finally {
  await browser.close();
}
process.stdout.write(JSON.stringify(out) + "\n");
