#!/usr/bin/python3
"""A server that speaks Redis's protocol until it breaks it, for
spec/api/redis_spec.lua: PING, AUTH and PUBLISH are answered as Redis
does; then, by MODE, one reply out of protocol is sent:

    nilchan   after a SUBSCRIBE's confirmation: ["message", nil, "x"]
    empty     after a SUBSCRIBE's confirmation: an empty array
    intkind   after a SUBSCRIBE's confirmation: [1, channel, "x"]
    unsubnil  after a SUBSCRIBE's confirmation: ["unsubscribe", channel, nil]
    unsubcase the same, written "UNSUBSCRIBE" (hiredis reads the kind in any case)
    punsubstr after a SUBSCRIBE's confirmation: ["pUnsubscribe", channel, "0"]
    extra     after a PUBLISH's answer: a second answer nobody asked for
    bigreply  a PUBLISH answered with the head of an array of a million elements
    bignested after a SUBSCRIBE's confirmation: a message whose data is the head
              of an array of a million elements
    bigping   every PING answered with the head of an array of a million
              elements (the start-up check meets it first)
    arrayping every PING answered with a whole one-element array, ["PONG"]

    /usr/bin/python3 spec/helpers/rogue_redis.py PORT MODE

Prints "ready" once it listens. Ends on SIGTERM.
"""
import socket
import sys
import threading

port, mode = int(sys.argv[1]), sys.argv[2]


def bulk(b):
    return b"$%d\r\n%s\r\n" % (len(b), b)


BIG = b"*1000000\r\n"  # (and nothing after it: hiredis would wait for the elements)


def rogue(channel):
    return {
        "nilchan": b"*3\r\n" + bulk(b"message") + b"$-1\r\n" + bulk(b"x"),
        "empty": b"*0\r\n",
        "intkind": b"*3\r\n:1\r\n" + bulk(channel) + bulk(b"x"),
        "unsubnil": b"*3\r\n" + bulk(b"unsubscribe") + bulk(channel) + b"$-1\r\n",
        "unsubcase": b"*3\r\n" + bulk(b"UNSUBSCRIBE") + bulk(channel) + b"$-1\r\n",
        "punsubstr": b"*3\r\n" + bulk(b"pUnsubscribe") + bulk(channel) + bulk(b"0"),
        "bignested": b"*3\r\n" + bulk(b"message") + bulk(channel) + BIG,
    }.get(mode)


def commands(conn):
    """Yields each command (a list of bytes) hiredis sends: RESP arrays of bulk strings."""
    buf = b""
    while True:
        while True:
            parts = buf.split(b"\r\n")
            if not parts[0].startswith(b"*") or len(parts) < 2:
                break
            n = int(parts[0][1:])
            if len(parts) < 2 + 2 * n:
                break
            yield [parts[2 + 2 * i] for i in range(n)]
            buf = b"\r\n".join(parts[1 + 2 * n:])
        data = conn.recv(65536)
        if not data:
            return
        buf += data


def serve(conn):
    try:
        for cmd in commands(conn):
            name = cmd[0].upper()
            if name == b"PING" and mode == "bigping":
                conn.sendall(BIG)
            elif name == b"PING" and mode == "arrayping":
                conn.sendall(b"*1\r\n+PONG\r\n")
            elif name in (b"PING", b"AUTH"):
                conn.sendall(b"+PONG\r\n" if name == b"PING" else b"+OK\r\n")
            elif name == b"PUBLISH" and mode == "bigreply":
                conn.sendall(BIG)
            elif name == b"PUBLISH":
                conn.sendall(b":0\r\n" + (b":0\r\n" if mode == "extra" else b""))
            elif name == b"SUBSCRIBE":
                conn.sendall(b"*3\r\n" + bulk(b"subscribe") + bulk(cmd[1]) + b":1\r\n" +
                             (rogue(cmd[1]) or b""))
            elif name == b"UNSUBSCRIBE":
                conn.sendall(b"*3\r\n" + bulk(b"unsubscribe") + bulk(cmd[1]) + b":0\r\n")
            else:
                conn.sendall(b"-ERR unknown command\r\n")
    except OSError:
        pass
    finally:
        conn.close()


srv = socket.socket()
srv.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
srv.bind(("127.0.0.1", port))
srv.listen(64)
print("ready", flush=True)
while True:
    c, _ = srv.accept()
    threading.Thread(target=serve, args=(c,), daemon=True).start()
