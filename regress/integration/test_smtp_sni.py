"""
test_smtp_sni.py -- several pki on one listener (issue 20): the server
picks the certificate by the name the client asks for (SNI), the pki of
that name or the one whose certificate is valid for it, and the first
pki for any other name or none.  One daemon for the module.
"""

import socket
import ssl

import fixture
from fixture import Daemon, SMTPConnection
from test_mta_tls_policy import TestCA
from test_smtp_common import HELO, expect

TIMEOUT = 60

CONF = """\
spool "@TMP@/spool"
socket "@TMP@/smtpd.sock"
smtp workers 1
pki default.test cert "%(dcert)s"
pki default.test key "%(dkey)s"
pki mail.a.test cert "%(acert)s"
pki mail.a.test key "%(akey)s"
pki bee cert "%(bcert)s"
pki bee key "%(bkey)s"
listen on 127.0.0.1 port @PORT@ tls pki default.test pki mail.a.test \\
	pki bee
listen on 127.0.0.1 port %(smtps)d smtps pki default.test pki bee
"""

SMTPS_PORT = 15550


def der(path):
    with open(path) as f:
        return ssl.PEM_cert_to_DER_cert(f.read())


def context(maxver=None):
    ctx = ssl.SSLContext(ssl.PROTOCOL_TLS_CLIENT)
    ctx.check_hostname = False
    ctx.verify_mode = ssl.CERT_NONE
    if maxver is not None:
        ctx.maximum_version = maxver
    return ctx


def starttls_cert(port, name, maxver=None):
    """The certificate (DER) the server shows after STARTTLS when the
    client asks for `name' (None: no SNI)."""
    with SMTPConnection(port) as c:
        assert c.command("EHLO " + HELO).code == 250
        expect(c.command("STARTTLS"), 220, "2.0.0", "STARTTLS")
        c.sock = context(maxver).wrap_socket(c.sock, server_hostname=name)
        cert = c.sock.getpeercert(binary_form=True)
        assert c.command("EHLO " + HELO).code == 250
        c.command("QUIT")
        return cert


def smtps_cert(port, name):
    raw = socket.create_connection(("127.0.0.1", port), timeout=10)
    with context().wrap_socket(raw, server_hostname=name) as s:
        cert = s.getpeercert(binary_form=True)
        assert s.recv(512).startswith(b"220"), "no greeting over smtps"
        return cert


def test_sni_picks_the_certificate():
    ca = TestCA()
    dcert, dkey = ca.leaf("default.test", ["default.test"])
    acert, akey = ca.leaf("mail.a.test", ["mail.a.test"])
    bcert, bkey = ca.leaf("b.test", ["*.b.test"])
    conf = CONF % {"dcert": dcert, "dkey": dkey, "acert": acert,
                   "akey": akey, "bcert": bcert, "bkey": bkey,
                   "smtps": SMTPS_PORT}
    with Daemon(conf=conf) as d:
        d_, a, b = der(dcert), der(acert), der(bcert)
        # the pki of that name
        assert starttls_cert(d.port, "mail.a.test") == a
        assert starttls_cert(d.port, "MAIL.A.TEST") == a
        # the pki whose certificate is valid for it (a wildcard)
        assert starttls_cert(d.port, "mx.b.test") == b
        # TLS 1.2 takes the same path
        assert starttls_cert(d.port, "mx.b.test",
                             ssl.TLSVersion.TLSv1_2) == b
        # any other name, or none: the first pki
        assert starttls_cert(d.port, "unknown.test") == d_
        assert starttls_cert(d.port, "x.mail.a.test") == d_
        assert starttls_cert(d.port, None) == d_
        # smtps listeners too, each with its own list
        assert smtps_cert(SMTPS_PORT, "mx.b.test") == b
        assert smtps_cert(SMTPS_PORT, "mail.a.test") == d_
