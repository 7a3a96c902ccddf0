// firefox.mjs opens Debian's Firefox ESR, the engine Tor Browser is built
// on, with puppeteer-core over WebDriver BiDi, for drive.mjs. It sets Tor
// Browser's security level through prefs and hands back a page with the
// few playwright-style methods drive.mjs's scenarios use, so the same
// scenario code runs in Chromium and in Firefox. It is not part of the
// bundle served to submitters.
//
// cfg.level is "safer" (JavaScript without JIT, WebAssembly or asm.js),
// "safest" (no JavaScript at all) or "standard" (everything on). cfg.socks ("127.0.0.1:9050") sends every
// request through a Tor client's SOCKS port with remote DNS, as Tor Browser
// does; onions then count as secure contexts. cfg.profiles is where the
// fresh profile is made (the system's temporary directory by default).
import { mkdtempSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import puppeteer from "puppeteer-core";

// Tor Browser's Safer level, as far as the engine goes: no JIT tiers, no
// native regular expressions, no WebAssembly, no asm.js.
export const saferPrefs = {
  "javascript.options.ion": false,
  "javascript.options.baselinejit": false,
  "javascript.options.native_regexp": false,
  "javascript.options.wasm": false,
  "javascript.options.asmjs": false,
};

// Tor Browser's Safest level: no script.
export const safestPrefs = { "javascript.enabled": false };

// quiet keeps Firefox from reaching out on its own: nothing but the test's
// own requests should leave it, least of all through Tor.
const quiet = {
  "app.normandy.enabled": false,
  "browser.newtabpage.enabled": false,
  "browser.region.network.url": "",
  "browser.safebrowsing.downloads.enabled": false,
  "browser.safebrowsing.malware.enabled": false,
  "browser.safebrowsing.phishing.enabled": false,
  "browser.search.update": false,
  "captivedetect.canonicalURL": "",
  "datareporting.healthreport.uploadEnabled": false,
  "datareporting.policy.dataSubmissionEnabled": false,
  "extensions.getAddons.cache.enabled": false,
  "network.captive-portal-service.enabled": false,
  "network.connectivity-service.enabled": false,
  "network.dns.disablePrefetch": true,
  "network.http.speculative-parallel-limit": 0,
  "network.prefetch-next": false,
  "services.settings.server": "http://127.0.0.1:9/",
  "toolkit.telemetry.enabled": false,
};

// torBrowser is what Tor Browser sets around onions: HTTPS-Only mode, with
// onions (and the loopback test host) exempt from upgrades, and no HTTP/3.
const torBrowser = {
  "dom.security.https_only_mode": true,
  "dom.security.https_only_mode.upgrade_onion": false,
  "dom.security.https_only_mode.upgrade_local": false,
  "network.http.http3.enable": false,
};

// prefsFor is every pref set for cfg.
export function prefsFor(cfg) {
  const host = new URL(cfg.url).hostname;
  const level = cfg.level === "safest" ? safestPrefs : cfg.level === "standard" ? {} : saferPrefs;
  const prefs = { ...quiet, ...torBrowser, ...level };
  // Tor Browser treats onions as secure contexts. Over Tor the onion pref
  // alone does it; a test host over plain HTTP gets the same through the
  // allowlist.
  if (!cfg.socks) prefs["dom.securecontext.allowlist"] = host;
  else {
    const [socksHost, socksPort] = cfg.socks.split(":");
    Object.assign(prefs, {
      "network.proxy.type": 1,
      "network.proxy.socks": socksHost,
      "network.proxy.socks_port": Number(socksPort),
      "network.proxy.socks_version": 5,
      "network.proxy.socks_remote_dns": true,
      "network.proxy.no_proxies_on": "",
      "network.proxy.allow_hijacking_localhost": true,
      "network.dns.blockDotOnion": false,
      "dom.securecontext.allowlist_onions": true,
    });
  }
  return prefs;
}

// openFirefox launches Firefox for cfg, records what drive.mjs records in
// out, and returns { page, close }.
export async function openFirefox(cfg, out) {
  const profile = mkdtempSync(join(cfg.profiles || tmpdir(), "amana-firefox-"));
  const browser = await puppeteer.launch({
    browser: "firefox",
    executablePath: cfg.firefox || "/usr/bin/firefox-esr",
    headless: true,
    userDataDir: profile,
    extraPrefsFirefox: prefsFor(cfg),
    protocolTimeout: 300000,
  });
  const close = async () => {
    await browser.close().catch(() => {});
    rmSync(profile, { recursive: true, force: true });
  };
  try {
    out.browserVersion = await browser.version();
    const p = await browser.newPage();
    await p.setViewport({ width: 390, height: 844 });
    p.setDefaultTimeout(120000);
    const origin = new URL(cfg.url).origin;
    const js = cfg.level !== "safest";
    // Firefox fetches /favicon.ico itself, and on a page that counts as a
    // secure context over plain HTTP (an onion, or the allowlisted test
    // host) it upgrades that fetch to https on the same host, as mixed
    // display content. The page asks for nothing of the kind: that one
    // request is recorded apart, and every other one must stay on origin.
    const upgradedIcon = origin.replace(/^http:/, "https:") + "/favicon.ico";
    p.on("request", (r) => {
      if (r.url() === upgradedIcon) out.upgradedFavicon = r.url();
      else if (!r.url().startsWith(origin + "/") && !r.url().startsWith("data:")) out.foreign.push(r.url());
      if (r.method() === "PATCH") out.patches.push(Number(r.headers()["upload-offset"]));
    });
    p.on("console", (m) => {
      const t = m.text();
      out.console.push(m.type() + ": " + t);
      if (/Content Security Policy|Content-Security-Policy|Refused to/.test(t)) out.cspViolations.push(t);
    });
    p.on("pageerror", (e) => out.console.push("pageerror: " + (e && e.message || e)));
    if (js) {
      await p.evaluateOnNewDocument(() => {
        document.addEventListener("securitypolicyviolation", (e) => console.error("Refused to load: CSP " + e.violatedDirective + " " + e.blockedURI));
      });
    }
    if (cfg.abortPatch) {
      let n = 0;
      await p.setRequestInterception(true);
      p.on("request", (r) => {
        if (r.isInterceptResolutionHandled()) return;
        if (r.method() === "PATCH" && ++n === cfg.abortPatch) r.abort("connectionreset");
        else r.continue();
      });
    }
    return { page: adapt(p, js, out), close };
  } catch (e) {
    await close();
    throw e;
  }
}

// engine reports what the page's engine offers a script: at Safer,
// WebAssembly must be gone and browser crypto still there.
function engine(p) {
  return p.evaluate(() => ({
    wasm: typeof WebAssembly,
    secureContext: window.isSecureContext,
    subtle: !!(window.crypto && window.crypto.subtle),
  }));
}

// adapt wraps a puppeteer page in the playwright-style methods drive.mjs
// uses. With scripts off, a click does nothing over BiDi, so a button is
// focused and Enter pressed, as a keyboard user would. The first page
// loaded records in out.engine what the engine offers the page's scripts.
function adapt(p, js, out) {
  const sleep = (ms) => new Promise((r) => setTimeout(r, ms));
  return {
    raw: p,
    url: () => p.url(),
    goto: async (url) => {
      await p.goto(url, { waitUntil: "load" });
      if (!out.engine) out.engine = await engine(p);
    },
    evaluate: (fn, arg) => p.evaluate(fn, arg),
    $eval: (sel, fn, arg) => p.$eval(sel, fn, arg),
    textContent: (sel) => p.$eval(sel, (e) => e.textContent),
    isVisible: (sel) => p.evaluate((s) => {
      const e = document.querySelector(s);
      if (!e) return false;
      const r = e.getBoundingClientRect();
      return (r.width > 0 || r.height > 0) && getComputedStyle(e).visibility !== "hidden";
    }, sel),
    fill: (sel, value) => p.$eval(sel, (e, v) => {
      e.value = v;
      e.dispatchEvent(new Event("input", { bubbles: true }));
      e.dispatchEvent(new Event("change", { bubbles: true }));
    }, value),
    selectOption: async (sel, value) => {
      const got = await p.select(sel, value);
      if (!got.includes(value)) throw new Error(`no option ${JSON.stringify(value)} in ${sel}`);
    },
    setInputFiles: async (sel, files) => {
      const h = await p.$(sel);
      if (!h) throw new Error(`no ${sel}`);
      await h.uploadFile(...[].concat(files));
    },
    click: async (sel) => {
      if (js) return p.click(sel);
      await p.focus(sel);
      await p.keyboard.press("Enter");
    },
    screenshot: (o) => p.screenshot({ path: o.path, fullPage: !!o.fullPage }),
    waitForTimeout: sleep,
    waitForFunction: (fn, arg, o = {}) => p.waitForFunction(fn, { timeout: o.timeout, polling: 100 }, arg),
    // waitForURL waits until the page's URL matches a playwright glob and
    // its document has loaded.
    waitForURL: async (glob, o = {}) => {
      const re = new RegExp("^" + glob.split("**").map((part) => part.split("*").map(escape).join("[^/]*")).join(".*") + "$");
      const deadline = Date.now() + (o.timeout || 30000);
      for (;;) {
        if (re.test(p.url())) {
          const state = await p.evaluate(() => document.readyState).catch(() => "");
          if (state === "complete") return;
        }
        if (Date.now() > deadline) throw new Error(`timed out waiting for ${glob}, at ${p.url()}`);
        await sleep(100);
      }
    },
  };
}

function escape(s) {
  return s.replace(/[.+?^${}()|[\]\\]/g, "\\$&");
}
