"""
Held mail (EF_HOLD), Postfix's hold queue: what a milter quarantines and
what `smtpctl hold` holds stays in the queue, neither delivered nor
bounced for its age, until `smtpctl release` (or remove).  The hold is
written to the spool before smtpctl is answered, so it survives a
restart; show queue (text and -j), mailq and show envelope say it is held
and why.  Only root may hold or release.

Each test keeps its spool apart from the daemon's temporary directory, so
that a second daemon starts on the spool the first one left (stopped by
SIGTERM).
"""

import contextlib
import os
import re
import shutil
import subprocess
import tempfile
import time

import fixture
from fixture import (TEST_ROOT, TEST_USER2, Daemon, SMTPConnection, binary,
                     ensure_test_user, maildir_files, poll, reset_maildir,
                     unique_marker)
# the spool's file format, as test_queue_spool reads and writes it
from test_queue_spool import committed, spool_key, split

TIMEOUT = 120
# a user of its own: other test modules reset phtest1's Maildir
USER = "phhold"
RCPT = "%s@example.test" % USER
REASON = "smtpctl hold by root"
QUEUE_FILES = [".format", ".key"]	# besides messages and envelopes
WAIT = 2.0	# long enough for a delivery that should not happen

# mail for remote.test goes to a port nobody listens on: a temporary
# failure, then (past the ttl) a bounce to the sender, USER
CONF = """\
spool "{spool}"
socket "@TMP@/smtpd.sock"
smtp workers 1
queue ttl {ttl}
queue retry-remote 1s
listen on 127.0.0.1 port @PORT@
action "local" maildir "~/Maildir"
action "dead" relay host "smtp://127.0.0.1:9"
match from any for domain "example.test" action "local"
match from local for domain "remote.test" action "dead"
"""


def conf(spool, ttl="4d"):
    return CONF.format(spool=spool, ttl=ttl)


@contextlib.contextmanager
def fresh_spool():
    """A spool directory of its own, removed afterwards."""
    ensure_test_user(USER)
    reset_maildir(USER)
    top = tempfile.mkdtemp(prefix="hold.", dir=TEST_ROOT)
    os.chmod(top, 0o755)
    try:
        yield os.path.join(top, "spool")
    finally:
        shutil.rmtree(top, ignore_errors=True)


ctl = fixture.smtpctl
queue_json = fixture.queue_json


def mailq(d):
    p = subprocess.run([binary("sendmail"), "-C", d.conf_path, "-bp"],
                       stdin=subprocess.DEVNULL, capture_output=True,
                       text=True, timeout=20)
    assert p.returncode == 0, p.stderr
    return p.stdout


def send(d, rcpt, marker, sender=RCPT):
    """One message; its queue id (the message's, 8 hex digits)."""
    with SMTPConnection(d.port) as c:
        c.command("EHLO hold.test")
        c.command("MAIL FROM:<%s>" % sender)
        assert c.command("RCPT TO:<%s>" % rcpt).code == 250
        assert c.command("DATA").code == 354
        c.send(("Subject: %s\r\n\r\nheld body\r\n.\r\n" % marker).encode())
        r = c.reply()
        assert r.code == 250, r
        c.command("QUIT")
        return r.text.split()[-1]


def delivered(marker):
    return [f for f in maildir_files(USER)
            if marker.encode() in open(f, "rb").read()]


def wait_log(d, pattern, timeout=20):
    rx = re.compile(pattern)
    hit = poll(lambda: rx.search(d.log()), timeout)
    assert hit, "no log line matching %r; log tail:\n%s" % (
        pattern, d.log_tail(25))


def wait_queue_empty(d, spool, timeout=20):
    queue = os.path.join(spool, "queue")
    ok = poll(lambda: not queue_json(d) and
              sorted(os.listdir(queue)) == QUEUE_FILES, timeout)
    assert ok, "queue not emptied: %r, queue/: %s" % (
        queue_json(d), sorted(os.listdir(queue)))


def assert_held(d, evpid, reason=REASON):
    q = [e for e in queue_json(d) if e["id"] == evpid]
    assert len(q) == 1, queue_json(d)
    assert q[0]["state"] == "held" and q[0]["held"] == reason, q[0]


def test_hold_survives_restart_and_release_delivers():
    with fresh_spool() as spool:
        marker = unique_marker("hold")
        d = Daemon(conf=conf(spool))
        with d:
            ctl(d, "pause", "mda")	# queued, not delivered yet
            msgid = send(d, RCPT, marker)
            q = queue_json(d)
            assert len(q) == 1 and q[0]["state"] == "pending", q
            assert "held" in q[0] and q[0]["held"] is None, q
            evpid = q[0]["id"]
            out = ctl(d, "hold", msgid).stdout
            assert "1 envelopes held" in out, out
            assert_held(d, evpid)
            # the text forms: '!' after the id, as Postfix's mailq
            text = ctl(d, "show", "queue").stdout
            assert re.search(r"^%s! \S+ -> %s .* state=held held=%s$" % (
                evpid, RCPT, REASON), text, re.M), text
            mq = mailq(d)
            assert re.search(r"^%s! \S+ -> %s .* state=held held=%s$" % (
                evpid, RCPT, REASON), mq, re.M), mq
            env = ctl(d, "show", "envelope", evpid).stdout
            assert "\nhold-reason: %s\n" % REASON in env, env
            flags = int(re.search(r"\nflags: ([0-9a-f]{8})\n", env).group(1),
                        16)
            assert flags & 0x400000, env
            # on disk before smtpctl was answered: the envelope's own file
            path = os.path.join(spool, "queue", evpid)
            assert "\nhold-reason: %s\n" % REASON in open(path).read()
            # a second hold changes nothing
            assert "0 envelopes held" in ctl(d, "hold", "all").stdout
            # deliveries run again: a held message stays, even when
            # scheduled by hand
            ctl(d, "resume", "mda")
            out = ctl(d, "schedule", "all").stdout
            assert "0 envelopes scheduled, 1 held" in out, out
            time.sleep(WAIT)
            assert delivered(marker) == [], "a held message was delivered"
            assert_held(d, evpid)
            assert re.search(r"%s: held: %s" % (evpid, REASON), d.log())
        # stopped by SIGTERM; the next daemon finds it held
        d2 = Daemon(conf=conf(spool))
        with d2:
            time.sleep(WAIT)
            assert delivered(marker) == [], \
                "a held message was delivered after a restart"
            assert_held(d2, evpid)
            wait_log(d2, r"1 envelopes held \(smtpctl release\)")
            out = ctl(d2, "release", msgid).stdout
            assert "1 envelopes released" in out, out
            assert poll(lambda: delivered(marker), 20), \
                "not delivered after release"
            wait_queue_empty(d2, spool)
            assert "%s: released by smtpctl" % evpid in d2.log()
            assert len(delivered(marker)) == 1


def test_held_then_removed():
    with fresh_spool() as spool:
        marker = unique_marker("remove")
        d = Daemon(conf=conf(spool))
        with d:
            ctl(d, "pause", "mda")
            msgid = send(d, RCPT, marker)
            assert "1 envelopes held" in ctl(d, "hold", msgid).stdout
            evpid = queue_json(d)[0]["id"]
            assert os.path.exists(os.path.join(spool, "queue", evpid))
            out = ctl(d, "remove", msgid).stdout
            assert "1 envelopes removed" in out, out
            wait_queue_empty(d, spool)
            ctl(d, "resume", "mda")
        d2 = Daemon(conf=conf(spool))
        with d2:
            time.sleep(WAIT)
            assert queue_json(d2) == [], "a removed message came back"
            assert delivered(marker) == []
            assert "envelopes held" not in d2.log()


def test_hold_and_release_need_root():
    ensure_test_user(TEST_USER2)
    with fresh_spool() as spool:
        marker = unique_marker("perm")
        d = Daemon(conf=conf(spool))
        with d:
            os.chmod(d.tmp, 0o755)
            ctl(d, "pause", "mda")
            msgid = send(d, RCPT, marker)
            evpid = queue_json(d)[0]["id"]
            for verb in ("hold", "release"):
                for target in (msgid, "all"):
                    p = ctl(d, verb, target, user=TEST_USER2, check=False)
                    assert p.returncode == 1 and \
                        "permission denied" in p.stderr, (verb, p)
            q = queue_json(d)
            assert q[0]["state"] == "pending" and q[0]["held"] is None, q
            ctl(d, "hold", evpid)
            p = ctl(d, "release", evpid, user=TEST_USER2, check=False)
            assert p.returncode == 1 and "permission denied" in p.stderr
            assert_held(d, evpid)
            # unknown ids are an error, "all" on nothing held is not
            p = ctl(d, "release", "0123456789abcdef", check=False)
            assert p.returncode == 1 and "no such envelope" in p.stderr, p
            ctl(d, "remove", "all")
            wait_queue_empty(d, spool)
            assert "0 envelopes released" in ctl(d, "release", "all").stdout


def test_not_expired_while_held_bounced_after_release():
    """Held past the queue ttl, nothing is bounced; released, the next
    attempt fails temporarily and the usual rule applies: expired,
    bounced to the sender."""
    with fresh_spool() as spool:
        marker = unique_marker("ttl")
        d = Daemon(conf=conf(spool, ttl="3s"))
        with d:
            ctl(d, "pause", "mta")
            msgid = send(d, "nobody@remote.test", marker)
            assert "1 envelopes held" in ctl(d, "hold", msgid).stdout
            evpid = queue_json(d)[0]["id"]
        # a restart (mta running from the start) does not free it either
        d = Daemon(conf=conf(spool, ttl="3s"))
        with d:
            time.sleep(4)		# past the ttl
            assert_held(d, evpid)
            assert "status=deferred" not in d.log(), "a held message was tried"
            assert "status=bounced" not in d.log()
            out = ctl(d, "release", msgid).stdout
            assert "1 envelopes released" in out, out
            wait_log(d, r"to=<nobody@remote\.test>.*status=bounced")
            dsn = poll(lambda: [f for f in maildir_files(USER)
                                if b"multipart/report" in
                                open(f, "rb").read()], 30)
            assert dsn, "no bounce after release"
            wait_queue_empty(d, spool)


def test_committed_held_as_a_milter_leaves_it():
    """A message committed held -- what a milter's quarantine leaves:
    EF_HOLD and the reason in the envelope inside the message file, under
    its footer's mac -- is loaded held and stays so until released.  A
    pause on top of a hold is not written with it: after a restart the
    envelope is held, not paused, and a release delivers it."""
    with fresh_spool() as spool:
        marker = unique_marker("milter")
        reason = "milter spamfilter: quarantined \\o/ | 100%"
        d = Daemon(conf=conf(spool))
        with d:
            ctl(d, "pause", "mda")
            msgid = send(d, RCPT, marker)
            evpid = queue_json(d)[0]["id"]
        path = os.path.join(spool, "queue", msgid)
        st = os.stat(path)
        body, envtext = split(open(path, "rb").read())
        flags = int(re.search(r"\nflags: ([0-9a-f]{8})\n", envtext).group(1),
                    16)
        envtext = re.sub(r"\nflags: [0-9a-f]{8}\n", "\nflags: %08x\n" % (
            flags | 0x400000), envtext)
        envtext = envtext.replace("\nend: ok\n", "\nhold-reason: %s\nend: ok\n"
                                  % reason.replace("\\", "\\x5c"))
        with open(path, "wb") as f:
            f.write(committed(spool_key(spool), body, envtext))
        os.chown(path, st.st_uid, st.st_gid)

        d2 = Daemon(conf=conf(spool))
        with d2:
            time.sleep(WAIT)
            assert delivered(marker) == [], "a held message was delivered"
            assert_held(d2, evpid, reason)
            assert "%s! " % evpid in mailq(d2)
            # paused and released: written without the hold (and without
            # the pause, which is memory only), not delivered while paused
            ctl(d2, "pause", "envelope", evpid)
            assert "1 envelopes released" in ctl(d2, "release", evpid).stdout
            time.sleep(WAIT)
            assert delivered(marker) == [], "delivered while paused"
            stored = open(os.path.join(spool, "queue", evpid)).read()
            assert "hold-reason" not in stored and not int(re.search(
                r"\nflags: ([0-9a-f]{8})\n", stored).group(1), 16) & \
                0x400000, stored
            assert "1 envelopes held" in ctl(d2, "hold", evpid).stdout
        d3 = Daemon(conf=conf(spool))
        with d3:
            time.sleep(WAIT)
            assert delivered(marker) == []
            assert_held(d3, evpid)
            assert "1 envelopes released" in ctl(d3, "release", "all").stdout
            assert poll(lambda: delivered(marker), 20), \
                "not delivered after release: paused after a restart?"
            wait_queue_empty(d3, spool)
