// Peer server for scripts/bench: Node.js with the `ws` package (installed by
// scripts/bench into build/bench-peers/node, found through NODE_PATH).
//   /ws   echo: every message back as it came, text as text, binary as binary
//   /sub  subscriber: held until it leaves
//   /pub  every message is sent as text to every subscriber (a plain loop)
// usage: node node_ws.js PORT
'use strict';
const { WebSocketServer } = require('ws');

const port = Number(process.argv[2]);
const wss = new WebSocketServer({
  host: '127.0.0.1',
  port,
  backlog: 1024,
  perMessageDeflate: false,
  maxPayload: 16 * 1024 * 1024,
});
const subscribers = new Set();

wss.on('connection', (ws, req) => {
  ws.on('error', () => {});
  const path = req.url.split('?')[0];
  if (path === '/ws') {
    ws.on('message', (data, isBinary) => ws.send(data, { binary: isBinary }));
  } else if (path === '/sub') {
    subscribers.add(ws);
    ws.on('close', () => subscribers.delete(ws));
  } else if (path === '/pub') {
    ws.on('message', (data) => {
      for (const sub of subscribers) sub.send(data, { binary: false });
    });
  } else {
    ws.close(1008, 'no such route');
  }
});
wss.on('listening', () => process.stderr.write(`node ws ${require('ws/package.json').version} listening on ${port}\n`));
process.on('SIGTERM', () => process.exit(0));
