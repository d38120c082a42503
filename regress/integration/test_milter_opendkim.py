"""
test_milter_opendkim.py -- OpenDKIM (Debian's opendkim, the milter
daemon) in front of the daemon, started by the test on loopback:

  - signing mode: the DKIM-Signature it inserts (at index 0, so above
    our Received:, as with Postfix) verifies with dkimpy (python3-dkim)
    against the key served by the loopback DNS server
    (regress/integration/dnsserver.py); the same message changed after
    signing does not;
  - verify mode: for a message signed by dkimpy it inserts its
    Authentication-Results with dkim=pass, for one changed after signing
    dkim=fail.  OpenDKIM looks keys up through libunbound, which is told
    (ResolverConfiguration) to ask only the loopback DNS server; our own
    address is not in its InternalHosts (mail from there is signed, not
    verified).

Skipped when opendkim, python3-dkim or python3-dnslib is missing.
"""

import base64
import importlib.util
import os
import re
import shutil

import fixture
from fixture import TEST_USER1, Daemon
import dnsserver
import milterlib
from milterlib import (Session, assert_reply, message, milter_conf,
                       tmpdir, wait_delivered)

TIMEOUT = 60
PORT_SIGN = 15432
PORT_VERIFY = 15433
DNS_PORT = 15368	# in dnsserver.py's range; the tests run one at a time
DOMAIN = "example.org"
SELECTOR = "milter"
KEY_NAME = "%s._domainkey.%s" % (SELECTOR, DOMAIN)
AUTHSERV = "mx.verify.test"
RCPT1 = "%s@example.test" % TEST_USER1
SENDER = "a@example.org"


def need_tools():
    if shutil.which("opendkim") is None and \
            not os.path.exists("/usr/sbin/opendkim"):
        fixture.skip("opendkim is not installed (mk/deps.sh installs it)")
    if importlib.util.find_spec("dkim") is None:
        fixture.skip("python3-dkim is not installed")
    dnsserver.require()


def make_key(d):
    """(private key file, TXT record) of a new 2048-bit RSA key."""
    from cryptography.hazmat.primitives import serialization as ser
    from cryptography.hazmat.primitives.asymmetric import rsa
    k = rsa.generate_private_key(public_exponent=65537, key_size=2048)
    pem = k.private_bytes(ser.Encoding.PEM,
                          ser.PrivateFormat.TraditionalOpenSSL,
                          ser.NoEncryption())
    der = k.public_key().public_bytes(
        ser.Encoding.DER, ser.PublicFormat.SubjectPublicKeyInfo)
    path = os.path.join(d, "key.pem")
    with open(path, "wb") as f:
        f.write(pem)
    os.chmod(path, 0o600)
    return path, pem, "v=DKIM1; k=rsa; p=" + base64.b64encode(der).decode()


def dns_txt(name, timeout=5):
    """dkimpy's dnsfunc: the TXT record, asked of the loopback server."""
    import dnslib
    q = dnslib.DNSRecord.question(name.decode().rstrip("."), "TXT")
    a = dnslib.DNSRecord.parse(q.send("127.0.0.1", DNS_PORT,
                                      timeout=timeout))
    for rr in a.rr:
        if rr.rtype == dnslib.QTYPE.TXT:
            return b"".join(rr.rdata.data)
    return b""


class OpenDKIM(milterlib.Process):
    """Debian's opendkim in the foreground on 127.0.0.1:port, with a
    configuration of its own (conf: @DIR@ and @PORT@ filled in)."""

    def __init__(self, port, conf):
        self.port = port
        self.dir = tmpdir("opendkim.")
        self.conf = conf.replace("@DIR@", self.dir).replace(
            "@PORT@", str(port))
        path = os.path.join(self.dir, "opendkim.conf")
        self.argv = [shutil.which("opendkim") or "/usr/sbin/opendkim",
                     "-f", "-x", path]

    def start(self):
        with open(self.argv[-1], "w") as f:
            f.write(self.conf)
        with open(os.path.join(self.dir, "internal"), "w") as f:
            f.write("192.0.2.1\n")	# not us: we get verified
        with open(os.path.join(self.dir, "unbound.conf"), "w") as f:
            f.write('server:\n  do-not-query-localhost: no\n'
                    '  module-config: "iterator"\n'
                    'forward-zone:\n  name: "."\n'
                    '  forward-addr: 127.0.0.1@%d\n' % DNS_PORT)
        return super().start()

    def stop(self):
        super().stop()
        shutil.rmtree(self.dir, ignore_errors=True)


COMMON = """\
Syslog no
Background no
RequireSafeKeys no
Socket inet:@PORT@@127.0.0.1
PidFile @DIR@/opendkim.pid
"""
SIGN_CONF = COMMON + """\
Mode s
Domain %s
Selector %s
KeyFile @KEY@
Canonicalization relaxed/simple
""" % (DOMAIN, SELECTOR)
VERIFY_CONF = COMMON + """\
Mode v
AuthservID %s
InternalHosts @DIR@/internal
ResolverConfiguration @DIR@/unbound.conf
""" % AUTHSERV


def send(d, msg, marker):
    with Session(d.port) as s:
        s.ehlo()
        t = s.transaction(SENDER, [RCPT1], msg)
        assert_reply(t["dot"], 250, what="end of data")
    got, = wait_delivered(marker)
    return got


def crlf(data):
    return data.replace(b"\r\n", b"\n").replace(b"\n", b"\r\n")


def test_signing_milter_verified_by_dkimpy():
    need_tools()
    import dkim
    fixture.reset_maildir(TEST_USER1)
    d0 = tmpdir("dkimkey.")
    keyfile, _, txt = make_key(d0)
    marker = fixture.unique_marker("dkim-sign")
    conf = milter_conf([("dkim", PORT_SIGN, "")], ["dkim"])
    try:
        with dnsserver.DNSServer({KEY_NAME: [("TXT", txt)]},
                                 port=DNS_PORT), \
                OpenDKIM(PORT_SIGN, SIGN_CONF.replace("@KEY@", keyfile)), \
                Daemon(conf=conf) as d:
            got = send(d, message(marker), marker)
            lines = got.split(b"\n")
            # Return-Path, Delivered-To, then the signature: index 0
            assert lines[2].startswith(b"DKIM-Signature: v=1; "), \
                got[:600]
            m = re.search(rb"\nDKIM-Signature: ([^\n]*(?:\n\s[^\n]*)*)",
                          got)
            tags = dict(re.findall(r"(\w+)=([^;]*)",
                                   re.sub(r"\s+", "", m.group(1).decode())))
            assert tags.get("d") == DOMAIN and tags.get("s") == SELECTOR, \
                tags
            assert b"\nReceived: " in got[got.index(b"DKIM-Signature"):], \
                "the signature is not above our Received:"
            msg = crlf(got)
            assert dkim.verify(msg, dnsfunc=dns_txt), \
                "dkimpy: the signature does not verify"
            bad = msg.replace(b"line three", b"line 3")
            assert not dkim.verify(bad, dnsfunc=dns_txt), \
                "dkimpy verified a changed message"
    finally:
        shutil.rmtree(d0, ignore_errors=True)


def test_verify_mode_adds_authentication_results():
    need_tools()
    import dkim
    fixture.reset_maildir(TEST_USER1)
    d0 = tmpdir("dkimkey.")
    _, pem, txt = make_key(d0)
    conf = milter_conf([("dkim", PORT_VERIFY, "")], ["dkim"])
    try:
        with dnsserver.DNSServer({KEY_NAME: [("TXT", txt)]},
                                 port=DNS_PORT), \
                OpenDKIM(PORT_VERIFY, VERIFY_CONF), Daemon(conf=conf) as d:
            results = {}
            for case in ("good", "changed"):
                marker = fixture.unique_marker("dkim-" + case)
                msg = message(marker)
                sig = dkim.sign(msg, SELECTOR.encode(), DOMAIN.encode(),
                                pem, canonicalize=(b"relaxed", b"simple"),
                                include_headers=[b"from", b"to",
                                                 b"subject", b"date",
                                                 b"message-id"])
                signed = sig + msg
                if case == "changed":
                    signed = signed.replace(b"line three", b"line 3")
                got = send(d, signed, marker)
                lines = got.decode().split("\n")
                assert lines[2].startswith("Authentication-Results: "
                                           + AUTHSERV + ";"), got[:600]
                ar = lines[2]
                for ln in lines[3:]:
                    if not ln.startswith(("\t", " ")):
                        break
                    ar += " " + ln.strip()
                results[case] = ar
            assert re.search(r"\bdkim=pass\b.*header\.d=example\.org",
                             results["good"]), results
            assert re.search(r"\bdkim=fail\b", results["changed"]), results
    finally:
        shutil.rmtree(d0, ignore_errors=True)
