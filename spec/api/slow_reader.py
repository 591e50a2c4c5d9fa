#!/usr/bin/python3
"""A client that reads slowly behind a backlog, for spec/api/liveness_spec.lua.

    /usr/bin/python3 spec/api/slow_reader.py PORT PATH BYTES RATE

Its receive buffer is small (SO_RCVBUF 8 KiB, set before connecting), so the
server's backlog waits on the server's side. It reads about RATE bytes per
second until it has BYTES of binary payload, answers pings with pongs as it
meets them (behind the data), then sends "done" and expects "bye". Prints
`ok: N bytes, P pings` or `not ok: why`; exits 1 on failure.
"""

import base64
import os
import socket
import struct
import sys
import time


def frame(opcode, payload):
    mask = os.urandom(4)
    masked = bytes(b ^ mask[i % 4] for i, b in enumerate(payload))
    return bytes([0x80 | opcode, 0x80 | len(payload)]) + mask + masked


def main():
    port, path, want, rate = int(sys.argv[1]), sys.argv[2], int(sys.argv[3]), int(sys.argv[4])
    s = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    s.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 8192)
    s.settimeout(10)
    s.connect(("127.0.0.1", port))
    key = base64.b64encode(os.urandom(16)).decode()
    s.sendall((f"GET {path} HTTP/1.1\r\nHost: 127.0.0.1\r\nUpgrade: websocket\r\n"
               f"Connection: Upgrade\r\nSec-WebSocket-Key: {key}\r\n"
               "Sec-WebSocket-Version: 13\r\n\r\n").encode())
    buf = b""
    while b"\r\n\r\n" not in buf:
        buf += s.recv(4096)
    head, buf = buf.split(b"\r\n\r\n", 1)
    if b" 101 " not in head.split(b"\r\n")[0]:
        print("not ok: no 101:", head[:80])
        return 1
    got, pings, step = 0, 0, max(1, rate // 10)
    deadline = time.time() + 60

    def frames():
        nonlocal buf
        while True:
            if len(buf) >= 2:
                n, hl = buf[1] & 0x7F, 2
                if n == 126:
                    n, hl = (struct.unpack(">H", buf[2:4])[0] if len(buf) >= 4 else None), 4
                elif n == 127:
                    n, hl = (struct.unpack(">Q", buf[2:10])[0] if len(buf) >= 10 else None), 10
                if n is not None and len(buf) >= hl + n:
                    op, payload, buf = buf[0] & 0x0F, buf[hl:hl + n], buf[hl + n:]
                    yield op, payload
                    continue
            return

    while got < want:
        if time.time() > deadline:
            print(f"not ok: only {got} of {want} bytes in 60 s")
            return 1
        time.sleep(0.1)
        chunk = s.recv(step)
        if not chunk:
            print(f"not ok: the server closed the connection after {got} bytes")
            return 1
        buf += chunk
        for op, payload in frames():
            if op == 0x8:
                code = struct.unpack(">H", payload[:2])[0] if len(payload) >= 2 else None
                print(f"not ok: close {code} {payload[2:]!r} after {got} bytes, {pings} pings")
                return 1
            if op == 0x9:
                pings += 1
                s.sendall(frame(0xA, payload))
            elif op in (0x0, 0x2):
                got += len(payload)
    s.sendall(frame(0x1, b"done"))
    s.settimeout(10)
    while True:
        for op, payload in frames():
            if op == 0x1:
                if payload != b"bye":
                    print("not ok: expected bye, got", payload[:40])
                    return 1
                print(f"ok: {got} bytes, {pings} pings")
                return 0
            if op == 0x8:
                print("not ok: close before bye:", payload)
                return 1
            if op == 0x9:
                s.sendall(frame(0xA, payload))
        chunk = s.recv(65536)
        if not chunk:
            print("not ok: closed before bye")
            return 1
        buf += chunk


if __name__ == "__main__":
    sys.exit(main())
