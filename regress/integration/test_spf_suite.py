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

import concurrent.futures
import os
import subprocess
import tempfile

import dnsserver
from fixture import REPO, binary, skip

TIMEOUT = 900
DIFF_PARALLEL = 6       # cases evaluated at once
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
            todo = [(name, case) for name, case in sc["tests"].items()
                    if not only or name in only]
            # a scenario's cases share its zone: a few at a time
            with concurrent.futures.ThreadPoolExecutor(DIFF_PARALLEL) as ex:
                outs = list(ex.map(lambda c: check(conf, c[1]), todo))
            for (name, case), (result, explanation, out) in zip(todo, outs):
                want = case["result"]
                want = want if isinstance(want, list) else [want]
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
                                 ("A", "192.0.2.7")],
            "slowexp.example.com": [("TXT", "v=spf1 -all "
                                     "exp=t.example.com")],
            "t.example.com": ["TIMEOUT"]}
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
            # an explanation that never comes: still fail (RFC 7208 6.2)
            assert run("192.0.2.7", "h.example", "a@slowexp.example.com") \
                == "fail"
    finally:
        os.unlink(conf)
        os.rmdir(tmp)


# -- differential test against pyspf (python3-spf), an independent
# implementation, on generated records

DIFF_CASES = 300
DIFF_ZONE = {
    "h1.d.example": [("A", "192.0.2.10"), ("AAAA", "2001:db8::10")],
    "h2.d.example": [("A", "198.51.100.7")],
    "d.example": [("A", "192.0.2.20"), ("MX", (10, "mx1.d.example")),
                  ("MX", (20, "mx2.d.example"))],
    "mx1.d.example": [("A", "192.0.2.30"), ("AAAA", "2001:db8::30")],
    "mx2.d.example": [("A", "203.0.113.40")],
    "m.d.example": [("MX", (5, "h1.d.example"))],
    "i1.d.example": [("TXT", "v=spf1 ip4:203.0.113.0/24 -all")],
    "i2.d.example": [("TXT", "v=spf1 a:h2.d.example ~all")],
    "i3.d.example": [("TXT", "v=spf1 include:i1.d.example ?all")],
    "r.d.example": [("TXT", "v=spf1 mx:d.example -all exp=e.d.example")],
    "e.d.example": [("TXT", "%{i} may not send for %{d} (%{l})")],
    "10.2.0.192.bl.d.example": [("A", "127.0.0.2")],
    "alice.u.d.example": [("A", "127.0.0.2")],
    "10.2.0.192.in-addr.arpa": [("PTR", "h1.d.example")],
    "200.2.0.192.in-addr.arpa": [("PTR", "forged.d.example")],
    "0.1.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.8.b.d.0.1.0.0.2"
    ".ip6.arpa": [("PTR", "h1.d.example")],
    "t.d.example": "TIMEOUT",
}
DIFF_TERMS = [
    "ip4:192.0.2.0/24", "ip4:198.51.100.7", "ip4:192.0.2.128/25",
    "ip6:2001:db8::/32", "ip6:2001:db8::10/128", "a", "a:h1.d.example",
    "a/24", "a:h2.d.example//64", "a:h1.d.example/28//120", "mx",
    "mx:m.d.example/30", "mx/16", "include:i1.d.example",
    "include:i2.d.example", "include:i3.d.example",
    "exists:%{i}.bl.d.example", "exists:%{l}.u.d.example", "ptr",
    "ptr:d.example", "a:nx1.d.example", "mx:nx2.d.example",
    "exists:nx3.d.example", "a:t.d.example", "include:nx4.d.example",
    "all", "exists:%{ir}.%{v}.x.d.example", "a:%{d2}", "ip4:1.2.3.4/33",
    "foo%d=bar", "a:%{z}.d.example",
]
DIFF_IPS = ["192.0.2.10", "192.0.2.200", "198.51.100.7", "203.0.113.5",
            "203.0.113.40", "192.0.2.30", "2001:db8::10", "2001:db8::99",
            "192.0.2.20"]


def diff_records(rng):
    """(sender domain, its zone entries, client ip, sender) per case."""
    for n in range(DIFF_CASES):
        terms = []
        for _ in range(rng.randint(1, 6)):
            t = rng.choice(DIFF_TERMS)
            # RFC 7208 6: an unknown modifier is ignored "no matter ...
            # how often" it appears; pyspf 2.0.14 makes a repeated one a
            # permerror, so the generator never repeats one
            t = t.replace("%d", str(len(terms)))
            if "=" not in t:
                t = rng.choice(["", "", "+", "-", "~", "?"]) + t
            terms.append(t)
        if rng.random() < 0.3:
            terms.append(rng.choice(["redirect=r.d.example",
                                     "redirect=i2.d.example",
                                     "redirect=nx5.d.example"]))
        if rng.random() < 0.4:
            terms.append("exp=e.d.example")
        name = "c%d.d.example" % n
        yield name, "v=spf1 " + " ".join(terms), rng.choice(DIFF_IPS), \
            rng.choice(["alice", "bob", ""])


def pyspf_check(spf, ip, sender, helo):
    q = spf.query(i=ip, s=sender, h=helo, timeout=2)
    result, _, explanation = q.check()
    return result, explanation


def test_spf_differential_pyspf():
    """Generated records, each evaluated by smtpctl check spf and by
    pyspf (Debian's python3-spf, its own parser and evaluator on
    dnspython) against the same zone: same result, and for a fail with
    exp= the same explanation."""
    import random
    dnsserver.require()
    try:
        import dns.resolver
        import spf
    except ImportError:
        skip("python3-spf is not installed (mk/deps.sh installs it)")
    port = PORT + 2
    res = dns.resolver.Resolver(configure=False)
    res.nameservers = ["127.0.0.1"]
    res.port = port
    res.lifetime = 5
    dns.resolver.default_resolver = res
    tmp = tempfile.mkdtemp(prefix="spf-diff-")
    conf = os.path.join(tmp, "smtpd.conf")
    with open(conf, "w") as f:
        f.write("resolver 127.0.0.1 port %d\nhostname "
                "receiver.example.test\n" % port)
    os.chmod(tmp, 0o755)
    os.chmod(conf, 0o644)
    zone = {k: ([v] if v == "TIMEOUT" else v) for k, v in DIFF_ZONE.items()}
    cases = list(diff_records(random.Random(7208)))
    for name, rec, _, _ in cases:
        zone[name] = [("TXT", rec)]
    failures = []
    try:
        def both(c):
            name, rec, ip, local = c
            sender = "%s@%s" % (local, name) if local else "@" + name
            case = {"host": ip, "helo": "mail.d.example",
                    "mailfrom": sender}
            ours, our_exp, _ = check(conf, case)
            theirs, their_exp = pyspf_check(spf, ip, sender,
                                            "mail.d.example")
            return sender, rec, ip, ours, our_exp, theirs, their_exp

        # the cases wait on DNS (some on never-answered TIMEOUT names) far
        # more than they compute: a few at a time, in the cases' order
        with dnsserver.DNSServer(zone, port=port), \
                concurrent.futures.ThreadPoolExecutor(DIFF_PARALLEL) as ex:
            for sender, rec, ip, ours, our_exp, theirs, their_exp in \
                    ex.map(both, cases):
                if ours != theirs:
                    failures.append("%s from %s (%s): ours %s, pyspf %s"
                                    % (sender, ip, rec, ours, theirs))
                elif ours == "fail" and "exp=" in rec and \
                        our_exp != their_exp and not (
                            ":" in ip and our_exp.lower() ==
                            their_exp.lower()):
                    # (pyspf writes %{i} of IPv6 in upper case, RFC
                    # 7208 7.4 and we in lower case: see above)
                    failures.append("%s from %s (%s): explanation %r, "
                                    "pyspf %r" % (sender, ip, rec,
                                                  our_exp, their_exp))
    finally:
        os.unlink(conf)
        os.rmdir(tmp)
    print("spf vs pyspf: %d of %d generated cases agree" %
          (len(cases) - len(failures), len(cases)))
    assert not failures, "%d cases differ:\n%s" % (len(failures),
                                                    "\n".join(failures))


if __name__ == "__main__":
    # by hand: BINDIR=obj/bin /usr/bin/python3 test_spf_suite.py [case...]
    import sys
    import fixture
    fixture.BINDIR = os.path.abspath(os.environ.get("BINDIR", "obj/bin"))
    p, fl = run_suite(set(sys.argv[1:]) or None)
    print("\n".join(fl))
    print("%d passed, %d failed" % (p, len(fl)))
