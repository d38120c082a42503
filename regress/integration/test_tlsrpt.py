"""
SMTP TLS Reporting (RFC 8460) through the real daemon: the queue's
reporting side, from its spool journal to the mailed report.

"tlsrpt reports from" on; a day of mixed TLS outcomes toward two policy
domains is put in the queue's journal (tlsrpt/records, the lines
common/tlsrpt_rec.c writes: what lookup hands the queue for each outcome
the mta saw under a DANE or MTA-STS policy), with a torn last line as a
crash leaves it.  `smtpctl tlsrpt report now' makes the queue sum them
and mail one report per domain to its rua (a local user here) through
the normal path.  Each message must be what RFC 8460 5.3 asks
(multipart/report; report-type="tlsrpt", the TLS-Report-Domain and
TLS-Report-Submitter headers, the Subject with the Report-ID, the
application/tlsrpt+gzip part named as 5.1 says), and its JSON (section
4) must hold the policies with their strings and MX hosts, the summed
counts, and the failures alike counted together.  A second run reports
on nothing; without "tlsrpt reports" smtpctl says the reports are off.

The journal is the queue's input, so everything after it is the
production path, with every kind of outcome in one report.  The whole
path -- real sessions under DANE, the mta noting each outcome, lookup
reading "_smtp._tls", the queue keeping and mailing -- is
test_tlsrpt_dane_end_to_end: it borrows test_mta_dane.py's DNSSEC world
(a zone signed at test time, NSD, a validating unbound; its TLS sinks),
with "_smtp._tls" records added and this module's ports and addresses;
test_tlsrpt_sts_end_to_end does the same under MTA-STS with
test_mta_sts.py's policy server, DNS and MX (a success, a certificate
mismatch, a policy fetch error).  Each is skipped where that module or
its tools are missing.  The module: about 10 s a build (the DNSSEC world
is most of it).

Checked to fail when equal failures are not counted together, when the
attachment's media type is application/gzip, and (end to end) when the
mta does not learn its own address (sending-mta-ip).
"""

import email
import email.policy
import gzip
import json
import os
import re
import subprocess
import time

import fixture
from fixture import (TEST_USER1, Daemon, binary, maildir_path, poll,
                     reset_maildir, unique_marker)

HOST = "mx.example.test"
RUA = "%s@example.test" % TEST_USER1

CONF = """\
hostname %(host)s
spool "@TMP@/spool"
socket "@TMP@/smtpd.sock"
tlsrpt reports from "tlsrpt@mx.example.test" org "Posthaste Test Org"
listen on 127.0.0.1 port @PORT@
action "local" maildir "~/Maildir"
match from any for domain "example.test" action "local"
"""

STS = ("version: STSv1\nmode: enforce\nmx: *.policy.test\n"
       "max_age: 86400")
TLSA = "3 1 1 " + "ab" * 32


def enc(s):
    """a string field of the journal line (common/tlsrpt_rec.h)"""
    if s == "":
        return "-"
    if s == "-":
        return "%2D"
    return "".join(c if "!" <= c <= "~" and c != "%" else
                   "%%%02X" % ord(c) for c in s)


def line(when, domain, ptype, result, mx="", sip="", rip="", reason="",
         policy="", rua=("mailto:%s" % RUA,)):
    return "t1 %d %s %d %d %s %s %s %s %s %d %s .\n" % (
        when, enc(domain), ptype, result, enc(mx), sip or "-", rip or "-",
        enc(reason), enc(policy), len(rua), " ".join(enc(u) for u in rua))


def day_lines(when):
    out = []
    # policy.test under MTA-STS: 3 sessions verified, 2 alike with an
    # expired certificate, 1 without STARTTLS
    for mx in ("mx1.policy.test", "mx1.policy.test", "mx2.policy.test"):
        out.append(line(when, "policy.test", 1, 0, mx, rip="192.0.2.1",
                        policy=STS))
    for _ in range(2):
        out.append(line(when, "policy.test", 1, 3, "mx1.policy.test",
                        rip="192.0.2.1", reason="certificate has expired",
                        policy=STS))
    out.append(line(when, "policy.test", 1, 1, "mx2.policy.test",
                    rip="2001:db8::2", policy=STS))
    # policy.test's backup under DANE: 1 verified, 1 tlsa-invalid
    out.append(line(when, "policy.test", 2, 0, "backup.policy.test",
                    rip="192.0.2.3", policy=TLSA))
    out.append(line(when, "policy.test", 2, 6, "backup.policy.test",
                    rip="192.0.2.3", policy=TLSA,
                    reason="no TLSA record matched"))
    # other.test: one success, its rua percent-encoded; and an https:
    # rua, logged and skipped
    out.append(line(when, "other.test", 1, 0, "mx.other.test",
                    rip="192.0.2.9", policy=STS.replace("policy", "other"),
                    rua=("https://r.other.test/v1",
                         "mailto:%s%%40example.test" % TEST_USER1)))
    return "".join(out)


def ctl(d, *args):
    p = subprocess.run([binary("smtpctl"), "-s", d.socket_path] +
                       list(args), stdin=subprocess.DEVNULL,
                       capture_output=True, timeout=20)
    return p.returncode, (p.stdout + p.stderr).decode()


def reports_for(domain):
    d = os.path.join(maildir_path(TEST_USER1), "new")
    out = []
    for n in sorted(os.listdir(d)) if os.path.isdir(d) else []:
        with open(os.path.join(d, n), "rb") as f:
            m = f.read()
        if b"Report Domain: " + domain.encode() + b" " in m:
            out.append(m)
    return out


def write_journal(d, text):
    path = os.path.join(d.spool, "tlsrpt", "records")
    st = os.stat(os.path.dirname(path))
    with open(path, "w") as f:
        f.write(text)
    os.chown(path, st.st_uid, st.st_gid)
    os.chmod(path, 0o600)


def test_tlsrpt_reports():
    reset_maildir(TEST_USER1)
    now = int(time.time())
    with Daemon(conf=CONF % {"host": HOST}) as d:
        write_journal(d, day_lines(now) + "t1 %d policy.te" % now)
        rc, out = ctl(d, "tlsrpt", "report", "now")
        assert rc == 0 and "for 2 domains" in out, (rc, out)
        got = poll(lambda: (len(reports_for("policy.test")) == 1 and
                            len(reports_for("other.test")) == 1) or None,
                   15)
        assert got, "reports not mailed; log tail:\n%s" % "\n".join(
            d.log().splitlines()[-30:])
        assert "not supported yet" in d.log()
        assert re.search(r"1 report rows unreadable", d.log())
        rep = check_mail(reports_for("policy.test")[0], "policy.test", now)
        check_policy_test(rep)
        rep = check_mail(reports_for("other.test")[0], "other.test", now)
        assert len(rep["policies"]) == 1
        assert rep["policies"][0]["summary"] == {
            "total-successful-session-count": 1,
            "total-failure-session-count": 0}
        assert "failure-details" not in rep["policies"][0]

        rc, out = ctl(d, "tlsrpt", "report", "now")
        assert rc == 0 and "for 0 domains" in out, (rc, out)
        assert not os.path.exists(os.path.join(d.spool, "tlsrpt",
                                               "records"))


def check_mail(raw, domain, now):
    msg = email.message_from_bytes(raw, policy=email.policy.default)
    assert msg["From"].addresses[0].addr_spec == "tlsrpt@mx.example.test"
    assert msg["To"].addresses[0].addr_spec == RUA
    subj = str(msg["Subject"])
    assert re.fullmatch(r"Report Domain: %s Submitter: mx\.example\.test "
                        r"Report-ID: <([0-9]+\.[0-9a-f]+)"
                        r"@mx\.example\.test>" % re.escape(domain),
                        subj), subj
    rid = re.search(r"<([^@]+)@", subj).group(1)
    assert msg["TLS-Report-Domain"] == domain
    assert msg["TLS-Report-Submitter"] == "mx.example.test"
    assert msg.get_content_type() == "multipart/report"
    assert msg.get_param("report-type") == "tlsrpt"
    parts = [p for p in msg.iter_parts()
             if p.get_content_type() == "application/tlsrpt+gzip"]
    assert len(parts) == 1, [p.get_content_type() for p in msg.iter_parts()]
    name = parts[0].get_filename()
    m = re.fullmatch(r"mx\.example\.test!%s!([0-9]+)!([0-9]+)\.json\.gz" %
                     re.escape(domain), name)
    assert m, name
    begin, end = int(m.group(1)), int(m.group(2))
    assert begin == now - now % 86400 and begin <= end <= now + 60, \
        (begin, end, now)
    rep = json.loads(gzip.decompress(parts[0].get_content()))
    assert rep["organization-name"] == "Posthaste Test Org"
    assert rep["contact-info"] == "mailto:tlsrpt@mx.example.test"
    assert rep["report-id"] == rid
    fmt = "%Y-%m-%dT%H:%M:%SZ"
    assert rep["date-range"] == {
        "start-datetime": time.strftime(fmt, time.gmtime(begin)),
        "end-datetime": time.strftime(fmt, time.gmtime(end))}
    return rep


def check_policy_test(rep):
    pols = {p["policy"]["policy-type"]: p for p in rep["policies"]}
    assert sorted(pols) == ["sts", "tlsa"], rep
    sts = pols["sts"]
    assert sts["policy"] == {
        "policy-type": "sts", "policy-string": STS.split("\n"),
        "policy-domain": "policy.test", "mx-host": ["*.policy.test"]}
    assert sts["summary"] == {"total-successful-session-count": 3,
                              "total-failure-session-count": 3}
    fails = sorted(sts["failure-details"], key=lambda f: f["result-type"])
    assert fails == [
        {"result-type": "certificate-expired",
         "receiving-mx-hostname": "mx1.policy.test",
         "receiving-ip": "192.0.2.1", "failed-session-count": 2,
         "failure-reason-code": "certificate has expired"},
        {"result-type": "starttls-not-supported",
         "receiving-mx-hostname": "mx2.policy.test",
         "receiving-ip": "2001:db8::2", "failed-session-count": 1},
    ], fails
    tlsa = pols["tlsa"]
    assert tlsa["policy"] == {
        "policy-type": "tlsa", "policy-string": [TLSA],
        "policy-domain": "policy.test", "mx-host": ["backup.policy.test"]}
    assert tlsa["summary"] == {"total-successful-session-count": 1,
                               "total-failure-session-count": 1}
    assert tlsa["failure-details"] == [
        {"result-type": "tlsa-invalid",
         "receiving-mx-hostname": "backup.policy.test",
         "receiving-ip": "192.0.2.3", "failed-session-count": 1,
         "failure-reason-code": "no TLSA record matched"}]


def test_tlsrpt_reports_off_by_default():
    """without "tlsrpt reports", smtpctl says the reports are off"""
    conf = "\n".join(ln for ln in CONF.splitlines()
                     if not ln.startswith("tlsrpt reports")) + "\n"
    with Daemon(conf=conf % {"host": HOST}) as d:
        rc, out = ctl(d, "tlsrpt", "report", "now")
        assert rc != 0 and "off" in out, (rc, out)


# ---- end to end under DANE ----

DANE_CONF = """\
hostname %(host)s
spool "@TMP@/spool"
socket "@TMP@/smtpd.sock"
smtp workers 1
resolver 127.0.0.1 port %(dns)d
dnssec trust-anchor "%(anchor)s"
queue retry-remote 1h
tlsrpt reports from "tlsrpt@mx.example.test" org "Posthaste Test Org"
listen on 127.0.0.1 port @PORT@
action "local" maildir "~/Maildir"
action "dane" relay tls dane
match from any for domain "example.test" action "local"
match from local for any action "dane"
"""

# the reports' rua: ok.dane.test names it percent-encoded
TLSRPT_TXT = """\
_smtp._tls.ok	TXT	"v=TLSRPTv1; rua=mailto:%(user)s%%40example.test"
_smtp._tls.bad	TXT	"v=TLSRPTv1;rua=mailto:%(user)s@example.test"
"""


class DaneWorld:
    """test_mta_dane's world with our ports (15602, 15603), our sink
    addresses (127.0.156.x) and the _smtp._tls records; the module's
    settings are put back on the way out (run.py may run it later in
    the same interpreter)."""

    def __enter__(self):
        try:
            import test_mta_dane as dane
        except ImportError:
            fixture.skip("test_mta_dane.py not in this tree (DANE)")
        self.dane = dane
        self.saved = {k: getattr(dane, k) for k in
                      ("SIGNED", "NSD_PORT", "UNBOUND_PORT", "SINKS")}
        # the zone is a %-template too: our '%' survive it doubled
        dane.SIGNED = dane.SIGNED + (TLSRPT_TXT % {
            "user": TEST_USER1}).replace("%", "%%")
        dane.NSD_PORT, dane.UNBOUND_PORT = 15602, 15603
        dane.SINKS = {k: v.replace("127.0.155.", "127.0.156.")
                      for k, v in self.saved["SINKS"].items()}
        try:
            self.world = dane.DnssecWorld()
        except BaseException:
            self._restore()
            raise
        return self

    def _restore(self):
        for k, v in self.saved.items():
            setattr(self.dane, k, v)

    def __exit__(self, *exc):
        try:
            self.world.stop()
        finally:
            self._restore()
        return False


def wait_records(d, n):
    """mta -> lookup -> queue is asynchronous: n outcomes on file"""
    path = os.path.join(d.spool, "tlsrpt", "records")

    def count():
        try:
            with open(path, "rb") as f:
                k = f.read().count(b"\n")
        except FileNotFoundError:
            return None
        return k if k >= n else None
    assert poll(count, 15), "%d TLS-RPT outcomes not recorded; log:\n%s" \
        % (n, "\n".join(d.log().splitlines()[-30:]))


def test_tlsrpt_dane_end_to_end():
    """ok.dane.test: a DANE-EE match, one success; bad.dane.test: a
    mismatch, a validation-failure with our address, the MX host and its
    address; one report each, mailed through the queue"""
    reset_maildir(TEST_USER1)
    with DaneWorld() as dw:
        dane, w = dw.dane, dw.world
        from test_mta_relay import send_mail, message, wait_log
        with dane.sink("ok", w.sink_cert), dane.sink("bad", w.sink_cert), \
                Daemon(conf=DANE_CONF % {
                    "host": HOST, "dns": dane.UNBOUND_PORT,
                    "anchor": w.path("anchor.ds")}) as d:
            for name in ("ok", "bad"):
                send_mail(d.port, ["u@%s.dane.test" % name],
                          message(unique_marker("tlsrpt-" + name)))
            wait_log(d, r"to=<u@ok\.dane\.test>.*status=sent", timeout=15)
            wait_log(d, r"to=<u@bad\.dane\.test>.*dsn=4\.7\.5, "
                     r"status=deferred", timeout=15)
            wait_records(d, 2)
            now = int(time.time())
            rc, out = ctl(d, "tlsrpt", "report", "now")
            assert rc == 0 and "for 2 domains" in out, (rc, out)
            assert poll(lambda: (reports_for("ok.dane.test") and
                                 reports_for("bad.dane.test")) or None,
                        15), "no reports; log:\n%s" % "\n".join(
                d.log().splitlines()[-30:])
            ok = check_mail(reports_for("ok.dane.test")[0], "ok.dane.test",
                            now)
            spki = dane.spki_sha256(w.sink_cert[0])
            bad = check_mail(reports_for("bad.dane.test")[0],
                             "bad.dane.test", now)
    (p,) = ok["policies"]
    assert p["policy"]["policy-type"] == "tlsa", p
    assert p["policy"]["policy-domain"] == "ok.dane.test", p
    assert p["policy"]["mx-host"] == ["mx-ok.dane.test"], p
    assert p["policy"]["policy-string"] == ["3 1 1 " + spki.lower()], p
    assert p["summary"]["total-failure-session-count"] == 0, p
    assert p["summary"]["total-successful-session-count"] >= 1, p
    (p,) = bad["policies"]
    assert p["policy"]["policy-type"] == "tlsa", p
    assert p["summary"]["total-successful-session-count"] == 0, p
    fails = p["failure-details"]
    assert p["summary"]["total-failure-session-count"] == \
        sum(f["failed-session-count"] for f in fails) >= 1, p
    assert {f["result-type"] for f in fails} == {"validation-failure"}, p
    for f in fails:
        assert f["receiving-mx-hostname"] == "mx-bad.dane.test", f
        assert f["receiving-ip"] == "127.0.156.2", f
        assert f["sending-mta-ip"] == "127.0.0.1", f


# ---- end to end under MTA-STS ----

STS_CONF = """\
hostname %(host)s
spool "@TMP@/spool"
socket "@TMP@/smtpd.sock"
smtp workers 1
resolver 127.0.0.1 port %(dns)d
tlsrpt reports from "tlsrpt@mx.example.test" org "Posthaste Test Org"
listen on 127.0.0.1 port @PORT@
action "local" maildir "~/Maildir"
action "mx" relay
match from any for domain "example.test" action "local"
match from local for any action "mx"
"""

STS_DOMAINS = ("enf.test", "nocert.test", "nopol.test")


class StsWorld:
    """test_mta_sts's policy server, DNS and MX with our port (15604)
    and addresses (127.0.0.81, .82); the module's settings are put back
    on the way out."""

    NAMES = ("DNS_PORT", "POLICY_IP", "MX_IP")

    def __enter__(self):
        try:
            import test_mta_sts as sts
        except ImportError:
            fixture.skip("test_mta_sts.py not in this tree (MTA-STS)")
        self.sts = sts
        self.saved = {k: getattr(sts, k) for k in self.NAMES}
        sts.DNS_PORT, sts.POLICY_IP, sts.MX_IP = \
            15604, "127.0.0.81", "127.0.0.82"
        return self

    def zone(self):
        z = self.sts.zone({d: "x1" for d in STS_DOMAINS})
        for d in STS_DOMAINS:
            z["_smtp._tls." + d] = [
                ("TXT", "v=TLSRPTv1; rua=mailto:%s" % RUA)]
        return z

    def __exit__(self, *exc):
        for k, v in self.saved.items():
            setattr(self.sts, k, v)
        return False


def test_tlsrpt_sts_end_to_end():
    """enf.test (enforce, its MX matches): a success under its policy;
    nocert.test (enforce, the MX's certificate does not name it): a
    certificate-host-mismatch; nopol.test (its policy server answers
    404): an sts-policy-fetch-error before any session.  One report per
    domain, with the policy's lines and "mx:" patterns."""
    reset_maildir(TEST_USER1)
    with StsWorld() as sw:
        sts = sw.sts
        from test_mta_relay import FakeSMTP, send_mail, message, wait_log
        ca, cert, key = sts.certs()
        with sts.ZeroTTLDNS(sw.zone()), \
                sts.PolicyServer(cert, key) as web, \
                FakeSMTP(addr=(sts.MX_IP, 25), cert=(cert, key)), \
                Daemon(conf=STS_CONF % {"host": HOST, "dns": sts.DNS_PORT},
                       env={"SSL_CERT_FILE": ca}) as d:
            web.policies["enf.test"] = sts.policy("enforce", ["*.enf.test"],
                                                  crlf=True)
            web.policies["nocert.test"] = sts.policy("enforce",
                                                     ["mx.nocert.test"])
            for dom in STS_DOMAINS:
                send_mail(d.port, ["u@" + dom],
                          message(unique_marker("tlsrpt-" + dom)))
            wait_log(d, r"to=<u@enf\.test>.*status=sent", timeout=15)
            wait_log(d, r"to=<u@nocert\.test>.*status=deferred", timeout=15)
            wait_log(d, r"to=<u@nopol\.test>.*status=sent", timeout=15)
            wait_records(d, 3)
            now = int(time.time())
            rc, out = ctl(d, "tlsrpt", "report", "now")
            assert rc == 0 and "for 3 domains" in out, (rc, out)
            assert poll(lambda: all(reports_for(x) for x in STS_DOMAINS)
                        or None, 15), "no reports; log:\n%s" % "\n".join(
                d.log().splitlines()[-30:])
            reps = {x: check_mail(reports_for(x)[0], x, now)
                    for x in STS_DOMAINS}
            mx_ip = sts.MX_IP
    (p,) = reps["enf.test"]["policies"]
    assert p["policy"] == {
        "policy-type": "sts", "policy-string": [
            "version: STSv1", "mode: enforce", "mx: *.enf.test",
            "max_age: 86400"],
        "policy-domain": "enf.test", "mx-host": ["*.enf.test"]}, p
    assert p["summary"] == {"total-successful-session-count": 1,
                            "total-failure-session-count": 0}, p
    (p,) = reps["nocert.test"]["policies"]
    assert p["policy"]["policy-string"][1:3] == [
        "mode: enforce", "mx: mx.nocert.test"], p
    assert p["summary"]["total-successful-session-count"] == 0, p
    assert [(f["result-type"], f["receiving-mx-hostname"],
             f["receiving-ip"], f["sending-mta-ip"])
            for f in p["failure-details"]] == [
        ("certificate-host-mismatch", "mx.nocert.test", mx_ip,
         "127.0.0.1")], p
    (p,) = reps["nopol.test"]["policies"]
    assert p["policy"]["policy-type"] == "sts", p
    assert "policy-string" not in p["policy"], p
    assert [f["result-type"] for f in p["failure-details"]] == [
        "sts-policy-fetch-error"], p
