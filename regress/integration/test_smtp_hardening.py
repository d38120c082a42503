"""
test_smtp_hardening.py -- what a hostile SMTP client tried in issue 16:
many recipients (each RCPT must cost O(1)), slowloris trickles (per-record
deadlines) and input that RFC 5322 and RFC 6533 forbid (NUL bytes in the
message, malformed utf-8-addr ORCPTs).

Performance is measured in the issue note, not asserted here; the tests
check behaviour and stay well inside TIMEOUT on the old code's scale.
"""

import os
import re
import socket
import subprocess
import tempfile
import time

import fixture
from fixture import Daemon, SMTPConnection, poll, queue_id, unique_marker

from test_mta_relay import Sink, sink_binary
from test_smtp_common import starttls
from test_smtp_tls import tls_conf

TIMEOUT = 180

MANY_CONF = """\
spool "@TMP@/spool"
socket "@TMP@/smtpd.sock"
smtp workers 1
smtp max-rcpt 20000
queue retry-remote 1s
listen on 127.0.0.1 port @PORT@
action "local" maildir "~/Maildir"
action "sink" relay host "smtp://127.0.0.1:%(port)d"
match from any for domain "example.test" action "local"
match from any for domain "sink.test" action "sink"
"""

WINDOW = 500	# pipelined commands in flight, a bounded window


def pipeline(c, commands):
    """Send commands WINDOW at a time, reading each window's replies."""
    replies = []
    for i in range(0, len(commands), WINDOW):
        chunk = commands[i:i + WINDOW]
        c.send("".join(cmd + "\r\n" for cmd in chunk).encode())
        replies += [c.reply() for _ in chunk]
    return replies


def test_many_recipients_with_duplicates():
    """20 000 pipelined RCPTs, 1 000 of them repeats of earlier ones:
    every one is answered 250, and each distinct recipient is delivered
    exactly once."""
    try:
        sink_binary()
    except fixture.FixtureError as e:
        fixture.skip(str(e))
    distinct = ["r%d@sink.test" % i for i in range(19000)]
    rcpts = list(distinct)
    # repeats spread through the list, each after its original
    for k in range(1000):
        rcpts.insert(1000 + k * 19, distinct[k * 19])
    assert len(rcpts) == 20000
    with Sink() as sink, \
            Daemon(conf=MANY_CONF % {"port": sink.port}) as d:
        with SMTPConnection(d.port, timeout=120) as c:
            assert c.command("EHLO client.test").code == 250
            assert c.command("MAIL FROM:<s@client.test>").code == 250
            replies = pipeline(c, ["RCPT TO:<%s>" % r for r in rcpts])
            bad = [(r, x) for r, x in zip(rcpts, replies) if x.code != 250]
            assert not bad, bad[:5]
            assert c.command("DATA").code == 354
            marker = unique_marker("many")
            r = c.command(("Subject: %s\r\n\r\nbody\r\n.\r\n" % marker)
                          .encode())
            queue_id(r)
            c.command("QUIT")

        sent = re.compile(r"to=<(r\d+@sink\.test)>.*status=sent")

        def delivered():
            hits = [m.group(1) for m in map(sent.search,
                                            d.log().splitlines()) if m]
            return hits if len(hits) >= len(distinct) else None
        hits = poll(delivered, 280, interval=1)
        assert hits, "only %d deliveries logged" % len(
            [1 for ln in d.log().splitlines() if sent.search(ln)])
        assert len(hits) == len(distinct), len(hits)
        assert set(hits) == set(distinct)


def _sanitizer_build():
    """Whether the smtpd under test is an ASan build (several times
    slower: the 19 000 deliveries alone take minutes)."""
    try:
        with open(fixture.binary("smtpd"), "rb") as f:
            return b"__asan_init" in f.read()
    except (OSError, fixture.FixtureError):
        return False


# 10-45 s here on a shared 2-core machine (the quadratic scans took 37-120
# s).  The old code's behaviour was right, only slow, so this test guards
# the behaviour at scale and does not reliably fail on it; performance is
# measured in the issue note, not asserted.
test_many_recipients_with_duplicates.timeout = \
    300 if _sanitizer_build() else 100


# --------------------------------------------------------------------------
# slowloris: deadlines per record

def trickle(c, data, interval, limit):
    """Send data one byte every interval seconds until the server answers
    or limit seconds pass; returns (reply or None, seconds taken)."""
    start = time.monotonic()
    c.sock.settimeout(interval)
    for i in range(len(data)):
        if time.monotonic() - start > limit:
            break
        try:
            c.sock.sendall(data[i:i + 1])
        except OSError:
            break
        try:
            chunk = c.sock.recv(4096)
        except socket.timeout:
            continue
        except OSError:
            break
        if not chunk:
            break
        c.buf += chunk
        c.sock.settimeout(5)
        try:
            return c.reply(), time.monotonic() - start
        except (fixture.SMTPError, OSError):
            return None, time.monotonic() - start
    return None, time.monotonic() - start


def expect_cut(d, reply, taken, what, limit):
    assert reply is not None, "no reply to a trickle within %ds" % limit
    assert reply.code == 421 and reply.text.startswith("4.4.2"), reply
    assert taken < limit, taken
    assert poll(lambda: re.search(
        r"%s deadline exceeded, client unknown \[127\.0\.0\.1\]" % what,
        d.log()), 5), d.log_tail()


def test_trickled_command_line_is_cut():
    """A command line trickled one byte every 0.4 s is cut 3 s after its
    first byte with 421 4.4.2, although the inactivity timer (20 s) is
    reset by every byte; the log names the client."""
    conf = "smtp timeout 20s\nsmtp command-deadline 3s\n"
    with Daemon(conf_extra=conf) as d:
        with SMTPConnection(d.port) as c:
            assert c.command("EHLO client.test").code == 250
            reply, taken = trickle(c, b"NOOP " + b"x" * 200 + b"\r\n",
                                   0.4, 15)
            expect_cut(d, reply, taken, "command line", 10)


def test_trickle_over_tls_is_cut():
    """The same trickle after STARTTLS (the TLS bufferevent's input) is
    cut the same way."""
    conf = tls_conf(extra="smtp timeout 20s\nsmtp command-deadline 3s\n")
    with Daemon(conf=conf) as d:
        with SMTPConnection(d.port) as c:
            assert c.command("EHLO client.test").code == 250
            starttls(c)
            assert c.command("EHLO client.test").code == 250
            reply, taken = trickle(c, b"NOOP " + b"x" * 200 + b"\r\n",
                                   0.4, 15)
            expect_cut(d, reply, taken, "command line", 10)


def test_whole_lines_slowly_are_not_cut():
    """The deadline is per line: whole commands 1.5 s apart for 6 s
    (longer than the 2 s deadline in all) are all answered."""
    conf = "smtp timeout 20s\nsmtp command-deadline 2s\n"
    with Daemon(conf_extra=conf) as d:
        with SMTPConnection(d.port) as c:
            assert c.command("EHLO client.test").code == 250
            for _ in range(4):
                time.sleep(1.5)
                assert c.command("NOOP").code == 250
            # a line in two pieces, well inside the deadline
            c.send(b"NO")
            time.sleep(0.5)
            assert c.command("OP").code == 250
            assert c.command("QUIT").code == 221


def mailbox_with(marker):
    """The message in TEST_USER1's Maildir holding marker, or None (other
    runs may deliver there too: count nothing, look for the marker)."""
    for path in fixture.maildir_files(fixture.TEST_USER1):
        try:
            data = fixture.read_file(path)
        except OSError:
            continue
        if marker.encode() in data:
            return data
    return None


def start_data(c):
    assert c.command("EHLO client.test").code == 250
    assert c.command("MAIL FROM:<s@client.test>").code == 250
    assert c.command("RCPT TO:<%s@example.test>" % fixture.TEST_USER1) \
        .code == 250
    assert c.command("DATA").code == 354


def test_trickled_data_below_min_rate_is_cut():
    """Message data at a few bytes a second, under data-min-rate 1K once
    the 2 s grace has passed, is cut with 421 4.4.2 (data-timeout 20 s
    would never fire); nothing is delivered."""
    conf = ("smtp data-timeout 20s\nsmtp data-min-rate 1K\n"
            "smtp data-rate-grace 2s\n")
    with Daemon(conf_extra=conf) as d:
        with SMTPConnection(d.port) as c:
            start_data(c)
            marker = unique_marker("slow")
            reply, taken = trickle(c, ("Subject: %s\r\n\r\n" % marker)
                                   .encode() + b"x" * 200, 0.3, 15)
            expect_cut(d, reply, taken, "data rate", 10)
        time.sleep(1)
        assert mailbox_with(marker) is None


def test_data_deadline_is_cut():
    """With data-deadline 3s (and no minimum rate), data arriving steadily
    but for longer than 3 s is cut with 421 4.4.2."""
    conf = ("smtp data-timeout 20s\nsmtp data-min-rate 0\n"
            "smtp data-deadline 3s\n")
    with Daemon(conf_extra=conf) as d:
        with SMTPConnection(d.port) as c:
            start_data(c)
            reply, taken = trickle(c, b"Subject: slow\r\n\r\n" +
                                   b"line\r\n" * 100, 0.1, 15)
            expect_cut(d, reply, taken, "data", 10)


def test_fast_data_within_limits_is_accepted():
    """A message sent at once passes the same short limits."""
    conf = ("smtp command-deadline 2s\nsmtp data-min-rate 1K\n"
            "smtp data-rate-grace 1s\nsmtp data-deadline 3s\n")
    with Daemon(conf_extra=conf) as d:
        with SMTPConnection(d.port) as c:
            start_data(c)
            queue_id(c.command(b"Subject: fast\r\n\r\n" +
                               b"line\r\n" * 2000 + b".\r\n"))
            assert c.command("QUIT").code == 221


# --------------------------------------------------------------------------
# input RFC 5322 and RFC 6533 forbid

def test_nul_in_data_is_refused():
    """A NUL inside DATA gets 554 5.6.0 at the end of the data, nothing
    is delivered, and the session goes on: the next message (without the
    NUL) is queued and delivered."""
    with Daemon() as d:
        bad, good = unique_marker("nul"), unique_marker("after")
        with SMTPConnection(d.port) as c:
            start_data(c)
            r = c.command(("Subject: %s\r\n\r\nbefore\x00after\r\nend\r\n"
                           ".\r\n" % bad).encode())
            assert r.code == 554 and r.text.startswith("5.6.0"), r
            assert c.command("NOOP").code == 250
            start_data(c)
            queue_id(c.command(("Subject: %s\r\n\r\nclean\r\n.\r\n" % good)
                               .encode()))
            assert c.command("QUIT").code == 221
        data = poll(lambda: mailbox_with(good), 10)
        assert data and b"\x00" not in data, data
        assert mailbox_with(bad) is None
        assert not fixture.spool_files_containing(d.spool, bad.encode())


def test_nul_in_bdat_is_refused():
    """The same for a NUL in a BDAT chunk: 554 5.6.0, and the session
    goes on."""
    with Daemon() as d:
        bad = unique_marker("bnul")
        body = ("Subject: %s\r\n\r\nx\x00y\r\n" % bad).encode()
        with SMTPConnection(d.port) as c:
            assert c.command("EHLO client.test").code == 250
            assert c.command("MAIL FROM:<s@client.test>").code == 250
            assert c.command("RCPT TO:<%s@example.test>"
                             % fixture.TEST_USER1).code == 250
            r = c.command(b"BDAT %d LAST\r\n" % len(body) + body)
            assert r.code == 554 and r.text.startswith("5.6.0"), r
            assert c.command("NOOP").code == 250
            assert c.command("QUIT").code == 221
        time.sleep(0.5)
        assert mailbox_with(bad) is None
        assert not fixture.spool_files_containing(d.spool, bad.encode())


def test_orcpt_utf8_validated():
    """ORCPT=utf-8;... follows RFC 6533: an empty or surrogate \\x{},
    leading zeros, a value past U+10FFFF and a "+" get 501 5.5.4; the
    well-formed forms are accepted."""
    rcpt = "RCPT TO:<%s@example.test> ORCPT=" % fixture.TEST_USER1
    bad = ["utf-8;\\x{}", "utf-8;\\x{D800}@b.example",
           "utf-8;\\x{0041}@b", "utf-8;\\x{110000}@b", "utf-8;a+40b",
           "utf-8;\\x{E9", "utf-8;a\\b"]
    good = ["utf-8;a@b.example", "utf-8;\\x{E9}l\\x{E8}ve@b.example",
            "utf-8;\\x{1F600}@b.example", "rfc822;a+40b.example"]
    with Daemon() as d:
        with SMTPConnection(d.port) as c:
            assert c.command("EHLO client.test").code == 250
            for value in bad + good:
                assert c.command("MAIL FROM:<s@client.test>").code == 250
                r = c.command(rcpt + value)
                if value in bad:
                    assert r.code == 501 and r.text.startswith("5.5.4"), \
                        (value, r)
                else:
                    assert r.code == 250, (value, r)
                assert c.command("RSET").code == 250
            assert c.command("QUIT").code == 221


def test_sendmail_t_merges_duplicates():
    """sendmail -t keeps one of each recipient, compared without regard
    to ASCII case, across To, Cc and Bcc, also among 20 000 (the daemon
    is down: the offline file lists what would be sent)."""
    tmp = tempfile.mkdtemp(prefix="hardening-t.", dir=fixture.TEST_ROOT)
    os.chmod(tmp, 0o755)
    offline = os.path.join(tmp, "spool", "offline")
    os.makedirs(offline)
    os.chmod(offline, 0o1777)
    try:
        conf = os.path.join(tmp, "smtpd.conf")
        with open(conf, "w") as f:
            f.write('spool "%s/spool"\nsocket "%s/none.sock"\n' % (tmp, tmp))
        many = ["m%d@x.test" % i for i in range(20000)]
        to = "".join("To: %s\n" % ", ".join(many[i:i + 50])
                     for i in range(0, len(many), 50))
        msg = ("To: a@x.test, A@X.TEST, b@x.test\nCc: a@x.test, M7@X.test\n"
               "Bcc: B@x.test\n%sSubject: t\n\nbody\n" % to).encode()
        r = subprocess.run([fixture.binary("sendmail"), "-C", conf, "-t",
                            "-f", "s@x.test"], input=msg,
                           stdout=subprocess.PIPE, stderr=subprocess.STDOUT,
                           timeout=60)
        assert r.returncode == 0, r.stdout
        files = os.listdir(offline)
        assert len(files) == 1, files
        text = fixture.read_file(os.path.join(offline, files[0]))
        rcpts = [ln[5:].decode() for ln in text.split(b"\n\n", 1)[0]
                 .split(b"\n") if ln.startswith(b"rcpt ")]
        assert len(rcpts) == 20002, len(rcpts)
        assert rcpts[:2] == ["a@x.test", "b@x.test"], rcpts[:3]
        assert set(r.lower() for r in rcpts) == \
            set(["a@x.test", "b@x.test"] + many)
    finally:
        fixture.shutil.rmtree(tmp, ignore_errors=True)
