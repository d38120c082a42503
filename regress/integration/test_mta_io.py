"""
test_mta_io.py -- the mta's own socket I/O (mta/mta_io.c): replies that
arrive a few bytes at a time, a server too slow to take a large message
at once, a server that hangs up, implicit TLS, and the hand-over to TLS
after STARTTLS (what may and may not be read in the clear).

The peer is test_mta_relay.FakeSMTP.
"""

import re

from fixture import Daemon, unique_marker
from test_mta_relay import (FakeSMTP, send_mail, message, wait_log,
                            relay_conf)
from test_mta_tls import make_cert, conf as tls_conf

TIMEOUT = 90


def test_replies_in_pieces():
    """A multi-line greeting and every reply arrive three bytes per TCP
    segment: lines are put together across reads, and the transaction is
    the same as with whole replies (pipelined, two recipients)."""
    with FakeSMTP(dribble=3,
                  greeting="220-fake.test ESMTP\r\n220 slowly") as srv, \
            Daemon(conf=relay_conf(srv.port)) as d:
        marker = unique_marker("pieces")
        send_mail(d.port, ["a@remote.test", "b@remote.test"],
                  message(marker))
        wait_log(d, r"status=sent", count=2, timeout=30)
        txns = srv.transactions()
        assert len(txns) == 1 and len(txns[0]["rcpts"]) == 2, txns
        assert marker.encode() in txns[0]["data"]
        assert b"\r\n..leading dot\r\n" in txns[0]["data"], txns[0]["data"]


def test_slow_reader_large_body():
    """A 3 MB message to a server with a 4 KB receive buffer that pauses
    after every 64 KB: the mta waits for the socket to take more and
    refills its output as it drains; the peer gets every byte."""
    line = b"x" * 70 + b"\r\n"
    body = [b"Subject: slow\r\n\r\n"]
    for i in range(3 * 1024 * 1024 // len(line)):
        body.append(b"." + line if i % 100 == 0 else line)
    stuffed = b"".join(b"." + l if l.startswith(b".") else l for l in body)
    with FakeSMTP(rcvbuf=4096, data_delay=0.02) as srv, \
            Daemon(conf=relay_conf(srv.port)) as d:
        send_mail(d.port, ["big@remote.test"], stuffed + b".\r\n")
        wait_log(d, r"to=<big@remote.test>.*status=sent", timeout=60)
        t = srv.transactions()[0]
        assert t["data"].endswith(stuffed), "body changed on the way"
        size = int(re.search(r"SIZE=(\d+)", t["mail"]).group(1))
        assert size == len(t["data"]), (size, len(t["data"]))


def test_server_hangs_up_after_each_message():
    """The server closes the connection after each message without a
    word: the cached session is found closed (while idle, or when the next
    transaction starts) and the next message goes over a new connection,
    without being deferred."""
    with FakeSMTP(hangup_after=("DATA",)) as srv, \
            Daemon(conf=relay_conf(srv.port)) as d:
        for i in range(3):
            send_mail(d.port, ["h%d@remote.test" % i],
                      message(unique_marker("hangup%d" % i)))
            wait_log(d, r"to=<h%d@remote.test>.*status=sent" % i)
        assert len(srv.transactions()) == 3
        assert len(srv.sessions) == 3, len(srv.sessions)
        assert "status=deferred" not in d.log(), d.log()


def test_smtps_implicit_tls():
    """smtps://: TLS from the first byte, the greeting read over it."""
    with FakeSMTP(cert=make_cert(), implicit_tls=True) as srv, \
            Daemon(conf=tls_conf(srv.port, scheme="smtps")) as d:
        send_mail(d.port, ["s@remote.test"], message(unique_marker("smtps")))
        wait_log(d, r"to=<s@remote.test>.*status=sent")
        assert srv.sessions[0]["tls"]
        assert srv.sessions[0]["commands"][0].startswith("EHLO "), \
            srv.sessions[0]["commands"]


def test_starttls_handshake_failure_falls_back():
    """The server says 220 to STARTTLS and hangs up: opportunistic TLS
    tries that host again without TLS, and the mail goes."""
    with FakeSMTP(cert=make_cert(),
                  raw_replies={"STARTTLS": b"220 2.0.0 go ahead\r\n"},
                  hangup_after=("STARTTLS",)) as srv, \
            Daemon(conf=tls_conf(srv.port)) as d:
        send_mail(d.port, ["f@remote.test"], message(unique_marker("fb")))
        wait_log(d, r"TLS handshake failed .*retrying without TLS")
        wait_log(d, r"to=<f@remote.test>.*status=sent")
        assert len(srv.sessions) == 2, len(srv.sessions)
        assert "STARTTLS" not in srv.sessions[1]["commands"]
        assert not srv.sessions[1]["tls"]


def test_data_after_starttls_reply_refused():
    """A line sent in the clear right behind the 220 to STARTTLS would be
    read as if it came over TLS (CVE-2011-0411): the session is given up,
    nothing is sent."""
    with FakeSMTP(cert=make_cert(),
                  raw_replies={"STARTTLS": b"220 2.0.0 go ahead\r\n"
                               b"250 injected\r\n"}) as srv, \
            Daemon(conf=tls_conf(srv.port)) as d:
        send_mail(d.port, ["i@remote.test"], message(unique_marker("inj")))
        wait_log(d, r"data after the STARTTLS reply")
        wait_log(d, r"to=<i@remote.test>.*status=deferred")
        assert srv.transactions() == []
