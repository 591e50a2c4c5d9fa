#!/usr/bin/python3
"""TLS connection churn for spec/abuse/leaks_spec.lua (run with /usr/bin/python3,
which has Debian's python3-websockets 10.4).

    /usr/bin/python3 spec/abuse/tls_churn.py PORT CA.pem COUNT

Opens COUNT connections to wss://127.0.0.1:PORT/ws, cycling through: a
compressed echo and a clean close; an uncompressed echo and a clean close; an
echo then an abort (TCP closed without a close frame or close_notify); a TLS
handshake with no WebSocket request; a half-sent ClientHello; garbage instead
of TLS. Prints `done N errors=E` and exits 0 when every WebSocket echo worked.
"""

import asyncio
import socket
import ssl
import sys

import websockets


async def main(port, ca, count):
    url = f"wss://127.0.0.1:{port}/ws"
    ctx = ssl.create_default_context(cafile=ca)
    errors = 0
    for i in range(count):
        mode = i % 6
        try:
            if mode in (0, 1, 2):
                ws = await websockets.connect(
                    url, ssl=ctx, open_timeout=10, close_timeout=2, ping_interval=None,
                    compression="deflate" if mode != 1 else None, max_size=4 * 1024 * 1024)
                msg = f"tls churn {i} " + "abc" * (50 * (i % 7))
                await ws.send(msg)
                if await ws.recv() != msg:
                    raise AssertionError("echo differs")
                if mode == 2:
                    ws.transport.abort()
                else:
                    await ws.close()
            elif mode == 3:
                raw = socket.create_connection(("127.0.0.1", port), timeout=10)
                t = ctx.wrap_socket(raw, server_hostname="localhost")
                t.close()
            elif mode == 4:
                raw = socket.create_connection(("127.0.0.1", port), timeout=10)
                # a TLS record header for a 512-byte ClientHello, then half of it
                raw.sendall(b"\x16\x03\x01\x02\x00" + b"\x01" * 256)
                raw.close()
            else:
                raw = socket.create_connection(("127.0.0.1", port), timeout=10)
                raw.sendall(b"GET /ws HTTP/1.1\r\nHost: x\r\n\r\n")
                try:
                    raw.recv(100)
                except OSError:
                    pass
                raw.close()
        except Exception as e:  # noqa: BLE001
            errors += 1
            print(f"# connection {i} (mode {mode}): {type(e).__name__}: {e}", flush=True)
    print(f"done {count} errors={errors}", flush=True)
    return 1 if errors else 0


if __name__ == "__main__":
    sys.exit(asyncio.run(main(int(sys.argv[1]), sys.argv[2], int(sys.argv[3]))))
