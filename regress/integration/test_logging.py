"""
Log lines in the shape log analysers know: one per received message
(from=, size=, nrcpt=, client=) and one per delivery attempt (to=,
relay=, delay=, delays=a/b/c/d, dsn=, status=), with the queue id.
"""

import os
import re
import shutil
import signal
import smtplib
import socket
import subprocess
import tempfile
import threading
import time

from fixture import (DEFAULT_CONF, START_TIMEOUT, STOP_TIMEOUT, TEST_ROOT,
                     Daemon, FixtureError, SMTPConnection, SMTPError, alive,
                     TEST_USER1, binary, ensure_test_user, free_port, poll,
                     proc_title, reset_maildir, setup_system, skip,
                     unique_marker, wait_maildir)

USER = "phctl"
# the syslog tests' own mailbox: phctl is shared with other modules
SYSLOG_USER = "phlog"


def test_received_and_delivered_lines():
    """One queue id per message (issue 15 item 10): "queued as", the
    from= line and every to= line carry the same one; the client is
    host[address]."""
    ensure_test_user(USER)
    with Daemon() as d:
        with SMTPConnection(d.port) as c:
            c.command("EHLO log.test")
            c.command("MAIL FROM:<a@example.test>")
            c.command("RCPT TO:<%s@example.test>" % USER)
            c.command("RCPT TO:<%s@example.test>" % TEST_USER1)
            c.command("DATA")
            c.send(b"Subject: log\r\n\r\nx\r\n.\r\n")
            msgid = c.reply().text.split()[-1]
            c.command("QUIT")
        assert re.fullmatch(r"[0-9a-f]{8}", msgid), msgid
        pats = [(r"\] queue: %s: to=<%s@example\.test>, relay=local, "
                 r"delay=\d+\.\d\d, delays=0/\d+\.\d\d/\d+\.\d\d/"
                 r"\d+\.\d\d, dsn=2\.0\.0, status=sent "
                 r"\(delivered\)" % (msgid, u)) for u in (USER, TEST_USER1)]
        deadline = time.monotonic() + 10
        while not all(re.search(p, d.log()) for p in pats):
            assert time.monotonic() < deadline, \
                "no delivery lines like %r in:\n%s" % (pats, d.log_tail())
            time.sleep(0.1)
        assert re.search(r"\] smtp worker \d+: %s: from=<a@example\.test>, "
                         r"size=\d+, nrcpt=2, client=[^\s\[\]]+"
                         r"\[127\.0\.0\.1\], helo=<log\.test>" % msgid,
                         d.log()), d.log_tail()


def test_no_doubled_prefix():
    """"queue: queue: 1 messages loaded" (issue 15 item 10): no line
    repeats the process name the prefix already gives."""
    from test_diskfull import CONF
    from test_queue_spool import fresh_spool, one_queued
    with fresh_spool() as spool:
        one_queued(spool, unique_marker("prefix"))
        with Daemon(conf=CONF.format(spool=spool)) as d:
            poll(lambda: "messages loaded" in d.log())
            log = d.log()
    assert re.search(r"^smtpd\[\d+\] queue: 1 messages loaded", log, re.M), \
        log
    doubled = re.findall(r"^smtpd\[\d+\] (([a-z]+)[^:]*: \2: .*)$", log,
                         re.M)
    assert not doubled, doubled


REJECT = (r"\] smtp worker \d+: NOQUEUE: reject: %s from "
          r"(?:unknown|[a-z0-9.-]+)\[127\.0\.0\.1\]: %s")


def test_reject_lines_name_the_client():
    """Issue 15 item 10: a refusal names the client as host[address] in
    Postfix's shape, never by its HELO name alone: RCPT (relay), DATA
    without recipients, VRFY of an unknown user, a connection over the
    per-address limit."""
    conf = ("smtp max-sessions-per-ip 1\n"
            'match from src 127.0.0.0/8 for domain "trusted.test" '
            'action "local"\n')
    with Daemon(conf_extra=conf) as d:
        with SMTPConnection(d.port) as c:
            c.command("EHLO client7.test")
            assert c.command("VRFY nosuchuser@example.test").code == 550
            assert c.command("MAIL FROM:<a@b.test>").code == 250
            r = c.command("RCPT TO:<x@elsewhere.test>")
            assert r.code == 550, r
            assert c.command("DATA").code == 554
            with SMTPConnection(d.port) as c2:
                assert c2.greeting.code == 421, c2.greeting
            c.command("QUIT")
        log = d.log()
    for stage, rest in (
            ("RCPT", r"550 5\.7\.1 <x@elsewhere\.test>: Relay access "
                     r"denied; from=<a@b\.test> to=<x@elsewhere\.test> "
                     r"proto=ESMTP helo=<client7\.test>$"),
            ("DATA", r"554 5\.5\.1 Error: no valid recipients; "
                     r"from=<a@b\.test> proto=ESMTP helo=<client7\.test>$"),
            ("VRFY", r"550 5\.1\.1 .*; proto=ESMTP "
                     r"helo=<client7\.test>$"),
            ("CONNECT", r"421 4\.7\.0 \S+ Too many sessions from your "
                        r"address, try again later; proto=SMTP$")):
        assert re.search(REJECT % (stage, rest), log, re.M), \
            "no %s reject line in:\n%s" % (stage, log)
    assert "RCPT from client7.test" not in log, log


# --------------------------------------------------------------------------
# The daemon as the BSD rc scripts and systemd run it: without -d, logging
# to syslog.  The syslog daemon is ours: a unix datagram receiver at a path
# in the test's directory, which /dev/log names inside a private mount
# namespace the daemon runs in (a tmpfs over /dev whose entries point to
# the real ones, and log to our socket).  Nothing outside the namespace
# sees it, so a system syslogd, if any, is never involved.

class SyslogReceiver:
    """What syslogd does for us: take datagrams at `path', keep each as a
    line with the time it came.  stop() closes and removes the socket, as
    a syslogd that stops; start() binds a new one at the same path, as a
    restarted one."""

    def __init__(self, path):
        self.path = path
        self.lines = []		# (monotonic time, text)
        self.sock = None
        self.thread = None
        self.lock = threading.Lock()

    def start(self, read=True):
        """Bind the socket; with read=False nobody reads it until
        resume(), as a syslogd that hangs."""
        if os.path.exists(self.path):
            os.unlink(self.path)
        sock = socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM)
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 1 << 20)
        sock.bind(self.path)
        os.chmod(self.path, 0o666)
        sock.settimeout(0.2)
        self.sock = sock
        if read:
            self.resume()

    def resume(self):
        self.thread = threading.Thread(target=self._run, args=(self.sock,),
                                       daemon=True)
        self.thread.start()

    def _run(self, sock):
        while self.sock is sock:
            try:
                data = sock.recv(65536)
            except socket.timeout:
                continue
            except OSError:
                return
            with self.lock:
                self.lines.append((time.monotonic(),
                                   data.decode("utf-8", "replace")))

    def stop(self):
        sock, self.sock = self.sock, None
        if self.thread is not None:
            self.thread.join(5)
        if sock is not None:
            sock.close()
        if os.path.exists(self.path):
            os.unlink(self.path)

    def text(self, since=0):
        with self.lock:
            return "\n".join(t for at, t in self.lines if at >= since)

    def as_file(self, path, hostname="mx"):
        """The lines as syslogd writes them to /var/log/mail.log:
        "<pri>Mmm dd hh:mm:ss tag: msg" becomes "Mmm dd hh:mm:ss host
        tag: msg"."""
        with open(path, "w") as f:
            for line in self.text().splitlines():
                m = re.match(r"<\d+>(\w{3} [ \d]\d \d\d:\d\d:\d\d) (.*)",
                             line)
                if m:
                    f.write("%s %s %s\n" % (m.group(1), hostname,
                                            m.group(2)))


def _mount_ns_of(pid):
    try:
        return os.readlink("/proc/%d/ns/mnt" % pid)
    except OSError:
        return None


def _pids_in_ns(ns):
    pids = []
    for name in os.listdir("/proc"):
        if name.isdigit() and _mount_ns_of(int(name)) == ns:
            pids.append(int(name))
    return pids


class SyslogDaemon:
    """smtpd without -d, in its own mount namespace where /dev/log is
    the receiver's socket.  Attributes: port, tmp, pid (the parent),
    syslog (the SyslogReceiver), conf_path."""

    def __init__(self, conf_extra="", conf=None, syslog=True, args=()):
        self.args = " ".join(args)	# options for smtpd, e.g. -v
        self.conf_extra = conf_extra
        self.conf_template = conf
        # False: no syslogd at all; "hung": its socket, nobody reading
        self.with_syslog = syslog
        self.pid = None
        self.ns = None
        self.tmp = None

    def __enter__(self):
        self.start()
        return self

    def __exit__(self, *exc):
        self.stop()
        return False

    def start(self):
        if shutil.which("unshare") is None or \
                shutil.which("mount") is None:
            skip("unshare(1) and mount(8) are needed (util-linux)")
        setup_system()
        os.makedirs(TEST_ROOT, mode=0o755, exist_ok=True)
        self.tmp = tempfile.mkdtemp(prefix="s.", dir=TEST_ROOT)
        os.chmod(self.tmp, 0o755)
        self.port = free_port()
        self.conf_path = os.path.join(self.tmp, "smtpd.conf")
        conf = self.conf_template or DEFAULT_CONF
        if self.conf_extra:
            conf = conf.rstrip("\n") + "\n" + self.conf_extra
        with open(self.conf_path, "w") as f:
            f.write(conf.replace("@TMP@", self.tmp).replace(
                "@PORT@", str(self.port)))
        self.syslog = SyslogReceiver(os.path.join(self.tmp, "log"))
        if self.with_syslog:
            self.syslog.start(read=self.with_syslog != "hung")
        olddev = os.path.join(self.tmp, "olddev")
        os.mkdir(olddev)
        nsfile = os.path.join(self.tmp, "ns")
        script = """
set -e
mount --make-rprivate /
mount --bind /dev "$OLDDEV"
mount -t tmpfs -o mode=755 tmpfs /dev
for f in "$OLDDEV"/* "$OLDDEV"/.[!.]*; do
	[ -e "$f" ] || [ -L "$f" ] || continue
	ln -s "$f" "/dev/${f##*/}"
done
rm -f /dev/log
ln -s "$SOCK" /dev/log
readlink /proc/self/ns/mnt >"$NSFILE"
exec "$SMTPD" $ARGS -f "$CONF"
"""
        # a pid file of its own (the default /run/smtpd.pid would be
        # shared with any other daemon); it names the parent once the
        # daemon has detached
        self.pid_path = os.path.join(self.tmp, "smtpd.pid")
        env = dict(os.environ, OLDDEV=olddev, SOCK=self.syslog.path,
                   NSFILE=nsfile, SMTPD=binary("smtpd"),
                   CONF=self.conf_path,
                   ARGS=(self.args + " -P " + self.pid_path).strip())
        r = subprocess.run(["unshare", "--mount", "sh", "-c", script],
                           env=env, stdin=subprocess.DEVNULL,
                           stdout=subprocess.PIPE, stderr=subprocess.STDOUT,
                           timeout=30)
        if r.returncode != 0:
            self.syslog.stop()
            raise FixtureError("smtpd in a mount namespace: status %d: %s"
                               % (r.returncode, r.stdout.decode()))
        with open(nsfile) as f:
            self.ns = f.read().strip()
        deadline = time.monotonic() + START_TIMEOUT
        while time.monotonic() < deadline:
            for pid in _pids_in_ns(self.ns):
                if pid == self._pid_from_file():
                    self.pid = pid
            if self.pid is not None:
                try:
                    with SMTPConnection(self.port, timeout=5) as c:
                        if c.greeting.code == 220:
                            c.command("QUIT")
                            return self
                except (OSError, SMTPError):
                    pass
            time.sleep(0.1)
        self.stop()
        raise FixtureError("no 220 banner from the daemon without -d; "
                           "syslog:\n%s" % self.syslog.text())

    def processes(self):
        return _pids_in_ns(self.ns) if self.ns else []

    # the processes that live as long as the daemon (the offline pick-up,
    # forked at start and every 30 s, wears the parent's title until it
    # names itself; delivery processes end when idle)
    LONG_LIVED = ("smtpd: smtp worker", "smtpd: queue", "smtpd: lookup",
                  "smtpd: mta", "smtpd: control", "smtpd: auth")

    def daemons(self):
        """The daemon's long-lived processes: the parent and its
        permanent children, not the ones that come and go."""
        return [pid for pid in self.processes()
                if pid == self.pid or
                (proc_title(pid) or "").startswith(self.LONG_LIVED)]

    def _pid_from_file(self):
        try:
            with open(self.pid_path) as f:
                return int(f.read().split()[0])
        except (OSError, ValueError, IndexError):
            return None

    def running(self):
        return self.pid is not None and alive(self.pid)

    def stop(self):
        """SIGTERM to the parent; every process of the namespace must be
        gone within STOP_TIMEOUT."""
        left = []
        if self.ns is not None:
            if self.running():
                os.kill(self.pid, signal.SIGTERM)
            deadline = time.monotonic() + STOP_TIMEOUT
            while self.processes() and time.monotonic() < deadline:
                time.sleep(0.1)
            left = self.processes()
            for pid in left:
                try:
                    os.kill(pid, signal.SIGKILL)
                except ProcessLookupError:
                    pass
            self.ns = None
        self.syslog.stop()
        if self.tmp and not os.environ.get("POSTHASTE_KEEP"):
            shutil.rmtree(self.tmp, ignore_errors=True)
        assert not left, "processes left after SIGTERM: %s" % left


def _send_messages(port, rcpt, markers, helo="load.test",
                   sender="a@example.test"):
    """One session, one message per marker; returns the queue ids."""
    ids = []
    with SMTPConnection(port) as c:
        c.command("EHLO %s" % helo)
        for m in markers:
            assert c.command("MAIL FROM:<%s>" % sender).code == 250
            assert c.command("RCPT TO:<%s>" % rcpt).code == 250
            assert c.command("DATA").code == 354
            c.send(("Subject: %s\r\n\r\n%s\r\n.\r\n" % (m, m)).encode())
            r = c.reply()
            assert r.code == 250, r
            ids.append(r.text.split()[-1])
        c.command("QUIT")
    return ids


def test_no_syslog_at_all():
    """Issue 15 item 7: with no /dev/log, the daemon without -d died
    within a second of its first queued message (a sandboxed child's
    syslog() tried to reconnect: socket(), SIGSYS).  It must deliver and
    keep running; when a syslogd appears, lines arrive: the new ones and
    (issue 22: nothing lost silently) those of the time without it,
    each at facility mail."""
    ensure_test_user(SYSLOG_USER)
    reset_maildir(SYSLOG_USER)
    rcpt = "%s@example.test" % SYSLOG_USER
    with SyslogDaemon(syslog=False) as d:
        before = sorted(d.daemons())
        early = _send_messages(d.port, rcpt, ["n%02d" % i for i in range(10)])
        wait_maildir(SYSLOG_USER, 10)
        time.sleep(1.5)
        gone = [pid for pid in before if pid not in d.daemons()]
        assert not gone, "processes died: %s" % gone
        d.syslog.start()
        ids = _send_messages(d.port, rcpt, ["late"])
        assert poll(lambda: all(re.search(
            r"smtpd/queue\[\d+\]: %s: to=<.*status=sent" % i,
            d.syslog.text()) for i in early + ids), timeout=15), \
            d.syslog.text()
        text = d.syslog.text()
    pris = re.findall(r"^<(\d+)>", text, re.M)
    assert pris and all(int(p) >> 3 == 2 for p in pris), \
        "not all at facility mail (2): %s" % sorted(set(pris))
    assert len(pris) == len(text.splitlines()), text


test_no_syslog_at_all.timeout = 120


def test_syslog_stopped_and_restarted_under_load():
    """Issue 15 item 7: without -d, a syslogd that goes away and comes
    back (rsyslog restarted) must not stop the daemon or any child: 200
    messages, the receiver stopped after 50 and restarted after 150; all
    200 are delivered, nothing died, and the lines of the outage and
    after it arrive at the restarted receiver."""
    ensure_test_user(SYSLOG_USER)
    reset_maildir(SYSLOG_USER)
    rcpt = "%s@example.test" % SYSLOG_USER
    with SyslogDaemon() as d:
        before = sorted(d.daemons())
        ids = _send_messages(d.port, rcpt, ["m%03d" % i for i in range(50)])
        d.syslog.stop()
        ids += _send_messages(d.port, rcpt,
                              ["m%03d" % i for i in range(50, 150)])
        time.sleep(0.5)
        assert d.running(), "the daemon died while syslog was away"
        restarted = time.monotonic()
        d.syslog.start()
        ids += _send_messages(d.port, rcpt,
                              ["m%03d" % i for i in range(150, 200)])
        wait_maildir(SYSLOG_USER, 200, timeout=60)
        gone = [pid for pid in before if pid not in d.daemons()]
        assert not gone, "processes died: %s; syslog:\n%s" % (
            gone, d.syslog.text()[-3000:])
        # what happened while syslog was away waited for it (a bounded
        # backlog in the parent); the last 50 came to the restarted one
        deadline = time.monotonic() + 10
        while True:
            after = d.syslog.text(restarted)
            missing = [i for i in ids[50:]
                       if not re.search(r"smtpd/queue\[\d+\]: %s: to=<%s>"
                                        r".*status=sent" % (i, rcpt), after)]
            if not missing or time.monotonic() > deadline:
                break
            time.sleep(0.2)
        assert not missing, "no delivery line after the restart for %s:" \
            "\n%s" % (missing[:5], after[-3000:])
    assert "SIGSYS" not in d.syslog.text(), d.syslog.text()[-3000:]


test_syslog_stopped_and_restarted_under_load.timeout = 240


def test_syslog_that_hangs_costs_counted_lines_only():
    """Issue 15 item 7: a syslogd that takes no lines at all (its socket
    there, nobody reading) never blocks the daemon: with -v -v (a line
    per command and reply) and 1000 messages the parent's backlog
    overflows; mail flows all the same, and once syslog reads again the
    lines come, with the number of those dropped."""
    ensure_test_user(SYSLOG_USER)
    reset_maildir(SYSLOG_USER)
    rcpt = "%s@example.test" % SYSLOG_USER
    with SyslogDaemon(syslog="hung", args=("-v", "-v")) as d:
        before = sorted(d.daemons())
        # long lines: the backlog (1 MB) overflows after some 7000
        sender = "a@" + ".".join(["s" * 60] * 4)
        threads = [threading.Thread(target=_send_messages, args=(
            d.port, rcpt, ["h%d_%03d" % (k, i) for i in range(250)]),
            kwargs={"sender": sender}) for k in range(4)]
        for t in threads:
            t.start()
        for t in threads:
            t.join(120)
        wait_maildir(SYSLOG_USER, 1000, timeout=120)
        gone = [pid for pid in before if pid not in d.daemons()]
        assert not gone, "processes died: %s" % gone
        d.syslog.resume()
        assert poll(lambda: re.search(
            r"smtpd/parent\[\d+\]: log: [1-9]\d* lines were dropped: "
            r"syslog did not take them", d.syslog.text()), timeout=15), \
            d.syslog.text()[-3000:]
        # lines logged afterwards come through
        ids = _send_messages(d.port, rcpt, ["after"])
        assert poll(lambda: re.search(r"smtpd/queue\[\d+\]: %s: to=<"
                                      % ids[0], d.syslog.text())), \
            d.syslog.text()[-3000:]


test_syslog_that_hangs_costs_counted_lines_only.timeout = 300


# What an administrator puts in jail.local to have fail2ban's own postfix
# filter read our log (smtpd(8) LOGGING): our syslog tag is smtpd/SERVICE.
F2B_FILTER = 'postfix[_daemon="smtpd/\\w+"]'
F2B_FILTER_SASL = 'postfix[_daemon="smtpd/\\w+", mode=auth]'


def _fail2ban_ips(logfile, filt):
    r = subprocess.run(["fail2ban-regex", "-o", "ip", logfile, filt],
                       stdin=subprocess.DEVNULL, stdout=subprocess.PIPE,
                       stderr=subprocess.STDOUT, timeout=60)
    out = r.stdout.decode("utf-8", "replace")
    assert r.returncode == 0, out
    return out.split()


def _smtp_from(source, port):
    c = smtplib.SMTP(timeout=30, source_address=(source, 0))
    c.connect("127.0.0.1", port)
    return c


def test_fail2ban_postfix_filter_reads_rejects():
    """Issue 15 item 10: Debian's fail2ban filter for Postfix, pointed at
    our syslog tag, finds the client address of relay attempts (mode
    normal) and of AUTH failures (mode auth, the postfix-sasl jail) in
    the daemon's syslog lines, and nothing of an innocent client."""
    if shutil.which("fail2ban-regex") is None or \
            not os.path.exists("/etc/fail2ban/filter.d/postfix.conf"):
        skip("fail2ban is not installed (mk/deps.sh installs it)")
    from test_smtp_auth import PASSWORD, auth_conf
    with SyslogDaemon(conf=auth_conf("auth-optional <creds> "
                                     "auth-plaintext")) as d:
        for _ in range(3):	# relaying, as a spammer tries it
            c = _smtp_from("127.0.0.7", d.port)
            c.ehlo("innocent.example.test")
            c.mail("a@b.test")
            code, _text = c.rcpt("victim@elsewhere.test")
            assert code == 550, (code, _text)
            c.quit()
        for _ in range(2):	# guessing passwords
            c = _smtp_from("127.0.0.8", d.port)
            c.ehlo("guess.test")
            try:
                c.login("alice", "wrong " + PASSWORD)
                raise AssertionError("a wrong password was taken")
            except smtplib.SMTPAuthenticationError:
                pass
            c.quit()
        c = _smtp_from("127.0.0.9", d.port)	# a good client
        c.ehlo("good.test")
        c.login("alice", PASSWORD)
        c.quit()
        logfile = os.path.join(d.tmp, "mail.log")
        deadline = time.monotonic() + 10
        while d.syslog.text().count("authentication failed") < 4 and \
                time.monotonic() < deadline:
            time.sleep(0.1)
        d.syslog.as_file(logfile)
        text = open(logfile).read()
        rejects = _fail2ban_ips(logfile, F2B_FILTER)
        sasl = _fail2ban_ips(logfile, F2B_FILTER_SASL)
    assert rejects == ["127.0.0.7"] * 3, (rejects, text)
    # smtplib tries PLAIN, then LOGIN: two failures a connection
    assert sasl == ["127.0.0.8"] * 4, (sasl, text)
