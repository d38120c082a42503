"""
test_queue_requeue.py -- smtpctl requeue (Postfix's postsuper -r, issue
22): the recipients of the selected envelopes routed again under the
configuration in force, durably, and scheduled now.

One daemon (started once, restarted once on the same spool to see the
new routes survive).  Mail for moved.test, dropped.test and stay.test is
relayed to a scripted next hop on 15870 (FakeSMTP, test_mta_relay.py)
that answers 451 to every RCPT, and team@alias.test is a virtual address
for one@moved.test; each envelope is deferred after its first try, the
next an hour away (queue retry-remote 1h).  Then the configuration
changes: moved.test relays to a second next hop on 15871 that accepts,
dropped.test is no longer ours, team@alias.test is two addresses; a
reload (SIGHUP), and:

  requeue ID          stay.test's envelope: routed as before and tried
                      at once (still the 451 hop); held, it is routed
                      and stays held
  requeue domain D    moved.test's three envelopes get the new route
                      (written to the spool: show envelope says so),
                      the alias one (its destination is in moved.test)
                      is unchanged and logged; with the mta paused they
                      stay queued until the daemon is restarted, and
                      after the restart go to the second hop
  requeue to PATTERN  dropped.test: now refused, unchanged and logged
  errors              no such id, not root
"""

import os
import re
import shutil
import signal
import tempfile

import fixture
from fixture import (TEST_ROOT, TEST_USER2, Daemon, SMTPConnection,
                     poll, unique_marker)
from test_mta_relay import FakeSMTP

OLD_PORT = 15870
NEW_PORT = 15871

CONF_HEAD = """\
spool "@TMP@/spool"
socket "@TMP@/smtpd.sock"
smtp workers 1
queue retry-remote 1h
listen on 127.0.0.1 port @PORT@
table virt file:@TMP@/virtuals
action "old" relay host "smtp://127.0.0.1:%d"
action "virt" maildir "~/Maildir" virtual <virt>
match from local for domain "alias.test" action "virt"
match from local for domain "stay.test" action "old"
""" % OLD_PORT

CONF_BEFORE = CONF_HEAD + """\
match from local for domain "moved.test" action "old"
match from local for domain "dropped.test" action "old"
"""

CONF_AFTER = CONF_HEAD + """\
action "new" relay host "smtp://127.0.0.1:%d"
match from local for domain "moved.test" action "new"
""" % NEW_PORT

VIRT_BEFORE = "team@alias.test  one@moved.test\n"
VIRT_AFTER = "team@alias.test  one@moved.test, two@moved.test\n"


ctl = fixture.smtpctl


def queue(d):
    """{recipient as delivered to: entry} from show queue -j."""
    import json
    out = ctl(d, "show", "queue", "-j").stdout
    return {e["recipient"]: e for e in
            (json.loads(ln) for ln in out.splitlines() if ln.strip())}


def send(d, rcpts, marker):
    with SMTPConnection(d.port) as c:
        c.command("EHLO requeue.test")
        assert c.command("MAIL FROM:<alice@src.test>").code == 250
        for r in rcpts:
            assert c.command("RCPT TO:<%s>" % r).code == 250
        assert c.command("DATA").code == 354
        c.send(("Subject: %s\r\n\r\nbody\r\n.\r\n" % marker).encode())
        r = c.reply()
        assert r.code == 250, r
        c.command("QUIT")


def deferred(d, rcpts, tries=1):
    q = queue(d)
    return all(r in q and q[r]["state"] == "deferred" and
               q[r]["tries"] >= tries for r in rcpts)


def envelope(d, evpid):
    return ctl(d, "show", "envelope", evpid).stdout


def delivered(sink):
    """The recipients a next hop took the message for, sorted."""
    return sorted(re.sub(r"^RCPT TO:<([^>]*)>.*", r"\1", r, flags=re.I)
                  for t in sink.transactions() if t["data"] is not None
                  for r in t["rcpts"])


def wait_log(d, pattern, timeout=15):
    assert poll(lambda: re.search(pattern, d.log(), re.M), timeout), \
        "no %r in the log:\n%s" % (pattern, d.log_tail(30))


def test_requeue_reroutes_durably():
    old = FakeSMTP(addr=("127.0.0.1", OLD_PORT),
                   rcpt_reply=lambda addr, n: "451 4.3.0 not yet")
    new = FakeSMTP(addr=("127.0.0.1", NEW_PORT))
    tmp = tempfile.mkdtemp(prefix="requeue.", dir=TEST_ROOT)
    d = Daemon(conf=CONF_BEFORE, tmp=tmp)
    try:
        with open(os.path.join(tmp, "virtuals"), "w") as f:
            f.write(VIRT_BEFORE)
        d.start()
        m = unique_marker("requeue")
        send(d, ["a@moved.test"], m + "a")
        send(d, ["b@moved.test", "c@moved.test"], m + "b")
        send(d, ["team@alias.test"], m + "c")
        send(d, ["x@dropped.test"], m + "d")
        send(d, ["s@stay.test"], m + "e")
        moved = ["a@moved.test", "b@moved.test", "c@moved.test"]
        every = moved + ["one@moved.test", "x@dropped.test", "s@stay.test"]
        assert poll(lambda: deferred(d, every), 30), \
            "not all deferred: %r\n%s" % (queue(d), d.log_tail(20))
        assert len(queue(d)) == 6, queue(d)
        assert not delivered(new)

        # the new configuration, in force after a reload
        with open(os.path.join(tmp, "virtuals"), "w") as f:
            f.write(VIRT_AFTER)
        d.conf_template = CONF_AFTER
        with open(d.conf_path, "w") as f:
            f.write(d.config_text())
        d.send_signal(signal.SIGHUP)
        wait_log(d, r"configuration reloaded")
        # the old worker accepts what reached it before it retired, and
        # serves it under the old configuration: wait until it has
        wait_log(d, r"smtp worker \d+ \(retired\): retired by a reload")

        # new mail to the alias: two envelopes now, to the new hop
        # (lookup told two relayed addresses apart: it once gave one)
        send(d, ["team@alias.test"], m + "f")
        assert poll(lambda: len(delivered(new)) == 2, 15), \
            (new.transactions(), d.log_tail(20))
        assert delivered(new) == ["one@moved.test", "two@moved.test"]

        # by id: routed as before (stay.test is still the 451 hop), and
        # tried at once, not in an hour
        stay = queue(d)["s@stay.test"]["id"]
        out = ctl(d, "requeue", stay).stdout
        assert out.strip() == "1 requeued, 0 unchanged", out
        wait_log(d, r"requeue: %s: <s@stay\.test>: routed as before$" % stay)
        assert poll(lambda: deferred(d, ["s@stay.test"], tries=2), 15), \
            queue(d)
        # held: routed again, and still held (not tried) until released
        ctl(d, "hold", stay)
        out = ctl(d, "requeue", "to", "s@stay.test").stdout
        assert out.strip() == "1 requeued, 0 unchanged", out
        assert queue(d)["s@stay.test"]["state"] == "held", queue(d)
        ctl(d, "release", stay)
        assert poll(lambda: deferred(d, ["s@stay.test"], tries=3), 15), \
            queue(d)

        # by domain, the mta paused: the new route is written, not tried
        ctl(d, "pause", "mta")
        out = ctl(d, "requeue", "domain", "moved.test").stdout
        # the alias envelope is selected by its destination (moved.test)
        assert out.strip() == "3 requeued, 1 unchanged", out
        wait_log(d, r"requeue: [0-9a-f]{16}: <team@alias\.test>: not "
                 r"re-routed: 2 destinations now, not one$")
        for r in moved:
            wait_log(d, r"requeue: [0-9a-f]{16}: <%s>: routed to <%s>, "
                     r"action new$" % (re.escape(r), re.escape(r)))
        q = queue(d)
        ids = {r: q[r]["id"] for r in moved}
        for r in moved:
            env = envelope(d, ids[r])
            assert "\naction: new\n" in env, (r, env)
            assert q[r]["state"] == "pending", q[r]
        env = envelope(d, q["one@moved.test"]["id"])
        assert "\naction: old\n" in env, env
        assert q["one@moved.test"]["state"] == "deferred", q

        # no longer ours: unchanged, the reason logged
        out = ctl(d, "requeue", "to", "*@DROPPED.test").stdout
        assert out.strip() == "0 requeued, 1 unchanged", out
        wait_log(d, r"requeue: [0-9a-f]{16}: <x@dropped\.test>: not "
                 r"re-routed: 550 5\.7\.1 <x@dropped\.test>: Relay access "
                 r"denied$")
        assert "\naction: old\n" in envelope(
            d, queue(d)["x@dropped.test"]["id"])

        # errors: an id that is not there; only root
        p = ctl(d, "requeue", "0badbad0", check=False)
        assert p.returncode == 1 and "no such envelope" in p.stderr, p
        p = ctl(d, "requeue", "all", user=TEST_USER2, check=False)
        assert p.returncode != 0 and "permission denied" in p.stderr, p
        assert len(delivered(new)) == 2

        # durable: a restart (the pause is gone with it) sends the three
        # to the new hop; the others keep their hour
        d.stop()
        d.start()
        assert poll(lambda: not any(r in queue(d) for r in moved), 30), \
            "%r\n%s" % (queue(d), d.log_tail(20))
        assert poll(lambda: len(delivered(new)) == 5, 15), delivered(new)
        assert delivered(new) == moved + ["one@moved.test",
                                          "two@moved.test"]
        q = queue(d)
        assert sorted(q) == ["one@moved.test", "s@stay.test",
                             "x@dropped.test"], q
        assert all(e["state"] == "deferred" for e in q.values()), q
    finally:
        old.stop()
        new.stop()
        try:
            d.stop()
        finally:
            shutil.rmtree(tmp, ignore_errors=True)
