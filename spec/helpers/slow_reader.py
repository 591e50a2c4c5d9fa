#!/usr/bin/python3
"""A WebSocket client that reads slowly, for spec/api/heartbeat_spec.lua:
a receive buffer of 4 KB (so that a backlog waits on the server's side),
the upgrade, then BYTES bytes every 0.1 s for SECONDS seconds, never
parsing a frame (never answering a ping); then it stops reading for PAUSE
seconds and exits.

    /usr/bin/python3 spec/helpers/slow_reader.py PORT PATH BYTES SECONDS PAUSE

Prints "open after N s, M bytes read, until HH:MM:SS.mmm" (UTC, as the
server's log writes time), or "closed after N s, M bytes read" as soon as
the server ends the connection while it reads.
"""
import base64
import os
import socket
import sys
import time

port, path, per_tick, seconds, pause = (int(sys.argv[1]), sys.argv[2], int(sys.argv[3]),
                                        float(sys.argv[4]), float(sys.argv[5]))
s = socket.socket()
s.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 4096)
s.connect(("127.0.0.1", port))
key = base64.b64encode(os.urandom(16)).decode()
s.sendall((f"GET {path} HTTP/1.1\r\nHost: 127.0.0.1:{port}\r\nUpgrade: websocket\r\n"
           f"Connection: Upgrade\r\nSec-WebSocket-Key: {key}\r\nSec-WebSocket-Version: 13\r\n\r\n").encode())
head = b""
while b"\r\n\r\n" not in head:
    head += s.recv(1)
assert head.startswith(b"HTTP/1.1 101"), head
t0, got = time.monotonic(), 0
while time.monotonic() - t0 < seconds:
    try:
        data = s.recv(per_tick)
    except ConnectionError:
        data = b""
    if not data:
        print(f"closed after {time.monotonic() - t0:.1f} s, {got} bytes read", flush=True)
        sys.exit(0)
    got += len(data)
    time.sleep(0.1)
now = time.time()
print(f"open after {time.monotonic() - t0:.1f} s, {got} bytes read, until "
      f"{time.strftime('%H:%M:%S', time.gmtime(now))}.{int(now * 1000) % 1000:03d}", flush=True)
time.sleep(pause)
