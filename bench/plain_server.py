"""The peer of the benchmark: a minimal `websockets` broadcast server (no TLS, no auth, no database, no Redis).

Every client gets a hello; a frame {"type": "post", "marker": "..."} from any client is broadcast, encoded once, to
every open socket as an event of about the size the app sends. What it costs per delivered message is the floor a
Python server on this machine reaches; bench/run.py reports the deployed stack as a ratio to it.

Usage (inside the bench container, with the controller's websockets package on PYTHONPATH):
    python3 plain_server.py --port 9300
"""

from __future__ import annotations

import argparse
import asyncio
import json
import resource

from websockets.asyncio.server import broadcast, serve

# About what the app's comment.created event weighs (author, anchor, reactions, timestamps ...).
PADDING = "x" * 600


async def main(port: int) -> None:
    _soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    resource.setrlimit(resource.RLIMIT_NOFILE, (hard, hard))
    clients: set = set()
    seq = 0

    async def handler(websocket) -> None:
        nonlocal seq
        clients.add(websocket)
        try:
            await websocket.send(json.dumps({"type": "hello", "user": None, "last_seq": seq}))
            async for message in websocket:
                frame = json.loads(message)
                if frame.get("type") == "post":
                    seq += 1
                    event = {
                        "type": "event",
                        "seq": seq,
                        "event": "comment.created",
                        "comment": {"body": frame["marker"], "padding": PADDING},
                    }
                    broadcast(clients, json.dumps(event))
        finally:
            clients.discard(websocket)

    async with serve(handler, "127.0.0.1", port, backlog=16384, ping_interval=20, ping_timeout=30):
        await asyncio.Future()


if __name__ == "__main__":
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--port", type=int, default=9300)
    asyncio.run(main(parser.parse_args().port))
