"""
A nearly full spool file system: new mail gets 452 4.3.1 and what is
already queued is not harmed.  The spool lives on a small tmpfs the test
mounts for itself.
"""

import os
import subprocess
import tempfile

from fixture import (TEST_ROOT, Daemon, SMTPConnection, binary,
                     ensure_test_user, reset_maildir, unique_marker,
                     wait_maildir)

TIMEOUT = 60
USER = "phctl"

CONF = """\
spool "{spool}"
socket "@TMP@/smtpd.sock"
smtp workers 1
listen on 127.0.0.1 port @PORT@
action "local" maildir "~/Maildir"
match from any for domain "example.test" action "local"
"""


def transaction(port, marker):
    """The reply to DATA, or to the end of data when DATA got 354."""
    with SMTPConnection(port) as c:
        c.command("EHLO full.test")
        c.command("MAIL FROM:<a@example.test>")
        assert c.command("RCPT TO:<%s@example.test>" % USER).code == 250
        r = c.command("DATA")
        if r.code == 354:
            c.send(("Subject: %s\r\n\r\nx\r\n.\r\n" % marker).encode())
            r = c.reply()
        c.command("QUIT")
        return r


def fill(path, leave):
    """Fill the file system holding path until only `leave` bytes are
    free."""
    st = os.statvfs(path)
    free = st.f_bavail * st.f_frsize
    with open(os.path.join(path, "fill"), "wb") as f:
        f.write(b"\0" * max(0, free - leave))


def test_spool_full_gets_452_and_keeps_queue():
    ensure_test_user(USER)
    reset_maildir(USER)
    mnt = tempfile.mkdtemp(prefix="full.", dir=TEST_ROOT)
    subprocess.run(["mount", "-t", "tmpfs", "-o", "size=8m,mode=0755",
                    "tmpfs", mnt], check=True)
    try:
        d = Daemon(conf=CONF.format(spool=os.path.join(mnt, "spool")))
        with d:
            ctl = [binary("smtpctl"), "-s", d.socket_path]
            subprocess.run(ctl + ["pause", "mda"], check=True,
                           capture_output=True)
            queued = unique_marker("queued")
            r = transaction(d.port, queued)
            assert r.code == 250, r
            fill(mnt, 16 * 1024)
            r = transaction(d.port, unique_marker("refused"))
            assert r.code == 452 and "4.3.1" in r.text, \
                "spool full, expected 452 4.3.1: %s" % r
            assert "spool nearly full" in d.log()
            os.unlink(os.path.join(mnt, "fill"))
            subprocess.run(ctl + ["resume", "mda"], check=True,
                           capture_output=True)
            files = wait_maildir(USER, 1)
            assert queued.encode() in open(files[0], "rb").read()
            r = transaction(d.port, unique_marker("again"))
            assert r.code == 250, "space is back, still refused: %s" % r
    finally:
        subprocess.run(["umount", "-l", mnt])
        os.rmdir(mnt)
