"""
The client socket of an SMTP session (smtp/smtp_io.c): input arriving
faster than it is answered, replies the client does not read, messages
spread over many reads, and the timeouts of each state.
"""

import re
import socket
import threading
import time

from fixture import TEST_USER1, Daemon, SMTPConnection, dot_stuff, poll
from test_smtp_common import HELO, closed, dialog, expect, unique, wait_marker

TIMEOUT = 90
RCPT1 = "%s@example.test" % TEST_USER1


def sender(sock, data, errors):
    """Send data from a thread, so that the caller can read meanwhile."""
    def run():
        try:
            sock.sendall(data)
        except OSError as e:
            errors.append(e)
    t = threading.Thread(target=run, daemon=True)
    t.start()
    return t


def test_pipelined_burst_all_answered():
    """More input than the session buffers (64 KB) in one go, and more
    replies than it lets pile up: reading pauses and resumes, and every
    command gets its reply, in order."""
    n = 20000
    with Daemon() as d, SMTPConnection(d.port) as c:
        assert c.command("EHLO " + HELO).code == 250
        errors = []
        t = sender(c.sock, b"NOOP\r\n" * n + b"QUIT\r\n", errors)
        for i in range(n):
            r = c.reply()
            assert r.code == 250, "reply %d: %s" % (i, r)
        expect(c.reply(), 221, "2.0.0", "QUIT after the burst")
        assert closed(c)
        t.join(10)
        assert not errors, errors


def test_big_message_over_many_reads():
    """A message of most of a megabyte sent in one write: lines split
    across reads, dot-stuffed lines among them, arrive intact."""
    mark = unique("big")
    lines = [b"Subject: " + mark.encode(), b""]
    for i in range(12000):
        lines.append(b"%s%06d %s" % (b"." if i % 7 == 0 else b"", i,
                                       b"x" * (i % 120)))
    body = b"\r\n".join(lines) + b"\r\n"
    with Daemon() as d, SMTPConnection(d.port) as c:
        r = dialog(c, ["EHLO " + HELO, "MAIL FROM:<a@client.test>",
                       "RCPT TO:<%s>" % RCPT1, "DATA"])
        assert [x.code for x in r] == [250, 250, 250, 354], r
        c.send(dot_stuff(body) + b".\r\n")
        r = c.reply()
        assert r.code == 250 and "queued as" in r.text, r
        expect(c.command("QUIT"), 221, "2.0.0", "QUIT")
        data = wait_marker(TEST_USER1, mark, timeout=60)[0]
    assert body.replace(b"\r\n", b"\n") in data, "the body changed"


def test_data_timeout():
    """The DATA state has its own timeout: a client silent in the middle
    of a message gets 421 and is dropped, and the message is not kept."""
    with Daemon(conf_extra="smtp timeout 60s\nsmtp data-timeout 2s\n") as d, \
            SMTPConnection(d.port) as c:
        r = dialog(c, ["EHLO " + HELO, "MAIL FROM:<a@client.test>",
                       "RCPT TO:<%s>" % RCPT1, "DATA"])
        assert [x.code for x in r] == [250, 250, 250, 354], r
        c.send(b"Subject: half\r\n\r\nand then nothing")
        t0 = time.monotonic()
        expect(c.reply(), 421, "4.4.2", "timeout in DATA")
        assert 1 < time.monotonic() - t0 < 10
        assert closed(c)


def test_unread_replies_time_out():
    """A client that pipelines commands but never reads the replies: once
    the socket is full, the session stops reading, and after the timeout
    and the grace for its 421 it is dropped.  Others are served all the
    while."""
    with Daemon(conf_extra="smtp timeout 2s\n") as d:
        sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 4096)
        sock.connect(("127.0.0.1", d.port))
        sock.settimeout(1)
        chunk = b"NOOP\r\n" * 10000
        sent = 0
        try:
            while sent < 200 * len(chunk):
                sock.sendall(chunk)
                sent += len(chunk)
        except socket.timeout:
            pass
        assert sent < 200 * len(chunk), "the server read it all"
        # meanwhile, another client is served as usual
        with SMTPConnection(d.port) as c:
            expect(c.command("NOOP"), 250, "2.0.0", "NOOP, second client")
        m = poll(lambda: re.search(r"([0-9a-f]{8}): timeout, client",
                                   d.log()), 15)
        assert m, "no timeout logged:\n" + d.log_tail()
        gone = poll(lambda: "%s: disconnected" % m.group(1) in d.log(), 20)
        assert gone, "not dropped after its timeout:\n" + d.log_tail()
        sock.close()
