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
