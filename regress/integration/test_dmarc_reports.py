"""
DMARC aggregate reports (RFC 7489 7.2) end to end through the real
daemon: "dmarc reports from" on, the checks on for the loopback client,
DNS from dnsserver.py.  A few messages claim to be from sender.test
(SPF pass, SPF pass with a DKIM signature by dkimpy, SPF fail), then
`smtpctl dmarc report now' makes the queue mail the report to the rua
address, a local user here; its attachment must gunzip to XML that
xmllint validates against regress/dmarc/rua.xsd, with the counts, the
source IP and the results of what was sent.

The rua address is outside sender.test's organizational domain, so it
is used only because example.test publishes the RFC 7489 7.1
verification record; noauth.test names the same address without that
record and gets no report.  tiny.test asks for "!1k", which no report
fits in: not sent, with a log line.  A row of a day that ended while
the daemon was down is reported at start-up, without smtpctl.

Checked to fail when equal rows are not counted together, when external
rua addresses are used unverified, and when the start-up check is off.
"""

import base64
import email
import email.policy
import gzip
import os
import re
import shutil
import subprocess
import tempfile
import xml.etree.ElementTree as ET

import dnsserver
import fixture
from fixture import (TEST_USER1, Daemon, SMTPConnection, binary,
                     maildir_path, poll, reset_maildir, unique_marker)

PORT = 15368
TIMEOUT = 60
HOST = "mx.example.test"
RUA = "%s@example.test" % TEST_USER1
XSD = os.path.join(os.path.dirname(os.path.abspath(__file__)), "..",
                   "dmarc", "rua.xsd")

CONF = """\
hostname %(host)s
spool "@TMP@/spool"
socket "@TMP@/smtpd.sock"
resolver 127.0.0.1 port %(dns)d
dmarc reports from "dmarc@mx.example.test" org "Posthaste Test Org"
listen on 127.0.0.1 port @PORT@ checks all-clients
action "local" maildir "~/Maildir"
match from any for domain "example.test" action "local"
"""


def dkim_key():
    """dkimpy and a fresh RSA key, or None when they are missing"""
    try:
        import dkim
        from cryptography.hazmat.primitives import serialization as ser
        from cryptography.hazmat.primitives.asymmetric import rsa
    except ImportError:
        return None
    k = rsa.generate_private_key(public_exponent=65537, key_size=2048)
    pem = k.private_bytes(ser.Encoding.PEM, ser.PrivateFormat.PKCS8,
                          ser.NoEncryption())
    der = k.public_key().public_bytes(
        ser.Encoding.DER, ser.PublicFormat.SubjectPublicKeyInfo)
    return dkim, pem, "v=DKIM1; k=rsa; p=" + base64.b64encode(der).decode()


def zone(keytxt):
    z = {
        "sender.test": [("TXT", "v=spf1 ip4:127.0.0.1 -all")],
        "_dmarc.sender.test": [("TXT", "v=DMARC1; p=none; "
                                "rua=mailto:%s!10m" % RUA)],
        "sender.test._report._dmarc.example.test": [("TXT", "v=DMARC1")],
        "other.test": [("TXT", "v=spf1 -all")],
        "noauth.test": [("TXT", "v=spf1 ip4:127.0.0.1 -all")],
        "_dmarc.noauth.test": [("TXT", "v=DMARC1; p=none; "
                                "rua=mailto:%s" % RUA)],
        "tiny.test": [("TXT", "v=spf1 ip4:127.0.0.1 -all")],
        "_dmarc.tiny.test": [("TXT", "v=DMARC1; p=none; "
                              "rua=mailto:%s!1k" % RUA)],
        "tiny.test._report._dmarc.example.test": [("TXT", "v=DMARC1")],
    }
    if keytxt:
        z["sel._domainkey.sender.test"] = [("TXT", keytxt)]
    return z


def message(from_addr, marker):
    return ("From: <%s>\r\nTo: <%s>\r\nSubject: %s\r\n"
            "Date: Mon, 07 Dec 2026 07:00:00 +0000\r\n"
            "Message-ID: <%s@sender.test>\r\n\r\nbody %s\r\n"
            % (from_addr, RUA, marker, marker, marker)).encode()


def send(port, mail_from, msg):
    with SMTPConnection(port) as c:
        assert c.command("EHLO client.sender.test").code == 250
        assert c.command("MAIL FROM:<%s>" % mail_from).code == 250
        assert c.command("RCPT TO:<%s>" % RUA).code == 250
        assert c.command("DATA").code == 354
        c.send(msg.replace(b"\r\n.", b"\r\n..") + b".\r\n")
        r = c.reply()
        c.command("QUIT")
        return r


def ctl(d, *args):
    p = subprocess.run([binary("smtpctl"), "-s", d.socket_path] +
                       list(args), stdin=subprocess.DEVNULL,
                       capture_output=True, timeout=20)
    return p.returncode, (p.stdout + p.stderr).decode()


def maildir_messages():
    d = os.path.join(maildir_path(TEST_USER1), "new")
    try:
        names = sorted(os.listdir(d))
    except FileNotFoundError:
        return []
    out = []
    for n in names:
        with open(os.path.join(d, n), "rb") as f:
            out.append(f.read())
    return out


def reports_for(domain):
    return [m for m in maildir_messages()
            if b"Report Domain: " + domain.encode() + b" " in m]


def wait_log(d, pattern, timeout=20):
    rx = re.compile(pattern)
    hit = poll(lambda: [ln for ln in d.log().splitlines() if rx.search(ln)]
               or None, timeout)
    assert hit, "no log line matching %r; tail:\n%s" % (
        pattern, "\n".join(d.log().splitlines()[-30:]))
    return hit


def wait_records(d, n):
    """lookup -> queue is asynchronous: wait until n rows are on file"""
    path = os.path.join(d.spool, "dmarc", "records")

    def count():
        try:
            with open(path, "rb") as f:
                k = f.read().count(b"\n")
        except FileNotFoundError:
            return None
        return k if k >= n else None
    assert poll(count, 20), "%d DMARC rows not recorded" % n


def test_dmarc_reports_end_to_end():
    dnsserver.require()
    if shutil.which("xmllint") is None:
        fixture.skip("xmllint missing (libxml2-utils)")
    kit = dkim_key()
    reset_maildir(TEST_USER1)
    with dnsserver.DNSServer(zone(kit[2] if kit else None),
                             port=PORT) as dns, \
            Daemon(conf=CONF % {"host": HOST, "dns": dns.port}) as d:
        sent = 0
        # two alike: SPF pass, aligned; one row counted twice
        for i in range(2):
            m = unique_marker("pass")
            assert send(d.port, "alice@sender.test",
                        message("alice@sender.test", m)).code == 250
            sent += 1
        # DKIM signed (dkimpy) and SPF pass: a row with the signature
        if kit:
            dkim, pem, _ = kit
            m = unique_marker("signed")
            msg = message("alice@sender.test", m)
            signed = dkim.sign(msg, b"sel", b"sender.test", pem,
                               include_headers=[b"from", b"to",
                                                b"subject"]) + msg
            assert send(d.port, "alice@sender.test", signed).code == 250
            sent += 1
        # SPF fail for other.test, nothing aligned: dmarc=fail, p=none
        m = unique_marker("fail")
        assert send(d.port, "bob@other.test",
                    message("bob@sender.test", m)).code == 250
        sent += 1
        # no verification record for the external rua: no row at all
        m = unique_marker("noauth")
        assert send(d.port, "carol@noauth.test",
                    message("carol@noauth.test", m)).code == 250
        wait_log(d, r"noauth\.test: report address %s not used" %
                 re.escape(RUA))
        # too small a limit: recorded, but its report is not sent
        m = unique_marker("tiny")
        assert send(d.port, "dave@tiny.test",
                    message("dave@tiny.test", m)).code == 250
        wait_records(d, sent + 1)

        rc, out = ctl(d, "dmarc", "report", "now")
        assert rc == 0 and "for 2 domains" in out, (rc, out)
        got = poll(lambda: reports_for("sender.test") or None, 30)
        assert got, "no report mailed; log tail:\n%s" % "\n".join(
            d.log().splitlines()[-30:])
        wait_log(d, r"report for tiny\.test to %s not sent: .* over its "
                 r"limit of 1024" % re.escape(RUA))
        assert len(got) == 1, len(got)
        assert reports_for("noauth.test") == []
        assert reports_for("tiny.test") == []
        check_report(got[0], sent, bool(kit))

        # nothing left: a second run reports on no domain, mails nothing
        rc, out = ctl(d, "dmarc", "report", "now")
        assert rc == 0 and "for 0 domains" in out, (rc, out)
        assert not os.path.exists(os.path.join(d.spool, "dmarc",
                                               "records"))


def check_report(raw, sent, signed):
    msg = email.message_from_bytes(raw, policy=email.policy.default)
    assert msg["From"].addresses[0].addr_spec == "dmarc@mx.example.test"
    assert msg["To"].addresses[0].addr_spec == RUA
    subj = str(msg["Subject"])
    assert re.fullmatch(r"Report Domain: sender\.test Submitter: "
                        r"mx\.example\.test Report-ID: <[0-9]+\.[0-9a-f]+"
                        r"@mx\.example\.test>", subj), subj
    assert msg["Date"] and msg["Message-ID"]
    assert msg.get_content_type() == "multipart/mixed"
    parts = [p for p in msg.iter_attachments()
             if p.get_content_type() == "application/gzip"]
    assert len(parts) == 1, [p.get_content_type() for p in
                             msg.iter_attachments()]
    name = parts[0].get_filename()
    assert re.fullmatch(r"mx\.example\.test!sender\.test![0-9]+![0-9]+"
                        r"\.xml\.gz", name), name
    xml = gzip.decompress(parts[0].get_content())
    # the schema without its targetNamespace, as test_dmarc_report.c
    # does (rua.xsd's note: reports carry no namespace)
    with open(XSD) as f:
        xsd = re.sub(r'\s+targetNamespace="[^"]*"', "", f.read())
    with tempfile.TemporaryDirectory() as tmp:
        with open(os.path.join(tmp, "rua.xsd"), "w") as f:
            f.write(xsd)
        with open(os.path.join(tmp, "report.xml"), "wb") as f:
            f.write(xml)
        p = subprocess.run(["xmllint", "--noout", "--schema",
                            os.path.join(tmp, "rua.xsd"),
                            os.path.join(tmp, "report.xml")],
                           capture_output=True, timeout=20)
        assert p.returncode == 0, p.stderr.decode() + xml.decode()
    root = ET.fromstring(xml)
    assert root.findtext("report_metadata/org_name") == \
        "Posthaste Test Org"
    assert root.findtext("report_metadata/email") == "dmarc@mx.example.test"
    begin = int(root.findtext("report_metadata/date_range/begin"))
    end = int(root.findtext("report_metadata/date_range/end"))
    assert begin <= end and name.split("!")[2:] == [
        str(begin), str(end) + ".xml.gz"], (name, begin, end)
    assert root.findtext("policy_published/domain") == "sender.test"
    assert root.findtext("policy_published/p") == "none"
    rows = []
    for rec in root.findall("record"):
        dk = [(x.findtext("domain"), x.findtext("selector"),
               x.findtext("result")) for x in rec.findall("auth_results/dkim")]
        rows.append({
            "ip": rec.findtext("row/source_ip"),
            "count": int(rec.findtext("row/count")),
            "disposition": rec.findtext("row/policy_evaluated/disposition"),
            "dkim": rec.findtext("row/policy_evaluated/dkim"),
            "spf": rec.findtext("row/policy_evaluated/spf"),
            "header_from": rec.findtext("identifiers/header_from"),
            "envelope_from": rec.findtext("identifiers/envelope_from"),
            "auth_dkim": dk,
            "auth_spf": (rec.findtext("auth_results/spf/domain"),
                         rec.findtext("auth_results/spf/scope"),
                         rec.findtext("auth_results/spf/result")),
        })
    assert all(r["ip"] == "127.0.0.1" for r in rows), rows
    assert sum(r["count"] for r in rows) == sent, rows
    plain = [r for r in rows if r["spf"] == "pass" and not r["auth_dkim"]]
    assert len(plain) == 1 and plain[0]["count"] == 2, rows
    assert plain[0]["auth_spf"] == ("sender.test", "mfrom", "pass"), rows
    assert plain[0]["dkim"] == "fail" and \
        plain[0]["disposition"] == "none", rows
    assert plain[0]["header_from"] == "sender.test" and \
        plain[0]["envelope_from"] == "sender.test", rows
    failed = [r for r in rows if r["spf"] == "fail"]
    assert len(failed) == 1 and failed[0]["count"] == 1, rows
    assert failed[0]["auth_spf"] == ("other.test", "mfrom", "fail"), rows
    assert failed[0]["envelope_from"] == "other.test" and \
        failed[0]["header_from"] == "sender.test" and \
        failed[0]["dkim"] == "fail" and \
        failed[0]["disposition"] == "none", rows
    if signed:
        sig = [r for r in rows if r["auth_dkim"]]
        assert len(sig) == 1 and sig[0]["count"] == 1, rows
        assert sig[0]["auth_dkim"] == [("sender.test", "sel", "pass")], rows
        assert sig[0]["dkim"] == "pass" and sig[0]["spf"] == "pass", rows
        assert len(rows) == 3, rows
    else:
        assert len(rows) == 2, rows


def test_dmarc_reports_off_by_default():
    """without "dmarc reports", nothing is recorded and smtpctl says so"""
    dnsserver.require()
    reset_maildir(TEST_USER1)
    conf = "\n".join(ln for ln in CONF.splitlines()
                     if not ln.startswith("dmarc reports")) + "\n"
    with dnsserver.DNSServer(zone(None), port=PORT) as dns, \
            Daemon(conf=conf % {"host": HOST, "dns": dns.port}) as d:
        m = unique_marker("off")
        assert send(d.port, "alice@sender.test",
                    message("alice@sender.test", m)).code == 250
        assert poll(lambda: any(m.encode() in x
                                for x in maildir_messages()), 20)
        rc, out = ctl(d, "dmarc", "report", "now")
        assert rc != 0 and "off" in out, (rc, out)
        assert not os.path.exists(os.path.join(d.spool, "dmarc",
                                               "records"))


def test_dmarc_reports_day_ended_while_down():
    """rows of a day that ended while the daemon was down are reported
    at start-up, without smtpctl"""
    dnsserver.require()
    reset_maildir(TEST_USER1)
    fixture.setup_system()
    spool = tempfile.mkdtemp(prefix="spool.", dir=fixture.TEST_ROOT)
    conf = CONF.replace('"@TMP@/spool"', '"%s"' % spool)
    records = os.path.join(spool, "dmarc", "records")
    try:
        with dnsserver.DNSServer(zone(None), port=PORT) as dns:
            with Daemon(conf=conf % {"host": HOST, "dns": dns.port}) as d:
                m = unique_marker("yesterday")
                assert send(d.port, "alice@sender.test",
                            message("alice@sender.test", m)).code == 250
                assert poll(lambda: os.path.exists(records) or None, 20)
            # the row, made yesterday
            with open(records) as f:
                fields = f.read().split(" ")
            yesterday = int(fields[1]) - 86400
            fields[1] = str(yesterday)
            with open(records, "w") as f:
                # and a last line torn by a crash: skipped, logged
                f.write(" ".join(fields) + "v1 %d 127.0.0.1 send" %
                        yesterday)
            assert reports_for("sender.test") == []
            with Daemon(conf=conf % {"host": HOST, "dns": dns.port}) as d:
                got = poll(lambda: reports_for("sender.test") or None, 30)
                assert got, "no report at start-up; log tail:\n%s" % \
                    "\n".join(d.log().splitlines()[-30:])
                assert not os.path.exists(records)
                wait_log(d, r"dmarc: 1 report rows unreadable")
        msg = email.message_from_bytes(got[0], policy=email.policy.default)
        part = [p for p in msg.iter_attachments()
                if p.get_content_type() == "application/gzip"][0]
        root = ET.fromstring(gzip.decompress(part.get_content()))
        assert int(root.findtext("report_metadata/date_range/begin")) == \
            yesterday
        assert root.findtext("record/row/count") == "1"
    finally:
        shutil.rmtree(spool, ignore_errors=True)
