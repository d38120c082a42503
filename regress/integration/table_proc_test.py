#!/usr/bin/python3
"""
table_proc_test.py -- a table program for proc: tables, written to
OpenSMTPD's smtpd-tables(7) manual (protocol 0.1), for
test_table_proc.py.  Not a test module itself.

    table_proc_test.py DATA.json

DATA.json, read again whenever it changes:
    {"register": ["alias", "domain", ...],      services to register
     "tables": {"alias": {"key": "value"}, "domain": ["example.test"]},
                a dict answers lookups, a list answers checks
     "delay": {"key": 0.3},     answer that key late (out of order)
     "error": ["key"],          answer "error|..." for these keys
     "garbage": "key",          answer garbage for that key
     "exit": "key",             exit when asked that key
     "log": "/path"}            append each request line there

Requests are answered as they come, except delayed ones, which wait in
a list while later requests are answered: the daemon must match answers
to questions by their ID.  Exits at the end of its input, as the manual
asks of table programs.
"""

import json
import os
import select
import sys
import time

DATA = sys.argv[1]
state = {"mtime": None, "data": {}}


def data():
    try:
        m = os.stat(DATA).st_mtime_ns
    except OSError:
        return state["data"]
    if m != state["mtime"]:
        with open(DATA) as f:
            state["data"] = json.load(f)
        state["mtime"] = m
    return state["data"]


def out(line):
    os.write(1, (line + "\n").encode())


def answer(op, service, rid, key):
    d = data()
    kind = op + "-result"
    if key == d.get("garbage"):
        return "this is not an answer"
    if key in d.get("error", []):
        return "%s|%s|error|the database is down" % (kind, rid)
    t = d.get("tables", {}).get(service)
    if isinstance(t, dict) and key in t:
        if op == "check":
            return "%s|%s|found" % (kind, rid)
        return "%s|%s|found|%s" % (kind, rid, t[key])
    if isinstance(t, list) and key in t:
        if op == "check":
            return "%s|%s|found" % (kind, rid)
        return "%s|%s|found|" % (kind, rid)
    return "%s|%s|not-found" % (kind, rid)


def main():
    buf = b""
    # the handshake: config lines up to config|ready, then register
    while b"config|ready\n" not in buf:
        chunk = os.read(0, 4096)
        if not chunk:
            return
        buf += chunk
    head, buf = buf.split(b"config|ready\n", 1)
    for line in head.decode().splitlines():
        assert line.startswith("config|"), line
    for s in data().get("register", []):
        out("register|" + s)
    out("register|ready")
    waiting = []	# (due, line)
    while True:
        now = time.monotonic()
        for item in [w for w in waiting if w[0] <= now]:
            waiting.remove(item)
            out(item[1])
        timeout = min([w[0] for w in waiting], default=now + 60) - now
        r, _, _ = select.select([0], [], [], max(timeout, 0))
        if not r:
            continue
        chunk = os.read(0, 65536)
        if not chunk:
            return
        buf += chunk
        while b"\n" in buf:
            raw, buf = buf.split(b"\n", 1)
            line = raw.decode()
            d = data()
            if d.get("log"):
                with open(d["log"], "a") as f:
                    f.write(line + "\n")
            # table|0.1|TIMESTAMP|NAME|OP|SERVICE|ID|KEY (KEY may hold |)
            f = line.split("|", 7)
            assert f[0] == "table" and f[1] == "0.1" and len(f) == 8, line
            op, service, rid, key = f[4], f[5], f[6], f[7]
            if key == d.get("exit"):
                return
            a = answer(op, service, rid, key)
            delay = d.get("delay", {}).get(key)
            if delay:
                waiting.append((time.monotonic() + delay, a))
            else:
                out(a)


if __name__ == "__main__":
    main()
