"""
STARTTLS (RFC 3207) and smtps (implicit TLS, RFC 8314): offered only where
configured, a new EHLO after the handshake, plaintext pipelined after
STARTTLS thrown away (CVE-2011-0411), tls-require, TLS 1.2 at least, the
Received header says ESMTPS, and the key is out of the workers' reach.
"""

import os
import re
import smtplib
import socket
import ssl
import subprocess
import time

import fixture
from fixture import TEST_USER1, Daemon, SMTPConnection, SMTPError
from test_smtp_common import (HELO, TLSConnection, client_context, closed,
                              dialog, ehlo_keywords, expect, extra_port,
                              make_certificate, pki_conf, starttls, unique,
                              wait_marker)

TIMEOUT = 60
RCPT1 = "%s@example.test" % TEST_USER1


def tls_conf(mode="tls", extra=""):
    base = fixture.DEFAULT_CONF.replace(
        "listen on 127.0.0.1 port @PORT@",
        "listen on 127.0.0.1 port @PORT@ %s pki mail.example.test" % mode)
    return pki_conf() + base + extra


def test_starttls_offered_and_works():
    with Daemon(conf=tls_conf()) as d, SMTPConnection(d.port) as c:
        kw = ehlo_keywords(c.command("EHLO " + HELO))
        assert "STARTTLS" in kw, kw
        expect(c.command("STARTTLS extra"), 501, "5.5.4", "STARTTLS arg")
        starttls(c)
        # RFC 3207 4.2: the session starts over
        expect(c.command("MAIL FROM:<a@client.test>"), 503, "5.5.1",
               "MAIL without a new EHLO")
        r = c.command("EHLO " + HELO)
        assert r.code == 250, r
        assert "STARTTLS" not in ehlo_keywords(r), r
        expect(c.command("STARTTLS"), 503, "5.5.1", "STARTTLS twice")
        ver = c.sock.version()
        assert ver in ("TLSv1.2", "TLSv1.3"), ver
        mark = unique("tls")
        r = dialog(c, ["MAIL FROM:<a@client.test>", "RCPT TO:<%s>" % RCPT1,
                       "DATA"])
        assert r[2].code == 354, r
        c.send(("Subject: %s\r\n\r\nover tls\r\n.\r\n" % mark).encode())
        expect(c.reply(), 250, "2.0.0", "end of data")
        expect(c.command("QUIT"), 221, "2.0.0", "QUIT")
        data = wait_marker(TEST_USER1, mark)[0]
    assert b"with ESMTPS id" in data, data[:400]
    assert b"version=TLSv1." in data, data[:400]


def test_starttls_not_offered_on_plain_listener():
    with Daemon() as d, SMTPConnection(d.port) as c:
        assert c.command("EHLO " + HELO).code == 250
        expect(c.command("STARTTLS"), 502, "5.5.1", "STARTTLS not offered")


def test_starttls_discards_pipelined_plaintext():
    """CVE-2011-0411: commands sent in the clear after STARTTLS must not
    be executed inside the TLS session."""
    with Daemon(conf=tls_conf()) as d, SMTPConnection(d.port) as c:
        assert c.command("EHLO " + HELO).code == 250
        c.send(b"STARTTLS\r\nMAIL FROM:<injected@evil.test>\r\n")
        r = c.reply()
        expect(r, 220, "2.0.0", "STARTTLS")
        c.sock = client_context().wrap_socket(
            c.sock, server_hostname="mail.example.test")
        r = c.command("EHLO " + HELO)
        # the first reply in TLS is the EHLO's, not the injected MAIL's
        assert r.code == 250 and len(r.lines) > 1, r
        expect(c.command("MAIL FROM:<a@client.test>"), 250, "2.1.0",
               "MAIL: no transaction was opened by the injected one")


def test_tls_require():
    with Daemon(conf=tls_conf("tls-require")) as d, \
            SMTPConnection(d.port) as c:
        assert c.command("EHLO " + HELO).code == 250
        expect(c.command("MAIL FROM:<a@client.test>"), 530, "5.7.0",
               "MAIL before STARTTLS")
        starttls(c)
        assert c.command("EHLO " + HELO).code == 250
        expect(c.command("MAIL FROM:<a@client.test>"), 250, "2.1.0",
               "MAIL after STARTTLS")


def test_smtps_and_several_listeners():
    """One plain listener with STARTTLS and one smtps listener, each with
    its own hostname."""
    port2 = extra_port()
    conf = tls_conf(extra="listen on 127.0.0.1 port %d smtps pki "
                          "mail.example.test hostname smtps.example.test\n"
                    % port2)
    mark = unique("smtps")
    with Daemon(conf=conf) as d:
        with TLSConnection(port2) as c:
            expect_greeting = c.greeting
            assert expect_greeting.code == 220, expect_greeting
            assert expect_greeting.lines[0].startswith("smtps.example.test"), \
                expect_greeting
            kw = ehlo_keywords(c.command("EHLO " + HELO))
            assert "STARTTLS" not in kw, kw
            r = dialog(c, ["MAIL FROM:<a@client.test>",
                           "RCPT TO:<%s>" % RCPT1, "DATA"])
            assert r[2].code == 354, r
            c.send(("Subject: %s\r\n\r\nsmtps\r\n.\r\n" % mark).encode())
            expect(c.reply(), 250, "2.0.0", "end of data")
        # smtplib as a stock client
        s = smtplib.SMTP_SSL("127.0.0.1", port2, context=client_context(),
                             timeout=20)
        try:
            assert s.ehlo()[0] == 250
            assert s.noop()[0] == 250
        finally:
            s.quit()
        with SMTPConnection(d.port) as c:
            assert not c.greeting.lines[0].startswith("smtps."), c.greeting
        data = wait_marker(TEST_USER1, mark)[0]
    assert b"by smtps.example.test" in data, data[:300]


def smtps_conf():
    """The fixture's plain listener (for its banner check) and an smtps
    one; returns (conf, smtps port)."""
    port = extra_port()
    return tls_conf(extra="listen on 127.0.0.1 port %d smtps pki "
                          "mail.example.test\n" % port), port


def test_no_tls_below_1_2():
    conf, port = smtps_conf()
    with Daemon(conf=conf):
        ctx = client_context()
        try:
            ctx.minimum_version = ssl.TLSVersion.TLSv1
            ctx.maximum_version = ssl.TLSVersion.TLSv1_1
            ctx.set_ciphers("ALL:@SECLEVEL=0")
        except (ValueError, ssl.SSLError):
            return	# this OpenSSL cannot even try: nothing to prove
        try:
            c = TLSConnection(port, ctx=ctx, timeout=10)
        except (ssl.SSLError, OSError, SMTPError):
            return
        c.close()
        raise AssertionError("a TLS 1.1 handshake succeeded")


def test_smtps_garbage_is_dropped():
    """A plaintext client on the smtps port is disconnected, the worker
    goes on."""
    conf, port = smtps_conf()
    with Daemon(conf=conf):
        s = socket.create_connection(("127.0.0.1", port), timeout=10)
        s.sendall(b"EHLO plain.example.test\r\n")
        s.settimeout(10)
        try:
            data = s.recv(100)
        except ConnectionResetError:
            data = b""
        s.close()
        assert not data.startswith(b"250"), data
        with TLSConnection(port) as c:
            assert c.greeting.code == 220


def test_swaks_starttls():
    mark = unique("swaks-tls")
    with Daemon(conf=tls_conf()) as d:
        r = subprocess.run(["swaks", "--server", "127.0.0.1", "--port",
                            str(d.port), "--from", "a@client.test", "--to",
                            RCPT1, "--tls", "--helo", HELO,
                            "--header", "Subject: " + mark],
                           stdout=subprocess.PIPE, stderr=subprocess.STDOUT,
                           timeout=30)
        out = r.stdout.decode("utf-8", "replace")
        assert r.returncode == 0, out
        assert "queued as" in out, out
        wait_marker(TEST_USER1, mark)


def test_key_out_of_workers_reach():
    """Workers load the key before they drop privileges: afterwards
    they run unprivileged in an empty chroot, with no descriptor on it."""
    cert, key = make_certificate()
    with Daemon(conf=tls_conf()) as d:
        workers = [pid for pid in d.children()
                   if "smtp worker" in (fixture.proc_title(pid) or "")]
        assert workers, "no smtp worker among %s" % d.children()
        for pid in workers:
            st = fixture.proc_status(pid)
            assert st["Uid"].split()[0] != "0", st["Uid"]
            assert fixture.proc_root(pid) == fixture.EMPTY_DIR, \
                fixture.proc_root(pid)
            for fd in os.listdir("/proc/%d/fd" % pid):
                try:
                    target = os.readlink("/proc/%d/fd/%s" % (pid, fd))
                except OSError:
                    continue
                assert target != key, "worker %d holds the key open" % pid
        with SMTPConnection(d.port) as c:
            assert c.command("EHLO " + HELO).code == 250
            starttls(c)
            assert c.command("EHLO " + HELO).code == 250


def test_tls_error_logged_with_its_reason_only():
    """Issue 15 item 8: a failed handshake is logged with OpenSSL's
    reason and the client as host[address], not followed by libevent's
    SSL_get_error() code printed as if it were an OpenSSL error
    ("error:00000001:lib(0)::reason(1)")."""
    with Daemon(conf=tls_conf()) as d:
        with SMTPConnection(d.port) as c:
            c.command("EHLO " + HELO)
            assert c.command("STARTTLS").code == 220
            # plain text where the ClientHello belongs
            c.send(b"EHLO not.tls.test\r\nQUIT\r\n")
            try:
                while c.sock.recv(4096):
                    pass
            except OSError:
                pass
        lines = fixture.poll(lambda: [
            ln for ln in d.log().splitlines() if "TLS error" in ln])
        time.sleep(0.3)
        lines = [ln for ln in d.log().splitlines() if "TLS error" in ln]
    assert lines, "no TLS error logged"
    assert not [ln for ln in lines if "lib(0)" in ln], lines
    assert len(lines) == 1 and \
        re.search(r"TLS error from unknown\[127\.0\.0\.1\]: "
                  r"error:[0-9A-F]{8}:SSL routines::", lines[0]), lines
