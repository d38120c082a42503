"""
test_milter_reuse.py -- a filter's connection kept from session to
session ("milter NAME ... reuse", SMFIC_QUIT_NC), against a real
libmilter filter: regress/milter/noop_milter.c (the bench's no-op
filter, built here with libmilter's static archive), which counts the
connections it accepted and every command it read.

Checked: sessions one after the other share one connection (one
negotiation, a QUIT_NC after each session), and every message is
delivered; a filter restarted between two sessions leaves a dead
connection in the pool, which is noticed and replaced, so the next
session is filtered and delivered, not refused; without "reuse" each
session has its own connection (as Postfix).  Checked to fail with
pool_put() disabled (connections == sessions) and with pool_take()'s
liveness check removed (the message after the restart gets 451).
"""

import os
import shutil
import signal
import smtplib
import subprocess
import tempfile
import time

import fixture
from fixture import DEFAULT_CONF, TEST_USER1, Daemon

PORT = 15450		# the no-op filter
NOOP_SRC = os.path.join(os.path.dirname(os.path.abspath(__file__)),
                        "..", "milter", "noop_milter.c")


class NoopMilter:
    """The no-op libmilter filter on PORT; counts() reads its totals."""

    def __init__(self, tmp):
        self.tmp = tmp
        self.bin = os.path.join(tmp, "noop_milter")
        self.counts_path = os.path.join(tmp, "counts")
        self.proc = None

    def build(self):
        if not os.path.exists("/usr/include/libmilter/mfapi.h"):
            fixture.skip("libmilter-dev is not installed")
        cc = shutil.which("cc")
        if cc is None:
            fixture.skip("no C compiler")
        r = subprocess.run([cc, "-std=c11", "-D_DEFAULT_SOURCE", "-O2",
                            "-o", self.bin, NOOP_SRC,
                            "-Wl,--wrap=mi_rd_cmd", "-Wl,--wrap=mi_wr_cmd",
                            "-l:libmilter.a", "-lpthread"],
                           capture_output=True, text=True, timeout=120)
        assert r.returncode == 0, r.stderr

    def start(self):
        if os.path.exists(self.counts_path):
            os.unlink(self.counts_path)
        self.proc = subprocess.Popen(
            [self.bin, "-p", "inet:%d@127.0.0.1" % PORT, "-o",
             self.counts_path], stdin=subprocess.DEVNULL,
            stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
        assert fixture.poll(lambda: self._listening(), timeout=10), \
            "noop_milter does not listen"

    def _listening(self):
        import socket
        try:
            socket.create_connection(("127.0.0.1", PORT), 0.2).close()
            return True
        except OSError:
            return False

    def counts(self):
        """Its totals now (SIGUSR1 makes it write them)."""
        before = os.stat(self.counts_path).st_mtime_ns \
            if os.path.exists(self.counts_path) else 0
        self.proc.send_signal(signal.SIGUSR1)
        assert fixture.poll(lambda: os.path.exists(self.counts_path) and
                            os.stat(self.counts_path).st_mtime_ns != before,
                            timeout=10), "no counts from noop_milter"
        out = {}
        with open(self.counts_path) as f:
            for line in f:
                k, _, v = line.strip().partition(" ")
                try:
                    out[k] = int(v)
                except ValueError:
                    pass
        return out

    def stop(self):
        if self.proc is not None and self.proc.poll() is None:
            # libmilter notices SIGTERM only at its next accept timeout
            self.proc.kill()
            self.proc.wait(timeout=10)
        self.proc = None


def conf(reuse):
    listen = "listen on 127.0.0.1 port @PORT@"
    return DEFAULT_CONF.replace(
        listen + "\n", listen + " milter noop\n") + \
        'milter noop "inet:127.0.0.1:%d"%s\n' % (PORT, " reuse" if reuse
                                                 else "")


def send(port, marker):
    with smtplib.SMTP("127.0.0.1", port, timeout=30) as s:
        s.ehlo("client.example.org")
        s.sendmail("a@example.org", ["%s@example.test" % TEST_USER1],
                   "Subject: %s\r\n\r\n%s\r\n" % (marker, marker))


def delivered(marker):
    return fixture.poll(lambda: fixture.maildir_holds(marker), timeout=20)


def run_sessions(reuse, n):
    tmp = tempfile.mkdtemp(prefix="noopmilter.")
    m = NoopMilter(tmp)
    try:
        m.build()
        m.start()
        with Daemon(conf=conf(reuse)) as d:
            base = m.counts()	# the fixture's own probe session
            for i in range(n):
                marker = "reuse-%s-%d-%d" % (reuse, os.getpid(), i)
                send(d.port, marker)
                assert delivered(marker), "message %d not delivered" % i
            c = m.counts()
            return m, d, base, c
    finally:
        m.stop()
        shutil.rmtree(tmp, ignore_errors=True)


def test_sessions_share_a_connection():
    m, d, base, c = run_sessions(True, 5)
    sessions = c.get("messages", 0) - base.get("messages", 0)
    assert sessions == 5, c
    # a negotiation is a new connection (libmilter counts each session
    # on a reused one as a connection of its own); the daemon has two
    # workers, each with its pool
    conns = c.get("command.optneg", 0) - base.get("command.optneg", 0)
    assert conns <= 2, "5 sessions used %d new connections: %r" % (conns, c)
    assert c.get("command.quit_nc", 0) - base.get("command.quit_nc", 0) \
        >= 3, c


def test_without_reuse_a_connection_per_session():
    m, d, base, c = run_sessions(False, 3)
    conns = c.get("command.optneg", 0) - base.get("command.optneg", 0)
    assert conns == 3, c
    assert c.get("command.quit_nc", 0) == 0, c


def test_filter_restarted_between_sessions():
    tmp = tempfile.mkdtemp(prefix="noopmilter.")
    m = NoopMilter(tmp)
    try:
        m.build()
        m.start()
        with Daemon(conf=conf(True)) as d:
            first = "reuse-restart-a-%d" % os.getpid()
            send(d.port, first)
            assert delivered(first)
            # the pooled connection dies with the filter
            m.stop()
            m.start()
            time.sleep(0.2)
            second = "reuse-restart-b-%d" % os.getpid()
            try:
                send(d.port, second)
            except smtplib.SMTPException as e:
                raise AssertionError("after the filter's restart: %r" % (e,))
            assert delivered(second), "not delivered after the restart"
            c = m.counts()
            assert c.get("messages", 0) >= 1, c
    finally:
        m.stop()
        shutil.rmtree(tmp, ignore_errors=True)
