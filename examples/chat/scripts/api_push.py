#!/usr/bin/env python3
"""Pushes a chat message into a live connection through longlink's server API, from outside.

    LONGLINK_ADMIN__API_KEY=secret cargo run --release -p longlink-chat &
    python3 examples/chat/scripts/api_push.py --key secret --uid 42 "your order shipped"
    python3 examples/chat/scripts/api_push.py --key secret --room 7 "hello, room 7"
    python3 examples/chat/scripts/api_push.py --key secret --kick 42 --reason banned

Python's standard library only. Prints the server's JSON answer; exits 1 on an HTTP error.
"""
import argparse
import json
import sys
import time
import urllib.error
import urllib.request


def call(base, key, method, path, body=None):
    data = None if body is None else json.dumps(body).encode()
    req = urllib.request.Request(base + path, data=data, method=method)
    req.add_header("Authorization", "Bearer " + key)
    req.add_header("Content-Type", "application/json")
    try:
        with urllib.request.urlopen(req, timeout=10) as answer:
            return json.loads(answer.read())
    except urllib.error.HTTPError as e:
        print(f"{e.code}: {e.read().decode(errors='replace')}", file=sys.stderr)
        sys.exit(1)


def main():
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--api", default="http://127.0.0.1:9090", help="the admin listener")
    ap.add_argument("--key", required=True, help="[admin] api_key")
    ap.add_argument("--uid", type=int, help="push to this uid")
    ap.add_argument("--room", type=int, help="broadcast to the watchers of this room")
    ap.add_argument("--kick", type=int, help="kick this uid")
    ap.add_argument("--reason", default="kicked", help="the kick's reason")
    ap.add_argument("--online", type=int, help="ask whether this uid is online")
    ap.add_argument("text", nargs="?", default="", help="the message text")
    args = ap.parse_args()
    message = {"S2C_Message": {"room_id": args.room or 0, "from_uid": 0, "to_uid": args.uid or 0,
                               "text": args.text, "ts": int(time.time())}}
    if args.kick is not None:
        answer = call(args.api, args.key, "POST", "/api/v1/kick", {"uid": args.kick, "reason": args.reason})
    elif args.online is not None:
        answer = call(args.api, args.key, "GET", f"/api/v1/online/{args.online}")
    elif args.uid is not None:
        answer = call(args.api, args.key, "POST", "/api/v1/push", {"uid": args.uid, "message": message})
    elif args.room is not None:
        answer = call(args.api, args.key, "POST", "/api/v1/broadcast",
                      {"group": "room", "key": args.room, "message": message})
    else:
        answer = call(args.api, args.key, "GET", "/api/v1/stats")
    print(json.dumps(answer))


if __name__ == "__main__":
    main()
