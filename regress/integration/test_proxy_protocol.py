"""
test_proxy_protocol.py -- the PROXY protocol (issue 21) behind a real
HAProxy: "listen on ... proxy-protocol from NET".

Debian's haproxy, started here in the foreground with a configuration
written here, on 127.0.0.71: port 15751 sends version 2 (send-proxy-v2)
to the daemon's plain listener 127.0.0.71:15750, port 15753 version 1
(send-proxy) to its smtps listener 127.0.0.71:15752 (the header comes
before the TLS handshake).  Clients connect to HAProxy from 127.0.0.72
(and .73); what the daemon must see is that client, never HAProxy:
in the log ("client=...[127.0.0.72]", with "proxy=127.0.0.71"), in the
Received field, in "match from src 127.0.0.72" (relays for .72, refuses
.73), and in the per-address session limit (two from .72 fill it, .73
still gets in).  Raw sockets: a header from a peer not in the list, a
malformed or truncated header, and no header at all are each closed
without a greeting and logged, and the worker (one, on purpose) goes on
serving; a v2 LOCAL header (a health check) keeps the real address.

One daemon and one HAProxy for the module: a single scenario test, plus
smtpd -n on the grammar.  About 6 s a build (the no-header timeout, 5 s,
runs alongside the rest).
"""

import os
import re
import shutil
import smtplib
import socket
import ssl
import struct
import subprocess
import tempfile
import threading
import time

import fixture
from fixture import Daemon, TEST_USER1, poll, run_smtpd, wait_maildir
from milterlib import Filter, need_pymilter
from test_smtp_common import HELO, make_certificate

TIMEOUT = 60

LB = "127.0.0.71"		# HAProxy, and the daemon's proxy listeners
CLIENT = "127.0.0.72"		# the client "from src" trusts
OTHER = "127.0.0.73"		# another client, and an untrusted peer
PORT_V2 = 15750			# daemon, plain, behind send-proxy-v2
FE_V2 = 15751			# HAProxy's frontend for it
PORT_V1 = 15752			# daemon, smtps, behind send-proxy
FE_V1 = 15753
MILTER = 15754			# a scripted filter on the v2 listener
MILTER_ADDR = "127.0.0.74"

CONF = """\
spool "@TMP@/spool"
socket "@TMP@/smtpd.sock"
smtp workers 1
smtp max-sessions-per-ip 2
%(pki)s
listen on 127.0.0.1 port @PORT@
milter m "inet:%(milter_addr)s:%(milter)d"
listen on %(lb)s port %(v2)d proxy-protocol from %(lb)s milter m
listen on %(lb)s port %(v1)d smtps pki mail.example.test \\
	proxy-protocol from { 192.0.2.0/24, %(lb)s/32 }
action "local" maildir "~/Maildir"
match from src %(client)s for domain "trusted.test" action "local"
match from any for domain "example.test" action "local"
"""

HAPROXY_CONF = """\
global
	maxconn 200
defaults
	mode tcp
	timeout connect 5s
	timeout client 30s
	timeout server 30s
frontend fe_v2
	bind %(lb)s:%(fe_v2)d
	default_backend be_v2
backend be_v2
	server mx %(lb)s:%(v2)d send-proxy-v2 source %(lb)s
frontend fe_v1
	bind %(lb)s:%(fe_v1)d
	default_backend be_v1
backend be_v1
	server mx %(lb)s:%(v1)d send-proxy source %(lb)s
"""

V2_SIG = b"\r\n\r\n\x00\r\nQUIT\n"


def haproxy_binary():
    path = shutil.which("haproxy") or "/usr/sbin/haproxy"
    if not os.access(path, os.X_OK):
        fixture.skip("haproxy not installed (mk/deps.sh: haproxy)")
    return path


class HAProxy:
    """haproxy -db (foreground) with our configuration; stopped by
    stop()."""

    def __init__(self):
        binary = haproxy_binary()
        os.makedirs(fixture.TEST_ROOT, mode=0o755, exist_ok=True)
        self.dir = tempfile.mkdtemp(prefix="haproxy.", dir=fixture.TEST_ROOT)
        self.conf = os.path.join(self.dir, "haproxy.cfg")
        with open(self.conf, "w") as f:
            f.write(HAPROXY_CONF % {"lb": LB, "fe_v2": FE_V2, "v2": PORT_V2,
                                    "fe_v1": FE_V1, "v1": PORT_V1})
        self.log = open(os.path.join(self.dir, "haproxy.log"), "wb")
        self.proc = subprocess.Popen(
            [binary, "-db", "-f", self.conf], stdin=subprocess.DEVNULL,
            stdout=self.log, stderr=self.log, start_new_session=True)

    def wait_ready(self, timeout=10):
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if self.proc.poll() is not None:
                raise AssertionError("haproxy exited: %s" % self.output())
            for port in (FE_V2, FE_V1):
                try:
                    socket.create_connection((LB, port), timeout=1).close()
                except OSError:
                    break
            else:
                return
            time.sleep(0.05)
        raise AssertionError("haproxy not listening: %s" % self.output())

    def output(self):
        with open(self.log.name, "rb") as f:
            return f.read().decode("utf-8", "replace")[-2000:]

    def stop(self):
        if self.proc.poll() is None:
            self.proc.terminate()
            try:
                self.proc.wait(5)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait(5)
        self.log.close()
        shutil.rmtree(self.dir, ignore_errors=True)


class ProxyFilter(Filter):
    """milterlib's scripted filter, on this module's address and port
    (milterlib's own start() keeps to the milter tests' ports)."""

    def __init__(self):
        Filter.__init__(self, MILTER)
        self.argv[2] = "inet:%d@%s" % (MILTER, MILTER_ADDR)

    def start(self):
        self.out = open(os.path.join(self.dir, "stdout"), "ab")
        self.proc = subprocess.Popen(self.argv, stdin=subprocess.DEVNULL,
                                     stdout=self.out,
                                     stderr=subprocess.STDOUT,
                                     start_new_session=True)
        deadline = time.monotonic() + 15
        while time.monotonic() < deadline:
            if self.proc.poll() is not None:
                raise fixture.FixtureError("filter exited: %s"
                                           % self.output())
            try:
                socket.create_connection((MILTER_ADDR, MILTER),
                                         timeout=1).close()
                return self
            except OSError:
                time.sleep(0.05)
        raise fixture.FixtureError("filter not listening")


def via_v2(source=CLIENT):
    """smtplib through HAProxy's version 2 frontend, from `source'."""
    return smtplib.SMTP(LB, FE_V2, local_hostname=HELO, timeout=10,
                        source_address=(source, 0))


def raw(source, port=PORT_V2):
    """A socket straight to the daemon's proxy listener (no HAProxy)."""
    return socket.create_connection((LB, port), timeout=10,
                                    source_address=(source, 0))


def closed_without_greeting(s, timeout=10):
    """True when the daemon hangs up without a byte (no 220)."""
    s.settimeout(timeout)
    try:
        data = s.recv(512)
    except ConnectionResetError:
        data = b""
    s.close()
    return data == b""


def send_message(smtp, rcpt, marker):
    smtp.ehlo()
    smtp.sendmail("sender@client.test", [rcpt],
                  "Subject: %s\r\n\r\n%s\r\n" % (marker, marker))


def v2_header(src, dst, sport, dport, cmd=0x21, fam=0x11):
    body = socket.inet_aton(src) + socket.inet_aton(dst) + \
        struct.pack(">HH", sport, dport)
    return V2_SIG + bytes([cmd, fam]) + struct.pack(">H", len(body)) + body


def send_slowly(s):
    """A v1 header (UNKNOWN, padded to 106 bytes), a byte every 0.5 s,
    until the daemon hangs up."""
    header = b"PROXY UNKNOWN " + b"x" * 90 + b"\r\n"
    try:
        for b in header:
            s.sendall(bytes([b]))
            time.sleep(0.5)
    except OSError:
        pass
    finally:
        s.close()


def tls_greeting_after_header(header):
    """Straight to the smtps listener from the balancer's address: the
    header and the TLS ClientHello in one write, so that they arrive
    together and a reader that took more than the header would break the
    handshake.  Returns the greeting read over TLS."""
    ctx = ssl.create_default_context()
    ctx.check_hostname = False
    ctx.verify_mode = ssl.CERT_NONE
    inc, out = ssl.MemoryBIO(), ssl.MemoryBIO()
    tls = ctx.wrap_bio(inc, out)
    s = raw(LB, PORT_V1)
    try:
        try:
            tls.do_handshake()
        except ssl.SSLWantReadError:
            pass
        s.sendall(header + out.read())
        deadline = time.monotonic() + 10
        while time.monotonic() < deadline:
            try:
                if tls.version() is None:
                    tls.do_handshake()
                data = tls.read(512)
                if data:
                    return data
            except ssl.SSLWantReadError:
                pass
            pending = out.read()
            if pending:
                s.sendall(pending)
            data = s.recv(4096)
            if not data:
                return b""
            inc.write(data)
        return b""
    finally:
        s.close()


def log_has(d, pattern, timeout=5):
    return poll(lambda: re.search(pattern, d.log()), timeout=timeout)


def test_behind_haproxy():
    haproxy_binary()
    need_pymilter()
    cert, key = make_certificate()
    pki = 'pki mail.example.test cert "%s"\npki mail.example.test key ' \
        '"%s"' % (cert, key)
    conf = CONF % {"pki": pki, "lb": LB, "v2": PORT_V2, "v1": PORT_V1,
                   "client": CLIENT, "milter": MILTER,
                   "milter_addr": MILTER_ADDR}
    lb = None
    with ProxyFilter() as filt, Daemon(conf=conf) as d:
        fixture.reset_maildir(TEST_USER1)
        try:
            # from a trusted peer, and no header: closed after 5 s;
            # meanwhile the one worker serves everyone else
            silent = raw(LB)
            silent_at = time.monotonic()
            # nor a header trickled a byte every half second (the 5 s
            # are for the whole header)
            trickle = raw(LB)
            trickler = threading.Thread(target=send_slowly,
                                        args=(trickle,), daemon=True)
            trickler.start()

            lb = HAProxy()
            lb.wait_ready()

            # version 2: the client is .72, for the rules too
            mark = fixture.unique_marker("proxyv2")
            with via_v2() as c:
                send_message(c, "%s@trusted.test" % TEST_USER1, mark)
            # .73 through the same balancer: not the rule's client
            with via_v2(OTHER) as c:
                c.ehlo()
                c.mail("sender@client.test")
                code, msg = c.rcpt("%s@trusted.test" % TEST_USER1)
                assert code == 550, (code, msg)

            # version 1, before the TLS handshake of an smtps listener
            mark1 = fixture.unique_marker("proxyv1")
            ctx = ssl.create_default_context()
            ctx.check_hostname = False
            ctx.verify_mode = ssl.CERT_NONE
            with smtplib.SMTP_SSL(LB, FE_V1, local_hostname=HELO,
                                  timeout=10, context=ctx,
                                  source_address=(CLIENT, 0)) as c:
                send_message(c, "%s@trusted.test" % TEST_USER1, mark1)

            # the header never takes a byte of what follows: here the
            # ClientHello, in the same segment
            hdr = b"PROXY TCP4 127.0.0.72 127.0.0.71 1234 465\r\n"
            assert tls_greeting_after_header(hdr).startswith(b"220 ")
            assert tls_greeting_after_header(
                v2_header(CLIENT, LB, 1, 465)).startswith(b"220 ")

            # the per-address limit counts clients, not the balancer
            held = [via_v2(), via_v2()]
            try:
                via_v2().close()
                assert False, "a third session from .72 was greeted"
            except smtplib.SMTPConnectError as e:
                assert e.smtp_code == 421, e
            with via_v2(OTHER) as c:
                assert c.noop()[0] == 250
            for c in held:
                c.quit()
            assert log_has(d, r"Too many sessions from your address")

            # a header from a peer not in the list: no greeting, logged
            # with the peer's own address
            s = raw(OTHER)
            s.sendall(b"PROXY TCP4 127.0.0.72 127.0.0.71 1234 25\r\n")
            assert closed_without_greeting(s)
            assert log_has(d, r"proxy: connection from 127\.0\.0\.73 on "
                           r"127\.0\.0\.71 port %d refused: not a trusted "
                           r"proxy" % PORT_V2)
            # malformed (a length past the bound), truncated, not one
            s = raw(LB)
            s.sendall(V2_SIG + b"\x21\x11\xff\xff")
            assert closed_without_greeting(s)
            assert log_has(d, r"proxy: bad PROXY header from 127\.0\.0\.71 "
                           r"on 127\.0\.0\.71 port %d: v2 header too long"
                           % PORT_V2)
            s = raw(LB)
            s.sendall(v2_header(CLIENT, LB, 1, 25)[:20])
            s.shutdown(socket.SHUT_WR)
            assert closed_without_greeting(s)
            assert log_has(d, r"bad PROXY header .*: truncated header")
            s = raw(LB)
            s.sendall(b"EHLO " + HELO.encode() + b"\r\n")
            assert closed_without_greeting(s)
            assert log_has(d, r"bad PROXY header .*: not a PROXY header")

            # v2 LOCAL, the balancer's health check: its own address
            s = raw(LB)
            s.sendall(v2_header(CLIENT, LB, 1, 25, cmd=0x20))
            c = fixture.SMTPConnection.__new__(fixture.SMTPConnection)
            c.sock, c.buf = s, b""
            assert c.reply().code == 220
            assert c.command("EHLO " + HELO).code == 250
            assert c.command("MAIL FROM:<a@client.test>").code == 250
            r = c.command("RCPT TO:<%s@trusted.test>" % TEST_USER1)
            assert r.code == 550, r
            c.close()

            # and the worker still serves a good one
            mark2 = fixture.unique_marker("proxyafter")
            with via_v2() as c:
                send_message(c, "%s@example.test" % TEST_USER1, mark2)

            # the silent one and the trickle: closed after 5 s, not before
            assert closed_without_greeting(silent, timeout=10)
            waited = time.monotonic() - silent_at
            assert 4 <= waited < 9, waited
            trickler.join(10)
            assert not trickler.is_alive()
            waited = time.monotonic() - silent_at
            assert waited < 9, waited
            assert len(re.findall(r"bad PROXY header from 127\.0\.0\.71 "
                                  r".*: no header in time", d.log())) == 2

            # what was delivered names the client, never the balancer
            files = wait_maildir(TEST_USER1, 3)
            texts = []
            for path in files:
                with open(path, encoding="utf-8", errors="replace") as f:
                    texts.append(f.read())
            for m in (mark, mark1, mark2):
                text = [t for t in texts if m in t]
                assert text, "no message %s" % m
                received = text[0].split("\n\n", 1)[0]
                assert "[127.0.0.72]" in received, received
                assert "127.0.0.71" not in received, received
            # the filter's connect stage: the client, not the balancer
            senders = [e["conn"] for e in filt.events(stage="envfrom")
                       if e["args"][0] == "<sender@client.test>" or
                       e["args"][0] == "sender@client.test"]
            assert senders, filt.events(stage="envfrom")
            for conn in senders:
                ev = filt.events(conn, "connect")
                assert ev and ev[0]["args"][2][0] in ("127.0.0.72",
                                                      "127.0.0.73"), ev
            log = d.log()
            # the smtpd lines (the queue's from= line names no client)
            lines = [ln for ln in log.splitlines()
                     if "from=<sender@client.test>, size=" in ln and
                     ", client=" in ln]
            assert len(lines) == 3, lines
            for ln in lines:
                assert re.search(r"client=[^ ]*\[127\.0\.0\.72\], .*"
                                 r"proxy=127\.0\.0\.71$", ln), ln
            # and the "ID: client=" line pflogsumm reads, as Postfix's
            # smtpd writes it behind a balancer
            lines = re.findall(r": [0-9a-f]{8}: client=[^ ]*\[127\.0\.0\.72\]"
                               r"(?:, sasl_[^ ]*)*, proxy=127\.0\.0\.71$",
                               log, re.M)
            assert len(lines) == 3, log
            assert re.search(r"NOQUEUE: reject: RCPT from [^ ]*"
                             r"\[127\.0\.0\.73\]: 550 .*proxy=127\.0\.0\.71",
                             log), "no reject line for .73"
        finally:
            if lb is not None:
                lb.stop()


def test_config_check():
    """smtpd -n takes the grammar and names the line of a mistake."""
    os.makedirs(fixture.TEST_ROOT, mode=0o755, exist_ok=True)
    tmp = tempfile.mkdtemp(prefix="conf.", dir=fixture.TEST_ROOT)
    try:
        path = os.path.join(tmp, "smtpd.conf")
        base = fixture.DEFAULT_CONF.replace("@TMP@", tmp).replace(
            "@PORT@", "2525")
        with open(path, "w") as f:
            f.write(base + "listen on 127.0.0.1 port 2526 proxy-protocol "
                    "from { 10.0.0.0/8, ::1 }\n")
        r = run_smtpd(["-n", "-f", path])
        assert r.returncode == 0 and "configuration OK" in r.output, r.output
        with open(path, "w") as f:
            f.write(base + "listen on 127.0.0.1 port 2526 proxy-protocol\n")
        r = run_smtpd(["-n", "-f", path])
        assert r.returncode != 0, r.output
        assert "%s:10: missing \"from\" after proxy-protocol" % path in \
            r.output, r.output
    finally:
        shutil.rmtree(tmp, ignore_errors=True)
