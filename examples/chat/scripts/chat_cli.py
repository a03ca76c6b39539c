#!/usr/bin/env python3
"""A terminal chat client for longlink-chat over WebSocket + JSON (for the cluster walk-through
of docs/cluster.md). Gets a token from the server's /dev/token (needs [chat] dev_tokens = true),
logs in, watches a room, then sends every line typed as a room message ("@UID text" sends a
private message) and prints what arrives.

    .venv/bin/python examples/chat/scripts/chat_cli.py --port 3653 --uid 1 --room 7

Needs the `websockets` package (scripts/test.sh installs it into .venv).
"""
import argparse
import asyncio
import json
import sys
import urllib.request

import websockets


def show(payload):
    msg = json.loads(payload)
    name, body = next(iter(msg.items()))
    if name == "S2C_Message":
        to = f" (private to {body.get('to_uid')})" if body.get("to_uid") else ""
        print(f"[room {body.get('room_id', 0)}] {body.get('from_uid')}{to}: {body.get('text', '')}")
    else:
        print(f"{name} {json.dumps(body)}")
    sys.stdout.flush()


async def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--host", default="127.0.0.1")
    ap.add_argument("--port", type=int, default=3653)
    ap.add_argument("--uid", type=int, required=True)
    ap.add_argument("--room", type=int, default=1)
    ap.add_argument("--linger", type=float, default=1.0, help="seconds to keep listening after stdin ends")
    args = ap.parse_args()
    base = f"{args.host}:{args.port}"
    token = urllib.request.urlopen(f"http://{base}/dev/token?uid={args.uid}", timeout=5).read().decode()
    async with websockets.connect(f"ws://{base}/") as ws:
        async def send(name, body):
            await ws.send(json.dumps({name: body}).encode())

        async def reader():
            async for payload in ws:
                show(payload)

        listening = asyncio.create_task(reader())
        await send("C2S_UserLogin", {"token": token, "login_plat": 1})
        await send("C2S_UpdateWatchRoom", {"room_id": args.room})
        loop = asyncio.get_running_loop()
        while True:
            line = await loop.run_in_executor(None, sys.stdin.readline)
            if not line:
                break
            line = line.strip()
            if not line:
                continue
            if line.startswith("@") and " " in line:
                to, text = line[1:].split(" ", 1)
                await send("C2S_Message", {"room_id": 0, "to_uid": int(to), "text": text})
            else:
                await send("C2S_Message", {"room_id": args.room, "to_uid": 0, "text": line})
        await asyncio.sleep(args.linger)
        listening.cancel()


if __name__ == "__main__":
    asyncio.run(main())
