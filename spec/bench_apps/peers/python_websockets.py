"""Peer server for scripts/bench: Python `websockets` (Debian's python3-websockets)
on asyncio, run with /usr/bin/python3.

  /ws   echo: every message back as it came (str as text, bytes as binary)
  /sub  subscriber: held until it leaves
  /pub  every message is sent as text to every subscriber (websockets.broadcast)

usage: /usr/bin/python3 python_websockets.py PORT
"""
import asyncio
import signal
import sys

import websockets

SUBSCRIBERS = set()


async def handler(ws, path=None):
    path = ws.path.split("?")[0]
    if path == "/ws":
        async for msg in ws:
            await ws.send(msg)
    elif path == "/sub":
        SUBSCRIBERS.add(ws)
        try:
            await ws.wait_closed()
        finally:
            SUBSCRIBERS.discard(ws)
    elif path == "/pub":
        async for msg in ws:
            if isinstance(msg, bytes):
                msg = msg.decode()
            websockets.broadcast(SUBSCRIBERS, msg)
    else:
        await ws.close(1008, "no such route")


async def main(port):
    stop = asyncio.get_running_loop().create_future()
    asyncio.get_running_loop().add_signal_handler(signal.SIGTERM, stop.set_result, None)
    async with websockets.serve(
        handler,
        "127.0.0.1",
        port,
        compression=None,
        max_size=16 * 1024 * 1024,
        ping_interval=None,
        backlog=1024,
    ):
        sys.stderr.write(f"python websockets {websockets.__version__} listening on {port}\n")
        await stop


if __name__ == "__main__":
    asyncio.run(main(int(sys.argv[1])))
