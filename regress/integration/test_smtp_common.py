"""
test_smtp_common.py -- helpers shared by the test_smtp_* dialogs (no tests
of its own): reply checks, test certificates made with openssl, a
credentials table, TLS on a raw SMTPConnection, and extra listener ports.
"""

import os
import re
import socket
import ssl
import subprocess
import tempfile
import time

import fixture
from fixture import TEST_ROOT, SMTPConnection

HELO = "tester.example.test"
ENHANCED_RE = re.compile(r"^[245]\.\d{1,3}\.\d{1,3}( |$)")


def expect(reply, code, enhanced=None, what=""):
    """reply has this code and (RFC 2034) an enhanced status code on its
    text; with `enhanced', that very one."""
    assert reply.code == code, "%s: got %s, expected %d" % (what, reply, code)
    first = reply.lines[0]
    assert ENHANCED_RE.match(first), \
        "%s: %s has no enhanced status code" % (what, reply)
    if enhanced:
        assert first.startswith(enhanced + " ") or first == enhanced, \
            "%s: got %s, expected enhanced status %s" % (what, reply,
                                                         enhanced)


def dialog(conn, items):
    """Send each item on an open SMTPConnection, one reply per item."""
    return [conn.command(i) for i in items]


def ehlo_keywords(reply):
    """The EHLO keywords (upper-cased first words) of a 250 reply."""
    return {line.split(" ")[0].upper(): line for line in reply.lines[1:]}


def closed(conn, timeout=10):
    """True when the server closed the connection (after what it sent)."""
    conn.sock.settimeout(timeout)
    try:
        while True:
            data = conn.sock.recv(4096)
            if not data:
                return True
    except (ConnectionResetError, BrokenPipeError):
        return True
    except socket.timeout:
        return False


# --------------------------------------------------------------------------
# certificates, credentials

_certdir = None


def make_certificate():
    """(cert, key) paths of a self-signed certificate for
    mail.example.test, made once per run with openssl."""
    global _certdir
    if _certdir is None or not os.path.exists(os.path.join(_certdir,
                                                           "key.pem")):
        os.makedirs(TEST_ROOT, mode=0o755, exist_ok=True)
        _certdir = tempfile.mkdtemp(prefix="pki.", dir=TEST_ROOT)
        os.chmod(_certdir, 0o700)
        subprocess.run(
            ["openssl", "req", "-x509", "-newkey", "rsa:2048", "-nodes",
             "-keyout", os.path.join(_certdir, "key.pem"),
             "-out", os.path.join(_certdir, "cert.pem"),
             "-subj", "/CN=mail.example.test", "-days", "2"],
            check=True, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
        os.chmod(os.path.join(_certdir, "key.pem"), 0o600)
    return (os.path.join(_certdir, "cert.pem"),
            os.path.join(_certdir, "key.pem"))


def pki_conf(name="mail.example.test"):
    cert, key = make_certificate()
    return 'pki %s cert "%s"\npki %s key "%s"\n' % (name, cert, name, key)


def sha512_crypt(password):
    r = subprocess.run(["openssl", "passwd", "-6", "-stdin"],
                       input=password.encode(), stdout=subprocess.PIPE,
                       check=True)
    return r.stdout.decode().strip()


def credentials_table(entries):
    """A text table file "user value" readable by the lookup process;
    returns its path."""
    os.makedirs(TEST_ROOT, mode=0o755, exist_ok=True)
    fd, path = tempfile.mkstemp(prefix="creds.", dir=TEST_ROOT)
    with os.fdopen(fd, "w") as f:
        for user, value in entries:
            f.write("%s %s\n" % (user, value))
    os.chmod(path, 0o644)
    return path


def client_context():
    ctx = ssl.SSLContext(ssl.PROTOCOL_TLS_CLIENT)
    ctx.check_hostname = False
    ctx.verify_mode = ssl.CERT_NONE
    return ctx


def starttls(conn, ctx=None):
    """STARTTLS on a raw SMTPConnection; returns the 220 reply."""
    r = conn.command("STARTTLS")
    expect(r, 220, "2.0.0", "STARTTLS")
    assert conn.buf == b"", "data after the 220: %r" % conn.buf
    conn.sock = (ctx or client_context()).wrap_socket(
        conn.sock, server_hostname="mail.example.test")
    return r


class TLSConnection(SMTPConnection):
    """An SMTPConnection with implicit TLS (smtps)."""

    def __init__(self, port, host="127.0.0.1", timeout=30, ctx=None):
        raw = socket.create_connection((host, port), timeout=timeout)
        self.sock = (ctx or client_context()).wrap_socket(
            raw, server_hostname="mail.example.test")
        self.buf = b""
        self.greeting = self.reply()


def extra_port():
    return fixture.free_port()


def unique(tag):
    """A marker no other test (or other run on this machine) uses."""
    return "%s-%d-%d-%s" % (tag, os.getpid(), int(time.time() * 1000),
                            os.urandom(4).hex())


def wait_marker(username, marker, count=1, timeout=fixture.DELIVERY_TIMEOUT):
    """Wait for `count' messages holding marker in ~user/Maildir/new (the
    test users' mailboxes are shared with other tests: never count them
    all); returns their contents."""
    if isinstance(marker, str):
        marker = marker.encode()

    def found():
        hits = []
        for p in fixture.maildir_files(username):
            try:
                data = fixture.read_file(p)
            except OSError:
                continue
            if marker in data:
                hits.append(data)
        return hits if len(hits) >= count else None
    hits = fixture.poll(found, timeout)
    if not hits:
        raise AssertionError("%d message(s) with %r in %s's Maildir within "
                             "%ds" % (count, marker, username, timeout))
    return hits
