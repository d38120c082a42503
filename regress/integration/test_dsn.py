"""
test_dsn.py -- delivery status notifications the queue writes (issue 15).

RFC 3461 asks an MTA to report a recipient's fate when the sender's
NOTIFY says so: "delivered" for a final delivery here, "relayed" when the
next hop does not offer DSN (it got no NOTIFY, so nobody else will
report), nothing of ours when the next hop took NOTIFY and ORCPT, and
"failed" for failures -- one DSN for the recipients of a message that
fail together, with RFC 3464's per-recipient fields (Final-Recipient,
Original-Recipient, Action, Status, Remote-MTA, Diagnostic-Code).

Every DSN goes to the original sender, a local Maildir user of its own
here, and is read back from that Maildir.  The next hops are Postfix's
smtp-sink: as it comes (it offers DSN), with -e (no ESMTP at all, so no
DSN: the mta falls back to HELO), and with "-f ." (the end of data is
refused 554).
"""

import re
import time

import fixture
from fixture import (Daemon, ensure_test_user, maildir_files, poll,
                     reset_maildir, smtp_dialog, queue_id, unique_marker)
from test_mta_relay import Sink, wait_log

TIMEOUT = 90
# a user of its own: other test runs reset phtest1's Maildir
USER = "phdsn"
SENDER = "%s@example.test" % USER

CONF = """\
spool "@TMP@/spool"
socket "@TMP@/smtpd.sock"
smtp workers 1
queue retry-remote 1s
listen on 127.0.0.1 port @PORT@
action "local" maildir "~/Maildir"
action "relay" relay host "smtp://127.0.0.1:%(port)d"
match from any for domain "example.test" action "local"
match from local for any action "relay"
"""


def conf(port=9):
    return CONF % {"port": port}


def setup():
    ensure_test_user(USER)
    reset_maildir(USER)


def send(port, rcpts, marker, rcpt_params="", sender=SENDER):
    """One transaction from SENDER; returns the queue id."""
    body = ("Subject: %s\r\nMessage-ID: <%s@client.test>\r\n\r\n"
            "dsn test body\r\n.\r\n" % (marker, marker)).encode()
    items = ["EHLO client.test", "MAIL FROM:<%s>" % sender]
    items += ["RCPT TO:<%s>%s" % (r, rcpt_params) for r in rcpts]
    items += ["DATA", body, "QUIT"]
    replies = smtp_dialog(port, items)
    codes = [r.code for r in replies]
    assert codes[:3] == [220, 250, 250], replies
    assert all(c == 250 for c in codes[3:3 + len(rcpts)]), replies
    assert codes[3 + len(rcpts)] == 354, replies
    return queue_id(replies[4 + len(rcpts)])


def read(path):
    with open(path, "rb") as f:
        return f.read()


def dsns(marker):
    """The DSNs in USER's Maildir that report on the message marker."""
    out = []
    for path in maildir_files(USER):
        data = read(path)
        if b"multipart/report" in data and marker.encode() in data:
            out.append(data.decode("utf-8", "replace"))
    return out


def wait_dsn(marker, timeout=30):
    got = poll(lambda: dsns(marker), timeout)
    assert got, "no DSN for %s in ~%s/Maildir/new within %ds" % (
        marker, USER, timeout)
    return got


def status_part(dsn):
    """The message/delivery-status part: the per-message fields, then a
    list of per-recipient field dicts."""
    m = re.search(r'\n\tboundary="([^"\n]+)"\n', dsn)
    assert m, "no boundary in the DSN:\n%s" % dsn[:1500]
    boundary = m.group(1)
    parts = dsn.split("\n--%s" % boundary)
    st = [p for p in parts
          if p.startswith("\nContent-Type: message/delivery-status\n")]
    assert len(st) == 1, "no delivery-status part:\n%s" % dsn[:3000]
    blocks = [b for b in st[0].split("\n\n")[1:] if b.strip()]
    fields = []
    for b in blocks:
        d = {}
        for line in b.strip("\n").split("\n"):
            k, _, v = line.partition(": ")
            d[k] = v
        fields.append(d)
    return fields[0], fields[1:]


def assert_report(dsn):
    assert "\nReturn-Path: <>\n" in "\n" + dsn, dsn[:400]
    assert re.search(r"\nContent-Type: multipart/report; "
                     r"report-type=delivery-status;\n", dsn), dsn[:1200]


def test_success_dsn_local():
    """NOTIFY=SUCCESS on a local delivery: the sender gets a
    multipart/report with Action: delivered, the Final-Recipient, the
    Original-Recipient from ORCPT (xtext decoded) and the original's
    header; nothing is logged about a DSN that could not be written."""
    setup()
    marker = unique_marker("dsn-ok")
    with Daemon(conf=conf()) as d:
        qid = send(d.port, [SENDER], marker,
                   " NOTIFY=SUCCESS ORCPT=rfc822;orig+2Bx+40example.test")
        got = wait_dsn(marker)
        time.sleep(1)
        assert len(dsns(marker)) == 1, "more than one DSN"
        dsn = got[0]
        assert_report(dsn)
        msg, rcpts = status_part(dsn)
        assert msg.get("Reporting-MTA", "").startswith("dns; "), msg
        assert len(rcpts) == 1, rcpts
        r = rcpts[0]
        assert r.get("Final-Recipient") == "rfc822; %s" % SENDER, r
        assert r.get("Original-Recipient") == \
            "rfc822;orig+x@example.test", r
        assert r.get("Action") == "delivered", r
        assert r.get("Status", "").startswith("2."), r
        assert "Remote-MTA" not in r, r
        assert "Content-Type: text/rfc822-headers" in dsn, dsn
        assert "Subject: %s" % marker in dsn, dsn
        assert "dsn test body" not in dsn, "RET=HDRS: no body"
        assert "writing DSN" not in d.log(), d.log_tail()
        assert re.search(r"DSN \(delivered\) for %s" % qid, d.log()), \
            d.log_tail()


def test_relayed_dsn_next_hop_without_dsn():
    """A next hop that does not offer DSN (smtp-sink -e: no ESMTP)
    cannot be asked to report the success: the sender gets our "relayed"
    DSN, naming the next hop (Remote-MTA: dns;) and its reply
    (Diagnostic-Code: smtp; 250 ...)."""
    setup()
    marker = unique_marker("dsn-relayed")
    with Sink(extra=["-e"]) as sink, \
            Daemon(conf=conf(sink.port)) as d:
        send(d.port, ["someone@remote.test"], marker,
             " NOTIFY=SUCCESS,FAILURE ORCPT=rfc822;someone+40remote.test")
        wait_log(d, r"to=<someone@remote.test>.*status=sent")
        dump = poll(lambda: [read(p) for p in sink.messages()
                             if marker.encode() in read(p)], 20)
        assert dump, "the message did not reach smtp-sink"
        assert b"NOTIFY=" not in dump[0], dump[0][:400]
        dsn = wait_dsn(marker)[0]
        assert_report(dsn)
        _, rcpts = status_part(dsn)
        assert len(rcpts) == 1, rcpts
        r = rcpts[0]
        assert r.get("Action") == "relayed", r
        assert r.get("Final-Recipient") == "rfc822; someone@remote.test", r
        assert r.get("Original-Recipient") == \
            "rfc822;someone@remote.test", r
        assert r.get("Remote-MTA") == "dns; 127.0.0.1", r
        assert r.get("Diagnostic-Code", "").startswith("smtp; 250 "), r


def test_no_dsn_when_next_hop_takes_notify():
    """A next hop that offers DSN gets NOTIFY and ORCPT (smtp-sink's dump
    shows them) and reports the success itself: we make no DSN."""
    setup()
    marker = unique_marker("dsn-passed")
    with Sink() as sink, Daemon(conf=conf(sink.port)) as d:
        qid = send(d.port, ["other@remote.test"], marker,
                   " NOTIFY=SUCCESS ORCPT=rfc822;other+40remote.test")
        wait_log(d, r"to=<other@remote.test>.*status=sent")
        dump = poll(lambda: [read(p) for p in sink.messages()
                             if marker.encode() in read(p)], 20)
        assert dump, "the message did not reach smtp-sink"
        args = re.search(rb"\nX-Rcpt-Args: ([^\n]*)\n", b"\n" + dump[0])
        assert args, dump[0][:400]
        assert b"NOTIFY=SUCCESS" in args.group(1), args.group(1)
        assert b"ORCPT=rfc822;other+40remote.test" in args.group(1), \
            args.group(1)
        time.sleep(2)
        assert not dsns(marker), "a DSN of ours, though the next hop " \
            "reports"
        assert not re.search(r"DSN.*%s|writing DSN" % qid, d.log()), \
            d.log_tail()


def test_one_dsn_for_recipients_failing_together():
    """Two recipients refused together (smtp-sink answers the end of data
    554): one DSN lists both, each with Action: failed, Status: 5.7.1,
    Remote-MTA: dns; 127.0.0.1 and Diagnostic-Code: smtp; 554 5.7.1 ...
    as RFC 3464 shows."""
    setup()
    marker = unique_marker("dsn-two")
    rcpts = ["first@remote.test", "second@remote.test"]
    with Sink(extra=["-f", ".", "-B", "554 5.7.1 Refused by the test"]) \
            as sink, Daemon(conf=conf(sink.port)) as d:
        send(d.port, rcpts, marker)
        wait_log(d, r"@remote.test>.*status=bounced", count=2)
        wait_dsn(marker)
        time.sleep(2)
        got = dsns(marker)
        assert len(got) == 1, "%d DSNs for one message" % len(got)
        dsn = got[0]
        assert_report(dsn)
        _, fields = status_part(dsn)
        assert sorted(f.get("Final-Recipient") for f in fields) == \
            ["rfc822; %s" % r for r in rcpts], fields
        for f in fields:
            assert f.get("Action") == "failed", f
            assert f.get("Status") == "5.7.1", f
            assert f.get("Remote-MTA") == "dns; 127.0.0.1", f
            assert f.get("Diagnostic-Code") == \
                "smtp; 554 5.7.1 Refused by the test", f
        for r in rcpts:
            assert "<%s>: " % r in dsn, dsn[:1500]
