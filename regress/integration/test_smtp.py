"""
The SMTP replies of the minimal server of issue 2: greeting, HELO/EHLO,
MAIL, RCPT (unknown user 550 5.1.1, unrouted domain 550 5.7.1), RSET,
NOOP, QUIT -- and many sessions at once on the pre-forked workers.
"""

import socket
import time

from fixture import TEST_USER1, Daemon, SMTPConnection, smtp_dialog

TIMEOUT = 60
HELO = "tester.example.test"


def expect(reply, code, enhanced=None, what=""):
    assert reply.code == code, "%s: got %s, expected %d" % (what, reply, code)
    if enhanced:
        assert reply.lines[-1].startswith(enhanced) or \
            reply.lines[0].startswith(enhanced), \
            "%s: got %s, expected enhanced status %s" % (what, reply,
                                                         enhanced)


def test_replies():
    with Daemon() as d:
        script = [
            "EHLO %s" % HELO,
            "MAIL FROM:<sender@client.example.test>",
            "RCPT TO:<nosuchuser@example.test>",
            "RCPT TO:<x@elsewhere.test>",
            "RCPT TO:<%s@example.test>" % TEST_USER1,
            "RSET",
            "NOOP",
            "QUIT",
        ]
        r = smtp_dialog(d.port, script)
        assert len(r) == len(script) + 1, \
            "dialog ended early after %d replies: %s" % (len(r), r)
        expect(r[0], 220, what="greeting")
        expect(r[1], 250, what="EHLO")
        expect(r[2], 250, what="MAIL")
        expect(r[3], 550, "5.1.1", "RCPT unknown user")
        expect(r[4], 550, "5.7.1", "RCPT other domain")
        expect(r[5], 250, what="RCPT known user")
        expect(r[6], 250, what="RSET")
        expect(r[7], 250, what="NOOP")
        expect(r[8], 221, what="QUIT")


def test_helo():
    with Daemon() as d:
        r = smtp_dialog(d.port, ["HELO %s" % HELO, "QUIT"])
        expect(r[1], 250, what="HELO")
        assert len(r[1].lines) == 1, "HELO reply is multi-line: %s" % r[1]
        expect(r[2], 221, what="QUIT")


def test_greeting_names_host():
    """220 <domain> ... (RFC 5321 4.3.1: the greeting starts with the
    server's name)."""
    with Daemon() as d:
        with SMTPConnection(d.port) as c:
            expect(c.greeting, 220, what="greeting")
            assert c.greeting.lines[0].split(" ")[0], c.greeting
            expect(c.command("QUIT"), 221, what="QUIT")


def test_rset_clears_transaction():
    """After RSET a DATA has no recipients: not 354."""
    with Daemon() as d:
        r = smtp_dialog(d.port, [
            "EHLO %s" % HELO,
            "MAIL FROM:<s@client.example.test>",
            "RCPT TO:<%s@example.test>" % TEST_USER1,
            "RSET",
            "DATA",
            "QUIT",
        ])
        expect(r[4], 250, what="RSET")
        assert r[5].code >= 500, "DATA after RSET: %s, expected 5xx" % r[5]


def test_quit_closes():
    """After 221 the server closes the connection."""
    with Daemon() as d:
        with SMTPConnection(d.port) as c:
            expect(c.command("QUIT"), 221, what="QUIT")
            c.sock.settimeout(10)
            try:
                data = c.sock.recv(100)
            except (ConnectionResetError, socket.timeout) as e:
                data = e
            assert data == b"", "after QUIT: %r, expected EOF" % (data,)


def test_concurrent_sessions():
    """Twenty sessions at once all get their greeting and are served."""
    with Daemon() as d:
        conns = []
        try:
            t0 = time.monotonic()
            for _ in range(20):
                conns.append(SMTPConnection(d.port, timeout=20))
            for c in conns:
                expect(c.greeting, 220, what="greeting")
            for i, c in enumerate(conns):
                expect(c.command("EHLO client%d.example.test" % i), 250,
                       what="EHLO")
            for c in conns:
                expect(c.command("QUIT"), 221, what="QUIT")
            took = time.monotonic() - t0
            assert took < 15, "20 sessions took %.1fs" % took
        finally:
            for c in conns:
                c.close()
