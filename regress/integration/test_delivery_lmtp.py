"""
test_delivery_lmtp.py -- lmtp actions (issue 6): delivery to Dovecot's
LMTP server (dovecot-lmtpd, started here with a private configuration,
socket and port), one connection reused for many messages, and the
per-recipient reply of a scripted LMTP server honoured.
"""

import os
import signal
import subprocess
import tempfile
import time

import fixture
from fixture import Daemon, poll, unique_marker
from test_mta_relay import FakeSMTP, send_mail, message, wait_log

TIMEOUT = 60

DOVECOT = "/usr/sbin/dovecot"

DOVECOT_CONF = """\
protocols = lmtp
base_dir = %(dir)s/run
state_dir = %(dir)s/state
log_path = %(dir)s/dovecot.log
ssl = no
listen = 127.0.0.1
mail_location = maildir:~/Maildir
auth_username_format = %%Ln
first_valid_uid = 100
passdb {
  driver = passwd
}
userdb {
  driver = passwd
}
service lmtp {
  unix_listener %(dir)s/lmtp {
    mode = 0666
  }
  inet_listener lmtp {
    address = 127.0.0.1
    port = %(port)d
  }
}
service anvil {
  chroot =
}
"""

CONF = """\
spool "@TMP@/spool"
socket "@TMP@/smtpd.sock"
smtp workers 1
listen on 127.0.0.1 port @PORT@
action "unix" lmtp "%(sock)s"
action "tcp" lmtp "127.0.0.1:%(port)d"
match from any for domain "example.test" action "unix"
match from any for domain "tcp.test" action "tcp"
"""


class Dovecot:
    def __init__(self):
        if not os.access(DOVECOT, os.X_OK):
            raise fixture.FixtureError("dovecot not installed "
                                       "(mk/deps.sh: dovecot-lmtpd)")
        self.dir = tempfile.mkdtemp(prefix="dovecot.",
                                    dir=fixture.TEST_ROOT)
        os.chmod(self.dir, 0o755)
        self.port = fixture.free_port()
        self.sock = os.path.join(self.dir, "lmtp")
        self.conf = os.path.join(self.dir, "dovecot.conf")
        with open(self.conf, "w") as f:
            f.write(DOVECOT_CONF % {"dir": self.dir, "port": self.port})
        for sub in ("run", "state"):
            os.makedirs(os.path.join(self.dir, sub))
        self.proc = subprocess.Popen(
            [DOVECOT, "-F", "-c", self.conf], stdout=subprocess.DEVNULL,
            stderr=subprocess.DEVNULL, start_new_session=True)
        if not poll(lambda: os.path.exists(self.sock), 10):
            self.stop()
            raise fixture.FixtureError("dovecot did not start: %s"
                                       % self.log())

    def log(self):
        try:
            with open(os.path.join(self.dir, "dovecot.log")) as f:
                return f.read()
        except FileNotFoundError:
            return ""

    def stop(self):
        if self.proc.poll() is None:
            self.proc.send_signal(signal.SIGTERM)
            try:
                self.proc.wait(10)
            except subprocess.TimeoutExpired:
                os.killpg(self.proc.pid, signal.SIGKILL)
                self.proc.wait(5)
        fixture.shutil.rmtree(self.dir, ignore_errors=True)

    def __enter__(self):
        return self

    def __exit__(self, *exc):
        self.stop()
        return False


def find_in_maildir(username, marker):
    for f in fixture.maildir_files(username):
        data = fixture.read_file(f)
        if marker.encode() in data:
            return data
    return None


def test_dovecot_lmtp_unix_and_tcp_reused():
    """Three messages over the unix socket and one over TCP reach the
    Maildir through Dovecot; the unix socket connection is opened once."""
    fixture.setup_system()
    u = fixture.TEST_USER1
    with Dovecot() as dv, Daemon(conf=CONF % {"sock": dv.sock,
                                               "port": dv.port}) as d:
        markers = []
        for i in range(3):
            m = unique_marker("lmtp%d" % i)
            markers.append(m)
            send_mail(d.port, ["%s@example.test" % u], message(m))
            wait_log(d, r"to=<%s@example.test>, relay=lmtp %s.*"
                     r"status=sent" % (u, dv.sock), count=i + 1)
        m = unique_marker("lmtptcp")
        markers.append(m)
        send_mail(d.port, ["%s@tcp.test" % u], message(m))
        wait_log(d, r"to=<%s@tcp.test>, relay=lmtp 127\.0\.0\.1:%d.*"
                 r"status=sent" % (u, dv.port))
        for m in markers:
            data = poll(lambda m=m: find_in_maildir(u, m), 10)
            assert data, "message %s not in the Maildir" % m
            # Dovecot writes Return-Path and Delivered-To itself
            assert b"Return-Path: <sender@client.test>" in data
        assert dv.log().count("Connect from local") == 1, dv.log()


def test_lmtp_per_recipient_reply():
    """A 550 after the data bounces, a 452 defers: the LMTP server's
    reply for the recipient decides."""
    fixture.setup_system()

    def final(txn):
        return "550 5.2.1 mailbox disabled" if "phtest1" in \
            txn["rcpts"][0] else "452 4.2.2 over quota"
    with FakeSMTP(data_reply=final) as srv, \
            Daemon(conf=CONF % {"sock": "/nonexistent",
                                "port": srv.port}) as d:
        send_mail(d.port, ["%s@tcp.test" % fixture.TEST_USER1],
                  message("l1"))
        send_mail(d.port, ["%s@tcp.test" % fixture.TEST_USER2],
                  message("l2"))
        wait_log(d, r"to=<%s@tcp.test>.*dsn=5\.2\.1, status=bounced"
                 % fixture.TEST_USER1)
        wait_log(d, r"to=<%s@tcp.test>.*dsn=4\.2\.2, status=deferred"
                 % fixture.TEST_USER2)
        cmds = srv.sessions[0]["commands"]
        assert cmds[0].startswith("LHLO "), cmds
