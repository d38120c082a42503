"""
test_milter.py -- the milter client (issue 19) against real filters on
Sendmail's libmilter (python3-milter, regress/milter/scripted_milter.py)
and raw protocol peers (regress/milter/raw_milter.py): every reply at
every stage, every modification byte for byte on the delivered message
and the envelope, the macros at each stage (exactly, through a tap that
logs the packets), the filter's own macro lists, the steps a filter
negotiates away, a chain of two filters, mail from sendmail(8) through
the "sendmail milter" chain, quarantine into the held queue, broken
filters (crash, hang, garbage, down) costing only their session the
on-error action, and smtpctl show milters.

What is expected is what Postfix 3.7 does with the same filters
(regress/milter/POSTFIX_NOTES.md, checked with regress/milter/
postfix-lab.sh): reject "550 5.7.1 Command rejected", tempfail "451
4.7.1 Service unavailable - try again later"; refusals at connect and
HELO given at MAIL; discard there ignored; the filter never sees our own
Received: field, but insheader's index counts it.
"""

import json
import os
import re
import threading
import time

import fixture
from fixture import TEST_USER1, TEST_USER2, Daemon
from test_metrics import sample, show_metrics
import milterlib
from milterlib import (REJECT, TEMPFAIL, Filter, Garbage, Session, Tap,
                       assert_reply, maildir_with, mbox_with, milter_conf,
                       message, need_pymilter, queue_json, smtpctl,
                       wait_delivered, worker_pids)

TIMEOUT = 90

PORT_A = 15420		# the filters
PORT_B = 15421
PORT_S = 15422		# the sendmail chain's
PORT_BAD = 15423	# the misbehaving one
PORT_GOOD = 15424	# the parallel session's
PORT_TAP = 15425
PORT_DOWN = 15426	# nothing listens there

RCPT1 = "%s@example.test" % TEST_USER1	# Maildir
RCPT2 = "%s@mbox.test" % TEST_USER2	# mbox
SENDER = "a@example.org"
WAIT_NOT = 1.5	# for a delivery that must not happen, after the others


def unique(tag):
    return fixture.unique_marker(tag)


# --------------------------------------------------------------------------
# replies

STAGES = ["connect", "helo", "envfrom", "envrcpt", "data", "header", "eoh",
          "body", "eom"]
ACTIONS = ["reject", "tempfail", "discard", "accept"]
CODES = {"reject": (550, REJECT), "tempfail": (451, TEMPFAIL)}


def run_case(d, filt, stage, action, marker):
    """One session with the filter answering action at stage; checks the
    SMTP replies and returns whether the message must be delivered."""
    filt.set({"reply": {stage: action}})
    before = filt.last_conn()
    what = "%s at %s" % (action, stage)
    with Session(d.port) as s:
        if stage == "connect" and action == "reject":
            assert_reply(s.greeting, 554, what="banner after " + what)
        else:
            assert_reply(s.greeting, 220, what="banner after " + what)
        assert_reply(s.ehlo(), 250, what="EHLO after " + what)
        t = s.transaction(SENDER, [RCPT1], message(marker))
        refused = action in CODES
        code, text = CODES.get(action, (250, None))
        if refused and stage in ("connect", "helo", "envfrom"):
            assert_reply(t["mail"], code, text, "MAIL after " + what)
            # connect/helo: for the whole session; mail: asked again
            s.cmd("RSET")
            t2 = s.transaction(SENDER, [RCPT1], message(marker))
            assert_reply(t2["mail"], code, text,
                         "the next MAIL after " + what)
            return False
        assert_reply(t["mail"], 250, what="MAIL after " + what)
        if refused and stage == "envrcpt":
            assert_reply(t["rcpt"][0], code, text, "RCPT after " + what)
            return False
        assert_reply(t["rcpt"][0], 250, what="RCPT after " + what)
        if refused and stage == "data":
            assert_reply(t["data"], code, text, "DATA after " + what)
            return False
        assert_reply(t["data"], 354, what="DATA after " + what)
        if refused:
            assert_reply(t["dot"], code, text, "end of data after " + what)
            # the session goes on
            assert_reply(s.cmd("RSET"), 250, what="RSET after " + what)
            return False
        assert_reply(t["dot"], 250, what="end of data after " + what)
        assert re.match(r"^2\.0\.0 Ok: queued as \S+$", t["dot"].text), \
            "%s: %s" % (what, t["dot"])
    if action == "accept":
        # the filter is asked nothing more: for the session at connect
        # and HELO, for the message later
        later = STAGES[STAGES.index(stage) + 1:]
        conns = range(before + 1, filt.last_conn() + 1)
        seen = [e["stage"] for c in conns for e in filt.events(c)
                if e["stage"] in later]
        assert seen == [], "%s: the filter was still asked %s" % (
            what, seen)
    # discard at connect and HELO is not a discard (Postfix ignores it)
    return action == "accept" or stage in ("connect", "helo")


def test_every_reply_at_every_stage():
    """reject, tempfail, discard and accept at each of the nine stages
    a filter answers: the SMTP replies, and which messages arrive."""
    need_pymilter()
    fixture.reset_maildir(TEST_USER1)
    # a filter that does not answer costs 5 s, not the default 30
    conf = milter_conf([("a", PORT_A, "command-timeout 5s")], ["a"])
    with Filter(PORT_A) as filt, Daemon(conf=conf) as d:
        want, unwanted, errors = [], [], []
        for stage in STAGES:
            for action in ACTIONS:
                marker = unique("%s-%s" % (stage, action))
                try:
                    if run_case(d, filt, stage, action, marker):
                        want.append((stage, action, marker))
                    else:
                        unwanted.append((stage, action, marker))
                except AssertionError as e:	# all of them, then fail
                    errors.append(str(e))
        for stage, action, marker in want:
            if not fixture.poll(lambda: maildir_with(marker)):
                errors.append("%s at %s: not delivered" % (action, stage))
        time.sleep(WAIT_NOT)
        for stage, action, marker in unwanted:
            if maildir_with(marker):
                errors.append("%s at %s: delivered" % (action, stage))
        assert errors == [], "\n".join(errors)


def test_custom_replies():
    """SMFIR_REPLYCODE as given: one line or several, with and without
    an enhanced code; a rejected recipient leaves the others; a 421
    closes the session."""
    need_pymilter()
    fixture.reset_maildir(TEST_USER1)
    with Filter(PORT_A) as filt, \
            Daemon(conf=milter_conf([("a", PORT_A, "")], ["a"])) as d:
        # one recipient refused with the filter's text, the other kept
        marker = unique("rcpt")
        filt.set({"reply": {"envrcpt": {
            "match": {"<%s>" % RCPT2: {
                "action": "reject",
                "setreply": ["553", "5.1.8", "no mail for you here"]}},
            "default": "continue"}}})
        with Session(d.port) as s:
            s.ehlo()
            t = s.transaction(SENDER, [RCPT2, RCPT1], message(marker))
            assert_reply(t["rcpt"][0], 553, "5.1.8 no mail for you here",
                         "RCPT refused by the filter")
            assert_reply(t["rcpt"][1], 250, what="the other RCPT")
            assert_reply(t["dot"], 250, what="end of data")
        wait_delivered(marker)
        assert mbox_with(marker) == 0

        # multi-line at end of message, then the session goes on
        marker = unique("ml")
        filt.set({"reply": {"eom": {
            "action": "reject", "setreply": [
                "554", "5.7.1", "spam detected", "see the postmaster",
                "third line"]}}})
        with Session(d.port) as s:
            s.ehlo()
            t = s.transaction(SENDER, [RCPT1], message(marker))
            r = t["dot"]
            assert r is not None and r.code == 554 and r.lines == [
                "5.7.1 spam detected", "5.7.1 see the postmaster",
                "5.7.1 third line"], r
            assert_reply(s.cmd("RSET"), 250, what="RSET")

        # no enhanced code: the text as it is, at MAIL, as a tempfail
        filt.set({"reply": {"envfrom": {
            "action": "tempfail", "setreply": ["450", None, "slow down"]}}})
        with Session(d.port) as s:
            s.ehlo()
            t = s.transaction(SENDER, [RCPT1], message("x"))
            assert_reply(t["mail"], 450, "slow down", "MAIL")

        # 421 from a filter: said at once, and the session closes
        filt.set({"reply": {"helo": {
            "action": "tempfail",
            "setreply": ["421", "4.7.0", "closing now"]}}})
        with Session(d.port) as s:
            r = s.ehlo()
            assert_reply(r, 421, "4.7.0 closing now", "EHLO")
            assert s.cmd("NOOP") is None, "the session was not closed"
        time.sleep(WAIT_NOT)
        assert maildir_with(marker) == []
        # the metrics count the four reply codes as such
        text = show_metrics(d)
        assert sample(text, "posthaste_milter_actions_total",
                      action="replycode") == 4, text
        assert sample(text, "posthaste_milter_actions_total",
                      action="reject") == 0, text


def test_unknown_command_and_abort():
    """An unknown command goes to the filter (its verb, as Postfix sends
    it); the filter's reject is the reply, its continue leaves ours.
    RSET in a transaction is an ABORT for the filter."""
    need_pymilter()
    with Filter(PORT_A, {"reply": {"unknown": "reject"}}) as filt, \
            Daemon(conf=milter_conf([("a", PORT_A, "")], ["a"])) as d:
        with Session(d.port) as s:
            s.ehlo()
            assert_reply(s.cmd("XFOO bar baz"), 550, REJECT, "XFOO")
            assert_reply(s.cmd("MAIL FROM:<%s>" % SENDER), 250,
                         what="MAIL")
            assert_reply(s.cmd("RSET"), 250, what="RSET")
            conn = filt.last_conn()
            filt.wait_event(conn, "abort", timeout=3)
            unknown = [e["args"] for e in filt.events(conn, "unknown")]
            assert unknown == [["XFOO"]], unknown
        filt.set({})
        with Session(d.port) as s:
            s.ehlo()
            r = s.cmd("XFOO bar baz")
            assert r is not None and r.code == 500, r
            filt.wait_event(filt.last_conn(), "unknown")


# --------------------------------------------------------------------------
# modifications

HEADERS_IN = ("X-Tab:\tvalue with tab\r\n"
              "X-Dup: one\r\n"
              "X-Dup: two\r\n"
              "X-Dup: three\r\n")
RECEIVED_BLOCK = re.compile(r"Received: [^\n]*\n(?:\t[^\n]*\n)*")


def split_head(data):
    """(Return-Path/Delivered-To lines, the rest) of a delivered
    message, and the rest with our Received: block cut out and marked
    "<Received>"."""
    text = data.decode("utf-8", "surrogateescape")
    lines = text.split("\n", 2)
    top, rest = "\n".join(lines[:2]) + "\n", lines[2]
    m = RECEIVED_BLOCK.search(rest)
    assert m, "no Received: in %r" % rest[:300]
    return top, rest[:m.start()] + "<Received>\n" + rest[m.end():]


def test_modifications_byte_for_byte():
    """Every modification a filter can make, at once: added, inserted
    (index 0 above our Received:, 2 below it), changed, deleted and
    folded header fields, the body replaced, the sender changed (with an
    argument), a recipient deleted and one added (with an argument) --
    on the delivered bytes and the envelope.  Then a recipient added
    without arguments next to the original one."""
    need_pymilter()
    fixture.reset_maildir(TEST_USER1)
    fixture.reset_mbox(TEST_USER2)
    marker = unique("mod")
    script = {"eom": [
        ["addheader", "X-Added", "added value"],
        ["insheader", 0, "X-Ins0", "at zero"],
        ["insheader", 2, "X-Ins2", "at two"],
        ["chgheader", "X-Dup", 2, "changed two"],
        ["chgheader", "X-Dup", 3, ""],
        ["chgheader", "Subject", 1, "new\n\tsubject " + marker],
        ["delrcpt", "<%s>" % RCPT2],
        ["addrcpt", "<%s>" % RCPT1, "NOTIFY=NEVER"],
        ["chgfrom", "<z@example.org>", "RET=HDRS"],
        ["replbody", "new body\r\nsecond %s\r\n" % marker],
    ]}
    with Filter(PORT_A, script) as filt, \
            Daemon(conf=milter_conf([("a", PORT_A, "")], ["a"])) as d:
        msg = message(marker, to=RCPT2, extra_headers=HEADERS_IN)
        with Session(d.port) as s:
            s.ehlo()
            t = s.transaction(SENDER, [RCPT2], msg)
            assert_reply(t["dot"], 250, what="end of data")
        got, = wait_delivered(marker)
        conn = filt.last_conn()
        # what the filter was shown: no Received:, the value after the
        # one space, folded lines joined by LF, the body in CRLF
        errors = []
        hdrs = [e["args"] for e in filt.events(conn, "header")]
        want = [["From", "A <a@example.org>"], ["To", RCPT2],
                ["Subject", marker], ["X-Tab", "\tvalue with tab"],
                ["X-Dup", "one"], ["X-Dup", "two"], ["X-Dup", "three"],
                ["Message-ID", "<%s@example.org>" % marker],
                ["Date", "Mon, 7 Dec 2026 10:00:00 +0000"]]
        if hdrs != want:
            errors.append("the filter was shown %r, expected %r"
                          % (hdrs, want))
        body = "".join(e["args"][0] for e in filt.events(conn, "body"))
        if body != "line one %s\r\n\r\nline three  \r\n" % marker:
            errors.append("the filter was shown the body %r" % body)

        top, rest = split_head(got)
        want = "Return-Path: <z@example.org>\nDelivered-To: %s\n" % RCPT1
        if top != want:
            errors.append("delivered with %r, expected %r" % (top, want))
        want = (
            "X-Ins0: at zero\n"
            "<Received>\n"
            "X-Ins2: at two\n"
            "From: A <a@example.org>\n"
            "To: %s\n"
            "Subject: new\n"
            "\tsubject %s\n"
            "X-Tab:\tvalue with tab\n"
            "X-Dup: one\n"
            "X-Dup: changed two\n"
            "Message-ID: <%s@example.org>\n"
            "Date: Mon, 7 Dec 2026 10:00:00 +0000\n"
            "X-Added: added value\n"
            "\n"
            "new body\n"
            "second %s\n" % (RCPT2, marker, marker, marker))
        if rest != want:
            errors.append("delivered:\n%s\nexpected:\n%s" % (rest, want))
        time.sleep(WAIT_NOT)
        if mbox_with(marker) != 0:
            errors.append("the deleted recipient got it")
        assert errors == [], "\n".join(errors)

        # a recipient added without arguments, next to the original
        marker = unique("addrcpt")
        filt.set({"eom": [["addrcpt", "<%s>" % RCPT2]]})
        with Session(d.port) as s:
            s.ehlo()
            t = s.transaction(SENDER, [RCPT1], message(marker))
            assert_reply(t["dot"], 250, what="end of data")
        got, = wait_delivered(marker)
        assert got.startswith(("Return-Path: <%s>\nDelivered-To: %s\n"
                               % (SENDER, RCPT1)).encode()), got[:200]
        assert fixture.poll(lambda: mbox_with(marker) == 1), \
            "the added recipient did not get it"
        data = fixture.wait_stable_file(fixture.mbox_path(TEST_USER2),
                                        marker.encode())
        assert ("Return-Path: <%s>\nDelivered-To: %s\n" % (SENDER, RCPT2)
                ).encode() in data, data[-600:]


def test_modification_arguments_in_the_envelope():
    """The ESMTP arguments of an added recipient (ORCPT) and of a changed
    sender (ENVID) reach the envelopes: the message is quarantined so
    that `smtpctl show envelope` can show them."""
    need_pymilter()
    marker = unique("args")
    script = {"eom": [
        ["addrcpt", "<%s>" % RCPT2, "ORCPT=rfc822;orig@example.org"],
        ["chgfrom", "<z@example.org>", "ENVID=env-%s" % marker[-8:]],
        ["quarantine", "arguments"]]}
    with Filter(PORT_A, script), \
            Daemon(conf=milter_conf([("a", PORT_A, "")], ["a"])) as d:
        with Session(d.port) as s:
            s.ehlo()
            t = s.transaction(SENDER, [RCPT1], message(marker))
            assert_reply(t["dot"], 250, what="end of data")
        q = queue_json(d)
        assert all(e.get("state") == "held" for e in q), q
        shown = dict((e["id"], smtpctl(d, "show", "envelope",
                                       e["id"]).stdout) for e in q)
        assert len(shown) == 2, (q, shown)
        text = "\n".join(shown.values())
        added = [t for t in shown.values() if RCPT2 in t]
        assert added and "orig@example.org" in added[0], shown
        assert all("z@example.org" in t for t in shown.values()), shown
        assert all("env-%s" % marker[-8:] in t for t in shown.values()), \
            text
        smtpctl(d, "remove", "all")


def test_dkim_signing_after_the_filters():
    """Our own DKIM signing ("dkim sign", mail from loopback is signed)
    after a filter that changed a field, added one and replaced the body:
    the signature is made on the message as the filter left it, so it
    verifies with dkimpy on the delivered message (and not once the body
    is changed)."""
    need_pymilter()
    from test_dkim_codec import (DOMAIN, dkimpy_verify, keygen,
                                 need_dkimpy, records, tamper)
    need_dkimpy()
    fixture.reset_maildir(TEST_USER1)
    _, sel, _ = key = keygen("rsa")
    d0 = milterlib.tmpdir("dkimtab.")
    table = os.path.join(d0, "dkimkeys")
    with open(table, "w") as f:
        f.write("%s %s:%s\n" % (DOMAIN, sel, key[0]))
    os.chmod(table, 0o644)
    base = "table dkimkeys file:%s\ndkim sign <dkimkeys>\n" % table + \
        fixture.DEFAULT_CONF
    marker = unique("signed")
    script = {"eom": [["chgheader", "Subject", 1, "changed " + marker],
                      ["addheader", "X-Filter", "added before signing"],
                      ["replbody", "replaced body %s\r\n" % marker]]}
    conf = milter_conf([("a", PORT_A, "")], ["a"], base=base)
    with Filter(PORT_A, script), Daemon(conf=conf) as d:
        with Session(d.port) as s:
            s.ehlo()
            t = s.transaction("alice@" + DOMAIN, [RCPT1], message(marker))
            assert_reply(t["dot"], 250, what="end of data")
        got, = wait_delivered(marker)
    msg = got.replace(b"\n", b"\r\n")
    head, _, body = msg.partition(b"\r\n\r\n")
    assert b"\r\nX-Filter: added before signing" in head, head
    assert body == ("replaced body %s\r\n" % marker).encode(), body
    assert re.search(rb"(?im)^DKIM-Signature:.* s=%s;" % sel.encode(),
                     head.replace(b"\r\n\t", b" ")), head
    keys = records("rsa")
    assert dkimpy_verify(msg, keys) == [True], head
    assert dkimpy_verify(tamper(msg), keys) == [False]


def test_filter_slower_than_smtp_timeout():
    """A filter working longer than "smtp timeout" at the end of message
    (within its eom-timeout): the client, silent meanwhile, is not timed
    out, and gets its 250."""
    need_pymilter()
    fixture.reset_maildir(TEST_USER1)
    marker = unique("slow")
    base = fixture.DEFAULT_CONF + "smtp timeout 2s\n"
    conf = milter_conf([("a", PORT_A, "eom-timeout 20s")], ["a"],
                       base=base)
    with Filter(PORT_A, {"eom": [["sleep", 4]]}), Daemon(conf=conf) as d:
        with Session(d.port) as s:
            s.ehlo()
            start = time.monotonic()
            t = s.transaction(SENDER, [RCPT1], message(marker))
            assert_reply(t["dot"], 250, what="end of data after 4 s")
            assert time.monotonic() - start > 3.5
        wait_delivered(marker)


def test_chain_each_sees_the_previous():
    """Two filters: the second sees the message as the first left it
    (changed Subject, added field, replaced body); both changes are
    delivered; a refusal by the first is not shown to the second."""
    need_pymilter()
    fixture.reset_maildir(TEST_USER1)
    marker = unique("chain")
    a_script = {"eom": [["chgheader", "Subject", 1, "changed by A"],
                        ["addheader", "X-A", "from A"],
                        ["replbody", "A body %s\r\n" % marker]]}
    b_script = {"eom": [["addheader", "X-B", "from B"]]}
    conf = milter_conf([("a", PORT_A, ""), ("b", PORT_B, "")], ["a", "b"])
    with Filter(PORT_A, a_script) as fa, Filter(PORT_B, b_script) as fb, \
            Daemon(conf=conf) as d:
        with Session(d.port) as s:
            s.ehlo()
            t = s.transaction(SENDER, [RCPT1], message(marker))
            assert_reply(t["dot"], 250, what="end of data")
        got, = wait_delivered(marker)
        conn = fb.last_conn()
        hdrs = [e["args"] for e in fb.events(conn, "header")]
        assert ["Subject", "changed by A"] in hdrs, hdrs
        assert hdrs[-1] == ["X-A", "from A"], hdrs
        body = "".join(e["args"][0] for e in fb.events(conn, "body"))
        assert body == "A body %s\r\n" % marker, repr(body)
        head, _, text = got.partition(b"\n\n")
        assert head.endswith(b"\nX-A: from A\nX-B: from B"), head
        assert b"\nSubject: changed by A\n" in head + b"\n", head
        assert text == ("A body %s\n" % marker).encode(), text

        # the first refuses a recipient: the second never sees it
        fa.set({"reply": {"envrcpt": {"match": {"<%s>" % RCPT2: "reject"},
                                      "default": "continue"}}})
        marker = unique("chain2")
        with Session(d.port) as s:
            s.ehlo()
            t = s.transaction(SENDER, [RCPT2, RCPT1], message(marker))
            assert_reply(t["rcpt"][0], 550, REJECT, "RCPT refused by A")
            assert_reply(t["dot"], 250, what="end of data")
        conn = fb.last_conn()
        rcpts = [e["args"][0] for e in fb.events(conn, "envrcpt")]
        assert rcpts == ["<%s>" % RCPT1], rcpts


# --------------------------------------------------------------------------
# macros, exactly, through the tap

def macros_by_stage(packets):
    """{command byte: [macros of each SMFIC_MACRO for it]}"""
    out = {}
    for p in packets:
        if p.get("from") == "mta" and p.get("cmd") == "D":
            out.setdefault(p["for"], []).append(dict(
                (k, v) for k, v in p["macros"]))
    return out


def commands(packets, cmd):
    return [p for p in packets if p.get("from") == "mta" and
            p.get("cmd") == cmd]


def test_macros_at_each_stage():
    """The macros of the issue's list, each at its stage with its
    value, as the packets show them -- by default exactly Postfix's set
    (the client's address, port and names only when a filter asks); the
    connect and MAIL/RCPT commands' arguments; then the filter's own
    lists (SETSYMLIST): only what it asked for, a macro without a value
    left out.  Every mismatch is listed before the test fails."""
    need_pymilter()
    fixture.reset_maildir(TEST_USER1)
    conf = milter_conf([("a", PORT_TAP, "")], ["a"])
    errors = []

    def check(got, want, what):
        if got != want:
            errors.append("%s: got %r, expected %r" % (what, got, want))

    def first(m, cmd):
        return (m.get(cmd) or [{}])[0]
    with Filter(PORT_A) as filt, Tap(PORT_TAP, PORT_A) as tap, \
            Daemon(conf=conf) as d:
        marker = unique("macros")
        with Session(d.port, helo="helo.example.org") as s:
            client_port = s.c.sock.getsockname()[1]
            s.ehlo()
            t = s.transaction(SENDER, [RCPT1], message(marker),
                              mail_args="BODY=8BITMIME SIZE=300")
            assert_reply(t["dot"], 250, what="end of data")
            qid = fixture.queue_id(t["dot"])
        wait_delivered(marker)
        pk = tap.packets(tap.last_conn())
        m = macros_by_stage(pk)
        c = first(m, "C")
        host = c.get("j")
        assert host, "no j at connect: %s" % m
        # Postfix's defaults exactly: the client's macros only on request
        check(sorted(c), sorted(["j", "{daemon_name}", "{daemon_addr}",
                                 "v", "_"]), "connect macros")
        check(c.get("{daemon_name}"), host, "{daemon_name}")
        check(c.get("{daemon_addr}"), "127.0.0.1", "{daemon_addr}")
        check(bool(c.get("v")), True, "v")
        rdns = re.sub(r" \[127\.0\.0\.1\]$", "", c.get("_", ""))
        if rdns not in ("localhost", "unknown"):
            errors.append("connect macro _ %r" % c.get("_"))
        # an unknown name as Sendmail writes it (Postfix's milter8.c)
        shown = "[127.0.0.1]" if rdns == "unknown" else rdns
        check(commands(pk, "C")[0]["data"], "%s\x004%s127.0.0.1\x00" % (
            shown, chr(client_port >> 8) + chr(client_port & 0xff)),
            "SMFIC_CONNECT")
        check(commands(pk, "H")[0]["data"], "helo.example.org\x00",
              "SMFIC_HELO")
        check(first(m, "H"), {}, "macros at HELO without TLS")
        mail = first(m, "M")
        check(mail, {"{mail_addr}": SENDER, "{mail_host}": "example.org",
                     "{mail_mailer}": "smtp"}, "MAIL macros")
        check(commands(pk, "M")[0]["data"],
              "<%s>\x00BODY=8BITMIME\x00SIZE=300\x00" % SENDER,
              "SMFIC_MAIL")
        rcpt = first(m, "R")
        for name, value in [("{rcpt_addr}", RCPT1),
                            ("{rcpt_host}", "example.test"),
                            ("{rcpt_mailer}", rcpt.get("{rcpt_mailer}") or
                             "(a value)")]:
            check(rcpt.get(name), value, "RCPT macro " + name)
        check(commands(pk, "R")[0]["data"], "<%s>\x00" % RCPT1,
              "SMFIC_RCPT")
        # the queue id the client was told: not at MAIL over SMTP, then
        # from DATA on (Postfix has it from the first accepted RCPT)
        check(mail.get("i"), None, "i at MAIL")
        for cmd in ("T", "L", "N", "B", "E"):
            check([v.get("i") for v in m.get(cmd, [])][-1:], [qid],
                  "i before %s" % cmd)
        for name in ("{tls_version}", "{cipher}", "{cipher_bits}",
                     "{cert_subject}", "{cert_issuer}"):
            check([cmd for cmd, vs in m.items() for v in vs if name in v],
                  [], "%s without TLS" % name)

        # the filter's own lists
        filt.set({"symlist": {
            "connect": "{client_addr} {client_port} {client_name} "
                       "{client_ptr} {if_addr} j",
            "helo": "{client_port} {my_macro}",
            "envfrom": "{mail_host}",
            "envrcpt": "{rcpt_host} {rcpt_addr}",
            "data": "{mail_addr}",
            "eoh": "{daemon_addr}",
            "eom": "i {client_addr}"}})
        marker = unique("symlist")
        with Session(d.port) as s:
            client_port = s.c.sock.getsockname()[1]
            s.ehlo()
            t = s.transaction(SENDER, [RCPT1], message(marker))
            assert_reply(t["dot"], 250, what="end of data")
            qid = fixture.queue_id(t["dot"])
        m = macros_by_stage(tap.packets(tap.last_conn()))
        for cmd, want in [
                ("C", [{"{client_addr}": "127.0.0.1",
                        "{client_port}": str(client_port),
                        "{client_name}": rdns, "{client_ptr}": rdns,
                        "{if_addr}": "127.0.0.1", "j": host}]),
                ("H", [{"{client_port}": str(client_port)}]),
                ("M", [{"{mail_host}": "example.org"}]),
                ("R", [{"{rcpt_host}": "example.test",
                        "{rcpt_addr}": RCPT1}]),
                ("T", [{"{mail_addr}": SENDER}]),
                ("N", [{"{daemon_addr}": "127.0.0.1"}]),
                ("E", [{"i": qid, "{client_addr}": "127.0.0.1"}])]:
            check(m.get(cmd), want, "SETSYMLIST macros before " + cmd)
    assert errors == [], "\n".join(errors)


def test_tls_and_auth_macros():
    """After STARTTLS and AUTH: {tls_version} {cipher} {cipher_bits} at
    HELO (no client certificate: no {cert_subject} {cert_issuer}),
    {auth_type} {auth_authen} at MAIL."""
    need_pymilter()
    import base64
    from test_smtp_common import (credentials_table, pki_conf,
                                  sha512_crypt, starttls)
    fixture.reset_maildir(TEST_USER1)
    creds = credentials_table([("alice", sha512_crypt("pw"))])
    base = pki_conf() + "table creds file:%s\n" % creds + \
        fixture.DEFAULT_CONF
    conf = milter_conf([("a", PORT_TAP, "")], ["a"], base=base,
                       listen_extra="tls pki mail.example.test "
                       "auth-optional <creds>")
    with Filter(PORT_A), Tap(PORT_TAP, PORT_A) as tap, \
            Daemon(conf=conf) as d:
        marker = unique("tls")
        with Session(d.port) as s:
            s.ehlo()
            starttls(s.c)
            s.ehlo()
            r = s.cmd("AUTH PLAIN " + base64.b64encode(
                b"\0alice\0pw").decode())
            assert_reply(r, 235, what="AUTH")
            t = s.transaction(SENDER, [RCPT1], message(marker))
            assert_reply(t["dot"], 250, what="end of data")
        m = macros_by_stage(tap.packets(tap.last_conn()))
        helo = m["H"][-1]
        assert helo.get("{tls_version}", "").startswith("TLSv1."), m["H"]
        assert helo.get("{cipher}"), helo
        assert re.match(r"^[0-9]+$", helo.get("{cipher_bits}", "")), helo
        assert "{cert_subject}" not in helo and \
            "{cert_issuer}" not in helo, helo
        mail = m["M"][0]
        assert mail.get("{auth_type}") == "PLAIN", mail
        assert mail.get("{auth_authen}") == "alice", mail


def test_negotiated_steps():
    """A filter that wants no reply to any stage, and one that wants
    no header and no body: the MTA waits for no answer it was told not
    to expect, and sends no step it was told to leave out -- but still
    the macros of the envelope steps left out (as Postfix)."""
    need_pymilter()
    fixture.reset_maildir(TEST_USER1)
    conf = milter_conf([("a", PORT_TAP, "")], ["a"])
    all_nr = ["connect", "helo", "envfrom", "envrcpt", "data", "header",
              "eoh", "body"]
    with Filter(PORT_A, {"noreply": all_nr}) as filt, \
            Tap(PORT_TAP, PORT_A) as tap, Daemon(conf=conf) as d:
        marker = unique("noreply")
        with Session(d.port) as s:
            s.ehlo()
            t = s.transaction(SENDER, [RCPT1], message(marker))
            assert_reply(t["dot"], 250, what="end of data")
        wait_delivered(marker)
        pk = tap.packets(tap.last_conn())
        replies = [p["cmd"] for p in pk if p.get("from") == "filter"
                   and "cmd" in p]
        # the negotiation, then one answer: to the end of message
        assert replies == ["O", "c"], replies

        filt.set({"nocallback": ["header", "body", "eoh"]})
        marker = unique("nohdr")
        with Session(d.port) as s:
            s.ehlo()
            t = s.transaction(SENDER, [RCPT1], message(marker))
            assert_reply(t["dot"], 250, what="end of data")
        wait_delivered(marker)
        pk = tap.packets(tap.last_conn())
        sent = [p["cmd"] for p in pk if p.get("from") == "mta"
                and p.get("cmd") not in ("D", None)]
        for step in ("L", "N", "B"):
            assert step not in sent, sent
        assert "E" in sent, sent
        assert filt.events(filt.last_conn(), "header") == []

        # the envelope steps away: not sent, but their macros are (as
        # Postfix does), so that the filter still has them at the end
        filt.set({"nocallback": ["connect", "helo", "envfrom", "envrcpt",
                                 "data"]})
        marker = unique("noenv")
        with Session(d.port) as s:
            s.ehlo()
            t = s.transaction(SENDER, [RCPT1], message(marker))
            assert_reply(t["dot"], 250, what="end of data")
            qid = fixture.queue_id(t["dot"])
        pk = tap.packets(tap.last_conn())
        sent = [p["cmd"] for p in pk if p.get("from") == "mta"
                and p.get("cmd") not in ("D", None)]
        for step in ("C", "H", "M", "R", "T"):
            assert step not in sent, sent
        assert set("CMRT") <= set(macros_by_stage(pk)), \
            macros_by_stage(pk)
        eom = filt.events(filt.last_conn(), "eom")[0]["macros"]
        for name, value in [("{mail_addr}", SENDER), ("{rcpt_addr}", RCPT1),
                            ("{daemon_addr}", "127.0.0.1"), ("i", qid)]:
            assert eom.get(name) == value, (name, eom)


def test_skip_and_large_body():
    """The body in chunks of at most 64 KB; SKIP after the first chunk:
    no more chunks, and the whole body is still delivered."""
    need_pymilter()
    fixture.reset_maildir(TEST_USER1)
    marker = unique("big")
    body = ("%s\r\n" % marker) + ("x" * 998 + "\r\n") * 200
    with Filter(PORT_A) as filt, \
            Daemon(conf=milter_conf([("a", PORT_A, "")], ["a"])) as d:
        with Session(d.port) as s:
            s.ehlo()
            t = s.transaction(SENDER, [RCPT1], message(marker, body=body))
            assert_reply(t["dot"], 250, what="end of data")
        chunks = [e["args"][0] for e in
                  filt.events(filt.last_conn(), "body")]
        assert all(len(c) <= 65535 for c in chunks), [len(c)
                                                      for c in chunks]
        assert "".join(chunks) == body, "the body sent is not the body"
        filt.set({"reply": {"body": "skip"}})
        marker2 = unique("skip")
        with Session(d.port) as s:
            s.ehlo()
            t = s.transaction(SENDER, [RCPT1], message(
                marker2, body=body.replace(marker, marker2)))
            assert_reply(t["dot"], 250, what="end of data")
        conn = filt.last_conn()
        assert len(filt.events(conn, "body")) == 1, \
            [len(e["args"][0]) for e in filt.events(conn, "body")]
        assert filt.events(conn, "eom"), "no end of message after SKIP"
        got, = wait_delivered(marker2)
        assert got.endswith(body.replace(marker, marker2)
                            .replace("\r\n", "\n").encode())


# --------------------------------------------------------------------------
# sendmail

def test_sendmail_chain():
    """Mail from sendmail(8) goes through the "sendmail milter" chain
    (not the listener's): a connect from localhost [127.0.0.1] port 0,
    HELO localhost, bare addresses, the filter's header delivered."""
    need_pymilter()
    from test_sendmail import sendmail
    fixture.reset_maildir(TEST_USER1)
    marker = unique("sendmail")
    conf = milter_conf([("a", PORT_A, ""), ("s", PORT_S, "")], ["a"],
                       sendmail_chain=["s"]) + 'mailname "example.test"\n'
    with Filter(PORT_A) as fa, \
            Filter(PORT_S, {"eom": [["addheader", "X-Local", "yes"]]}) \
            as fs, Daemon(conf=conf) as d:
        r = sendmail(["-C", d.conf_path, RCPT1],
                     ("Subject: %s\nX-Foo: bar\n\nlocal body\nline2\n"
                      % marker).encode(), username=TEST_USER2)
        assert r.returncode == 0, "sendmail failed: %s" % r.err
        got, = wait_delivered(marker)
        head = got.split(b"\n\n", 1)[0]
        assert head.endswith(b"\nX-Local: yes"), head
        assert fa.events(stage="envfrom") == [], \
            "the listener's filter saw local mail"
        conn = fs.last_conn()
        ev = dict((e["stage"], e) for e in fs.events(conn))
        assert ev["connect"]["args"] == ["localhost", 2,
                                         ["127.0.0.1", 0]], ev["connect"]
        assert ev["helo"]["args"] == ["localhost"], ev["helo"]
        sender = "%s@example.test" % TEST_USER2
        assert ev["envfrom"]["args"] == [sender], ev["envfrom"]
        assert ev["envrcpt"]["args"] == [RCPT1], ev["envrcpt"]
        assert ev["envfrom"]["macros"].get("{mail_addr}") == sender
        assert ev["envrcpt"]["macros"].get("{rcpt_addr}") == RCPT1
        assert "{rcpt_host}" not in ev["envrcpt"]["macros"]
        body = "".join(e["args"][0] for e in fs.events(conn, "body"))
        assert body == "local body\r\nline2\r\n", repr(body)


# --------------------------------------------------------------------------
# quarantine

def test_quarantine_holds_in_queue():
    """SMFIR_QUARANTINE: the client gets 250, the message stays in the
    queue held with the filter's reason, `smtpctl release` delivers it."""
    need_pymilter()
    fixture.reset_maildir(TEST_USER1)
    marker = unique("quarantine")
    script = {"eom": [["quarantine", "held for review"]]}
    with Filter(PORT_A, script), \
            Daemon(conf=milter_conf([("a", PORT_A, "")], ["a"])) as d:
        with Session(d.port) as s:
            s.ehlo()
            t = s.transaction(SENDER, [RCPT1], message(marker))
            assert_reply(t["dot"], 250, what="end of data")
            qid = fixture.queue_id(t["dot"])
        time.sleep(WAIT_NOT)
        assert maildir_with(marker) == [], "a quarantined message arrived"
        q = queue_json(d)
        assert len(q) == 1 and q[0].get("state") == "held", q
        assert "held for review" in (q[0].get("held") or ""), q
        assert q[0]["id"].startswith(qid) or qid in json.dumps(q[0]), \
            (qid, q)
        smtpctl(d, "release", q[0]["id"])
        wait_delivered(marker)


# --------------------------------------------------------------------------
# filters that break

def parallel_session(d_port, marker, go, done):
    """A session on the other listener: opened before the broken
    filter breaks, finished after; its replies in done."""
    try:
        with Session(d_port) as s:
            s.ehlo()
            r1 = s.cmd("MAIL FROM:<%s>" % SENDER)
            r2 = s.cmd("RCPT TO:<%s>" % RCPT1)
            go.wait(30)
            _, r3 = s.data(message(marker))
            done.append((r1, r2, r3, time.monotonic()))
    except Exception as e:	# reported by the test
        done.append(e)


def broken_conf(opts):
    """Listener 1 (@PORT@) through the broken filter, listener 2
    (through a good one) on a port of its own."""
    port2 = fixture.free_port()
    conf = milter_conf([("bad", PORT_BAD, opts), ("good", PORT_GOOD, "")],
                       ["bad"]) + \
        "listen on 127.0.0.1 port %d milter good\n" % port2
    return conf, port2


def check_broken(d, port2, good, run, expect_mail, broken=None):
    """run(d) breaks the bad filter in a session of listener 1 while a
    session of listener 2 is open; then: the daemon and its workers are
    the same, listener 2's session and a mail acknowledged before are
    delivered.  With broken (a function true once the filter is broken),
    listener 2's session sends its message then, and must be answered
    before run() ends."""
    fixture.reset_maildir(TEST_USER1)
    before = unique("before")
    with Session(port2) as s:
        s.ehlo()
        t = s.transaction(SENDER, [RCPT1], message(before))
        assert_reply(t["dot"], 250, what="the mail before")
    workers = worker_pids(d)
    go, done = threading.Event(), []
    par = unique("parallel")
    th = threading.Thread(target=parallel_session,
                          args=(port2, par, go, done))
    th.start()
    watch = None
    if broken is not None:
        def watcher():
            fixture.poll(broken, 20)
            go.set()
        watch = threading.Thread(target=watcher)
        watch.start()
    try:
        fixture.poll(lambda: good.events(stage="envrcpt"))
        run(d, expect_mail)
        end = time.monotonic()
    finally:
        go.set()
        th.join(40)
        if watch is not None:
            watch.join(30)
    assert done and not isinstance(done[0], Exception), done
    r1, r2, r3, when = done[0]
    assert_reply(r3, 250, what="the parallel session's end of data")
    if broken is not None:
        assert when < end, "the parallel session waited for the broken one"
    wait_delivered(before)
    wait_delivered(par)
    assert d.running(), "the daemon died"
    assert worker_pids(d) == workers, "a worker was replaced"


def test_crash_at_mail_costs_only_its_session():
    """The filter process exits when asked about MAIL: that MAIL gets
    the on-error action (tempfail: 451), so does the next one in the
    same session; another session is unaffected."""
    need_pymilter()
    conf, port2 = broken_conf("on-error tempfail")

    def run(d, _):
        with Session(d.port) as s:
            s.ehlo()
            r = s.cmd("MAIL FROM:<%s>" % SENDER)
            assert_reply(r, 451, TEMPFAIL, "MAIL, the filter crashed")
            s.cmd("RSET")
            r = s.cmd("MAIL FROM:<%s>" % SENDER)
            assert_reply(r, 451, TEMPFAIL, "the next MAIL")
    with Filter(PORT_BAD, {"crash_at": "envfrom"}) as bad, \
            Filter(PORT_GOOD) as good, Daemon(conf=conf) as d:
        check_broken(d, port2, good, run, None)
        assert not bad.alive(), "the filter did not crash"


def test_hang_at_eom_times_out():
    """No answer at the end of message: after eom-timeout the on-error
    action (reject: 550 5.7.1) for this message; the session can still
    talk (its next MAIL gets the same action); meanwhile a session of
    another listener delivers a message."""
    need_pymilter()
    conf, port2 = broken_conf("eom-timeout 2s on-error reject")

    def run(d, _):
        marker = unique("hang")
        with Session(d.port) as s:
            s.ehlo()
            start = time.monotonic()
            t = s.transaction(SENDER, [RCPT1], message(marker))
            took = time.monotonic() - start
            assert_reply(t["dot"], 550, REJECT, "end of data, the filter "
                         "hangs")
            assert 1.5 < took < 10, "answered after %.1fs" % took
            r = s.cmd("MAIL FROM:<%s>" % SENDER)
            assert_reply(r, 550, REJECT, "the next MAIL")
        time.sleep(WAIT_NOT)
        assert maildir_with(marker) == []
    with Filter(PORT_BAD, {"hang_at": "eom"}) as bad, \
            Filter(PORT_GOOD) as good, Daemon(conf=conf) as d:
        # the other session's message goes through while this one hangs
        check_broken(d, port2, good, run, None,
                     broken=lambda: bad.events(stage="hang"))


def test_progress_keeps_a_slow_filter():
    """A filter that takes longer than eom-timeout but sends progress
    every second is waited for."""
    need_pymilter()
    fixture.reset_maildir(TEST_USER1)
    marker = unique("progress")
    conf = milter_conf([("a", PORT_A, "eom-timeout 2s")], ["a"])
    with Filter(PORT_A, {"progress_sleep": 4,
                         "eom": [["addheader", "X-Slow", "yes"]]}), \
            Daemon(conf=conf) as d:
        with Session(d.port) as s:
            s.ehlo()
            t = s.transaction(SENDER, [RCPT1], message(marker))
            assert_reply(t["dot"], 250, what="end of data")
        got, = wait_delivered(marker)
        assert b"\nX-Slow: yes\n" in got


def test_garbage_costs_only_its_session():
    """Bytes that are not the protocol (three kinds) at MAIL: the
    on-error action (accept: as if the filter were not there); the
    filter is not asked again in that session."""
    need_pymilter()
    conf, port2 = broken_conf("on-error accept")
    with Filter(PORT_GOOD) as good, Daemon(conf=conf) as d:
        for kind in ("noise", "badcmd", "short"):
            def run(d, _):
                marker = unique("garbage-" + kind)
                with Session(d.port) as s:
                    s.ehlo()
                    t = s.transaction(SENDER, [RCPT1], message(marker))
                    assert_reply(t["mail"], 250, what="MAIL after " + kind)
                    assert_reply(t["dot"], 250, what="end of data")
                    t = s.transaction(SENDER, [RCPT1], message(marker))
                    assert_reply(t["dot"], 250,
                                 what="the next transaction")
                wait_delivered(marker, count=2)
            with Garbage(PORT_BAD, "mail", kind) as bad:
                check_broken(d, port2, good, run, None)
            ev = [json.loads(ln) for ln in open(bad.log_path)]
            conn = [e["conn"] for e in ev if e.get("event") == "garbage"]
            assert len(conn) == 1, (kind, ev)
            ev = [e for e in ev if e["conn"] == conn[0]]
            # asked about MAIL once, answered garbage, was dropped
            assert [e.get("event") for e in ev if "event" in e] == [
                "garbage", "closed"], (kind, ev)
            assert len([e for e in ev if e.get("cmd") == "M"]) == 1, ev
        # (before, the fixture's banner check found it down: not counted)
        assert len(re.findall(r"milter bad: bad [^;\n]*; on-error accept",
                              d.log())) == 3, \
            "not one log line for each broken filter"


def test_filter_down_and_quarantine_action():
    """Nothing listens where the filter should be: on-error quarantine
    accepts the mail and holds it; on-error tempfail gives 451 at
    MAIL."""
    need_pymilter()
    fixture.reset_maildir(TEST_USER1)
    milterlib.port_free(PORT_DOWN)
    conf = milter_conf([("down", PORT_DOWN, "connect-timeout 2s "
                         "on-error quarantine")], ["down"])
    marker = unique("down")
    with Daemon(conf=conf) as d:
        with Session(d.port) as s:
            s.ehlo()
            t = s.transaction(SENDER, [RCPT1], message(marker))
            assert_reply(t["dot"], 250, what="end of data, filter down")
        time.sleep(WAIT_NOT)
        assert maildir_with(marker) == []
        q = queue_json(d)
        assert len(q) == 1 and q[0].get("state") == "held", q
    conf = milter_conf([("down", PORT_DOWN, "connect-timeout 2s")],
                       ["down"])
    with Daemon(conf=conf) as d:
        with Session(d.port) as s:
            s.ehlo()
            r = s.cmd("MAIL FROM:<%s>" % SENDER)
            assert_reply(r, 451, TEMPFAIL, "MAIL, filter down")


# --------------------------------------------------------------------------
# smtpctl

def test_show_milters():
    """smtpctl show milters [-j]: each filter, its address and state,
    and counters that follow the sessions: a working filter (one message
    changed, one refused) and one that is down (on-error accept)."""
    need_pymilter()
    fixture.reset_maildir(TEST_USER1)
    milterlib.port_free(PORT_DOWN)
    conf = milter_conf([("a", PORT_A, ""), ("down", PORT_DOWN,
                                            "on-error accept")],
                       ["a", "down"])
    with Filter(PORT_A, {"eom": [["addheader", "X-A", "1"]]}) as filt, \
            Daemon(conf=conf) as d:
        marker = unique("show")
        with Session(d.port) as s:
            s.ehlo()
            t = s.transaction(SENDER, [RCPT1], message(marker))
            assert_reply(t["dot"], 250, what="end of data")
        wait_delivered(marker)
        filt.set({"reply": {"eom": "reject"}})
        with Session(d.port) as s:
            s.ehlo()
            t = s.transaction(SENDER, [RCPT1], message(unique("refused")))
            assert_reply(t["dot"], 550, REJECT, "end of data")

        def rows():
            out = smtpctl(d, "show", "milters", "-j").stdout
            return dict((r["name"], r) for r in
                        (json.loads(ln) for ln in out.splitlines()
                         if ln.strip()))
        # the workers send their counters once a second
        fixture.poll(lambda: rows().get("a", {}).get("rejected"), 5)
        r = rows()
        assert set(r) == {"a", "down"}, r
        a, down = r["a"], r["down"]
        assert a["address"] == "inet:127.0.0.1:%d" % PORT_A or \
            str(PORT_A) in a["address"], a
        assert a["state"] == "up", a
        # (the fixture's banner check is a session too)
        assert a.get("sessions", 0) >= 2, a
        for key, value in [("messages", 2),
                           ("accepted", 1), ("rejected", 1),
                           ("modified", 1), ("errors", 0)]:
            assert a.get(key) == value, (key, a)
        assert down["state"] == "down", down
        assert down.get("errors", 0) >= 1 and \
            down.get("on_error_used", 0) >= 1, down
        assert down.get("error"), down
        text = smtpctl(d, "show", "milters").stdout
        assert re.search(r"^a\b.* state=up\b.* rejected=1\b", text,
                         re.M), text
        assert re.search(r"^down\b.* state=down\b", text, re.M), text
        # the metrics: the same answers, all filters together
        text = show_metrics(d)
        for action, n in [("accept", 1), ("modify", 1), ("reject", 1),
                          ("tempfail", 0), ("replycode", 0)]:
            assert sample(text, "posthaste_milter_actions_total",
                          action=action) == n, (action, text)
