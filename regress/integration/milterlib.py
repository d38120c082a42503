"""
milterlib.py -- what the milter tests share (test_milter*.py): real mail
filters started on loopback ports for one test and stopped after it, the
daemon's configuration with a filter chain, and SMTP sessions that go on
after a refusal so that every reply is seen.

The filters:
  Filter    regress/milter/scripted_milter.py (python3-milter, on
            Sendmail's libmilter): replies and modifications from a JSON
            script the test rewrites between sessions, every event it
            receives logged as JSON lines (Filter.events()).
  Tap       regress/milter/raw_milter.py tap: a proxy in front of a
            filter logging every packet both ways, decoded (exact macros
            per stage, round trips).
  Garbage   regress/milter/raw_milter.py garbage: a filter that answers
            a stage with bytes that are not the protocol.
Each is a context manager; stop() ends the process it started (SIGTERM,
then SIGKILL) and nothing else.  The ports are this module's: 15420-15449
(the machine's plan for the milter tests).
"""

import json
import os
import re
import signal
import socket
import subprocess
import sys
import tempfile
import time

import fixture
from fixture import DEFAULT_CONF, SMTPConnection, SMTPError

HERE = os.path.dirname(os.path.abspath(__file__))
MILTER_DIR = os.path.join(os.path.dirname(HERE), "milter")
SCRIPTED = os.path.join(MILTER_DIR, "scripted_milter.py")
RAW = os.path.join(MILTER_DIR, "raw_milter.py")
PYTHON = "/usr/bin/python3"	# Debian's: it sees python3-milter

PORT_FIRST = 15420
PORT_LAST = 15449
STOP_GRACE = 0.3	# seconds a filter gets to exit on SIGTERM (Process.stop)

REJECT = "5.7.1 Command rejected"
TEMPFAIL = "4.7.1 Service unavailable - try again later"


def need_pymilter():
    r = subprocess.run([PYTHON, "-c", "import Milter"],
                       stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    if r.returncode != 0:
        fixture.skip("python3-milter is not installed (mk/deps.sh "
                     "installs it)")


def tmpdir(prefix):
    os.makedirs(fixture.TEST_ROOT, mode=0o755, exist_ok=True)
    d = tempfile.mkdtemp(prefix=prefix, dir=fixture.TEST_ROOT)
    os.chmod(d, 0o755)
    return d


def wait_port(port, proc=None, timeout=15):
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if proc is not None and proc.poll() is not None:
            raise fixture.FixtureError("filter on port %d exited with %s"
                                       % (port, proc.returncode))
        try:
            socket.create_connection(("127.0.0.1", port), timeout=1).close()
            return
        except OSError:
            time.sleep(0.05)
    raise fixture.FixtureError("nothing listens on port %d after %ds"
                               % (port, timeout))


def port_free(port, timeout=10):
    """Wait until nobody listens on port (a filter of an earlier test
    is gone)."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        s = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
        s.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        try:
            s.bind(("127.0.0.1", port))
            return
        except OSError:
            time.sleep(0.1)
        finally:
            s.close()
    raise fixture.FixtureError("port %d still taken" % port)


class Process:
    """A program we start and, on stop(), end (only it)."""

    proc = None
    argv = None
    port = None

    def start(self):
        assert PORT_FIRST <= self.port <= PORT_LAST, self.port
        port_free(self.port)
        self.out = open(os.path.join(self.dir, "stdout"), "ab")
        self.proc = subprocess.Popen(self.argv, stdin=subprocess.DEVNULL,
                                     stdout=self.out,
                                     stderr=subprocess.STDOUT,
                                     start_new_session=True)
        wait_port(self.port, self.proc)
        return self

    def stop(self):
        if self.proc is None:
            return
        if self.proc.poll() is None:
            # libmilter notices SIGTERM only at its next accept timeout
            # (seconds); what the tests read is written and flushed as it
            # happens, so a short grace and then SIGKILL lose nothing
            self.proc.send_signal(signal.SIGTERM)
            try:
                self.proc.wait(STOP_GRACE)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait(10)
        self.proc = None
        self.out.close()

    def alive(self):
        return self.proc is not None and self.proc.poll() is None

    def output(self):
        try:
            with open(os.path.join(self.dir, "stdout"), "rb") as f:
                return f.read().decode("utf-8", "replace")
        except FileNotFoundError:
            return ""

    def __enter__(self):
        return self.start()

    def __exit__(self, *exc):
        self.stop()
        return False


class Filter(Process):
    """scripted_milter.py on 127.0.0.1:port."""

    def __init__(self, port, script=None):
        self.port = port
        self.dir = tmpdir("milter.")
        self.log_path = os.path.join(self.dir, "events.jsonl")
        self.script_path = os.path.join(self.dir, "script.json")
        self.set(script or {})
        self.argv = [PYTHON, SCRIPTED, "inet:%d@127.0.0.1" % port,
                     self.log_path, self.script_path]

    def set(self, script):
        """The script for the connections from now on."""
        tmp = self.script_path + ".new"
        with open(tmp, "w") as f:
            json.dump(script, f)
        os.rename(tmp, self.script_path)

    def events(self, conn=None, stage=None):
        out = []
        try:
            with open(self.log_path) as f:
                for line in f:
                    if not line.endswith("\n"):
                        break	# being written
                    e = json.loads(line)
                    if conn is not None and e.get("conn") != conn:
                        continue
                    if stage is not None and e.get("stage") != stage:
                        continue
                    out.append(e)
        except FileNotFoundError:
            pass
        return out

    def last_conn(self):
        return max([e.get("conn", 0) for e in self.events()] or [0])

    def wait_event(self, conn, stage, timeout=10):
        ev = fixture.poll(lambda: self.events(conn, stage), timeout)
        assert ev, "the filter saw no %s on connection %d; it saw %s" % (
            stage, conn, [e["stage"] for e in self.events(conn)])
        return ev


class Tap(Process):
    """raw_milter.py tap on 127.0.0.1:port, in front of upstream."""

    def __init__(self, port, upstream):
        self.port = port
        self.dir = tmpdir("tap.")
        self.log_path = os.path.join(self.dir, "packets.jsonl")
        self.argv = [PYTHON, RAW, "tap", str(port), str(upstream),
                     self.log_path]

    def packets(self, conn=None):
        out = []
        try:
            with open(self.log_path) as f:
                for line in f:
                    if line.endswith("\n"):
                        p = json.loads(line)
                        if conn is None or p.get("conn") == conn:
                            out.append(p)
        except FileNotFoundError:
            pass
        return out

    def last_conn(self):
        return max([p.get("conn", 0) for p in self.packets()] or [0])


class Garbage(Process):
    """raw_milter.py garbage: answers stage with kind (noise, badcmd,
    short)."""

    def __init__(self, port, stage, kind):
        self.port = port
        self.dir = tmpdir("garbage.")
        self.log_path = os.path.join(self.dir, "packets.jsonl")
        self.argv = [PYTHON, RAW, "garbage", str(port), stage, kind,
                     self.log_path]


# --------------------------------------------------------------------------
# the daemon's configuration

def milter_conf(milters, chain, sendmail_chain=None, listen_extra="",
                base=DEFAULT_CONF, extra=""):
    """DEFAULT_CONF (or base) with the filter definitions (a list of
    (name, port or address, options)) before it, the listener's chain
    (a list of names) and, if given, the sendmail chain."""
    defs = ""
    for name, where, opts in milters:
        addr = where if isinstance(where, str) else \
            "inet:127.0.0.1:%d" % where
        defs += 'milter %s "%s" %s\n' % (name, addr, opts)
    listen = "listen on 127.0.0.1 port @PORT@"
    assert listen in base
    if chain:
        ref = chain[0] if len(chain) == 1 else \
            "{ %s }" % " ".join(chain)
        new = "%s %s milter %s" % (listen, listen_extra, ref)
    else:
        new = "%s %s" % (listen, listen_extra)
    text = defs + base.replace(listen, new.replace("  ", " "), 1)
    if sendmail_chain:
        ref = sendmail_chain[0] if len(sendmail_chain) == 1 else \
            "{ %s }" % " ".join(sendmail_chain)
        text += "sendmail milter %s\n" % ref
    return text + extra


# --------------------------------------------------------------------------
# SMTP

def message(marker, to="phtest1@example.test", extra_headers="",
            body=None):
    """A message with CRLF line ends, Message-ID and Date of its own (so
    that the daemon adds none)."""
    if body is None:
        body = "line one %s\r\n\r\nline three  \r\n" % marker
    return ("From: A <a@example.org>\r\n"
            "To: %s\r\n"
            "Subject: %s\r\n"
            "%s"
            "Message-ID: <%s@example.org>\r\n"
            "Date: Mon, 7 Dec 2026 10:00:00 +0000\r\n"
            "\r\n%s" % (to, marker, extra_headers, marker, body)).encode()


class Session:
    """One SMTP session that records every reply and goes on after a
    refusal as far as the server lets it."""

    def __init__(self, port, helo="client.example.org", timeout=30):
        self.c = SMTPConnection(port, timeout=timeout)
        self.greeting = self.c.greeting
        self.closed = False
        self.helo = helo

    def cmd(self, line):
        if self.closed:
            return None
        try:
            return self.c.command(line)
        except (SMTPError, OSError):
            self.closed = True
            return None

    def ehlo(self):
        return self.cmd("EHLO " + self.helo)

    def data(self, msg):
        """DATA and the message; (354 reply, final reply), the final
        one None if DATA was refused."""
        r = self.cmd("DATA")
        if r is None or r.code != 354:
            return r, None
        try:
            self.c.send(fixture.dot_stuff(msg) + b".\r\n")
            return r, self.c.reply()
        except (SMTPError, OSError):
            self.closed = True
            return r, None

    def transaction(self, sender, rcpts, msg, mail_args=""):
        """MAIL, each RCPT, DATA: a dict of the replies (None for what
        was not sent)."""
        out = {"mail": None, "rcpt": [], "data": None, "dot": None}
        out["mail"] = self.cmd("MAIL FROM:<%s>%s" % (
            sender, " " + mail_args if mail_args else ""))
        if out["mail"] is None or out["mail"].code != 250:
            return out
        for r in rcpts:
            out["rcpt"].append(self.cmd("RCPT TO:<%s>" % r))
        if not any(r is not None and r.code == 250 for r in out["rcpt"]):
            return out
        out["data"], out["dot"] = self.data(msg)
        return out

    def close(self):
        if not self.closed:
            try:
                self.c.command("QUIT")
            except (SMTPError, OSError):
                pass
        self.c.close()
        self.closed = True

    def __enter__(self):
        return self

    def __exit__(self, *exc):
        self.close()
        return False


def assert_reply(reply, code, text=None, what=""):
    assert reply is not None, "%s: no reply (connection closed)" % what
    assert reply.code == code, "%s: got %s, expected %d %s" % (
        what, reply, code, text or "")
    if text is not None:
        assert reply.text == text, "%s: got %r, expected %d %r" % (
            what, reply, code, text)


def maildir_with(marker, username=fixture.TEST_USER1):
    """The messages in username's Maildir holding marker."""
    m = marker.encode()
    hits = []
    for path in fixture.maildir_files(username):
        try:
            data = fixture.read_file(path)
        except FileNotFoundError:
            continue
        if m in data:
            hits.append(data)
    return hits


def wait_delivered(marker, username=fixture.TEST_USER1, count=1,
                   timeout=fixture.DELIVERY_TIMEOUT):
    hits = fixture.poll(lambda: len(maildir_with(marker, username)) >=
                        count and maildir_with(marker, username), timeout)
    hits = maildir_with(marker, username)
    assert len(hits) == count, "%d message(s) with %r for %s, expected " \
        "%d" % (len(hits), marker, username, count)
    return hits


def mbox_with(marker, username=fixture.TEST_USER2):
    """How many messages in username's mbox hold marker."""
    try:
        data = fixture.read_file(fixture.mbox_path(username))
    except FileNotFoundError:
        return 0
    msgs = re.split(rb"(?:^|\n)From ", data)
    return sum(1 for m in msgs if marker.encode() in m)


def smtpctl(d, *args, check=True):
    p = subprocess.run([fixture.binary("smtpctl"), "-s", d.socket_path] +
                       list(args), stdin=subprocess.DEVNULL,
                       capture_output=True, text=True, timeout=20)
    if check and p.returncode != 0:
        raise AssertionError("smtpctl %s: exit %d: %s%s" % (
            " ".join(args), p.returncode, p.stdout, p.stderr))
    return p


def queue_json(d):
    out = smtpctl(d, "show", "queue", "-j").stdout
    return [json.loads(ln) for ln in out.splitlines() if ln.strip()]


def worker_pids(d):
    return sorted(p for p in d.children()
                  if (fixture.proc_title(p) or "").startswith(
                      "smtpd: smtp worker"))


if __name__ == "__main__":
    sys.exit("milterlib.py is a module for the milter tests")
