#!/usr/bin/python3
"""
bench_idle.py -- concurrent idle SMTP sessions and their memory cost.

    bench_idle.py --port PORT --pid DAEMON_PID [--sessions 10000]

Opens up to --sessions connections to 127.0.0.1:PORT (never more than
12000, at most --inflight handshakes at a time), says EHLO on each and
waits for the reply, holds them --hold seconds, then counts how many are
still open and reads the memory of the daemon's processes (PSS from
/proc/PID/smaps_rollup, shared pages split fairly) before and after.
Prints one line; everything is bounded in count and time.
"""

import argparse
import os
import resource
import selectors
import socket
import sys
import time

MAX_SESSIONS = 12000


def tree(pid):
    """pid and all its descendants."""
    kids = {}
    for p in os.listdir("/proc"):
        if not p.isdigit():
            continue
        try:
            with open("/proc/%s/stat" % p) as f:
                ppid = int(f.read().rsplit(")", 1)[1].split()[1])
        except (OSError, IndexError, ValueError):
            continue
        kids.setdefault(ppid, []).append(int(p))
    out, todo = [], [pid]
    while todo:
        p = todo.pop()
        out.append(p)
        todo.extend(kids.get(p, []))
    return out


def pss_kb(pids):
    total = 0
    for p in pids:
        try:
            with open("/proc/%d/smaps_rollup" % p) as f:
                for line in f:
                    if line.startswith("Pss:"):
                        total += int(line.split()[1])
        except OSError:
            pass
    return total


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--port", type=int, required=True)
    ap.add_argument("--pid", type=int, required=True)
    ap.add_argument("--sessions", type=int, default=10000)
    ap.add_argument("--inflight", type=int, default=200)
    ap.add_argument("--hold", type=float, default=5)
    ap.add_argument("--timeout", type=float, default=180)
    a = ap.parse_args()
    n = min(a.sessions, MAX_SESSIONS)
    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    resource.setrlimit(resource.RLIMIT_NOFILE, (max(hard, n + 256),
                                                max(hard, n + 256)))
    base = pss_kb(tree(a.pid))
    sel = selectors.DefaultSelector()
    open_socks, state = [], {}
    started = done = failed = 0
    deadline = time.monotonic() + a.timeout
    while (done + failed < n) and time.monotonic() < deadline:
        while started < n and started - done - failed < a.inflight:
            s = socket.socket()
            s.setblocking(False)
            try:
                s.connect(("127.0.0.1", a.port))
            except BlockingIOError:
                pass
            except OSError:
                failed += 1
                started += 1
                s.close()
                continue
            state[s] = b""
            sel.register(s, selectors.EVENT_READ)
            started += 1
        for key, _ in sel.select(timeout=1):
            s = key.fileobj
            try:
                data = s.recv(4096)
            except OSError:
                data = b""
            if not data:
                sel.unregister(s)
                s.close()
                failed += 1
                continue
            buf = state[s] + data
            state[s] = buf
            if buf.startswith(b"220") and b"EHLO" not in buf and \
                    buf.endswith(b"\r\n") and b"\r\n250" not in buf:
                state[s] = buf + b"EHLO"	# marker: EHLO sent
                s.sendall(b"EHLO idle.test\r\n")
            elif b"\r\n250 " in buf or buf.split(b"EHLO", 1)[-1].find(
                    b"250 ") >= 0:
                sel.unregister(s)
                open_socks.append(s)
                done += 1
    time.sleep(a.hold)
    alive = 0
    for s in open_socks:
        try:
            s.setblocking(False)
            if s.recv(1, socket.MSG_PEEK) == b"":
                continue
        except BlockingIOError:
            alive += 1
            continue
        except OSError:
            continue
        alive += 1
    after = pss_kb(tree(a.pid))
    per = (after - base) * 1024 / alive if alive else 0
    print("idle sessions: %d asked, %d held after %.0fs; daemon PSS %d KB "
          "-> %d KB; %.1f KB per session" % (n, alive, a.hold, base, after,
                                              per / 1024))
    for s in open_socks:
        s.close()
    return 0 if alive >= n * 0.99 else 1


if __name__ == "__main__":
    sys.exit(main())
