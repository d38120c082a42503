"""
test_delivery_exact.py -- every reader of a queued message stops exactly
at the message's end.

The spool file of a message is the Received: header the smtp process
wrote, then the message as the client sent it (CRLF made LF, dots
unstuffed).  Each way it is read back out is checked byte for byte
against what that path adds, the spooled message, and nothing after it:

    Maildir, program    Return-Path, Delivered-To, the spooled message
    mbox, alias file    From_ line, Return-Path, Delivered-To, the spooled
                        message (mboxrd), one empty line; then the end of
                        the file or the next From_ line
    relay, LMTP         the spooled message on the wire (CRLF, leading
                        dots doubled) up to the final "."; the relay's
                        SIZE= is exactly that length
    LMTP to Dovecot     Dovecot's own Return-Path, Delivered-To and
                        Received:, then the spooled message
    bounce, RET=FULL    a message/rfc822 part that is the spooled message,
                        then at once "\\n--BOUNDARY--\\n" and the end
    bounce, RET=HDRS    a text/rfc822-headers part that is the spooled
                        message up to its empty line (all of it when it has
                        no body), then the same closing boundary
    smtpctl show message   the spooled message, nothing else

Each path gets an ordinary message ending in a known last line, one of
header lines only (no empty line, no body), and one that fills the spool
file to exactly 3 MiB -- 48 reads of 64 KiB, so that the message ends on
a read boundary of every reader -- and Maildir and relay also an empty
one.  Should the queue keep anything after the message in the same file
(an envelope, a footer), a reader that does not stop at the message's end
fails here.
"""

import os
import re
import shutil
import subprocess
import tempfile

import fixture
from fixture import (RECEIVED_RE, TEST_ROOT, Daemon, SMTPConnection,
                     binary, check_owner_mode, dot_stuff, ensure_test_user,
                     free_port, maildir_files, mbox_path, poll, queue_id,
                     read_file, reset_maildir, reset_mbox, split_delivery,
                     unique_marker)
from test_delivery_lmtp import Dovecot
from test_mta_relay import FakeSMTP, wait_log

TIMEOUT = 60

# a user of its own: other test runs reset phtest1's Maildir and mbox
USER = "phexact"
HELO = "exact.client.test"
SENDER = "exact-sender@client.test"
SPOOL_3MB = 3 * 1024 * 1024	# 48 * 64 KiB; 96 * 32 KiB; 192 * 16 KiB

CONF = """\
spool "@TMP@/spool"
socket "@TMP@/smtpd.sock"
smtp workers 1
smtp max-message-size 10M
queue retry-remote 1s
listen on 127.0.0.1 port @PORT@
table aliases file:%(dir)s/aliases
action "local" maildir "~/Maildir" alias <aliases>
action "spool" mbox
action "lmtp" lmtp "127.0.0.1:%(lmtp)d"
action "fail" mda "exit 67"
action "relay" relay host "smtp://127.0.0.1:%(relay)d"
match from any for domain "example.test" action "local"
match from any for domain "mbox.test" action "spool"
match from any for domain "lmtp.test" action "lmtp"
match from any for domain "fail.test" action "fail"
match from local for any action "relay"
"""

MAILDIR_RCPT = "%s@example.test" % USER
MBOX_RCPT = "%s@mbox.test" % USER
LMTP_RCPT = "%s@lmtp.test" % USER
FAIL_RCPT = "%s@fail.test" % USER	# its DSN goes to MAILDIR_RCPT
FILE_RCPT = "exactfile@example.test"
PROG_RCPT = "exactprog@example.test"
REMOTE_RCPT = "someone@remote.test"


# --------------------------------------------------------------------------
# the messages (CRLF, not yet dot-stuffed)

def normal_message(marker):
    """Header, empty line, body lines, a line with a leading dot, an
    empty line, and a last line naming the marker.  No line starts with
    "From ", so mboxrd quoting leaves it as it is."""
    lines = ["From: Exact Sender <%s>" % SENDER,
             "To: <exact@example.test>",
             "Subject: %s" % marker,
             "Message-ID: <%s@client.test>" % marker,
             ""]
    lines += ["exact-body-line-%d" % i for i in range(1, 21)]
    lines += [".exact-dot-line", "", "exact-last-line %s" % marker]
    return ("\r\n".join(lines) + "\r\n").encode()


def headers_only_message(marker):
    """Header lines and nothing else: no empty line, no body."""
    lines = ["From: Exact Sender <%s>" % SENDER,
             "Subject: %s" % marker,
             "Message-ID: <%s@client.test>" % marker,
             "X-Exact-Last: exact-last-line %s" % marker]
    return ("\r\n".join(lines) + "\r\n").encode()


def sized_message(marker, received_len, spool_size=SPOOL_3MB):
    """A message that, after a Received: header of received_len bytes,
    fills the spool file to exactly spool_size bytes: many read blocks,
    lines of every length up to 930 bytes (line ends fall everywhere in a
    block, and there are few lines: FakeSMTP collects DATA line by line,
    in quadratic time), a line with a leading dot now and then, and the
    last line ending on a block boundary."""
    head = ("Subject: %s\r\nMessage-ID: <%s@client.test>\r\n\r\n"
            % (marker, marker)).encode()
    last = ("exact-last-line %s " % marker).encode()
    left = spool_size - received_len - len(lf(head))
    out = [head]
    i = 0
    while left > 1200:
        i += 1
        if i % 100 == 0:
            line = b".exact-dot-line-%07d" % i
        else:
            line = b"exact-body-line-%07d %s" % (i, b"y" * (i * 37 % 900))
        out.append(line + b"\r\n")
        left -= len(line) + 1
    if left > 600:
        line = b"exact-body-line-pad " + b"z" * (left - 320)
        out.append(line + b"\r\n")
        left -= len(line) + 1
    out.append(last + b"x" * (left - len(last) - 1) + b"\r\n")
    msg = b"".join(out)
    assert received_len + len(lf(msg)) == spool_size
    return msg


def lf(data):
    return data.replace(b"\r\n", b"\n")


def crlf(data):
    return data.replace(b"\n", b"\r\n")


def last_line(msg):
    """The message's last line with its LF."""
    text = lf(msg)
    return text[text.rfind(b"\n", 0, len(text) - 1) + 1:]


# --------------------------------------------------------------------------
# helpers

class Setup:
    """The test user, with an empty Maildir; a world-readable directory
    owned by that user for the aliases table and the file and program
    destinations (the table's owner runs those); the configuration.  The
    user's mail is removed again after a test that passed."""

    def __init__(self):
        fixture.setup_system()
        self.pw = ensure_test_user(USER)
        reset_maildir(USER)
        self.dir = tempfile.mkdtemp(prefix="exact.", dir=TEST_ROOT)
        os.chmod(self.dir, 0o755)
        os.chown(self.dir, self.pw.pw_uid, self.pw.pw_gid)
        self.file_dest = os.path.join(self.dir, "exact.mbox")
        self.prog_dest = os.path.join(self.dir, "prog.out")
        aliases = os.path.join(self.dir, "aliases")
        with open(aliases, "w") as f:
            f.write("exactfile: %s\n" % self.file_dest)
            f.write("exactprog: |cat > %s\n" % self.prog_dest)
        os.chmod(aliases, 0o644)
        os.chown(aliases, self.pw.pw_uid, self.pw.pw_gid)

    def conf(self, relay=None, lmtp=None):
        return CONF % {"dir": self.dir, "relay": relay or free_port(),
                       "lmtp": lmtp or free_port()}

    def __enter__(self):
        return self

    def __exit__(self, exc_type, exc, tb):
        shutil.rmtree(self.dir, ignore_errors=True)
        if exc_type is None:
            # megabytes of test mail; kept when a test failed
            reset_maildir(USER)
            reset_mbox(USER, create=False)
        return False


def send(port, rcpt, msg, sender=SENDER, params=""):
    """One transaction with msg as its DATA; returns the queue id."""
    with SMTPConnection(port) as c:
        assert c.greeting.code == 220, c.greeting
        for cmd, want in (("EHLO %s" % HELO, 250),
                          ("MAIL FROM:<%s>%s" % (sender, params), 250),
                          ("RCPT TO:<%s>" % rcpt, 250),
                          ("DATA", 354)):
            r = c.command(cmd)
            assert r.code == want, "%s: %s, expected %d" % (cmd, r, want)
        msgid = queue_id(c.command(dot_stuff(msg) + b".\r\n"))
        c.command("QUIT")
    return msgid


def id_key(msgid, eol=b"\n"):
    """What finds a message wherever it went: our Received: names its
    queue id (an empty message has no marker of its own)."""
    return b" with ESMTP id " + msgid.encode() + eol


def split_received(data, rcpt, msgid):
    """data starts with our Received: header for this message (LF line
    ends); returns (that header, the rest)."""
    text = data.decode("utf-8", "surrogateescape")
    m = RECEIVED_RE.match(text)
    assert m, "no Received: header of ours at the start: %r" % text[:300]
    assert m.group("helo") == HELO, m.group(0)
    assert m.group("id") == msgid, "Received: id %s, expected %s" % (
        m.group("id"), msgid)
    assert m.group("rcpt") == rcpt, m.group(0)
    head = m.group(0).encode("utf-8", "surrogateescape")
    return head, data[len(head):]


def assert_same(got, expected, what):
    """Byte for byte; on a mismatch, where, and both sides there."""
    if got == expected:
        return
    i, n = 0, min(len(got), len(expected))
    while i < n and got[i] == expected[i]:
        i += 1
    raise AssertionError(
        "%s: %d bytes, expected %d; they differ from offset %d:\n"
        "  got      %r\n  expected %r"
        % (what, len(got), len(expected), i, got[max(0, i - 40):i + 80],
           expected[max(0, i - 40):i + 80]))


def maildir_with(key):
    """The files in the user's Maildir/new holding key."""
    out = []
    for path in maildir_files(USER):
        try:
            if key in read_file(path):
                out.append(path)
        except FileNotFoundError:
            pass
    return out


def wait_maildir_key(key, timeout=20):
    """The one file in the user's Maildir/new holding key, once there."""
    files = poll(lambda: maildir_with(key), timeout)
    assert files, "nothing with %r in %s's Maildir within %ds" % (
        key, USER, timeout)
    assert len(files) == 1, "%r in %d files" % (key, len(files))
    return read_file(files[0])


def wait_done(d, msgid, rcpt, status="sent"):
    """Wait for the queue to log the envelope's outcome."""
    wait_log(d, r"%s: to=<%s>.*status=%s" % (msgid, rcpt, status),
             timeout=30)


def received_length(d, rcpt):
    """The length our Received: header has for a message to rcpt in this
    daemon: the same for every message (the date and the queue id have a
    fixed width), so a probe to the Maildir tells it.  Only the header is
    read from the probe; the test checks its own path, not this one."""
    msgid = send(d.port, MAILDIR_RCPT, normal_message(unique_marker("probe")))
    data = wait_maildir_key(id_key(msgid))
    rest = data.split(b"\n", 2)[2]	# after Return-Path and Delivered-To
    received, _ = split_received(rest, MAILDIR_RCPT, msgid)
    return len(received) - len(MAILDIR_RCPT) + len(rcpt)


def messages(d, rcpt, tag, empty=False):
    """(label, message) for each shape a path is tried with."""
    out = []
    for make in (normal_message, headers_only_message):
        marker = unique_marker(tag)
        out.append((marker, make(marker)))
    marker = unique_marker(tag + "-3m")
    out.append((marker, sized_message(marker, received_length(d, rcpt))))
    if empty:
        out.append(("empty message", b""))
    return out


def check_local(data, rcpt, msgid, msg, what):
    """Return-Path, Delivered-To, our Received:, the message, no more."""
    rest = split_delivery(data, SENDER, rcpt, HELO, msgid)
    assert_same(rest, lf(msg), what)
    assert not msg or data.endswith(last_line(msg)), what


def check_wire(txn, rcpt, msgid, msg, what, size=True):
    """The DATA a server received (up to, not including, the final
    "."): our Received: and the message, CRLF and dot-stuffed, exactly;
    with size, the SIZE parameter of MAIL is that length (the LMTP client
    sends none)."""
    data = txn["data"]
    received, _ = split_received(lf(data[:4096]), rcpt, msgid)
    expected = dot_stuff(crlf(received + lf(msg)))
    assert_same(data, expected, what)
    if not size:
        return
    m = re.search(r" SIZE=(\d+)", txn["mail"])
    assert m, "%s: no SIZE parameter in %r" % (what, txn["mail"])
    assert int(m.group(1)) == len(data), \
        "%s: SIZE=%s, but %d bytes sent" % (what, m.group(1), len(data))


def server_txn(srv, msgid):
    """The one transaction a FakeSMTP received for this queue id."""
    txns = [t for t in srv.transactions()
            if id_key(msgid, b"\r\n") in t["data"]]
    assert len(txns) == 1, "%d transactions for %s" % (len(txns), msgid)
    return txns[0]


MBOX_FROM_RE = (rb"From %s (Mon|Tue|Wed|Thu|Fri|Sat|Sun) "
                rb"(Jan|Feb|Mar|Apr|May|Jun|Jul|Aug|Sep|Oct|Nov|Dec) "
                rb"[ 0-9][0-9] [0-9]{2}:[0-9]{2}:[0-9]{2} [0-9]{4}\n"
                % re.escape(SENDER.encode()))


# --------------------------------------------------------------------------
# the paths

def test_maildir_exact():
    """Maildir: each file is Return-Path, Delivered-To, our Received:
    and the message, ending with the message's last line -- an ordinary
    message, one of header lines only, one of 3 MiB, an empty one."""
    with Setup() as s, Daemon(conf=s.conf()) as d:
        for label, msg in messages(d, MAILDIR_RCPT, "maildir", empty=True):
            msgid = send(d.port, MAILDIR_RCPT, msg)
            data = wait_maildir_key(id_key(msgid))
            check_local(data, MAILDIR_RCPT, msgid, msg,
                        "Maildir file of %s" % label)


def test_mbox_exact():
    """/var/mail/USER: each entry is a From_ line, Return-Path,
    Delivered-To, our Received:, the message and one empty line, then the
    end of the file or the next From_ line -- an ordinary message, one of
    header lines only, one of 3 MiB."""
    with Setup() as s:
        reset_mbox(USER, create=True)
        with Daemon(conf=s.conf()) as d:
            for label, msg in messages(d, MBOX_RCPT, "mbox"):
                msgid = send(d.port, MBOX_RCPT, msg)
                wait_done(d, msgid, MBOX_RCPT)
                data = read_file(mbox_path(USER))
                m = re.search(rb"(?m)^" + MBOX_FROM_RE +
                              rb"Return-Path: [^\n]*\nDelivered-To: "
                              rb"[^\n]*\nReceived: [^\n]*\n\tby [^\n]*" +
                              id_key(msgid), data)
                assert m, "no mbox entry for %s" % msgid
                start = data.index(b"\nReturn-Path: ", m.start()) + 1
                rest = split_delivery(data[start:], SENDER, MBOX_RCPT, HELO,
                                      msgid)
                entry = lf(msg) + b"\n"
                assert_same(rest[:len(entry)], entry,
                            "mbox entry of %s" % label)
                after = rest[len(entry):]
                assert after == b"" or after.startswith(b"From "), \
                    "after the mbox entry of %s: %r" % (label, after[:200])
        check_owner_mode(mbox_path(USER), USER)


def test_alias_file_exact():
    """An alias "/path/to/file" appends in mbox format: after each
    message the file is exactly the entries so far, each a From_ line,
    Return-Path, Delivered-To, our Received:, the message and one empty
    line -- an ordinary message, one of header lines only, one of 3
    MiB."""
    with Setup() as s, Daemon(conf=s.conf()) as d:
        expected = b""
        for label, msg in messages(d, FILE_RCPT, "file"):
            msgid = send(d.port, FILE_RCPT, msg)
            wait_done(d, msgid, FILE_RCPT)
            data = read_file(s.file_dest)
            m = re.compile(MBOX_FROM_RE).match(data, len(expected))
            assert m, "no From_ line at offset %d of %s: %r" % (
                len(expected), s.file_dest, data[len(expected):][:200])
            head = m.group(0) + b"Return-Path: <%s>\nDelivered-To: %s\n" \
                % (SENDER.encode(), FILE_RCPT.encode())
            received, _ = split_received(data[m.start() + len(head):],
                                         FILE_RCPT, msgid)
            expected += head + received + lf(msg) + b"\n"
            assert_same(data, expected, "%s after %s" % (s.file_dest, label))
        check_owner_mode(s.file_dest, USER, 0o600)


def test_alias_program_exact():
    """An alias "|cat > FILE": the command reads Return-Path,
    Delivered-To, our Received: and the message, then end of file -- an
    ordinary message, one of header lines only, one of 3 MiB."""
    with Setup() as s, Daemon(conf=s.conf()) as d:
        for label, msg in messages(d, PROG_RCPT, "prog"):
            msgid = send(d.port, PROG_RCPT, msg)
            wait_done(d, msgid, PROG_RCPT)
            check_local(read_file(s.prog_dest), PROG_RCPT, msgid, msg,
                        "command input of %s" % label)
            assert os.stat(s.prog_dest).st_uid == s.pw.pw_uid, \
                "command not run as %s" % USER


def test_lmtp_wire_exact():
    """LMTP to a scripted server: the DATA it receives is our Received:
    and the message, CRLF and dot-stuffed, nothing else -- an ordinary
    message, one of header lines only, one of 3 MiB."""
    with Setup() as s, FakeSMTP() as srv, \
            Daemon(conf=s.conf(lmtp=srv.port)) as d:
        for label, msg in messages(d, LMTP_RCPT, "lmtp"):
            msgid = send(d.port, LMTP_RCPT, msg)
            wait_done(d, msgid, LMTP_RCPT)
            check_wire(server_txn(srv, msgid), LMTP_RCPT, msgid, msg,
                       "LMTP data of %s" % label, size=False)
        cmds = srv.sessions[0]["commands"]
        assert cmds[0].startswith("LHLO "), cmds


DOVECOT_HEAD_RE = re.compile(
    rb"Return-Path: <[^\n]*>\nDelivered-To: [^\n]*\n"
    rb"Received: from [^\n]*\n(\t[^\n]*\n)*")


def test_lmtp_dovecot_exact():
    """LMTP to Dovecot: the file Dovecot writes is its own Return-Path,
    Delivered-To and Received:, then our Received: and the message,
    nothing after -- an ordinary message, one of header lines only, one of
    3 MiB."""
    with Setup() as s, Dovecot() as dv, \
            Daemon(conf=s.conf(lmtp=dv.port)) as d:
        for label, msg in messages(d, LMTP_RCPT, "dovecot"):
            msgid = send(d.port, LMTP_RCPT, msg)
            wait_done(d, msgid, LMTP_RCPT)
            data = wait_maildir_key(id_key(msgid))
            m = DOVECOT_HEAD_RE.match(data)
            assert m, "not Dovecot's trace lines first: %r" % data[:400]
            _, rest = split_received(data[m.end():], LMTP_RCPT, msgid)
            assert_same(rest, lf(msg), "Dovecot's file of %s" % label)


def test_relay_exact():
    """Relayed over SMTP: the DATA the peer receives is our Received:
    and the message, CRLF and dot-stuffed, nothing else, and SIZE= is its
    exact length -- an ordinary message, one of header lines only, one of
    3 MiB, an empty one."""
    with Setup() as s, FakeSMTP() as srv, \
            Daemon(conf=s.conf(relay=srv.port)) as d:
        for label, msg in messages(d, REMOTE_RCPT, "relay", empty=True):
            msgid = send(d.port, REMOTE_RCPT, msg)
            wait_done(d, msgid, REMOTE_RCPT)
            check_wire(server_txn(srv, msgid), REMOTE_RCPT, msgid, msg,
                       "relayed %s" % label)


def test_bounce_returns_exact_message():
    """A DSN returns the original exactly: with RET=FULL the
    message/rfc822 part is our Received: and the message, then at once
    the closing boundary and the end of the DSN (an ordinary message, one
    of header lines only, one of 3 MiB); with RET=HDRS the
    text/rfc822-headers part is the header up to its empty line, or the
    whole message when it has no body."""
    with Setup() as s, Daemon(conf=s.conf()) as d:
        cases = [("FULL", label, msg)
                 for label, msg in messages(d, FAIL_RCPT, "full")]
        for make in (normal_message, headers_only_message):
            marker = unique_marker("hdrs")
            cases.append(("HDRS", marker, make(marker)))
        for ret, label, msg in cases:
            msgid = send(d.port, FAIL_RCPT, msg, sender=MAILDIR_RCPT,
                         params=" RET=%s" % ret)
            wait_done(d, msgid, FAIL_RCPT, "bounced")
            # the DSN holds our Received: of the original
            dsn = wait_maildir_key(id_key(msgid))
            assert dsn.startswith(b"Return-Path: <>\nDelivered-To: %s\n"
                                  % MAILDIR_RCPT.encode()), dsn[:200]
            m = re.search(rb'\n\tboundary="([^"\n]+)"\n', dsn)
            assert m, "no boundary in the DSN: %r" % dsn[:800]
            boundary = m.group(1)
            part = b"\n--%s\nContent-Type: %s\n\n" % (
                boundary, b"message/rfc822" if ret == "FULL"
                else b"text/rfc822-headers")
            assert dsn.count(part) == 1, "no %r in the DSN: %r" % (part,
                                                                   dsn)
            returned = dsn[dsn.index(part) + len(part):]
            received, _ = split_received(returned, FAIL_RCPT, msgid)
            original = lf(msg)
            if ret == "HDRS" and b"\n\n" in original:
                original = original[:original.index(b"\n\n") + 1]
            assert_same(returned,
                        received + original + b"\n--%s--\n" % boundary,
                        "RET=%s part of the DSN for %s" % (ret, label))


def test_bounce_relayed_exact():
    """A DSN to a remote sender is relayed, and it is the one message
    the mta measures itself (no smtp worker counted its size): the peer
    gets DATA ending with the returned message (RET=FULL), the closing
    boundary, and nothing after, and SIZE= is exactly that length -- an
    ordinary message, one of header lines only, one of 3 MiB."""
    sender = "bounced@remote.test"
    with Setup() as s, FakeSMTP() as srv, \
            Daemon(conf=s.conf(relay=srv.port)) as d:
        for label, msg in messages(d, FAIL_RCPT, "dsn-relay"):
            msgid = send(d.port, FAIL_RCPT, msg, sender=sender,
                         params=" RET=FULL")
            wait_done(d, msgid, FAIL_RCPT, "bounced")
            # the DSN holds our Received: of the original
            assert poll(lambda: [t for t in srv.transactions()
                                 if id_key(msgid, b"\r\n") in t["data"]],
                        30), "no DSN for %s relayed" % label
            txn = server_txn(srv, msgid)
            assert txn["mail"].startswith("MAIL FROM:<>"), txn["mail"]
            data = txn["data"]
            m = re.search(rb'\r\n\tboundary="([^"\r\n]+)"\r\n', data)
            assert m, "no boundary in the DSN: %r" % data[:800]
            boundary = m.group(1)
            part = b"\r\n--%s\r\nContent-Type: message/rfc822\r\n\r\n" \
                % boundary
            assert data.count(part) == 1, "no %r in the DSN" % part
            returned = data[data.index(part) + len(part):]
            received, _ = split_received(lf(returned[:4096]), FAIL_RCPT,
                                         msgid)
            assert_same(returned, dot_stuff(crlf(
                received + lf(msg) + b"\n--%s--\n" % boundary)),
                "relayed DSN for %s" % label)
            size = re.search(r" SIZE=(\d+)", txn["mail"])
            assert size and int(size.group(1)) == len(data), \
                "DSN for %s: %s, but %d bytes sent" % (label, txn["mail"],
                                                       len(data))


def ctl(d, *args):
    """smtpctl's standard output, as bytes; fails the test on an error."""
    p = subprocess.run([binary("smtpctl"), "-s", d.socket_path] +
                       list(args), stdin=subprocess.DEVNULL,
                       capture_output=True, timeout=30)
    assert p.returncode == 0, "smtpctl %s: exit %d: %s" % (
        " ".join(args), p.returncode, p.stderr.decode())
    return p.stdout


def test_smtpctl_show_message_exact():
    """smtpctl show message ID while the message waits in the queue (mda
    paused): exactly our Received: and the message -- an ordinary
    message, one of header lines only, one of 3 MiB; then, resumed, they
    are delivered."""
    with Setup() as s, Daemon(conf=s.conf()) as d:
        shapes = messages(d, MAILDIR_RCPT, "show")
        ctl(d, "pause", "mda")
        queued = [(send(d.port, MAILDIR_RCPT, msg), label, msg)
                  for label, msg in shapes]
        for msgid, label, msg in queued:
            out = ctl(d, "show", "message", msgid)
            _, rest = split_received(out, MAILDIR_RCPT, msgid)
            assert_same(rest, lf(msg), "show message of %s" % label)
        ctl(d, "resume", "mda")
        for msgid, label, msg in queued:
            wait_maildir_key(id_key(msgid))
