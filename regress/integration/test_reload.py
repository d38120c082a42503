"""
SIGHUP reloads smtpd.conf without dropping sessions or mail: a new
generation of workers starts with the new configuration, the old workers
finish the transactions they are in, and a configuration with errors is
refused while the old one keeps running.
"""

import signal
import time

from fixture import (TEST_USER1, Daemon, SMTPConnection, SMTPError,
                     reset_maildir, unique_marker, wait_maildir)

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
    """The reply code to RCPT, or None when the session was cut: a client
    that connects just as a reload retires a generation may land on one
    of its workers, which says 421 outside a transaction and closes
    (known, see the issue notes); callers that just reloaded retry."""
    try:
        with SMTPConnection(port) as c:
            c.command("EHLO reload.test")
            c.command("MAIL FROM:<a@example.test>")
            code = c.command("RCPT TO:<%s>" % rcpt).code
            c.command("QUIT")
            return code
    except (OSError, SMTPError):
        return None


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
    with Daemon() as d:
        with open(d.conf_path, "a") as f:
            f.write("this is not a keyword\n")
        d.send_signal(signal.SIGHUP)
        wait_log(d, "reload failed")
        assert d.running(), "a bad configuration stopped the daemon"
        assert rcpt_code(d.port, "%s@example.test" % TEST_USER1) == 250


def test_reload_twice():
    """Two reloads in a row leave a daemon that accepts mail.  A client
    that connects just as a generation retires may still land on one of
    its workers, which answers a session outside a transaction with 421
    and closes (known, see the issue notes): such a client tries again,
    as SMTP clients do; it must get 250 within a few seconds."""
    with Daemon() as d:
        for n in range(2):
            d.send_signal(signal.SIGHUP)
            wait_log(d, "configuration reloaded", count=n + 1)
        deadline = time.monotonic() + 10
        while True:
            code = rcpt_code(d.port, "%s@example.test" % TEST_USER1)
            if code == 250:
                break
            assert code in (None, 421) and time.monotonic() < deadline, \
                "RCPT after two reloads: %s" % code
            time.sleep(0.1)
