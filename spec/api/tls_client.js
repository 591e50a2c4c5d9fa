#!/usr/bin/env node
// wss:// checks for spec/api/tls_spec.lua with Node's `ws` (from
// spec/interop/node_modules) over Node's own TLS stack.
//
//   node spec/api/tls_client.js wss://127.0.0.1:PORT/ws CA.pem
//
// Prints `ok - NAME` / `not ok - NAME: detail` per check, then
// `N passed, M failed`; exits 1 on any failure.
'use strict';

const fs = require('fs');
const path = require('path');
const WebSocket = require(path.join(__dirname, '..', 'interop', 'node_modules', 'ws'));

const [URL, CA] = process.argv.slice(2);
if (!URL || !CA) {
  console.error('usage: tls_client.js wss://HOST:PORT/PATH CA.pem');
  process.exit(2);
}
const ca = fs.readFileSync(CA);
const MiB = 1024 * 1024;
const TIMEOUT_MS = 10000;

function open(opts) {
  return new Promise((resolve, reject) => {
    const ws = new WebSocket(URL, { ca, handshakeTimeout: TIMEOUT_MS, maxPayload: 16 * MiB, ...opts });
    ws.once('open', () => resolve(ws));
    ws.once('error', reject);
  });
}

function echo(ws, data, binary) {
  return new Promise((resolve, reject) => {
    const onClose = (code) => reject(new Error(`closed with ${code}`));
    ws.once('close', onClose);
    ws.once('message', (reply, isBinary) => {
      ws.removeListener('close', onClose);
      if (isBinary !== binary) return reject(new Error(`reply binary=${isBinary}, want ${binary}`));
      const want = Buffer.isBuffer(data) ? data : Buffer.from(data, 'utf8');
      if (!Buffer.from(reply).equals(want)) return reject(new Error(`reply differs (${reply.length} bytes)`));
      resolve();
    });
    ws.send(data, { binary });
  });
}

function pattern(n, seed) {
  const b = Buffer.alloc(n);
  let x = seed >>> 0;
  for (let i = 0; i < n; i++) {
    x = (Math.imul(x, 1103515245) + 12345) >>> 0;
    b[i] = x >>> 24;
  }
  return b;
}

const checks = [
  [
    'permessage-deflate negotiated over TLS, 1 MiB binary and text echo',
    async () => {
      const ws = await open({ perMessageDeflate: true });
      try {
        if (!/^permessage-deflate/.test(ws.extensions)) {
          throw new Error(`extensions ${JSON.stringify(ws.extensions)}`);
        }
        await echo(ws, pattern(MiB, 7), true);
        await echo(ws, 'compressible '.repeat(MiB / 16), false);
      } finally {
        ws.terminate();
      }
    },
  ],
  [
    'no compression over TLS, 1 MiB binary echo and 100 small ones',
    async () => {
      const ws = await open({ perMessageDeflate: false });
      try {
        if (ws.extensions !== '') throw new Error(`extensions ${JSON.stringify(ws.extensions)}`);
        await echo(ws, pattern(MiB, 9), true);
        for (let i = 0; i < 100; i++) await echo(ws, `small ${i}`, false);
      } finally {
        ws.terminate();
      }
    },
  ],
  [
    'clean close 1000 over TLS',
    async () => {
      const ws = await open({ perMessageDeflate: true });
      const code = await new Promise((resolve) => {
        ws.once('close', (c) => resolve(c));
        ws.close(1000, 'bye');
      });
      if (code !== 1000) throw new Error(`close code ${code}`);
    },
  ],
  [
    'TLS 1.1-only client refused',
    async () => {
      let ws;
      try {
        ws = await open({ maxVersion: 'TLSv1.1', minVersion: 'TLSv1', ciphers: 'DEFAULT:@SECLEVEL=0' });
      } catch (e) {
        return;
      }
      ws.terminate();
      throw new Error('a TLS 1.1-only client was served');
    },
  ],
];

async function main() {
  let passed = 0;
  let failed = 0;
  for (const [name, fn] of checks) {
    let timer;
    try {
      await Promise.race([
        fn(),
        new Promise((_, reject) => {
          timer = setTimeout(() => reject(new Error('timed out')), TIMEOUT_MS * 2);
        }),
      ]);
      passed++;
      console.log(`ok - ${name}`);
    } catch (e) {
      failed++;
      console.log(`not ok - ${name}: ${String((e && e.message) || e).replace(/\s+/g, ' ')}`);
    } finally {
      clearTimeout(timer);
    }
  }
  console.log(`${passed} passed, ${failed} failed`);
  process.exitCode = failed ? 1 : 0;
}

main();
