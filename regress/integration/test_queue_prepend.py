"""
test_queue_prepend.py -- headers added after the body are delivered
first, and the message file is never rewritten for them.

At the end of data the smtp worker may add header fields that depend on
the whole message (Authentication-Results, DKIM-Signature).  It writes
them after the message data in the spool file and tells the queue their
length with the commit; the queue checks them and records the length in
a version 2 footer:

    MESSAGE  ADDED-HEADERS  [ENVELOPE]
    #posthaste-spool 2 body=N head=N envelope=N mac=HMAC

and every reader presents [added headers][message] (common/spool_msg.h).
Checked byte for byte here, on each path out of the queue:

    Maildir, program    Return-Path, Delivered-To, the added fields,
                        our Received:, the message
    mbox                From_ line, then the same, then an empty line
    LMTP to Dovecot     Dovecot's trace lines, then the same as Maildir
    relay (DATA)        the added fields, our Received:, the message,
                        CRLF and dot-stuffed; SIZE= is that length
    7-bit conversion    the added fields still lead
    bounce RET=FULL     the returned message/rfc822 part starts with them
    bounce RET=HDRS     so does the returned header
    smtpctl show message  the added fields, then the spooled message
    restart             a spool reloaded by the real daemon delivers them
    forged by hand      a version 2 file written here (the mac under the
                        spool's key) delivers; one with a bad mac goes to
                        corrupt/

The worker's side needs a caller that does not exist yet (the end-of-data
checks will call smtp_data_add_header()), so the daemon here is
obj/regress/smtpd-forge, the real smtpd whose worker is built with
-DPOSTHASTE_TEST_FORGE: POSTHASTE_FORGE_ADD and POSTHASTE_FORGE_ADD2 are
added through smtp_data_add_header() at the end of data, in that order
(the second lands on top); POSTHASTE_FORGE_HEAD and
POSTHASTE_FORGE_HEADLEN make the worker claim a head the queue must
refuse: malformed, or longer than SPOOL_HEAD_MAX.
"""

import hashlib
import hmac
import os
import re
import shutil
import struct
import tempfile

import fixture
from fixture import (Daemon, SMTPConnection, dot_stuff, mbox_path, poll,
                     read_file, reset_mbox, unique_marker)
from test_delivery_exact import (FAIL_RCPT, HELO, LMTP_RCPT, MAILDIR_RCPT,
                                 MBOX_FROM_RE, MBOX_RCPT, PROG_RCPT,
                                 REMOTE_RCPT, SENDER, Setup, assert_same,
                                 crlf, ctl, headers_only_message, id_key, lf,
                                 normal_message, send, server_txn,
                                 split_received, wait_done,
                                 wait_maildir_key)
from test_delivery_lmtp import Dovecot
from test_mta_relay import FakeSMTP, wait_log
from test_privsep import forge_binary

# what the end-of-data checks will add: the second call's field on top
AR = ("Authentication-Results: mx.prepend.test;\r\n"
      "\tspf=pass smtp.mailfrom=client.test;\r\n"
      "\tdkim=none")
SIG = ("DKIM-Signature: v=1; a=ed25519-sha256; c=relaxed/relaxed;\r\n"
       " d=client.test; s=sel; h=from:to:subject;\r\n"
       " bh=47DEQpj8HBSa+/TImW+5JCeuQeRkm5NMpJWZG3hSuFU=;\r\n"
       " b=AAAABBBBCCCC")
HEAD = (SIG + "\r\n" + AR + "\r\n").replace("\r\n", "\n").encode()
FORGE_ENV = {"POSTHASTE_FORGE_ADD": AR, "POSTHASTE_FORGE_ADD2": SIG}

FOOTER2 = re.compile(rb"#posthaste-spool 2 body=(\d{20}) head=(\d{5}) "
                     rb"envelope=(\d{6}) mac=([0-9a-f]{64})\n\Z")
FOOTER2_LEN = 141


def forge_daemon(conf, env=FORGE_ENV):
    return Daemon(conf=conf, program=forge_binary(), env=env)


def split_local(data, rcpt, msgid):
    """Return-Path and Delivered-To, then HEAD, then our Received:;
    returns the rest (the message as the client sent it)."""
    top = b"Return-Path: <%s>\nDelivered-To: %s\n" % (SENDER.encode(),
                                                       rcpt.encode())
    assert_same(data[:len(top) + len(HEAD)], top + HEAD,
                "the top of the delivered message")
    _, rest = split_received(data[len(top) + len(HEAD):], rcpt, msgid)
    return rest


def check_wire(txn, rcpt, msgid, msg, what):
    """DATA is HEAD, our Received: and the message, CRLF, dot-stuffed;
    SIZE= is its exact length."""
    data = txn["data"]
    head = crlf(HEAD)
    assert_same(data[:len(head)], head, what + ": the added fields")
    received, _ = split_received(lf(data[len(head):len(head) + 4096]), rcpt,
                                 msgid)
    assert_same(data, dot_stuff(crlf(HEAD + received + lf(msg))), what)
    m = re.search(r" SIZE=(\d+)", txn["mail"])
    assert m, "%s: no SIZE parameter in %r" % (what, txn["mail"])
    assert int(m.group(1)) == len(data), \
        "%s: SIZE=%s, but %d bytes sent" % (what, m.group(1), len(data))


def test_local_paths_deliver_added_headers_first():
    """Maildir, mbox and a program get Return-Path, Delivered-To, the
    added fields (the later one on top), our Received: and the message,
    exactly."""
    with Setup() as s:
        reset_mbox(s.pw.pw_name, create=True)
        with forge_daemon(s.conf()) as d:
            for make in (normal_message, headers_only_message):
                marker = unique_marker("prepend-md")
                msg = make(marker)
                msgid = send(d.port, MAILDIR_RCPT, msg)
                data = wait_maildir_key(id_key(msgid))
                assert_same(split_local(data, MAILDIR_RCPT, msgid), lf(msg),
                            "Maildir file")

                msgid = send(d.port, PROG_RCPT, msg)
                wait_done(d, msgid, PROG_RCPT)
                assert_same(split_local(read_file(s.prog_dest), PROG_RCPT,
                                        msgid), lf(msg), "command input")

                msgid = send(d.port, MBOX_RCPT, msg)
                wait_done(d, msgid, MBOX_RCPT)
                data = read_file(mbox_path(s.pw.pw_name))
                m = re.search(rb"(?m)^" + MBOX_FROM_RE, data[data.rfind(
                    b"\nFrom " + SENDER.encode()) + 1:])
                assert m, "no From_ line for %s: %r" % (msgid, data[-600:])
                entry = data[data.rfind(b"\nFrom " + SENDER.encode()) + 1:]
                entry = entry[m.end():]
                rest = split_local(entry, MBOX_RCPT, msgid)
                assert_same(rest, lf(msg) + b"\n", "mbox entry")


def test_bdat_message_gets_added_headers_first():
    """The worker's end of data is the same for BDAT: the message sent
    in two chunks is delivered with the added fields first."""
    with Setup() as s, forge_daemon(s.conf()) as d:
        marker = unique_marker("prepend-bdat")
        msg = normal_message(marker)
        half = len(msg) // 2
        with SMTPConnection(d.port) as c:
            assert c.command("EHLO %s" % HELO).code == 250
            assert c.command("MAIL FROM:<%s>" % SENDER).code == 250
            assert c.command("RCPT TO:<%s>" % MAILDIR_RCPT).code == 250
            c.send(b"BDAT %d\r\n" % half + msg[:half])
            assert c.reply().code == 250
            c.send(b"BDAT %d LAST\r\n" % (len(msg) - half) + msg[half:])
            r = c.reply()
            assert r.code == 250, r
            msgid = re.search(r"queued as ([0-9a-f]{8})", str(r)).group(1)
            c.command("QUIT")
        data = wait_maildir_key(id_key(msgid))
        assert_same(split_local(data, MAILDIR_RCPT, msgid), lf(msg),
                    "Maildir file of a BDAT message")


def test_lmtp_dovecot_gets_added_headers_first():
    """LMTP to Dovecot: after Dovecot's own trace lines, the added
    fields, our Received: and the message."""
    from test_delivery_exact import DOVECOT_HEAD_RE
    with Setup() as s, Dovecot() as dv, \
            forge_daemon(s.conf(lmtp=dv.port)) as d:
        marker = unique_marker("prepend-lmtp")
        msg = normal_message(marker)
        msgid = send(d.port, LMTP_RCPT, msg)
        wait_done(d, msgid, LMTP_RCPT)
        data = wait_maildir_key(id_key(msgid))
        m = DOVECOT_HEAD_RE.match(data)
        assert m, "not Dovecot's trace lines first: %r" % data[:400]
        rest = data[m.end():]
        assert_same(rest[:len(HEAD)], HEAD, "Dovecot's file: added fields")
        _, rest = split_received(rest[len(HEAD):], LMTP_RCPT, msgid)
        assert_same(rest, lf(msg), "Dovecot's file")


def test_relay_sends_added_headers_first_with_exact_size():
    """Relayed: DATA is the added fields, our Received: and the message,
    and SIZE= counts the added fields too (the worker measured them)."""
    with Setup() as s, FakeSMTP() as srv, \
            forge_daemon(s.conf(relay=srv.port)) as d:
        for make in (normal_message, headers_only_message):
            marker = unique_marker("prepend-relay")
            msg = make(marker)
            msgid = send(d.port, REMOTE_RCPT, msg)
            wait_done(d, msgid, REMOTE_RCPT)
            check_wire(server_txn(srv, msgid), REMOTE_RCPT, msgid, msg,
                       "relayed " + marker)


def test_relay_7bit_conversion_keeps_added_headers_first():
    """A peer without 8BITMIME: the 8-bit body is converted, and the
    added fields still lead the message."""
    ehlo = ("PIPELINING", "SIZE 10240000", "ENHANCEDSTATUSCODES")
    with Setup() as s, FakeSMTP(ehlo=ehlo) as srv, \
            forge_daemon(s.conf(relay=srv.port)) as d:
        marker = unique_marker("prepend-7bit")
        msg = ("From: <%s>\r\nSubject: %s\r\nMIME-Version: 1.0\r\n"
               "Content-Type: text/plain; charset=utf-8\r\n"
               "Content-Transfer-Encoding: 8bit\r\n\r\n"
               "caf\xc3\xa9 %s\r\n" % (SENDER, marker, marker)).encode(
                   "latin-1")
        msgid = send(d.port, REMOTE_RCPT, msg, params=" BODY=8BITMIME")
        wait_done(d, msgid, REMOTE_RCPT)
        data = server_txn(srv, msgid)["data"]
        assert data.startswith(crlf(HEAD)), data[:400]
        split_received(lf(data[len(crlf(HEAD)):][:4096]), REMOTE_RCPT,
                       msgid)
        assert all(b < 0x80 for b in data), "8-bit bytes sent to the peer"
        assert marker.encode() in data


def test_bounce_returns_added_headers():
    """A DSN returns the message as it was delivered: the message/rfc822
    part (RET=FULL) and the text/rfc822-headers part (RET=HDRS) start
    with the added fields."""
    with Setup() as s, forge_daemon(s.conf()) as d:
        for ret in ("FULL", "HDRS"):
            marker = unique_marker("prepend-dsn")
            msg = normal_message(marker)
            msgid = send(d.port, FAIL_RCPT, msg, sender=MAILDIR_RCPT,
                         params=" RET=%s" % ret)
            wait_done(d, msgid, FAIL_RCPT, "bounced")
            dsn = wait_maildir_key(id_key(msgid))
            m = re.search(rb'\n\tboundary="([^"\n]+)"\n', dsn)
            assert m, "no boundary in the DSN: %r" % dsn[:800]
            boundary = m.group(1)
            part = b"\n--%s\nContent-Type: %s\n\n" % (
                boundary, b"message/rfc822" if ret == "FULL"
                else b"text/rfc822-headers")
            assert dsn.count(part) == 1, "no %r in the DSN" % part
            returned = dsn[dsn.index(part) + len(part):]
            assert_same(returned[:len(HEAD)], HEAD,
                        "RET=%s: the added fields" % ret)
            received, _ = split_received(returned[len(HEAD):], FAIL_RCPT,
                                         msgid)
            original = lf(msg)
            if ret == "HDRS":
                original = original[:original.index(b"\n\n") + 1]
            assert_same(returned, HEAD + received + original +
                        b"\n--%s--\n" % boundary, "RET=%s part" % ret)


def footer2_mac(key, body, head, env):
    return hmac.new(key, b"posthaste spool footer v2" +
                    struct.pack(">QII", body, head, len(env)) + env,
                    hashlib.sha256).hexdigest().encode()


def spool_conf(s, spool):
    return s.conf().replace('spool "@TMP@/spool"', 'spool "%s"' % spool)


def queued_files(spool):
    q = os.path.join(spool, "queue")
    return [os.path.join(q, n) for n in sorted(os.listdir(q))
            if len(n) == 8]


def test_show_message_and_restart_keep_added_headers():
    """Queued with local delivery paused: the file is the message, the
    added fields, the envelope and a version 2 footer whose mac verifies
    under the spool's key; smtpctl show message gives the added fields
    first; after a restart of the real daemon (not the forging build) the
    reloaded message is delivered with them first."""
    with Setup() as s:
        top = tempfile.mkdtemp(prefix="prepend.", dir=fixture.TEST_ROOT)
        os.chmod(top, 0o755)
        spool = os.path.join(top, "spool")
        try:
            marker = unique_marker("prepend-restart")
            msg = normal_message(marker)
            with forge_daemon(spool_conf(s, spool)) as d:
                ctl(d, "pause", "mda")
                msgid = send(d.port, MAILDIR_RCPT, msg)
                out = ctl(d, "show", "message", msgid)
                assert_same(out[:len(HEAD)], HEAD, "show message")
                _, rest = split_received(out[len(HEAD):], MAILDIR_RCPT,
                                         msgid)
                assert_same(rest, lf(msg), "show message")
                shown = ctl(d, "show", "queue")
            files = queued_files(spool)
            assert len(files) == 1, files
            data = open(files[0], "rb").read()
            m = FOOTER2.search(data[-FOOTER2_LEN:])
            assert m, "no version 2 footer: %r" % data[-FOOTER2_LEN:]
            body, head, envlen = (int(m.group(i)) for i in (1, 2, 3))
            assert body + head + envlen + FOOTER2_LEN == len(data)
            assert head == len(HEAD), (head, len(HEAD))
            assert data[body:body + head] == HEAD, data[body:body + head]
            env = data[body + head:body + head + envlen]
            key = open(os.path.join(spool, "queue", ".key"), "rb").read()
            assert m.group(4) == footer2_mac(key, body, head, env), \
                "the footer's mac is not over the sizes and the envelope"
            assert str(body + head) in shown.decode(), \
                "show queue's size leaves out the added fields: %s" % shown
            with Daemon(conf=spool_conf(s, spool)) as d:
                data = wait_maildir_key(id_key(msgid))
                assert_same(split_local(data, MAILDIR_RCPT, msgid), lf(msg),
                            "Maildir file after the restart")
        finally:
            shutil.rmtree(top, ignore_errors=True)


def check_multi(data, rcpt, msgid, msg, what):
    """Return-Path, Delivered-To, HEAD, our Received: (no "for": there
    were two recipients) and the message."""
    top = b"Return-Path: <%s>\nDelivered-To: %s\n" % (SENDER.encode(),
                                                       rcpt.encode())
    assert_same(data[:len(top) + len(HEAD)], top + HEAD, what)
    m = re.match(rb"Received: from [^\n]*\n(\t[^\n]*\n)*",
                 data[len(top) + len(HEAD):])
    assert m and b" id %s" % msgid.encode() in m.group(0), \
        "%s: not our Received: %r" % (what, data[:600])
    assert_same(data[len(top) + len(HEAD) + m.end():], lf(msg), what)


def test_several_recipients_after_restart():
    """A message for two recipients has its envelopes in files of their
    own; the added fields' length is in the message file's footer, so
    after a restart both deliveries (Maildir and a program) still get
    them first."""
    with Setup() as s:
        top = tempfile.mkdtemp(prefix="prepend.", dir=fixture.TEST_ROOT)
        os.chmod(top, 0o755)
        spool = os.path.join(top, "spool")
        try:
            marker = unique_marker("prepend-multi")
            msg = normal_message(marker)
            with forge_daemon(spool_conf(s, spool)) as d:
                ctl(d, "pause", "mda")
                with SMTPConnection(d.port) as c:
                    for cmd in ("EHLO %s" % HELO, "MAIL FROM:<%s>" % SENDER,
                                "RCPT TO:<%s>" % MAILDIR_RCPT,
                                "RCPT TO:<%s>" % PROG_RCPT):
                        assert c.command(cmd).code == 250, cmd
                    assert c.command("DATA").code == 354
                    r = c.command(dot_stuff(msg) + b".\r\n")
                    assert r.code == 250, r
                    msgid = re.search(r"queued as ([0-9a-f]{8})",
                                      str(r)).group(1)
            names = os.listdir(os.path.join(spool, "queue"))
            assert len([n for n in names if n.startswith(msgid) and
                        len(n) == 16]) == 2, names
            with Daemon(conf=spool_conf(s, spool)) as d:
                data = wait_maildir_key(("Subject: %s\n" % marker).encode())
                check_multi(data, MAILDIR_RCPT, msgid, msg, "Maildir file")
                wait_done(d, msgid, PROG_RCPT)
                check_multi(read_file(s.prog_dest), PROG_RCPT, msgid, msg,
                            "command input")
        finally:
            shutil.rmtree(top, ignore_errors=True)


def test_version2_file_written_by_hand():
    """A file queued without added fields (version 1 footer, by the real
    daemon) is rewritten here as version 2 with a head section and the
    mac under the spool's key: it is delivered with that head first.  A
    second one with a mac under another key goes to corrupt/ and is not
    delivered."""
    with Setup() as s:
        top = tempfile.mkdtemp(prefix="prepend.", dir=fixture.TEST_ROOT)
        os.chmod(top, 0o755)
        spool = os.path.join(top, "spool")
        try:
            marker = unique_marker("prepend-hand")
            bad_marker = unique_marker("prepend-badmac")
            msg = normal_message(marker)
            with Daemon(conf=spool_conf(s, spool)) as d:
                ctl(d, "pause", "mda")
                msgid = send(d.port, MAILDIR_RCPT, msg)
            path = queued_files(spool)[0]
            st = os.stat(path)
            data = open(path, "rb").read()
            v1 = re.search(rb"#posthaste-spool 1 body=(\d{20}) "
                           rb"envelope=(\d{6}) mac=[0-9a-f]{64}\n\Z", data)
            assert v1, "no version 1 footer: %r" % data[-130:]
            body, envlen = int(v1.group(1)), int(v1.group(2))
            message, env = data[:body], data[body:body + envlen]
            key = open(os.path.join(spool, "queue", ".key"), "rb").read()
            head = b"X-Hand-Made: %s\n\tfolded\n" % marker.encode() + HEAD

            def v2(msgbytes, envbytes, k):
                return (msgbytes + head + envbytes +
                        b"#posthaste-spool 2 body=%020d head=%05d "
                        b"envelope=%06d mac=%s\n" % (
                            len(msgbytes), len(head), len(envbytes),
                            footer2_mac(k, len(msgbytes), len(head),
                                        envbytes)))
            with open(path, "wb") as f:
                f.write(v2(message, env, key))
            # the same message again under another id, mac'd with a wrong key
            bad = "0badface"
            bad_path = os.path.join(os.path.dirname(path), bad)
            with open(bad_path, "wb") as f:
                f.write(v2(message.replace(marker.encode(),
                                           bad_marker.encode()),
                           env.replace(msgid.encode(), bad.encode()),
                           bytes(32)))
            for p in (path, bad_path):
                os.chown(p, st.st_uid, st.st_gid)
                os.chmod(p, 0o600)
            with Daemon(conf=spool_conf(s, spool)) as d:
                data = wait_maildir_key(id_key(msgid))
                top_lines = b"Return-Path: <%s>\nDelivered-To: %s\n" % (
                    SENDER.encode(), MAILDIR_RCPT.encode())
                assert_same(data[:len(top_lines) + len(head)],
                            top_lines + head, "hand-made head")
                _, rest = split_received(data[len(top_lines) + len(head):],
                                         MAILDIR_RCPT, msgid)
                assert_same(rest, lf(msg), "hand-made file delivered")
                log = d.log()
                assert "message %s is corrupt (footer does not verify)" \
                    % bad in log, log
                corrupt = os.listdir(os.path.join(spool, "corrupt"))
                assert any(n.startswith(bad + ".") for n in corrupt), corrupt
                assert not poll(lambda: [f for f in fixture.maildir_files(
                    s.pw.pw_name) if bad_marker.encode() in read_file(f)],
                    1), "the file with a bad mac was delivered"
        finally:
            shutil.rmtree(top, ignore_errors=True)


def end_of_data(port, marker):
    with SMTPConnection(port) as c:
        assert c.command("EHLO %s" % HELO).code == 250
        assert c.command("MAIL FROM:<%s>" % SENDER).code == 250
        assert c.command("RCPT TO:<%s>" % MAILDIR_RCPT).code == 250
        assert c.command("DATA").code == 354
        c.send(("Subject: %s\r\n\r\nbody\r\n.\r\n" % marker).encode())
        r = c.reply()
        c.command("QUIT")
    return r


def test_queue_refuses_a_bad_head_claim():
    """A worker that claims added headers the queue cannot vouch for --
    a CR in them, a line that is no header field, an empty line, more
    than 16 KB -- gets 451 for that message: nothing is queued or
    delivered, the daemon goes on, and a message without the claim is
    delivered by the same daemon afterwards."""
    cases = [
        ({"POSTHASTE_FORGE_HEAD": "X-Ok: y\r\n"}, "CR"),
        ({"POSTHASTE_FORGE_HEAD": "not a header field\n"}, "no colon"),
        ({"POSTHASTE_FORGE_HEAD": "X: y\n\nX: z\n"}, "empty line"),
        ({"POSTHASTE_FORGE_HEAD": "X: y"}, "no line end"),
        ({"POSTHASTE_FORGE_HEADLEN": "20000"}, "too long"),
    ]
    with Setup() as s:
        for env, what in cases:
            with forge_daemon(s.conf(), env=env) as d:
                marker = unique_marker("prepend-refused")
                r = end_of_data(d.port, marker)
                assert r.code == 451, "%s: %s" % (what, r)
                wait_log(d, r"smtp worker \d+ claims \d+ bytes of added "
                         r"headers", timeout=10)
                assert d.proc.poll() is None, "%s: daemon exited" % what
                left = [n for n in os.listdir(os.path.join(
                    d.tmp, "spool", "queue")) if not n.startswith(".")]
                assert left == [], "%s: queued: %s" % (what, left)
        # the same build without a claim delivers
        with forge_daemon(s.conf(), env={}) as d:
            marker = unique_marker("prepend-plain")
            r = end_of_data(d.port, marker)
            assert r.code == 250, r
            data = wait_maildir_key(("Subject: %s\n" % marker).encode())
            assert b"X-Ok" not in data
