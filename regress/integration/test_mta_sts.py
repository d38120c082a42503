"""
test_mta_sts.py -- MTA-STS (RFC 8461, issue 20) end to end: the real
daemon resolves through dnsserver.py ("resolver 127.0.0.1 port 15520",
MX, A and the _mta-sts TXT records), fetches policies from an HTTPS
server on 127.0.0.61:443 (the address mta-sts.DOMAIN resolves to; tests
run as root, and nothing else uses that address), and delivers to a
scripted SMTP server with STARTTLS on 127.0.0.62:25.  A test CA made
with openssl(1) signs the certificates of both; the daemon trusts it
alone (SSL_CERT_FILE, which the mta and lookup both honour).

The TXT records are served with TTL 0, so that a changed id is seen at
once; the SMTP server hangs up after each message, so that each message
makes the mta resolve the domain (and ask for its policy) again.

Four daemon starts in all: one for the modes and failures side by
side, one (started twice on the same spool) for the cache -- a new id
and an expired policy are fetched again, an unchanged id after a
restart is not -- and one with "mta mta-sts no".  About 8 s a build.
"""

import http.server
import os
import ssl
import tempfile
import threading
import time

import dnsserver
import fixture
from fixture import Daemon, unique_marker
from test_mta_relay import FakeSMTP, send_mail, message, wait_log
from test_mta_tls import make_ca_and_cert

TIMEOUT = 60

DNS_PORT = 15520		# sts's ports: 15520-15539
POLICY_IP = "127.0.0.61"
MX_IP = "127.0.0.62"
DOMAINS = ("enf.test", "bad.test", "tst.test", "ref.test", "nocert.test",
           "nopol.test", "badweb.test")

CONF = """\
spool "%(spool)s"
socket "@TMP@/smtpd.sock"
smtp workers 1
resolver 127.0.0.1 port %(dns)d
listen on 127.0.0.1 port @PORT@
action "mx" relay
match from local for any action "mx"
"""


def policy(mode, mx, max_age=86400, crlf=False):
    eol = "\r\n" if crlf else "\n"
    lines = ["version: STSv1", "mode: " + mode] + \
        ["mx: " + m for m in mx] + ["max_age: %d" % max_age]
    return (eol.join(lines) + eol).encode()


class ZeroTTLDNS(dnsserver.DNSServer):
    """dnsserver.py with TTL 0 on every record (the resolver caches
    nothing), on this module's port."""

    def __init__(self, zone):
        super().__init__(zone)
        self.port = DNS_PORT

    def _rr(self, name, rtype, value):
        rr = super()._rr(name, rtype, value)
        if rr is not None:
            rr.ttl = 0
        return rr


def zone(ids):
    """MX mx.D -> MX_IP, mta-sts.D -> POLICY_IP, _mta-sts.D TXT id."""
    z = {}
    for d in DOMAINS:
        z[d] = [("MX", (10, "mx." + d))]
        z["mx." + d] = [("A", MX_IP)]
        z["mta-sts." + d] = [("A", POLICY_IP)]
        if d in ids:
            z["_mta-sts." + d] = [("TXT", "v=STSv1; id=%s;" % ids[d]),
                                  ("TXT", "v=spf1 -all")]
    return z


class PolicyServer:
    """HTTPS on POLICY_IP:443: GET /.well-known/mta-sts.txt answers the
    policy of the Host's domain (self.policies[domain] = bytes) as
    text/plain, and counts the fetches per domain."""

    def __init__(self, cert, key):
        self.policies = {}
        self.fetches = {}
        self.lock = threading.Lock()
        outer = self

        class Handler(http.server.BaseHTTPRequestHandler):
            def do_GET(self):
                host = (self.headers.get("Host") or "").split(":")[0]
                dom = host[len("mta-sts."):] if host.startswith(
                    "mta-sts.") else ""
                with outer.lock:
                    body = outer.policies.get(dom)
                    if self.path == "/.well-known/mta-sts.txt":
                        outer.fetches[dom] = outer.fetches.get(dom, 0) + 1
                if body is None or self.path != "/.well-known/mta-sts.txt":
                    self.send_error(404)
                    return
                self.send_response(200)
                self.send_header("Content-Type", "text/plain")
                self.send_header("Content-Length", str(len(body)))
                self.end_headers()
                self.wfile.write(body)

            def log_message(self, *args):
                pass

        try:
            self.httpd = http.server.ThreadingHTTPServer((POLICY_IP, 443),
                                                         Handler)
        except OSError as e:
            raise fixture.FixtureError("cannot listen on %s:443: %s"
                                       % (POLICY_IP, e))
        ctx = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
        ctx.load_cert_chain(cert, key)
        self.httpd.socket = ctx.wrap_socket(self.httpd.socket,
                                            server_side=True)
        self.thread = threading.Thread(target=self.httpd.serve_forever,
                                       kwargs={"poll_interval": 0.1},
                                       daemon=True)
        self.thread.start()

    def count(self, domain):
        with self.lock:
            return self.fetches.get(domain, 0)

    def __enter__(self):
        return self

    def __exit__(self, *exc):
        self.httpd.shutdown()
        self.httpd.server_close()
        return False


def certs():
    """The certificate names every domain's policy host and MX, but
    mx.nocert.test and mta-sts.badweb.test."""
    names = ",".join(["DNS:mta-sts." + d for d in DOMAINS
                      if d != "badweb.test"] +
                     ["DNS:mx." + d for d in DOMAINS if d != "nocert.test"])
    return make_ca_and_cert(names)


def spool_dir():
    d = tempfile.mkdtemp(prefix="sts.", dir=fixture.TEST_ROOT)
    os.chmod(d, 0o755)
    return os.path.join(d, "spool")


def daemon(spool, ca):
    return Daemon(conf=CONF % {"spool": spool, "dns": DNS_PORT},
                  env={"SSL_CERT_FILE": ca})


def test_enforce_testing_modes():
    """enf.test (enforce, its MX matches "*.enf.test"): delivered with a
    verified certificate.  bad.test (enforce, the policy names another
    host): deferred with 4.7.5, the MX never contacted.  tst.test
    (testing, the same mismatch): delivered, the mismatch logged.
    nocert.test (enforce, its MX matches, but the MX's certificate does
    not name it): deferred, never sent in plain text.  nopol.test (a TXT
    record, but the policy server answers 404) and badweb.test (the
    policy server's certificate does not name it): no policy, delivered
    as usual, the failures reported."""
    ca, cert, key = certs()
    with ZeroTTLDNS(zone({"enf.test": "e1", "bad.test": "b1",
                          "tst.test": "t1", "nocert.test": "n1",
                          "nopol.test": "p1", "badweb.test": "w1"})), \
            PolicyServer(cert, key) as web, \
            FakeSMTP(addr=(MX_IP, 25), cert=(cert, key),
                     hangup_after=("DATA",)) as mx, \
            daemon(spool_dir(), ca) as d:
        web.policies["enf.test"] = policy("enforce", ["*.enf.test"],
                                          crlf=True)
        web.policies["bad.test"] = policy("enforce", ["mx.other.test"])
        web.policies["tst.test"] = policy("testing", ["mx.other.test"])
        web.policies["nocert.test"] = policy("enforce", ["mx.nocert.test"])
        web.policies["badweb.test"] = policy("enforce", ["mx.other.test"])
        marks = {}
        for dom in ("enf.test", "bad.test", "tst.test", "nocert.test",
                    "nopol.test", "badweb.test"):
            marks[dom] = unique_marker(dom)
            send_mail(d.port, ["u@" + dom], message(marks[dom]))
        wait_log(d, r"to=<u@enf\.test>, relay=mx\.enf\.test\[127\.0\.0\.62"
                 r"\]:25.*status=sent", timeout=TIMEOUT)
        wait_log(d, r"mx\.enf\.test\[127\.0\.0\.62\]:25: TLS=verified")
        wait_log(d, r"to=<u@bad\.test>.*dsn=4\.7\.5, status=deferred.*"
                 r"MTA-STS: no MX host of bad\.test matches its policy",
                 timeout=TIMEOUT)
        wait_log(d, r"to=<u@tst\.test>, relay=mx\.tst\.test.*status=sent",
                 timeout=TIMEOUT)
        wait_log(d, r"mta-sts: tst\.test: MX host mx\.tst\.test is not in "
                 r"the policy \(mode testing\)")
        wait_log(d, r"to=<u@nocert\.test>.*dsn=4\.7\.5, status=deferred.*"
                 r"certificate verification failed: hostname mismatch",
                 timeout=TIMEOUT)
        wait_log(d, r"to=<u@nopol\.test>, relay=mx\.nopol\.test.*"
                 r"status=sent", timeout=TIMEOUT)
        wait_log(d, r"to=<u@badweb\.test>, relay=mx\.badweb\.test.*"
                 r"status=sent", timeout=TIMEOUT)
        assert "mta-sts: nopol.test: no policy: fetching the policy " \
            "failed: HTTP status 404" in d.log()
        wait_log(d, r"mta-sts: badweb\.test: no policy: fetching the "
                 r"policy failed: SSL: no alternative certificate")
        # TLS-RPT: sts-policy-fetch-error (9), sts-webpki-invalid (11),
        # certificate-host-mismatch (2), validation-failure (5)
        for dom, rx in (("nopol", r"- policy 1 result 9\b"),
                        ("badweb", r"- policy 1 result 11\b"),
                        ("nocert", r"mx\.nocert\.test policy 1 result 2\b"),
                        ("bad", r"mx\.bad\.test policy 1 result 5\b"),
                        ("tst", r"mx\.tst\.test policy 1 result 5: MX host "
                         r"not listed"),
                        ("enf", r"mx\.enf\.test policy 1 result 0\b")):
            wait_log(d, r"tlsrpt: %s\.test %s" % (dom, rx))
        # a testing session to an unlisted host is one failure, no success
        assert "tlsrpt: tst.test mx.tst.test policy 1 result 0" not in d.log()
        # testing, and no policy: TLS as the level says (may)
        assert "mx.tst.test[127.0.0.62]:25: TLS=anonymous" in d.log()
        assert "mx.nopol.test[127.0.0.62]:25: TLS=anonymous" in d.log()
        got = [t["data"] for t in mx.transactions()]
        for dom, sent in (("enf.test", True), ("tst.test", True),
                          ("nopol.test", True), ("badweb.test", True),
                          ("bad.test", False), ("nocert.test", False)):
            assert any(marks[dom].encode() in g for g in got) == sent, dom
        # nothing went in plain text: STARTTLS in every session
        assert all(s["tls"] or s["commands"][-1:] == ["STARTTLS"]
                   for s in mx.sessions), mx.sessions
        # badweb.test's fetch failed in the handshake: never counted
        assert [web.count(x) for x in ("enf.test", "bad.test", "tst.test",
                                       "nocert.test", "nopol.test",
                                       "badweb.test")] == [1, 1, 1, 1, 1, 0]


def test_refetch_expiry_and_restart():
    """ref.test under enforce: fetched once; a new TXT id is fetched
    again; a policy whose max_age has run out is fetched again; after a
    daemon restart on the same spool, an unchanged id is served from the
    cache, not fetched; when the record is gone and the policy ran out,
    the cache file is removed."""
    ca, cert, key = certs()
    spool = spool_dir()
    rcpt = "r@ref.test"
    sent = [0]

    def deliver(d, tag):
        sent[0] += 1
        send_mail(d.port, [rcpt], message(unique_marker(tag)))
        wait_log(d, r"to=<r@ref\.test>, relay=mx\.ref\.test.*status=sent",
                 timeout=TIMEOUT, count=sent[0])

    with ZeroTTLDNS(zone({"ref.test": "r1"})) as dns, \
            PolicyServer(cert, key) as web, \
            FakeSMTP(addr=(MX_IP, 25), cert=(cert, key),
                     hangup_after=("DATA",)):
        web.policies["ref.test"] = policy("enforce", ["mx.ref.test"])
        d = daemon(spool, ca)
        with d:
            deliver(d, "first")
            assert web.count("ref.test") == 1
            # the same id, unexpired: the cache answers
            deliver(d, "same-id")
            assert web.count("ref.test") == 1
            # a new id: fetched again; this policy lives one second
            web.policies["ref.test"] = policy("enforce", ["mx.ref.test"],
                                              max_age=1)
            dns.set_zone(zone({"ref.test": "r2"}))
            deliver(d, "new-id")
            assert web.count("ref.test") == 2
            fetched = time.monotonic()
            # expired: fetched again, though the id is the same
            web.policies["ref.test"] = policy("enforce", ["mx.ref.test"])
            time.sleep(max(0.0, fetched + 1.1 - time.monotonic()))
            deliver(d, "expired")
            assert web.count("ref.test") == 3
            assert os.path.exists(os.path.join(spool, "sts", "ref.test"))
            d.stop()
            # a restart on the same spool: the cache file answers
            sent[0] = 0
            d.start()
            deliver(d, "restart")
            assert web.count("ref.test") == 3
            wait_log(d, r"mx\.ref\.test\[127\.0\.0\.62\]:25: TLS=verified")
            # the domain drops MTA-STS: once its policy ran out, the
            # cache file goes
            web.policies["ref.test"] = policy("enforce", ["mx.ref.test"],
                                              max_age=1)
            dns.set_zone(zone({"ref.test": "r3"}))
            deliver(d, "short")
            assert web.count("ref.test") == 4
            fetched = time.monotonic()
            dns.set_zone(zone({}))
            time.sleep(max(0.0, fetched + 1.1 - time.monotonic()))
            deliver(d, "dropped")
            assert web.count("ref.test") == 4
            assert not os.path.exists(os.path.join(spool, "sts",
                                                   "ref.test"))


def test_switched_off():
    """"mta mta-sts no": the policy of bad.test (enforce, naming another
    host) is never fetched, and the mail goes to its MX."""
    ca, cert, key = certs()
    with ZeroTTLDNS(zone({"bad.test": "b1"})), \
            PolicyServer(cert, key) as web, \
            FakeSMTP(addr=(MX_IP, 25), cert=(cert, key),
                     hangup_after=("DATA",)) as mx, \
            Daemon(conf=CONF % {"spool": "@TMP@/spool", "dns": DNS_PORT} +
                   "mta mta-sts no\n", env={"SSL_CERT_FILE": ca}) as d:
        web.policies["bad.test"] = policy("enforce", ["mx.other.test"])
        send_mail(d.port, ["off@bad.test"], message(unique_marker("off")))
        wait_log(d, r"to=<off@bad\.test>, relay=mx\.bad\.test.*status=sent",
                 timeout=TIMEOUT)
        assert web.count("bad.test") == 0
        assert len(mx.transactions()) == 1
        assert "mta-sts" not in d.log()
