"""
CHUNKING / BDAT (RFC 3030): chunks, BDAT LAST, BDAT 0 LAST, pipelined
with the other commands, chunks read and dropped after an error, the
spool stores LF line ends as for DATA, and bare CR or LF refused.
"""

from fixture import TEST_USER1, Daemon, SMTPConnection
from test_smtp_common import (HELO, closed, dialog, expect, unique,
                              wait_marker)

TIMEOUT = 60
RCPT1 = "%s@example.test" % TEST_USER1


def bdat(conn, data, last=False):
    conn.send(b"BDAT %d%s\r\n" % (len(data), b" LAST" if last else b"")
              + data)
    return conn.reply()


def start(conn):
    r = dialog(conn, ["EHLO " + HELO, "MAIL FROM:<a@client.test>",
                      "RCPT TO:<%s>" % RCPT1])
    assert [x.code for x in r] == [250, 250, 250], r


def test_bdat_chunks():
    mark = unique("bdat")
    with Daemon() as d, SMTPConnection(d.port) as c:
        start(c)
        part1 = b"Subject: " + mark.encode() + b"\r\n\r\nline one\r\nli"
        part2 = b"ne two\r\n.dot stays\r\n"
        expect(bdat(c, part1), 250, "2.0.0", "first chunk")
        expect(c.command("DATA"), 503, "5.5.1", "DATA after BDAT")
        expect(bdat(c, part2), 250, "2.0.0", "second chunk")
        r = bdat(c, b"", last=True)
        expect(r, 250, "2.0.0", "BDAT 0 LAST")
        assert "queued as" in r.text, r
        data = wait_marker(TEST_USER1, mark)[0]
    body = data.split(b"\n\n", 1)[1]
    # LF line ends in the mailbox, no dot-unstuffing for BDAT
    assert body == b"line one\nline two\n.dot stays\n", body


def test_bdat_pipelined_with_commands():
    mark = unique("bdat-pipe")
    with Daemon() as d, SMTPConnection(d.port) as c:
        assert c.command("EHLO " + HELO).code == 250
        msg = b"Subject: " + mark.encode() + b"\r\n\r\nbody\r\n"
        c.send(b"MAIL FROM:<a@client.test>\r\n"
               b"RCPT TO:<nosuchuser@example.test>\r\n"
               b"RCPT TO:<" + RCPT1.encode() + b">\r\n"
               b"BDAT %d LAST\r\n" % len(msg) + msg +
               b"MAIL FROM:<b@client.test>\r\n"
               b"RCPT TO:<" + RCPT1.encode() + b">\r\n"
               b"BDAT 5\r\nSubje"
               b"BDAT %d LAST\r\n" % (len(msg) - 5) + msg[5:] +
               b"NOOP\r\n")
        codes = [c.reply().code for _ in range(9)]
        assert codes == [250, 550, 250, 250, 250, 250, 250, 250, 250], codes
        wait_marker(TEST_USER1, mark, 2)


def test_bdat_without_recipients_is_consumed():
    with Daemon() as d, SMTPConnection(d.port) as c:
        assert c.command("EHLO " + HELO).code == 250
        # no MAIL: the chunk (which looks like commands) is skipped
        expect(bdat(c, b"MAIL FROM:<x@evil.test>\r\n"), 503, "5.5.1",
               "BDAT without MAIL")
        r = dialog(c, ["MAIL FROM:<a@client.test>",
                       "RCPT TO:<nosuchuser@example.test>"])
        assert r[1].code == 550
        expect(bdat(c, b"RSET\r\n", last=True), 554, "5.5.1",
               "BDAT without valid recipients")
        expect(c.command("NOOP"), 250, "2.0.0", "in sync after the chunks")


def test_bdat_bare_lf_refused():
    with Daemon() as d, SMTPConnection(d.port) as c:
        start(c)
        expect(bdat(c, b"Subject: x\r\n\r\nbare\nlf\r\n", last=True), 554,
               "5.6.0", "bare LF in BDAT")
        # the transaction is gone, the session is not
        expect(c.command("RCPT TO:<%s>" % RCPT1), 503, "5.5.1",
               "RCPT after the refused message")
        start_again = dialog(c, ["MAIL FROM:<a@client.test>",
                                 "RCPT TO:<%s>" % RCPT1])
        assert [x.code for x in start_again] == [250, 250]
        expect(bdat(c, b"Subject: x\r\n\r\nbare\rcr\r\n", last=True), 554,
               "5.6.0", "bare CR in BDAT")


def test_bdat_too_big():
    with Daemon(conf_extra="smtp max-message-size 10k\n") as d, \
            SMTPConnection(d.port) as c:
        start(c)
        expect(bdat(c, (b"z" * 78 + b"\r\n") * 200, last=True), 552,
               "5.3.4", "BDAT over the size limit")
        expect(c.command("NOOP"), 250, "2.0.0", "NOOP after 552")


def test_bdat_syntax():
    with Daemon() as d, SMTPConnection(d.port) as c:
        start(c)
        expect(c.command("BDAT ten"), 501, "5.5.4", "BDAT without a size")
        assert closed(c)
