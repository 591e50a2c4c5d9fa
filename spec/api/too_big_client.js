#!/usr/bin/env node
// For spec/api/lingering_close_spec.lua: Node's `ws` (spec/interop/node_modules)
// sends one message of SIZE bytes, KIND text or binary, to URL, and prints the
// close code and reason the server's close frame carried as `close CODE REASON`
// (1006 when the connection ended without one).
//
//   node spec/api/too_big_client.js ws://127.0.0.1:PORT/ws SIZE [text|binary]
'use strict';

const path = require('path');
const WebSocket = require(path.join(__dirname, '..', 'interop', 'node_modules', 'ws'));

const [URL, SIZE, KIND] = process.argv.slice(2);
const ws = new WebSocket(URL, { perMessageDeflate: false });
ws.on('error', (e) => process.stderr.write(`error: ${e.message}\n`));
ws.on('open', () => {
  ws.send(Buffer.alloc(Number(SIZE), 0x61), { binary: KIND !== 'text' });
});
ws.on('close', (code, reason) => {
  process.stdout.write(`close ${code} ${reason.toString()}\n`);
  process.exit(0);
});
setTimeout(() => {
  process.stdout.write('timeout\n');
  process.exit(1);
}, 15000);
