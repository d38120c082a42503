"""
From SMTP in to a mailbox out: Maildir with smtplib, mbox with swaks,
dot-unstuffing with raw bytes, durability (250 only once queued, and the
spool emptied once delivered), and a burst of many batches delivered each
exactly once.  The file of each single delivery is checked byte for
byte: the prepended Return-Path, Delivered-To and Received lines, then the
message exactly as sent with CRLF turned into LF.
"""

import collections
import mailbox
import os
import re
import smtplib
import subprocess
import threading

from fixture import (TEST_USER1, TEST_USER2, Daemon, SMTPConnection,
                     binary, check_owner_mode, dot_stuff, ensure_test_user,
                     maildir_files, mbox_path, poll, queue_id, read_file,
                     reset_maildir, reset_mbox, spool_files_containing,
                     split_delivery, unique_marker, user, wait_maildir,
                     wait_stable_file)

TIMEOUT = 60
HELO = "tester.example.test"
RCPT1 = "%s@example.test" % TEST_USER1
RCPT2 = "%s@mbox.test" % TEST_USER2


def sample_message(marker, rcpt, sender):
    """A message with CRLF line ends (as on the wire, before stuffing)."""
    lines = [
        "From: Test Sender <%s>" % sender,
        "To: <%s>" % rcpt,
        "Subject: %s" % marker,
        "Date: Thu, 01 Jan 2026 12:00:00 +0000",
        "Message-ID: <%s@client.example.test>" % marker,
        "",
        "Hello %s," % rcpt,
        ".a line that starts with a dot",
        "From the start of a line",
        "",
        "  indented, trailing spaces   ",
        "last line",
    ]
    return ("\r\n".join(lines) + "\r\n").encode()


def crlf_to_lf(data):
    return data.replace(b"\r\n", b"\n")


def check_maildir_message(path, body, sender, rcpt, msgid):
    check_owner_mode(path, TEST_USER1, 0o600)
    name = os.path.basename(path)
    assert not name.startswith("."), "Maildir file name %r is hidden" % name
    data = read_file(path)
    rest = split_delivery(data, sender, rcpt, HELO, msgid)
    assert rest == body, "delivered message differs from the one sent:\n" \
        "sent:      %r\ndelivered: %r" % (body, rest)
    assert maildir_files(TEST_USER1, "tmp") == [], \
        "files left in Maildir/tmp: %r" % maildir_files(TEST_USER1, "tmp")


def test_maildir_smtplib():
    reset_maildir(TEST_USER1)
    marker = unique_marker("maildir")
    sender = "sender@client.example.test"
    msg = sample_message(marker, RCPT1, sender)
    with Daemon() as d:
        with smtplib.SMTP("127.0.0.1", d.port, local_hostname=HELO,
                          timeout=30) as s:
            code, _ = s.ehlo()
            assert code == 250, "EHLO: %d" % code
            code, text = s.mail(sender)
            assert code == 250, "MAIL: %d %r" % (code, text)
            code, text = s.rcpt(RCPT1)
            assert code == 250, "RCPT: %d %r" % (code, text)
            code, text = s.data(msg)	# smtplib dot-stuffs
            assert code == 250, "end of data: %d %r" % (code, text)
            msgid = queue_id(text)
        files = wait_maildir(TEST_USER1, 1)
        check_maildir_message(files[0], crlf_to_lf(msg), sender, RCPT1,
                              msgid)
        # The Maildir the daemon created belongs to the user, private.
        for sub in ("", "new", "cur", "tmp"):
            check_owner_mode(os.path.join(user(TEST_USER1).pw_dir,
                                          "Maildir", sub), TEST_USER1)


def _swaks(port, rcpt, body, sender="a@b.test"):
    """Send with swaks; returns (queue id, the message as swaks sent it,
    with LF line ends) -- the latter read back from swaks's transcript,
    since its template adds headers and blank lines of its own."""
    r = subprocess.run(
        ["swaks", "--server", "127.0.0.1:%d" % port, "--to", rcpt,
         "--from", sender, "--helo", HELO, "--timeout", "30",
         "--body", body],
        stdin=subprocess.DEVNULL, stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT, timeout=60)
    out = r.stdout.decode("utf-8", "replace")
    assert r.returncode == 0, "swaks exit status %d:\n%s" % (r.returncode,
                                                             out)
    m = re.search(r"<[-~]  250 (2\.0\.0 Ok: queued as \S+)", out)
    assert m, "swaks saw no '250 2.0.0 Ok: queued as ID':\n%s" % out
    sent, in_data = [], False
    for line in out.splitlines():
        if re.match(r"^<[-~]  354", line):
            in_data = True
        elif in_data and line.startswith(" -> "):
            if line == " -> .":
                break
            sent.append(line[4:])
        elif in_data and line == " ->":
            sent.append("")
    assert sent, "no message data in the swaks transcript:\n%s" % out
    message = "".join(ln + "\n" for ln in sent).encode()
    return queue_id(m.group(1)), message


def mboxrd_quote(message):
    """A line matching ^>*From  gets one more ">"."""
    return re.sub(rb"(?m)^(>*From )", rb">\1", message)


MBOX_BODY = ("mbox test %s\n"
             "From the start\n"
             ">From already quoted\n"
             "not From here\n"
             "end")

FROM_LINE_RE = re.compile(
    rb"^From a@b\.test (Mon|Tue|Wed|Thu|Fri|Sat|Sun) "
    rb"(Jan|Feb|Mar|Apr|May|Jun|Jul|Aug|Sep|Oct|Nov|Dec) "
    rb"[ 0-9][0-9] [0-9]{2}:[0-9]{2}:[0-9]{2} [0-9]{4}\n")


def check_mbox(path, marker, msgid, sent):
    data = wait_stable_file(path, marker.encode())
    m = FROM_LINE_RE.match(data)
    assert m, "mbox does not start with a 'From a@b.test DATE' line: %r" \
        % data[:100]
    rest = split_delivery(data[m.end():], "a@b.test", RCPT2, HELO, msgid)
    # mboxrd: a line matching ^>*From  gets one more ">"
    assert b"\n>From the start\n" in rest, \
        "body line 'From the start' not quoted as '>From': %r" % rest
    assert b"\n>>From already quoted\n" in rest, \
        "body line '>From already quoted' not quoted as '>>From': %r" % rest
    assert b"\nnot From here\n" in rest, "unquoted line changed: %r" % rest
    # Byte for byte: the message as sent, quoted, then one blank line.
    expected = mboxrd_quote(sent) + b"\n"
    assert rest == expected, "mbox message differs from the one sent:\n" \
        "expected:  %r\ndelivered: %r" % (expected, rest)

    box = mailbox.mbox(path, create=False)
    try:
        msgs = list(box)
    finally:
        box.close()
    assert len(msgs) == 1, "mbox holds %d messages, expected 1" % len(msgs)
    assert msgs[0]["Return-Path"] == "<a@b.test>", msgs[0]["Return-Path"]
    assert msgs[0]["Delivered-To"] == RCPT2, msgs[0]["Delivered-To"]
    assert msgs[0].get_from().startswith("a@b.test "), msgs[0].get_from()
    assert marker in msgs[0].get_payload(), "marker not in the body"


def test_mbox_swaks():
    """Into an existing, empty /var/mail/USER (as useradd leaves it)."""
    reset_mbox(TEST_USER2, create=True)
    marker = unique_marker("mbox")
    with Daemon() as d:
        msgid, sent = _swaks(d.port, RCPT2, MBOX_BODY % marker)
        check_mbox(mbox_path(TEST_USER2), marker, msgid, sent)
        check_owner_mode(mbox_path(TEST_USER2), TEST_USER2)
        assert not os.path.exists(mbox_path(TEST_USER2) + ".lock"), \
            "dotlock left behind"


def test_mbox_created():
    """No /var/mail/USER yet: the daemon creates it, the user's, 0600."""
    reset_mbox(TEST_USER2, create=False)
    marker = unique_marker("mbox-new")
    with Daemon() as d:
        msgid, sent = _swaks(d.port, RCPT2, MBOX_BODY % marker)
        check_mbox(mbox_path(TEST_USER2), marker, msgid, sent)
        check_owner_mode(mbox_path(TEST_USER2), TEST_USER2, 0o600)


def test_mbox_appends():
    """A second message is appended after the first, both intact."""
    reset_mbox(TEST_USER2, create=True)
    first, second = unique_marker("mbox-1"), unique_marker("mbox-2")
    with Daemon() as d:
        _swaks(d.port, RCPT2, MBOX_BODY % first)
        wait_stable_file(mbox_path(TEST_USER2), first.encode())
        _swaks(d.port, RCPT2, MBOX_BODY % second)
        data = wait_stable_file(mbox_path(TEST_USER2), second.encode())
    assert data.index(first.encode()) < data.index(second.encode())
    box = mailbox.mbox(mbox_path(TEST_USER2), create=False)
    try:
        payloads = [m.get_payload() for m in box]
    finally:
        box.close()
    assert len(payloads) == 2, "mbox holds %d messages" % len(payloads)


def send_raw(port, sender, rcpt, wire_body):
    """A raw dialog with the DATA bytes exactly as given (already
    stuffed, ending before the final "." line).  Returns the queue id."""
    with SMTPConnection(port) as c:
        assert c.greeting.code == 220, c.greeting
        for cmd, want in (("EHLO %s" % HELO, 250),
                          ("MAIL FROM:<%s>" % sender, 250),
                          ("RCPT TO:<%s>" % rcpt, 250),
                          ("DATA", 354)):
            r = c.command(cmd)
            assert r.code == want, "%s: %s, expected %d" % (cmd, r, want)
        r = c.command(wire_body + b".\r\n")
        assert r.code == 250, "end of data: %s" % r
        msgid = queue_id(r)
        r = c.command("QUIT")
        assert r.code == 221, "QUIT: %s" % r
    return msgid


def test_dot_unstuffing():
    """RFC 5321 4.5.2: the server removes one leading dot of each line."""
    reset_maildir(TEST_USER1)
    marker = unique_marker("dots")
    original = (
        b"Subject: " + marker.encode() + b"\r\n"
        b"\r\n"
        b"..x\r\n"
        b".\r\n"
        b"...\r\n"
        b".leading dot\r\n"
        b"middle . dot\r\n"
        b"x.\r\n"
        b" .space first\r\n"
        b"\r\n"
        b"end\r\n")
    wire = dot_stuff(original)
    # A client that forgot to stuff: the server still drops the first dot.
    wire += b".unstuffed by the client\r\n"
    expected = crlf_to_lf(original) + b"unstuffed by the client\n"
    sender = "dots@client.example.test"
    with Daemon() as d:
        msgid = send_raw(d.port, sender, RCPT1, wire)
        files = wait_maildir(TEST_USER1, 1)
        check_maildir_message(files[0], expected, sender, RCPT1, msgid)


def test_null_sender():
    """MAIL FROM:<> (a bounce) is delivered with Return-Path: <>."""
    reset_maildir(TEST_USER1)
    marker = unique_marker("null")
    body = b"Subject: " + marker.encode() + b"\r\n\r\nbounce body\r\n"
    with Daemon() as d:
        msgid = send_raw(d.port, "", RCPT1, body)
        files = wait_maildir(TEST_USER1, 1)
        check_maildir_message(files[0], crlf_to_lf(body), "", RCPT1, msgid)


def test_durable_then_delivered():
    """The 250 comes after the queue committed; then the message is
    delivered and nothing of it stays in the spool."""
    reset_maildir(TEST_USER1)
    marker = unique_marker("durable")
    body = (b"Subject: " + marker.encode() + b"\r\n\r\n" +
            b"line\r\n" * 50)
    sender = "durable@client.example.test"
    with Daemon() as d:
        msgid = send_raw(d.port, sender, RCPT1, body)
        assert msgid in d.log(), \
            "queue id %s not in the daemon log" % msgid
        files = wait_maildir(TEST_USER1, 1)
        check_maildir_message(files[0], crlf_to_lf(body), sender, RCPT1,
                              msgid)
        # Delivered: the envelope and the message leave the spool.
        left = poll(lambda: not spool_files_containing(d.spool,
                                                       marker.encode()))
        assert left, "still in the spool after delivery: %s" \
            % spool_files_containing(d.spool, marker.encode())


def test_two_messages_one_session():
    """Two transactions in one session, each queued and delivered."""
    reset_maildir(TEST_USER1)
    markers = [unique_marker("a"), unique_marker("b")]
    with Daemon() as d:
        with SMTPConnection(d.port) as c:
            assert c.command("EHLO %s" % HELO).code == 250
            ids = []
            for m in markers:
                assert c.command("MAIL FROM:<s@client.example.test>").code \
                    == 250
                assert c.command("RCPT TO:<%s>" % RCPT1).code == 250
                assert c.command("DATA").code == 354
                r = c.command(b"Subject: " + m.encode() +
                              b"\r\n\r\nbody\r\n.\r\n")
                ids.append(queue_id(r))
            assert c.command("QUIT").code == 221
        assert ids[0] != ids[1], "same queue id twice: %s" % ids[0]
        files = wait_maildir(TEST_USER1, 2)
        got = sorted(read_file(f) for f in files)
        for m in markers:
            assert sum(m.encode() in g for g in got) == 1, \
                "%s not delivered exactly once" % m


# a user of its own: other test runs reset phtest1's Maildir
BURST_USER = "phburst"


def _send_many(port, rcpt, markers):
    """One session, one transaction per marker; returns the acknowledged."""
    acked = []
    with SMTPConnection(port) as c:
        assert c.command("EHLO %s" % HELO).code == 250
        for m in markers:
            assert c.command("MAIL FROM:<burst@client.example.test>").code \
                == 250
            assert c.command("RCPT TO:<%s>" % rcpt).code == 250
            assert c.command("DATA").code == 354
            r = c.command(("Subject: %s\r\n\r\nbody of %s\r\n.\r\n"
                           % (m, m)).encode())
            assert r.code == 250, "end of data: %s" % r
            acked.append(m)
        c.command("QUIT")
    return acked


def _send_burst(port, rcpt, tag, count, sessions=4):
    markers = ["%s-%d" % (unique_marker(tag), i) for i in range(count)]
    results = [None] * sessions
    errors = []

    def run(k):
        try:
            results[k] = _send_many(port, rcpt, markers[k::sessions])
        except Exception as e:	# reported below, in the test's thread
            errors.append(e)

    threads = [threading.Thread(target=run, args=(k,))
               for k in range(sessions)]
    for t in threads:
        t.start()
    for t in threads:
        t.join(timeout=TIMEOUT)
    assert not errors, "sending failed: %r" % errors[0]
    return [m for r in results for m in r]


def test_maildir_burst_each_once():
    """A backlog of several batches, and more mail arriving while it is
    delivered.  The delivery process pipelines its batches (one sync makes
    the renames of one batch and the files of the next durable), and still
    every message lands in new/ exactly once, nothing is left in tmp/, and
    every envelope is reported delivered, none deferred."""
    ensure_test_user(BURST_USER)
    reset_maildir(BURST_USER)
    rcpt = "%s@example.test" % BURST_USER
    with Daemon() as d:
        ctl = [binary("smtpctl"), "-s", d.socket_path]
        subprocess.run(ctl + ["pause", "mda"], check=True, timeout=20,
                       stdin=subprocess.DEVNULL, capture_output=True)
        markers = _send_burst(d.port, rcpt, "backlog", 200)
        subprocess.run(ctl + ["resume", "mda"], check=True, timeout=20,
                       stdin=subprocess.DEVNULL, capture_output=True)
        markers += _send_burst(d.port, rcpt, "during", 100)
        files = wait_maildir(BURST_USER, len(markers), timeout=TIMEOUT)
        seen = collections.Counter()
        for f in files:
            m = re.search(rb"^Subject: (\S+)$", read_file(f), re.M)
            assert m, "no Subject in %s" % f
            seen[m.group(1).decode()] += 1
        twice = [m for m, n in seen.items() if n > 1]
        assert not twice, "delivered more than once: %s" % twice[:10]
        missing = set(markers) - set(seen)
        assert not missing, "not delivered: %s" % sorted(missing)[:10]
        assert maildir_files(BURST_USER, "tmp") == [], \
            "files left in Maildir/tmp: %r" % maildir_files(BURST_USER,
                                                            "tmp")
        sent = poll(lambda: d.log().count("status=sent") >= len(markers))
        assert sent, "%d of %d envelopes logged as delivered" % (
            d.log().count("status=sent"), len(markers))
        assert "status=deferred" not in d.log(), "a delivery was deferred"
