#!/usr/bin/env python3
"""Drives the chat server over WebSocket with the third-party `websockets` package.

Usage: ws_client.py WS_URL TOKEN UID ROOM

Sends JSON in text frames: heartbeat, login, watch ROOM, a room message; checks every answer
(the server answers in binary frames) and prints what it got. Exits non-zero on any mismatch.
"""

import asyncio
import json
import sys
import time

try:  # websockets >= 13
    from websockets.asyncio.client import connect
except ImportError:  # older releases
    from websockets import connect

TIMEOUT = 5.0


class Mismatch(Exception):
    pass


def check(cond, what):
    if not cond:
        raise Mismatch(what)


async def request(ws, name, body, want):
    """Sends {name: body} as a text frame and returns the body of the `want` reply."""
    await ws.send(json.dumps({name: body}))
    raw = await asyncio.wait_for(ws.recv(), TIMEOUT)
    check(isinstance(raw, bytes), f"{want}: expected a binary frame, got {type(raw).__name__}")
    reply = json.loads(raw.decode("utf-8"))
    print(f"sent {name}, got {reply}")
    check(isinstance(reply, dict) and len(reply) == 1, f"not a one-key envelope: {reply!r}")
    check(want in reply, f"expected {want}, got {reply!r}")
    return reply[want]


async def main(url, token, uid, room):
    async with connect(url, open_timeout=TIMEOUT, close_timeout=TIMEOUT) as ws:
        now = int(time.time())
        hb = await request(ws, "C2S_UserHeartBeat", {"ptime": 1}, "C2S_UserHeartBeat")
        check(isinstance(hb.get("ptime"), int), f"ptime is not an integer: {hb!r}")
        check(abs(hb["ptime"] - now) <= 5, f"ptime {hb['ptime']} is not near now {now}")

        login = await request(
            ws, "C2S_UserLogin", {"token": token, "login_plat": 3}, "S2C_UserLogin"
        )
        check(login.get("ret") == 1, f"login refused: {login!r}")
        check(login.get("uid") == uid, f"login uid {login.get('uid')!r} != {uid}")

        watch = await request(ws, "C2S_UpdateWatchRoom", {"room_id": room}, "S2C_UpdateWatchRoom")
        check(watch == {"room_id": room, "online": 1}, f"watch answer {watch!r}")

        text = "hello from python ✓"
        msg = await request(
            ws, "C2S_Message", {"room_id": room, "to_uid": 0, "text": text}, "S2C_Message"
        )
        check(msg.get("room_id") == room, f"room_id in {msg!r}")
        check(msg.get("from_uid") == uid, f"from_uid in {msg!r}")
        check(msg.get("to_uid") == 0, f"to_uid in {msg!r}")
        check(msg.get("text") == text, f"text in {msg!r}")
        check(abs(msg.get("ts", 0) - now) <= 5, f"ts in {msg!r}")

        # A refused request (private message to an offline uid) keeps the connection open.
        err = await request(
            ws, "C2S_Message", {"room_id": 0, "to_uid": 987654321, "text": "x"}, "S2C_Error"
        )
        check(err.get("code") == 3, f"error code in {err!r}")
        hb = await request(ws, "C2S_UserHeartBeat", {}, "C2S_UserHeartBeat")
        check(isinstance(hb.get("ptime"), int), f"heartbeat after an error: {hb!r}")
    print("OK")


if __name__ == "__main__":
    if len(sys.argv) != 5:
        print(__doc__, file=sys.stderr)
        sys.exit(2)
    try:
        asyncio.run(main(sys.argv[1], sys.argv[2], int(sys.argv[3]), int(sys.argv[4])))
    except Mismatch as e:
        print(f"MISMATCH: {e}", file=sys.stderr)
        sys.exit(1)
    except Exception as e:  # connection refused, timeout, closed, bad JSON
        print(f"ERROR: {type(e).__name__}: {e}", file=sys.stderr)
        sys.exit(1)
