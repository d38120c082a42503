"""
test_mta_tls.py -- STARTTLS and AUTH in the mta (issue 6): opportunistic
TLS by default, "relay tls" required, "relay tls verify" against the
system CA store, AUTH PLAIN/LOGIN to a smarthost only over TLS.

The peer is test_mta_relay.FakeSMTP with a self-signed certificate made
by openssl(1) for the test.
"""

import os
import subprocess
import tempfile

import fixture
from fixture import Daemon, unique_marker
from test_mta_relay import FakeSMTP, send_mail, message, wait_log

TIMEOUT = 60

CONF = """\
spool "@TMP@/spool"
socket "@TMP@/smtpd.sock"
smtp workers 1
table secrets { lab = "joe:s3cret" }
listen on 127.0.0.1 port @PORT@
action "relay" relay host "%(url)s" %(opts)s
match from local for any action "relay"
"""

_cert = None


def make_cert():
    """(certfile, keyfile) of a self-signed certificate for 127.0.0.1."""
    global _cert
    if _cert:
        return _cert
    d = tempfile.mkdtemp(prefix="tls.", dir=fixture.TEST_ROOT)
    cert, key = os.path.join(d, "cert.pem"), os.path.join(d, "key.pem")
    r = subprocess.run(
        ["openssl", "req", "-x509", "-newkey", "rsa:2048", "-nodes",
         "-keyout", key, "-out", cert, "-days", "2", "-subj",
         "/CN=localhost", "-addext",
         "subjectAltName=DNS:localhost,IP:127.0.0.1"],
        stdout=subprocess.PIPE, stderr=subprocess.STDOUT)
    if r.returncode != 0:
        raise fixture.FixtureError("openssl req: %s" % r.stdout)
    _cert = (cert, key)
    return _cert


def conf(port, scheme="smtp", label="", opts=""):
    return CONF % {"url": "%s://%s127.0.0.1:%d" % (scheme, label, port),
                   "opts": opts}


def test_starttls_opportunistic():
    with FakeSMTP(cert=make_cert()) as srv, \
            Daemon(conf=conf(srv.port)) as d:
        send_mail(d.port, ["t@remote.test"], message(unique_marker("tls")))
        wait_log(d, r"to=<t@remote.test>.*status=sent")
        assert srv.sessions[0]["tls"], srv.sessions[0]["commands"]
        cmds = srv.sessions[0]["commands"]
        # EHLO again after STARTTLS, as RFC 3207 4.2 requires
        assert [c.split()[0] for c in cmds[:3]] == ["EHLO", "STARTTLS",
                                                    "EHLO"], cmds


def test_plain_when_no_starttls():
    with FakeSMTP() as srv, Daemon(conf=conf(srv.port)) as d:
        send_mail(d.port, ["p@remote.test"], message("plain"))
        wait_log(d, r"to=<p@remote.test>.*status=sent")
        assert not srv.sessions[0]["tls"]


def test_tls_required_but_not_offered():
    with FakeSMTP() as srv, Daemon(conf=conf(srv.port, opts="tls")) as d:
        send_mail(d.port, ["r@remote.test"], message("required"))
        wait_log(d, r"to=<r@remote.test>.*dsn=4\.7\.4, status=deferred.*"
                 r"TLS is required")
        assert srv.transactions() == []


def test_tls_verify_refuses_self_signed():
    with FakeSMTP(cert=make_cert()) as srv, \
            Daemon(conf=conf(srv.port, opts="tls verify")) as d:
        send_mail(d.port, ["v@remote.test"], message("verify"))
        wait_log(d, r"to=<v@remote.test>.*dsn=4\.7\.5, status=deferred.*"
                 r"certificate verification failed")
        assert srv.transactions() == []


def make_ca_and_cert(names):
    """(cafile, certfile, keyfile): a test CA and a server certificate it
    signed, with the given subjectAltName entries."""
    d = tempfile.mkdtemp(prefix="ca.", dir=fixture.TEST_ROOT)
    p = lambda n: os.path.join(d, n)
    ext = p("ext.cnf")
    with open(ext, "w") as f:
        f.write("subjectAltName=%s\nbasicConstraints=CA:FALSE\n"
                "extendedKeyUsage=serverAuth\n" % names)
    for cmd in (
            ["openssl", "req", "-x509", "-newkey", "rsa:2048", "-nodes",
             "-keyout", p("ca.key"), "-out", p("ca.pem"), "-days", "2",
             "-subj", "/CN=Posthaste test CA"],
            ["openssl", "req", "-newkey", "rsa:2048", "-nodes",
             "-keyout", p("key.pem"), "-out", p("req.pem"),
             "-subj", "/CN=mx.test"],
            ["openssl", "x509", "-req", "-in", p("req.pem"), "-CA",
             p("ca.pem"), "-CAkey", p("ca.key"), "-CAcreateserial",
             "-out", p("cert.pem"), "-days", "2", "-extfile", ext]):
        r = subprocess.run(cmd, stdout=subprocess.PIPE,
                           stderr=subprocess.STDOUT)
        if r.returncode != 0:
            raise fixture.FixtureError("%s: %s" % (cmd[:2], r.stdout))
    for n in ("ca.pem", "cert.pem", "key.pem"):
        os.chmod(p(n), 0o644)
    os.chmod(d, 0o755)
    return p("ca.pem"), p("cert.pem"), p("key.pem")


def test_tls_verify_accepts_trusted_chain_and_name():
    """A certificate from a CA in the store (SSL_CERT_FILE names it) for
    the relay host's name: verified, the message goes out over TLS."""
    ca, cert, key = make_ca_and_cert("DNS:localhost")
    with FakeSMTP(cert=(cert, key)) as srv, \
            Daemon(conf=CONF % {"url": "smtp://localhost:%d" % srv.port,
                                "opts": "tls verify"},
                   env={"SSL_CERT_FILE": ca}) as d:
        marker = unique_marker("verified")
        send_mail(d.port, ["ok@remote.test"], message(marker))
        wait_log(d, r"to=<ok@remote.test>.*status=sent", timeout=TIMEOUT)
        txns = srv.transactions()
        assert len(txns) == 1 and marker.encode() in txns[0]["data"]
        assert [s["tls"] for s in srv.sessions] == [True], srv.sessions
        assert "ready on localhost[127.0.0.1]" in d.log() and \
            "(TLS)" in d.log()


def test_tls_verify_refuses_wrong_name():
    """The same trusted chain, but the certificate is not for the name
    the relay host was reached by: refused, deferred."""
    ca, cert, key = make_ca_and_cert("DNS:other.test")
    with FakeSMTP(cert=(cert, key)) as srv, \
            Daemon(conf=CONF % {"url": "smtp://localhost:%d" % srv.port,
                                "opts": "tls verify"},
                   env={"SSL_CERT_FILE": ca}) as d:
        send_mail(d.port, ["n@remote.test"], message("wrongname"))
        wait_log(d, r"4\.7\.5 localhost\[127\.0\.0\.1\]:\d+: TLS "
                 r"certificate verification failed: hostname mismatch",
                 timeout=TIMEOUT)
        # localhost also has ::1, where nobody listens: the queue still
        # says why the one that answered was refused
        wait_log(d, r"to=<n@remote.test>.*dsn=4\.7\.5, status=deferred.*"
                 r"hostname mismatch", timeout=TIMEOUT)
        assert srv.transactions() == []


def test_auth_plain_over_tls():
    with FakeSMTP(cert=make_cert(), auth={"joe": "s3cret"}) as srv, \
            Daemon(conf=conf(srv.port, "smtp+tls", "lab@",
                             "auth <secrets>")) as d:
        send_mail(d.port, ["a@remote.test"], message("auth"))
        wait_log(d, r"to=<a@remote.test>.*status=sent")
        assert srv.auth_seen == [("PLAIN", "joe", "s3cret", True)], \
            srv.auth_seen
        # the password never shows in the log
        assert "s3cret" not in d.log()


def test_auth_refused_defers():
    with FakeSMTP(cert=make_cert(), auth={"joe": "other"}) as srv, \
            Daemon(conf=conf(srv.port, "smtp+tls", "lab@",
                             "auth <secrets>")) as d:
        send_mail(d.port, ["a@remote.test"], message("auth"))
        wait_log(d, r"to=<a@remote.test>.*dsn=4\.7\.0, status=deferred.*"
                 r"authentication failed.*535")
        assert srv.transactions() == []


def test_no_credentials_without_tls():
    """smtp:// with auth to a server without STARTTLS: the password is
    not sent in the clear, the mail waits."""
    with FakeSMTP(auth={"joe": "s3cret"}) as srv, \
            Daemon(conf=conf(srv.port, "smtp", "lab@",
                             "auth <secrets>")) as d:
        send_mail(d.port, ["c@remote.test"], message("clear"))
        wait_log(d, r"to=<c@remote.test>.*dsn=4\.7\.0, status=deferred.*"
                 r"without TLS")
        assert srv.auth_seen == []


def test_tls_session_resumed():
    """A second connection to the same host resumes the first one's TLS
    session (a ticket): no second full handshake."""
    with FakeSMTP(cert=make_cert(), hangup_after=("DATA",)) as srv, \
            Daemon(conf=conf(srv.port)) as d:
        for n in range(2):
            rcpt = "resume%d@remote.test" % n
            send_mail(d.port, [rcpt], message(unique_marker("resume")))
            wait_log(d, r"to=<%s>.*status=sent" % rcpt)
        assert len(srv.sessions) == 2 and all(s["tls"] for s in
                                               srv.sessions)
        tls = [line for line in d.log().splitlines() if "TLS=anonymous"
               in line]
        assert len(tls) == 2, tls
        assert not tls[0].endswith(", resumed") and \
            tls[1].endswith(", resumed"), tls
