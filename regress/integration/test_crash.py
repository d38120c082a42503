"""
Nothing acknowledged is ever lost: while a bounded load of messages is
sent, every daemon process is killed with SIGKILL at random moments,
several times; after a restart on the same spool every message that got
"250 ... queued" is delivered at least once, to each of its recipients.
Every third message has two recipients, so both spool layouts are under
fire: one recipient (the envelope inside the message file) and several
(envelope files of their own).
"""

import os
import random
import shutil
import signal
import socket
import subprocess
import tempfile
import threading
import time

from fixture import (TEST_ROOT, binary, ensure_test_user, free_port,
                     maildir_path, reset_maildir, setup_system)

ROUNDS = 3		# kill -9 this many times
SENDERS = 4		# concurrent clients
ROUND_MAX_SECS = 2.0	# load time before the kill, at most
DRAIN_TIMEOUT = 60
TIMEOUT = 150
# a user of its own: other test runs reset phtest1's Maildir
CRASH_USER = "phcrash"
CRASH_USER2 = "phcrash2"

CONF = """\
spool "{tmp}/spool"
socket "{tmp}/smtpd.sock"
smtp workers 2
listen on 127.0.0.1 port {port}
action "local" maildir "~/Maildir"
match from any for domain "example.test" action "local"
"""


def start(tmp, port, log):
    proc = subprocess.Popen([binary("smtpd"), "-d", "-f",
                             os.path.join(tmp, "smtpd.conf"), "-P",
                             os.path.join(tmp, "smtpd.pid")],
                            stdin=subprocess.DEVNULL, stdout=log, stderr=log,
                            start_new_session=True)
    deadline = time.monotonic() + 30
    while time.monotonic() < deadline:
        if proc.poll() is not None:
            raise AssertionError("daemon exited with %s at start"
                                 % proc.returncode)
        try:
            with socket.create_connection(("127.0.0.1", port), 2) as s:
                if s.recv(512).startswith(b"220"):
                    s.sendall(b"QUIT\r\n")
                    return proc
        except OSError:
            pass
        time.sleep(0.05)
    raise AssertionError("no banner after restart")


def kill_all(proc):
    """SIGKILL to every process of the daemon: the parent, its children
    and the delivery processes share one process group."""
    try:
        os.killpg(proc.pid, signal.SIGKILL)
    except ProcessLookupError:
        pass
    proc.wait(timeout=10)
    # children reparented to init may take a moment to vanish
    deadline = time.monotonic() + 5
    while time.monotonic() < deadline:
        try:
            os.killpg(proc.pid, 0)
        except ProcessLookupError:
            return
        time.sleep(0.05)


def send_one(port, marker, rcpts):
    """One message on its own connection; True once the server said 250
    to the end of data."""
    with socket.create_connection(("127.0.0.1", port), 5) as s:
        f = s.makefile("rb")

        def reply():
            while True:
                line = f.readline()
                if not line:
                    raise OSError("connection closed")
                if line[3:4] != b"-":
                    return line

        if not reply().startswith(b"220"):
            return False
        s.sendall(b"EHLO crash.test\r\n")
        reply()
        s.sendall(("MAIL FROM:<crash@example.test>\r\n" +
                   "".join("RCPT TO:<%s>\r\n" % r for r in rcpts) +
                   "DATA\r\n").encode())
        for want in [b"250"] * (1 + len(rcpts)) + [b"354"]:
            if not reply().startswith(want):
                return False
        s.sendall(("Subject: %s\r\n\r\nbody of %s\r\n.\r\nQUIT\r\n"
                   % (marker, marker)).encode())
        return reply().startswith(b"250")


def delivered_markers(user):
    found = set()
    for sub in ("new", "cur"):
        d = os.path.join(maildir_path(user), sub)
        if not os.path.isdir(d):
            continue
        for name in os.listdir(d):
            try:
                with open(os.path.join(d, name), "rb") as f:
                    for line in f:
                        if line.startswith(b"Subject: crash-"):
                            found.add(line.split()[1].decode())
                            break
            except FileNotFoundError:
                pass
    return found


def test_sigkill_loses_nothing():
    setup_system()
    for user in (CRASH_USER, CRASH_USER2):
        ensure_test_user(user)
        reset_maildir(user)
    tmp = tempfile.mkdtemp(prefix="crash.", dir=TEST_ROOT)
    os.chmod(tmp, 0o755)
    port = free_port()
    with open(os.path.join(tmp, "smtpd.conf"), "w") as f:
        f.write(CONF.format(tmp=tmp, port=port))
    log = open(os.path.join(tmp, "log"), "ab")
    acked = {CRASH_USER: set(), CRASH_USER2: set()}
    lock = threading.Lock()
    counter = [0]
    proc = None
    try:
        for rnd in range(ROUNDS):
            proc = start(tmp, port, log)
            stop = threading.Event()

            def sender():
                while not stop.is_set():
                    with lock:
                        counter[0] += 1
                        marker = "crash-%d" % counter[0]
                        users = [CRASH_USER] + \
                            ([CRASH_USER2] if counter[0] % 3 == 0 else [])
                    try:
                        if send_one(port, marker,
                                    ["%s@example.test" % u for u in users]):
                            with lock:
                                for u in users:
                                    acked[u].add(marker)
                    except OSError:
                        time.sleep(0.01)

            threads = [threading.Thread(target=sender)
                       for _ in range(SENDERS)]
            for t in threads:
                t.start()
            time.sleep(random.uniform(0.3, ROUND_MAX_SECS))
            kill_all(proc)
            stop.set()
            for t in threads:
                t.join(timeout=10)
        assert acked[CRASH_USER2], "no two-recipient message acknowledged"
        # restart on the same spool: everything acknowledged must arrive
        proc = start(tmp, port, log)
        deadline = time.monotonic() + DRAIN_TIMEOUT
        missing = {}
        while time.monotonic() < deadline:
            missing = {u: acked[u] - delivered_markers(u) for u in acked}
            if not any(missing.values()):
                break
            time.sleep(0.2)
        for u in acked:
            assert not missing[u], \
                "%s: %d of %d acknowledged messages lost: %s" % (
                    u, len(missing[u]), len(acked[u]),
                    sorted(missing[u])[:10])
        proc.send_signal(signal.SIGTERM)
        assert proc.wait(timeout=10) == 0, "unclean shutdown after drain"
        proc = None
        print("  %d messages (%d with two recipients) acknowledged across "
              "%d kills, all delivered" % (len(acked[CRASH_USER]),
                                           len(acked[CRASH_USER2]), ROUNDS))
    finally:
        if proc is not None and proc.poll() is None:
            kill_all(proc)
        log.close()
        if not os.environ.get("POSTHASTE_KEEP"):
            shutil.rmtree(tmp, ignore_errors=True)
