"""
test_delivery_program.py -- delivery to commands (mda "command" actions),
the Delivered-To loop check (issue 6).

A command runs as the recipient user with a fixed environment, gets the
message on stdin after Return-Path and Delivered-To, and its exit status
decides: 0 delivered, 75 deferred, anything else bounced with the
command's output in the bounce.
"""

import os

import fixture
from fixture import Daemon, poll, smtp_dialog, queue_id, unique_marker
from test_mta_relay import wait_log

TIMEOUT = 60

CONF = """\
spool "@TMP@/spool"
socket "@TMP@/smtpd.sock"
smtp workers 1
queue retry-local 1s
listen on 127.0.0.1 port @PORT@
action "local" maildir "~/Maildir"
action "prog_ok" mda "cat > $HOME/prog.msg; env > $HOME/prog.env; cut -d' ' -f41 /proc/self/stat > $HOME/prog.sched; echo done"
action "prog_temp" mda "echo busy now; exit 75"
action "prog_fail" mda "echo no way >&2; exit 1"
match from any for domain "example.test" action "local"
match from any for domain "ok.test" action "prog_ok"
match from any for domain "temp.test" action "prog_temp"
match from any for domain "fail.test" action "prog_fail"
"""


def send(port, sender, rcpt, body):
    replies = smtp_dialog(port, ["EHLO client.test",
                                 "MAIL FROM:<%s>" % sender,
                                 "RCPT TO:<%s>" % rcpt, "DATA", body,
                                 "QUIT"])
    assert [r.code for r in replies[:5]] == [220, 250, 250, 250, 354], \
        replies
    return queue_id(replies[5])


def home(name):
    return fixture.user(name).pw_dir


def clean(name):
    for f in ("prog.msg", "prog.env", "prog.sched"):
        try:
            os.unlink(os.path.join(home(name), f))
        except FileNotFoundError:
            pass


def test_program_exit_0_delivers():
    fixture.setup_system()
    u = fixture.TEST_USER1
    clean(u)
    marker = unique_marker("prog")
    with Daemon(conf=CONF) as d:
        rcpt = "%s+box@ok.test" % u
        send(d.port, "s@client.test", rcpt,
             "Subject: %s\r\n\r\nbody\r\n.\r\n" % marker)
        wait_log(d, r"to=<%s>.*dsn=2\.0\.0, status=sent" % rcpt.replace(
            "+", r"\+"))
        msg = fixture.read_file(os.path.join(home(u), "prog.msg"))
        assert msg.startswith(b"Return-Path: <s@client.test>\n"
                              b"Delivered-To: " + rcpt.encode() + b"\n")
        assert marker.encode() in msg
        env = dict(ln.split("=", 1) for ln in fixture.read_file(
            os.path.join(home(u), "prog.env")).decode().splitlines()
            if "=" in ln)
        assert env["USER"] == u and env["LOGNAME"] == u
        assert env["HOME"] == home(u)
        assert env["PATH"] == "/usr/bin:/bin"
        assert env["SENDER"] == "s@client.test"
        assert env["RECIPIENT"] == rcpt
        assert env["EXTENSION"] == "box"
        assert env["DOMAIN"] == "ok.test"
        assert env["LOCAL"] == "%s+box" % u
        # nothing of the daemon's environment leaks through
        assert "ASAN_OPTIONS" not in env and "SSL_CERT_FILE" not in env
        st = os.stat(os.path.join(home(u), "prog.msg"))
        assert st.st_uid == fixture.user(u).pw_uid
        # the daemon runs SCHED_BATCH; a user's command the default class
        policy = fixture.read_file(os.path.join(home(u), "prog.sched"))
        assert int(policy) == os.SCHED_OTHER, policy


def test_program_exit_75_defers():
    fixture.setup_system()
    with Daemon(conf=CONF) as d:
        send(d.port, "s@client.test", "%s@temp.test" % fixture.TEST_USER1,
             "Subject: t\r\n\r\nbody\r\n.\r\n")
        wait_log(d, r"@temp.test>.*dsn=4\.3\.0, status=deferred.*exited "
                 r"with status 75.*busy now", count=2, timeout=30)


def test_program_exit_1_bounces_with_output():
    fixture.setup_system()
    fixture.reset_maildir(fixture.TEST_USER2)
    with Daemon(conf=CONF) as d:
        send(d.port, "%s@example.test" % fixture.TEST_USER2,
             "%s@fail.test" % fixture.TEST_USER1,
             "Subject: f\r\n\r\nbody\r\n.\r\n")
        wait_log(d, r"@fail.test>.*dsn=5\.3\.0, status=bounced.*status 1: "
                 r"no way")
        files = fixture.wait_maildir(fixture.TEST_USER2, 1, timeout=20)
        assert b"no way" in fixture.read_file(files[0])


def test_delivered_to_loop_refused():
    """A message that already went through this mailbox bounces with
    5.4.6 instead of being stored again."""
    fixture.setup_system()
    u = fixture.TEST_USER1
    fixture.reset_maildir(u)
    with Daemon(conf=CONF) as d:
        rcpt = "%s@example.test" % u
        send(d.port, "", rcpt, "Delivered-To: %s\r\nSubject: loop\r\n\r\n"
             "body\r\n.\r\n" % rcpt.upper())
        wait_log(d, r"to=<%s>.*dsn=5\.4\.6, status=bounced" % rcpt)
        assert fixture.maildir_files(u) == []
