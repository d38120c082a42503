"""
test_mta_dane.py -- DANE for outbound SMTP (RFC 7672) end to end, with
real DNSSEC (issue 20).

A zone, dane.test, is signed here at test time with ldns-keygen and
ldns-signzone (ldnsutils) and served by NSD on loopback; a real unbound,
started with its own configuration in a temporary directory, resolves
for the daemon ("resolver 127.0.0.1 port N"), reaching NSD through stub
zones and validating with the zone's DS as its trust anchor; the
daemon's own libunbound validates again with the same anchor ("dnssec
trust-anchor FILE").  insecure.dane.test is delegated from the signed
zone without a DS: an unsigned (insecure) zone.

The receiving MX hosts are test_mta_relay.FakeSMTP servers with TLS on
port 25 of their own loopback addresses (127.0.155.x), as in
test_mta_mx.py.  The cases, one daemon for all:

  ok.dane.test      TLSA 3 1 1 of the sink's key: delivered, TLS=verified-dane
  bad.dane.test     TLSA 3 1 1 of another key: deferred 4.7.5, nothing sent
  insecure.dane.test a TLSA record that does not match, but in an unsigned
                    zone, so it is not used: opportunistic TLS, delivered
  broken.dane.test  the TLSA record's RRSIG corrupted (bogus): deferred,
                    the MX host never even contacted (no plain text)
  ta.dane.test      TLSA 2 0 1 of a test CA, the sink's certificate for the
                    MX name issued by it: delivered, TLS=verified-dane
  only.insecure.dane.test with "tls dane-only" and no secure TLSA: deferred
  tanext.dane.test  TLSA 2 1 1 of another CA, the certificate for the
                    recipient domain (the next hop, RFC 7672 3.2.2): delivered
  tabad.dane.test   the same, the certificate for neither name: deferred
  nostls.dane.test  a matching TLSA record, but the MX offers no STARTTLS:
                    deferred 4.7.4, never sent in plain text
  hsfail.dane.test  a matching TLSA record, the MX's TLS handshake fails:
                    deferred, no second connection without TLS (as "tls
                    may" would make)

Ports: NSD 15500, unbound 15501 (the dane owner's range).
"""

import hashlib
import os
import shutil
import signal
import subprocess
import tempfile
import time

import fixture
from fixture import Daemon, unique_marker
from test_mta_relay import FakeSMTP, send_mail, message, wait_log
from test_mta_tls import make_cert, make_ca_and_cert

TIMEOUT = 60
WAIT = 15    # seconds for one expected log line

NSD = "/usr/sbin/nsd"
UNBOUND = "/usr/sbin/unbound"
KEYGEN = "/usr/bin/ldns-keygen"
SIGNZONE = "/usr/bin/ldns-signzone"
NSD_PORT = 15500
UNBOUND_PORT = 15501

SINKS = {"ok": "127.0.155.1", "bad": "127.0.155.2", "insecure":
         "127.0.155.3", "broken": "127.0.155.4", "ta": "127.0.155.5",
         "only": "127.0.155.6", "nostls": "127.0.155.7",
         "hsfail": "127.0.155.8", "tanext": "127.0.155.9",
         "tabad": "127.0.155.10"}

CONF = """\
spool "@TMP@/spool"
socket "@TMP@/smtpd.sock"
smtp workers 1
resolver 127.0.0.1 port %(dns)d
dnssec trust-anchor "%(anchor)s"
queue retry-remote 1h
listen on 127.0.0.1 port @PORT@
action "dane" relay tls dane
action "only" relay tls dane-only
match from local for domain "only.insecure.dane.test" action "only"
match from local for any action "dane"
"""

SIGNED = """\
$ORIGIN dane.test.
$TTL 300
@	SOA	ns.dane.test. hostmaster.dane.test. 1 3600 600 86400 300
@	NS	ns.dane.test.
ns	A	127.0.0.1
ok	MX	10 mx-ok.dane.test.
mx-ok	A	%(ok)s
_25._tcp.mx-ok	TLSA	3 1 1 %(ok_spki)s
bad	MX	10 mx-bad.dane.test.
mx-bad	A	%(bad)s
_25._tcp.mx-bad	TLSA	3 1 1 %(other_spki)s
broken	MX	10 mx-broken.dane.test.
mx-broken	A	%(broken)s
_25._tcp.mx-broken	TLSA	3 1 1 %(ok_spki)s
ta	MX	10 mx-ta.dane.test.
mx-ta	A	%(ta)s
_25._tcp.mx-ta	TLSA	2 0 1 %(ca_cert)s
nostls	MX	10 mx-nostls.dane.test.
mx-nostls	A	%(nostls)s
_25._tcp.mx-nostls	TLSA	3 1 1 %(ok_spki)s
hsfail	MX	10 mx-hsfail.dane.test.
mx-hsfail	A	%(hsfail)s
_25._tcp.mx-hsfail	TLSA	3 1 1 %(ok_spki)s
tanext	MX	10 mx-tanext.dane.test.
mx-tanext	A	%(tanext)s
_25._tcp.mx-tanext	TLSA	2 1 1 %(ca2_spki)s
tabad	MX	10 mx-tabad.dane.test.
mx-tabad	A	%(tabad)s
_25._tcp.mx-tabad	TLSA	2 1 1 %(ca3_spki)s
insecure	NS	ns.insecure.dane.test.
ns.insecure	A	127.0.0.1
"""

UNSIGNED = """\
$ORIGIN insecure.dane.test.
$TTL 300
@	SOA	ns.insecure.dane.test. hostmaster.dane.test. 1 3600 600 86400 300
@	NS	ns.insecure.dane.test.
ns	A	127.0.0.1
@	MX	10 mx.insecure.dane.test.
mx	A	%(insecure)s
_25._tcp.mx	TLSA	3 1 1 %(other_spki)s
only	MX	10 mx-only.insecure.dane.test.
mx-only	A	%(only)s
"""

NSD_CONF = """\
server:
	ip-address: 127.0.0.1
	port: %(port)d
	username: ""
	chroot: ""
	zonesdir: "%(dir)s"
	database: ""
	zonelistfile: "%(dir)s/zone.list"
	xfrdfile: "%(dir)s/xfrd.state"
	xfrdir: "%(dir)s"
	pidfile: "%(dir)s/nsd.pid"
	logfile: "%(dir)s/nsd.log"
	server-count: 1
	do-ip6: no
remote-control:
	control-enable: no
zone:
	name: "dane.test"
	zonefile: "%(dir)s/dane.test.signed"
zone:
	name: "insecure.dane.test"
	zonefile: "%(dir)s/insecure.dane.test"
"""

UNBOUND_CONF = """\
server:
	interface: 127.0.0.1
	port: %(port)d
	do-ip6: no
	do-not-query-localhost: no
	username: ""
	chroot: ""
	directory: "%(dir)s"
	pidfile: "%(dir)s/unbound.pid"
	use-syslog: no
	logfile: "%(dir)s/unbound.log"
	verbosity: 1
	val-log-level: 2
	num-threads: 1
	so-reuseport: no
	module-config: "validator iterator"
	trust-anchor-file: "%(dir)s/anchor.ds"
	local-zone: "test." nodefault
	access-control: 127.0.0.0/8 allow
	qname-minimisation: no
remote-control:
	control-enable: no
stub-zone:
	name: "dane.test"
	stub-addr: 127.0.0.1@%(nsd)d
stub-zone:
	name: "insecure.dane.test"
	stub-addr: 127.0.0.1@%(nsd)d
"""


def run(cmd, cwd):
    r = subprocess.run(cmd, cwd=cwd, stdout=subprocess.PIPE,
                       stderr=subprocess.STDOUT, timeout=30)
    if r.returncode != 0:
        raise fixture.FixtureError("%s: %s" % (" ".join(cmd), r.stdout))
    return r.stdout.decode()


def spki_sha256(certfile):
    """TLSA 3 1 1 data: SHA-256 of the certificate's SubjectPublicKeyInfo."""
    pub = subprocess.run(["openssl", "x509", "-in", certfile, "-noout",
                          "-pubkey"], stdout=subprocess.PIPE,
                         check=True).stdout
    der = subprocess.run(["openssl", "pkey", "-pubin", "-outform", "DER"],
                         input=pub, stdout=subprocess.PIPE,
                         check=True).stdout
    return hashlib.sha256(der).hexdigest()


def corrupt_rrsig(path, owner, covered):
    """Flip one byte of the signature of the RRSIG over owner/covered."""
    out, done = [], False
    with open(path) as f:
        for line in f:
            fields = line.split()
            if (not done and len(fields) > 5 and fields[0] == owner and
                    fields[3] == "RRSIG" and fields[4] == covered):
                sig = fields[-1]
                mid = len(sig) // 2
                flipped = "A" if sig[mid] != "A" else "B"
                fields[-1] = sig[:mid] + flipped + sig[mid + 1:]
                line = "\t".join(fields) + "\n"
                done = True
            out.append(line)
    if not done:
        raise fixture.FixtureError("no RRSIG %s over %s in %s"
                                   % (owner, covered, path))
    with open(path, "w") as f:
        f.writelines(out)


class Server:
    """A name server of ours (NSD, unbound) in the foreground, in its own
    session; stop() ends it and waits."""

    def __init__(self, argv, log):
        self.log = log
        self.proc = subprocess.Popen(argv, stdout=open(log, "ab"),
                                     stderr=subprocess.STDOUT,
                                     stdin=subprocess.DEVNULL,
                                     start_new_session=True)

    def alive(self):
        return self.proc.poll() is None

    def stop(self):
        if self.proc.poll() is None:
            self.proc.send_signal(signal.SIGTERM)
            try:
                self.proc.wait(5)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait(5)


def dns_ask(port, name, qtype, timeout=1.0):
    """(rcode, AD flag, answer records) from the server at port, or None."""
    import dnslib
    q = dnslib.DNSRecord.question(name, qtype)
    q.header.rd = 1
    q.add_ar(dnslib.EDNS0(flags="do", udp_len=4096))
    try:
        raw = q.send("127.0.0.1", port, timeout=timeout)
    except OSError:
        return None
    r = dnslib.DNSRecord.parse(raw)
    return r.header.rcode, bool(r.header.ad), r.rr


class DnssecWorld:
    """The signed zones, NSD serving them, unbound resolving them."""

    def __init__(self):
        for tool in (NSD, UNBOUND, KEYGEN, SIGNZONE):
            if not os.access(tool, os.X_OK):
                fixture.skip("%s not installed (mk/deps.sh: nsd, unbound, "
                             "ldnsutils)" % tool)
        try:
            import dnslib  # noqa: F401
        except ImportError:
            fixture.skip("python3-dnslib not installed")
        self.servers = []
        self.dir = tempfile.mkdtemp(prefix="dane.", dir=fixture.TEST_ROOT)
        os.chmod(self.dir, 0o755)
        try:
            self._make()
        except BaseException:
            self.stop()
            raise

    def path(self, name):
        return os.path.join(self.dir, name)

    def _make(self):
        d = self.dir
        self.sink_cert = make_cert()
        other_cert = make_ca_and_cert("DNS:other.test")[1]
        self.ca, ta_cert, ta_key = make_ca_and_cert("DNS:mx-ta.dane.test")
        # the DANE-TA(2) sink shows its chain up to the CA
        chain = self.path("ta-chain.pem")
        with open(chain, "w") as out:
            for f in (ta_cert, self.ca):
                with open(f) as inp:
                    out.write(inp.read())
        os.chmod(chain, 0o644)
        self.ta_cert = (chain, ta_key)
        self.tanext_cert, ca2 = self.chain_for("tanext", "DNS:tanext.dane.test")
        self.tabad_cert, ca3 = self.chain_for("tabad", "DNS:other.test")
        ca_der = subprocess.run(["openssl", "x509", "-in", self.ca,
                                 "-outform", "DER"], stdout=subprocess.PIPE,
                                check=True).stdout
        values = dict(SINKS)
        values["ok_spki"] = spki_sha256(self.sink_cert[0])
        values["other_spki"] = spki_sha256(other_cert)
        values["ca_cert"] = hashlib.sha256(ca_der).hexdigest()
        values["ca2_spki"] = spki_sha256(ca2)
        values["ca3_spki"] = spki_sha256(ca3)
        with open(self.path("dane.test"), "w") as f:
            f.write(SIGNED % values)
        with open(self.path("insecure.dane.test"), "w") as f:
            f.write(UNSIGNED % values)
        key = run([KEYGEN, "-a", "ECDSAP256SHA256", "-k", "dane.test"],
                  d).split()[0]
        run([SIGNZONE, "-o", "dane.test", "dane.test", key], d)
        corrupt_rrsig(self.path("dane.test.signed"),
                      "_25._tcp.mx-broken.dane.test.", "TLSA")
        shutil.copyfile(self.path(key + ".ds"), self.path("anchor.ds"))
        for f in os.listdir(d):
            if not f.endswith(".private"):
                os.chmod(self.path(f), 0o644)
        with open(self.path("nsd.conf"), "w") as f:
            f.write(NSD_CONF % {"port": NSD_PORT, "dir": d})
        with open(self.path("unbound.conf"), "w") as f:
            f.write(UNBOUND_CONF % {"port": UNBOUND_PORT, "dir": d,
                                    "nsd": NSD_PORT})
        self.nsd = Server([NSD, "-d", "-c", self.path("nsd.conf")],
                          self.path("nsd.out"))
        self.servers.append(self.nsd)
        self._wait(NSD_PORT, "dane.test", "SOA", self.nsd, ad=False)
        self.unbound = Server([UNBOUND, "-d", "-c",
                               self.path("unbound.conf")],
                              self.path("unbound.out"))
        self.servers.append(self.unbound)
        # the zone validates: unbound says so with the AD bit
        self._wait(UNBOUND_PORT, "ok.dane.test", "MX", self.unbound, ad=True)

    def chain_for(self, name, san):
        """((chain file, key), CA file): a new CA and a certificate for
        san it issued, the chain file holding both."""
        ca, cert, key = make_ca_and_cert(san)
        chain = self.path(name + "-chain.pem")
        with open(chain, "w") as out:
            for f in (cert, ca):
                with open(f) as inp:
                    out.write(inp.read())
        os.chmod(chain, 0o644)
        return (chain, key), ca

    def _wait(self, port, name, qtype, server, ad):
        deadline = time.monotonic() + 10
        last = None
        while time.monotonic() < deadline:
            if not server.alive():
                break
            last = dns_ask(port, name, qtype, 0.5)
            if last is not None and last[0] == 0 and last[2] and \
                    (last[1] or not ad):
                return
            time.sleep(0.05)
        logs = ""
        for f in ("nsd.out", "nsd.log", "unbound.out", "unbound.log"):
            if os.path.exists(self.path(f)):
                logs += "\n%s:\n%s" % (f, fixture.read_file(self.path(f))
                                       [-2000:])
        raise fixture.FixtureError("%s %s from port %d: %r%s"
                                   % (name, qtype, port, last, logs))

    def stop(self):
        for s in reversed(self.servers):
            s.stop()
        self.servers = []

    def __enter__(self):
        return self

    def __exit__(self, *exc):
        self.stop()
        return False


def sink(name, cert, **kw):
    try:
        return FakeSMTP(addr=(SINKS[name], 25), cert=cert, **kw)
    except OSError as e:
        raise fixture.FixtureError("cannot listen on %s:25: %s"
                                   % (SINKS[name], e))


def test_dane_outcomes():
    """Every case of the module docstring against one daemon."""
    with DnssecWorld() as w, \
            sink("ok", w.sink_cert) as ok, \
            sink("bad", w.sink_cert) as bad, \
            sink("insecure", w.sink_cert) as insecure, \
            sink("broken", w.sink_cert) as broken, \
            sink("ta", w.ta_cert) as ta, \
            sink("only", w.sink_cert) as only, \
            sink("nostls", None) as nostls, \
            sink("tanext", w.tanext_cert) as tanext, \
            sink("tabad", w.tabad_cert) as tabad, \
            sink("hsfail", None, ehlo=("PIPELINING", "STARTTLS"),
                 raw_replies={"STARTTLS": "220 2.0.0 go ahead"},
                 hangup_after=("STARTTLS",)) as hsfail, \
            Daemon(conf=CONF % {"dns": UNBOUND_PORT,
                                "anchor": w.path("anchor.ds")}) as d:
        # a bogus answer from the validating unbound is SERVFAIL
        r = dns_ask(UNBOUND_PORT, "_25._tcp.mx-broken.dane.test", "TLSA")
        assert r is not None and r[0] == 2, r
        markers = {}
        for name in ("ok", "bad", "insecure", "broken", "ta", "only",
                     "nostls", "hsfail", "tanext", "tabad"):
            domain = ("insecure.dane.test" if name == "insecure" else
                      "only.insecure.dane.test" if name == "only" else
                      "%s.dane.test" % name)
            markers[name] = unique_marker("dane-" + name)
            send_mail(d.port, ["u@%s" % domain], message(markers[name]))

        def data_of(srv):
            return b"".join(t["data"] for t in srv.transactions())

        # matching DANE-EE: sent over TLS, verified by the TLSA record
        wait_log(d, r"to=<u@ok\.dane\.test>, relay=mx-ok\.dane\.test"
                 r"\[127\.0\.155\.1\]:25.*status=sent", timeout=WAIT)
        wait_log(d, r"mx-ok\.dane\.test\[127\.0\.155\.1\]:25: "
                 r"TLS=verified-dane")
        assert markers["ok"].encode() in data_of(ok)
        assert all(s["tls"] for s in ok.sessions), ok.sessions

        # DANE-TA with a test CA and the MX name in the certificate
        wait_log(d, r"to=<u@ta\.dane\.test>.*status=sent", timeout=WAIT)
        wait_log(d, r"mx-ta\.dane\.test\[127\.0\.155\.5\]:25: "
                 r"TLS=verified-dane")
        assert markers["ta"].encode() in data_of(ta)

        # DANE-TA: the next-hop domain is a name the certificate may
        # carry; a name that is neither is refused
        wait_log(d, r"to=<u@tanext\.dane\.test>.*status=sent",
                 timeout=WAIT)
        wait_log(d, r"mx-tanext\.dane\.test\[127\.0\.155\.9\]:25: "
                 r"TLS=verified-dane")
        assert markers["tanext"].encode() in data_of(tanext)
        wait_log(d, r"to=<u@tabad\.dane\.test>.*dsn=4\.7\.5, "
                 r"status=deferred.*TLSA", timeout=WAIT)
        assert tabad.transactions() == []

        # a TLSA record under an insecure delegation is not DANE
        wait_log(d, r"to=<u@insecure\.dane\.test>.*status=sent",
                 timeout=WAIT)
        wait_log(d, r"mx\.insecure\.dane\.test\[127\.0\.155\.3\]:25: "
                 r"TLS=anonymous")
        assert markers["insecure"].encode() in data_of(insecure)

        # mismatching record: the handshake happens, no mail goes out
        wait_log(d, r"to=<u@bad\.dane\.test>.*dsn=4\.7\.5, "
                 r"status=deferred.*TLSA", timeout=WAIT)
        assert bad.transactions() == []
        assert bad.sessions and all(
            "STARTTLS" in s["commands"] and
            not [c for c in s["commands"] if c.startswith("MAIL")]
            for s in bad.sessions), bad.sessions

        # bogus TLSA: the host is never contacted
        wait_log(d, r"to=<u@broken\.dane\.test>.*dsn=4\.7\.5, "
                 r"status=deferred.*DNSSEC", timeout=WAIT)
        assert broken.sessions == [] and broken.transactions() == []

        # dane-only without secure TLSA records: deferred
        wait_log(d, r"to=<u@only\.insecure\.dane\.test>.*dsn=4\.7\.5, "
                 r"status=deferred.*dane-only", timeout=WAIT)
        assert only.sessions == []

        # TLSA records and no STARTTLS: no plain text
        wait_log(d, r"to=<u@nostls\.dane\.test>.*dsn=4\.7\.4, "
                 r"status=deferred.*TLS is required", timeout=WAIT)
        assert nostls.transactions() == []
        assert [not [c for c in s["commands"] if c.startswith("MAIL")]
                for s in nostls.sessions] == [True], nostls.sessions

        # TLSA records and a failed handshake: no retry without TLS
        wait_log(d, r"to=<u@hsfail\.dane\.test>.*status=deferred",
                 timeout=WAIT)
        assert [s["commands"][-1] for s in hsfail.sessions] == \
            ["STARTTLS"], hsfail.sessions
        assert "retrying without TLS" not in d.log()

        # and nothing of theirs was ever sent, to anyone
        for name in ("bad", "broken", "only", "nostls", "hsfail", "tabad"):
            assert not [ln for ln in d.log().splitlines()
                        if "status=sent" in ln and
                        markers[name] in ln], name
            for srv in (ok, bad, insecure, broken, ta, only, nostls,
                        hsfail, tanext, tabad):
                assert markers[name].encode() not in data_of(srv), name


def test_trust_anchor_config_errors():
    """"dnssec trust-anchor": a missing file or a relative path is an
    error on its line (smtpd -n), a readable file is fine."""
    d = tempfile.mkdtemp(prefix="danecf.", dir=fixture.TEST_ROOT)
    try:
        anchor = os.path.join(d, "anchor.ds")
        with open(anchor, "w") as f:
            f.write("dane.test.\tIN\tDS\t4550 13 2 %s\n" % ("ab" * 32))
        cases = [('dnssec trust-anchor "%s"\n' % anchor, 0, None),
                 ('\ndnssec trust-anchor "%s/none"\n' % d, 1,
                  ":2: dnssec trust-anchor %s/none: No such file" % d),
                 ('dnssec trust-anchor "anchor.ds"\n', 1,
                  ":1: dnssec trust-anchor must be an absolute path"),
                 ('dnssec "%s"\n' % anchor, 1,
                  ':1: expected "trust-anchor" after dnssec')]
        for i, (text, rc, msg) in enumerate(cases):
            path = os.path.join(d, "smtpd%d.conf" % i)
            with open(path, "w") as f:
                f.write(text + 'spool "%s/spool"\n' % d)
            r = fixture.run_smtpd(["-n", "-f", path])
            assert (r.returncode != 0) == bool(rc), (text, r.output)
            if msg:
                assert path + msg in r.output, (msg, r.output)
    finally:
        shutil.rmtree(d, ignore_errors=True)
