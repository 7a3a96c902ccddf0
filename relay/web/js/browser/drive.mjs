// drive.mjs drives a browser through one scenario on an Amana relay's
// pages, for the Go end-to-end tests (test/e2e/browser_test.go and
// firefox_test.go): Debian's Chromium with playwright-core, or, with
// cfg.browser "firefox", Debian's Firefox ESR with puppeteer-core at one of
// Tor Browser's security levels (firefox.mjs). It prints one JSON object
// with what it observed. It is not part of the bundle served to submitters.
//
// usage: node drive.mjs '{"url": "...", "desk": "...", ...}'
import { chromium } from "playwright-core";

const cfg = JSON.parse(process.argv[2]);
const out = { cspViolations: [], foreign: [], console: [], progress: [], patches: [] };
if (cfg.level === "safest") cfg.js = false; // Tor Browser's Safest level runs no script

let close = async () => {};
try {
  let page;
  if (cfg.memory) {
    // A measured run drives Chromium without playwright (memory.mjs).
    const { memoryScenario } = await import("./memory.mjs");
    await memoryScenario(cfg, out);
  } else {
    if (cfg.browser === "firefox") {
      const { openFirefox } = await import("./firefox.mjs");
      ({ page, close } = await openFirefox(cfg, out));
    } else {
      ({ page, close } = await openChromium(cfg, out));
    }
    if (cfg.page === "check") await checkScenario(page, cfg, out);
    else if (cfg.page === "bidi") await bidiScenario(page, cfg, out);
    else if (cfg.page === "status") await statusScenario(page, cfg, out);
    else await submitScenario(page, cfg, out);
  }
} catch (e) {
  out.error = String(e && e.stack || e);
} finally {
  await close();
}
process.stdout.write(JSON.stringify(out) + "\n");

// openChromium launches Chromium for cfg, records requests, console lines
// and CSP violations in out, and returns { page, close }.
async function openChromium(cfg, out) {
  const args = ["--headless", "--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run",
    "--disable-background-networking", "--disable-component-update", "--disable-sync"];
  if (cfg.jitless) args.push("--js-flags=--jitless");

  const browser = await chromium.launch({ executablePath: cfg.chromium || "/usr/bin/chromium", args, headless: true });
  const close = () => browser.close();
  try {
    out.browserVersion = browser.version();
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
    return { page, close };
  } catch (e) {
    await close();
    throw e;
  }
}

// checkScenario opens the check page with a receipt, reads the thread, and
// optionally sends a follow-up. The route of a follow-up is chosen
// explicitly: cfg.route is the value to select ("" leaves the select on its
// empty first choice, and then the form must not be sent); without
// cfg.route the select must not be shown (a verified reply, or a thread,
// decides). out.routeShown and out.routeDefault say what the page offered.
async function checkScenario(page, cfg, out) {
  await page.goto(`${cfg.url}/check?lang=${cfg.lang || "en"}`);
  out.modeJS = await page.isVisible("#mode-js");
  await page.fill("#receipt", cfg.receipt);
  const chooseRoute = async (sel) => {
    out.routeShown = await page.isVisible(sel);
    out.routeDefault = out.routeShown ? await page.$eval(sel, (el) => el.value) : null;
    if (cfg.route === undefined) {
      if (out.routeShown) throw new Error("the page asks for a route, and the scenario gives none");
      return;
    }
    if (!out.routeShown) throw new Error("the scenario chooses a route, and the page shows no choice");
    await page.selectOption(sel, cfg.route);
  };
  // blocked sends the form and reports whether the browser refused to
  // (a required choice left empty): the page and the status stay as they were.
  const blocked = async (sel, button, status) => {
    const url = page.url();
    const before = status ? await page.textContent(status) : "";
    await page.click(button);
    await page.waitForTimeout(1500);
    out.routeMissing = await page.$eval(sel, (el) => el.validity.valueMissing);
    return page.url() === url && (!status || (await page.textContent(status)) === before);
  };
  if (cfg.js === false) {
    await Promise.all([page.waitForURL("**/check", { timeout: 120000 }), page.click("#check")]);
    out.body = await page.textContent("main");
    await shot(page, cfg.screenshot, out);
    if (cfg.followup) {
      await chooseRoute("select[name=route]");
      await page.fill('textarea[name="f.message"]', cfg.followup);
      const button = 'form[action="/check/followup"] button';
      if (cfg.route === "") {
        out.followupBlocked = await blocked("select[name=route]", button, null);
        return;
      }
      await Promise.all([page.waitForURL("**/check/followup", { timeout: 120000 }), page.click(button)]);
      out.followupBody = await page.textContent("main");
    }
    return;
  }
  await page.click("#check");
  await page.waitForFunction(() => !document.querySelector("#thread").hidden || /\S/.test(document.querySelector("#status").textContent), null, { timeout: 120000 });
  await page.waitForTimeout(200);
  out.body = await page.textContent("#thread");
  out.status = await page.textContent("#status");
  await shot(page, cfg.screenshot, out);
  if (cfg.followup) {
    await chooseRoute("#followup-route");
    await page.fill("#followup-text", cfg.followup);
    if (cfg.route === "") {
      out.followupBlocked = await blocked("#followup-route", "#followup-send", "#status");
      return;
    }
    const before = await page.textContent("#status");
    await page.click("#followup-send");
    await page.waitForFunction((b) => document.querySelector("#status").textContent !== b, before, { timeout: 120000 });
    await page.waitForTimeout(300);
    out.followupStatus = await page.textContent("#status");
  }
}

// statusScenario opens the check page in cfg.lang with cfg.receipt and
// reports the case's status line apart from the messages (out.statusShown,
// out.statusLine, out.messages: each message's text), and whether the
// satisfaction question is offered (out.surveyShown); with cfg.score it
// answers it (cfg.comment optional) and reports the confirmation
// (out.surveyBody without JavaScript, out.surveyStatus and
// out.surveyAnswered with it). Screenshots: cfg.screenshot, then
// cfg.surveyShot after the answer.
async function statusScenario(page, cfg, out) {
  await page.goto(`${cfg.url}/check?lang=${cfg.lang || "en"}`);
  out.dir = await page.evaluate(() => document.documentElement.dir);
  out.lang = await page.evaluate(() => document.documentElement.lang);
  out.modeJS = await page.isVisible("#mode-js");
  await page.fill("#receipt", cfg.receipt);
  if (cfg.js === false) {
    await Promise.all([page.waitForURL("**/check", { timeout: 120000 }), page.click("#check")]);
  } else {
    await page.click("#check");
    await page.waitForFunction(() => !document.querySelector("#thread").hidden || /\S/.test(document.querySelector("#status").textContent), null, { timeout: 120000 });
    await page.waitForTimeout(200);
    out.status = await page.textContent("#status");
  }
  out.statusShown = await page.isVisible("#case-status");
  out.statusLine = out.statusShown ? await page.textContent("#status-line") : "";
  out.messages = await page.$$eval("article.reply", (els) => els.map((e) => e.textContent));
  out.surveyShown = await page.isVisible("#survey-form");
  await shot(page, cfg.screenshot, out);
  if (!cfg.score) return;
  if (!out.surveyShown) throw new Error("the scenario answers the survey, and the page does not offer it");
  await page.check(`#survey-form input[name="satisfaction"][value="${cfg.score}"]`);
  if (cfg.comment) await page.fill("#survey-comment", cfg.comment);
  if (cfg.js === false) {
    await Promise.all([page.waitForURL("**/check/followup", { timeout: 120000 }), page.click("#survey-send")]);
    out.surveyBody = await page.textContent("main");
  } else {
    const before = await page.textContent("#status");
    await page.click("#survey-send");
    // Done when the button is back: the page encrypted and sent, or said why not.
    await page.waitForFunction((b) => document.querySelector("#status").textContent !== b && !document.querySelector("#survey-send").disabled, before, { timeout: 120000 });
    await page.waitForTimeout(300);
    out.surveyStatus = await page.textContent("#status");
    out.surveyAnswered = (await page.isVisible("#survey-answered")) ? await page.textContent("#survey-answered") : "";
    out.surveyShown = await page.isVisible("#survey-form");
  }
  await shot(page, cfg.surveyShot, out);
}

// submitScenario opens a desk's form, fills and sends it, and reads the
// receipt.
async function submitScenario(page, cfg, out) {
  await page.goto(`${cfg.url}/desks/${cfg.desk}?lang=${cfg.lang || "en"}`);
  out.dir = await page.evaluate(() => document.documentElement.dir);
  out.lang = await page.evaluate(() => document.documentElement.lang);
  await shot(page, cfg.screenshot, out);
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
      out.words = await page.textContent(".words").catch(() => "");
      await shot(page, cfg.receiptShot, out);
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
      out.words = await page.textContent("#receipt-words");
      if (await page.isVisible("#receipt")) await shot(page, cfg.receiptShot, out);
    }
  }
}

// bidiScenario opens a desk's page and then the check page, with a receipt
// whose thread has a reply, in cfg.lang, and measures how the browser laid
// out the text of each selector in cfg.deskMeasure and cfg.checkMeasure
// (name to CSS selector): out.measure[name] is the element's computed
// direction, its text, its first and last visible characters with their
// boxes, and the leftmost left and rightmost right of all its characters.
// Screenshots go to cfg.screenshot with "-desk" and "-check" before ".png".
async function bidiScenario(page, cfg, out) {
  out.measure = {};
  const shot = async (what) => {
    if (cfg.screenshot) await page.screenshot({ path: cfg.screenshot.replace(/\.png$/, `-${what}.png`), fullPage: true });
  };
  const measure = async (sels) => {
    for (const [name, sel] of Object.entries(sels || {})) {
      out.measure[name] = await page.$eval(sel, (el) => {
        const chars = [];
        const walker = document.createTreeWalker(el, NodeFilter.SHOW_TEXT);
        for (let n = walker.nextNode(); n; n = walker.nextNode()) {
          for (let i = 0; i < n.data.length; i++) {
            if (/\S/.test(n.data[i]) && !/[\u2066-\u2069]/.test(n.data[i])) chars.push([n, i]);
          }
        }
        const box = ([n, i]) => {
          const r = document.createRange();
          r.setStart(n, i);
          r.setEnd(n, i + 1);
          const b = r.getBoundingClientRect();
          return { ch: n.data[i], left: b.left, right: b.right, top: b.top };
        };
        const boxes = chars.map(box);
        return {
          direction: getComputedStyle(el).direction,
          text: el.textContent,
          first: boxes[0],
          last: boxes[boxes.length - 1],
          minLeft: Math.min(...boxes.map((b) => b.left)),
          maxRight: Math.max(...boxes.map((b) => b.right)),
        };
      }).catch((e) => ({ error: String(e) }));
    }
  };
  const lang = cfg.lang || "en";
  await page.goto(`${cfg.url}/desks/${cfg.desk}?lang=${lang}`);
  out.dir = await page.evaluate(() => document.documentElement.dir);
  out.options = await page.$$eval('select[name="category"] option', (os) => os.map((o) => o.textContent));
  await measure(cfg.deskMeasure);
  await shot("desk");
  await page.goto(`${cfg.url}/check?lang=${lang}`);
  await page.fill("#receipt", cfg.receipt);
  if (cfg.js === false) {
    await Promise.all([page.waitForURL("**/check", { timeout: 120000 }), page.click("#check")]);
  } else {
    await page.click("#check");
    await page.waitForFunction(() => !document.querySelector("#thread").hidden, null, { timeout: 120000 });
  }
  await measure(cfg.checkMeasure);
  await shot("check");
}

// shot saves a full-page screenshot to path, when one is asked for.
async function shot(page, path, out) {
  if (!path) return;
  await page.screenshot({ path, fullPage: true });
  (out.screenshots ||= []).push(path);
}
