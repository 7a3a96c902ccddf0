// memory.mjs sends a report from a desk page in Debian's Chromium and
// measures the page's memory, for test/e2e/large_browser_test.go. It drives
// Chromium over the DevTools protocol on a pipe by itself, without
// playwright: playwright turns on DevTools' Network domain, whose agent in
// the renderer keeps every request's body (up to about 200 MB) for
// Network.getRequestPostData, and that would be counted as the page's
// memory. Only the Page, Runtime and DOM domains are used here, so what the
// renderer holds is what the page holds. Without the Network domain it
// cannot list the page's requests: CSP violations are still caught (a
// securitypolicyviolation listener logs them), requests to other origins
// are left to the playwright scenarios of drive.mjs.
//
// It reports, in out.memory, each renderer process's resident memory
// (VmRSS) before the report is sent and its peak (VmHWM, reset at that
// moment) while it was sent, samples of
// both and of the JS heap (performance.memory) along the way, and the
// status lines the page showed with when.
import { spawn } from "node:child_process";
import { readFileSync, readdirSync, writeFileSync } from "node:fs";

// memoryScenario fills the desk page's form with cfg.text, cfg.category and
// cfg.file, sends it and reads the receipt into out.
export async function memoryScenario(cfg, out) {
  const args = ["--headless", "--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run",
    "--disable-background-networking", "--disable-component-update", "--disable-sync",
    "--enable-precise-memory-info", "--remote-debugging-pipe", "about:blank"];
  if (cfg.jitless) args.push("--js-flags=--jitless");
  const proc = spawn(cfg.chromium || "/usr/bin/chromium", args, { stdio: ["ignore", "ignore", "ignore", "pipe", "pipe"] });
  const cdp = pipeCDP(proc.stdio[3], proc.stdio[4]);
  try {
    out.browserVersion = (await cdp.send("Browser.getVersion")).product;
    const { targetId } = await cdp.send("Target.createTarget", { url: "about:blank" });
    const { sessionId } = await cdp.send("Target.attachToTarget", { targetId, flatten: true });
    const page = (method, params = {}) => cdp.send(method, params, sessionId);
    cdp.on("Runtime.consoleAPICalled", (p) => {
      const t = p.args.map((a) => a.value ?? a.description ?? "").join(" ");
      out.console.push(p.type + ": " + t);
      if (/Content Security Policy|Refused to/.test(t)) out.cspViolations.push(t);
    });
    cdp.on("Runtime.exceptionThrown", (p) => out.console.push("pageerror: " + (p.exceptionDetails.exception?.description || p.exceptionDetails.text)));
    await page("Runtime.enable");
    await page("Page.enable");
    await page("Page.addScriptToEvaluateOnNewDocument", {
      source: `document.addEventListener("securitypolicyviolation", (e) => console.error("Refused to load: CSP " + e.violatedDirective + " " + e.blockedURI));`,
    });
    const evaluate = async (expression) => {
      const r = await page("Runtime.evaluate", { expression, returnByValue: true, awaitPromise: true });
      if (r.exceptionDetails) throw new Error(`evaluate: ${r.exceptionDetails.exception?.description || r.exceptionDetails.text}`);
      return r.result.value;
    };
    await page("Page.navigate", { url: `${cfg.url}/desks/${cfg.desk}?lang=${cfg.lang || "en"}` });
    for (let n = 0; ; n++) {
      if (n > 600) throw new Error("the desk page did not load");
      const ready = await evaluate(`document.readyState === "complete" && !!document.querySelector("#send")`).catch(() => false);
      if (ready) break;
      await sleep(50);
    }
    await evaluate(`(() => {
      const t = document.querySelector('textarea[name="f.what"]');
      t.value = ${JSON.stringify(cfg.text)};
      t.dispatchEvent(new Event("input", { bubbles: true }));
      const c = document.querySelector('select[name="category"]');
      c.value = ${JSON.stringify(cfg.category || "")};
      c.dispatchEvent(new Event("change", { bubbles: true }));
    })()`);
    const input = await page("Runtime.evaluate", { expression: `document.querySelector('input[name="files"]')` });
    await page("DOM.setFileInputFiles", { files: [cfg.file], objectId: input.result.objectId });
    out.modeJS = await evaluate(`!document.querySelector("#mode-js").hidden`);

    await sleep(1000); // let the page settle before the baseline
    // Reset each renderer's VmHWM to its current VmRSS (Linux: "5" to
    // clear_refs), so that the peak read at the end is the peak while the
    // report was sent, not while the page loaded.
    for (const r of renderers()) {
      try {
        writeFileSync(`/proc/${r.pid}/clear_refs`, "5");
      } catch (e) {
        out.console.push(`memory: cannot reset the peak of renderer ${r.pid}: ${e.message}`);
      }
    }
    const mem = { renderers: renderers().map((r) => ({ pid: r.pid, baselineRSS: r.rss })), heapBaseline: await evaluate("performance.memory.usedJSHeapSize"), heapPeak: 0, statuses: [], samples: [] };
    out.memory = mem;
    const started = Date.now();
    await evaluate(`document.querySelector("#send").click()`);
    const deadline = started + (cfg.timeout || 180000);
    while (Date.now() < deadline) {
      const v = await evaluate(`(() => {
        const p = document.querySelector("#progress");
        return { value: p ? p.value : null, hidden: p ? p.hidden : true, done: !document.querySelector("#receipt").hidden,
          failed: !document.querySelector("#send-server").hidden, status: document.querySelector("#status").textContent,
          heap: performance.memory.usedJSHeapSize };
      })()`);
      const ms = Date.now() - started;
      if (!v.hidden && (out.progress.length === 0 || out.progress.at(-1) !== v.value)) out.progress.push(v.value);
      out.status = v.status;
      mem.heapPeak = Math.max(mem.heapPeak, v.heap);
      if (mem.statuses.length === 0 || mem.statuses.at(-1).status !== v.status) mem.statuses.push({ status: v.status, ms });
      if (mem.samples.length === 0 || ms - mem.samples.at(-1).ms >= 5000) {
        mem.samples.push({ ms, rss: mem.renderers.map((r) => status(r.pid).rss), heap: v.heap });
      }
      if (v.done || v.failed) break;
      await sleep(100);
    }
    out.elapsedMs = Date.now() - started;
    for (const r of mem.renderers) r.peakHWM = status(r.pid).hwm;
    out.receipt = await evaluate(`({
      id: document.querySelector("#receipt-id")?.textContent ?? "",
      sha256: document.querySelector("#receipt-sha256")?.textContent ?? "",
      received: document.querySelector("#receipt-received")?.textContent ?? "",
    })`);
    out.words = await evaluate(`document.querySelector("#receipt-words")?.textContent ?? ""`);
  } finally {
    cdp.send("Browser.close").catch(() => {});
    await new Promise((resolve) => {
      const t = setTimeout(() => {
        proc.kill("SIGKILL");
        resolve();
      }, 5000);
      proc.once("exit", () => {
        clearTimeout(t);
        resolve();
      });
    });
  }
}

const sleep = (ms) => new Promise((r) => setTimeout(r, ms));

// pipeCDP speaks the DevTools protocol over Chromium's
// --remote-debugging-pipe: JSON messages ended by a NUL byte.
function pipeCDP(write, read) {
  let id = 0;
  const waiting = new Map();
  const handlers = new Map();
  let buf = Buffer.alloc(0);
  read.on("data", (d) => {
    buf = Buffer.concat([buf, d]);
    for (let end = buf.indexOf(0); end >= 0; end = buf.indexOf(0)) {
      const msg = JSON.parse(buf.subarray(0, end).toString("utf8"));
      buf = buf.subarray(end + 1);
      if (msg.id !== undefined && waiting.has(msg.id)) {
        const { resolve, reject, method } = waiting.get(msg.id);
        waiting.delete(msg.id);
        if (msg.error) reject(new Error(`${method}: ${msg.error.message}`));
        else resolve(msg.result);
      } else if (msg.method && handlers.has(msg.method)) {
        handlers.get(msg.method)(msg.params);
      }
    }
  });
  read.on("close", () => {
    for (const { reject, method } of waiting.values()) reject(new Error(`${method}: the browser went away`));
    waiting.clear();
  });
  return {
    send(method, params = {}, sessionId) {
      return new Promise((resolve, reject) => {
        const msg = { id: ++id, method, params };
        if (sessionId) msg.sessionId = sessionId;
        waiting.set(msg.id, { resolve, reject, method });
        write.write(JSON.stringify(msg) + "\0");
      });
    },
    on(method, fn) {
      handlers.set(method, fn);
    },
  };
}

// renderers lists Chromium's renderer processes started under this one,
// with their resident memory (VmRSS, bytes). Linux only: read from /proc.
function renderers() {
  const parent = new Map();
  for (const d of readdirSync("/proc")) {
    if (!/^[0-9]+$/.test(d)) continue;
    try {
      const stat = readFileSync(`/proc/${d}/stat`, "utf8");
      parent.set(Number(d), Number(stat.slice(stat.lastIndexOf(")") + 2).split(" ")[1]));
    } catch {
      // gone
    }
  }
  const mine = (pid) => {
    for (let p = pid, n = 0; p > 1 && n < 64; p = parent.get(p), n++) if (p === process.pid) return true;
    return false;
  };
  const out = [];
  for (const pid of parent.keys()) {
    if (!mine(pid)) continue;
    let cmd = "";
    try {
      cmd = readFileSync(`/proc/${pid}/cmdline`, "utf8");
    } catch {
      continue;
    }
    if (cmd.includes("--type=renderer")) out.push({ pid, rss: status(pid).rss });
  }
  return out;
}

// status reads a process's VmRSS and VmHWM (its peak resident memory), in
// bytes; 0 when the process is gone.
function status(pid) {
  let text = "";
  try {
    text = readFileSync(`/proc/${pid}/status`, "utf8");
  } catch {
    return { rss: 0, hwm: 0 };
  }
  const kb = (k) => Number((text.match(new RegExp(`^${k}:\\s+([0-9]+) kB`, "m")) || [0, 0])[1]) * 1024;
  return { rss: kb("VmRSS"), hwm: kb("VmHWM") };
}
