"""
test_queue_tools.py -- the queue tools admins reach for (issue 22), on a
queue the test fills: smtpctl show qshape (age by destination or sender
domain, as Postfix's qshape), show message -e/-h (the envelopes and the
header, as postcat -q), hold and release by sender pattern, schedule
domain (a flush: only that domain's mail is tried now), and remove by
recipient or sender pattern.

One daemon for the module (started by the first test, stopped by
teardown_module).  Mail for flush.test, dead.test and other.test is
relayed to ports on loopback: nobody listens on 15820
(dead.test, other.test), and a scripted server (FakeSMTP,
test_mta_relay.py) on 15821 (flush.test) answers 451 to RCPT until the
flush test lets it take the mail.  Each envelope is deferred after its
first try, and the next is an hour away (queue retry-remote 1h), so any
later try is one smtpctl asked for.
"""

import re

import fixture
from fixture import (TEST_USER2, Daemon, SMTPConnection, poll,
                     unique_marker)
from test_mta_relay import FakeSMTP

TIMEOUT = 90
DEAD_PORT = 15820
FLUSH_PORT = 15821

CONF = """\
spool "@TMP@/spool"
socket "@TMP@/smtpd.sock"
smtp workers 1
queue retry-remote 1h
listen on 127.0.0.1 port @PORT@
action "flush" relay host "smtp://127.0.0.1:%d"
action "dead" relay host "smtp://127.0.0.1:%d"
match from local for domain "flush.test" action "flush"
match from local for domain "dead.test" action "dead"
match from local for domain "other.test" action "dead"
""" % (FLUSH_PORT, DEAD_PORT)

_daemon = None
_sink = None
_msgs = {}
_accept = []	# non-empty: the sink takes the mail


ctl = fixture.smtpctl
queue_json = fixture.queue_json


def by_rcpt(d):
    return {e["recipient"]: e for e in queue_json(d)}


def send(d, sender, rcpts, marker):
    """One message; its queue id (the message's, 8 hex digits)."""
    with SMTPConnection(d.port) as c:
        c.command("EHLO tools.test")
        assert c.command("MAIL FROM:<%s>" % sender).code == 250
        for r in rcpts:
            assert c.command("RCPT TO:<%s>" % r).code == 250
        assert c.command("DATA").code == 354
        c.send(("Subject: %s\r\nX-Tools: yes\r\n\r\nbody-%s\r\n.\r\n" % (
            marker, marker)).encode())
        r = c.reply()
        assert r.code == 250, r
        c.command("QUIT")
        return r.text.split()[-1]


def all_deferred(d, n):
    q = queue_json(d)
    return len(q) == n and all(e["state"] == "deferred" and e["tries"] >= 1
                               for e in q)


def daemon():
    """The module's daemon, its queue filled once: 6 envelopes deferred."""
    global _daemon
    if _daemon is not None:
        return _daemon
    global _sink
    _sink = FakeSMTP(addr=("127.0.0.1", FLUSH_PORT),
                     rcpt_reply=lambda addr, n: "250 2.1.5 ok" if _accept
                     else "451 4.3.0 not yet")
    d = Daemon(conf=CONF)
    d.keep_running = True	# end_test() leaves it to the next test
    d.start()
    _daemon = d
    m = unique_marker("tools")
    _msgs["flush"] = send(d, "alice@src.test", ["u1@flush.test"], m + "a")
    _msgs["two"] = send(d, "alice@src.test",
                        ["u2@dead.test", "u3@other.test"], m + "b")
    _msgs["spam1"] = send(d, "spammer@Spam.test", ["u4@dead.test"], m + "c")
    _msgs["spam2"] = send(d, "spammer@spam.test", ["u5@other.test"], m + "d")
    _msgs["bounce"] = send(d, "", ["u6@other.test"], m + "e")
    _msgs["marker"] = m
    assert poll(lambda: all_deferred(d, 6), 30), \
        "not all deferred: %r\n%s" % (queue_json(d), d.log_tail(20))
    return d


def teardown_module():
    global _daemon, _sink
    if _sink is not None:
        _sink.stop()
        _sink = None
    if _daemon is not None:
        _daemon.keep_running = False
        _daemon.stop()
        _daemon = None


def qshape_rows(text):
    """{domain: [T, 5, 10, ... 1280+]} from show qshape's table."""
    lines = text.splitlines()
    assert lines[0].split() == ["T", "5", "10", "20", "40", "80", "160",
                                "320", "640", "1280", "1280+"], text
    rows = {}
    for line in lines[1:]:
        f = line.split()
        assert len(f) == 12, text
        rows[f[0]] = [int(x) for x in f[1:]]
    return rows


def test_qshape():
    d = daemon()
    rows = qshape_rows(ctl(d, "show", "qshape").stdout)
    # all younger than 5 minutes: T and the first band
    assert {k: v[:2] for k, v in rows.items()} == {
        "TOTAL": [6, 6], "other.test": [3, 3], "dead.test": [2, 2],
        "flush.test": [1, 1]}, rows
    assert all(sum(v[2:]) == 0 for v in rows.values()), rows
    text = ctl(d, "show", "qshape").stdout.splitlines()
    # TOTAL first, then by count
    assert [ln.split()[0] for ln in text[1:]] == [
        "TOTAL", "other.test", "dead.test", "flush.test"], text
    rows = qshape_rows(ctl(d, "show", "qshape", "-s").stdout)
    assert {k: v[0] for k, v in rows.items()} == {
        "TOTAL": 6, "src.test": 3, "spam.test": 2, "MAILER-DAEMON": 1}, rows
    rows = qshape_rows(ctl(d, "show", "qshape", "deferred").stdout)
    assert rows["TOTAL"][0] == 6, rows
    rows = qshape_rows(ctl(d, "show", "qshape", "held").stdout)
    assert rows == {"TOTAL": [0] * 11}, rows
    p = ctl(d, "show", "qshape", "nosuchstate", check=False)
    assert p.returncode == 64 and "unknown state" in p.stderr, p


def test_show_message_envelopes_and_header():
    d = daemon()
    msgid = _msgs["two"]
    m = _msgs["marker"] + "b"
    evpids = sorted(e["id"] for e in queue_json(d)
                    if e["id"].startswith(msgid))
    assert len(evpids) == 2, queue_json(d)
    out = ctl(d, "show", "message", "-e", msgid).stdout
    heads = re.findall(r"^\*\*\* ENVELOPE ([0-9a-f]{16}) \*\*\*$", out, re.M)
    assert sorted(heads) == evpids, out
    assert "\nrcpt: u2@dead.test\n" in out and \
        "\nrcpt: u3@other.test\n" in out, out
    assert "\nsender: alice@src.test\n" in out, out
    contents = out.split("*** MESSAGE CONTENTS ***\n")
    assert len(contents) == 2, out
    assert "Subject: %s" % m in contents[1], out
    assert "body-%s" % m in contents[1], out
    # -h: the header only, with or without -e
    out = ctl(d, "show", "message", "-h", msgid).stdout
    assert "Subject: %s" % m in out and "X-Tools: yes" in out, out
    assert "body-" not in out, out
    out = ctl(d, "show", "message", "-e", "-h", evpids[0]).stdout
    assert re.findall(r"^\*\*\* ENVELOPE ([0-9a-f]{16}) \*\*\*$", out,
                      re.M) == [evpids[0]], out
    assert "*** MESSAGE HEADER ***" in out and "body-" not in out, out
    # the message as before, without options
    out = ctl(d, "show", "message", msgid).stdout
    assert "body-%s" % m in out and "ENVELOPE" not in out, out
    p = ctl(d, "show", "message", "-e", "0badbad0", check=False)
    assert p.returncode == 1 and "no such message" in p.stderr, p


def test_hold_release_by_sender_pattern():
    d = daemon()
    out = ctl(d, "hold", "from", "spammer@*").stdout
    assert "2 envelopes held" in out, out
    q = by_rcpt(d)
    assert q["u4@dead.test"]["state"] == "held", q
    assert q["u5@other.test"]["state"] == "held", q
    assert [r for r, e in q.items() if e["state"] == "held"].__len__() == 2
    rows = qshape_rows(ctl(d, "show", "qshape", "held").stdout)
    assert rows["TOTAL"][0] == 2, rows
    # the pattern is compared without regard to case
    out = ctl(d, "release", "from", "*@SPAM.TEST").stdout
    assert "2 envelopes released" in out, out
    # released: due now, tried again (nobody listens), deferred again
    assert poll(lambda: all(by_rcpt(d)[r]["tries"] >= 2 and
                            by_rcpt(d)[r]["state"] == "deferred"
                            for r in ("u4@dead.test", "u5@other.test")),
                30), queue_json(d)
    # no match: not an error
    out = ctl(d, "hold", "to", "*@nowhere.test").stdout
    assert "0 envelopes held" in out, out
    # only root
    p = ctl(d, "hold", "from", "*", user=TEST_USER2, check=False)
    assert p.returncode != 0 and "permission denied" in p.stderr, p
    assert not [e for e in queue_json(d) if e["state"] == "held"]


def test_flush_domain():
    d = daemon()
    before = {r: e["tries"] for r, e in by_rcpt(d).items()}
    _accept.append(1)
    out = ctl(d, "schedule", "domain", "FLUSH.test").stdout
    assert "1 envelopes scheduled" in out, out
    assert poll(lambda: "u1@flush.test" not in by_rcpt(d), 30), \
        queue_json(d)
    got = [t for t in _sink.transactions() if t["data"] is not None]
    assert len(got) == 1 and len(got[0]["rcpts"]) == 1 and \
        "u1@flush.test" in got[0]["rcpts"][0], got
    # the others were not tried: their next try is still an hour away
    after = by_rcpt(d)
    assert len(after) == 5, after
    for r, e in after.items():
        assert e["tries"] == before[r] and e["state"] == "deferred", (
            r, e, before)
    p = ctl(d, "schedule", "domain", "a@b", check=False)
    assert p.returncode == 64, p


def test_remove_by_pattern():
    d = daemon()
    out = ctl(d, "remove", "to", "*@other.test").stdout
    assert "3 envelopes removed" in out, out
    assert sorted(by_rcpt(d)) == ["u2@dead.test", "u4@dead.test"]
    out = ctl(d, "remove", "from", "spammer@spam.test").stdout
    assert "1 envelopes removed" in out, out
    # the empty sender: "" matches only it (the bounce went with other.test)
    out = ctl(d, "remove", "from", "").stdout
    assert "0 envelopes removed" in out, out
    assert sorted(by_rcpt(d)) == ["u2@dead.test"]
    assert re.search(r"[0-9a-f]{16}: removed by smtpctl", d.log())
    p = ctl(d, "remove", "sideways", "x", check=False)
    assert p.returncode == 64, p
