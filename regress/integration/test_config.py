"""
smtpd -n: check the configuration and say so.  A good file prints
"configuration OK" and exits 0; a bad one prints "FILE:LINE: message" and
exits non-zero -- for the first error, on the line that holds it.

And the shipped etc/smtpd.conf itself, run: mail for this host goes to
/var/mail/USER as Debian Policy 11.6 asks (mbox, fcntl lock and dotlock,
both waited for), and the documented Maildir line is one swap away.
"""

import contextlib
import fcntl
import os
import shutil
import tempfile
import time

from fixture import (DEFAULT_CONF, REPO, TEST_ROOT, TEST_USER1, Daemon,
                     maildir_files, mbox_path, poll, read_file, run_smtpd,
                     setup_system, smtp_dialog, unique_marker, user,
                     wait_stable_file)
from test_smtp_common import make_certificate

TIMEOUT = 30


class ConfDir:
    """A temporary directory with configuration files in it."""

    def __enter__(self):
        setup_system()
        os.makedirs(TEST_ROOT, mode=0o755, exist_ok=True)
        self.path = tempfile.mkdtemp(prefix="conf.", dir=TEST_ROOT)
        return self

    def __exit__(self, *exc):
        shutil.rmtree(self.path, ignore_errors=True)
        return False

    def write(self, name, text):
        path = os.path.join(self.path, name)
        with open(path, "w") as f:
            f.write(text)
        return path


def good_conf(tmp):
    return DEFAULT_CONF.replace("@TMP@", tmp).replace("@PORT@", "2525")


def check_ok(path):
    r = run_smtpd(["-n", "-f", path])
    assert "configuration OK" in r.output, \
        "smtpd -n -f %s printed %r, expected 'configuration OK'" \
        % (path, r.output.strip())
    assert r.returncode == 0, "smtpd -n exit status %d on a good file" \
        % r.returncode


def check_error(path, line):
    r = run_smtpd(["-n", "-f", path])
    where = "%s:%d:" % (path, line)
    assert r.returncode != 0, \
        "smtpd -n exit status 0 on a bad file (output %r)" % r.output.strip()
    assert where in r.output, \
        "smtpd -n output %r does not name %s" % (r.output.strip(), where)
    assert "configuration OK" not in r.output, \
        "smtpd -n says 'configuration OK' on a bad file"


def test_good_config():
    with ConfDir() as c:
        check_ok(c.write("good.conf", good_conf(c.path)))


def test_shipped_config():
    """etc/smtpd.conf as installed, with its aliases table pointed at the
    shipped etc/aliases (no /etc/aliases on a machine without an MTA)."""
    with open(os.path.join(REPO, "etc", "smtpd.conf")) as f:
        text = f.read()
    with ConfDir() as c:
        # a copy: smtpd -n checks that _smtpd can read it, and the
        # checkout may be under /root (0700)
        os.chmod(c.path, 0o755)
        aliases = os.path.join(c.path, "aliases")
        shutil.copy(os.path.join(REPO, "etc", "aliases"), aliases)
        os.chmod(aliases, 0o644)
        text = text.replace("/etc/aliases", aliases)
        check_ok(c.write("shipped.conf", text))


def test_unknown_keyword():
    with ConfDir() as c:
        lines = good_conf(c.path).splitlines()
        lines.insert(2, "frobnicate the widgets")	# becomes line 3
        check_error(c.write("bad.conf", "\n".join(lines) + "\n"), 3)


def test_bad_port():
    with ConfDir() as c:
        text = good_conf(c.path).replace("port 2525", "port 99999")
        line = text.splitlines().index("listen on 127.0.0.1 port 99999") + 1
        check_error(c.write("bad.conf", text), line)


def test_undefined_action():
    with ConfDir() as c:
        text = good_conf(c.path) + \
            'match from any for domain "other.test" action "nosuch"\n'
        check_error(c.write("bad.conf", text), len(text.splitlines()))


def test_bad_size():
    with ConfDir() as c:
        text = good_conf(c.path).replace("max-message-size 10M",
                                         "max-message-size lots")
        line = text.splitlines().index("smtp max-message-size lots") + 1
        check_error(c.write("bad.conf", text), line)


def test_milters():
    """A good milter configuration, and each milter error on its line
    (the grammar in full: regress/unit/test_parse_milter.c)."""
    filters = ('milter rspamd "inet:127.0.0.1:11332" on-error accept\n'
               "milter dkim unix:/run/opendkim/opendkim.sock\n"
               "sendmail milter { dkim rspamd }\n")
    with ConfDir() as c:
        text = good_conf(c.path).replace(
            "port 2525", "port 2525 milter { rspamd, dkim }") + filters
        check_ok(c.write("good.conf", text))
        base = good_conf(c.path) + filters
        n = len(base.splitlines())
        for extra, message in [
                ("milter rspamd inet:127.0.0.1:1\n", "already defined"),
                ("milter x inet:127.0.0.1:0\n", "invalid port"),
                ("milter x tcp:1\n", "unknown address"),
                ("milter x inet:127.0.0.1:1 frob\n", "unknown option"),
                ("milter x inet:127.0.0.1:1 eom-timeout 5y\n",
                 "invalid duration"),
                ("listen on 127.0.0.1 port 2526 milter nosuch\n",
                 'no milter "nosuch"'),
                ("listen on 127.0.0.1 port 2526 milter { dkim dkim }\n",
                 "named twice")]:
            path = c.write("bad.conf", base + extra)
            check_error(path, n + 1)
            assert message in run_smtpd(["-n", "-f", path]).output, extra


def test_missing_file():
    """A file that does not exist is an error too, not an empty config."""
    with ConfDir() as c:
        path = os.path.join(c.path, "nonexistent.conf")
        r = run_smtpd(["-n", "-f", path])
        assert r.returncode != 0, "smtpd -n exit 0 on a missing file"
        assert "configuration OK" not in r.output
        assert path in r.output, \
            "error %r does not name the file" % r.output.strip()


# --------------------------------------------------------------------------
# the shipped configuration, run

MAILDIR_LINE = '#\taction "local" maildir "~/Maildir" alias <aliases>'
MBOX_LINE = 'action "local" mbox alias <aliases>'


def shipped_template(aliases, maildir=False):
    """etc/smtpd.conf as a Daemon template: a free loopback port, the
    test's spool and socket, aliases from the given file; with maildir,
    the documented swap of its two action lines."""
    with open(os.path.join(REPO, "etc", "smtpd.conf")) as f:
        text = f.read()
    assert MAILDIR_LINE in text and MBOX_LINE in text, \
        "etc/smtpd.conf lacks the mbox action or the Maildir alternative"
    assert "\n" + MBOX_LINE + "\n" in text, "mbox is not the default"
    if maildir:
        text = text.replace("\n" + MBOX_LINE + "\n",
                            "\n#" + MBOX_LINE + "\n")
        text = text.replace(MAILDIR_LINE, MAILDIR_LINE[2:])
    assert "listen on localhost\n" in text
    text = text.replace("listen on localhost\n",
                        "listen on 127.0.0.1 port @PORT@\n")
    text = text.replace("file:/etc/aliases", "file:" + aliases)
    return 'spool "@TMP@/spool"\nsocket "@TMP@/smtpd.sock"\n' + text


def send_local(port, rcpt, marker):
    r = smtp_dialog(port, [
        "EHLO localhost", "MAIL FROM:<%s>" % rcpt, "RCPT TO:<%s>" % rcpt,
        "DATA", ("Subject: %s\r\n\r\n%s\r\n.\r\n"
                 % (marker, marker)).encode(), "QUIT"])
    assert r[3].code == 250, "RCPT TO:<%s>: %s" % (rcpt, r[3].text)
    assert r[5].code == 250, "DATA: %s" % r[5].text


def ensure_mbox(username):
    """/var/mail/USER as useradd leaves it, unless it exists already
    (another test may be appending to it: never truncated here)."""
    path = mbox_path(username)
    pw = user(username)
    with contextlib.suppress(FileExistsError):
        fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
        os.fchown(fd, pw.pw_uid, pw.pw_gid)
        os.close(fd)
    return path


def in_maildir(username, marker):
    for p in maildir_files(username):
        with contextlib.suppress(FileNotFoundError):
            if marker.encode() in read_file(p):
                return True
    return False


def test_shipped_config_delivers_to_var_mail():
    """The default: /var/mail/USER, an mbox entry, not ~/Maildir; the
    delivery waits for a reader's dotlock and for its fcntl lock."""
    rcpt = "%s@localhost" % TEST_USER1
    with ConfDir() as c:
        aliases = c.write("aliases", open(os.path.join(REPO, "etc",
                                                       "aliases")).read())
        os.chmod(aliases, 0o644)
        os.chmod(c.path, 0o755)
        with Daemon(conf=shipped_template(aliases)) as d:
            path = ensure_mbox(TEST_USER1)
            marker = unique_marker("defmbox")
            send_local(d.port, rcpt, marker)
            data = wait_stable_file(path, marker.encode())
            assert not in_maildir(TEST_USER1, marker), "went to Maildir"
            i = data.index(marker.encode())
            start = data.rfind(b"\nFrom ", 0, i) + 1
            assert data[start:].startswith(b"From " + rcpt.encode()), \
                data[start:start + 100]
            st = os.stat(path)
            assert st.st_uid == user(TEST_USER1).pw_uid

            # a reader's dotlock (as mail(1) takes it) is waited for:
            # the delivery process has the mail group to take it too
            lock = path + ".lock"
            fd = os.open(lock, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o644)
            os.close(fd)
            try:
                marker = unique_marker("dotlock")
                send_local(d.port, rcpt, marker)
                time.sleep(2)
                assert marker.encode() not in read_file(path), \
                    "delivered while the mailbox was dotlocked"
            finally:
                os.unlink(lock)
            wait_stable_file(path, marker.encode())

            # and so is an fcntl lock on the mailbox
            with open(path, "ab") as f:
                fcntl.lockf(f, fcntl.LOCK_EX)
                marker = unique_marker("fcntl")
                send_local(d.port, rcpt, marker)
                time.sleep(2)
                assert marker.encode() not in read_file(path), \
                    "delivered while the mailbox was fcntl-locked"
                fcntl.lockf(f, fcntl.LOCK_UN)
            wait_stable_file(path, marker.encode())


def test_shipped_config_maildir_alternative():
    """The documented one-line swap: valid, and it delivers to ~/Maildir."""
    rcpt = "%s@localhost" % TEST_USER1
    with ConfDir() as c:
        aliases = c.write("aliases", open(os.path.join(REPO, "etc",
                                                       "aliases")).read())
        os.chmod(aliases, 0o644)
        os.chmod(c.path, 0o755)
        template = shipped_template(aliases, maildir=True)
        check_ok(c.write("maildir.conf", template.replace(
            "@TMP@", c.path).replace("@PORT@", "2525")))
        with Daemon(conf=template) as d:
            marker = unique_marker("defmaildir")
            send_local(d.port, rcpt, marker)
            assert poll(lambda: in_maildir(TEST_USER1, marker)), \
                "not delivered to ~/Maildir"


# ---------------------------------------------------------------------------
# issue 15: what parses but could never work

def test_auth_without_tls_is_an_error():
    """AUTH is offered only inside TLS: "auth" on a plain listener could
    never take a password (unless auth-plaintext says so)."""
    with ConfDir() as c:
        text = good_conf(c.path).replace(
            "listen on 127.0.0.1 port 2525",
            "listen on 127.0.0.1 port 2525\nlisten on 127.0.0.1 port 2587 "
            "auth")
        line = text.splitlines().index(
            "listen on 127.0.0.1 port 2587 auth") + 1
        path = c.write("auth.conf", text)
        check_error(path, line)
        r = run_smtpd(["-n", "-f", path])
        assert "auth without tls" in r.output, r.output
        check_ok(c.write("plain.conf", text.replace(
            "port 2587 auth", "port 2587 auth auth-plaintext")))


def test_table_unreadable_by_lookup():
    """A credentials table root alone can read (in a 0700 directory, as
    under /root) parses, but lookup (_smtpd) could never open it: -n says
    so with the table's line; once readable, OK."""
    with ConfDir() as c:
        os.chmod(c.path, 0o700)
        creds = c.write("creds", "alice $6$salt$hash\n")
        os.chmod(creds, 0o600)
        cert, key = make_certificate()
        text = (good_conf(c.path) +
                'pki mail.example.test cert "%s"\n'
                'pki mail.example.test key "%s"\n'
                "table creds file:%s\n" % (cert, key, creds)).replace(
            "listen on 127.0.0.1 port 2525",
            "listen on 127.0.0.1 port 2525 tls pki mail.example.test "
            "auth <creds>")
        line = text.splitlines().index("table creds file:%s" % creds) + 1
        path = c.write("creds.conf", text)
        check_error(path, line)
        r = run_smtpd(["-n", "-f", path])
        assert "_smtpd" in r.output and creds in r.output, r.output
        os.chmod(c.path, 0o755)
        os.chmod(creds, 0o644)
        check_ok(path)


def test_relay_secrets_root_only_is_fine():
    """Relay credentials are read by the mta while still root: a 0600
    table is what they should be, and no error."""
    with ConfDir() as c:
        secrets = c.write("secrets", "isp user:pass\n")
        os.chmod(secrets, 0o600)
        text = good_conf(c.path) + (
            "table secrets file:%s\n"
            'action "out" relay host smtp+tls://isp@smtp.example.net:587 '
            "auth <secrets>\n" % secrets)
        check_ok(c.write("relay.conf", text))


def test_pki_key_missing():
    """A listener's key that does not exist is an error on its line."""
    with ConfDir() as c:
        cert, _ = make_certificate()
        missing = os.path.join(c.path, "nokey.pem")
        text = good_conf(c.path).replace(
            "listen on 127.0.0.1 port 2525",
            'pki mx cert "%s"\npki mx key "%s"\n'
            "listen on 127.0.0.1 port 2525 tls pki mx" % (cert, missing))
        line = text.splitlines().index('pki mx key "%s"' % missing) + 1
        path = c.write("key.conf", text)
        check_error(path, line)
