"""
Mail for the daemon's own accounts (issue 16 item 5): RCPT TO:<_smtpq@...>
from the network made a delivery process run as _smtpq, the spool's
owner, and write /var/mail/_smtpq.  The daemon's own accounts (_smtpd,
_smtpq) and nobody have no mailbox: they are unknown users (550 5.1.1)
unless an alias sends their mail elsewhere, and then the alias applies.

The daemon has no setting for the mail spool directory, so the test
looks at the real /var/mail/_smtpd and /var/mail/_smtpq: whatever was
there before (normally nothing) must be there, unchanged, after.
"""

import contextlib
import os
import tempfile

from fixture import (DAEMON_USER, QUEUE_USER, TEST_USER2, Daemon,
                     mbox_path, read_file, run_smtpd, smtp_dialog,
                     unique_marker, wait_stable_file)

CONF = """\
spool "@TMP@/spool"
socket "@TMP@/smtpd.sock"
smtp workers 1
listen on 127.0.0.1 port @PORT@
action "spool" mbox
match from any for domain "mbox.test" action "spool"
"""

ALIASED = """\
spool "@TMP@/spool"
socket "@TMP@/smtpd.sock"
smtp workers 1
listen on 127.0.0.1 port @PORT@
table aliases { "_smtpq" = "%s", "_smtpd" = "%s" }
action "spool" mbox alias <aliases>
match from any for domain "mbox.test" action "spool"
""" % (TEST_USER2, TEST_USER2)

ACCOUNTS = [QUEUE_USER, DAEMON_USER, "nobody"]


def state(path):
    try:
        return read_file(path)
    except FileNotFoundError:
        return None


def put_back(before):
    """A mailbox the code under test created is removed (one that was
    there before is left alone: the assertion already compared it)."""
    for a, data in before.items():
        if data is None:
            for p in (mbox_path(a), mbox_path(a) + ".lock"):
                with contextlib.suppress(FileNotFoundError):
                    os.unlink(p)


def dialog(port, rcpts, marker):
    cmds = ["EHLO client.test", "MAIL FROM:<s@client.test>"]
    cmds += ["RCPT TO:<%s>" % r for r in rcpts]
    cmds += ["DATA", ("From: <s@client.test>\r\nSubject: %s\r\n\r\n%s\r\n"
                      ".\r\n" % (marker, marker)).encode(), "QUIT"]
    r = smtp_dialog(port, cmds)
    assert len(r) == len(cmds) + 1, "the dialog ended early: %r" % r
    return r[3:3 + len(rcpts)], r[3 + len(rcpts) + 1]


def keeps_mailboxes(fn):
    def wrapper():
        before = {a: state(mbox_path(a)) for a in ACCOUNTS}
        try:
            fn()
        finally:
            put_back(before)
    wrapper.__name__ = fn.__name__
    wrapper.__doc__ = fn.__doc__
    return wrapper


@keeps_mailboxes
def test_daemon_accounts_refused_nothing_written():
    """RCPT to _smtpq, _smtpd and nobody: 550 5.1.1 each; the mail for
    the one real recipient beside them is delivered, and no mailbox of
    theirs is created or touched."""
    before = {a: state(mbox_path(a)) for a in ACCOUNTS}
    marker = unique_marker("daemonacct")
    with Daemon(conf=CONF) as d:
        rcpts = ["%s@mbox.test" % a for a in ACCOUNTS]
        replies, end = dialog(d.port, rcpts + ["%s@mbox.test" % TEST_USER2],
                              marker)
        for rcpt, r in zip(rcpts, replies):
            assert r.code == 550 and "5.1.1" in r.text, \
                "RCPT TO:<%s> got %s %s" % (rcpt, r.code, r.text)
        assert replies[-1].code == 250, replies[-1].text
        assert end.code == 250, end.text
        wait_stable_file(mbox_path(TEST_USER2), marker.encode())
        log = d.log()
    for a in ACCOUNTS:
        assert state(mbox_path(a)) == before[a], \
            "%s was written" % mbox_path(a)
    assert "refusing to deliver" not in log, log[-2000:]


@keeps_mailboxes
def test_daemon_accounts_aliased_elsewhere():
    """With an alias for _smtpq and _smtpd, their mail goes where the
    alias says, and still nothing is written as them."""
    before = {a: state(mbox_path(a)) for a in ACCOUNTS}
    markers = {a: unique_marker("daemonalias") for a in ACCOUNTS[:2]}
    with Daemon(conf=ALIASED) as d:
        for a, marker in markers.items():
            replies, end = dialog(d.port, ["%s@mbox.test" % a], marker)
            assert replies[0].code == 250, \
                "aliased RCPT TO:<%s@mbox.test> got %s" % (a, replies[0])
            assert end.code == 250, end.text
        for marker in markers.values():
            wait_stable_file(mbox_path(TEST_USER2), marker.encode())
    for a in ACCOUNTS:
        assert state(mbox_path(a)) == before[a], \
            "%s was written" % mbox_path(a)


def test_daemon_account_in_action_refused():
    """"user _smtpq" in an action is a configuration error."""
    conf = CONF.replace('action "spool" mbox',
                        'action "spool" mbox user %s' % QUEUE_USER)
    with tempfile.NamedTemporaryFile("w", suffix=".conf") as f:
        f.write(conf.replace("@TMP@", "/var/tmp").replace("@PORT@", "25"))
        f.flush()
        r = run_smtpd(["-n", "-f", f.name])
    assert r.returncode != 0, r.output
    assert "never receives mail" in r.output, r.output
