"""
The sendmail(8) interface: local submission through the control socket
(the daemon knows the user from SO_PEERCRED), run as a real unprivileged
user.  -t with Bcc removal, -f policy, -F, -i/-oi, -bs, -bp/mailq, -q,
the headers added when missing, dead.letter on failure, and the offline
directory: a message submitted while the daemon is down is picked up and
delivered when it starts.
"""

import os
import shutil
import signal
import subprocess
import tempfile

from fixture import (as_user, TEST_ROOT, TEST_USER1, TEST_USER2, Daemon, binary,
                     maildir_files, poll, read_file,
                     reset_mbox, mbox_path, unique_marker, user,
                     wait_stable_file)

TIMEOUT = 90
MAILNAME = "example.test"
RCPT1 = "%s@example.test" % TEST_USER1
RCPT2 = "%s@mbox.test" % TEST_USER2
CONF_EXTRA = 'mailname "%s"\n' % MAILNAME

EX_USAGE, EX_NOUSER, EX_TEMPFAIL, EX_NOPERM = 64, 67, 75, 77




def sendmail(args, data=b"", username=None, argv0=None, timeout=30):
    """Run BINDIR/sendmail (as username, if given); CompletedProcess
    with .out and .err as text."""
    env = {"PATH": "/usr/bin:/bin"}
    # the sanitizer build's settings (no leak check: its ptrace-based
    # stop-the-world does not mix with a process that changed its uid)
    for key in ("ASAN_OPTIONS", "UBSAN_OPTIONS"):
        if key in os.environ:
            env[key] = os.environ[key]
    cwd = "/"
    if username:
        env["HOME"] = user(username).pw_dir
    exe = binary("sendmail")
    argv = [argv0 or exe] + list(args)
    r = subprocess.run(argv, executable=exe, input=data,
                       stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                       env=env, cwd=cwd, timeout=timeout,
                       preexec_fn=as_user(username) if username else None)
    r.out = r.stdout.decode("utf-8", "replace")
    r.err = r.stderr.decode("utf-8", "replace")
    return r


def delivered(marker, username=TEST_USER1, count=1):
    """The messages in ~username/Maildir/new that contain marker (other
    tests may deliver to the same user at the same time), once there
    are count of them."""
    marker = marker.encode() if isinstance(marker, str) else marker

    def found():
        hits = []
        for path in maildir_files(username):
            try:
                data = read_file(path)
            except FileNotFoundError:
                continue
            if marker in data:
                hits.append(data)
        return hits if len(hits) >= count else None
    hits = poll(found) or []
    assert len(hits) == count, "%d message(s) with %r in %s's Maildir, " \
        "expected %d" % (len(hits), marker, username, count)
    return hits


def header_block(msg):
    return msg.split(b"\n\n", 1)[0].decode("utf-8", "replace")


def headers_named(msg, name):
    return [ln for ln in header_block(msg).split("\n")
            if ln.lower().startswith(name.lower() + ":")]


def dead_letter_path(username):
    return os.path.join(user(username).pw_dir, "dead.letter")


def remove_dead_letter(username):
    try:
        os.unlink(dead_letter_path(username))
    except FileNotFoundError:
        pass


# --------------------------------------------------------------------------

def test_headers_added_and_sender_is_the_user():
    marker = unique_marker("hdr")
    with Daemon(conf_extra=CONF_EXTRA) as d:
        r = sendmail(["-C", d.conf_path, "-F", "Jane Q. Tester", RCPT1],
                     ("Subject: %s\n\nbody %s\n" % (marker, marker))
                     .encode(), username=TEST_USER2)
        assert r.returncode == 0, "sendmail failed: %s" % r.err
        msg, = delivered(marker)
    sender = "%s@%s" % (TEST_USER2, MAILNAME)
    assert msg.startswith(("Return-Path: <%s>\n" % sender).encode()), \
        "envelope sender is not the user: %r" % msg[:200]
    assert headers_named(msg, "From") == \
        ['From: "Jane Q. Tester" <%s>' % sender], header_block(msg)
    assert len(headers_named(msg, "Date")) == 1, header_block(msg)
    mid = headers_named(msg, "Message-ID")
    assert len(mid) == 1 and mid[0].endswith("@%s>" % MAILNAME), \
        header_block(msg)
    assert ("body %s\n" % marker).encode() in msg


def test_existing_headers_kept():
    marker = unique_marker("keep")
    text = ("From: Someone <someone@example.test>\n"
            "Date: Thu, 01 Jan 2026 12:00:00 +0000\n"
            "Message-ID: <%s@example.test>\n"
            "Subject: kept\n\nbody\n" % marker)
    with Daemon(conf_extra=CONF_EXTRA) as d:
        r = sendmail(["-C", d.conf_path, RCPT1], text.encode(),
                     username=TEST_USER2)
        assert r.returncode == 0, r.err
        msg, = delivered(marker)
    assert msg.endswith(text.encode()), msg


def test_t_extracts_recipients_and_removes_bcc():
    reset_mbox(TEST_USER2)
    marker = unique_marker("bcc")
    text = ("To: Tester One <%s>\n"
            "Cc: undisclosed-recipients:;\n"
            "Bcc: %s,\n (secret) %s\n"
            "Subject: %s\n\nhello\n" % (RCPT1, RCPT2, RCPT1, marker))
    with Daemon(conf_extra=CONF_EXTRA) as d:
        r = sendmail(["-C", d.conf_path, "-t"], text.encode(),
                     username=TEST_USER1)
        assert r.returncode == 0, r.err
        msg, = delivered(marker)
        box = wait_stable_file(mbox_path(TEST_USER2), marker.encode())
    for data in (msg, box):
        assert b"Bcc" not in data and b"secret" not in data, \
            "Bcc header delivered: %r" % data
        assert ("To: Tester One <%s>" % RCPT1).encode() in data


def test_no_recipients_is_a_usage_error():
    with Daemon(conf_extra=CONF_EXTRA) as d:
        r = sendmail(["-C", d.conf_path], b"Subject: x\n\nx\n",
                     username=TEST_USER1)
        assert r.returncode == EX_USAGE, (r.returncode, r.err)
        r = sendmail(["-C", d.conf_path, "-t"], b"Subject: x\n\nx\n",
                     username=TEST_USER1)
        assert r.returncode == EX_USAGE, (r.returncode, r.err)


def test_f_sender_policy():
    marker = unique_marker("fpol")
    with Daemon(conf_extra=CONF_EXTRA) as d:
        # root may choose any sender
        r = sendmail(["-C", d.conf_path, "-f", "robot@elsewhere.test",
                      RCPT1], ("Subject: 1 %s\n\n1\n" % marker).encode())
        assert r.returncode == 0, r.err
        # a user may give their own address
        r = sendmail(["-C", d.conf_path, "-f",
                      "%s@%s" % (TEST_USER2, MAILNAME), RCPT1],
                     ("Subject: 2 %s\n\n2\n" % marker).encode(),
                     username=TEST_USER2)
        assert r.returncode == 0, r.err
        # but not somebody else's: warned, and their own is used
        r = sendmail(["-C", d.conf_path, "-r", "boss@example.test", RCPT1],
                     ("Subject: 3 %s\n\n3\n" % marker).encode(),
                     username=TEST_USER2)
        assert r.returncode == 0, r.err
        assert "ignored" in r.err, r.err
        msgs = delivered(marker, count=3)
    senders = sorted(m.split(b"\n", 1)[0].decode() for m in msgs)
    own = "Return-Path: <%s@%s>" % (TEST_USER2, MAILNAME)
    assert senders == sorted(["Return-Path: <robot@elsewhere.test>", own,
                              own]), senders


def test_dot_ends_input_unless_i():
    m1, m2, m3 = (unique_marker("dot%d" % i) for i in range(3))
    body = b"Subject: @\n\nline one\n.\nline three\n"
    with Daemon(conf_extra=CONF_EXTRA) as d:
        r = sendmail(["-C", d.conf_path, RCPT1],
                     body.replace(b"@", m1.encode()), username=TEST_USER2)
        assert r.returncode == 0, r.err
        first, = delivered(m1)
        r = sendmail(["-C", d.conf_path, "-oi", RCPT1],
                     body.replace(b"@", m2.encode()), username=TEST_USER2)
        assert r.returncode == 0, r.err
        second, = delivered(m2)
        r = sendmail(["-C", d.conf_path, "-i", RCPT1],
                     ("Subject: %s\r\n\r\n.\r\n..x\r\n" % m3).encode(),
                     username=TEST_USER2)
        assert r.returncode == 0, r.err
        third, = delivered(m3)
    assert first.endswith(b"\nline one\n"), first
    assert second.endswith(b"\nline one\n.\nline three\n"), second
    assert third.endswith(b"\n.\n..x\n"), third


def test_bs_relays_smtp():
    marker = unique_marker("bs")
    dialog = ("EHLO client.example.test\r\n"
              "MAIL FROM:<%s@%s>\r\n"
              "RCPT TO:<%s>\r\n"
              "DATA\r\n"
              "Subject: %s\r\n\r\nvia -bs\r\n.\r\n"
              "QUIT\r\n" % (TEST_USER2, MAILNAME, RCPT1, marker))
    with Daemon(conf_extra=CONF_EXTRA) as d:
        r = sendmail(["-C", d.conf_path, "-bs"], dialog.encode(),
                     username=TEST_USER2)
        assert r.returncode == 0, r.err
        codes = [ln[:3] for ln in r.out.split("\r\n")
                 if ln[:3].isdigit() and ln[3:4] != "-"]
        assert codes == ["220", "250", "250", "250", "354", "250", "221"], \
            r.out
        msg, = delivered(marker)


def test_mailq_and_q():
    with Daemon(conf_extra=CONF_EXTRA) as d:
        r = sendmail(["-C", d.conf_path], argv0="mailq",
                     username=TEST_USER1)
        assert r.returncode == 0, r.err
        assert "Mail queue is empty" in r.out, r.out
        # hold local deliveries so that the message stays queued
        subprocess.run([binary("smtpctl"), "-s", d.socket_path, "pause",
                        "mda"], check=True, stdout=subprocess.DEVNULL)
        r = sendmail(["-C", d.conf_path, RCPT1], b"Subject: q\n\nq\n",
                     username=TEST_USER2)
        assert r.returncode == 0, r.err
        r = sendmail(["-C", d.conf_path, "-bp"], username=TEST_USER1)
        assert r.returncode == 0, r.err
        assert RCPT1 not in r.out, "another user's mail listed: %s" % r.out
        r = sendmail(["-C", d.conf_path, "-bp"])	# root sees all
        assert r.returncode == 0, r.err
        assert ("%s@%s -> %s" % (TEST_USER2, MAILNAME, RCPT1)) in r.out, \
            r.out
        r = sendmail(["-C", d.conf_path, "-q"], username=TEST_USER1)
        assert r.returncode == EX_NOPERM, (r.returncode, r.err)
        r = sendmail(["-C", d.conf_path, "-q"])
        assert r.returncode == 0, r.err
        subprocess.run([binary("smtpctl"), "-s", d.socket_path, "resume",
                        "mda"], check=True, stdout=subprocess.DEVNULL)


def test_common_options_silent_and_dsn_accepted():
    """What cron, mail(1), mutt and friends pass by habit is accepted
    without a word (issue 15: every cron mail printed warnings); an
    option that is understood but not done still warns, an unknown one
    is a usage error."""
    marker = unique_marker("opts")
    habitual = ["-B8BITMIME", "-B", "7BIT", "-odi", "-odb", "-oem",
                "-oee", "-om", "-oi", "-ep", "-em", "-m", "-n", "-G", "-U",
                "-L", "cron", "-h", "10", "-Am", "-O", "DeliveryMode=b",
                "-O", "ErrorMode=m", "-o7", "-o8"]
    with Daemon(conf_extra=CONF_EXTRA) as d:
        r = sendmail(["-C", d.conf_path] + habitual +
                     ["-N", "failure,delay", "-R", "hdrs", "-V", "env+id=1",
                      "-v", "--", RCPT1],
                     ("Subject: %s\n\nx\n" % marker).encode(),
                     username=TEST_USER2)
        assert r.returncode == 0, r.err
        assert "ignored" not in r.err and "unknown" not in r.err, r.err
        assert "NOTIFY=FAILURE,DELAY" in r.err, r.err
        assert "RET=HDRS" in r.err and "ENVID=env+2Bid+3D1" in r.err, r.err
        delivered(marker)
        # quiet without -v: nothing at all on stderr
        marker = unique_marker("quiet")
        r = sendmail(["-C", d.conf_path] + habitual + ["-t"],
                     ("To: %s\nSubject: %s\n\nx\n" % (RCPT1, marker))
                     .encode(), username=TEST_USER2)
        assert r.returncode == 0 and r.err == "", r.err
        delivered(marker)
        # understood, not done: said so, and the mail still goes
        marker = unique_marker("warned")
        r = sendmail(["-C", d.conf_path, "-X", "/tmp/traffic", "-oQ/tmp",
                      "-B", "BINARYMIME", RCPT1],
                     ("Subject: %s\n\nx\n" % marker).encode(),
                     username=TEST_USER2)
        assert r.returncode == 0, r.err
        assert "-X /tmp/traffic ignored" in r.err and \
            "-oQ/tmp ignored" in r.err and "-B BINARYMIME ignored" in \
            r.err, r.err
        delivered(marker)
        r = sendmail(["-C", d.conf_path, "-N", "sometimes", RCPT1], b"x\n",
                     username=TEST_USER2)
        assert r.returncode == EX_USAGE, r.err
        r = sendmail(["-C", d.conf_path, "-bt"], b"", username=TEST_USER2)
        assert r.returncode == EX_USAGE, r.err
        r = sendmail(["-C", d.conf_path, "-Z", RCPT1], b"x\n",
                     username=TEST_USER2)
        assert r.returncode == EX_USAGE and "unknown option -Z" in r.err, \
            r.err


def test_t_qualifies_header_addresses():
    """sendmail -t: unqualified addresses in the header get the mail
    name, as the envelope's do (issue 15); qualified ones, groups,
    display names and comments stay as they were."""
    marker = unique_marker("qual")
    u1, u2 = TEST_USER1, TEST_USER2
    text = ("From: Sender Name <%(u2)s>\n"
            "Reply-To: %(u2)s (the sender)\n"
            "To: %(u1)s, \"Tester One\" <%(u1)s>,\n"
            "\t%(u1)s@%(mn)s\n"
            "Cc: undisclosed-recipients:;\n"
            "Sender: %(u2)s\n"
            "X-Other: %(u1)s\n"
            "Subject: %(m)s\n\nTo: %(u1)s\n"
            % {"u1": u1, "u2": u2, "mn": MAILNAME, "m": marker})
    with Daemon(conf_extra=CONF_EXTRA) as d:
        r = sendmail(["-C", d.conf_path, "-t"], text.encode(),
                     username=TEST_USER2)
        assert r.returncode == 0, r.err
        msg, = delivered(marker)
    q1, q2 = "%s@%s" % (u1, MAILNAME), "%s@%s" % (u2, MAILNAME)
    hdr = header_block(msg)
    assert "\nFrom: Sender Name <%s>\n" % q2 in hdr, hdr
    assert "\nReply-To: %s (the sender)\n" % q2 in hdr, hdr
    assert "\nTo: %s, \"Tester One\" <%s>,\n\t%s\n" % (q1, q1, q1) in hdr, \
        hdr
    assert "\nCc: undisclosed-recipients:;\n" in hdr, hdr
    assert "\nSender: %s\n" % q2 in hdr, hdr
    # not an address field, and not the body
    assert "\nX-Other: %s\n" % u1 in hdr, hdr
    assert msg.endswith(("\n\nTo: %s\n" % u1).encode()), msg


def test_refused_recipient_goes_to_dead_letter():
    remove_dead_letter(TEST_USER2)
    marker = unique_marker("dead")
    with Daemon(conf_extra=CONF_EXTRA) as d:
        r = sendmail(["-C", d.conf_path, "nosuchuser@example.test"],
                     ("Subject: %s\n\nFrom here\n" % marker).encode(),
                     username=TEST_USER2)
    assert r.returncode == EX_NOUSER, (r.returncode, r.err)
    assert "nosuchuser" in r.err, r.err
    path = dead_letter_path(TEST_USER2)
    st = os.lstat(path)
    assert st.st_uid == user(TEST_USER2).pw_uid and \
        (st.st_mode & 0o777) == 0o600, "dead.letter owner/mode"
    data = read_file(path)
    assert data.startswith(b"From ") and marker.encode() in data, data
    assert b"\n>From here\n" in data, "mboxrd quoting missing: %r" % data
    remove_dead_letter(TEST_USER2)


def test_no_daemon_and_no_spool_goes_to_dead_letter():
    remove_dead_letter(TEST_USER1)
    tmp = tempfile.mkdtemp(prefix="admin-nodaemon.", dir=TEST_ROOT)
    os.chmod(tmp, 0o755)
    try:
        conf = os.path.join(tmp, "smtpd.conf")
        with open(conf, "w") as f:
            f.write('spool "%s/nospool"\nsocket "%s/none.sock"\n%s'
                    % (tmp, tmp, CONF_EXTRA))
        marker = unique_marker("nodaemon")
        r = sendmail(["-C", conf, RCPT1],
                     ("Subject: %s\n\nx\n" % marker).encode(),
                     username=TEST_USER1)
        assert r.returncode == EX_TEMPFAIL, (r.returncode, r.err)
        assert marker.encode() in read_file(dead_letter_path(TEST_USER1))
    finally:
        shutil.rmtree(tmp, ignore_errors=True)
        remove_dead_letter(TEST_USER1)


def test_offline_message_delivered_at_start():
    """Daemon down: the message goes to SPOOL/offline as a file of the
    user; the next start submits it as that user and removes it.  A file
    that is a symlink, has two links or is torn is left alone."""
    base = tempfile.mkdtemp(prefix="admin-offline.", dir=TEST_ROOT)
    os.chmod(base, 0o755)
    conf = ('spool "%s/spool"\nsocket "%s/smtpd.sock"\n' % (base, base)) + \
        "smtp workers 1\nlisten on 127.0.0.1 port @PORT@\n" + CONF_EXTRA + \
        'action "local" maildir "~/Maildir"\n' \
        'match from any for domain "example.test" action "local"\n'
    conf_path = os.path.join(base, "smtpd.conf")
    with open(conf_path, "w") as f:
        f.write(conf.replace("@PORT@", "25"))
    offline = os.path.join(base, "spool", "offline")
    marker = unique_marker("offline")
    try:
        with Daemon(conf=conf):
            pass			# creates the spool, then stops
        st = os.stat(offline)
        assert (st.st_mode & 0o7777) == 0o1777, \
            "offline directory mode %04o, expected 1777" % \
            (st.st_mode & 0o7777)
        r = sendmail(["-C", conf_path, RCPT1],
                     ("Subject: %s\n\noffline\n" % marker).encode(),
                     username=TEST_USER2)
        assert r.returncode == 0, r.err
        files = os.listdir(offline)
        assert len(files) == 1, files
        path = os.path.join(offline, files[0])
        st = os.lstat(path)
        assert st.st_uid == user(TEST_USER2).pw_uid and \
            (st.st_mode & 0o777) == 0o600, "offline file owner/mode"
        # things the pick-up must not touch
        torn = os.path.join(offline, "0.torn")
        with open(torn, "wb") as f:
            f.write(read_file(path)[:-4])
        os.chown(torn, user(TEST_USER1).pw_uid, user(TEST_USER1).pw_gid)
        os.symlink(path, os.path.join(offline, "0.symlink"))
        with Daemon(conf=conf) as d:
            msg, = delivered(marker)
            assert poll(lambda: not os.path.exists(path)), \
                "offline file not removed"
            assert os.path.exists(torn), "torn file was removed"
            assert "offline" in d.log(), d.log_tail()
        assert msg.startswith(("Return-Path: <%s@%s>\n"
                               % (TEST_USER2, MAILNAME)).encode()), msg
        assert marker.encode() in msg
    finally:
        shutil.rmtree(base, ignore_errors=True)
