"""
test_mta_tls_policy.py -- the TLS policy table ("mta tls-policy <table>",
issue 20), the verify and secure levels against a CA made at test time
("mta ca-file"), and client certificates for a relay that demands one.

One daemon for the module (one test): dnsmasq (on a free loopback port) answers for
.test, the MX hosts are FakeSMTP sinks on port 25 of 127.0.0.141-143
(nothing else uses them), the client-certificate relay a sink on
127.0.0.1:15541 (this module's range is 15540-15559).  The mail for every
case goes in first and the outcomes are awaited after, so the cases
overlap in time; `queue retry-remote` is long: a deferral is seen once.
At the end, reloads: a bad entry is refused, a good one applies.

    verify.test   verify              MX mx.hosting.test, cert for it
    wrong.test    verify              MX mx.wrong.test, cert for other.test
    secure.test   secure              MX mx.hosting.test: not the domain
    matched.test  secure match=mx.hosting.test         same MX
    .parent.test  secure              a.parent.test: MX mx.a.parent.test
    none.test     none                the sink offers STARTTLS: not used
"""

import os
import re
import signal
import subprocess
import tempfile
import time

import fixture
from fixture import Daemon, unique_marker
from test_mta_relay import FakeSMTP, send_mail, message, wait_log

DNSMASQ = "/usr/sbin/dnsmasq"
TIMEOUT = 60	# the runner's bound for each test
WAIT = 15	# for one outcome
CC_PORT = 15541

POLICY = """\
# the TLS policy table of test_mta_tls_policy.py
verify.test	verify
wrong.test	verify
secure.test	secure
matched.test	secure match=mx.hosting.test
.parent.test	secure
none.test	none
"""

CONF = """\
spool "@TMP@/spool"
socket "@TMP@/smtpd.sock"
smtp workers 1
queue retry-remote 10m
resolver 127.0.0.1 port %(dns)d
pki client cert "%(ccert)s"
pki client key "%(ckey)s"
table policy file:%(policy)s
mta tls-policy <policy>
mta ca-file "%(ca)s"
listen on 127.0.0.1 port @PORT@
action "mx" relay
action "cc" relay host "smtp://127.0.0.1:%(cc)d" tls pki client
action "nocc" relay host "smtp://127.0.0.1:%(cc)d" tls
match from local for domain "cc.test" action "cc"
match from local for domain "nocc.test" action "nocc"
match from local for any action "mx"
"""


# ---- a CA made at test time (also used by test_smtp_sni.py) ----

def _run(cmd):
    r = subprocess.run(cmd, stdout=subprocess.PIPE, stderr=subprocess.STDOUT)
    if r.returncode != 0:
        raise fixture.FixtureError("%s: %s" % (" ".join(cmd[:3]),
                                               r.stdout.decode()))


class TestCA:
    """A CA (EC P-256: quick to make) in its own directory; leaf() makes
    a certificate it signs."""

    def __init__(self):
        os.makedirs(fixture.TEST_ROOT, mode=0o755, exist_ok=True)
        self.dir = tempfile.mkdtemp(prefix="ca.", dir=fixture.TEST_ROOT)
        os.chmod(self.dir, 0o755)
        self.cert = self.path("ca.pem")
        self.key = self.path("ca.key")
        _run(["openssl", "req", "-x509", "-newkey", "ec", "-pkeyopt",
              "ec_paramgen_curve:prime256v1", "-nodes", "-keyout",
              self.key, "-out", self.cert, "-days", "2", "-subj",
              "/CN=Posthaste test CA", "-addext",
              "basicConstraints=critical,CA:TRUE", "-addext",
              "keyUsage=critical,keyCertSign,cRLSign"])
        os.chmod(self.cert, 0o644)
        self.n = 0

    def path(self, name):
        return os.path.join(self.dir, name)

    def leaf(self, cn, names, usage="serverAuth"):
        """(certfile, keyfile) for subjectAltName `names' (a list of DNS
        names)."""
        self.n += 1
        base = self.path("leaf%d" % self.n)
        with open(base + ".ext", "w") as f:
            f.write("subjectAltName=%s\nbasicConstraints=CA:FALSE\n"
                    "extendedKeyUsage=%s\n"
                    % (",".join("DNS:" + n for n in names), usage))
        _run(["openssl", "req", "-newkey", "ec", "-pkeyopt",
              "ec_paramgen_curve:prime256v1", "-nodes", "-keyout",
              base + ".key", "-out", base + ".csr", "-subj", "/CN=" + cn])
        _run(["openssl", "x509", "-req", "-in", base + ".csr", "-CA",
              self.cert, "-CAkey", self.key, "-CAcreateserial", "-out",
              base + ".pem", "-days", "2", "-extfile", base + ".ext"])
        os.chmod(base + ".pem", 0o644)
        os.chmod(base + ".key", 0o600)
        return base + ".pem", base + ".key"


class Dnsmasq:
    def __init__(self, records):
        if not os.access(DNSMASQ, os.X_OK):
            fixture.skip("dnsmasq not installed (mk/deps.sh: dnsmasq-base)")
        for _ in range(5):
            self.port = fixture.free_port()
            self.proc = subprocess.Popen(
                [DNSMASQ, "--keep-in-foreground", "--no-daemon",
                 "--conf-file=/dev/null", "--no-resolv", "--no-hosts",
                 "--no-poll", "--bind-interfaces",
                 "--listen-address=127.0.0.1", "--user=nobody",
                 "--group=nogroup", "--pid-file=",
                 "--log-facility=/dev/null", "--port=%d" % self.port,
                 "--local=/test/"] + records,
                stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
                start_new_session=True)
            deadline = time.monotonic() + 3
            while time.monotonic() < deadline and self.proc.poll() is None:
                if self._answers():
                    return
                time.sleep(0.05)
            self.stop()
        raise fixture.FixtureError("dnsmasq did not start")

    def _answers(self):
        with open("/proc/net/udp") as f:
            return (":%04X " % self.port) in f.read()

    def stop(self):
        if self.proc.poll() is None:
            self.proc.send_signal(signal.SIGTERM)
            try:
                self.proc.wait(5)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait(5)


DNS = ["--mx-host=%s,mx.hosting.test,10" % d
       for d in ("verify.test", "secure.test", "matched.test", "none.test")]
DNS += ["--mx-host=wrong.test,mx.wrong.test,10",
        "--mx-host=a.parent.test,mx.a.parent.test,10",
        "--host-record=mx.wrong.test,127.0.0.141",
        "--host-record=mx.hosting.test,127.0.0.142",
        "--host-record=mx.a.parent.test,127.0.0.143"]

def test_policy_levels_and_client_certificates():
    """One daemon for every case (the suite's time): the mail for all of
    them goes in first, then each outcome is checked in turn."""
    stops = []
    try:
        run_cases(stops)
    finally:
        for stop in reversed(stops):
            try:
                stop()
            except Exception:
                pass


def run_cases(stops):
    ca = TestCA()
    dns = Dnsmasq(DNS)
    stops.append(dns.stop)
    sinks = {
        "wrong": FakeSMTP(cert=ca.leaf("mx.wrong.test", ["other.test"]),
                          addr=("127.0.0.141", 25)),
        "hosting": FakeSMTP(cert=ca.leaf("mx.hosting.test",
                                         ["mx.hosting.test"]),
                            addr=("127.0.0.142", 25)),
        "parent": FakeSMTP(cert=ca.leaf("mx.a.parent.test",
                                        ["mx.a.parent.test"]),
                           addr=("127.0.0.143", 25)),
        "cc": FakeSMTP(cert=ca.leaf("cc", ["localhost"]),
                       addr=("127.0.0.1", CC_PORT), client_ca=ca.cert),
    }
    stops.extend(s.stop for s in sinks.values())
    ccert, ckey = ca.leaf("client.test", ["client.test"], "clientAuth")
    policy = ca.path("policy")
    with open(policy, "w") as f:
        f.write(POLICY)
    os.chmod(policy, 0o644)
    d = Daemon(conf=CONF % {"dns": dns.port, "ccert": ccert, "ckey": ckey,
                            "policy": policy, "ca": ca.cert, "cc": CC_PORT})
    d.start()
    markers = {}
    for rcpt in ("t@verify.test", "t@wrong.test", "t@secure.test",
                 "t@matched.test", "t@a.parent.test", "t@none.test",
                 "t@cc.test", "t@nocc.test"):
        markers[rcpt] = unique_marker(rcpt.split("@")[1])
        send_mail(d.port, [rcpt], message(markers[rcpt]))
    for check in (check_verify_with_test_ca, check_verify_wrong_name_defers,
                  check_secure_does_not_trust_the_mx_name,
                  check_secure_with_match,
                  check_secure_dot_nexthop_and_parent_entry,
                  check_none_wins_over_the_action, check_client_certificate):
        check(d, sinks, markers)
    check_reload(d, sinks, markers, policy)


def delivered(sink, marker):
    return [t for t in sink.transactions() if marker.encode() in t["data"]]


def sent(d, rcpt):
    return wait_log(d, r"to=<%s>.*status=sent" % re.escape(rcpt),
                    timeout=WAIT)


def deferred(d, rcpt, why, dsn=r"4\.\d\.\d"):
    return wait_log(d, r"to=<%s>.*dsn=%s, status=deferred.*%s"
                    % (re.escape(rcpt), dsn, why), timeout=WAIT)


def check_verify_with_test_ca(d, sinks, m):
    """verify: the chain to the CA of "mta ca-file" and the MX name;
    delivered, logged TLS=verified."""
    sent(d, "t@verify.test")
    assert delivered(sinks["hosting"], m["t@verify.test"])
    wait_log(d, r"mta session \w+: mx\.hosting\.test\[127\.0\.0\.142\]"
             r":25: TLS=verified, TLSv1\.[23]", timeout=WAIT)


def check_verify_wrong_name_defers(d, sinks, m):
    deferred(d, "t@wrong.test", "hostname mismatch", r"4\.7\.5")
    assert sinks["wrong"].transactions() == []


def check_secure_does_not_trust_the_mx_name(d, sinks, m):
    """secure: the next hop (secure.test, .secure.test), not the MX name
    DNS gave: the same certificate verify accepts is refused."""
    deferred(d, "t@secure.test", "hostname mismatch", r"4\.7\.5")
    assert not delivered(sinks["hosting"], m["t@secure.test"])


def check_secure_with_match(d, sinks, m):
    sent(d, "t@matched.test")
    assert delivered(sinks["hosting"], m["t@matched.test"])


def check_secure_dot_nexthop_and_parent_entry(d, sinks, m):
    """a.parent.test has no entry of its own: ".parent.test" applies, and
    its MX mx.a.parent.test is below the next hop (dot-nexthop)."""
    sent(d, "t@a.parent.test")
    assert delivered(sinks["parent"], m["t@a.parent.test"])


def check_none_wins_over_the_action(d, sinks, m):
    """The table's "none" wins: the sink offers STARTTLS, it is not
    used."""
    sent(d, "t@none.test")
    hosting = sinks["hosting"]
    with hosting.lock:
        sess = [s for s in hosting.sessions
                if any(m["t@none.test"].encode() in t["data"]
                       for t in s["txns"])]
    assert sess and not sess[0]["tls"], sess
    assert "STARTTLS" not in sess[0]["commands"], sess[0]["commands"]


def check_client_certificate(d, sinks, m):
    """A relay that demands a client certificate (CERT_REQUIRED with the
    test CA): with "pki client" delivered, the key signing in the keys
    process; without it deferred."""
    sent(d, "t@cc.test")
    assert delivered(sinks["cc"], m["t@cc.test"])
    assert sinks["cc"].client_certs, "no client certificate seen"
    wait_log(d, r"to=<t@nocc\.test>.*status=deferred", timeout=WAIT)
    assert not delivered(sinks["cc"], m["t@nocc.test"])


def check_reload(d, sinks, m, policy):
    """A reload with a bad entry keeps the running configuration (and
    says where the entry is); one with a good entry gives the new mta
    the new policy: wrong.test, retried, now goes out."""
    with open(policy, "w") as f:
        f.write(POLICY.replace("wrong.test\tverify\n",
                               "wrong.test\tverify match=\n"))
    d.send_signal(signal.SIGHUP)
    wait_log(d, r"%s:3: TLS policy table policy: \"wrong\.test\": "
             r"match= needs a name" % re.escape(policy), timeout=WAIT)
    wait_log(d, r"reload failed, keeping the running configuration: bad "
             r"TLS policy table", timeout=WAIT)
    with open(policy, "w") as f:
        f.write(POLICY.replace("wrong.test\tverify\n",
                               "wrong.test\tverify match=other.test\n"))
    d.send_signal(signal.SIGHUP)
    wait_log(d, r"configuration reloaded", timeout=WAIT)
    subprocess.run([fixture.binary("smtpctl"), "-s", d.socket_path,
                    "schedule", "all"], check=True,
                   stdout=subprocess.DEVNULL)
    sent(d, "t@wrong.test")
    assert delivered(sinks["wrong"], m["t@wrong.test"])


def test_bad_policy_is_a_config_error():
    """smtpd -n names the table file and line of a bad value; the daemon
    does not start with it."""
    os.makedirs(fixture.TEST_ROOT, mode=0o755, exist_ok=True)
    tmp = tempfile.mkdtemp(prefix="policy.", dir=fixture.TEST_ROOT)
    bad = os.path.join(tmp, "badpolicy")
    with open(bad, "w") as f:
        f.write("# comment\nok.test verify\nbad.test verify match=\n"
                "worse.test encrypt match=x.test\nworst.test maybe\n")
    conf = os.path.join(tmp, "bad.conf")
    with open(conf, "w") as f:
        f.write('table p file:%s\nmta tls-policy <p>\n'
                'listen on 127.0.0.1 port 15542\n' % bad)
    r = subprocess.run([fixture.binary("smtpd"), "-n", "-f", conf],
                       stdout=subprocess.PIPE, stderr=subprocess.STDOUT)
    out = r.stdout.decode()
    assert r.returncode == 1, out
    assert "%s:3: TLS policy table p: \"bad.test\": match= needs a name" \
        % bad in out, out
    assert "%s:4:" % bad in out and "only applies to verify and secure" \
        in out, out
    assert "%s:5:" % bad in out and "unknown TLS level" in out, out
