#!/usr/bin/python3
"""Interop checks against the nexlua echo app with Python's `websockets`.

    /usr/bin/python3 spec/interop/python_client.py ws://127.0.0.1:PORT/ws

Uses Debian's python3-websockets (10.4, asyncio client), so run it with
/usr/bin/python3, not another python3 on PATH. Prints `ok - NAME` /
`not ok - NAME: detail` per check, then `N passed, M failed`; exits 1 on any
failure.
"""

import asyncio
import random
import sys

import websockets
from websockets.exceptions import ConnectionClosed
from websockets.frames import OP_TEXT

CHECK_TIMEOUT = 5.0
MiB = 1024 * 1024


def describe(data):
    if isinstance(data, str):
        data = data.encode("utf-8", "surrogatepass")
    if len(data) <= 32:
        return repr(data)
    return f"{len(data)} bytes"


def first_diff(a, b):
    n = min(len(a), len(b))
    for i in range(n):
        if a[i] != b[i]:
            return i
    return n


async def expect_echo(ws, message):
    await ws.send(message)
    reply = await ws.recv()
    want_kind = "text" if isinstance(message, str) else "binary"
    got_kind = "text" if isinstance(reply, str) else "binary"
    if got_kind != want_kind:
        raise AssertionError(f"reply is {got_kind} ({describe(reply)}), expected {want_kind}")
    if reply != message:
        raise AssertionError(
            f"reply differs: got {describe(reply)}, want {describe(message)}, "
            f"first difference at index {first_diff(reply, message)}"
        )


def pattern_bytes(n, seed=0x5EED):
    return random.Random(seed).randbytes(n)


def ascii_text(n):
    alphabet = "abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789 .,;:!?"
    return "".join(alphabet[(i * 7 + (i >> 5)) % len(alphabet)] for i in range(n))


def utf8_text_1mib():
    unit = "aé€🎉"  # 1 + 2 + 3 + 4 = 10 bytes of UTF-8
    s = unit * (MiB // 10)
    return s + "x" * (MiB - len(s.encode("utf-8")))


# --- checks: each is async def check(ws) on its own fresh connection ---------


async def check_handshake(ws):
    if ws.subprotocol is not None:
        raise AssertionError(f"server selected subprotocol {ws.subprotocol!r}")
    await expect_echo(ws, "hello")


async def check_text_ascii(ws):
    await expect_echo(ws, "Hello, nexlua!")


async def check_text_utf8(ws):
    await expect_echo(ws, "héllo wörld — ñ ß € 你好 世界 🎉🚀 \U0010FFFF")


async def check_text_empty(ws):
    await expect_echo(ws, "")


async def check_text_64k(ws):
    await expect_echo(ws, ascii_text(64 * 1024))


async def check_text_1m(ws):
    await expect_echo(ws, utf8_text_1mib())


async def check_binary_256(ws):
    await expect_echo(ws, bytes(range(256)))


async def check_binary_empty(ws):
    await expect_echo(ws, b"")


async def check_binary_1m(ws):
    await expect_echo(ws, pattern_bytes(MiB))


async def check_length_boundaries(ws):
    for n in (125, 126, 127, 65535, 65536):
        try:
            await expect_echo(ws, pattern_bytes(n, seed=n))
        except AssertionError as e:
            raise AssertionError(f"length {n}: {e}") from None


async def check_pipelined(ws):
    sent = [f"msg-{i}-" + "y" * i for i in range(100)]
    # Send all 100 before reading any reply (send() only waits for the
    # local write buffer to drain, never for the server).
    for m in sent:
        await ws.send(m)
    for i, want in enumerate(sent):
        got = await ws.recv()
        if got != want:
            raise AssertionError(f"reply #{i}: got {str(got)[:40]!r}, want {want[:40]!r}")


async def check_ping(ws):
    payload = b"nexlua-ping-\x00\x01\xfe\xff"
    pong_waiter = await ws.ping(payload)
    # websockets completes the waiter only for a pong whose payload equals
    # the ping's, so a wrong payload shows up as a timeout here.
    try:
        await asyncio.wait_for(pong_waiter, CHECK_TIMEOUT - 1)
    except asyncio.TimeoutError:
        raise AssertionError("no pong with the ping's payload") from None
    await expect_echo(ws, "after ping")


async def check_close_1000(ws):
    await expect_echo(ws, "before close")
    await ws.close(code=1000, reason="bye")
    if ws.close_rcvd is None:
        raise AssertionError("no close frame from the server (connection dropped)")
    if ws.close_rcvd.code != 1000:
        raise AssertionError(f"server close code {ws.close_rcvd.code}, want 1000")


async def check_invalid_utf8(ws):
    # A text frame whose payload is not UTF-8: RFC 6455 8.1 / 7.4.1 say the
    # server fails the connection with 1007.
    await ws.write_frame(True, OP_TEXT, b"hi\xff\xfe")
    try:
        reply = await ws.recv()
        raise AssertionError(f"server answered with a message ({describe(reply)}) instead of closing")
    except ConnectionClosed:
        pass
    await ws.wait_closed()
    if ws.close_rcvd is None:
        raise AssertionError("no close frame from the server (connection dropped)")
    if not ws.close_rcvd_then_sent:
        raise AssertionError(f"the client closed first (code {ws.close_sent and ws.close_sent.code})")
    if ws.close_rcvd.code != 1007:
        raise AssertionError(f"server close code {ws.close_rcvd.code}, want 1007")


def compressible_text(n):
    words = ["permessage", "deflate", "κόσμε", "nexlua", "échange", "🎉", "frame"]
    out, size, i = [], 0, 0
    while size < n:
        w = f"{words[i % len(words)]} {i % 97} "
        out.append(w)
        size += len(w.encode("utf-8"))
        i += 1
    return "".join(out)


async def check_deflate_negotiated(ws):
    names = [e.name for e in ws.extensions]
    if names != ["permessage-deflate"]:
        raise AssertionError(f"negotiated extensions {names}, want ['permessage-deflate']")
    header = ws.response_headers.get("Sec-WebSocket-Extensions", "")
    for param in ("server_no_context_takeover", "client_no_context_takeover"):
        if param not in header:
            raise AssertionError(f"no {param} in the response's {header!r}")
    await expect_echo(ws, "hello, compressed")


async def check_deflate_large(ws):
    if [e.name for e in ws.extensions] != ["permessage-deflate"]:
        raise AssertionError(f"permessage-deflate not negotiated: {ws.extensions}")
    for n in (4 * 1024, 64 * 1024, MiB):
        text = compressible_text(n)
        try:
            await expect_echo(ws, text)
            await expect_echo(ws, (bytes(range(256)) * (n // 256 + 1))[:n])
        except AssertionError as e:
            raise AssertionError(f"{n} bytes: {e}") from None
    await expect_echo(ws, pattern_bytes(MiB, seed=7))  # incompressible


CHECKS = [
    ("handshake without subprotocol", check_handshake),
    ("text ascii round trip", check_text_ascii),
    ("text multi-byte utf-8 round trip", check_text_utf8),
    ("text empty round trip", check_text_empty),
    ("text 64 KiB round trip", check_text_64k),
    ("text 1 MiB round trip", check_text_1m),
    ("binary all 256 byte values round trip", check_binary_256),
    ("binary empty round trip", check_binary_empty),
    ("binary 1 MiB round trip", check_binary_1m),
    ("binary frame length boundaries (125, 126, 127, 65535, 65536)", check_length_boundaries),
    ("100 pipelined messages answered in order", check_pipelined),
    ("ping answered with pong carrying the same payload", check_ping),
    ('client close 1000 "bye" answered with close 1000', check_close_1000),
    ("invalid utf-8 in a text frame gets server close 1007", check_invalid_utf8),
    ("permessage-deflate negotiated with no context takeover", check_deflate_negotiated),
    ("compressible text and binary up to 1 MiB round trip compressed", check_deflate_large),
]


async def run_check(url, fn):
    ws = None
    try:
        async def body():
            nonlocal ws
            ws = await websockets.connect(
                url,
                open_timeout=CHECK_TIMEOUT,
                close_timeout=2,
                ping_interval=None,  # no keepalive pings of our own
                max_size=16 * MiB,
                # compression="deflate" is the default: this client offers
                # permessage-deflate (the Node client does not).
            )
            await fn(ws)

        await asyncio.wait_for(body(), CHECK_TIMEOUT)
        return None
    except asyncio.TimeoutError:
        return f"timed out after {CHECK_TIMEOUT:g} s"
    except ConnectionClosed as e:
        return f"connection closed: {e}"
    except AssertionError as e:
        return str(e)
    except Exception as e:  # noqa: BLE001 - any failure is reported, not raised
        return f"{type(e).__name__}: {e}"
    finally:
        if ws is not None and not ws.closed:
            ws.transport.abort()
            await asyncio.sleep(0)


async def main(url):
    passed = failed = 0
    for name, fn in CHECKS:
        detail = await run_check(url, fn)
        if detail is None:
            passed += 1
            print(f"ok - {name}", flush=True)
        else:
            failed += 1
            detail = " ".join(str(detail).split())
            print(f"not ok - {name}: {detail}", flush=True)
    print(f"{passed} passed, {failed} failed", flush=True)
    return 1 if failed else 0


if __name__ == "__main__":
    if len(sys.argv) != 2:
        print("usage: python_client.py ws://HOST:PORT/PATH", file=sys.stderr)
        sys.exit(2)
    sys.exit(asyncio.run(main(sys.argv[1])))
