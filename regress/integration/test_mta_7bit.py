"""
test_mta_7bit.py -- 8-bit mail to a peer without 8BITMIME (issue 15,
item 5): converted to 7-bit MIME (RFC 6152 section 3) instead of bounced,
and bounced with 5.6.3 only when it cannot be converted.

The peer is Postfix's smtp-sink with -8 (no 8BITMIME in its EHLO
answer); what it received is parsed with Python's email package, which
must find a 7-bit message whose parts decode back to what was sent.
"""

import email
import email.policy
import os

import fixture
from fixture import Daemon, poll, unique_marker
from test_mta_relay import FakeSMTP, Sink, relay_conf, send_mail, wait_log

TEXT = "Gr\u00fc\u00dfe aus K\u00f6ln = 100 %  \nzweite Zeile\n" + \
    "x" * 90 + "\u00e9" * 40 + "\n.dot line\n"
BINARY = bytes(range(1, 256)) * 4


def multipart(marker):
    """A multipart/mixed message with an 8-bit text part, an 8-bit
    application part, a 7-bit part and an encapsulated 8-bit message;
    CRLF line ends, as on the wire."""
    text = TEXT.replace("\n", "\r\n").encode("utf-8")
    # an 8bit part is made of lines: CR and LF only as CRLF
    binary = BINARY.replace(b"\r", b"").replace(b"\n", b"\r\n")
    return (b"From: sender@client.test\r\n"
            b"Subject: " + marker.encode() + b"\r\n"
            b"MIME-Version: 1.0\r\n"
            b"Content-Type: multipart/mixed; boundary=\"=_outer\"\r\n"
            b"Content-Transfer-Encoding: 8bit\r\n"
            b"\r\n"
            b"preamble\r\n"
            b"--=_outer\r\n"
            b"Content-Type: text/plain; charset=utf-8\r\n"
            b"Content-Transfer-Encoding: 8bit\r\n"
            b"\r\n" + text.replace(b"\r\n.", b"\r\n..") +
            b"--=_outer\r\n"
            b"Content-Type: application/octet-stream\r\n"
            b"Content-Transfer-Encoding: 8bit\r\n"
            b"\r\n" + binary + b"\r\n"
            b"--=_outer\r\n"
            b"Content-Type: text/plain; charset=us-ascii\r\n"
            b"\r\n"
            b"seven bit only\r\n"
            b"--=_outer\r\n"
            b"Content-Type: message/rfc822\r\n"
            b"\r\n"
            b"Subject: inner\r\n"
            b"Content-Type: text/plain; charset=iso-8859-1\r\n"
            b"\r\n"
            b"caf\xe9\r\n"
            b"--=_outer--\r\n"
            b"epilogue\r\n"
            b".\r\n"), text, binary


def received(sink):
    files = poll(sink.messages, 15)
    assert files and len(files) == 1, files
    data = fixture.read_file(files[0])
    # smtp-sink puts its own X- lines before the message
    return data


def test_8bit_converted_for_peer_without_8bitmime():
    """BODY=8BITMIME mail to smtp-sink -8 (no 8BITMIME) is sent, 7-bit:
    the text part quoted-printable, the binary part base64, the 7-bit
    part and the boundaries untouched, the encapsulated message's part
    converted; each decodes back to the bytes sent."""
    marker = unique_marker("mime7")
    body, text, binary = multipart(marker)
    with Sink(extra=["-8"]) as sink, \
            Daemon(conf=relay_conf(sink.port)) as d:
        send_mail(d.port, ["someone@remote.test"], body,
                  mail_params=" BODY=8BITMIME")
        wait_log(d, r"to=<someone@remote.test>.*status=sent", timeout=30)
        assert "converting 3 MIME parts to 7-bit" in d.log(), d.log()
        data = received(sink)
    assert all(b < 0x80 for b in data), \
        [data[i - 20:i + 20] for i, b in enumerate(data) if b >= 0x80][:3]
    assert marker.encode() in data
    lines = data.split(b"\n")	# smtp-sink writes LF line ends
    msg = email.message_from_bytes(data, policy=email.policy.compat32)
    assert msg.get_content_type() == "multipart/mixed"
    assert msg["Content-Transfer-Encoding"] == "7bit"
    parts = msg.get_payload()
    assert len(parts) == 4, parts
    p0, p1, p2, p3 = parts
    assert p0["Content-Transfer-Encoding"] == "quoted-printable"
    # the last line end belongs to the delimiter (RFC 2046 5.1.1)
    assert p0.get_payload(decode=True).replace(b"\r\n", b"\n") == \
        TEXT.encode("utf-8").rstrip(b"\n")
    assert p1["Content-Transfer-Encoding"] == "base64"
    assert p1.get_payload(decode=True) == binary
    assert p2["Content-Transfer-Encoding"] is None
    assert p2.get_payload() == "seven bit only"
    inner = p3.get_payload()[0]
    assert inner["Content-Transfer-Encoding"] == "quoted-printable"
    assert inner.get_payload(decode=True) == b"caf\xe9"
    # quoted-printable and base64 lines stay within 76 characters
    body_lines = lines[lines.index(b"preamble"):]
    assert max(len(ln) for ln in body_lines) <= 76, max(body_lines, key=len)
    assert b"\npreamble\n--=_outer\n" in data
    assert b"\n--=_outer--\nepilogue\n" in data


def test_8bit_plain_message_gets_mime():
    """An 8-bit message without MIME headers gets MIME-Version,
    Content-Type text/plain; charset=unknown-8bit and quoted-printable
    (RFC 1428 section 3) and still reads the same."""
    marker = unique_marker("plain8")
    body = (b"Subject: " + marker.encode() + b"\r\n\r\n"
            b"r\xc3\xa9sum\xc3\xa9 \r\n..leading dot\r\n.\r\n")
    with Sink(extra=["-8"]) as sink, \
            Daemon(conf=relay_conf(sink.port)) as d:
        send_mail(d.port, ["p@remote.test"], body,
                  mail_params=" BODY=8BITMIME")
        wait_log(d, r"to=<p@remote.test>.*status=sent", timeout=30)
        data = received(sink)
    assert all(b < 0x80 for b in data)
    msg = email.message_from_bytes(data, policy=email.policy.compat32)
    assert msg["MIME-Version"] == "1.0"
    assert msg["Content-Type"] == "text/plain; charset=unknown-8bit"
    assert msg["Content-Transfer-Encoding"] == "quoted-printable"
    # smtp-sink ends its dump with an empty line of its own
    assert msg.get_payload(decode=True).rstrip(b"\n") == \
        b"r\xc3\xa9sum\xc3\xa9 \n.leading dot", msg.get_payload()


def test_8bit_header_bounces_563():
    """8-bit bytes in a header cannot be made 7-bit: 5.6.3 with the
    reason, and nothing of the message reaches the peer but the bounce
    to the sender."""
    body = (b"Subject: caf\xc3\xa9\r\nMIME-Version: 1.0\r\n"
            b"Content-Type: text/plain; charset=utf-8\r\n\r\n"
            b"caf\xc3\xa9\r\n.\r\n")
    with FakeSMTP(ehlo=("PIPELINING", "SIZE 10240000")) as srv, \
            Daemon(conf=relay_conf(srv.port)) as d:
        send_mail(d.port, ["h@remote.test"], body,
                  mail_params=" BODY=8BITMIME")
        hits = wait_log(d, r"to=<h@remote.test>.*dsn=5\.6\.3, "
                        r"status=bounced", timeout=30)
        assert "cannot be converted" in hits[0], hits
        assert not any("h@remote.test" in " ".join(t["rcpts"])
                       for t in srv.transactions()), srv.transactions()


def test_8bitmime_peer_gets_8bit_unchanged():
    """A peer that offers 8BITMIME gets BODY=8BITMIME and the bytes as
    they were: no conversion."""
    marker = unique_marker("as8")
    body, _, _ = multipart(marker)
    with FakeSMTP() as srv, Daemon(conf=relay_conf(srv.port)) as d:
        send_mail(d.port, ["u@remote.test"], body,
                  mail_params=" BODY=8BITMIME")
        wait_log(d, r"to=<u@remote.test>.*status=sent", timeout=30)
        t = srv.transactions()[0]
        assert "BODY=8BITMIME" in t["mail"]
        assert body[:-3] in t["data"]
        assert "to 7-bit" not in d.log()


def mta_pid(d):
    for pid in d.children():
        if fixture.proc_title(pid) == "smtpd: mta":
            return pid
    raise AssertionError("no mta process among %r" % d.children())


def sanitized():
    with open(fixture.binary("smtpd"), "rb") as f:
        return b"__asan_init" in f.read()


def test_large_message_streams():
    """A 24 MB message (12 MB of 8-bit text, 12 MB of 8-bit binary) is
    converted on the way out without the mta holding it: its peak
    resident memory grows by far less than the message, and both parts
    decode back to what was sent."""
    import hashlib
    marker = unique_marker("big7")
    line = ("caf\u00e9 \u00fcber na\u00efve " * 3 + "x" * 20).encode()
    text = b"\r\n".join([line] * (12 * 1024 * 1024 // (len(line) + 2)))
    binline = bytes(range(0x80, 0x100)) + bytes(range(1, 10))
    binary = b"\r\n".join([binline] * (12 * 1024 * 1024 //
                                       (len(binline) + 2)))
    body = (b"Subject: " + marker.encode() + b"\r\n"
            b"MIME-Version: 1.0\r\n"
            b"Content-Type: multipart/mixed; boundary=BIG\r\n\r\n"
            b"--BIG\r\nContent-Type: text/plain; charset=utf-8\r\n"
            b"Content-Transfer-Encoding: 8bit\r\n\r\n" + text +
            b"\r\n--BIG\r\nContent-Type: application/octet-stream\r\n"
            b"Content-Transfer-Encoding: 8bit\r\n\r\n" + binary +
            b"\r\n--BIG--\r\n.\r\n")
    with Sink(extra=["-8"]) as sink, \
            Daemon(conf=relay_conf(sink.port)) as d:
        pid = mta_pid(d)
        before = int(fixture.proc_status(pid)["VmHWM"].split()[0])
        send_mail(d.port, ["big@remote.test"], body,
                  mail_params=" BODY=8BITMIME")
        wait_log(d, r"to=<big@remote.test>.*status=sent", timeout=45)
        grown = int(fixture.proc_status(pid)["VmHWM"].split()[0]) - before
        data = received(sink)
    assert max(data) < 0x80
    msg = email.message_from_bytes(data, policy=email.policy.compat32)
    p0, p1 = msg.get_payload()
    assert p0["Content-Transfer-Encoding"] == "quoted-printable"
    assert p1["Content-Transfer-Encoding"] == "base64"
    got = p0.get_payload(decode=True).replace(b"\r\n", b"\n")
    assert hashlib.sha256(got).hexdigest() == \
        hashlib.sha256(text.replace(b"\r\n", b"\n")).hexdigest()
    assert p1.get_payload(decode=True) == binary
    # ASan keeps freed memory in quarantine: no bound to check there
    if not sanitized():
        assert grown < 8 * 1024, "mta peak RSS grew by %d KB" % grown
