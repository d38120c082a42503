"""
test_requiretls.py -- REQUIRETLS and "TLS-Required: No" (RFC 8689) end to
end, with two real daemons and two fake peers on loopback:

    client --STARTTLS--> A (sender) --tls verify--> B (receiver)
                           |--tls verify--> sink "norq": a certificate
                           |      A trusts, but no REQUIRETLS
                           |--tls verify--> sink "bad": a self-signed
                                  certificate A cannot verify

A and B both listen with STARTTLS and a certificate from a test CA that
A's mta trusts (SSL_CERT_FILE).  Checked: REQUIRETLS is offered only
over TLS and asked for only there (530 5.7.10 in the clear); a
REQUIRETLS message reaches B with REQUIRETLS on its MAIL FROM (B logs
requiretls=yes); to a peer without REQUIRETLS (5.7.30) or whose
certificate does not verify (5.7.10) it is bounced at once, nothing
sent, and the DSN leaves the original out (section 5); a message with
"TLS-Required: No" goes to the peer whose certificate does not verify,
where ordinary mail waits (4.7.5).  One start of each daemon for all.
"""

import smtplib
import ssl

import fixture
from fixture import TEST_USER1, Daemon, unique_marker
from test_mta_relay import FakeSMTP, wait_log
from test_mta_tls import make_ca_and_cert, make_cert
from test_smtp_common import wait_marker

TIMEOUT = 60

PKI = 'pki mx.test cert "%s"\npki mx.test key "%s"\n'

CONF_B = """\
spool "@TMP@/spool"
socket "@TMP@/smtpd.sock"
smtp workers 1
listen on 127.0.0.1 port @PORT@ tls pki mx.test
action "local" maildir "~/Maildir"
match from any for domain "rt.test" action "local"
"""

CONF_A = """\
spool "@TMP@/spool"
socket "@TMP@/smtpd.sock"
smtp workers 1
queue retry-remote 1s
listen on 127.0.0.1 port @PORT@ tls pki mx.test
action "local" maildir "~/Maildir"
action "to_b" relay host "smtp://127.0.0.1:%(b)d" tls verify
action "to_norq" relay host "smtp://127.0.0.1:%(norq)d" tls verify
action "to_bad" relay host "smtp://127.0.0.1:%(bad)d" tls verify
match from any for domain "example.test" action "local"
match from local for domain "rt.test" action "to_b"
match from local for domain "norq.test" action "to_norq"
match from local for domain "bad.test" action "to_bad"
"""


def client_ctx():
    ctx = ssl.create_default_context()
    ctx.check_hostname = False
    ctx.verify_mode = ssl.CERT_NONE
    return ctx


def submit(port, rcpt, body, requiretls=True):
    """One message over STARTTLS; returns the queue id."""
    with smtplib.SMTP("127.0.0.1", port, timeout=30) as c:
        c.ehlo("client.test")
        c.starttls(context=client_ctx())
        c.ehlo("client.test")
        opts = ["REQUIRETLS"] if requiretls else []
        c.mail("%s@example.test" % TEST_USER1, opts)
        code, _ = c.rcpt(rcpt)
        assert code == 250, code
        code, reply = c.data(body)
        assert code == 250, (code, reply)
        return reply.decode().split()[-1]


def check_server_side(port):
    """EHLO offers REQUIRETLS only over TLS; MAIL asks for it only there."""
    with smtplib.SMTP("127.0.0.1", port, timeout=30) as c:
        c.ehlo("client.test")
        assert c.has_extn("starttls"), c.esmtp_features
        assert not c.has_extn("requiretls"), c.esmtp_features
        code, msg = c.docmd("MAIL FROM:<a@client.test> REQUIRETLS")
        assert code == 530 and msg.startswith(b"5.7.10 "), (code, msg)
        code, msg = c.docmd("MAIL FROM:<a@client.test> REQUIRETLS=YES")
        assert code == 501, (code, msg)
        c.starttls(context=client_ctx())
        c.ehlo("client.test")
        assert c.has_extn("requiretls"), c.esmtp_features
        code, msg = c.docmd("MAIL FROM:<a@client.test> REQUIRETLS")
        assert code == 250, (code, msg)
        c.rset()


def test_requiretls_end_to_end():
    ca, cert, key = make_ca_and_cert("DNS:mx.test,IP:127.0.0.1")
    pki = PKI % (cert, key)
    with FakeSMTP(cert=(cert, key)) as norq, \
            FakeSMTP(cert=make_cert()) as bad, \
            Daemon(conf=pki + CONF_B, name="requiretls-B") as b, \
            Daemon(conf=pki + CONF_A % {"b": b.port, "norq": norq.port,
                                        "bad": bad.port},
                   env={"SSL_CERT_FILE": ca}, name="requiretls-A") as a:
        check_server_side(a.port)

        # verified, and B offers REQUIRETLS: delivered with it
        m_ok = unique_marker("rtls-ok")
        submit(a.port, "%s@rt.test" % TEST_USER1,
               "Subject: %s\r\n\r\nsecret\r\n" % m_ok)
        # ordinary mail to the unverifiable peer waits ...
        m_wait = unique_marker("rtls-wait")
        submit(a.port, "w@bad.test", "Subject: %s\r\n\r\nx\r\n" % m_wait,
               requiretls=False)
        # ... unless it says TLS-Required: No (folded, any case)
        m_opt = unique_marker("rtls-optional")
        submit(a.port, "o@bad.test", "Subject: %s\r\nTLS-Required:\r\n"
               " no\r\n\r\nnot secret\r\n" % m_opt, requiretls=False)
        # REQUIRETLS to a verified peer without it: 5.7.30, bounced
        m_norq = unique_marker("rtls-norq")
        q_norq = submit(a.port, "n@norq.test",
                        "Subject: %s\r\n\r\nsecret\r\n" % m_norq)
        # REQUIRETLS to a peer that does not verify: 5.7.10, bounced
        m_bad = unique_marker("rtls-bad")
        q_bad = submit(a.port, "b@bad.test",
                       "Subject: %s\r\n\r\nsecret\r\n" % m_bad)

        wait_log(a, r"to=<%s@rt.test>.*status=sent" % TEST_USER1,
                 timeout=20)
        wait_log(b, r"from=<%s@example.test>.*requiretls=yes" % TEST_USER1,
                 timeout=20)
        wait_marker(TEST_USER1, m_ok)
        wait_log(a, r"to=<o@bad.test>.*status=sent", timeout=20)
        wait_log(a, r"to=<w@bad.test>.*dsn=4\.7\.5, status=deferred",
                 timeout=20)
        wait_log(a, r"to=<n@norq.test>.*dsn=5\.7\.30, status=bounced.*"
                 r"REQUIRETLS support required", timeout=20)
        wait_log(a, r"to=<b@bad.test>.*dsn=5\.7\.10, status=bounced",
                 timeout=20)

        # nothing of the REQUIRETLS mail went to the sinks
        assert norq.transactions() == [], norq.transactions()
        sent = bad.transactions()
        assert len(sent) == 1 and m_opt.encode() in sent[0]["data"], sent
        assert "REQUIRETLS" not in sent[0]["mail"], sent[0]["mail"]

        # the DSNs: the status, and nothing of the original
        for qid, marker, status in ((q_norq, m_norq, b"5.7.30"),
                                    (q_bad, m_bad, b"5.7.10")):
            dsn = wait_marker(TEST_USER1, "X-Posthaste-Queue-ID: " + qid)
            assert len(dsn) == 1, dsn
            assert b"Status: " + status in dsn[0], dsn[0]
            assert marker.encode() not in dsn[0], dsn[0]
            assert b"secret" not in dsn[0], dsn[0]
            assert b"message/rfc822" not in dsn[0], dsn[0]
