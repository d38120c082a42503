"""
makemap(8) and newaliases: text to .db and back (-U), map, set and
aliases types, hash and btree, duplicate keys and bad lines reported as
FILE:LINE with nothing written, and newaliases finding the aliases table
of smtpd.conf.  The forms makemap(8) and sendmail(8) document work
through the links "make install" and the package create (newaliases ->
sendmail, which runs makemap): "newaliases -f ALIASES", "newaliases -C
smtpd.conf", "sendmail -bi [-C smtpd.conf]", and plain "newaliases",
which builds /etc/aliases.db when there is no /etc/smtpd.conf.
"""

import contextlib
import fcntl
import os
import shutil
import subprocess
import tempfile

from fixture import TEST_ROOT, binary, skip


def run(args):
    return subprocess.run([binary("makemap")] + args,
                          stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                          timeout=30, universal_newlines=True)


def newaliases(tmp, args):
    link = os.path.join(tmp, "newaliases")
    if not os.path.exists(link):
        os.symlink(binary("makemap"), link)
    return subprocess.run([link] + args, stdout=subprocess.PIPE,
                          stderr=subprocess.PIPE, timeout=30,
                          universal_newlines=True)


def write(path, text):
    with open(path, "w") as f:
        f.write(text)


def test_makemap_round_trips():
    tmp = tempfile.mkdtemp(prefix="lookup-mm-")
    try:
        src = os.path.join(tmp, "map")
        write(src, "# comment\nKey1 value one\nkey2: v2\n  continued\n"
              "@Example.ORG catchall\n")
        for dbtype in ("hash", "btree"):
            r = run(["-d", dbtype, src])
            assert r.returncode == 0, r.stderr
            r = run(["-U", src + ".db"])
            assert r.returncode == 0, r.stderr
            assert sorted(r.stdout.splitlines()) == sorted([
                "key1\tvalue one", "key2\tv2 continued",
                "@example.org\tcatchall"]), r.stdout
        # a set, with -o
        write(src, "example.org\nexample.net\n")
        out = os.path.join(tmp, "domains.db")
        r = run(["-t", "set", "-o", out, src])
        assert r.returncode == 0, r.stderr
        r = run(["-U", out])
        assert sorted(r.stdout.split()) == ["example.net", "example.org"]
        # aliases
        al = os.path.join(tmp, "aliases")
        write(al, "Root: alice\nlist: a, b,\n\tc@d.test\n")
        r = run(["-t", "aliases", al])
        assert r.returncode == 0, r.stderr
        r = run(["-t", "aliases", "-U", al + ".db"])
        assert sorted(r.stdout.splitlines()) == [
            "list: a, b, c@d.test", "root: alice"], r.stdout
    finally:
        shutil.rmtree(tmp)


def test_makemap_errors_write_nothing():
    tmp = tempfile.mkdtemp(prefix="lookup-mm-")
    try:
        src = os.path.join(tmp, "map")
        write(src, "a 1\nb 2\n")
        assert run([src]).returncode == 0
        before = os.stat(src + ".db")
        write(src, "a 1\nb 2\nA 3\n")
        r = run([src])
        assert r.returncode != 0
        assert "%s:3: duplicate key" % src in r.stderr, r.stderr
        al = os.path.join(tmp, "aliases")
        write(al, "ok: alice\nbad no colon\n")
        r = run(["-t", "aliases", al])
        assert r.returncode != 0 and "%s:2:" % al in r.stderr, r.stderr
        write(al, "ok: alice\nbad: /a/../b\n")
        r = run(["-t", "aliases", al])
        assert r.returncode != 0 and "%s:2:" % al in r.stderr, r.stderr
        assert not os.path.exists(al + ".db")
        write(src, "a b\n")
        r = run(["-t", "set", src])
        assert r.returncode != 0 and "%s:1:" % src in r.stderr
        # the old database is untouched, and no temporary is left
        after = os.stat(src + ".db")
        assert (before.st_ino, before.st_mtime_ns) == \
            (after.st_ino, after.st_mtime_ns)
        assert [n for n in os.listdir(tmp) if n.startswith(".")] == []
        assert run(["-t", "nope", src]).returncode != 0
    finally:
        shutil.rmtree(tmp)


def test_newaliases_uses_the_configured_table():
    tmp = tempfile.mkdtemp(prefix="lookup-mm-")
    try:
        al = os.path.join(tmp, "aliases")
        write(al, "root: alice\n")
        conf = os.path.join(tmp, "smtpd.conf")
        write(conf, 'table aliases db:%s.db\n'
              'action "local" maildir alias <aliases>\n'
              'match from any for domain "example.test" action "local"\n'
              % al)
        r = newaliases(tmp, ["-C", conf])
        assert r.returncode == 0, r.stderr
        assert os.path.exists(al + ".db")
        r = run(["-t", "aliases", "-U", al + ".db"])
        assert r.stdout.strip() == "root: alice"
        write(conf, 'table aliases file:%s\n' % al)
        r = newaliases(tmp, ["-C", conf])
        assert r.returncode == 0 and "nothing to build" in r.stdout
        # no aliases table: /etc/aliases, as other MTAs' newaliases
        write(conf, 'table other file:%s\n' % al)
        if not os.path.exists("/etc/aliases"):
            r = newaliases(tmp, ["-C", conf])
            assert r.returncode != 0 and "/etc/aliases" in r.stderr, \
                r.stderr
    finally:
        shutil.rmtree(tmp)


def via_sendmail(tmp, name, args):
    """BINDIR/sendmail run under the name of a link to it, as installed
    (BINDIR/newaliases -> SBINDIR/sendmail)."""
    link = os.path.join(tmp, name)
    if not os.path.exists(link):
        os.symlink(binary("sendmail"), link)
    return subprocess.run([link] + args, stdout=subprocess.PIPE,
                          stderr=subprocess.PIPE, timeout=30,
                          universal_newlines=True,
                          env={"PATH": "/usr/bin:/bin"})


def test_newaliases_documented_forms():
    """newaliases -f ALIASES (makemap(8)), -C smtpd.conf, sendmail -bi -C,
    all through the sendmail link, as installed."""
    tmp = tempfile.mkdtemp(prefix="lookup-mm-")
    try:
        al = os.path.join(tmp, "aliases")
        write(al, "root: alice\nteam: alice, bob\n")
        r = via_sendmail(tmp, "newaliases", ["-f", al])
        assert r.returncode == 0, "newaliases -f %s: %s" % (al, r.stderr)
        r = run(["-t", "aliases", "-U", al + ".db"])
        assert sorted(r.stdout.splitlines()) == [
            "root: alice", "team: alice, bob"], r.stdout
        os.unlink(al + ".db")

        conf = os.path.join(tmp, "smtpd.conf")
        write(conf, 'table aliases db:%s.db\n'
              'action "local" mbox alias <aliases>\n'
              'match from any for domain "example.test" action "local"\n'
              % al)
        r = via_sendmail(tmp, "newaliases", ["-C", conf])
        assert r.returncode == 0, r.stderr
        assert os.path.exists(al + ".db")
        os.unlink(al + ".db")
        r = via_sendmail(tmp, "sendmail", ["-bi", "-C", conf])
        assert r.returncode == 0, "sendmail -bi -C: %s" % r.stderr
        assert os.path.exists(al + ".db"), "sendmail -bi built nothing"

        # a bad aliases file is reported, and nothing is written
        write(al, "root alice\n")
        os.unlink(al + ".db")
        r = via_sendmail(tmp, "newaliases", ["-f", al])
        assert r.returncode != 0 and not os.path.exists(al + ".db")
        r = via_sendmail(tmp, "newaliases", ["-x"])
        assert r.returncode == 64 and "usage: newaliases" in r.stderr
    finally:
        shutil.rmtree(tmp)


def test_newaliases_without_arguments():
    """Plain newaliases (what package scripts run after editing
    /etc/aliases) on a host without /etc/smtpd.conf: /etc/aliases.db.
    /etc/aliases and /etc/aliases.db are put back as found."""
    if os.path.exists("/etc/smtpd.conf"):
        skip("/etc/smtpd.conf exists: newaliases would build what it "
             "names, which this test does not touch")
    lock = os.open(os.path.join(TEST_ROOT, "etc-aliases.lock"),
                   os.O_RDWR | os.O_CREAT, 0o600)
    fcntl.flock(lock, fcntl.LOCK_EX)
    saved = {}
    for p in ("/etc/aliases", "/etc/aliases.db"):
        if os.path.lexists(p):
            with open(p, "rb") as f:
                saved[p] = (f.read(), os.stat(p))
    tmp = tempfile.mkdtemp(prefix="lookup-mm-")
    try:
        if "/etc/aliases" not in saved:
            write("/etc/aliases", "postmaster: root\n")
        r = via_sendmail(tmp, "newaliases", [])
        assert r.returncode == 0, "newaliases: %s" % r.stderr
        assert "/etc/aliases.db" in r.stdout, r.stdout
        r = run(["-t", "aliases", "-U", "/etc/aliases.db"])
        assert r.returncode == 0, r.stderr
        os.unlink("/etc/aliases.db")
        r = via_sendmail(tmp, "sendmail", ["-bi"])
        assert r.returncode == 0, "sendmail -bi: %s" % r.stderr
        assert os.path.exists("/etc/aliases.db")
    finally:
        shutil.rmtree(tmp)
        for p in ("/etc/aliases", "/etc/aliases.db"):
            if p in saved:
                data, st = saved[p]
                with open(p, "wb") as f:
                    f.write(data)
                os.chown(p, st.st_uid, st.st_gid)
                os.chmod(p, st.st_mode & 0o7777)
            else:
                with contextlib.suppress(FileNotFoundError):
                    os.unlink(p)
        fcntl.flock(lock, fcntl.LOCK_UN)
        os.close(lock)
