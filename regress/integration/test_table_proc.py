"""
proc: tables (table/proc.c) and smtpctl table lookup.

A table program written to OpenSMTPD's smtpd-tables(7) manual
(table_proc_test.py, answering from a JSON file) serves one table for
the virtual domains, the virtual users and the AUTH credentials of a
real daemon: mail to a virtual user is delivered to the local user the
program names, AUTH PLAIN checks the hash it returns, an unknown user is
550.  Answers come out of order (a delayed key), matched by their IDs.
smtpctl table lookup prints what the daemon sees for file:, db:, inline
and proc: tables, with exit status 0/1/2; smtpctl update table empties
the proc: table's cache (the program is asked again).  Then the program
is killed: RCPT is 451 (never 550), smtpctl says 2; a second program
that answers garbage is given up on the same way.  A reload starts new
programs (and the old ones exit); they all exit at the end of their
input when the daemon stops.
"""

import base64
import json
import os
import shutil
import signal
import subprocess
import tempfile
import time

import fixture
from fixture import TEST_ROOT, TEST_USER1, Daemon, SMTPConnection, binary
from test_smtp_common import expect, sha512_crypt

TIMEOUT = 60
PASSWORD = "correct horse"
HERE = os.path.dirname(os.path.abspath(__file__))


def write_json(path, data):
    tmp = path + ".new"
    with open(tmp, "w") as f:
        json.dump(data, f)
    os.chmod(tmp, 0o644)
    os.rename(tmp, path)


def smtpctl(d, *args, user=None):
    return subprocess.run(
        [binary("smtpctl"), "-s", d.socket_path] + list(args),
        stdout=subprocess.PIPE, stderr=subprocess.PIPE, timeout=20,
        universal_newlines=True,
        preexec_fn=fixture.as_user(user) if user else None)


def lookup(d, table, service, key, user=None):
    r = smtpctl(d, "table", "lookup", table, service, key, user=user)
    return r.returncode, r.stdout, r.stderr


def programs_running(marker):
    pids = []
    for e in os.listdir("/proc"):
        if not e.isdigit():
            continue
        try:
            with open("/proc/%s/cmdline" % e, "rb") as f:
                cmd = f.read().decode(errors="replace")
        except OSError:
            continue
        st = fixture.proc_stat(int(e))
        if marker in cmd and st and st[1] != "Z":
            pids.append(int(e))
    return pids


def setup_dir():
    os.makedirs(TEST_ROOT, mode=0o755, exist_ok=True)
    tmp = tempfile.mkdtemp(prefix="proc.", dir=TEST_ROOT)
    os.chmod(tmp, 0o755)
    prog = os.path.join(tmp, "table_proc_test.py")
    shutil.copy(os.path.join(HERE, "table_proc_test.py"), prog)
    os.chmod(prog, 0o755)
    log = os.path.join(tmp, "requests.log")
    open(log, "w").close()
    os.chmod(log, 0o666)
    return tmp, prog, log


def requests(log, key):
    with open(log) as f:
        return [l for l in f.read().splitlines() if l.endswith("|" + key)]


def test_table_proc_end_to_end():
    tmp, prog, log = setup_dir()
    try:
        run_end_to_end(tmp, prog, log)
    finally:
        shutil.rmtree(tmp, ignore_errors=True)


def run_end_to_end(tmp, prog, log):
    db_json = os.path.join(tmp, "db.json")
    bad_json = os.path.join(tmp, "bad.json")
    data = {
        "register": ["domain", "alias", "credentials", "userinfo",
                     "source"],
        "tables": {
            "domain": ["virt.test"],
            "alias": {"bob@virt.test": TEST_USER1,
                      "slow@virt.test": TEST_USER1,
                      "pipe@virt.test": "a|b@example.test"},
            "credentials": {"alice": "alice:" + sha512_crypt(PASSWORD)},
            "userinfo": {"vmail": "2000:2000:/var/vmail"},
        },
        "delay": {"slow@virt.test": 0.4},
        "error": ["broken@virt.test"],
        "log": log,
    }
    write_json(db_json, data)
    write_json(bad_json, {"register": ["alias"], "garbage": "g",
                          "tables": {"alias": {"ok": "fine"}}})
    files = os.path.join(tmp, "map")
    with open(files, "w") as f:
        f.write("key1 value one\nmember\n")
    os.chmod(files, 0o644)
    r = subprocess.run([binary("makemap"), "-o", files + ".db", files],
                       stdout=subprocess.PIPE, stderr=subprocess.STDOUT,
                       universal_newlines=True, timeout=20)
    assert r.returncode == 0, r.stdout
    os.chmod(files + ".db", 0o644)
    conf = fixture.DEFAULT_CONF.replace(
        "listen on 127.0.0.1 port @PORT@",
        "listen on 127.0.0.1 port @PORT@ auth-optional <db> auth-plaintext")
    conf += (
        'table db "proc:%s %s"\n'
        'table bad "proc:%s %s" cache-ttl 0\n'
        'table txt file:%s\n'
        'table bdb db:%s.db\n'
        'table nets { 192.0.2.0/24 }\n'
        'action "virt" maildir "~/Maildir" virtual <db>\n'
        'match from any for domain <db> action "virt"\n'
        % (prog, db_json, prog, bad_json, files, files))
    fixture.reset_maildir(TEST_USER1)   # other modules deliver there too
    with Daemon(conf=conf) as d:
        # virtual users: delivered, unknown 550, a slow answer overtaken
        # by a fast one on another connection
        c1 = SMTPConnection(d.port)
        c2 = SMTPConnection(d.port)
        with c1, c2:
            for c in (c1, c2):
                assert c.command("EHLO client.test").code == 250
                assert c.command("MAIL FROM:<a@client.test>").code == 250
            c1.send("RCPT TO:<slow@virt.test>")
            t0 = time.monotonic()
            expect(c2.command("RCPT TO:<bob@virt.test>"), 250, "2.1.5",
                   "a virtual user")
            fast = time.monotonic() - t0
            expect(c1.reply(), 250, "2.1.5", "the delayed answer")
            assert fast < 0.4, "the fast answer waited for the slow one"
            expect(c2.command("RCPT TO:<nobody@virt.test>"), 550, None,
                   "unknown virtual user")
            expect(c2.command("RCPT TO:<broken@virt.test>"), 451, None,
                   "the program answers an error")
            assert c2.command("DATA").code == 354
            r = c2.command("Subject: proc\r\n\r\nvia a proc table\r\n.")
            expect(r, 250, None, "DATA")
        fixture.wait_maildir(TEST_USER1)
        # AUTH from the program's credentials
        with SMTPConnection(d.port) as c:
            assert c.command("EHLO client.test").code == 250
            plain = base64.b64encode(
                ("\0alice\0" + PASSWORD).encode()).decode()
            expect(c.command("AUTH PLAIN " + plain), 235, "2.7.0", "AUTH")
        with SMTPConnection(d.port) as c:
            assert c.command("EHLO client.test").code == 250
            plain = base64.b64encode(b"\0alice\0wrong").decode()
            expect(c.command("AUTH PLAIN " + plain), 535, None,
                   "a wrong password")

        # smtpctl table lookup: every kind of table, exit 0/1/2
        assert lookup(d, "db", "alias", "BOB@virt.test")[:2] == \
            (0, TEST_USER1 + "\n")
        assert lookup(d, "db", "alias", "pipe@virt.test")[:2] == \
            (0, "a|b@example.test\n")
        assert lookup(d, "db", "domain", "virt.test")[:2] == (0, "")
        assert lookup(d, "db", "domain", "other.test")[:2] == (1, "")
        assert lookup(d, "db", "userinfo", "vmail")[:2] == \
            (0, "2000:2000:/var/vmail\n")
        rc, out, err = lookup(d, "db", "mailaddr", "x@virt.test")
        assert rc == 2 and out == "" and "temporary" in err, (rc, err)
        assert lookup(d, "txt", "string", "key1")[:2] == (0, "value one\n")
        assert lookup(d, "txt", "string", "member")[:2] == (0, "")
        assert lookup(d, "txt", "string", "nope")[:2] == (1, "")
        assert lookup(d, "bdb", "string", "key1")[:2] == (0, "value one\n")
        assert lookup(d, "bdb", "string", "nope")[:2] == (1, "")
        assert lookup(d, "nets", "netaddr", "192.0.2.7")[:2] == (0, "")
        assert lookup(d, "nets", "netaddr", "198.51.100.1")[:2] == (1, "")
        rc, out, err = lookup(d, "nosuch", "alias", "x")
        assert rc == 2 and "no such table" in err, (rc, err)
        rc, out, err = lookup(d, "db", "nosuch", "x")
        assert rc == 2 and "no such service" in err, (rc, err)
        rc, out, err = lookup(d, "db", "alias", "bob@virt.test",
                              user=TEST_USER1)
        assert rc == 2 and "permission denied" in err, (rc, err)

        # the cache, and smtpctl update table emptying it
        n = len(requests(log, "bob@virt.test"))
        data["tables"]["alias"]["bob@virt.test"] = "changed"
        write_json(db_json, data)
        assert lookup(d, "db", "alias", "bob@virt.test")[:2] == \
            (0, TEST_USER1 + "\n")
        assert len(requests(log, "bob@virt.test")) == n, "not cached"
        r = smtpctl(d, "update", "table", "db")
        assert r.returncode == 0, r.stderr
        assert lookup(d, "db", "alias", "bob@virt.test")[:2] == \
            (0, "changed\n")
        assert len(requests(log, "bob@virt.test")) == n + 1

        # a program answering garbage is given up on
        assert lookup(d, "bad", "alias", "ok")[:2] == (0, "fine\n")
        assert lookup(d, "bad", "alias", "g")[0] == 2
        assert lookup(d, "bad", "alias", "ok")[0] == 2
        assert fixture.poll(
            lambda: "wrote a line that is no answer" in d.log()), \
            d.log_tail()

        # the program killed: 451 at RCPT, never 550
        pids = programs_running(db_json)
        assert len(pids) == 1, pids
        os.kill(pids[0], signal.SIGKILL)
        assert fixture.poll(lambda: "exited (end of its output)" in
                            d.log()), d.log_tail()
        with SMTPConnection(d.port) as c:
            assert c.command("EHLO client.test").code == 250
            assert c.command("MAIL FROM:<a@client.test>").code == 250
            expect(c.command("RCPT TO:<new@virt.test>"), 451, None,
                   "a virtual user, the program dead")
            r = smtpctl(d, "update", "table", "db")
            assert r.returncode == 0, r.stderr
            expect(c.command("RCPT TO:<bob@virt.test>"), 451, None,
                   "the domain, the program dead")
        rc, out, err = lookup(d, "db", "alias", "bob@virt.test")
        assert rc == 2, (rc, out, err)

        # a reload starts a new lookup process, and new programs; the old
        # lookup's programs see their input end and exit
        d.send_signal(signal.SIGHUP)
        assert fixture.poll(lambda: lookup(d, "db", "alias",
                                           "bob@virt.test")[0] == 0), \
            d.log_tail()
        assert fixture.poll(lambda: len(programs_running(bad_json)) == 1,
                            timeout=5), programs_running(bad_json)
        with SMTPConnection(d.port) as c:
            assert c.command("EHLO client.test").code == 250
            assert c.command("MAIL FROM:<a@client.test>").code == 250
            expect(c.command("RCPT TO:<slow@virt.test>"), 250, "2.1.5",
                   "after the reload")
    # the other program saw its input end and exited
    assert fixture.poll(lambda: not programs_running(bad_json), timeout=5)


def test_table_proc_config_checks():
    """smtpd -n: the program must be runnable by lookup's user; a name
    with '|' cannot be sent in the protocol; arguments are split."""
    tmp, prog, log = setup_dir()
    try:
        conf = os.path.join(tmp, "smtpd.conf")

        def check(text):
            with open(conf, "w") as f:
                f.write('spool "%s/spool"\n%s' % (tmp, text))
            return fixture.run_smtpd(["-n", "-f", conf])

        r = check('table t "proc:%s %s/x.json"\n' % (prog, tmp))
        assert r.returncode == 0, r.output
        r = check('table t proc:%s/missing\n' % tmp)
        assert r.returncode != 0 and "cannot run it" in r.output, r.output
        os.chmod(prog, 0o644)
        r = check('table t proc:%s\n' % prog)
        assert r.returncode != 0 and "cannot run it" in r.output, r.output
        os.chmod(prog, 0o755)
        r = check('table a|b proc:%s\n' % prog)
        assert r.returncode != 0 and "'|'" in r.output, r.output
        r = check('table t proc:relative\n')
        assert r.returncode != 0, r.output
    finally:
        shutil.rmtree(tmp, ignore_errors=True)
