"""
Rate limits kept across all smtp workers (issue 22): "smtp
client-message-rate", client-rcpt-rate, client-auth-failures,
user-message-rate, user-rcpt-rate, client-connection-rate and
rate-exempt (common/ratelimit.c, smtp/smtp_limits.c).

One daemon for the module, without -d, logging to a syslog receiver of
the test's own (test_logging.SyslogDaemon) so that fail2ban-regex reads
what /var/log/mail.log would hold; two smtp workers.  Each test speaks
from a 127.0.0.x address of its own, so the limits of one do not reach
another:
 - messages over client-message-rate: 450 4.7.1, the count shared by
   both workers (refusals logged by both worker pids, 3 accepted);
 - recipients over client-rcpt-rate: 450 three times, then 421 and
   close;
 - AUTH failures over client-auth-failures: 421 and close, and the
   address's next connection 421 at the greeting;
 - an authenticated user is limited by user-message-rate and
   user-rcpt-rate (from any address), not by the client limits;
 - an exempt network is not limited;
 - smtpctl show limits lists the limited keys, show metrics counts the
   refusals;
 - a reload (SIGHUP) adds client-connection-rate 2/2s: the table
   survives it, the 3rd connection in a burst is refused with 421 and
   a second later one is let in again;
 - fail2ban-regex: Debian's postfix filter finds the 450s by address,
   our etc/fail2ban/filter.d/posthaste.conf the 421s too; never the
   exempt address.
Ports: the daemon takes a free one (fixture); 15860-15869 are this
module's should it need fixed ones.
"""

import os
import re
import shutil
import signal
import socket
import subprocess
import time

import fixture
from fixture import (SMTPConnection, TEST_USER1, binary, poll, proc_title,
                     skip)
from test_logging import F2B_FILTER, SyslogDaemon
from test_smtp_auth import PASSWORD, auth_conf, b64

RCPT = "%s@example.test" % TEST_USER1

MSG = "127.0.0.61"	# client-message-rate, across the workers
RCPTS = "127.0.0.62"	# client-rcpt-rate, then 421
GUESS = "127.0.0.63"	# client-auth-failures
USER_A = "127.0.0.64"	# alice, under the per-user limits
USER_B = "127.0.0.65"	# alice again, from elsewhere
EXEMPT = "127.0.0.66"	# smtp rate-exempt
CONN = "127.0.0.67"	# client-connection-rate, after the reload

LIMITS = """\
smtp client-message-rate 3/m
smtp client-rcpt-rate 4/m
smtp client-auth-failures 1/m
smtp user-message-rate 5/m
smtp user-rcpt-rate 6/m
smtp rate-exempt { 127.0.0.66, 192.0.2.0/24 }
"""

_d = {}


def daemon():
    if "d" not in _d:
        conf = auth_conf("auth-optional <creds> auth-plaintext") + LIMITS
        _d["conf"] = conf
        d = SyslogDaemon(conf=conf)
        d.start()
        _d["d"] = d
    return _d["d"]


def teardown_module():
    d = _d.pop("d", None)
    if d is not None:
        d.stop()


class Client(SMTPConnection):
    """fixture.SMTPConnection from a source address of the test's."""

    def __init__(self, port, source, timeout=30):
        self.sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
        self.sock.settimeout(timeout)
        self.sock.bind((source, 0))
        self.sock.connect(("127.0.0.1", port))
        self.buf = b""
        self.greeting = self.reply()


def session(source, auth=False):
    c = Client(daemon().port, source)
    assert c.greeting.code == 220, c.greeting
    r = c.command("EHLO %s.client.test" % source.replace(".", "-"))
    assert r.code == 250, r
    if auth:
        r = c.command("AUTH PLAIN " + b64("\0alice\0" + PASSWORD))
        assert r.code == 235, r
    return c


def closed(c):
    try:
        c.sock.settimeout(5)
        return c.sock.recv(1) == b""
    except OSError:
        return True


def expect(r, code, text=None):
    assert r.code == code, r
    if text is not None:
        assert text in r.text, r


def smtpctl(*args):
    d = daemon()
    r = subprocess.run([binary("smtpctl"), "-s",
                        os.path.join(d.tmp, "smtpd.sock")] + list(args),
                       stdin=subprocess.DEVNULL, stdout=subprocess.PIPE,
                       stderr=subprocess.STDOUT, timeout=30)
    out = r.stdout.decode("utf-8", "replace")
    assert r.returncode == 0, out
    return out


def worker_pids_refusing(source, stage):
    text = daemon().syslog.text()
    return set(re.findall(r"smtpd/smtpd\[(\d+)\]: NOQUEUE: reject: %s "
                          r"from \S+\[%s\]: 450 4\.7\.1 " %
                          (stage, re.escape(source)), text))


def test_message_rate_across_workers():
    """3/m from one address, each MAIL on a connection of its own: the
    kernel spreads them over both workers, and still 3 pass; the
    refusals come from both workers' pids (one of them refused having
    accepted fewer than 3 itself)."""
    accepted = refused = 0
    for _ in range(16):
        c = session(MSG)
        r = c.command("MAIL FROM:<a@client.test>")
        if r.code == 250:
            accepted += 1
        else:
            expect(r, 450, "4.7.1 Client host rejected: message rate")
            refused += 1
        expect(c.command("QUIT"), 221)
        c.close()
        if refused >= 2 and len(worker_pids_refusing(MSG, "MAIL")) == 2:
            break
    assert accepted == 3, (accepted, refused)
    assert poll(lambda: len(worker_pids_refusing(MSG, "MAIL")) == 2,
                timeout=5), daemon().syslog.text()[-3000:]


def test_rcpt_rate_then_421():
    """4/m recipients: the 5th to 7th refused with 450 (the session goes
    on), the 8th with 421 and the connection closed."""
    c = session(RCPTS)
    expect(c.command("MAIL FROM:<a@client.test>"), 250)
    for _ in range(4):
        expect(c.command("RCPT TO:<%s>" % RCPT), 250)
    for _ in range(3):
        expect(c.command("RCPT TO:<%s>" % RCPT), 450,
               "Client host rejected: recipient rate limit exceeded")
    expect(c.command("NOOP"), 250)
    expect(c.command("RCPT TO:<%s>" % RCPT), 421, "4.7.0")
    assert closed(c)
    c.close()


def test_auth_failures():
    """1 failure a minute: the 2nd failure is answered 421 and the
    connection closed; the address's next connection is refused at
    the greeting, other addresses are not."""
    c = session(GUESS)
    expect(c.command("AUTH PLAIN " + b64("\0alice\0wrong")), 535)
    c.command("QUIT")
    c.close()
    c = session(GUESS)
    r = c.command("AUTH PLAIN " + b64("\0alice\0wrong again"))
    expect(r, 421, "too many authentication failures")
    assert closed(c)
    c.close()
    c = Client(daemon().port, GUESS)
    expect(c.greeting, 421, "4.7.0")
    assert "too many authentication failures" in c.greeting.text
    assert closed(c)
    c.close()
    session(USER_A).close()


def send(c, n=1):
    expect(c.command("MAIL FROM:<a@client.test>"), 250)
    expect(c.command("RCPT TO:<%s>" % RCPT), 250)
    expect(c.command("DATA"), 354)
    expect(c.command("Subject: rate %d\r\n\r\nrate\r\n." % n), 250)


def test_user_limits():
    """alice is limited as alice (5 messages, 6 recipients a minute,
    from any address), not as her client's address (3 messages, 4
    recipients)."""
    c = session(USER_A, auth=True)
    for i in range(4):	# past client-message-rate and -rcpt-rate
        send(c, i)
    expect(c.command("MAIL FROM:<a@client.test>"), 250)
    expect(c.command("RCPT TO:<%s>" % RCPT), 250)
    expect(c.command("RCPT TO:<%s>" % RCPT), 250)	# the 6th
    expect(c.command("RCPT TO:<%s>" % RCPT), 450,
           "4.7.1 Command rejected: recipient rate limit")
    expect(c.command("RSET"), 250)
    expect(c.command("MAIL FROM:<a@client.test>"), 450,
           "4.7.1 Command rejected: message rate limit")
    c.command("QUIT")
    c.close()
    # the same user elsewhere: still limited
    c = session(USER_B, auth=True)
    expect(c.command("MAIL FROM:<a@client.test>"), 450,
           "Command rejected: message rate limit")
    c.command("QUIT")
    c.close()
    # that address unauthenticated: its own count, untouched
    c = session(USER_B)
    expect(c.command("MAIL FROM:<a@client.test>"), 250)
    c.command("QUIT")
    c.close()


def test_exempt():
    """An exempt network: no limit at all."""
    c = session(EXEMPT)
    for _ in range(5):
        expect(c.command("MAIL FROM:<a@client.test>"), 250)
        for _ in range(5):
            expect(c.command("RCPT TO:<%s>" % RCPT), 250)
        expect(c.command("RSET"), 250)
    c.command("QUIT")
    c.close()


def test_show_limits_and_metrics():
    """smtpctl show limits: the limited keys with their limit, count and
    time to clear; show metrics counts the refusals by limit."""
    out = smtpctl("show", "limits")
    assert re.search(r"^client-message-rate 127\.0\.0\.61 limit=3/60s "
                     r"count=3 clears=\d+s limited retry=\d+s$", out,
                     re.M), out
    assert re.search(r"^user-message-rate alice limit=5/60s count=5 "
                     r"clears=\d+s limited retry=\d+s$", out, re.M), out
    assert re.search(r"^client-auth-failures 127\.0\.0\.63 limit=1/60s "
                     r"count=2 .* limited", out, re.M), out
    assert "127.0.0.66" not in out, out
    out = smtpctl("show", "metrics")
    m = re.search(r'^posthaste_smtp_rate_limited_total\{limit='
                  r'"client-message-rate"\} (\d+)$', out, re.M)
    assert m and int(m.group(1)) >= 2, out
    for kind in ("client-rcpt-rate", "client-auth-failures",
                 "user-message-rate", "user-rcpt-rate"):
        m = re.search(r'^posthaste_smtp_rate_limited_total\{limit='
                      r'"%s"\} (\d+)$' % kind, out, re.M)
        assert m and int(m.group(1)) >= 1, (kind, out)
    assert "posthaste_smtp_rate_table_full_total 0" in out, out


def test_reload_connection_rate():
    """SIGHUP with client-connection-rate 2/2s added: the table is kept
    (127.0.0.61 still refused), a burst of connections from one
    address gets 421 at the 3rd, and a second later one is let in."""
    d = daemon()
    with open(d.conf_path, "w") as f:
        f.write((_d["conf"] + "smtp client-connection-rate 2/2s\n").replace(
            "@TMP@", d.tmp).replace("@PORT@", str(d.port)))
    old = [p for p in fixture.children_of(d.pid)
           if (proc_title(p) or "").startswith("smtpd: smtp worker")]
    os.kill(d.pid, signal.SIGHUP)
    assert poll(lambda: "configuration reloaded" in d.syslog.text(),
                timeout=10), d.syslog.text()[-2000:]
    # an old worker serves what reached it before it retired under the
    # old configuration (no connection rate): wait until they have
    assert poll(lambda: all((proc_title(p) or "(retired)").endswith(
        "(retired)") for p in old), timeout=10), \
        [(p, proc_title(p)) for p in old]
    # the table was kept
    c = session(MSG)
    expect(c.command("MAIL FROM:<a@client.test>"), 450, "message rate")
    c.command("QUIT")
    c.close()
    # a burst of 3: the 3rd refused
    codes = []
    for _ in range(3):
        c = Client(d.port, CONN)
        g = c.greeting
        codes.append(g.code)
        if g.code == 421:
            assert closed(c)
        c.close()
    assert codes == [220, 220, 421], (codes, d.syslog.text()[-2000:])
    expect(g, 421, "4.7.0")
    assert "connection rate limit exceeded" in g.text, g
    time.sleep(1.1)	# one connection a second
    c = Client(d.port, CONN)
    expect(c.greeting, 220)
    c.close()


def _f2b(path, filt, conf=None):
    cmd = ["fail2ban-regex"] + (["-c", conf] if conf else []) + \
        ["-o", "ip", path, filt]
    r = subprocess.run(cmd, stdin=subprocess.DEVNULL, stdout=subprocess.PIPE,
                       stderr=subprocess.STDOUT, timeout=60)
    out = r.stdout.decode("utf-8", "replace")
    assert r.returncode == 0, out
    return out.split()


def test_fail2ban():
    """Debian's postfix filter (told our tag) finds every 450 refusal by
    its address; our shipped filter also the 421s (connect, AUTH, the
    session that kept going); neither the exempt address."""
    if shutil.which("fail2ban-regex") is None or \
            not os.path.exists("/etc/fail2ban/filter.d/postfix.conf"):
        skip("fail2ban is not installed (mk/deps.sh installs it)")
    d = daemon()
    path = os.path.join(d.tmp, "mail.log")
    d.syslog.as_file(path)
    with open(path) as f:
        text = f.read()
    ips = _f2b(path, F2B_FILTER)
    assert ips.count(MSG) >= 2, (ips, text)
    assert ips.count(RCPTS) == 3, (ips, text)
    assert ips.count(USER_A) == 2 and ips.count(USER_B) == 1, (ips, text)
    assert EXEMPT not in ips, (ips, text)
    conf = os.path.join(fixture.TEST_ROOT, "rate-limits-fail2ban")
    shutil.rmtree(conf, ignore_errors=True)
    shutil.copytree("/etc/fail2ban", conf, symlinks=True)
    shutil.copy(os.path.join(fixture.REPO, "etc", "fail2ban", "filter.d",
                             "posthaste.conf"),
                os.path.join(conf, "filter.d", "posthaste.conf"))
    ips = _f2b(path, "posthaste[mode=normal]", conf)
    shutil.rmtree(conf, ignore_errors=True)
    assert ips.count(RCPTS) == 4, (ips, text)		# 3 x 450, 421
    assert ips.count(GUESS) == 2, (ips, text)		# AUTH, CONNECT
    assert ips.count(CONN) >= 1, (ips, text)
    assert EXEMPT not in ips, (ips, text)
