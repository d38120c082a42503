"""
The inbound checks (issue 18, part 3) through the real daemon: SPF, DKIM
verification, DMARC and DNS block lists, answered by a DNS server the
test starts on loopback (dnsserver.py), and the one
Authentication-Results header (RFC 8601) that reports them.

Messages are signed by dkimpy (an independent implementation) with a key
whose record the DNS server publishes.  The listener says "checks
all-clients", as the client is on loopback (which is trusted, and not
checked, by default: the last test shows that).  Covered: SPF pass and
fail, DKIM pass and a tampered body, DMARC pass, p=reject refused with
550 5.7.1, p=quarantine filed into Maildir/.Junk by the "junk" option,
p=none tagged, a DNS timeout (temperror) that refuses nothing, forged
Authentication-Results with our authserv-id removed (others kept), and a
client listed by a block list refused with 554 5.7.1 naming the list.
"""

import os
import re
import tempfile

import dnsserver
import fixture
from fixture import (TEST_USER1, Daemon, SMTPConnection, maildir_path, poll,
                     reset_maildir, unique_marker)
from test_metrics import sample, show_metrics

PORT = 15365
TIMEOUT = 30
HOST = "mx.checks.test"

CONF = """\
hostname %(host)s
spool "@TMP@/spool"
socket "@TMP@/smtpd.sock"
resolver 127.0.0.1 port %(dns)d
%(extra)s
listen on 127.0.0.1 port @PORT@ %(listen)s
action "local" maildir "~/Maildir" junk
%(rules)s
match from any for domain "example.test" action "local"
"""


def dkimpy():
    try:
        import dkim
        from cryptography.hazmat.primitives import serialization as ser
        from cryptography.hazmat.primitives.asymmetric import rsa
    except ImportError as e:
        fixture.skip("python3-dkim / python3-cryptography missing: %s" % e)
    k = rsa.generate_private_key(public_exponent=65537, key_size=2048)
    pem = k.private_bytes(ser.Encoding.PEM, ser.PrivateFormat.PKCS8,
                          ser.NoEncryption())
    der = k.public_key().public_bytes(
        ser.Encoding.DER, ser.PublicFormat.SubjectPublicKeyInfo)
    import base64
    return dkim, pem, "v=DKIM1; k=rsa; p=" + base64.b64encode(der).decode()


def zone(keytxt):
    return {
        "example.org": [("TXT", "v=spf1 ip4:127.0.0.1 -all")],
        "client.checks.test": [("TXT", "v=spf1 a:other.test -all")],
        "_dmarc.example.org": [("TXT", "v=DMARC1; p=reject")],
        "sel._domainkey.example.org": [("TXT", keytxt)],
        "reject.test": [("TXT", "v=spf1 -all")],
        "_dmarc.reject.test": [("TXT", "v=DMARC1; p=reject")],
        "quarantine.test": [("TXT", "v=spf1 -all")],
        "_dmarc.quarantine.test": [("TXT", "v=DMARC1; p=quarantine")],
        "none.test": [("TXT", "v=spf1 -all")],
        "_dmarc.none.test": [("TXT", "v=DMARC1; p=none")],
        "slow.test": [("TXT", "v=spf1 -all")],
        "_dmarc.slow.test": ["TIMEOUT"],
        "1.0.0.127.bl.test": [("A", "127.0.0.2")],
        "bl.test": [("TXT", "a block list")],
    }


def message(from_addr, marker, extra=""):
    return ("From: <%s>\r\nTo: <%s@example.test>\r\nSubject: %s\r\n"
            "Date: Mon, 07 Dec 2026 07:00:00 +0000\r\n"
            "Message-ID: <%s@checks.test>\r\n%s\r\nbody %s\r\n"
            % (from_addr, TEST_USER1, marker, marker, extra,
               marker)).encode()


def send(port, mail_from, msg):
    """the reply to the end of data"""
    with SMTPConnection(port) as c:
        assert c.command("EHLO client.checks.test").code == 250
        assert c.command("MAIL FROM:<%s>" % mail_from).code == 250
        assert c.command("RCPT TO:<%s@example.test>" % TEST_USER1).code \
            == 250
        assert c.command("DATA").code == 354
        c.send(msg.replace(b"\r\n.", b"\r\n..") + b".\r\n")
        r = c.reply()
        c.command("QUIT")
        return r


def delivered(marker, sub=""):
    d = os.path.join(maildir_path(TEST_USER1), sub, "new")

    def find():
        try:
            names = os.listdir(d)
        except FileNotFoundError:
            return None
        for n in names:
            with open(os.path.join(d, n), "rb") as f:
                data = f.read()
            if marker.encode() in data:
                return data
        return None
    data = poll(find, TIMEOUT)
    assert data, "%s not delivered in %s" % (marker, d)
    return data


def authres(msg):
    fields = re.findall(rb"(?im)^authentication-results:([^\n]*(?:\n[ \t]"
                        rb"[^\n]*)*)", msg)
    return [re.sub(rb"\s+", b" ", f).strip().decode() for f in fields]


def daemon(dns, extra="", listen="checks all-clients", rules=""):
    return Daemon(conf=CONF % {"host": HOST, "dns": dns.port,
                               "extra": extra, "listen": listen,
                               "rules": rules})


def test_checks_results_and_policies():
    dnsserver.require()
    dkim, pem, keytxt = dkimpy()
    reset_maildir(TEST_USER1)
    with dnsserver.DNSServer(zone(keytxt), port=PORT) as dns, \
            daemon(dns) as d:
        # signed by dkimpy, SPF pass: everything passes
        m1 = unique_marker("pass")
        msg = message("alice@example.org", m1,
                      "Authentication-Results: %s; spf=pass "
                      "smtp.mailfrom=forged@example.org\r\n"
                      "Authentication-Results: other.example; dkim=pass\r\n"
                      % HOST)
        signed = dkim.sign(msg, b"sel", b"example.org", pem,
                           include_headers=[b"from", b"to", b"subject",
                                            b"date", b"message-id"])
        assert send(d.port, "alice@example.org", signed + msg).code == 250
        got = delivered(m1)
        ar = authres(got)
        ours = [a for a in ar if a.startswith(HOST)]
        assert len(ours) == 1, ar	# the forged one is gone
        assert "spf=pass" in ours[0] and "dkim=pass" in ours[0] and \
            "dmarc=pass" in ours[0] and "header.d=example.org" in ours[0], \
            ours
        # the HELO name checked apart (RFC 7208 2.3): not this client
        assert "spf=fail smtp.helo=client.checks.test" in ours[0], ours
        assert any(a.startswith("other.example") for a in ar), ar

        # the body changed after signing: DKIM fails, SPF still aligns
        m2 = unique_marker("tampered")
        msg2 = message("alice@example.org", m2)
        tampered = dkim.sign(msg2, b"sel", b"example.org", pem,
                             include_headers=[b"from", b"subject"]) + \
            msg2.replace(b"body ", b"BODY ")
        assert send(d.port, "alice@example.org", tampered).code == 250
        ours = [a for a in authres(delivered(m2)) if a.startswith(HOST)]
        assert "dkim=fail" in ours[0] and "dmarc=pass" in ours[0], ours

        # p=reject, SPF fail, no signature: refused at the end of data
        m3 = unique_marker("reject")
        r = send(d.port, "bob@reject.test", message("bob@reject.test", m3))
        assert r.code == 550 and "5.7.1" in r.text and \
            "reject.test" in r.text, r

        # p=quarantine: delivered into the Junk folder
        m4 = unique_marker("quarantine")
        assert send(d.port, "carol@quarantine.test",
                    message("carol@quarantine.test", m4)).code == 250
        ours = [a for a in authres(delivered(m4, ".Junk"))
                if a.startswith(HOST)]
        assert "dmarc=fail" in ours[0] and "spf=fail" in ours[0], ours

        # p=none: tagged only
        m5 = unique_marker("none")
        assert send(d.port, "dave@none.test",
                    message("dave@none.test", m5)).code == 250
        ours = [a for a in authres(delivered(m5)) if a.startswith(HOST)]
        assert "dmarc=fail" in ours[0], ours

        # the policy cannot be read (DNS timeout): accepted, temperror
        m6 = unique_marker("slow")
        assert send(d.port, "erin@slow.test",
                    message("erin@slow.test", m6)).code == 250
        ours = [a for a in authres(delivered(m6)) if a.startswith(HOST)]
        assert "dmarc=temperror" in ours[0], ours

        # the same results counted for the metrics (smtpctl show metrics)
        text = show_metrics(d)
        assert sample(text, "posthaste_dkim_results_total",
                      result="pass") == 1, text
        assert sample(text, "posthaste_dkim_results_total",
                      result="fail") == 1, text
        assert sample(text, "posthaste_dkim_results_total",
                      result="none") == 4, text
        assert sample(text, "posthaste_dmarc_results_total",
                      result="pass") == 2, text
        assert sample(text, "posthaste_dmarc_results_total",
                      result="fail") == 3, text
        assert sample(text, "posthaste_dmarc_results_total",
                      result="temperror") == 1, text
        spf = {r: sample(text, "posthaste_spf_results_total", result=r)
               for r in ("pass", "fail", "softfail", "neutral", "none",
                         "temperror", "permerror")}
        # one per transaction (MAIL FROM's identity, not HELO's)
        assert spf["pass"] == 2 and sum(spf.values()) == 6, spf


def test_block_list_refuses_at_first_command():
    dnsserver.require()
    _, _, keytxt = ("", "", "v=DKIM1; p=")
    with dnsserver.DNSServer(zone(keytxt), port=PORT + 1) as dns, \
            daemon(dns, extra='dnsbl "bl.test"') as d:
        with SMTPConnection(d.port) as c:
            r = c.command("EHLO client.checks.test")
            assert r.code == 554 and "5.7.1" in r.text and \
                "bl.test" in r.text, r
        assert "blocked using bl.test" in d.log()
        # ours, and the fixture's start-up probe if it stayed for the
        # answer (it comes from the same address)
        assert sample(show_metrics(d), "posthaste_dnsbl_listed_total") in \
            (1, 2)


def test_loopback_not_checked_by_default():
    dnsserver.require()
    reset_maildir(TEST_USER1)
    with dnsserver.DNSServer(zone("v=DKIM1; p="), port=PORT + 2) as dns, \
            daemon(dns, extra='dnsbl "bl.test"', listen="") as d:
        m = unique_marker("trusted")
        assert send(d.port, "bob@reject.test",
                    message("bob@reject.test", m)).code == 250
        assert authres(delivered(m)) == []


def rcpt_reply(port, mail_from):
    with SMTPConnection(port) as c:
        assert c.command("EHLO client.checks.test").code == 250
        assert c.command("MAIL FROM:<%s>" % mail_from).code == 250
        r = c.command("RCPT TO:<%s@example.test>" % TEST_USER1)
        c.command("QUIT")
        return r


def test_results_in_match_rules():
    """"spf RESULT" and "dnsbl" as match criteria: a rule with "dnsbl"
    makes the lists decide through the rules (here: defer), not at
    connect; "spf fail ... reject" refuses at RCPT."""
    dnsserver.require()
    rules = ('match from any dnsbl for domain "example.test" defer\n'
             'match from any spf fail for domain "example.test" reject\n')
    with dnsserver.DNSServer(zone("v=DKIM1; p="), port=PORT + 3) as dns:
        with daemon(dns, extra='dnsbl "bl.test"', rules=rules) as d:
            r = rcpt_reply(d.port, "alice@example.org")
            assert r.code == 451 and "4.7.1" in r.text, r
        with daemon(dns, rules=rules.split("\n", 1)[1]) as d:
            r = rcpt_reply(d.port, "bob@reject.test")
            assert r.code == 550 and "5.7.1" in r.text, r
            r = rcpt_reply(d.port, "alice@example.org")	# spf pass
            assert r.code == 250, r


def test_trusted_network_and_checks_switched_off():
    """A client in a "from src" network is trusted: no checks (even with
    "checks all-clients").  "no-checks dkim dmarc" leaves SPF alone."""
    dnsserver.require()
    reset_maildir(TEST_USER1)
    rules = 'match from src "127.0.0.1/32" for domain "example.test" ' \
            'action "local"\n'
    with dnsserver.DNSServer(zone("v=DKIM1; p="), port=PORT + 4) as dns:
        with daemon(dns, rules=rules) as d:
            m1 = unique_marker("trusted-net")
            assert send(d.port, "bob@reject.test",
                        message("bob@reject.test", m1)).code == 250
            assert authres(delivered(m1)) == []
        with daemon(dns, listen="checks all-clients no-checks dkim dmarc") \
                as d:
            m2 = unique_marker("spf-only")
            assert send(d.port, "bob@reject.test",
                        message("bob@reject.test", m2)).code == 250
            ar = authres(delivered(m2))
            assert len(ar) == 1 and "spf=fail" in ar[0] and \
                "dkim" not in ar[0] and "dmarc" not in ar[0], ar


def test_dkim_and_dmarc_in_match_rules():
    """Rules with dkim or dmarc decide at the end of data, for the whole
    message: a signature that fails is deferred (451), a DMARC failure
    under p=none rejected (550) by the rules."""
    dnsserver.require()
    dkim, pem, keytxt = dkimpy()
    rules = ('match from any dkim fail for any defer\n'
             'match from any dmarc fail for any reject\n')
    reset_maildir(TEST_USER1)
    with dnsserver.DNSServer(zone(keytxt), port=PORT + 1) as dns, \
            daemon(dns, rules=rules) as d:
        m1 = unique_marker("rule-dkim")
        msg = message("alice@example.org", m1)
        bad = dkim.sign(msg, b"sel", b"example.org", pem,
                        include_headers=[b"from", b"subject"]) + \
            msg.replace(b"body ", b"BODY ")
        r = send(d.port, "alice@example.org", bad)
        assert r.code == 451 and "4.7.1" in r.text, r
        r = send(d.port, "dave@none.test",
                 message("dave@none.test", unique_marker("rule-dmarc")))
        assert r.code == 550 and "5.7.1" in r.text and "policy" in r.text, r
        m3 = unique_marker("rule-pass")
        good = dkim.sign(message("alice@example.org", m3), b"sel",
                         b"example.org", pem,
                         include_headers=[b"from", b"subject"])
        assert send(d.port, "alice@example.org",
                    good + message("alice@example.org", m3)).code == 250
        delivered(m3)
