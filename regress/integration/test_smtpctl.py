"""
smtpctl against the real daemon: queue inspection and control, pausing
and resuming, permissions (SO_PEERCRED), and a control client that sends
garbage.
"""

import json
import os
import socket
import subprocess
import threading
import time

import fixture
from fixture import (TEST_USER2, Daemon, SMTPConnection, binary,
                     ensure_test_user, maildir_files, poll, reset_maildir,
                     unique_marker, wait_maildir)

TIMEOUT = 90
# users of their own: other test runs on the machine reset phtest1's mail
TEST_USER1 = "phctl"
ensure_test_user(TEST_USER1)


def ctl(d, *args, user=None, check=True):
    return fixture.smtpctl(d, *args, user=user, check=check, text=False)


def send(d, rcpt, marker):
    with SMTPConnection(d.port) as c:
        c.command("EHLO ctl.test")
        c.command("MAIL FROM:<sender@example.test>")
        assert c.command("RCPT TO:<%s>" % rcpt).code == 250
        assert c.command("DATA").code == 354
        c.send(("Subject: %s\r\n\r\nbody\r\n.\r\n" % marker).encode())
        r = c.reply()
        assert r.code == 250, r
        c.command("QUIT")
        return r.text.split()[-1]


def queue_json(d, user=None):
    out = ctl(d, "show", "queue", "-j", user=user).stdout.decode()
    return [json.loads(line) for line in out.splitlines() if line.strip()]


def test_pause_mda_show_and_resume():
    reset_maildir(TEST_USER1)
    with Daemon() as d:
        ctl(d, "pause", "mda")
        marker = unique_marker("ctl")
        msgid = send(d, "%s@example.test" % TEST_USER1, marker)
        time.sleep(0.5)
        assert maildir_files(TEST_USER1) == [], "delivered while paused"
        q = queue_json(d)
        assert len(q) == 1 and q[0]["id"].startswith(msgid), q
        assert q[0]["recipient"] == "%s@example.test" % TEST_USER1
        assert q[0]["sender"] == "sender@example.test"
        text = ctl(d, "show", "queue").stdout.decode()
        assert msgid in text and "pending" in text, text
        body = ctl(d, "show", "message", msgid).stdout.decode()
        assert "Subject: %s" % marker in body, body
        env = ctl(d, "show", "envelope", q[0]["id"]).stdout.decode()
        assert env.startswith("version: 1\n") and "end: ok" in env, env
        status = ctl(d, "show", "status").stdout.decode()
        assert "mda: paused" in status, status
        ctl(d, "resume", "mda")
        wait_maildir(TEST_USER1, 1)
        deadline = time.monotonic() + 10
        while queue_json(d):
            assert time.monotonic() < deadline, "queue not emptied"
            time.sleep(0.1)
        stats = ctl(d, "show", "stats").stdout.decode()
        assert "delivery.ok=1" in stats, stats


def test_remove_and_pause_envelope():
    reset_maildir(TEST_USER1)
    with Daemon() as d:
        ctl(d, "pause", "mda")
        a = send(d, "%s@example.test" % TEST_USER1, unique_marker("a"))
        b = send(d, "%s@example.test" % TEST_USER1, unique_marker("b"))
        ctl(d, "remove", a)
        ids = [e["id"] for e in queue_json(d)]
        assert len(ids) == 1 and ids[0].startswith(b), ids
        ctl(d, "pause", "envelope", b)
        ctl(d, "resume", "mda")
        time.sleep(0.5)
        assert maildir_files(TEST_USER1) == [], "paused envelope delivered"
        assert queue_json(d)[0]["state"] == "paused"
        ctl(d, "resume", "envelope", b)
        ctl(d, "schedule", "all")
        wait_maildir(TEST_USER1, 1)
        p = ctl(d, "remove", "0123abcd", check=False)
        assert p.returncode != 0 and b"no such" in p.stderr


def test_pause_smtp():
    with Daemon() as d:
        ctl(d, "pause", "smtp")
        time.sleep(0.3)
        s = socket.create_connection(("127.0.0.1", d.port), 5)
        s.settimeout(1.0)
        try:
            got = s.recv(100)
        except socket.timeout:
            got = b""
        assert got == b"", "greeted while smtp is paused: %r" % got
        ctl(d, "resume", "smtp")
        s.settimeout(10)
        assert s.recv(100).startswith(b"220"), "no greeting after resume"
        s.close()


def test_permissions_and_mailq_for_users():
    """A user sees only the mail that user submitted; changing the queue
    takes root."""
    with Daemon() as d:
        ctl(d, "pause", "mda")
        os.chmod(d.tmp, 0o755)
        # root's message, and one submitted by phtest2 with sendmail
        send(d, "%s@example.test" % TEST_USER1, unique_marker("root"))
        conf = d.conf_path
        p = subprocess.run(
            ["setpriv", "--reuid", TEST_USER2, "--regid", TEST_USER2,
             "--init-groups", "--", binary("sendmail"), "-C", conf,
             "%s@example.test" % TEST_USER1],
            input=b"Subject: from a user\n\nhello\n", capture_output=True,
            timeout=30)
        assert p.returncode == 0, p.stderr
        assert len(queue_json(d)) == 2
        mine = queue_json(d, user=TEST_USER2)
        assert len(mine) == 1, "user sees: %r" % mine
        others = queue_json(d, user=TEST_USER1)
        assert others == [], "user sees other users' mail: %r" % others
        p = ctl(d, "remove", "all", user=TEST_USER2, check=False)
        assert p.returncode != 0 and b"permission denied" in p.stderr
        p = ctl(d, "pause", "mda", user=TEST_USER2, check=False)
        assert p.returncode != 0
        assert len(queue_json(d)) == 2


def test_garbage_client_dropped():
    with Daemon() as d:
        for junk in (b"\xff" * 64, b"\x01\x00\x00\x00" + b"\xff" * 16,
                     os.urandom(300)):
            s = socket.socket(socket.AF_UNIX)
            s.connect(d.socket_path)
            s.sendall(junk)
            s.settimeout(5)
            try:
                s.recv(100)
            except (socket.timeout, ConnectionResetError):
                pass
            s.close()
        time.sleep(0.3)
        assert d.running(), "a garbage control client killed the daemon"
        assert "mda: running" in ctl(d, "show", "status").stdout.decode()


def test_log_verbose_and_usage():
    with Daemon() as d:
        ctl(d, "log", "brief")
        ctl(d, "log", "verbose")
        p = ctl(d, "frobnicate", check=False)
        assert p.returncode == 64 and b"usage" in p.stderr


def test_update_table():
    conf = """\
spool "@TMP@/spool"
socket "@TMP@/smtpd.sock"
smtp workers 1
listen on 127.0.0.1 port @PORT@
table doms file:@TMP@/doms
action "local" maildir "~/Maildir"
match from any for domain <doms> action "local"
"""
    with Daemon(conf=conf) as d:
        with open(os.path.join(d.tmp, "doms"), "w") as f:
            f.write("example.test\nnew.test\n")
        ctl(d, "update", "table", "doms")
        with SMTPConnection(d.port) as c:
            c.command("EHLO t.test")
            c.command("MAIL FROM:<a@example.test>")
            r = c.command("RCPT TO:<%s@new.test>" % TEST_USER1)
            assert r.code == 250, r
        p = ctl(d, "update", "table", "nosuch", check=False)
        assert p.returncode != 0 and b"no such table" in p.stderr
        assert "table doms reloaded" in d.log()


# --------------------------------------------------------------------------
# show queue -j (issue 15 item 11), resume counts and remove in flight
# (item 13)

def spool_records(d):
    """What is left in the spool's queue/ (not its .format and .key)."""
    qdir = os.path.join(d.spool, "queue")
    return sorted(n for n in os.listdir(qdir) if not n.startswith("."))


def test_show_queue_json_escapes_every_field():
    """A sender with a quoted local part and a recipient with a backslash
    (both legal, RFC 5321 4.1.2) give JSON that python's json module
    reads back unchanged, with size, arrival and next try; show stats -j
    is one object."""
    conf_extra = ('action "relay" relay host "smtp://127.0.0.1:9"\n'
                  'match from any for domain "remote.test" action "relay"\n')
    with Daemon(conf_extra=conf_extra) as d:
        ctl(d, "pause", "mta")
        before = int(time.time())
        body = "Subject: %s\r\n\r\nbody\r\n" % unique_marker("json")
        with SMTPConnection(d.port) as c:
            c.command("EHLO ctl.test")
            r = c.command('MAIL FROM:<"john doe"@example.test>')
            assert r.code == 250, r
            r = c.command('RCPT TO:<"back\\\\slash"@remote.test>')
            assert r.code == 250, r
            assert c.command("DATA").code == 354
            c.send((body + ".\r\n").encode())
            r = c.reply()
            assert r.code == 250, r
            c.command("QUIT")
        after = int(time.time())
        out = ctl(d, "show", "queue", "-j").stdout.decode()
        lines = [ln for ln in out.splitlines() if ln.strip()]
        assert len(lines) == 1, out
        try:
            q = json.loads(lines[0])
        except ValueError as e:
            raise AssertionError("invalid JSON from show queue -j: %s: %r"
                                 % (e, lines[0]))
        assert q["sender"] == '"john doe"@example.test', q
        assert q["recipient"] == '"back\\\\slash"@remote.test', q
        assert q["state"] == "pending", q
        assert q["id"].startswith(q["message"]) and len(q["id"]) == 16, q
        assert isinstance(q["size"], int) and q["size"] >= len(body), q
        assert before <= q["arrival"] <= after, (before, q, after)
        assert isinstance(q["next_try"], int) and \
            q["next_try"] >= q["arrival"], q
        assert q["tries"] == 0 and q["last_try"] is None, q
        assert q["error"] == "", q
        text = ctl(d, "show", "queue").stdout.decode()
        assert '"john doe"@example.test -> "back\\\\slash"@remote.test' \
            in text and "size=%d" % q["size"] in text, text
        stats = json.loads(ctl(d, "show", "stats", "-j").stdout.decode())
        assert stats["queue.size"] == 1, stats
        p = ctl(d, "show", "queue", "-x", check=False)
        assert p.returncode == 64, p


def test_resume_envelope_all_counts_the_resumed():
    reset_maildir(TEST_USER1)
    with Daemon() as d:
        ctl(d, "pause", "mda")
        a = send(d, "%s@example.test" % TEST_USER1, unique_marker("a"))
        send(d, "%s@example.test" % TEST_USER1, unique_marker("b"))
        send(d, "%s@example.test" % TEST_USER1, unique_marker("c"))
        out = ctl(d, "pause", "envelope", a).stdout.decode()
        assert "1 envelopes paused" in out, out
        out = ctl(d, "pause", "envelope", "all").stdout.decode()
        assert "2 envelopes paused" in out, out
        out = ctl(d, "resume", "envelope", a).stdout.decode()
        assert "1 envelopes resumed" in out, out
        out = ctl(d, "resume", "envelope", "all").stdout.decode()
        assert "2 envelopes resumed" in out, out
        out = ctl(d, "resume", "envelope", "all").stdout.decode()
        assert "0 envelopes resumed" in out, out


def _remove_in_flight(final_reply):
    """A remote delivery held at the end of data by a slow peer; smtpctl
    remove says it is in flight; when the peer then answers final_reply,
    the envelope goes: no retry, no bounce, nothing left in the spool."""
    from test_mta_relay import FakeSMTP, relay_conf, send_mail, message, \
        wait_log
    arrived = threading.Event()
    release = threading.Event()

    def data_reply(txn):
        arrived.set()
        release.wait(30)
        return final_reply

    with FakeSMTP(data_reply=data_reply) as srv, \
            Daemon(conf=relay_conf(srv.port)) as d:
        send_mail(d.port, ["held@remote.test"],
                  message(unique_marker("inflight")))
        assert arrived.wait(20), "the message never reached the peer"
        q = queue_json(d)
        assert len(q) == 1 and q[0]["state"] == "inflight", q
        p = ctl(d, "remove", q[0]["id"], check=False)
        assert p.returncode == 0, p.stderr
        assert b"in flight" in p.stdout, p.stdout
        q = queue_json(d)
        assert len(q) == 1 and q[0]["state"] == "removing", q
        # removed from the spool now: a restart would not bring it back
        assert spool_records(d) == [], spool_records(d)
        release.set()
        wait_log(d, r"%s: removed by smtpctl$" % q[0]["id"])
        # retry-remote is 1s: a re-queued envelope would be tried again,
        # a bounce would go to sender@client.test through the same peer
        time.sleep(3)
        assert queue_json(d) == []
        assert len(srv.transactions()) == 1, srv.transactions()
        assert spool_records(d) == [], spool_records(d)
        assert "status=deferred" not in d.log()
        assert "status=bounced" not in d.log()


def test_remove_in_flight_tempfail_not_retried():
    _remove_in_flight("451 4.3.0 try again later")


def test_remove_in_flight_permfail_not_bounced():
    _remove_in_flight("550 5.1.1 no such user")


def test_remove_in_flight_local_delivery():
    """The same for a local delivery (the parent's mda): a command that
    waits for the test, then fails temporarily; removed while it runs,
    the envelope is not tried again."""
    pw = ensure_test_user(TEST_USER1)
    attempts = os.path.join(pw.pw_dir, "slow.attempts")
    try:
        os.unlink(attempts)
    except FileNotFoundError:
        pass
    conf_extra = (
        "queue retry-local 1s\n"
        'action "slow" mda "echo x >> $HOME/slow.attempts; i=0; '
        'while [ ! -e @TMP@/go ] && [ $i -lt 300 ]; do sleep 0.1; '
        'i=$((i+1)); done; cat > /dev/null; echo busy; exit 75"\n'
        'match from any for domain "slow.test" action "slow"\n')
    with Daemon(conf_extra=conf_extra) as d:
        send(d, "%s@slow.test" % TEST_USER1, unique_marker("slow"))
        assert poll(lambda: os.path.exists(attempts), 20), \
            "the delivery command never started"
        q = queue_json(d)
        assert len(q) == 1 and q[0]["state"] == "inflight", q
        p = ctl(d, "remove", q[0]["id"][:8], check=False)
        assert p.returncode == 0 and b"in flight" in p.stdout, \
            (p.stdout, p.stderr)
        assert spool_records(d) == [], spool_records(d)
        with open(os.path.join(d.tmp, "go"), "w"):
            pass
        deadline = time.monotonic() + 20
        while "%s: removed by smtpctl\n" % q[0]["id"] not in d.log():
            assert time.monotonic() < deadline, d.log_tail()
            time.sleep(0.1)
        time.sleep(3)		# retry-local 1s: a retry would have run
        with open(attempts) as f:
            assert len(f.read().split()) == 1, "tried again after removal"
        assert queue_json(d) == []
        assert spool_records(d) == []
        assert "status=deferred" not in d.log()
