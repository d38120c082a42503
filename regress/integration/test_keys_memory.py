"""
No private key in a network-facing process (issue 18, part 1).

The keys process alone holds the private keys; the smtp workers and the
mta hold stubs (common/keys_client.c) and ask it for each signature a
handshake needs.  The proof is a core dump: after TLS sessions on every
kind of listener (STARTTLS, smtps) and a relay that presents a client
certificate to a server that demands one, gcore(1) dumps every smtp
worker, the mta and the keys process.  Neither key's secret numbers
(the private exponent and the primes, in either byte order, as OpenSSL
keeps them in memory or as they sit in the file) nor a line of either
key file is in any worker's or the mta's core; in the keys process's
core they are (so the search does find them where they are).
"""

import os
import re
import shutil
import subprocess
import tempfile

import fixture
from fixture import (TEST_USER1, Daemon, SMTPConnection, maildir_holds,
                     poll, unique_marker)
from test_mta_relay import FakeSMTP
from test_smtp_common import TLSConnection, starttls

TIMEOUT = 60
NEEDLE = 24		# bytes of each secret number searched for

CONF = """\
spool "@TMP@/spool"
socket "@TMP@/smtpd.sock"
smtp workers 2
pki mail.example.test cert "%(scert)s"
pki mail.example.test key "%(skey)s"
pki client.example.test cert "%(ccert)s"
pki client.example.test key "%(ckey)s"
listen on 127.0.0.1 port @PORT@ tls pki mail.example.test
listen on 127.0.0.1 port %(smtps)d smtps pki mail.example.test
action "local" maildir "~/Maildir"
action "out" relay host smtp://127.0.0.1:%(relay)d tls pki client.example.test
match from any for domain "example.test" action "local"
match from local for any action "out"
"""


def make_pair(d, name, cn):
    cert, key = os.path.join(d, name + ".crt"), os.path.join(d, name + ".key")
    subprocess.run(["openssl", "req", "-x509", "-newkey", "rsa:2048",
                    "-nodes", "-keyout", key, "-out", cert, "-days", "2",
                    "-subj", "/CN=" + cn, "-addext",
                    "subjectAltName=DNS:%s,IP:127.0.0.1" % cn],
                   check=True, stdout=subprocess.DEVNULL,
                   stderr=subprocess.DEVNULL)
    os.chmod(key, 0o600)
    return cert, key


def secrets_of(keyfile):
    """Byte strings that only the private key holds."""
    out = subprocess.run(["openssl", "pkey", "-in", keyfile, "-text",
                          "-noout"], check=True,
                         stdout=subprocess.PIPE).stdout.decode()
    found = []
    for field in ("privateExponent", "prime1", "prime2"):
        m = re.search(field + r":\s*\n((?:\s+[0-9a-f:]+\n)+)", out)
        assert m, "no %s in openssl's dump of %s" % (field, keyfile)
        raw = bytes.fromhex(re.sub(r"[\s:]", "", m.group(1)))
        raw = raw.lstrip(b"\0")
        found.append((field + " (big-endian)", raw[:NEEDLE]))
        found.append((field + " (little-endian)", raw[::-1][:NEEDLE]))
    with open(keyfile) as f:
        lines = [ln.strip() for ln in f if not ln.startswith("-----")]
    found.append(("a line of the PEM file", lines[len(lines) // 2].encode()))
    return found


def core_of(pid, d):
    prefix = os.path.join(d, "core")
    r = subprocess.run(["gcore", "-o", prefix, str(pid)],
                       stdout=subprocess.PIPE, stderr=subprocess.STDOUT,
                       timeout=TIMEOUT)
    path = "%s.%d" % (prefix, pid)
    assert r.returncode == 0 and os.path.exists(path), \
        "gcore %d: %s" % (pid, r.stdout.decode(errors="replace")[-500:])
    with open(path, "rb") as f:
        data = f.read()
    os.unlink(path)
    return data


def starttls_mail(port, marker):
    with SMTPConnection(port) as c:
        assert c.command("EHLO keys.test").code == 250
        starttls(c)
        assert c.command("EHLO keys.test").code == 250
        send_one(c, "%s@example.test" % TEST_USER1, marker)


def smtps_mail(port, marker):
    with TLSConnection(port) as c:
        assert c.command("EHLO keys.test").code == 250
        send_one(c, "%s@example.test" % TEST_USER1, marker)


def send_one(c, rcpt, marker):
    assert c.command("MAIL FROM:<k@example.test>").code == 250
    assert c.command("RCPT TO:<%s>" % rcpt).code == 250
    assert c.command("DATA").code == 354
    c.send(("Subject: %s\r\n\r\n%s\r\n.\r\n" % (marker, marker)).encode())
    assert c.reply().code == 250
    c.command("QUIT")


def sanitizer_build():
    with open(fixture.binary("smtpd"), "rb") as f:
        return b"POSTHASTE_SAN_SANDBOX_ALLOWANCES" in f.read()


def test_no_private_key_outside_keys():
    if shutil.which("gcore") is None:
        fixture.skip("gcore (gdb) is needed: mk/deps.sh installs it")
    if sanitizer_build():
        # gcore would dump ASan's terabytes of shadow mappings
        fixture.skip("a sanitizer build: the plain build's run proves it")
    d = tempfile.mkdtemp(prefix="keys.", dir=fixture.TEST_ROOT)
    os.chmod(d, 0o700)
    scert, skey = make_pair(d, "server", "mail.example.test")
    ccert, ckey = make_pair(d, "client", "client.example.test")
    smtps = fixture.free_port()
    with FakeSMTP(cert=(scert, skey), client_ca=ccert) as peer:
        conf = CONF % {"scert": scert, "skey": skey, "ccert": ccert,
                       "ckey": ckey, "smtps": smtps, "relay": peer.port}
        with Daemon(conf=conf) as dm:
            m1, m2 = unique_marker("starttls"), unique_marker("smtps")
            starttls_mail(dm.port, m1)
            smtps_mail(smtps, m2)
            # relayed: from local, to a domain not ours, client cert
            with SMTPConnection(dm.port) as c:
                assert c.command("EHLO keys.test").code == 250
                send_one(c, "t@remote.test", unique_marker("relay"))
            assert poll(lambda: maildir_holds(m1) and maildir_holds(m2),
                        TIMEOUT), "the TLS sessions' mail was not delivered"
            assert poll(lambda: peer.client_certs, TIMEOUT), \
                "the relay never presented a client certificate:\n" + \
                dm.log_tail()
            with open(ccert) as f:
                import ssl
                want = ssl.PEM_cert_to_DER_cert(f.read())
            assert peer.client_certs[0] == want

            kids = {pid: fixture.proc_title(pid) or ""
                    for pid in dm.children()}
            keys = [p for p, t in kids.items() if t.endswith("keys")]
            faced = [p for p, t in kids.items()
                     if "smtp worker" in t or t.endswith("mta")]
            assert len(keys) == 1, kids
            assert len(faced) == 3, kids	# two workers and the mta
            secrets = secrets_of(skey) + secrets_of(ckey)
            for pid in faced:
                core = core_of(pid, d)
                for what, needle in secrets:
                    assert needle not in core, \
                        "%s of a private key is in %s (pid %d)" % (
                            what, kids[pid], pid)
            core = core_of(keys[0], d)
            held = [what for what, needle in secrets if needle in core]
            assert held, "no key's secret found even in the keys process"
            # both keys are there, each in some form
            assert any(needle in core for _, needle in secrets_of(skey))
            assert any(needle in core for _, needle in secrets_of(ckey))
    shutil.rmtree(d, ignore_errors=True)
