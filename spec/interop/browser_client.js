#!/usr/bin/env node
// Interop checks with a real browser: headless Chromium's own WebSocket
// against nexlua.
//
//   node spec/interop/browser_client.js ECHO_URL APP_BASE PLAIN_BASE
//
// ECHO_URL is examples/echo's ws://HOST:PORT/ws; APP_BASE (ws://HOST:PORT) serves
// spec/interop/browser_app.lua, PLAIN_BASE the same app under --no-compression.
// Starts Chromium (NEXLUA_CHROMIUM, default /usr/bin/chromium) headless with a
// throwaway profile, drives it over the DevTools protocol on a pipe
// (--remote-debugging-pipe: no debugging port, no npm package), opens
// spec/interop/browser_page.html as a file:// URL and runs each check in that
// page. Prints `ok - NAME` / `not ok - NAME: detail` per check, then
// `N passed, M failed`; exits 1 on any failure. A browser that cannot start
// fails every check. The browser is closed (killed by its PID if need be)
// whatever happens.
'use strict';

const { spawn } = require('child_process');
const fs = require('fs');
const os = require('os');
const path = require('path');
const { pathToFileURL } = require('url');

const [ECHO_URL, APP_BASE, PLAIN_BASE] = process.argv.slice(2);
if (!ECHO_URL || !APP_BASE || !PLAIN_BASE) {
  console.error('usage: browser_client.js ws://HOST:PORT/ws ws://HOST:PORT ws://HOST:PORT');
  process.exit(2);
}
const CHROMIUM = process.env.NEXLUA_CHROMIUM || '/usr/bin/chromium';
const PAGE = pathToFileURL(path.join(__dirname, 'browser_page.html')).href;

const START_TIMEOUT_MS = 20000; // browser start and page load
const CHECK_TIMEOUT_MS = 12000; // per check (the page bounds each wait to 8 s)
const SUITE_DEADLINE_MS = 45000; // no check starts after this
const CLOSE_TIMEOUT_MS = 5000; // Browser.close, then SIGKILL

// [id in the page's checks, name printed]
const CHECKS = [
  ['textAscii', 'text ascii echo'],
  ['textUtf8', 'text multi-byte utf-8 echo (accents, CJK, emoji, U+10FFFF)'],
  ['binaryArrayBuffer', 'binary echo, binaryType arraybuffer (every byte 0..255, and empty)'],
  ['binaryBlob', 'binary echo, binaryType blob (a Blob sent, a Blob received)'],
  ['text1MiB', 'text 1 MiB (mixed utf-8) echoed intact'],
  ['binary4MiB', 'binary 4 MiB echoed intact'],
  ['deflateNegotiated', 'permessage-deflate negotiated (ws.extensions)'],
  ['deflate256KiB', 'compressible 256 KiB text round trip, the reply compressed by the server'],
  ['noCompression', 'with --no-compression ws.extensions is empty and echo works'],
  ['subprotocol', 'subprotocol: ["chat.v1","chat.v2"] offered, ws.protocol is the app\'s chat.v2'],
  ['serverClose4000', 'server close 4000 with a utf-8 reason: CloseEvent code, reason, wasClean'],
  ['browserClose', 'browser close(1000, "bye") completes cleanly; the server saw 1000 "bye"'],
  ['refusedHandshake', 'refused handshake (HTTP 403): error then close 1006, not clean'],
  ['burst1000', '1000 messages sent in a burst echoed in order'],
  ['concurrent20', '20 connections open at once from one page, messages interleaved, each in order'],
];

let passed = 0;
let failed = 0;
function ok(name) {
  passed++;
  console.log(`ok - ${name}`);
}
function notOk(name, detail) {
  failed++;
  console.log(`not ok - ${name}: ${String(detail).replace(/\s+/g, ' ')}`);
}

function withTimeout(promise, ms, what) {
  let timer;
  const t = new Promise((_, reject) => {
    timer = setTimeout(() => reject(new Error(`timed out after ${ms / 1000} s: ${what}`)), ms);
  });
  return Promise.race([promise, t]).finally(() => clearTimeout(timer));
}

// The DevTools protocol over Chromium's pipe: JSON messages ended by a NUL
// byte, written to the browser's fd 3 and read from its fd 4.
class Cdp {
  constructor(child) {
    this.out = child.stdio[3];
    this.nextId = 0;
    this.pending = new Map();
    this.buf = '';
    this.out.on('error', () => {});
    const input = child.stdio[4];
    input.setEncoding('utf8');
    input.on('data', (chunk) => {
      this.buf += chunk;
      let i;
      while ((i = this.buf.indexOf('\0')) >= 0) {
        const msg = JSON.parse(this.buf.slice(0, i));
        this.buf = this.buf.slice(i + 1);
        const p = msg.id !== undefined && this.pending.get(msg.id);
        if (p) {
          this.pending.delete(msg.id);
          if (msg.error) p.reject(new Error(`${p.method}: ${msg.error.message}`));
          else p.resolve(msg.result);
        }
      }
    });
    input.on('close', () => this.fail(new Error('the browser closed the DevTools pipe')));
    input.on('error', (e) => this.fail(e));
  }

  fail(err) {
    this.gone = err;
    for (const p of this.pending.values()) p.reject(err);
    this.pending.clear();
  }

  send(method, params, sessionId, ms) {
    if (this.gone) return Promise.reject(this.gone);
    const id = ++this.nextId;
    const reply = new Promise((resolve, reject) => this.pending.set(id, { resolve, reject, method }));
    const msg = { id, method, params: params || {} };
    if (sessionId) msg.sessionId = sessionId;
    this.out.write(JSON.stringify(msg) + '\0');
    return withTimeout(reply, ms, method).finally(() => this.pending.delete(id));
  }

  // Evaluates an expression in the page; awaits a promise it returns.
  async evaluate(sessionId, expression, ms) {
    const r = await this.send(
      'Runtime.evaluate',
      { expression, awaitPromise: true, returnByValue: true },
      sessionId,
      ms
    );
    if (r.exceptionDetails) {
      const d = r.exceptionDetails;
      throw new Error(`page exception: ${(d.exception && d.exception.description) || d.text}`);
    }
    return r.result.value;
  }
}

let child = null;
let profile = null;
let stderrLog = null;

function exited() {
  return !child || child.exitCode !== null || child.signalCode !== null;
}

function waitExit(ms) {
  if (exited()) return Promise.resolve(true);
  return new Promise((resolve) => {
    const timer = setTimeout(() => resolve(false), ms);
    child.once('exit', () => {
      clearTimeout(timer);
      resolve(true);
    });
  });
}

function removeProfile() {
  if (profile) {
    fs.rmSync(profile, { recursive: true, force: true });
    profile = null;
  }
}

// Last stderr lines of the browser (without its D-Bus complaints), for a failure.
function browserStderrTail() {
  try {
    return fs
      .readFileSync(stderrLog, 'utf8')
      .split('\n')
      .filter((l) => l && !/dbus|D-Bus|Failed to connect to the bus/.test(l))
      .slice(-15)
      .map((l) => `#   ${l}`)
      .join('\n');
  } catch (e) {
    return '';
  }
}

// SIGTERM from `timeout` (spec/interop/run) or ^C: the browser goes too.
function killNow() {
  if (!exited()) child.kill('SIGKILL');
  removeProfile();
}
process.on('exit', killNow);
for (const sig of ['SIGTERM', 'SIGINT', 'SIGHUP']) {
  process.on(sig, () => {
    console.log(`# browser client: ${sig}, killing the browser`);
    killNow();
    process.exit(1);
  });
}

async function startBrowser() {
  if (!fs.existsSync(CHROMIUM)) {
    throw new Error(`no browser at ${CHROMIUM} (run scripts/install-deps --test)`);
  }
  profile = fs.mkdtempSync(path.join(os.tmpdir(), 'nexlua-chromium-'));
  stderrLog = path.join(profile, 'stderr.log');
  const errFd = fs.openSync(stderrLog, 'w');
  const args = [
    '--headless=new',
    // Chromium refuses to run as root with its sandbox, and containers often
    // lack the user namespaces it needs; this browser opens only our own page.
    '--no-sandbox',
    '--remote-debugging-pipe',
    `--user-data-dir=${path.join(profile, 'profile')}`,
    '--no-first-run',
    '--no-default-browser-check',
    '--disable-background-networking',
    '--disable-component-update',
    '--disable-sync',
    '--disable-extensions',
    '--disable-gpu',
    '--mute-audio',
    'about:blank',
  ];
  child = spawn(CHROMIUM, args, { stdio: ['ignore', errFd, errFd, 'pipe', 'pipe'] });
  fs.closeSync(errFd);
  const spawnError = new Promise((_, reject) => {
    child.once('error', (e) => reject(new Error(`cannot start ${CHROMIUM}: ${e.message}`)));
    child.once('exit', (code, sig) => reject(new Error(`${CHROMIUM} exited (status ${code}, signal ${sig})`)));
  });
  spawnError.catch(() => {});
  const cdp = new Cdp(child);

  const start = (async () => {
    const v = await cdp.send('Browser.getVersion', {}, null, START_TIMEOUT_MS);
    console.log(`# browser: ${v.product} (pid ${child.pid}), page ${PAGE}`);
    const { targetId } = await cdp.send('Target.createTarget', { url: PAGE }, null, START_TIMEOUT_MS);
    const { sessionId } = await cdp.send('Target.attachToTarget', { targetId, flatten: true }, null, START_TIMEOUT_MS);
    // wait for the page's script
    const deadline = Date.now() + START_TIMEOUT_MS;
    for (;;) {
      const ready = await cdp.evaluate(
        sessionId,
        "document.readyState === 'complete' && typeof window.nexluaInterop === 'object'",
        START_TIMEOUT_MS
      );
      if (ready) break;
      if (Date.now() > deadline) throw new Error(`the page did not load within ${START_TIMEOUT_MS / 1000} s`);
      await new Promise((r) => setTimeout(r, 50));
    }
    return sessionId;
  })();
  try {
    const sessionId = await withTimeout(Promise.race([start, spawnError]), START_TIMEOUT_MS * 2, 'browser start');
    return { cdp, sessionId };
  } catch (e) {
    if (!exited()) child.kill('SIGKILL');
    await waitExit(CLOSE_TIMEOUT_MS);
    throw e;
  }
}

async function closeBrowser(cdp) {
  if (exited()) return;
  if (cdp) {
    try {
      await cdp.send('Browser.close', {}, null, CLOSE_TIMEOUT_MS);
    } catch (e) {
      // killed below
    }
  }
  if (!(await waitExit(CLOSE_TIMEOUT_MS))) {
    console.log(`# browser did not exit within ${CLOSE_TIMEOUT_MS / 1000} s of Browser.close: killing pid ${child.pid}`);
    child.kill('SIGKILL');
    await waitExit(CLOSE_TIMEOUT_MS);
  }
}

async function main() {
  const t0 = Date.now();
  let cdp = null;
  try {
    let sessionId;
    try {
      ({ cdp, sessionId } = await startBrowser());
    } catch (e) {
      for (const [, name] of CHECKS) notOk(name, `the browser did not start: ${e.message}`);
      const tail = browserStderrTail();
      if (tail) console.log(`# browser stderr (last lines):\n${tail}`);
      return;
    }

    const cfg = { echo: ECHO_URL, app: APP_BASE, plain: PLAIN_BASE };
    for (const [id, name] of CHECKS) {
      if (Date.now() - t0 > SUITE_DEADLINE_MS) {
        notOk(name, `not run: the suite's ${SUITE_DEADLINE_MS / 1000} s deadline passed`);
        continue;
      }
      try {
        const r = await cdp.evaluate(
          sessionId,
          `window.nexluaInterop.run(${JSON.stringify(id)}, ${JSON.stringify(cfg)})`,
          CHECK_TIMEOUT_MS
        );
        if (r && r.ok === true) ok(name);
        else notOk(name, (r && r.detail) || `unexpected result ${JSON.stringify(r)}`);
      } catch (e) {
        notOk(name, e.message);
      }
    }

    // every check in the page is run from this list
    try {
      const ids = await cdp.evaluate(sessionId, 'window.nexluaInterop.ids', CHECK_TIMEOUT_MS);
      const known = new Set(CHECKS.map(([id]) => id));
      const missing = ids.filter((id) => !known.has(id));
      if (missing.length) notOk('every check in browser_page.html is run', `not in CHECKS: ${missing.join(', ')}`);
    } catch (e) {
      notOk('every check in browser_page.html is run', e.message);
    }
    if (failed) {
      const tail = browserStderrTail();
      if (tail) console.log(`# browser stderr (last lines):\n${tail}`);
    }
  } finally {
    await closeBrowser(cdp);
    removeProfile();
    console.log(`# browser suite took ${((Date.now() - t0) / 1000).toFixed(1)} s`);
  }
}

main()
  .catch((e) => notOk('browser client', (e && e.stack) || e))
  .finally(() => {
    console.log(`${passed} passed, ${failed} failed`);
    process.exitCode = failed ? 1 : 0;
  });
