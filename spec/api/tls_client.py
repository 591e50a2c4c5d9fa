#!/usr/bin/python3
"""wss:// checks for spec/api/tls_spec.lua with Python's `websockets` (Debian's
python3-websockets 10.4: run with /usr/bin/python3) and the standard ssl module.

    /usr/bin/python3 spec/api/tls_client.py wss://127.0.0.1:PORT/ws CA.pem

The server's self-signed certificate is the only trusted CA, and the host
name is checked. Prints `ok - NAME` / `not ok - NAME: detail` per check, then
`N passed, M failed`; exits 1 on any failure.
"""

import asyncio
import random
import ssl
import sys

import websockets

TIMEOUT = 10.0
MiB = 1024 * 1024


def context(cafile, maximum=None, minimum=None):
    ctx = ssl.create_default_context(cafile=cafile)
    if maximum is not None or minimum is not None:
        # Let this client offer old versions at all (OpenSSL 3 refuses TLS 1.0/1.1
        # at the default security level): the refusal must come from the server.
        ctx.set_ciphers("DEFAULT:@SECLEVEL=0")
    if maximum is not None:
        ctx.maximum_version = maximum
    if minimum is not None:
        ctx.minimum_version = minimum
    return ctx


async def connect(url, ctx, **kw):
    return await websockets.connect(
        url, ssl=ctx, open_timeout=TIMEOUT, close_timeout=2, ping_interval=None,
        max_size=16 * MiB, **kw
    )


async def echo(ws, message):
    await ws.send(message)
    reply = await ws.recv()
    if type(reply) is not type(message):
        raise AssertionError(f"reply is {type(reply).__name__}, expected {type(message).__name__}")
    if reply != message:
        raise AssertionError(f"reply differs ({len(reply)} vs {len(message)} bytes/chars)")


async def check_tls_version(url, ca):
    ws = await connect(url, context(ca))
    try:
        obj = ws.transport.get_extra_info("ssl_object")
        version = obj.version()
        if version not in ("TLSv1.2", "TLSv1.3"):
            raise AssertionError(f"negotiated {version}")
        print(f"# negotiated {version} with {obj.cipher()[0]}", flush=True)
        await echo(ws, "hello over TLS")
    finally:
        await ws.close()


async def check_small(url, ca):
    ws = await connect(url, context(ca), compression=None)
    try:
        if ws.extensions:
            raise AssertionError(f"extensions without an offer: {ws.extensions}")
        for m in ["a", "héllo wörld 🎉", "", b"\x00\x01\xff", b""]:
            await echo(ws, m)
    finally:
        await ws.close()


async def check_1mib_plain(url, ca):
    ws = await connect(url, context(ca), compression=None)
    try:
        await echo(ws, random.Random(1).randbytes(MiB))
        await echo(ws, "x" * MiB)
        await echo(ws, random.Random(2).randbytes(4 * MiB))
    finally:
        await ws.close()


async def check_1mib_deflate(url, ca):
    ws = await connect(url, context(ca))  # offers permessage-deflate
    try:
        names = [e.name for e in ws.extensions]
        if names != ["permessage-deflate"]:
            raise AssertionError(f"negotiated extensions {names}")
        await echo(ws, random.Random(3).randbytes(MiB))
        await echo(ws, "compressible text " * (MiB // 18))
    finally:
        await ws.close()


async def check_clean_close(url, ca):
    ws = await connect(url, context(ca))
    await echo(ws, "before close")
    await ws.close(code=1000, reason="bye")
    if ws.close_rcvd is None or ws.close_rcvd.code != 1000:
        raise AssertionError(f"server close {ws.close_rcvd}")


async def check_concurrent(url, ca):
    async def one(i):
        ws = await connect(url, context(ca))
        try:
            for j in range(20):
                await echo(ws, f"client {i} message {j} " + "z" * (i * 100))
        finally:
            await ws.close()

    await asyncio.gather(*(one(i) for i in range(20)))


async def check_tls11_refused(url, ca):
    try:
        ws = await connect(url, context(ca, maximum=ssl.TLSVersion.TLSv1_1))
    except (ssl.SSLError, ConnectionError, OSError) as e:
        print(f"# TLS 1.1 refused: {type(e).__name__}: {e}", flush=True)
        return
    await ws.close()
    raise AssertionError("a TLS 1.1-only client was served")


async def check_tls12_accepted(url, ca):
    ws = await connect(url, context(ca, maximum=ssl.TLSVersion.TLSv1_2))
    try:
        version = ws.transport.get_extra_info("ssl_object").version()
        if version != "TLSv1.2":
            raise AssertionError(f"negotiated {version}")
        await echo(ws, "over TLS 1.2")
    finally:
        await ws.close()


async def check_wrong_ca(url, ca):
    # Sanity: without the server's certificate as a CA the client refuses it,
    # so the checks above really verified the certificate.
    ctx = ssl.create_default_context()
    try:
        ws = await connect(url, ctx)
    except ssl.SSLCertVerificationError:
        return
    await ws.close()
    raise AssertionError("an untrusted self-signed certificate was accepted")


def masked_frame(opcode, payload):
    """One client frame (FIN set, masked)."""
    key = random.randbytes(4)
    n = len(payload)
    head = bytes([0x80 | opcode]) + (bytes([0x80 | n]) if n < 126 else
                                     bytes([0x80 | 126]) + n.to_bytes(2, "big"))
    return head + key + bytes(b ^ key[i % 4] for i, b in enumerate(payload))


def server_frames(data):
    """The (opcode, payload) of every whole unmasked frame in data."""
    out, i = [], 0
    while i + 2 <= len(data):
        opcode, n, j = data[i] & 0x0F, data[i + 1] & 0x7F, i + 2
        if n == 126:
            n, j = int.from_bytes(data[j:j + 2], "big"), j + 2
        elif n == 127:
            n, j = int.from_bytes(data[j:j + 8], "big"), j + 8
        if j + n > len(data):
            break
        out.append((opcode, data[j:j + n]))
        i = j + n
    return out


def same_write(url, ca, tail, count=1):
    """Over TLS, count text frames ("hello"), then tail (a close or a
    violation), then the TLS close_notify, all in one TCP write (a MemoryBIO
    TLS client): returns the frames the server sent back until it closed
    TCP."""
    import base64
    import os
    import socket
    host, port = url.split("//", 1)[1].split("/", 1)[0].rsplit(":", 1)
    inc, out = ssl.MemoryBIO(), ssl.MemoryBIO()
    tls = context(ca).wrap_bio(inc, out, server_hostname=host)
    sock = socket.create_connection((host, int(port)), timeout=TIMEOUT)

    def pump_in():
        data = sock.recv(65536)
        if not data:
            raise EOFError("the server closed during the TLS handshake")
        inc.write(data)

    while True:
        try:
            tls.do_handshake()
            break
        except ssl.SSLWantReadError:
            sock.sendall(out.read())
            pump_in()
    sock.sendall(out.read())
    key = base64.b64encode(os.urandom(16)).decode()
    tls.write((f"GET /ws HTTP/1.1\r\nHost: {host}:{port}\r\nUpgrade: websocket\r\n"
               f"Connection: Upgrade\r\nSec-WebSocket-Key: {key}\r\n"
               "Sec-WebSocket-Version: 13\r\n\r\n").encode())
    sock.sendall(out.read())
    head = b""
    while b"\r\n\r\n" not in head:
        try:
            head += tls.read(65536)
        except ssl.SSLWantReadError:
            pump_in()
    if not head.startswith(b"HTTP/1.1 101"):
        raise AssertionError(f"no 101: {head[:40]!r}")
    rest = head.split(b"\r\n\r\n", 1)[1]
    tls.write(masked_frame(1, b"hello") * count + tail)
    try:
        tls.unwrap()  # queues close_notify
    except ssl.SSLWantReadError:
        pass
    sock.sendall(out.read())  # the frames and close_notify in one write
    raw = b""
    while True:
        data = sock.recv(65536)
        if not data:
            break
        raw += data
    sock.close()
    inc.write(raw)
    inc.write_eof()
    try:
        while True:
            data = tls.read(65536)
            if not data:
                break
            rest += data
    except (ssl.SSLError, ssl.SSLZeroReturnError):
        pass
    return server_frames(rest)


def expect_echo_then_close(frames, code):
    if len(frames) < 2 or frames[0] != (1, b"hello"):
        raise AssertionError(f"expected the echo of hello first, got {frames!r}")
    if frames[1][0] != 8 or int.from_bytes(frames[1][1][:2], "big") != code:
        raise AssertionError(f"expected close {code} after the echo, got {frames[1:]!r}")


async def check_close_notify_after_close(url, ca):
    tail = masked_frame(8, (4001).to_bytes(2, "big"))
    expect_echo_then_close(await asyncio.to_thread(same_write, url, ca, tail), 4001)


async def check_burst_close_notify(url, ca):
    # More messages than the server takes in one loop turn (1,024): what it
    # keeps for the next turn still comes before the close_notify.
    n = 3000
    frames = await asyncio.to_thread(same_write, url, ca, masked_frame(8, (4001).to_bytes(2, "big")), n)
    echoes = [f for f in frames if f == (1, b"hello")]
    if len(echoes) != n or frames[n][0] != 8 or int.from_bytes(frames[n][1][:2], "big") != 4001:
        raise AssertionError(f"{len(echoes)} echoes of {n}, then {frames[len(echoes):][:1]!r}")


async def check_close_notify_after_violation(url, ca):
    tail = masked_frame(3, b"reserved")
    expect_echo_then_close(await asyncio.to_thread(same_write, url, ca, tail), 1002)


CHECKS = [
    ("TLS 1.2+ negotiated, certificate and host name verified", check_tls_version),
    ("small text and binary echo without compression", check_small),
    ("1 MiB and 4 MiB echo without compression", check_1mib_plain),
    ("permessage-deflate over TLS, 1 MiB echo", check_1mib_deflate),
    ("clean close 1000 over TLS", check_clean_close),
    ("20 concurrent TLS clients x 20 echoes", check_concurrent),
    ("TLS 1.1-only client refused", check_tls11_refused),
    ("TLS 1.2-only client served", check_tls12_accepted),
    ("an untrusted certificate is refused by the client (sanity)", check_wrong_ca),
    ("a message, a close and close_notify in one write: the echo, then close 4001",
     check_close_notify_after_close),
    ("a message, a violation and close_notify in one write: the echo, then close 1002",
     check_close_notify_after_violation),
    ("3000 messages, a close and close_notify in one write: 3000 echoes, then close 4001",
     check_burst_close_notify),
]


async def main(url, ca):
    passed = failed = 0
    for name, fn in CHECKS:
        try:
            await asyncio.wait_for(fn(url, ca), TIMEOUT * 2)
            passed += 1
            print(f"ok - {name}", flush=True)
        except Exception as e:  # noqa: BLE001 - reported, not raised
            failed += 1
            detail = " ".join(f"{type(e).__name__}: {e}".split())
            print(f"not ok - {name}: {detail}", flush=True)
    print(f"{passed} passed, {failed} failed", flush=True)
    return 1 if failed else 0


if __name__ == "__main__":
    if len(sys.argv) != 3:
        print("usage: tls_client.py wss://HOST:PORT/PATH CA.pem", file=sys.stderr)
        sys.exit(2)
    sys.exit(asyncio.run(main(sys.argv[1], sys.argv[2])))
