"""
The tools administrators run on mail logs read ours (issue 22): one
daemon without -d, logging to a syslog receiver of the test's own
(test_logging.SyslogDaemon), takes local mail, relays to a scripted
server that accepts, defers and refuses, refuses relaying and unknown
users and fails AUTH; then Debian's pflogsumm counts what happened
(received, delivered, deferred, bounced, rejected) and fail2ban-regex
with Debian's postfix filter (modes normal and auth, the postfix and
postfix-sasl jails) and the filter we ship in etc/fail2ban/ finds the
address of every refused client, and of no other.

The log is made once for the module; each test reads it.
"""

import os
import re
import shutil
import smtplib
import subprocess

import fixture
from fixture import ensure_test_user, poll, reset_maildir, skip
from test_logging import (F2B_FILTER, F2B_FILTER_SASL, SYSLOG_USER,
                          SyslogDaemon)
from test_mta_relay import FakeSMTP
from test_smtp_auth import PASSWORD, auth_conf

TIMEOUT = 60
RELAY_PORT = 15840	# the scripted next hop (issue 22: 15840-15859)
LOCAL = "%s@example.test" % SYSLOG_USER

# who does what: each refused client has an address of its own
RELAYER = "127.0.0.7"		# tries to relay
GUESSER = "127.0.0.8"		# wrong passwords
HARVESTER = "127.0.0.10"	# unknown users
GOOD = "127.0.0.9"		# logs in, sends

# what the log must come to: pflogsumm's grand totals
EXPECTED = {
    # 4 local (2 plain, 1 authenticated, 3 relayed), no DSN: it has
    # no client= line, as Postfix's bounces have none
    "received": 6,
    # 3 local, 1 relayed, 1 DSN to the bounced message's sender
    "delivered": 5,
    "deferred": 1,
    "bounced": 1,
    # 2 relay attempts, 2 unknown users
    "rejected": 4,
}

_made = {}


def _rcpt_reply(addr, n):
    if addr.startswith("later@"):
        return "451 4.3.0 try later"
    if addr.startswith("bad@"):
        return "550 5.1.1 no such user here"
    return "250 2.1.5 ok"


def _client(source, port):
    c = smtplib.SMTP(timeout=30, source_address=(source, 0))
    c.connect("127.0.0.1", port)
    c.ehlo("%s.client.test" % source.replace(".", "-"))
    return c


def _send(port, sender, rcpt, source="127.0.0.1", login=False):
    c = _client(source, port)
    if login:
        c.login("alice", PASSWORD)
    c.sendmail(sender, [rcpt], "Subject: logs\r\n\r\nlogs\r\n")
    c.quit()


def _refused_rcpt(source, port, rcpt):
    c = _client(source, port)
    c.mail("a@b.test")
    code, text = c.rcpt(rcpt)
    assert code == 550, (code, text)
    c.quit()


def _failed_auth(source, port):
    c = _client(source, port)
    c.user, c.password = "alice", "wrong " + PASSWORD
    try:
        c.auth("PLAIN", c.auth_plain)
        raise AssertionError("a wrong password was taken")
    except smtplib.SMTPAuthenticationError:
        pass
    c.quit()


def _make_log():
    """The daemon's syslog lines as /var/log/mail.log would hold them,
    made once: (path, text)."""
    if "path" in _made:
        return _made["path"], _made["text"]
    ensure_test_user(SYSLOG_USER)
    reset_maildir(SYSLOG_USER)
    conf = (auth_conf("auth-optional <creds> auth-plaintext") +
            'action "next" relay host "smtp://127.0.0.1:%d"\n'
            'match from any for domain "remote.test" action "next"\n'
            % RELAY_PORT)
    with FakeSMTP(rcpt_reply=_rcpt_reply,
                  addr=("127.0.0.1", RELAY_PORT)) as srv, \
            SyslogDaemon(conf=conf) as d:
        _send(d.port, "a@example.test", LOCAL)
        _send(d.port, "b@example.test", LOCAL)
        _send(d.port, "a@example.test", LOCAL, source=GOOD, login=True)
        _send(d.port, "a@example.test", "ok@remote.test")
        _send(d.port, "a@example.test", "later@remote.test")
        # its DSN goes to a local mailbox
        _send(d.port, LOCAL, "bad@remote.test")
        for _ in range(2):
            _refused_rcpt(RELAYER, d.port, "victim@elsewhere.test")
            _refused_rcpt(HARVESTER, d.port, "nosuchuser@example.test")
            _failed_auth(GUESSER, d.port)
        want = ([r"to=<%s>.*status=sent" % LOCAL] * 4 +
                [r"to=<ok@remote\.test>.*status=sent",
                 r"to=<later@remote\.test>.*status=deferred",
                 r"to=<bad@remote\.test>.*status=bounced"])

        def complete():
            text = d.syslog.text()
            return (all(len(re.findall(p, text)) >= want.count(p)
                        for p in want) and
                    text.count("authentication failed") >= 2 and
                    text.count("NOQUEUE: reject:") >= 4)
        assert poll(complete, timeout=20), d.syslog.text()[-4000:]
        path = os.path.join(d.tmp, "mail.log")
        d.syslog.as_file(path)
        with open(path) as f:
            text = f.read()
        # the file outlives the daemon's directory
        keep = os.path.join(fixture.TEST_ROOT, "log-tools-mail.log")
        shutil.copyfile(path, keep)
    _made["path"], _made["text"] = keep, text
    return keep, text


def test_pflogsumm_counts():
    """pflogsumm --syslog-name=smtpd counts each message once: received
    by its "ID: client=" line, delivered, deferred and bounced by its
    to= lines, rejected by the NOQUEUE: reject: lines; bytes received
    and senders by the queue's "ID: from=<>, size=N, nrcpt=N (queue
    active)" line."""
    if shutil.which("pflogsumm") is None:
        skip("pflogsumm is not installed (mk/deps.sh installs it)")
    path, text = _make_log()
    r = subprocess.run(["pflogsumm", "--syslog-name=smtpd", path],
                       stdin=subprocess.DEVNULL, stdout=subprocess.PIPE,
                       stderr=subprocess.STDOUT, timeout=60)
    out = r.stdout.decode("utf-8", "replace")
    assert r.returncode == 0, out
    got = {}
    for m in re.finditer(r"^\s*(\d+)\s+(received|delivered|deferred|"
                         r"bounced|rejected)\b", out, re.M):
        got.setdefault(m.group(2), int(m.group(1)))
    assert got == EXPECTED, "pflogsumm says %r, expected %r:\n%s\n%s" % (
        got, EXPECTED, out[:1500], text)
    # bytes and senders come from the queue's qmgr-like line, one per
    # message queued, after the smtpd client= line of its message; the
    # DSN, made by the queue, has one too but no client= line
    qmgr = re.findall(r" smtpd/queue\[\d+\]: ([0-9a-f]{8}): from=<([^>]*)>, "
                      r"size=(\d+), nrcpt=(\d+) \(queue active\)$", text,
                      re.M)
    received = set(re.findall(r" smtpd/smtpd\[\d+\]: ([0-9a-f]{8}): client=",
                              text))
    assert len(received) == EXPECTED["received"], text
    assert len(qmgr) == EXPECTED["received"] + 1, text
    assert [q for q in qmgr if q[0] not in received][0][1] == "", qmgr
    qmgr = [q for q in qmgr if q[0] in received]
    assert sorted(q[0] for q in qmgr) == sorted(received), text
    assert all(q[3] == "1" for q in qmgr), qmgr
    for q in qmgr:
        assert text.index("%s: client=" % q[0]) < \
            text.index("%s: from=<%s>, size=" % (q[0], q[1])), text
    totals = {}
    for m in re.finditer(r"^\s*(\d+)\s+(bytes received|bytes delivered|"
                         r"senders|sending hosts/domains)$", out, re.M):
        totals.setdefault(m.group(2), int(m.group(1)))
    assert totals.get("bytes received") == sum(int(q[2]) for q in qmgr), \
        (totals, qmgr, out[:1500])
    assert totals.get("bytes received") > 6 * len("Subject: logs"), totals
    # a@, b@ and the local user (whose message bounced)
    assert totals.get("senders") == len(set(q[1] for q in qmgr)) == 3, \
        (totals, qmgr)
    assert totals.get("sending hosts/domains") == 1, totals
    assert totals.get("bytes delivered", 0) > 0, totals


def _fail2ban_ips(path, filt):
    r = subprocess.run(["fail2ban-regex", "-o", "ip", path, filt],
                       stdin=subprocess.DEVNULL, stdout=subprocess.PIPE,
                       stderr=subprocess.STDOUT, timeout=60)
    out = r.stdout.decode("utf-8", "replace")
    assert r.returncode == 0, out
    return sorted(out.split())


def _need_fail2ban():
    if shutil.which("fail2ban-regex") is None or \
            not os.path.exists("/etc/fail2ban/filter.d/postfix.conf"):
        skip("fail2ban is not installed (mk/deps.sh installs it)")


def test_fail2ban_postfix_filters():
    """Debian's postfix filter, told our tag (smtpd(8) LOGGING), finds
    every relay attempt and every unknown user (the postfix jail) and
    every failed AUTH (mode auth: the postfix-sasl jail), each with
    the client's address, and nothing of the innocent clients."""
    _need_fail2ban()
    path, text = _make_log()
    assert _fail2ban_ips(path, F2B_FILTER) == sorted(
        [RELAYER] * 2 + [HARVESTER] * 2), text
    assert _fail2ban_ips(path, F2B_FILTER_SASL) == [GUESSER] * 2, text


def _installed_f2b(logpath):
    """A copy of Debian's /etc/fail2ban with our filter and jail in it,
    as an administrator installs them, the jail enabled on logpath."""
    conf = os.path.join(fixture.TEST_ROOT, "log-tools-fail2ban")
    shutil.rmtree(conf, ignore_errors=True)
    shutil.copytree("/etc/fail2ban", conf, symlinks=True)
    ours = os.path.join(fixture.REPO, "etc", "fail2ban")
    for sub in ("filter.d", "jail.d"):
        shutil.copy(os.path.join(ours, sub, "posthaste.conf"),
                    os.path.join(conf, sub, "posthaste.conf"))
    jail = os.path.join(conf, "jail.d", "posthaste.conf")
    with open(jail) as f:
        text = f.read()
    text = re.sub(r"(?m)^enabled\s*=.*$", "enabled = true", text)
    text = re.sub(r"(?m)^logpath\s*=.*$", "logpath = " + logpath, text)
    with open(jail, "w") as f:
        f.write(text)
    return conf


def _f2b_regex(conf, path, filt):
    r = subprocess.run(["fail2ban-regex", "-c", conf, "-o", "ip", path,
                        filt], stdin=subprocess.DEVNULL,
                       stdout=subprocess.PIPE, stderr=subprocess.STDOUT,
                       timeout=60)
    out = r.stdout.decode("utf-8", "replace")
    assert r.returncode == 0, out
    return sorted(out.split())


def test_fail2ban_shipped_filter_and_jail():
    """etc/fail2ban/filter.d/posthaste.conf (Debian's postfix filter
    told our tag and systemd unit), installed: mode normal finds the
    relay attempts and unknown users, mode auth the AUTH failures, the
    default both; the jail in etc/fail2ban/jail.d, once enabled, is one
    fail2ban-client loads, on that filter and our journal unit."""
    _need_fail2ban()
    path, text = _make_log()
    conf = _installed_f2b(path)
    refused = sorted([RELAYER] * 2 + [HARVESTER] * 2)
    assert _f2b_regex(conf, path, "posthaste[mode=normal]") == refused, \
        text
    assert _f2b_regex(conf, path, "posthaste[mode=auth]") == \
        [GUESSER] * 2, text
    assert _f2b_regex(conf, path, "posthaste") == \
        sorted(refused + [GUESSER] * 2), text
    r = subprocess.run(["fail2ban-client", "-c", conf, "-d"],
                       stdin=subprocess.DEVNULL, stdout=subprocess.PIPE,
                       stderr=subprocess.STDOUT, timeout=60)
    out = r.stdout.decode("utf-8", "replace")
    assert r.returncode == 0, out
    assert "['add', 'posthaste'," in out, out
    assert "'addjournalmatch', '_SYSTEMD_UNIT=posthaste.service'" in out, \
        out
    assert "smtpd/\\\\w+" in out, out
