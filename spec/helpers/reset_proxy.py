#!/usr/bin/python3
"""A TCP proxy for spec/api/redis_spec.lua: forwards 127.0.0.1:LISTEN to
127.0.0.1:TARGET and, on SIGUSR1, ends every open connection with a TCP
reset (SO_LINGER 0) on both sides, as a NAT or load balancer that forgets a
connection does. New connections are forwarded as before.

    /usr/bin/python3 spec/helpers/reset_proxy.py LISTEN_PORT TARGET_PORT

Prints "ready" once it listens. Ends on SIGTERM.
"""
import selectors
import signal
import socket
import struct
import sys

listen_port, target_port = int(sys.argv[1]), int(sys.argv[2])
sel = selectors.DefaultSelector()
pairs = {}  # socket -> its peer
reset_now = False


def on_usr1(_sig, _frame):
    global reset_now
    reset_now = True


def reset(s):
    try:
        s.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, struct.pack("ii", 1, 0))
    except OSError:
        pass
    try:
        sel.unregister(s)
    except (KeyError, ValueError):
        pass
    s.close()


signal.signal(signal.SIGUSR1, on_usr1)
server = socket.socket()
server.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
server.bind(("127.0.0.1", listen_port))
server.listen(64)
sel.register(server, selectors.EVENT_READ)
print("ready", flush=True)
while True:
    if reset_now:
        reset_now = False
        for s in list(pairs):
            reset(s)
        pairs.clear()
    try:
        events = sel.select(timeout=0.05)
    except InterruptedError:
        continue
    for key, _ in events:
        s = key.fileobj
        if s is server:
            client, _ = server.accept()
            upstream = socket.create_connection(("127.0.0.1", target_port))
            pairs[client], pairs[upstream] = upstream, client
            sel.register(client, selectors.EVENT_READ)
            sel.register(upstream, selectors.EVENT_READ)
            continue
        peer = pairs.get(s)
        if peer is None:
            continue
        try:
            data = s.recv(65536)
        except OSError:
            data = b""
        if not data:
            for x in (s, peer):
                pairs.pop(x, None)
                try:
                    sel.unregister(x)
                except (KeyError, ValueError):
                    pass
                x.close()
            continue
        try:
            peer.sendall(data)
        except OSError:
            pass
