#!/usr/bin/python3
"""
raw_milter.py -- the milter protocol spoken by hand (no libmilter), for
what a well-behaved libmilter filter never does and for seeing exactly
what an MTA sends:

    raw_milter.py garbage PORT STAGE KIND LOGFILE
        a filter on 127.0.0.1:PORT that negotiates normally (version 6,
        every action, no protocol flags), answers "continue" to every
        command, and at STAGE (connect helo mail rcpt data header eoh
        body eom) sends garbage instead of a reply, KIND being
          noise  -- text, which read as a length is ~1.2 GB
          badcmd -- a well-framed packet with an unknown reply byte 'Z'
          short  -- a length of 0 (no command byte at all)
        then keeps the connection open without a word (a broken filter
        that does not even close).

    raw_milter.py tap PORT UPSTREAM_PORT LOGFILE
        a proxy on 127.0.0.1:PORT in front of a filter on
        127.0.0.1:UPSTREAM_PORT that logs every packet in both
        directions, decoded, as JSON lines:
          {"conn": N, "from": "mta"|"filter", "cmd": "D", "data": "..."}
        (SMFIC_MACRO's pairs and the option negotiation decoded too), so
        the round trips per message and the exact bytes are visible.

Every log line is flushed at once.  Standard library only.
"""

import json
import socket
import struct
import sys
import threading

LOCK = threading.Lock()
SEQ = [0]

STAGE_CMD = {"connect": b"C", "helo": b"H", "mail": b"M", "rcpt": b"R",
             "data": b"T", "header": b"L", "eoh": b"N", "body": b"B",
             "eom": b"E"}
GARBAGE = {
    "noise": b"HELLO, I AM NOT A MILTER\r\n",
    "badcmd": struct.pack(">I", 5) + b"Zjunk",
    "short": struct.pack(">I", 0),
}


def logger(path):
    f = open(path, "a")

    def log(entry):
        with LOCK:
            f.write(json.dumps(entry, sort_keys=True) + "\n")
            f.flush()
    return log


def recv_exact(sock, n):
    buf = b""
    while len(buf) < n:
        chunk = sock.recv(n - len(buf))
        if not chunk:
            return None
        buf += chunk
    return buf


def read_packet(sock):
    head = recv_exact(sock, 4)
    if head is None:
        return None
    (length,) = struct.unpack(">I", head)
    if length == 0 or length > 16 * 1024 * 1024:
        raise ValueError("bad packet length %d" % length)
    body = recv_exact(sock, length)
    if body is None:
        return None
    return body[:1], body[1:]


def packet(cmd, data=b""):
    return struct.pack(">I", len(data) + 1) + cmd + data


def decode(cmd, data):
    """A JSON-friendly view of a packet's data."""
    out = {"cmd": cmd.decode("latin-1"), "len": len(data)}
    if cmd == b"O" and len(data) >= 12:
        out["version"], out["actions"], out["protocol"] = \
            struct.unpack(">III", data[:12])
        if len(data) > 12:
            out["extra"] = data[12:].decode("latin-1")
    elif cmd == b"D" and data:
        parts = data[1:].split(b"\0")
        if parts and parts[-1] == b"":
            parts.pop()
        out["for"] = data[:1].decode("latin-1")
        out["macros"] = [[parts[i].decode("latin-1"),
                          parts[i + 1].decode("latin-1")
                          if i + 1 < len(parts) else None]
                         for i in range(0, len(parts), 2)]
    else:
        out["data"] = data.decode("latin-1")
    return out


def serve(port, handler):
    srv = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    srv.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    srv.bind(("127.0.0.1", port))
    srv.listen(64)
    while True:
        conn, _ = srv.accept()
        with LOCK:
            SEQ[0] += 1
            n = SEQ[0]
        threading.Thread(target=handler, args=(conn, n),
                         daemon=True).start()


def garbage(port, stage, kind, logpath):
    log = logger(logpath)
    trigger = STAGE_CMD[stage]

    def handle(conn, n):
        try:
            while True:
                p = read_packet(conn)
                if p is None:
                    log({"conn": n, "event": "closed"})
                    return
                cmd, data = p
                log(dict(decode(cmd, data), conn=n, **{"from": "mta"}))
                if cmd == b"O":
                    conn.sendall(packet(b"O", struct.pack(
                        ">III", 6, 0x1ff, 0)))
                elif cmd == trigger:
                    conn.sendall(GARBAGE[kind])
                    log({"conn": n, "event": "garbage", "kind": kind})
                    # silent from now on; the MTA must give up on us
                    while conn.recv(65536):
                        pass
                    log({"conn": n, "event": "closed"})
                    return
                elif cmd in b"CHMRTLNBE":
                    conn.sendall(packet(b"c"))
                elif cmd in (b"Q", b"K"):
                    log({"conn": n, "event": "quit"})
                    if cmd == b"Q":
                        return
                # D (macros) and A (abort) get no reply
        except (OSError, ValueError) as e:
            log({"conn": n, "event": "error", "error": str(e)})
        finally:
            conn.close()

    serve(port, handle)


def tap(port, upstream, logpath):
    log = logger(logpath)

    def pump(src, dst, n, who):
        try:
            while True:
                p = read_packet(src)
                if p is None:
                    break
                cmd, data = p
                log(dict(decode(cmd, data), conn=n, **{"from": who}))
                dst.sendall(packet(cmd, data))
        except (OSError, ValueError) as e:
            log({"conn": n, "from": who, "event": "error",
                 "error": str(e)})
        log({"conn": n, "from": who, "event": "closed"})
        for s in (src, dst):
            try:
                s.shutdown(socket.SHUT_RDWR)
            except OSError:
                pass

    def handle(conn, n):
        up = socket.create_connection(("127.0.0.1", upstream))
        t = threading.Thread(target=pump, args=(up, conn, n, "filter"),
                             daemon=True)
        t.start()
        pump(conn, up, n, "mta")
        t.join(5)
        conn.close()
        up.close()

    serve(port, handle)


def main():
    a = sys.argv[1:]
    if len(a) == 5 and a[0] == "garbage" and a[2] in STAGE_CMD and \
            a[3] in GARBAGE:
        garbage(int(a[1]), a[2], a[3], a[4])
    elif len(a) == 4 and a[0] == "tap":
        tap(int(a[1]), int(a[2]), a[3])
    else:
        sys.stderr.write(__doc__)
        return 2
    return 0


if __name__ == "__main__":
    sys.exit(main())
