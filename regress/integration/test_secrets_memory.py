"""
Secrets of inline tables stay in the one process that uses them (issue 16
item 6).  The parent parses smtpd.conf and every child inherits what it
parsed through fork: a credentials table's crypt hashes and a relay's
password were found in the heap of the smtp workers, control, the mta,
the queue and a delivery process.  Now lookup alone keeps the hashes (it
checks AUTH against them), the mta alone the relay password (it logs in
to the relay), and every other process, the parent included, wipes them
right after fork (config_forget_secrets()), with no copy left in the
parser's freed buffers or a stdio buffer.

The proof reads memory: for each process of the daemon (and a delivery
process, kept alive by its idle time), every writable mapping listed in
/proc/PID/maps is read through /proc/PID/mem (root may) and searched for
the secret bytes.  Regions larger than SCAN_REGION_MAX (a sanitizer's
shadow memory) are skipped.
"""

import base64
import re
import shutil
import signal
import subprocess

from fixture import (TEST_USER1, Daemon, binary, children_of, maildir_files, poll,
                     proc_title, read_file, skip, smtp_dialog,
                     unique_marker)

PASSWORD = "PhSecretLogin-5e1"
RELAY_PASSWORD = "PhRelayPw-8d2f71c0"
SCAN_REGION_MAX = 1 << 30

CONF = """\
spool "@TMP@/spool"
socket "@TMP@/smtpd.sock"
smtp workers 2
table creds { "alice" = "@HASH@" }
table relaycreds { "lbl" = "relayuser:@RELAY@" }
listen on 127.0.0.1 port @PORT@ auth-optional <creds> auth-plaintext
action "local" maildir "~/Maildir"
action "out" relay host smtp+tls://lbl@127.0.0.1:9 auth <relaycreds>
match from any for domain "example.test" action "local"
match from auth for any action "out"
"""


def crypt_hash():
    """A SHA-512 crypt hash of PASSWORD with a salt of its own."""
    if shutil.which("openssl") is None:
        skip("openssl(1) is needed to make a crypt hash")
    r = subprocess.run(["openssl", "passwd", "-6", "-salt", "PhSaltQ7zk",
                        PASSWORD], stdout=subprocess.PIPE, check=True)
    return r.stdout.decode().strip()


def delivered(marker):
    """Is a message with marker in the test user's Maildir?  (Other
    tests may deliver there too: counting files would not do.)"""
    for path in maildir_files(TEST_USER1):
        try:
            if marker.encode() in read_file(path):
                return True
        except FileNotFoundError:
            pass
    return False


def descendants(pid):
    out = []
    for kid in children_of(pid):
        out.append(kid)
        out.extend(descendants(kid))
    return out


def holds(pid, needles):
    """Which of needles (bytes) appear in pid's writable memory."""
    found = set()
    with open("/proc/%d/maps" % pid) as f:
        maps = f.read().splitlines()
    with open("/proc/%d/mem" % pid, "rb", buffering=0) as mem:
        for line in maps:
            fields = line.split()
            start, end = (int(x, 16) for x in fields[0].split("-"))
            if "w" not in fields[1] or end - start > SCAN_REGION_MAX:
                continue
            if len(fields) > 5 and fields[5] in ("[vvar]", "[vsyscall]"):
                continue
            try:
                mem.seek(start)
                data = mem.read(end - start)
            except OSError:
                continue
            for n in needles:
                if n in data:
                    found.add(n)
    return found


def role(title):
    """"smtpd: lookup" -> "lookup", "smtpd: delivery USER" likewise."""
    t = re.sub(r"^smtpd: ", "", title or "")
    return re.sub(r" \(retired\)$", "", t)	# an old generation's


def scan(d, needles):
    """{pid: (role, sorted names of the needles it holds)} for the
    daemon and all its descendants."""
    seen = {}
    for pid in [d.pid] + descendants(d.pid):
        title = "parent" if pid == d.pid else role(proc_title(pid))
        try:
            got = holds(pid, needles)
        except (FileNotFoundError, ProcessLookupError):
            continue	# gone meanwhile
        seen[pid] = (title, sorted(needles[n] for n in got))
    return seen


def misplaced(seen):
    """Lines for the processes holding a secret they do not use."""
    wrong = []
    for pid, (title, got) in sorted(seen.items()):
        allowed = set()
        if title == "lookup":
            allowed.add("crypt hash")
        if title == "mta":
            allowed.add("relay password")
        extra = set(got) - allowed
        if extra:
            wrong.append("%d %s: %s" % (pid, title, ", ".join(sorted(extra))))
    return wrong


def test_table_secrets_only_where_used():
    """At start-up, and again after a reload (parsed by the running
    parent): the hash only in lookup, the relay password only in the
    mta, neither in the parent, queue, control, the workers or a
    delivery process."""
    hash_ = crypt_hash()
    conf = CONF.replace("@HASH@", hash_).replace("@RELAY@", RELAY_PASSWORD)
    needles = {hash_.encode(): "crypt hash",
               RELAY_PASSWORD.encode(): "relay password"}
    with Daemon(conf=conf) as d:
        # lookup uses the hash: AUTH works
        plain = base64.b64encode(b"\0alice\0" + PASSWORD.encode()).decode()
        r = smtp_dialog(d.port, ["EHLO client.test", "AUTH PLAIN " + plain,
                                 "QUIT"])
        assert r[2].code == 235, "AUTH refused: %s" % r[2].text
        # a delivery process, alive for its idle time afterwards
        marker = unique_marker("secrets")
        r = smtp_dialog(d.port, [
            "EHLO client.test", "MAIL FROM:<s@client.test>",
            "RCPT TO:<%s@example.test>" % TEST_USER1, "DATA",
            ("Subject: %s\r\n\r\n%s\r\n.\r\n" % (marker, marker)).encode(),
            "QUIT"])
        assert r[5].code == 250, r[5].text
        assert poll(lambda: delivered(marker)), "not delivered"
        seen = scan(d, needles)
        # lookup has no entries for the relay's table: reloading it is
        # a no-op there, not a look-up of wiped entries
        for table in ("relaycreds", "creds"):
            r = subprocess.run([binary("smtpctl"), "-s", d.socket_path,
                                "update", "table", table],
                               stdout=subprocess.PIPE,
                               stderr=subprocess.STDOUT, timeout=20)
            assert r.returncode == 0, r.stdout
        # a reload: the running parent parses the file again
        d.send_signal(signal.SIGHUP)
        poll(lambda: "configuration reloaded" in d.log(), 15)
        assert "configuration reloaded" in d.log(), d.log_tail()
        r = smtp_dialog(d.port, ["EHLO client.test", "AUTH PLAIN " + plain,
                                 "QUIT"])
        assert r[2].code == 235, "AUTH refused after reload: %s" % r[2].text
        reloaded = scan(d, needles)
    titles = [t for t, _ in seen.values()]
    # parent, queue, control, lookup, mta, 2 workers, a delivery process
    assert len(seen) >= 8, seen
    assert any(t.startswith("delivery") for t in titles), titles
    wrong = misplaced(seen)
    assert not wrong, "secrets where they do not belong: %s (all: %s)" % (
        "; ".join(wrong), seen)
    # and where they do belong, they are there (the scan sees memory)
    assert ("lookup", ["crypt hash"]) in seen.values(), seen
    assert ("mta", ["relay password"]) in seen.values(), seen
    wrong = misplaced(reloaded)
    assert not wrong, "after a reload, secrets where they do not belong: " \
        "%s (all: %s)" % ("; ".join(wrong), reloaded)
    assert ("lookup", ["crypt hash"]) in reloaded.values(), reloaded
