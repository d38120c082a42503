"""
Mail for root and postmaster on a host where root is not aliased (the
package's default until the administrator answers its question): RFC 5321
4.5.1 requires postmaster to be accepted, and root's cron output must not
end in dead.letter.  Such mail is appended to /var/mail/root as an mbox
by a delivery process that is not root, whatever the matching action
says (Maildir here), and root's ~/.forward is never followed.

The daemon has no setting for the mail spool directory, so these tests
use the real /var/mail/root and /root/.forward: both are saved first and
put back exactly as found (content, owner, mode, or absence), under a
lock so that two runs do not interleave.
"""

import contextlib
import fcntl
import os
import pwd
import re
import subprocess
import tempfile

from fixture import (TEST_ROOT, TEST_USER1, Daemon, binary, maildir_files,
                     mbox_path,
                     poll, read_file, smtp_dialog, unique_marker,
                     wait_stable_file)

TIMEOUT = 90
ROOT = pwd.getpwuid(0).pw_name
ROOT_MBOX = mbox_path(ROOT)
ROOT_FORWARD = os.path.join(pwd.getpwuid(0).pw_dir, ".forward")
# under the test root, which the last run out removes
LOCK = os.path.join(TEST_ROOT, "root-mbox.lock")

# no alias table at all: root and postmaster can only be found as users
CONF = """\
spool "@TMP@/spool"
socket "@TMP@/smtpd.sock"
smtp workers 1
mailname "example.test"
listen on 127.0.0.1 port @PORT@
action "local" maildir "~/Maildir"
action "spool" mbox
match from any for domain "example.test" action "local"
match from any for domain "mbox.test" action "spool"
match from local for local action "local"
"""

FROM_LINE = re.compile(rb"^From [^ \n]+ [A-Z][a-z]{2} [A-Z][a-z]{2} "
                       rb"[ 0-9]\d \d\d:\d\d:\d\d \d{4}\n", re.M)


class Saved:
    """A file's state, to be put back exactly: absent, or its bytes,
    owner and mode."""

    def __init__(self, path):
        self.path = path
        try:
            st = os.lstat(path)
        except FileNotFoundError:
            self.data = None
            return
        if not os.path.isfile(path) or os.path.islink(path):
            raise AssertionError("%s is not a regular file; not touching "
                                 "it" % path)
        self.data = read_file(path)
        self.uid, self.gid, self.mode = st.st_uid, st.st_gid, st.st_mode

    def restore(self):
        if self.data is None:
            with contextlib.suppress(FileNotFoundError):
                os.unlink(self.path)
            return
        fd = os.open(self.path, os.O_WRONLY | os.O_CREAT | os.O_NOFOLLOW,
                     0o600)
        try:
            os.ftruncate(fd, 0)
            os.write(fd, self.data)
            os.fchown(fd, self.uid, self.gid)
            os.fchmod(fd, self.mode & 0o7777)
        finally:
            os.close(fd)


@contextlib.contextmanager
def root_files(forward=None):
    """Hold the lock, save /var/mail/root (and its dotlock) and root's
    .forward, optionally write a .forward; put everything back after."""
    fd = os.open(LOCK, os.O_RDWR | os.O_CREAT, 0o600)
    fcntl.flock(fd, fcntl.LOCK_EX)
    saved = [Saved(ROOT_MBOX), Saved(ROOT_MBOX + ".lock"),
             Saved(ROOT_FORWARD)]
    try:
        if forward is not None:
            with open(ROOT_FORWARD, "w") as f:
                f.write(forward)
            os.chmod(ROOT_FORWARD, 0o644)
        yield
    finally:
        for s in saved:
            s.restore()
        fcntl.flock(fd, fcntl.LOCK_UN)
        os.close(fd)


def message(rcpt, marker):
    return ("From: <s@client.test>\r\nTo: <%s>\r\nSubject: %s\r\n\r\n"
            "%s\r\n.\r\n" % (rcpt, marker, marker)).encode()


def send(port, rcpt, marker):
    r = smtp_dialog(port, ["EHLO client.test", "MAIL FROM:<s@client.test>",
                           "RCPT TO:<%s>" % rcpt, "DATA",
                           message(rcpt, marker), "QUIT"])
    assert len(r) == 7, "the server closed the dialog early: %r" % r
    assert r[3].code == 250, "RCPT TO:<%s> refused: %s" % (rcpt, r[3].text)
    assert r[5].code == 250, "message for %s not queued: %s" \
        % (rcpt, r[5].text)


def entry_of(data, marker):
    """The mbox entry holding marker: it starts with a From_ line and
    carries the trace headers of a local delivery."""
    starts = [m.start() for m in FROM_LINE.finditer(data)]
    for i, s in enumerate(starts):
        end = starts[i + 1] if i + 1 < len(starts) else len(data)
        if marker in data[s:end]:
            return data[s:end]
    raise AssertionError("no mbox entry with %r in %s" % (marker, ROOT_MBOX))


def check_root_mbox():
    st = os.lstat(ROOT_MBOX)
    assert st.st_uid == 0, "%s is not root's (uid %d)" % (ROOT_MBOX,
                                                          st.st_uid)
    assert st.st_nlink == 1 and (st.st_mode & 0o077) in (0, 0o060), \
        "%s: mode %04o links %d" % (ROOT_MBOX, st.st_mode & 0o7777,
                                    st.st_nlink)


# --------------------------------------------------------------------------

def test_root_and_postmaster_accepted_and_delivered():
    """root@, <postmaster>, postmaster@ a local domain and root@ an mbox
    domain: all accepted, all in /var/mail/root (not in a Maildir, which
    the matching action names)."""
    rcpts = ["root@example.test", "postmaster", "Postmaster@example.test",
             "root@mbox.test"]
    with root_files():
        markers = [unique_marker("root%d" % i) for i in range(len(rcpts))]
        with Daemon(conf=CONF) as d:
            for rcpt, marker in zip(rcpts, markers):
                send(d.port, rcpt, marker)
            for marker in markers:
                wait_stable_file(ROOT_MBOX, marker.encode())
            log = d.log()
        data = read_file(ROOT_MBOX)
        check_root_mbox()
        for rcpt, marker in zip(rcpts, markers):
            entry = entry_of(data, marker.encode())
            assert b"\nReturn-Path: <s@client.test>\n" in entry, entry[:300]
            assert b"\nDelivered-To: " in entry, entry[:300]
        assert "must be aliased" not in log, log[-2000:]


def test_root_forward_not_followed():
    """A ~root/.forward naming a program and a file is never read: the
    mail lands in /var/mail/root, and neither runs."""
    marker = unique_marker("rootfwd")
    flag = "/var/tmp/posthaste-test-rootfwd-%d" % os.getpid()
    with contextlib.suppress(FileNotFoundError):
        os.unlink(flag)
    try:
        with root_files(forward='"|/bin/touch %s"\n%s.file\n'
                        % (flag, flag)):
            with Daemon(conf=CONF) as d:
                send(d.port, "root@example.test", marker)
                wait_stable_file(ROOT_MBOX, marker.encode())
            check_root_mbox()
        assert not os.path.exists(flag), "root's .forward program ran"
        assert not os.path.exists(flag + ".file"), \
            "root's .forward file destination was written"
    finally:
        for p in (flag, flag + ".file"):
            with contextlib.suppress(FileNotFoundError):
                os.unlink(p)


def test_root_cron_mail_through_sendmail():
    """What cron does: root runs sendmail for "root"; it is delivered,
    not left in dead.letter."""
    marker = unique_marker("rootcron")
    dead = os.path.join(pwd.getpwuid(0).pw_dir, "dead.letter")
    with root_files():
        dead_before = read_file(dead) if os.path.exists(dead) else None
        with Daemon(conf=CONF) as d:
            r = subprocess.run([binary("sendmail"), "-C", d.conf_path,
                                "-oi", "root"],
                               input=("Subject: cron %s\n\n%s\n"
                                      % (marker, marker)).encode(),
                               stdout=subprocess.PIPE,
                               stderr=subprocess.PIPE, timeout=30,
                               env={"PATH": "/usr/bin:/bin",
                                    "HOME": pwd.getpwuid(0).pw_dir})
            assert r.returncode == 0, "sendmail root: exit %d: %s" \
                % (r.returncode, r.stderr.decode("utf-8", "replace"))
            wait_stable_file(ROOT_MBOX, marker.encode())
        dead_after = read_file(dead) if os.path.exists(dead) else None
        assert dead_after == dead_before, "sendmail wrote dead.letter"
        entry = entry_of(read_file(ROOT_MBOX), marker.encode())
        assert b"\nDelivered-To: root@example.test\n" in entry, entry[:300]


def test_root_mbox_owned_by_another_refused():
    """A /var/mail/root that is not root's (planted by a member of group
    mail) is never appended to."""
    marker = unique_marker("rootplant")
    with root_files():
        with contextlib.suppress(FileNotFoundError):
            os.unlink(ROOT_MBOX)
        nobody = pwd.getpwnam("nobody")
        fd = os.open(ROOT_MBOX, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
        os.fchown(fd, nobody.pw_uid, nobody.pw_gid)
        os.close(fd)
        with Daemon(conf=CONF) as d:
            send(d.port, "root@example.test", marker)
            poll(lambda: "unsafe file" in d.log(), 10)
            log = d.log()
        assert "unsafe file: not owned by the recipient" in log, \
            log[-2000:]
        assert os.path.getsize(ROOT_MBOX) == 0, "appended to a planted file"


def test_postmaster_fallback_is_sealed():
    """<postmaster> that no rule matches takes lookup's RFC 5321 4.5.1
    fallback (here to root's alias, a user's Maildir): its destination
    must be sealed like any other, or the queue refuses the envelope and
    the daemon goes down."""
    marker = unique_marker("pmseal")
    with tempfile.TemporaryDirectory(dir="/var/tmp") as tmp:
        os.chmod(tmp, 0o755)
        aliases = os.path.join(tmp, "aliases")
        with open(aliases, "w") as f:
            f.write("root: %s\n" % TEST_USER1)
        os.chmod(aliases, 0o644)
        conf = CONF.replace(
            'action "local" maildir "~/Maildir"\n',
            'table aliases file:%s\naction "local" maildir "~/Maildir" '
            'alias <aliases>\n' % aliases)
        with Daemon(conf=conf) as d:
            send(d.port, "postmaster", marker)
            assert poll(lambda: any(
                marker.encode() in read_file(p)
                for p in maildir_files(TEST_USER1))), \
                "postmaster's mail did not reach root's alias"
            assert d.running(), "the daemon went down:\n" + d.log_tail()
