"""
SMTP AUTH (RFC 4954): PLAIN, LOGIN, CRAM-MD5 against a credentials table
(SHA-512-crypt from smtpctl encrypt, or {plain} secrets for CRAM-MD5);
offered only inside TLS unless auth-plaintext; "auth" makes it required;
"*" cancels; failures are slow and limited; the authenticated name is in
the Received header; only authenticated sessions relay; Message-ID and
Date are added for them.
"""

import base64
import hashlib
import hmac
import smtplib
import subprocess
import time

import fixture
from fixture import TEST_USER1, Daemon, SMTPConnection
from test_smtp_common import (HELO, client_context, closed, credentials_table,
                              dialog, ehlo_keywords, expect, pki_conf,
                              sha512_crypt, starttls, unique, wait_marker)

TIMEOUT = 60
RCPT1 = "%s@example.test" % TEST_USER1
PASSWORD = "correct horse"


def b64(s):
    return base64.b64encode(s.encode() if isinstance(s, str) else s).decode()


def auth_conf(listen_opts, users=None):
    """TLS listener with the given auth options on @PORT@, a credentials
    table, a relay rule for authenticated senders."""
    users = users or [("alice", sha512_crypt(PASSWORD))]
    path = credentials_table(users)
    base = fixture.DEFAULT_CONF.replace(
        "listen on 127.0.0.1 port @PORT@",
        "listen on 127.0.0.1 port @PORT@ tls pki mail.example.test "
        + listen_opts)
    return (pki_conf() + 'table creds file:%s\n' % path + base +
            'action "relay" relay\n'
            'match from any auth for any action "relay"\n')


def tls_session(port):
    c = SMTPConnection(port)
    assert c.command("EHLO " + HELO).code == 250
    starttls(c)
    r = c.command("EHLO " + HELO)
    assert r.code == 250, r
    return c, ehlo_keywords(r)


def test_auth_only_inside_tls():
    with Daemon(conf=auth_conf("auth <creds>")) as d:
        with SMTPConnection(d.port) as c:
            kw = ehlo_keywords(c.command("EHLO " + HELO))
            assert "AUTH" not in kw, kw
            expect(c.command("AUTH PLAIN " + b64("\0alice\0" + PASSWORD)),
                   538, "5.7.11", "AUTH in the clear")
            expect(c.command("MAIL FROM:<a@client.test>"), 530, "5.7.0",
                   "MAIL before AUTH")
        c, kw = tls_session(d.port)
        with c:
            assert kw.get("AUTH") == "AUTH PLAIN LOGIN", kw
            expect(c.command("MAIL FROM:<a@client.test>"), 530, "5.7.0",
                   "MAIL before AUTH, in TLS")
            expect(c.command("AUTH PLAIN " + b64("\0alice\0" + PASSWORD)),
                   235, "2.7.0", "AUTH PLAIN")
            expect(c.command("AUTH PLAIN " + b64("\0alice\0" + PASSWORD)),
                   503, "5.5.1", "AUTH twice")
            expect(c.command("MAIL FROM:<a@client.test>"), 250, "2.1.0",
                   "MAIL after AUTH")


def test_auth_plaintext_option_and_mechanisms():
    with Daemon(conf=auth_conf("auth-optional <creds> auth-plaintext")) as d:
        with SMTPConnection(d.port) as c:
            kw = ehlo_keywords(c.command("EHLO " + HELO))
            assert kw.get("AUTH") == "AUTH PLAIN LOGIN", kw
            # auth-optional: mail without AUTH is fine (locally)
            expect(c.command("MAIL FROM:<a@client.test>"), 250, "2.1.0",
                   "MAIL without AUTH")
            expect(c.command("AUTH PLAIN"), 503, "5.5.1",
                   "AUTH inside a transaction")
            assert c.command("RSET").code == 250
            # PLAIN without initial response
            r = c.command("AUTH PLAIN")
            assert r.code == 334 and r.lines == [""], r
            expect(c.command(b64("\0alice\0" + PASSWORD)), 235, "2.7.0",
                   "PLAIN in two steps")
        with SMTPConnection(d.port) as c:
            assert c.command("EHLO " + HELO).code == 250
            r = c.command("AUTH LOGIN")
            assert r.code == 334 and \
                base64.b64decode(r.lines[0]) == b"Username:", r
            r = c.command(b64("alice"))
            assert r.code == 334 and \
                base64.b64decode(r.lines[0]) == b"Password:", r
            expect(c.command(b64(PASSWORD)), 235, "2.7.0", "AUTH LOGIN")
        with SMTPConnection(d.port) as c:
            assert c.command("EHLO " + HELO).code == 250
            r = c.command("AUTH LOGIN " + b64("alice"))
            assert r.code == 334, r
            expect(c.command(b64(PASSWORD)), 235, "2.7.0",
                   "AUTH LOGIN with initial response")
        with SMTPConnection(d.port) as c:
            r = dialog(c, ["EHLO " + HELO, "AUTH CRAM-MD5", "AUTH XOAUTH9",
                           "AUTH", "AUTH PLAIN",
                           "*", "AUTH LOGIN", "*", "AUTH PLAIN *",
                           "AUTH PLAIN !!notbase64!!", "NOOP"])
            expect(r[1], 504, "5.5.4", "CRAM-MD5 not enabled")
            expect(r[2], 504, "5.5.4", "unknown mechanism")
            expect(r[3], 501, "5.5.4", "AUTH without mechanism")
            assert r[4].code == 334
            expect(r[5], 501, "5.7.0", "cancel PLAIN")
            assert r[6].code == 334
            expect(r[7], 501, "5.7.0", "cancel LOGIN")
            expect(r[8], 501, "5.7.0", "cancel as initial response")
            expect(r[9], 501, "5.5.2", "bad base64")
            expect(r[10], 250, "2.0.0", "NOOP after all that")


def test_auth_failures_are_slow_and_limited():
    with Daemon(conf=auth_conf("auth <creds> auth-plaintext")) as d, \
            SMTPConnection(d.port) as c:
        assert c.command("EHLO " + HELO).code == 250
        times = []
        for i in range(2):
            t0 = time.monotonic()
            expect(c.command("AUTH PLAIN " + b64("\0alice\0wrong%d" % i)),
                   535, "5.7.8", "bad password %d" % i)
            times.append(time.monotonic() - t0)
        assert times[0] >= 0.4, times
        assert times[1] >= times[0] * 1.5, "delay does not grow: %s" % times
        expect(c.command("AUTH PLAIN " + b64("\0nosuchuser\0x")), 421,
               "4.7.0", "third failure")
        assert closed(c)


def test_authenticated_submission():
    """smtplib login over STARTTLS: Received says ESMTPSA and who, the
    missing Date and Message-ID are added, relaying is allowed."""
    mark = unique("auth")
    with Daemon(conf=auth_conf("auth <creds>")) as d:
        s = smtplib.SMTP("127.0.0.1", d.port, local_hostname=HELO,
                         timeout=20)
        try:
            s.starttls(context=client_context())
            s.ehlo()
            s.login("alice", PASSWORD)
            refused = s.sendmail("alice@example.test", [RCPT1],
                                 ("Subject: %s\r\n\r\nbody\r\n"
                                  % mark).encode())
            assert refused == {}
            # authenticated: a remote domain is relayed (accepted here)
            code, _ = s.docmd("MAIL FROM:<alice@example.test>")
            assert code == 250
            code, msg = s.docmd("RCPT TO:<someone@remote.test>")
            assert code == 250, (code, msg)
            s.rset()
        finally:
            s.quit()
        data = wait_marker(TEST_USER1, mark)[0]
    head = data.split(b"\n\n", 1)[0]
    assert b"with ESMTPSA id" in head, head
    assert b"(authenticated as alice)" in head, head
    assert b"\nDate: " in head, head
    assert b"\nMessage-ID: <" in head, head


def test_unauthenticated_no_relay():
    with Daemon(conf=auth_conf("auth-optional <creds>")) as d, \
            SMTPConnection(d.port) as c:
        r = dialog(c, ["EHLO " + HELO, "MAIL FROM:<a@client.test>",
                       "RCPT TO:<someone@remote.test>",
                       "RCPT TO:<%s>" % RCPT1])
        expect(r[2], 550, "5.7.1", "relay without AUTH")
        expect(r[3], 250, "2.1.5", "local recipient without AUTH")


def test_cram_md5():
    conf = auth_conf("auth <creds> auth-cram-md5",
                     users=[("carol", "{plain}sesame"),
                            ("alice", sha512_crypt(PASSWORD))])
    with Daemon(conf=conf) as d:
        c, kw = tls_session(d.port)
        with c:
            assert kw.get("AUTH") == "AUTH PLAIN LOGIN CRAM-MD5", kw
            r = c.command("AUTH CRAM-MD5")
            assert r.code == 334, r
            challenge = base64.b64decode(r.lines[0])
            assert challenge.startswith(b"<") and challenge.endswith(b">")
            digest = hmac.new(b"sesame", challenge, hashlib.md5).hexdigest()
            expect(c.command(b64("carol " + digest)), 235, "2.7.0",
                   "CRAM-MD5")
        c, kw = tls_session(d.port)
        with c:
            # a hashed entry cannot do CRAM-MD5
            r = c.command("AUTH CRAM-MD5")
            challenge = base64.b64decode(r.lines[0])
            digest = hmac.new(PASSWORD.encode(), challenge,
                              hashlib.md5).hexdigest()
            expect(c.command(b64("alice " + digest)), 535, "5.7.8",
                   "CRAM-MD5 against a hash")
            # PLAIN works against a {plain} entry too
            expect(c.command("AUTH PLAIN " + b64("\0carol\0sesame")), 235,
                   "2.7.0", "PLAIN against {plain}")


def test_smtpctl_encrypt_hash_works():
    r = subprocess.run([fixture.binary("smtpctl"), "encrypt"],
                       input=b"s3cret pass\n", stdout=subprocess.PIPE,
                       stderr=subprocess.PIPE, timeout=10)
    assert r.returncode == 0, r.stderr
    h = r.stdout.decode().strip()
    assert h.startswith("$6$"), h
    conf = auth_conf("auth <creds>", users=[("dave", h)])
    with Daemon(conf=conf) as d:
        c, _ = tls_session(d.port)
        with c:
            expect(c.command("AUTH PLAIN " + b64("\0dave\0s3cret pass")),
                   235, "2.7.0", "AUTH with smtpctl encrypt's hash")


def test_submission_port_requires_auth():
    """A "submission" listener wants AUTH before MAIL by default."""
    conf = auth_conf("submission auth-plaintext")
    with Daemon(conf=conf) as d, SMTPConnection(d.port) as c:
        kw = ehlo_keywords(c.command("EHLO " + HELO))
        assert "AUTH" in kw, kw
        expect(c.command("MAIL FROM:<a@client.test>"), 530, "5.7.0",
               "MAIL on submission without AUTH")


def test_swaks_auth():
    mark = unique("swaks-auth")
    with Daemon(conf=auth_conf("auth <creds>")) as d:
        r = subprocess.run(["swaks", "--server", "127.0.0.1", "--port",
                            str(d.port), "--from", "alice@example.test",
                            "--to", RCPT1, "--tls", "--auth", "LOGIN",
                            "--auth-user", "alice", "--auth-password",
                            PASSWORD, "--helo", HELO,
                            "--header", "Subject: " + mark],
                           stdout=subprocess.PIPE, stderr=subprocess.STDOUT,
                           timeout=30)
        out = r.stdout.decode("utf-8", "replace")
        assert r.returncode == 0, out
        assert "235 2.7.0" in out and "queued as" in out, out
        wait_marker(TEST_USER1, mark)
