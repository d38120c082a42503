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
import os
import re
import shutil
import signal
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


def test_senders_table():
    """listen ... auth <creds> senders <senders>: an authenticated user
    may use only the addresses the table maps the name to ("@domain" for
    a whole domain) and the null sender; anyone else's is 553 5.7.1."""
    senders = credentials_table([("alice", "alice@example.test, "
                                  "@alias.test")])
    conf = auth_conf("auth <creds> senders <senders>").replace(
        "table creds ", "table senders file:%s\ntable creds " % senders)
    with Daemon(conf=conf) as d:
        c, _ = tls_session(d.port)
        with c:
            r = c.command("AUTH PLAIN " + b64("\0alice\0" + PASSWORD))
            assert r.code == 235, r
            for sender, code in (("alice@example.test", 250),
                                 ("Alice@Example.TEST", 250),
                                 ("anyone@alias.test", 250),
                                 ("", 250),
                                 ("bob@example.test", 553),
                                 ("alice@other.test", 553)):
                r = c.command("MAIL FROM:<%s>" % sender)
                assert r.code == code, (sender, r)
                if code == 553:
                    expect(r, 553, "5.7.1", "not owned: " + sender)
                    assert "not owned by user alice" in r.text, r
                else:
                    assert c.command("RSET").code == 250


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


# ---------------------------------------------------------------------------
# "auth" without a table: system accounts (issue 15, item 4)

SYS_USER = "phauth1"		# a password set with chpasswd (yescrypt)
SYS_LOCKED = "phauth2"		# the same password, then usermod -L
SYS_PASSWORD = "Sys-pass 15 ok"


def system_users():
    """Two test users (removed after the run like the others) with a
    known password; the second one locked."""
    for tool in ("chpasswd", "usermod"):
        if shutil.which(tool) is None:
            fixture.skip("%s is not installed" % tool)
    fixture.setup_system()
    for name, method in ((SYS_USER, "YESCRYPT"), (SYS_LOCKED, "SHA512")):
        fixture.ensure_test_user(name)
        r = subprocess.run(["chpasswd", "-c", method],
                           input=("%s:%s\n" % (name, SYS_PASSWORD)).encode(),
                           stdout=subprocess.PIPE, stderr=subprocess.STDOUT)
        if r.returncode != 0 and method == "YESCRYPT":
            r = subprocess.run(["chpasswd"], input=("%s:%s\n" % (
                name, SYS_PASSWORD)).encode(), stdout=subprocess.PIPE,
                stderr=subprocess.STDOUT)
        assert r.returncode == 0, r.stdout
    subprocess.run(["usermod", "-L", SYS_LOCKED], check=True)


def system_auth_conf():
    base = fixture.DEFAULT_CONF.replace(
        "listen on 127.0.0.1 port @PORT@",
        "listen on 127.0.0.1 port @PORT@ tls pki mail.example.test auth")
    return (pki_conf() + base + 'action "relay" relay\n'
            'match from any auth for any action "relay"\n')


def auth_helper(d):
    for pid in d.children():
        if fixture.proc_title(pid) == "smtpd: auth":
            return pid
    return None


def test_system_auth_smtplib():
    """Correct password 235, wrong 535, locked 535, unknown 535; the log
    lines are those of table auth; the check runs in a helper that is
    neither root (where a group may read /etc/shadow) nor unsandboxed."""
    system_users()
    with Daemon(conf=system_auth_conf()) as d:
        s = smtplib.SMTP("127.0.0.1", d.port, local_hostname=HELO,
                         timeout=20)
        try:
            s.starttls(context=client_context())
            s.ehlo()
            code, msg = s.login(SYS_USER, SYS_PASSWORD)
            assert code == 235, (code, msg)
            code, _ = s.docmd("MAIL FROM:<%s@example.test>" % SYS_USER)
            assert code == 250
            code, msg = s.docmd("RCPT TO:<someone@remote.test>")
            assert code == 250, (code, msg)	# authenticated: relayed
            s.rset()
        finally:
            s.quit()
        for user, password, what in (
                (SYS_USER, "wrong", "wrong password"),
                (SYS_LOCKED, SYS_PASSWORD, "locked account"),
                ("phauthnobody", SYS_PASSWORD, "unknown user"),
                ("root", SYS_PASSWORD, "root")):
            s = smtplib.SMTP("127.0.0.1", d.port, local_hostname=HELO,
                             timeout=20)
            try:
                s.starttls(context=client_context())
                s.ehlo()
                try:
                    s.login(user, password)
                    raise AssertionError("%s: login accepted" % what)
                except smtplib.SMTPAuthenticationError as e:
                    assert e.smtp_code == 535, (what, e)
            finally:
                s.close()
        pid = auth_helper(d)
        assert pid is not None, "no auth helper process"
        st = fixture.proc_status(pid)
        assert st.get("Seccomp") == "2", st
        shadow = os.stat("/etc/shadow")
        if shadow.st_gid != 0 and shadow.st_mode & 0o040:
            assert st["Uid"].split()[0] == str(
                fixture.user(fixture.DAEMON_USER).pw_uid), st
            assert st["Gid"].split()[0] == str(shadow.st_gid), st
        log = d.log()
    # Postfix's shapes (fail2ban's postfix filter reads them)
    assert re.search(r"client=unknown\[127\.0\.0\.1\], sasl_method=(PLAIN|"
                     r"LOGIN), sasl_username=%s\n" % SYS_USER, log), log
    assert re.search(r"warning: unknown\[127\.0\.0\.1\]: SASL (PLAIN|LOGIN) "
                     r"authentication failed: authentication failure, "
                     r"sasl_username=%s\n" % SYS_LOCKED, log), log
    assert "system account %s is locked" % SYS_LOCKED in log, log
    assert "authentication unavailable" not in log, log


def test_system_auth_swaks_and_limits():
    """swaks over STARTTLS: 235 and the mail goes; a wrong password is
    535 after the same growing delay as table auth, the third 421."""
    system_users()
    mark = unique("sysauth")
    with Daemon(conf=system_auth_conf()) as d:
        r = subprocess.run(["swaks", "--server", "127.0.0.1", "--port",
                            str(d.port), "--from", SYS_USER + "@example.test",
                            "--to", RCPT1, "--tls", "--auth", "PLAIN",
                            "--auth-user", SYS_USER, "--auth-password",
                            SYS_PASSWORD, "--helo", HELO,
                            "--header", "Subject: " + mark],
                           stdout=subprocess.PIPE, stderr=subprocess.STDOUT,
                           timeout=30)
        out = r.stdout.decode("utf-8", "replace")
        assert r.returncode == 0, out
        assert "235 2.7.0" in out and "queued as" in out, out
        wait_marker(TEST_USER1, mark)
        r = subprocess.run(["swaks", "--server", "127.0.0.1", "--port",
                            str(d.port), "--from", SYS_USER + "@example.test",
                            "--to", RCPT1, "--tls", "--auth", "LOGIN",
                            "--auth-user", SYS_USER, "--auth-password",
                            "not it", "--helo", HELO, "--quit-after", "AUTH"],
                           stdout=subprocess.PIPE, stderr=subprocess.STDOUT,
                           timeout=30)
        out = r.stdout.decode("utf-8", "replace")
        assert r.returncode != 0 and "535 5.7.8" in out, out
        c, _ = tls_session(d.port)
        with c:
            times = []
            for i in range(2):
                t0 = time.monotonic()
                expect(c.command("AUTH PLAIN " + b64(
                    "\0%s\0wrong%d" % (SYS_USER, i))), 535, "5.7.8",
                    "bad system password %d" % i)
                times.append(time.monotonic() - t0)
            assert times[0] >= 0.4, times
            assert times[1] >= times[0] * 1.5, times
            expect(c.command("AUTH PLAIN " + b64(
                "\0%s\0wrong" % SYS_LOCKED)), 421, "4.7.0", "third failure")
            assert closed(c)


def test_system_auth_survives_reload():
    """A reload starts a new generation with its own helper; the old
    one goes with its lookup, and the daemon keeps running."""
    system_users()
    with Daemon(conf=system_auth_conf()) as d:
        old = auth_helper(d)
        d.send_signal(signal.SIGHUP)
        assert fixture.poll(lambda: auth_helper(d) not in (None, old) and
                            not fixture.alive(old), timeout=20), d.log_tail()
        c, _ = tls_session(d.port)
        with c:
            expect(c.command("AUTH PLAIN " + b64(
                "\0%s\0%s" % (SYS_USER, SYS_PASSWORD))), 235, "2.7.0",
                "after a reload")
