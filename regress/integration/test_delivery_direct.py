"""
Maildir deliveries go from the queue straight to a delivery process the
parent started for it (the parent relays nothing once the process is
there).  The process runs as the user, and when it goes away what it had
is delivered anyway.
"""

import os
import signal
import subprocess

from fixture import (TEST_USER1, Daemon, binary, poll, proc_title,
                     reset_maildir, unique_marker, user, wait_maildir)
from test_delivery import RCPT1, send_raw


def delivery_processes(d):
    """Pids of the daemon's "delivery USER" processes."""
    return [pid for pid in d.children()
            if (proc_title(pid) or "").startswith("smtpd: delivery %s"
                                                 % TEST_USER1)]


def body(marker):
    return ("Subject: %s\r\n\r\ntext\r\n" % marker).encode()


def test_direct_delivery_survives_its_process():
    reset_maildir(TEST_USER1)
    with Daemon(conf_extra="smtp workers 1\n", args=["-v"]) as d:
        first = unique_marker("first")
        send_raw(d.port, "a@client.test", RCPT1, body(first))
        wait_maildir(TEST_USER1, 1)
        pids = delivery_processes(d)
        assert len(pids) == 1, pids
        st = os.stat("/proc/%d" % pids[0])
        assert st.st_uid == user(TEST_USER1).pw_uid, \
            "delivery process not running as the user"
        # several more go through the same process, directly
        for i in range(5):
            send_raw(d.port, "a@client.test", RCPT1,
                     body(unique_marker("more%d" % i)))
        wait_maildir(TEST_USER1, 6)
        assert delivery_processes(d) == pids
        assert "delivery process for %s (pid %d) for the queue" \
            % (TEST_USER1, pids[0]) in d.log(), d.log_tail()
        # it dies: the next message gets a new process and arrives
        os.kill(pids[0], signal.SIGKILL)
        assert poll(lambda: pids[0] not in delivery_processes(d))
        after = unique_marker("after")
        send_raw(d.port, "a@client.test", RCPT1, body(after))
        files = wait_maildir(TEST_USER1, 7, timeout=30)
        assert any(after.encode() in open(f, "rb").read() for f in files)
        assert d.running(), "daemon went down with a delivery process"


def test_burst_starts_one_process():
    """A backlog for one user, released at once: the queue asks the parent
    for one delivery process and holds the rest of the user's mail until
    its channel is there, instead of the parent starting one per message
    (each would make its own syncs)."""
    reset_maildir(TEST_USER1)
    with Daemon(conf_extra="smtp workers 1\n", args=["-v"]) as d:
        ctl = [binary("smtpctl"), "-s", d.socket_path]
        subprocess.run(ctl + ["pause", "mda"], check=True,
                       capture_output=True)
        for i in range(40):
            send_raw(d.port, "a@client.test", RCPT1,
                     body(unique_marker("burst%d" % i)))
        subprocess.run(ctl + ["resume", "mda"], check=True,
                       capture_output=True)
        wait_maildir(TEST_USER1, 40, timeout=30)
        started = d.log().count("for the queue")
        assert started == 1, "%d delivery processes started" % started
        assert len(delivery_processes(d)) == 1


def test_reload_retires_the_process():
    """After a reload the queue gives the old delivery process no more
    work (it was started with the old settings): it exits, and the next
    message goes to a new one."""
    reset_maildir(TEST_USER1)
    with Daemon(conf_extra="smtp workers 1\n", args=["-v"]) as d:
        send_raw(d.port, "a@client.test", RCPT1, body(unique_marker("one")))
        wait_maildir(TEST_USER1, 1)
        old = delivery_processes(d)
        assert len(old) == 1, old
        d.send_signal(signal.SIGHUP)
        assert poll(lambda: old[0] not in delivery_processes(d),
                    timeout=20), "old delivery process still there"
        send_raw(d.port, "a@client.test", RCPT1, body(unique_marker("two")))
        wait_maildir(TEST_USER1, 2, timeout=30)
        assert d.log().count("for the queue") == 2, d.log_tail()
