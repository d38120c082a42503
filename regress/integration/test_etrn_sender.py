"""
ETRN (RFC 1985) from trusted and untrusted clients, and the sender
domain check (check-sender-domain) against a real DNS server on loopback.
"""

import re
import time

from fixture import Daemon, SMTPConnection
from test_mta_mx import Dnsmasq

TIMEOUT = 60

# mail for remote.test is relayed to a port nobody listens on: deferred
RELAY_CONF = """\
spool "@TMP@/spool"
socket "@TMP@/smtpd.sock"
smtp workers 1
listen on 127.0.0.1 port @PORT@
action "local" maildir "~/Maildir"
action "dead" relay host "smtp://127.0.0.1:9"
match from any for domain "example.test" action "local"
match from local for domain "remote.test" action "dead"
match from local for domain "sub.remote.test" action "dead"
"""

UNTRUSTED_CONF = """\
spool "@TMP@/spool"
socket "@TMP@/smtpd.sock"
smtp workers 1
listen on 127.0.0.1 port @PORT@
action "local" maildir "~/Maildir"
match from any for domain "example.test" action "local"
"""


def queue_remote(d, rcpt):
    with SMTPConnection(d.port) as c:
        c.command("EHLO etrn.test")
        c.command("MAIL FROM:<a@example.test>")
        assert c.command("RCPT TO:<%s>" % rcpt).code == 250
        assert c.command("DATA").code == 354
        c.send(b"Subject: etrn\r\n\r\nx\r\n.\r\n")
        assert c.reply().code == 250
        c.command("QUIT")


def etrn(d, node):
    with SMTPConnection(d.port) as c:
        c.command("EHLO etrn.test")
        r = c.command("ETRN %s" % node)
        c.command("QUIT")
        return r


def attempts(d):
    return d.log().count("status=deferred")


def test_etrn_trusted():
    with Daemon(conf=RELAY_CONF) as d:
        queue_remote(d, "u@remote.test")
        queue_remote(d, "v@sub.remote.test")
        deadline = time.monotonic() + 15
        while attempts(d) < 2:
            assert time.monotonic() < deadline, d.log_tail()
            time.sleep(0.1)
        r = etrn(d, "remote.test")
        assert r.code == 253 and "1 pending" in r.text, r
        # remote.test's envelope may be in flight again by now; the
        # subdomain's is counted in any case
        r = etrn(d, "@remote.test")
        assert r.code == 253 and re.search(r"[12] pending", r.text), r
        r = etrn(d, "nothing.test")
        assert r.code == 251, r
        # 2 first tries, then at least one retry for each of the two
        # envelopes (one may already be in flight at the second ETRN)
        deadline = time.monotonic() + 15
        while attempts(d) < 4:
            assert time.monotonic() < deadline, "ETRN did not retry"
            time.sleep(0.1)
        assert etrn(d, "#queue").code == 458
        assert etrn(d, "bad..name").code == 501


def test_etrn_untrusted():
    with Daemon(conf=UNTRUSTED_CONF) as d:
        r = etrn(d, "example.test")
        assert r.code == 459 and "4.7.1" in r.text, r


def test_sender_domain_check():
    with Dnsmasq() as dns:
        conf = """\
spool "@TMP@/spool"
socket "@TMP@/smtpd.sock"
smtp workers 1
resolver 127.0.0.1 port %d
listen on 127.0.0.1 port @PORT@ check-sender-domain
action "local" maildir "~/Maildir"
match from any for domain "example.test" action "local"
""" % dns.port
        with Daemon(conf=conf) as d:
            with SMTPConnection(d.port) as c:
                c.command("EHLO sender.test")
                r = c.command("MAIL FROM:<x@no-such-domain.test>")
                assert r.code == 550 and "5.1.8" in r.text, r
                r = c.command("MAIL FROM:<x@mx.test>")
                assert r.code == 250, "domain with MX refused: %s" % r
                c.command("RSET")
                r = c.command("MAIL FROM:<>")
                assert r.code == 250, r
                c.command("QUIT")
