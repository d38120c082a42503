"""
SIGHUP reloads smtpd.conf without dropping sessions or mail: a new
generation of workers starts with the new configuration on the same
listening sockets, the old workers serve the sessions they have to their
end, and a configuration with errors is refused while the old one keeps
running.
"""

import os
import signal
import socket
import subprocess
import time

from fixture import (TEST_USER1, Daemon, SMTPConnection, poll, proc_title,
                     reset_maildir, unique_marker, wait_maildir)
from test_smtpctl import ctl

TIMEOUT = 90
NEW_RULE = 'match from any for domain "reloaded.test" action "local"\n'


def wait_log(d, text, count=1, timeout=15):
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if d.log().count(text) >= count:
            return
        time.sleep(0.05)
    raise AssertionError("no %r in the daemon log:\n%s" % (text,
                                                           d.log_tail()))


def rcpt_code(port, rcpt):
    """The reply code to RCPT.  A client that connects just as a reload
    retires a generation may land on one of its workers: it is served to
    the end (under the old rules), never cut."""
    with SMTPConnection(port) as c:
        assert c.command("EHLO reload.test").code == 250
        assert c.command("MAIL FROM:<a@example.test>").code == 250
        code = c.command("RCPT TO:<%s>" % rcpt).code
        assert c.command("QUIT").code == 221
        return code


def workers(d, retired=False):
    """The pids of the daemon's smtp workers (or of the retired ones)."""
    out = set()
    for pid in d.children():
        t = proc_title(pid) or ""
        if t.startswith("smtpd: smtp worker") and \
                (not retired or t.endswith(" (retired)")):
            out.add(pid)
    return out


def send_message(c, rcpt, marker):
    assert c.command("MAIL FROM:<a@example.test>").code == 250
    assert c.command("RCPT TO:<%s>" % rcpt).code == 250
    assert c.command("DATA").code == 354
    c.send(("Subject: %s\r\n\r\nsent across a reload\r\n.\r\n"
            % marker).encode())
    r = c.reply()
    assert r.code == 250, "message across a reload: %s" % r


def test_reload_new_rules_and_open_session_survives():
    reset_maildir(TEST_USER1)
    with Daemon() as d:
        assert rcpt_code(d.port, "%s@reloaded.test" % TEST_USER1) == 550
        # a session in the middle of a transaction on an old worker
        old = SMTPConnection(d.port)
        old.command("EHLO old.test")
        assert old.command("MAIL FROM:<a@example.test>").code == 250
        assert old.command("RCPT TO:<%s@example.test>"
                           % TEST_USER1).code == 250

        with open(d.conf_path, "a") as f:
            f.write(NEW_RULE)
        d.send_signal(signal.SIGHUP)
        wait_log(d, "configuration reloaded")

        # the new generation knows the new domain
        deadline = time.monotonic() + 10
        while rcpt_code(d.port, "%s@reloaded.test" % TEST_USER1) != 250:
            assert time.monotonic() < deadline, "new rule never applied"
            time.sleep(0.1)

        # the old session finishes its message
        marker = unique_marker("reload")
        assert old.command("DATA").code == 354
        old.send(("Subject: %s\r\n\r\nsent across a reload\r\n.\r\n"
                  % marker).encode())
        r = old.reply()
        assert r.code == 250, "message in flight across reload: %s" % r
        old.close()
        files = wait_maildir(TEST_USER1, 1)
        assert any(marker.encode() in open(f, "rb").read() for f in files)
        # the retired generation is gone, the daemon is whole
        assert d.running()


def test_reload_bad_config_keeps_running():
    """SIGHUP and smtpctl reload: a configuration with an error changes
    nothing; smtpctl says why (file and line) and exits 1, and says so
    when the reload happened (root only)."""
    with Daemon() as d:
        r = ctl(d, "reload")
        out = r.stdout.decode() + r.stderr.decode()
        assert "configuration reloaded from %s" % d.conf_path in out, out
        wait_log(d, "smtpctl reload, reloading")
        r = ctl(d, "reload", user=TEST_USER1, check=False)
        assert r.returncode != 0 and b"permission denied" in r.stderr, r
        with open(d.conf_path, "a") as f:
            f.write("this is not a keyword\n")
        d.send_signal(signal.SIGHUP)
        wait_log(d, "reload failed")
        r = ctl(d, "reload", check=False)
        out = r.stdout.decode() + r.stderr.decode()
        assert r.returncode == 1, (r.returncode, out)
        assert "reload failed" in out and d.conf_path in out, out
        assert d.running(), "a bad configuration stopped the daemon"
        assert rcpt_code(d.port, "%s@example.test" % TEST_USER1) == 250


def test_reload_twice():
    """Two reloads in a row leave a daemon that accepts mail, at once:
    every session is served by a worker of one generation or another."""
    with Daemon() as d:
        for n in range(2):
            d.send_signal(signal.SIGHUP)
            wait_log(d, "configuration reloaded", count=n + 1)
            for _ in range(20):
                assert rcpt_code(d.port, "%s@example.test"
                                 % TEST_USER1) == 250


def test_reload_session_outside_transaction_goes_on():
    """A session that is between transactions when the reload comes (here
    right after EHLO) is not cut: the retired worker serves it, message
    after message, until the client quits; then the worker exits and
    only the new generation is left."""
    reset_maildir(TEST_USER1)
    with Daemon() as d:
        poll(lambda: len(workers(d)) == 2, timeout=5)
        old = SMTPConnection(d.port)
        assert old.command("EHLO old.test").code == 250
        old_pids = workers(d)
        d.send_signal(signal.SIGHUP)
        wait_log(d, "configuration reloaded")
        # the one serving our session is still there, titled as retired
        assert poll(lambda: workers(d, retired=True), timeout=5), \
            "no retired worker left: %s" % workers(d)
        assert workers(d, retired=True) <= old_pids
        markers = [unique_marker("reload") for _ in range(2)]
        for m in markers:
            send_message(old, "%s@example.test" % TEST_USER1, m)
        assert old.command("QUIT").code == 221
        old.close()
        files = wait_maildir(TEST_USER1, 2)
        text = b"".join(open(f, "rb").read() for f in files)
        assert all(m.encode() in text for m in markers)
        # the retired workers are gone once their sessions are
        assert poll(lambda: not old_pids & workers(d), timeout=10), \
            "old workers still there: %s" % (old_pids & workers(d))
        assert len(workers(d)) == 2
        assert d.running()


def test_reload_keeps_queued_connections():
    """Connections the kernel has accepted but no worker has taken yet
    (here: smtp paused) are still there after a reload, and the new
    generation serves them: the listening sockets are kept, not closed
    and bound afresh (which would reset them)."""
    with Daemon() as d:
        ctl(d, "pause", "smtp")
        waiting = [socket.create_connection(("127.0.0.1", d.port), 10)
                   for _ in range(3)]
        d.send_signal(signal.SIGHUP)
        wait_log(d, "configuration reloaded")
        time.sleep(0.5)
        ctl(d, "resume", "smtp")
        for s in waiting:
            s.settimeout(10)
            f = s.makefile("rb")
            banner = f.readline()
            assert banner.startswith(b"220 "), banner
            s.sendall(b"QUIT\r\n")
            assert f.readline().startswith(b"221 ")
            s.close()


def test_reload_under_load():
    """Reloads while Postfix's smtp-source sends 2000 messages over 10
    sessions at a time, one message per connection: every session of
    every generation is served to its end (smtp-source stops at the
    first 4xx/5xx or reset), and every message is delivered once."""
    from test_mta_relay import SINK_DIRS
    source = next((os.path.join(d, "smtp-source") for d in SINK_DIRS
                   if os.access(os.path.join(d, "smtp-source"), os.X_OK)),
                  None)
    assert source, "smtp-source not installed (mk/deps.sh extracts it)"
    reset_maildir(TEST_USER1)
    n = 2000
    with Daemon() as d:
        env = dict(os.environ, LD_LIBRARY_PATH=os.path.dirname(source))
        p = subprocess.Popen(
            [source, "-s", "10", "-m", str(n), "-l", "1024",
             "-f", "load@example.test", "-t", "%s@example.test" % TEST_USER1,
             "-M", "client.test", "127.0.0.1:%d" % d.port],
            stdout=subprocess.PIPE, stderr=subprocess.STDOUT, env=env)
        reloads = 0
        while p.poll() is None and reloads < 10:
            time.sleep(0.2)
            if p.poll() is None:
                d.send_signal(signal.SIGHUP)
                reloads += 1
                # two SIGHUPs that arrive before the parent's next turn
                # are one signal: wait for this reload before the next
                wait_log(d, "configuration reloaded", count=reloads)
        out, _ = p.communicate(timeout=120)
        assert p.returncode == 0 and not out.strip(), \
            "smtp-source: exit %d: %s" % (p.returncode, out.decode()[-500:])
        assert reloads >= 2, "smtp-source finished before two reloads"
        wait_log(d, "configuration reloaded", count=reloads)
        wait_maildir(TEST_USER1, n, timeout=60)
        assert poll(lambda: not workers(d, retired=True), timeout=10)


def test_reload_lets_the_mta_finish_its_delivery():
    """A reload while the mta waits for the peer's reply to the end of a
    message: the old mta waits for it and reports the delivery, so the
    message is sent once (cutting the session there and retrying from
    the new mta would deliver it twice); then it QUITs and exits."""
    from test_mta_relay import FakeSMTP, relay_conf, send_mail, message
    from test_mta_relay import wait_log as wait_log_rx
    marker = unique_marker("reload-mta")
    with FakeSMTP(data_reply=lambda txn: (time.sleep(2),
                                          "250 2.0.0 got it")[1]) as fake:
        with Daemon(conf=relay_conf(fake.port)) as d:
            qid = send_mail(d.port, ["someone@remote.test"],
                            message(marker))
            assert poll(lambda: fake.transactions(), timeout=20), \
                "the message never reached the peer"
            d.send_signal(signal.SIGHUP)
            wait_log(d, "configuration reloaded")
            wait_log_rx(d, r"%s.*to=<someone@remote.test>.*status=sent"
                        % qid)
            # and the retired mta goes once its session is over
            assert poll(lambda: len([p for p in d.children()
                                     if proc_title(p) == "smtpd: mta"])
                        == 1, timeout=10), "the old mta is still there"
            time.sleep(1.5)	# a second copy would have come by now
            txns = fake.transactions()
            assert len(txns) == 1, "delivered %d times" % len(txns)
            assert marker.encode() in txns[0]["data"]
            assert "deferred" not in d.log()


def test_reload_storm_is_bounded():
    """Each retired generation lives while one of its sessions does: a
    session held open across every reload keeps them all.  With 16
    generations alive a reload is refused (logged, the running
    configuration stays) instead of piling up processes; once the old
    sessions end, their generations go and reloads work again."""
    def lookups():
        return [p for p in d.children() if proc_title(p) == "smtpd: lookup"]

    with Daemon() as d:
        held = []
        refused = False
        for n in range(40):
            c = SMTPConnection(d.port)
            assert c.command("EHLO storm.test").code == 250
            held.append(c)
            before = d.log().count("configuration reloaded")
            d.send_signal(signal.SIGHUP)
            assert poll(lambda: "reload refused" in d.log() or
                        d.log().count("configuration reloaded") > before,
                        timeout=15)
            if "reload refused" in d.log():
                refused = True
                break
        assert refused, "40 reloads, none refused"
        # at most 16: a session opened in the moment between a reload and
        # the old worker's retirement may be taken by the old worker, and
        # then the new generation holds no session and is on its way out
        # (the parent counted it alive when it refused; its lookup goes a
        # moment later).  Seen as 14 under load.
        assert len(lookups()) <= 16, "%d generations" % len(lookups())
        # every held session still works, on its own generation
        for c in held:
            assert c.command("MAIL FROM:<a@example.test>").code == 250
            assert c.command("RCPT TO:<%s@example.test>"
                             % TEST_USER1).code == 250
            assert c.command("QUIT").code == 221
            c.close()
        assert poll(lambda: len(workers(d)) == 2 and len(lookups()) == 1,
                    timeout=15), "old generations left"
        before = d.log().count("configuration reloaded")
        d.send_signal(signal.SIGHUP)
        wait_log(d, "configuration reloaded", count=before + 1)
        assert rcpt_code(d.port, "%s@example.test" % TEST_USER1) == 250


def test_reload_children_log_no_libevent_warning():
    """Issue 15 item 8: the children a reload starts were forked from the
    parent's running event loop, and each logged libevent's "Added a
    signal to event base ... with signals already added": they now drop
    the parent's signal events first."""
    with Daemon() as d:
        for n in (1, 2):
            d.send_signal(signal.SIGHUP)
            wait_log(d, "configuration reloaded", count=n)
            # the new generation's workers are up and serving
            poll(lambda: rcpt_code(d.port, "%s@example.test"
                                   % TEST_USER1) == 250)
        time.sleep(0.5)
        log = d.log()
    assert "configuration reloaded" in log
    assert "libevent" not in log, [ln for ln in log.splitlines()
                                   if "libevent" in ln]
