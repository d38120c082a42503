"""
The openspf RFC 7208 test suite (regress/spf/rfc7208-tests.yml, release
2014.04, its licence beside it) through `smtpctl check spf', the real
evaluation path: lookup/spf.c on libunbound, here forwarding to
dnsserver.py, which serves each scenario's zonedata on 127.0.0.1:15360.
Every case must give the suite's result (either one where it allows
two) and, where it names one, the explanation ("DEFAULT": ours, the
default one).  TIMEOUT entries are never answered; a 2 s per-query
timeout (-t 2) keeps those cases short.

Needs python3-yaml and python3-dnslib (mk/deps.sh); skipped without.
"""

import os
import subprocess
import tempfile

import dnsserver
from fixture import REPO, binary, skip

TIMEOUT = 900
SUITE = os.path.join(REPO, "regress", "spf", "rfc7208-tests.yml")
PORT = 15360
# pyspf, the suite's reference, writes the IPv6 nibbles of %{i} in upper
# case; RFC 7208 7.4's own example (and we) in lower case.  DNS names are
# case-insensitive, so the cases whose explanation shows %{i} of an IPv6
# client are compared without case; every other one exactly.
EXPLANATION_ANY_CASE = {"v-macro-ip6"}


def load_suite():
    try:
        import yaml
    except ImportError:
        skip("python3-yaml is not installed (mk/deps.sh installs it)")
    with open(SUITE, encoding="utf-8") as f:
        return [d for d in yaml.safe_load_all(f) if d]


def check(conf, case):
    sender = case.get("mailfrom", "")
    r = subprocess.run([binary("smtpctl"), "-f", conf, "check", "spf",
                        "-t", "2", str(case["host"]), str(case["helo"]),
                        sender],
                       stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                       timeout=60)
    out = r.stdout.decode("utf-8", "replace")
    assert r.returncode == 0, "exit %d: %s" % (r.returncode, r.stderr)
    first = out.split("\n", 1)[0]
    result, _, explanation = first.partition(" ")
    return result, explanation, out


def run_suite(only=None):
    """Every case of every scenario; returns (passed, failures)."""
    dnsserver.require()
    scenarios = load_suite()
    tmp = tempfile.mkdtemp(prefix="spf-suite-")
    conf = os.path.join(tmp, "smtpd.conf")
    with open(conf, "w") as f:
        f.write("resolver 127.0.0.1 port %d\nhostname "
                "receiver.example.test\n" % PORT)
    os.chmod(tmp, 0o755)
    os.chmod(conf, 0o644)
    passed = 0
    failures = []
    with dnsserver.DNSServer(port=PORT) as dns:
        for sc in scenarios:
            dns.set_zone(dnsserver.zone_from_openspf(sc.get("zonedata")))
            for name, case in sc["tests"].items():
                if only and name not in only:
                    continue
                want = case["result"]
                want = want if isinstance(want, list) else [want]
                result, explanation, out = check(conf, case)
                bad = None
                if result not in want:
                    bad = "%s, want %s" % (result, "/".join(want))
                elif "explanation" in case and result == "fail":
                    exp = str(case["explanation"])
                    same = explanation == exp or (
                        name in EXPLANATION_ANY_CASE and
                        explanation.lower() == exp.lower())
                    if exp != "DEFAULT" and not same:
                        bad = "explanation %r, want %r" % (explanation,
                                                           exp)
                if bad:
                    failures.append("%s: %s (%s)" % (name, bad,
                                                     out.strip()))
                else:
                    passed += 1
    os.unlink(conf)
    os.rmdir(tmp)
    return passed, failures


def test_openspf_rfc7208_suite():
    passed, failures = run_suite()
    print("spf suite: %d cases passed, %d failed" % (passed, len(failures)))
    assert not failures, "%d of %d cases failed:\n%s" % (
        len(failures), passed + len(failures), "\n".join(failures))


def test_spf_large_record_over_tcp_and_helo_identity():
    """A record too big for UDP (the server sets TC, the resolver asks
    again over TCP), and -H: the HELO identity alone, whatever the
    sender."""
    dnsserver.require()
    rec = "v=spf1 " + " ".join("x%d=%s" % (i, "a" * 200)
                               for i in range(15)) + " ip4:192.0.2.1 -all"
    zone = {"big.example.com": [("TXT", rec)],
            "helo.example.com": [("TXT", "v=spf1 a -all"),
                                 ("A", "192.0.2.7")]}
    tmp = tempfile.mkdtemp(prefix="spf-tcp-")
    conf = os.path.join(tmp, "smtpd.conf")
    with open(conf, "w") as f:
        f.write("resolver 127.0.0.1 port %d\n" % (PORT + 1))
    os.chmod(tmp, 0o755)
    os.chmod(conf, 0o644)

    def run(*args):
        r = subprocess.run([binary("smtpctl"), "-f", conf, "check", "spf",
                            "-t", "2"] + list(args),
                           stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                           timeout=60, universal_newlines=True)
        assert r.returncode == 0, r.stderr
        return r.stdout.split(" ", 1)[0]
    try:
        with dnsserver.DNSServer(zone, port=PORT + 1) as dns:
            assert run("192.0.2.1", "h.example", "a@big.example.com") == \
                "pass"
            assert dns.queries.count(("big.example.com", "TXT")) == 2, \
                dns.queries
            assert run("192.0.2.2", "h.example", "a@big.example.com") == \
                "fail"
            assert run("-H", "192.0.2.7", "helo.example.com",
                       "a@big.example.com") == "pass"
            assert run("-H", "192.0.2.8", "helo.example.com", "") == "fail"
            assert run("192.0.2.7", "helo.example.com", "<>") == "pass"
    finally:
        os.unlink(conf)
        os.rmdir(tmp)


if __name__ == "__main__":
    # by hand: BINDIR=obj/bin /usr/bin/python3 test_spf_suite.py [case...]
    import sys
    import fixture
    fixture.BINDIR = os.path.abspath(os.environ.get("BINDIR", "obj/bin"))
    p, fl = run_suite(set(sys.argv[1:]) or None)
    print("\n".join(fl))
    print("%d passed, %d failed" % (p, len(fl)))
