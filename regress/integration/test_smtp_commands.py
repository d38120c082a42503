"""
Every SMTP command and its reply codes (RFC 5321, enhanced status codes
of RFC 3463 on every reply), the ESMTP parameters of PIPELINING, SIZE,
8BITMIME, SMTPUTF8 and DSN, and the limits of issue 3: line lengths,
bare CR/LF, recipients, messages and sessions, timeouts, hop count, and
the address tricks that must never open a relay.
"""

import os
import smtplib
import subprocess
import time

import fixture
from fixture import (TEST_USER1, Daemon, SMTPConnection, poll, read_file,
                     smtp_dialog)
from test_smtp_common import (HELO, closed, dialog, ehlo_keywords, expect,
                               unique, wait_marker)

TIMEOUT = 60
RCPT1 = "%s@example.test" % TEST_USER1


def test_command_replies():
    with Daemon() as d, SMTPConnection(d.port) as c:
        assert c.greeting.code == 220
        r = dialog(c, [
            "HELP",					# 0
            "NOOP",					# 1
            "NOOP anything at all",			# 2
            "SEND FROM:<a@b.test>",			# 3
            "SOML FROM:<a@b.test>",			# 4
            "SAML FROM:<a@b.test>",			# 5
            "TURN",					# 6
            "XYZZY",					# 7
            "MAIL FROM:<a@client.test>",		# 8: before EHLO
            "EHLO " + HELO,				# 9
            "RCPT TO:<%s>" % RCPT1,			# 10: before MAIL
            "DATA",					# 11: before MAIL
            "MAIL <a@client.test>",			# 12: no FROM:
            "MAIL FROM:<a@client.test",		# 13: bad path
            "MAIL FROM:<a@client.test> FROB=1",	# 14: unknown param
            "MAIL FROM:<>",				# 15: null sender
            "MAIL FROM:<a@client.test>",		# 16: nested
            "DATA",					# 17: no RCPT yet
            "RCPT TO:<%s> FROB" % RCPT1,		# 18: unknown param
            "RCPT <%s>" % RCPT1,			# 19: no TO:
            "RCPT TO:<%s>" % RCPT1,			# 20
            "RSET now",				# 21: syntax
            "RSET",					# 22
            "DATA",					# 23: after RSET
            "HELO",					# 24: no name
            "EHLO bad..name",				# 25
            "QUIT",					# 26
        ])
        expect(r[0], 214, "2.0.0", "HELP")
        assert any("MAIL" in ln for ln in r[0].lines), r[0]
        expect(r[1], 250, "2.0.0", "NOOP")
        expect(r[2], 250, "2.0.0", "NOOP with text")
        for i in (3, 4, 5, 6):
            expect(r[i], 502, "5.5.1", "obsolete command")
        expect(r[7], 500, "5.5.2", "unknown command")
        expect(r[8], 503, "5.5.1", "MAIL before EHLO")
        assert r[9].code == 250, r[9]
        expect(r[10], 503, "5.5.1", "RCPT before MAIL")
        expect(r[11], 503, "5.5.1", "DATA before MAIL")
        expect(r[12], 501, "5.5.4", "MAIL without FROM:")
        assert r[13].code == 501, r[13]
        expect(r[14], 555, "5.5.4", "unknown MAIL parameter")
        expect(r[15], 250, "2.1.0", "MAIL FROM:<>")
        expect(r[16], 503, "5.5.1", "nested MAIL")
        expect(r[17], 503, "5.5.1", "DATA before RCPT")
        expect(r[18], 555, "5.5.4", "unknown RCPT parameter")
        expect(r[19], 501, "5.5.4", "RCPT without TO:")
        expect(r[20], 250, "2.1.5", "RCPT")
        expect(r[21], 501, "5.5.4", "RSET with argument")
        expect(r[22], 250, "2.0.0", "RSET")
        expect(r[23], 503, "5.5.1", "DATA after RSET")
        expect(r[24], 501, "5.5.4", "HELO without name")
        expect(r[25], 501, "5.5.4", "EHLO bad name")
        expect(r[26], 221, "2.0.0", "QUIT")
        assert closed(c)


def test_ehlo_extensions():
    with Daemon() as d, SMTPConnection(d.port) as c:
        r = c.command("EHLO " + HELO)
        assert r.code == 250, r
        kw = ehlo_keywords(r)
        for k in ("8BITMIME", "PIPELINING", "SIZE", "ENHANCEDSTATUSCODES",
                  "SMTPUTF8", "DSN", "CHUNKING", "HELP"):
            assert k in kw, "%s not in EHLO reply %s" % (k, r)
        assert kw["SIZE"] == "SIZE 10485760", kw["SIZE"]
        # a plain listener without tls/auth offers neither
        assert "STARTTLS" not in kw and "AUTH" not in kw, r
        # HELO: no parameters allowed afterwards (RFC 1869 6)
        r = dialog(c, ["HELO " + HELO,
                       "MAIL FROM:<a@client.test> SIZE=10",
                       "MAIL FROM:<a@client.test>"])
        assert r[0].code == 250 and len(r[0].lines) == 1, r[0]
        expect(r[1], 555, "5.5.4", "SIZE after HELO")
        expect(r[2], 250, "2.1.0", "MAIL after HELO")


def test_postmaster_accepted():
    """RCPT TO:<postmaster> (RFC 5321 4.5.1) even when no rule names the
    domain: it reaches root's alias, here phtest1."""
    conf_extra = ('table aliases { root = "%s", postmaster = "%s" }\n'
                  % (TEST_USER1, TEST_USER1))
    conf = fixture.DEFAULT_CONF.replace(
        'action "local" maildir "~/Maildir"',
        'action "local" maildir "~/Maildir" alias <aliases>')
    with Daemon(conf=conf, conf_extra=conf_extra) as d:
        r = smtp_dialog(d.port, ["EHLO " + HELO, "MAIL FROM:<a@client.test>",
                                 "RCPT TO:<postmaster>",
                                 "RCPT TO:<Postmaster>", "QUIT"])
        expect(r[3], 250, "2.1.5", "RCPT TO:<postmaster>")
        expect(r[4], 250, "2.1.5", "RCPT TO:<Postmaster>")


def test_size():
    with Daemon(conf_extra="smtp max-message-size 20k\n") as d, \
            SMTPConnection(d.port) as c:
        r = dialog(c, ["EHLO " + HELO,
                       "MAIL FROM:<a@client.test> SIZE=20481",
                       "MAIL FROM:<a@client.test> SIZE=abc",
                       "MAIL FROM:<a@client.test> SIZE=1000 SIZE=1000",
                       "MAIL FROM:<a@client.test> SIZE=1000",
                       "RCPT TO:<%s>" % RCPT1, "DATA"])
        expect(r[1], 552, "5.3.4", "declared SIZE over the limit")
        expect(r[2], 501, "5.5.4", "SIZE not a number")
        expect(r[3], 501, "5.5.4", "SIZE twice")
        expect(r[4], 250, "2.1.0", "SIZE under the limit")
        assert r[6].code == 354, r[6]
        line = b"x" * 70 + b"\r\n"
        c.send(b"Subject: big\r\n\r\n" + line * 400 + b".\r\n")
        expect(c.reply(), 552, "5.3.4", "real size over the limit")
        # the session goes on
        expect(c.command("NOOP"), 250, "2.0.0", "NOOP after 552")


def test_8bitmime_and_body():
    with Daemon() as d, SMTPConnection(d.port) as c:
        r = dialog(c, ["EHLO " + HELO,
                       "MAIL FROM:<a@client.test> BODY=BINARYMIME",
                       "MAIL FROM:<a@client.test> BODY=8BITMIME",
                       "RCPT TO:<%s>" % RCPT1, "DATA"])
        expect(r[1], 501, "5.5.4", "BODY=BINARYMIME")
        expect(r[2], 250, "2.1.0", "BODY=8BITMIME")
        mark = unique("8bit")
        body = ("Subject: %s\r\n\r\nGrüße aus Köln\r\n" % mark).encode()
        c.send(body + b".\r\n")
        expect(c.reply(), 250, "2.0.0", "end of data")
        data = wait_marker(TEST_USER1, mark)[0]
    assert "Grüße aus Köln".encode("utf-8") in data


def test_smtputf8():
    with Daemon() as d, SMTPConnection(d.port) as c:
        r = dialog(c, ["EHLO " + HELO,
                       "MAIL FROM:<jörg@client.test>",
                       "MAIL FROM:<a@client.test> SMTPUTF8=yes",
                       "MAIL FROM:<a@client.test>",
                       "RCPT TO:<jörg@example.test>",
                       "RSET",
                       "MAIL FROM:<jörg@client.test> SMTPUTF8",
                       "RCPT TO:<%s>" % RCPT1])
        expect(r[1], 553, "5.6.7", "UTF-8 sender without SMTPUTF8")
        expect(r[2], 501, "5.5.4", "SMTPUTF8 with a value")
        expect(r[4], 553, "5.6.7", "UTF-8 recipient without SMTPUTF8")
        expect(r[6], 250, "2.1.0", "UTF-8 sender with SMTPUTF8")
        expect(r[7], 250, "2.1.5", "RCPT")


def spool_envelopes(spool):
    out = []
    for dirpath, _, names in os.walk(spool):
        for n in names:
            p = os.path.join(dirpath, n)
            try:
                text = read_file(p).decode("utf-8", "replace")
            except OSError:
                continue
            if "\nrcpt:" in text or text.startswith("version:"):
                out.append(text)
    return out


def smtpctl(d, *args):
    return subprocess.run([fixture.binary("smtpctl"), "-s", d.socket_path]
                          + list(args), stdout=subprocess.PIPE,
                          stderr=subprocess.STDOUT, timeout=10)


def test_dsn_parameters():
    with Daemon() as d:
        with SMTPConnection(d.port) as c:
            r = dialog(c, [
                "EHLO " + HELO,
                "MAIL FROM:<a@client.test> RET=ALL",
                "MAIL FROM:<a@client.test> RET=FULL RET=HDRS",
                "MAIL FROM:<a@client.test> ENVID=" + "x" * 101,
                "MAIL FROM:<a@client.test> ENVID=bad+zz",
                "MAIL FROM:<a@client.test> RET=HDRS ENVID=QQ+2Bid1 "
                "SMTPUTF8 BODY=8BITMIME",
                "RCPT TO:<%s> NOTIFY=NEVER,SUCCESS" % RCPT1,
                "RCPT TO:<%s> NOTIFY=SOMETIMES" % RCPT1,
                "RCPT TO:<%s> ORCPT=rfc822" % RCPT1,
                "RCPT TO:<%s> NOTIFY=SUCCESS,SUCCESS" % RCPT1,
                "RCPT TO:<%s> NOTIFY=SUCCESS,DELAY "
                "ORCPT=rfc822;orig+40client.test" % RCPT1,
            ])
            expect(r[1], 501, "5.5.4", "RET=ALL")
            expect(r[2], 501, "5.5.4", "RET twice")
            expect(r[3], 501, "5.5.4", "ENVID too long")
            expect(r[4], 501, "5.5.4", "ENVID bad xtext")
            expect(r[5], 250, "2.1.0", "MAIL with DSN parameters")
            expect(r[6], 501, "5.5.4", "NOTIFY=NEVER,SUCCESS")
            expect(r[7], 501, "5.5.4", "NOTIFY=SOMETIMES")
            expect(r[8], 501, "5.5.4", "ORCPT without ;")
            expect(r[9], 501, "5.5.4", "NOTIFY twice the same")
            expect(r[10], 250, "2.1.5", "RCPT with DSN parameters")
            # keep it in the queue to look at its envelope
            p = smtpctl(d, "pause", "mda")
            assert p.returncode == 0, p.stdout
            r = c.command("DATA")
            assert r.code == 354, r
            mark = unique("dsn")
            c.send(b"Subject: " + mark.encode() + b"\r\n\r\nhello\r\n.\r\n")
            expect(c.reply(), 250, "2.0.0", "end of data")
        envs = poll(lambda: spool_envelopes(d.spool), 5)
        assert envs, "no envelope in the spool"
        text = envs[0]
        assert "envid: QQ+2Bid1" in text, text
        assert "orcpt: rfc822;orig+40client.test" in text, text
        flags = [ln for ln in text.splitlines() if ln.startswith("flags:")]
        assert flags, text
        value = int(flags[0].split(":", 1)[1].strip(), 16)
        # EF_SMTPUTF8 0x1, EF_8BITMIME 0x2, EF_DSN_RET_HDRS 0x20,
        # EF_NOTIFY_SUCCESS 0x200, EF_NOTIFY_DELAY 0x800
        for bit in (0x1, 0x2, 0x20, 0x200, 0x800):
            assert value & bit, "flags %#x lack %#x" % (value, bit)
        assert not value & 0x400, "NOTIFY=FAILURE not asked: %#x" % value
        smtpctl(d, "resume", "mda")
        wait_marker(TEST_USER1, mark)


def test_pipelining():
    """Everything in one write, two messages: replies in order, none
    lost across DATA (RFC 2920)."""
    mark = unique("pipe")
    with Daemon() as d, SMTPConnection(d.port) as c:
        assert c.command("EHLO " + HELO).code == 250
        batch = ("MAIL FROM:<a@client.test>\r\n"
                 "RCPT TO:<nosuchuser@example.test>\r\n"
                 "RCPT TO:<%s>\r\n"
                 "DATA\r\n"
                 "Subject: %s\r\n\r\nfirst\r\n.\r\n"
                 "MAIL FROM:<b@client.test>\r\n"
                 "RCPT TO:<%s>\r\n"
                 "DATA\r\n"
                 "Subject: %s\r\n\r\nsecond\r\n.\r\n"
                 "NOOP\r\n" % (RCPT1, mark, RCPT1, mark)).encode()
        c.send(batch)
        codes = [c.reply().code for _ in range(10)]
        assert codes == [250, 550, 250, 354, 250, 250, 250, 354, 250, 250], \
            codes
        wait_marker(TEST_USER1, mark, 2)


def test_pipelining_data_after_failed_rcpt():
    with Daemon() as d, SMTPConnection(d.port) as c:
        assert c.command("EHLO " + HELO).code == 250
        c.send(b"MAIL FROM:<a@client.test>\r\nRCPT TO:<nosuchuser@example.test>"
               b"\r\nDATA\r\nNOOP\r\n")
        r = [c.reply() for _ in range(4)]
        assert r[0].code == 250 and r[1].code == 550, r
        expect(r[2], 554, "5.5.1", "DATA without valid recipients")
        expect(r[3], 250, "2.0.0", "NOOP after DATA refused")


def test_line_limits():
    with Daemon() as d, SMTPConnection(d.port) as c:
        assert c.command("EHLO " + HELO).code == 250
        expect(c.command("NOOP " + "x" * 520), 500, "5.5.2",
               "command line over 512")
        expect(c.command("NOOP " + "x" * 500), 250, "2.0.0",
               "command line of 507")
        r = dialog(c, ["MAIL FROM:<a@client.test>", "RCPT TO:<%s>" % RCPT1,
                       "DATA"])
        assert r[2].code == 354, r
        c.send(b"Subject: long\r\n\r\n" + b"y" * 1001 + b"\r\n.\r\n")
        expect(c.reply(), 500, "5.5.2", "text line over 1000")
        expect(c.command("NOOP"), 250, "2.0.0", "NOOP after long line")


def test_bare_lf_in_command():
    with Daemon() as d, SMTPConnection(d.port) as c:
        c.send(b"EHLO tester.example.test\n")
        expect(c.reply(), 521, "5.5.2", "bare LF in a command")
        assert closed(c)
    with Daemon() as d, SMTPConnection(d.port) as c:
        c.send(b"NOOP\rNOOP\r\n")
        expect(c.reply(), 521, "5.5.2", "bare CR in a command")
        assert closed(c)


def test_nul_in_command():
    with Daemon() as d, SMTPConnection(d.port) as c:
        expect(c.command(b"NOOP a\0b\r\n"), 500, "5.5.2", "NUL in a command")
        expect(c.command(b"\0\r\n"), 500, "5.5.2", "a lone NUL")
        expect(c.command("NOOP"), 250, "2.0.0", "NOOP after NUL")


def test_bare_cr_in_data():
    with Daemon() as d, SMTPConnection(d.port) as c:
        r = dialog(c, ["EHLO " + HELO, "MAIL FROM:<a@client.test>",
                       "RCPT TO:<%s>" % RCPT1, "DATA"])
        assert r[3].code == 354
        c.send(b"Subject: x\r\n\r\nsmuggle\r.\rMAIL FROM:<e@vil>\r\n.\r\n")
        expect(c.reply(), 521, "5.5.2", "bare CR in data")
        assert closed(c)


def test_max_rcpt_and_messages():
    conf = "smtp max-rcpt 2\nsmtp max-messages 1\n"
    with Daemon(conf_extra=conf) as d, SMTPConnection(d.port) as c:
        r = dialog(c, ["EHLO " + HELO, "MAIL FROM:<a@client.test>",
                       "RCPT TO:<%s>" % RCPT1, "RCPT TO:<%s>" % RCPT1,
                       "RCPT TO:<%s>" % RCPT1, "DATA"])
        expect(r[4], 452, "4.5.3", "third recipient")
        assert r[5].code == 354
        c.send(b"Subject: x\r\n\r\nx\r\n.\r\n")
        expect(c.reply(), 250, "2.0.0", "message")
        expect(c.command("MAIL FROM:<a@client.test>"), 421, "4.7.0",
               "second message")
        assert closed(c)


def test_session_limits():
    conf = ("smtp workers 1\nsmtp max-sessions-per-ip 2\n")
    conf_text = fixture.DEFAULT_CONF.replace("smtp workers 2\n", "")
    with Daemon(conf=conf_text, conf_extra=conf) as d:
        a = SMTPConnection(d.port)
        b = SMTPConnection(d.port)
        try:
            assert a.greeting.code == 220 and b.greeting.code == 220
            with SMTPConnection(d.port) as c:
                expect(c.greeting, 421, "4.7.0", "third from one address")
                assert closed(c)
        finally:
            a.close()
            b.close()
        # the slots come back
        time.sleep(0.5)
        with SMTPConnection(d.port) as c:
            assert c.greeting.code == 220, c.greeting
    conf = "smtp workers 1\nsmtp max-sessions 2\n"
    with Daemon(conf=conf_text, conf_extra=conf) as d:
        # the fixture's banner probe may still be closing: wait for it
        time.sleep(0.5)
        a = SMTPConnection(d.port)
        b = SMTPConnection(d.port)
        try:
            with SMTPConnection(d.port) as c:
                expect(c.greeting, 421, "4.7.0", "over max-sessions")
        finally:
            a.close()
            b.close()


def test_timeout():
    with Daemon(conf_extra="smtp timeout 2s\n") as d, \
            SMTPConnection(d.port) as c:
        t0 = time.monotonic()
        expect(c.reply(), 421, "4.4.2", "idle timeout")
        assert time.monotonic() - t0 < 10
        assert closed(c)


def test_no_relay_tricks():
    """Percent hack, source route, bang path, quoted local part: none
    reaches another domain, and nothing is relayed."""
    conf_extra = ('action "relay" relay\n'
                  'match from src 192.0.2.0/24 for any action "relay"\n')
    with Daemon(conf_extra=conf_extra) as d:
        tricks = [
            "RCPT TO:<user%remote.test@example.test>",
            "RCPT TO:<@example.test:user@remote.test>",
            "RCPT TO:<remote.test!user@example.test>",
            'RCPT TO:<"user@remote.test"@example.test>',
            'RCPT TO:<"user%remote.test"@example.test>',
            "RCPT TO:<user@remote.test>",
            "RCPT TO:<user@[192.0.2.1]>",
        ]
        r = smtp_dialog(d.port, ["EHLO " + HELO, "MAIL FROM:<a@client.test>"]
                        + tricks + ["QUIT"])
        assert len(r) == len(tricks) + 4, r
        for item, reply in zip(tricks, r[3:]):
            assert reply.code >= 500, "%s: %s" % (item, reply)
            expect(reply, reply.code, None, item)
        # and nothing was queued
        assert "status=sent" not in d.log() and "relay=" not in d.log()


def test_loop_detection():
    with Daemon() as d, SMTPConnection(d.port) as c:
        hops = b"".join(b"Received: from h%d.test by h%d.test; "
                        b"Mon, 1 Jan 2024 00:00:00 +0000\r\n" % (i, i)
                        for i in range(100))
        r = dialog(c, ["EHLO " + HELO, "MAIL FROM:<a@client.test>",
                       "RCPT TO:<%s>" % RCPT1, "DATA"])
        assert r[3].code == 354
        c.send(hops + b"Subject: loop\r\n\r\nx\r\n.\r\n")
        expect(c.reply(), 554, "5.4.6", "100 Received fields")
        r = dialog(c, ["MAIL FROM:<a@client.test>", "RCPT TO:<%s>" % RCPT1,
                       "DATA"])
        assert r[2].code == 354
        mark = unique("hops")
        c.send(hops[:len(hops) // 2] + b"Subject: " + mark.encode() +
               b"\r\n\r\nx\r\n.\r\n")
        expect(c.reply(), 250, "2.0.0", "50 Received fields")
        # delivered while the daemon still runs
        wait_marker(TEST_USER1, mark)


def test_vrfy_expn_untrusted():
    """A client no rule trusts learns nothing: 252."""
    with Daemon() as d:
        r = smtp_dialog(d.port, ["EHLO " + HELO, "VRFY %s" % TEST_USER1,
                                 "EXPN %s" % TEST_USER1, "VRFY", "QUIT"])
        expect(r[2], 252, "2.5.0", "VRFY untrusted")
        expect(r[3], 252, "2.5.0", "EXPN untrusted")
        expect(r[4], 501, "5.5.4", "VRFY without argument")


def test_vrfy_expn_trusted():
    conf_extra = ('match from src 127.0.0.0/8 for domain "trusted.test" '
                  'action "local"\n')
    with Daemon(conf_extra=conf_extra) as d:
        r = smtp_dialog(d.port, [
            "EHLO " + HELO,
            "VRFY %s" % RCPT1,
            "VRFY <%s>" % RCPT1,
            "VRFY nosuchuser@example.test",
            "EXPN %s" % TEST_USER1,
            "VRFY %s" % TEST_USER1,
            "VRFY bad<<addr",
            "QUIT"])
        expect(r[2], 250, "2.1.5", "VRFY user@domain")
        assert TEST_USER1 in r[2].text, r[2]
        expect(r[3], 250, "2.1.5", "VRFY <user@domain>")
        expect(r[4], 550, "5.1.1", "VRFY unknown")
        expect(r[5], 250, "2.1.5", "EXPN bare user")
        expect(r[6], 250, "2.1.5", "VRFY bare user")
        expect(r[7], 501, None, "VRFY bad syntax")


def test_vrfy_expn_disabled():
    with Daemon(conf_extra="smtp vrfy no\nsmtp expn no\n") as d:
        r = smtp_dialog(d.port, ["EHLO " + HELO, "VRFY %s" % TEST_USER1,
                                 "EXPN %s" % TEST_USER1, "QUIT"])
        expect(r[2], 502, "5.5.1", "VRFY off")
        expect(r[3], 502, "5.5.1", "EXPN off")


def test_etrn_syntax():
    with Daemon() as d:
        r = smtp_dialog(d.port, ["ETRN example.test", "EHLO " + HELO,
                                 "ETRN", "QUIT"])
        expect(r[1], 503, "5.5.1", "ETRN before EHLO")
        expect(r[3], 501, "5.5.4", "ETRN without node")


def test_smtplib_full_session():
    """A stock client: smtplib with SIZE, 8BITMIME and DSN options."""
    with Daemon() as d:
        s = smtplib.SMTP("127.0.0.1", d.port, local_hostname=HELO,
                         timeout=20)
        try:
            s.ehlo()
            assert s.has_extn("dsn") and s.has_extn("pipelining")
            mark = unique("smtplib")
            refused = s.sendmail("a@client.test", [RCPT1],
                                 b"Subject: " + mark.encode() +
                                 b"\r\n\r\nhello\r\n",
                                 mail_options=["BODY=8BITMIME", "RET=HDRS",
                                               "ENVID=abc"],
                                 rcpt_options=["NOTIFY=FAILURE"])
            assert refused == {}
            code, _ = s.verify("postmaster")
            assert code == 252, code
        finally:
            s.quit()
        data = wait_marker(TEST_USER1, mark)[0]
    assert b"by " in data and b"with ESMTP id" in data


def test_swaks_pipelining():
    mark = unique("swaks-pipe")
    with Daemon() as d:
        r = subprocess.run(["swaks", "--server", "127.0.0.1", "--port",
                            str(d.port), "--from", "a@client.test", "--to",
                            RCPT1, "--pipeline", "--helo", HELO,
                            "--header", "Subject: " + mark],
                           stdout=subprocess.PIPE, stderr=subprocess.STDOUT,
                           timeout=30)
        out = r.stdout.decode("utf-8", "replace")
        assert r.returncode == 0, out
        assert "queued as" in out, out
        wait_marker(TEST_USER1, mark)


def test_session_limits_across_workers():
    """The kernel spreads one client's connections over all workers; the
    limits hold for the server as a whole."""
    conf = "smtp workers 4\nsmtp max-sessions-per-ip 3\n"
    conf_text = fixture.DEFAULT_CONF.replace("smtp workers 2\n", "")
    with Daemon(conf=conf_text, conf_extra=conf) as d:
        time.sleep(0.5)		# the fixture's banner probe is gone
        conns = [SMTPConnection(d.port) for _ in range(8)]
        try:
            codes = sorted(c.greeting.code for c in conns)
            assert codes == [220] * 3 + [421] * 5, codes
        finally:
            for c in conns:
                c.close()
        time.sleep(0.5)
        with SMTPConnection(d.port) as c:
            assert c.greeting.code == 220, c.greeting
