#!/usr/bin/env node
// Interop checks against the nexlua echo app with Node's `ws` client.
//
//   node spec/interop/node_client.js ws://127.0.0.1:PORT/ws
//
// Prints `ok - NAME` / `not ok - NAME: detail` per check, then
// `N passed, M failed`; exits 1 on any failure.
'use strict';

const path = require('path');
const WebSocket = require(path.join(__dirname, 'node_modules', 'ws'));

const URL = process.argv[2];
if (!URL) {
  console.error('usage: node_client.js ws://HOST:PORT/PATH');
  process.exit(2);
}

const CHECK_TIMEOUT_MS = 5000;
const MiB = 1024 * 1024;

// One connection with a queue of received messages.
class Conn {
  constructor(ws) {
    this.ws = ws;
    this.queue = [];
    this.waiters = [];
    this.closed = null; // {code, reason} once closed
    this.error = null;
    this.closeWaiters = [];
    ws.on('message', (data, isBinary) => this._push({ data, isBinary }));
    ws.on('error', (err) => {
      this.error = err;
    });
    ws.on('close', (code, reason) => {
      this.closed = { code, reason: reason.toString('utf8') };
      for (const w of this.waiters.splice(0)) w.reject(this._closedError());
      for (const w of this.closeWaiters.splice(0)) w(this.closed);
    });
  }

  // Returns the Conn at once (so a timed-out check can still dispose of it)
  // and a promise that resolves when the handshake has completed.
  static open(url, opts) {
    // By default no permessage-deflate offer from this client (the Python
    // client offers it), so the suite covers the server both with and without
    // compression; the compression checks pass { perMessageDeflate: true }.
    const ws = new WebSocket(url, {
      handshakeTimeout: CHECK_TIMEOUT_MS,
      perMessageDeflate: false,
      ...(opts || {}),
    });
    const conn = new Conn(ws);
    ws.once('upgrade', (res) => {
      conn.responseHeaders = res.headers;
    });
    conn.opened = new Promise((resolve, reject) => {
      ws.once('open', resolve);
      ws.once('error', reject);
      ws.once('unexpected-response', (req, res) => {
        reject(new Error(`handshake refused: HTTP ${res.statusCode}`));
        req.destroy();
      });
    });
    return conn;
  }

  // Fails if the client itself saw a protocol error (then a close code would
  // be the client's own verdict, not the server's).
  assertNoClientError() {
    if (this.error) throw new Error(`client-side error: ${this.error.message}`);
  }

  _closedError() {
    const c = this.closed;
    const why = this.error ? `, error: ${this.error.message}` : '';
    return new Error(`connection closed (code ${c.code}, reason ${JSON.stringify(c.reason)}${why})`);
  }

  _push(msg) {
    const w = this.waiters.shift();
    if (w) w.resolve(msg);
    else this.queue.push(msg);
  }

  recv() {
    if (this.queue.length) return Promise.resolve(this.queue.shift());
    if (this.closed) return Promise.reject(this._closedError());
    return new Promise((resolve, reject) => this.waiters.push({ resolve, reject }));
  }

  send(data, binary) {
    return new Promise((resolve, reject) => {
      this.ws.send(data, { binary }, (err) => (err ? reject(err) : resolve()));
    });
  }

  waitClosed() {
    if (this.closed) return Promise.resolve(this.closed);
    return new Promise((resolve) => this.closeWaiters.push(resolve));
  }

  dispose() {
    if (this.ws.readyState !== WebSocket.CLOSED) this.ws.terminate();
  }
}

function describe(buf) {
  if (buf.length <= 32) return JSON.stringify(buf.toString('latin1'));
  return `${buf.length} bytes`;
}

function firstDiff(a, b) {
  const n = Math.min(a.length, b.length);
  for (let i = 0; i < n; i++) if (a[i] !== b[i]) return i;
  return n;
}

async function expectText(conn, text) {
  await conn.send(text, false);
  const msg = await conn.recv();
  if (msg.isBinary) throw new Error(`reply is binary (${msg.data.length} bytes), expected text`);
  const got = msg.data.toString('utf8');
  if (got !== text) {
    const want = Buffer.from(text, 'utf8');
    throw new Error(
      `reply differs: got ${describe(msg.data)}, want ${describe(want)}, ` +
        `first difference at byte ${firstDiff(msg.data, want)}`
    );
  }
}

async function expectBinary(conn, bytes) {
  await conn.send(bytes, true);
  const msg = await conn.recv();
  if (!msg.isBinary) throw new Error(`reply is text (${msg.data.length} bytes), expected binary`);
  if (!Buffer.from(msg.data).equals(bytes)) {
    throw new Error(
      `reply differs: got ${describe(msg.data)}, want ${describe(bytes)}, ` +
        `first difference at byte ${firstDiff(msg.data, bytes)}`
    );
  }
}

function patternBytes(n) {
  const b = Buffer.alloc(n);
  let x = 0x12345678;
  for (let i = 0; i < n; i++) {
    x = (Math.imul(x, 1103515245) + 12345) >>> 0; // deterministic pseudo-random
    b[i] = x >>> 24;
  }
  return b;
}

function asciiText(n) {
  const alphabet = 'abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789 .,;:!?';
  let s = '';
  for (let i = 0; i < n; i++) s += alphabet[(i * 7 + (i >> 5)) % alphabet.length];
  return s;
}

// Bytes this client has read from the socket so far (ws keeps its net.Socket
// in _socket), to see that compressed replies really were compressed.
function bytesRead(conn) {
  const sock = conn.ws._socket;
  return sock && typeof sock.bytesRead === 'number' ? sock.bytesRead : null;
}

// Sends data and checks the echo; with the extension negotiated, a reply of
// at least minRatio times fewer wire bytes than the message proves the
// server compressed it.
async function expectCompressedEcho(conn, data, binary, minRatio) {
  const before = bytesRead(conn);
  if (binary) await expectBinary(conn, data);
  else await expectText(conn, data);
  const after = bytesRead(conn);
  const size = binary ? data.length : Buffer.byteLength(data, 'utf8');
  if (minRatio && before !== null && after !== null && (after - before) * minRatio > size) {
    throw new Error(`reply of ${size} bytes took ${after - before} bytes on the wire: not compressed`);
  }
}

const DEFLATE = { perMessageDeflate: true };

// Checks: [name, async function(conn), open options]. Each gets its own connection.
const checks = [
  [
    'handshake without subprotocol',
    async (conn) => {
      if (conn.ws.protocol !== '') {
        throw new Error(`server selected subprotocol ${JSON.stringify(conn.ws.protocol)}`);
      }
      await expectText(conn, 'hello');
    },
  ],
  ['text ascii round trip', (conn) => expectText(conn, 'Hello, nexlua!')],
  [
    'text multi-byte utf-8 round trip',
    (conn) => expectText(conn, 'héllo wörld — ñ ß € 你好 世界 🎉🚀 \u{10FFFF}'),
  ],
  ['text empty round trip', (conn) => expectText(conn, '')],
  ['text 64 KiB round trip', (conn) => expectText(conn, asciiText(64 * 1024))],
  [
    'text 1 MiB round trip',
    // mixed 1-, 2-, 3- and 4-byte sequences, exactly 1 MiB of UTF-8
    (conn) => {
      const unit = 'aé€🎉'; // 1 + 2 + 3 + 4 = 10 bytes
      let s = unit.repeat(Math.floor(MiB / 10));
      s += 'x'.repeat(MiB - Buffer.byteLength(s, 'utf8'));
      return expectText(conn, s);
    },
  ],
  [
    'binary all 256 byte values round trip',
    (conn) => {
      const b = Buffer.alloc(256);
      for (let i = 0; i < 256; i++) b[i] = i;
      return expectBinary(conn, b);
    },
  ],
  ['binary empty round trip', (conn) => expectBinary(conn, Buffer.alloc(0))],
  ['binary 1 MiB round trip', (conn) => expectBinary(conn, patternBytes(MiB))],
  [
    'binary frame length boundaries (125, 126, 127, 65535, 65536)',
    async (conn) => {
      for (const n of [125, 126, 127, 65535, 65536]) {
        try {
          await expectBinary(conn, patternBytes(n));
        } catch (e) {
          throw new Error(`length ${n}: ${e.message}`);
        }
      }
    },
  ],
  [
    '100 pipelined messages answered in order',
    async (conn) => {
      const sent = [];
      for (let i = 0; i < 100; i++) {
        const m = `msg-${i}-${'x'.repeat(i)}`;
        sent.push(m);
        conn.ws.send(m); // no waiting between sends
      }
      for (let i = 0; i < 100; i++) {
        const msg = await conn.recv();
        const got = msg.data.toString('utf8');
        if (msg.isBinary) throw new Error(`reply #${i} is binary, expected text`);
        if (got !== sent[i]) {
          const show = (x) => JSON.stringify(x.slice(0, 40));
          throw new Error(`reply #${i}: got ${show(got)}, want ${show(sent[i])}`);
        }
      }
    },
  ],
  [
    'ping answered with pong carrying the same payload',
    async (conn) => {
      const payload = Buffer.from('nexlua-ping-\x00\x01\xfe\xff', 'latin1');
      const pong = new Promise((resolve) => conn.ws.once('pong', resolve));
      conn.ws.ping(payload);
      const data = await pong;
      if (!Buffer.from(data).equals(payload)) {
        throw new Error(`pong payload ${describe(data)}, want ${describe(payload)}`);
      }
      // the connection still works after the control frame
      await expectText(conn, 'after ping');
    },
  ],
  [
    'client close 1000 "bye" answered with close 1000',
    async (conn) => {
      await expectText(conn, 'before close');
      conn.ws.close(1000, 'bye');
      const c = await conn.waitClosed();
      conn.assertNoClientError();
      if (c.code !== 1000) throw new Error(`server close code ${c.code}, want 1000`);
    },
  ],
  [
    'invalid utf-8 in a text frame gets server close 1007',
    async (conn) => {
      // ws does not validate outgoing text: send a text frame with bytes that
      // are not UTF-8. RFC 6455 8.1 / 7.4.1: the server fails the connection, 1007.
      conn.ws.send(Buffer.from([0x68, 0x69, 0xff, 0xfe]), { binary: false });
      const c = await conn.waitClosed();
      conn.assertNoClientError();
      if (c.code !== 1007) throw new Error(`server close code ${c.code}, want 1007`);
    },
  ],
  [
    'permessage-deflate negotiated (perMessageDeflate: true) with no context takeover',
    async (conn) => {
      if (conn.ws.extensions !== 'permessage-deflate') {
        throw new Error(`negotiated extensions ${JSON.stringify(conn.ws.extensions)}, want permessage-deflate`);
      }
      const ext = (conn.responseHeaders || {})['sec-websocket-extensions'] || '';
      for (const p of ['server_no_context_takeover', 'client_no_context_takeover']) {
        if (!ext.includes(p)) throw new Error(`no ${p} in ${JSON.stringify(ext)}`);
      }
      await expectText(conn, 'hello, compressed');
    },
    DEFLATE,
  ],
  [
    'compressed text 1 MiB round trip (reply compressed on the wire)',
    (conn) => expectCompressedEcho(conn, asciiText(MiB), false, 4),
    DEFLATE,
  ],
  [
    'compressed multi-byte utf-8 text 256 KiB round trip',
    (conn) => expectCompressedEcho(conn, 'héllo wörld — 你好 🎉 '.repeat(8192), false, 4),
    DEFLATE,
  ],
  [
    'compressed binary 1 MiB (repetitive) round trip (reply compressed on the wire)',
    (conn) => {
      const unit = patternBytes(4096);
      const b = Buffer.alloc(MiB);
      for (let i = 0; i < MiB; i += unit.length) unit.copy(b, i);
      return expectCompressedEcho(conn, b, true, 4);
    },
    DEFLATE,
  ],
  [
    'compressed random binary 1 MiB round trip',
    (conn) => expectCompressedEcho(conn, patternBytes(MiB), true, 0),
    DEFLATE,
  ],
  [
    'small messages on a compressed connection (0..2048 bytes) round trip',
    async (conn) => {
      for (const n of [0, 1, 127, 128, 1023, 1024, 2048]) {
        try {
          await expectText(conn, asciiText(n));
          await expectBinary(conn, patternBytes(n));
        } catch (e) {
          throw new Error(`length ${n}: ${e.message}`);
        }
      }
    },
    DEFLATE,
  ],
  [
    '100 pipelined compressed messages answered in order',
    async (conn) => {
      const sent = [];
      for (let i = 0; i < 100; i++) {
        const m = `compressed-${i}-${'z'.repeat(i * 40)}`;
        sent.push(m);
        conn.ws.send(m);
      }
      for (let i = 0; i < 100; i++) {
        const got = (await conn.recv()).data.toString('utf8');
        if (got !== sent[i]) throw new Error(`reply #${i} differs (${got.length} vs ${sent[i].length})`);
      }
    },
    DEFLATE,
  ],
];

function withTimeout(promise, ms) {
  let timer;
  const t = new Promise((_, reject) => {
    timer = setTimeout(() => reject(new Error(`timed out after ${ms / 1000} s`)), ms);
  });
  return Promise.race([promise, t]).finally(() => clearTimeout(timer));
}

async function main() {
  let passed = 0;
  let failed = 0;
  for (const [name, fn, opts] of checks) {
    let conn = null;
    try {
      await withTimeout(
        (async () => {
          conn = Conn.open(URL, opts);
          await conn.opened;
          await fn(conn);
        })(),
        CHECK_TIMEOUT_MS
      );
      passed++;
      console.log(`ok - ${name}`);
    } catch (e) {
      failed++;
      const detail = String((e && e.message) || e).replace(/\s+/g, ' ');
      console.log(`not ok - ${name}: ${detail}`);
    } finally {
      if (conn) conn.dispose();
    }
  }
  console.log(`${passed} passed, ${failed} failed`);
  process.exitCode = failed ? 1 : 0;
}

main().catch((e) => {
  console.log(`not ok - node client: ${e && e.stack ? e.stack : e}`);
  console.log('0 passed, 1 failed');
  process.exitCode = 1;
});
