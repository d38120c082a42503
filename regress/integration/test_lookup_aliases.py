"""
Recipient expansion through the real daemon: an aliases table (text and
makemap-built db) delivering one message to three users, error: replies
at RCPT time, +detail, loops; ~/.forward (opened by the parent, insecure
ones ignored); a virtual domain delivered into a vmail Maildir tree by
one system account (userbase).
"""

import os
import random
import shutil
import subprocess
import tempfile
import time

from fixture import (Daemon, binary, ensure_test_user, maildir_files,
                     poll, reset_maildir, smtp_dialog, user)

USER3 = "phtest3"
VMAIL = "phvmail"
USERS = ("phtest1", "phtest2", USER3)
# markers unique to this run: the shared users' Maildirs keep old mail
RUN = "-%08x" % random.getrandbits(32)

CONF = """\
spool "@TMP@/spool"
socket "@TMP@/smtpd.sock"
smtp workers 1
listen on 127.0.0.1 port @PORT@
table aliases @ALIASES@
table vdomains { "virtual.test", "strict.test" }
table virtuals file:@DIR@/virtuals
table userinfo file:@DIR@/userinfo
action "local" maildir "~/Maildir" alias <aliases>
action "vmail" maildir "@DIR@/vmail/%{dest.domain}/%{dest.user}" \
virtual <virtuals> userbase <userinfo>
match from any for domain "example.test" action "local"
match from any for domain <vdomains> action "vmail"
"""

ALIASES = """\
# a list, with a continuation line and a duplicate member
team: phtest1, phtest2,
  phtest3, phtest1
root: phtest1
postmaster: root
gone: error:550 5.1.6 gone away, no forwarding address
later: "error:451 4.3.0 try again later"
loop1: loop2
loop2: loop1
deep0: deep1
deep1: deep2
deep2: deep3
deep3: deep4
deep4: deep5
deep5: deep6
deep6: deep7
deep7: deep8
deep8: deep9
deep9: deep10
deep10: deep11
deep11: phtest1
self: phtest2, self
chain: team
"""

VIRTUALS = """\
alice@virtual.test  alice
bob@virtual.test    bob
@virtual.test       catchall
carol@strict.test   carol
"""


def message(rcpt, marker):
    return ("From: <s@client.test>\r\nTo: <%s>\r\nSubject: %s\r\n\r\n"
            "%s\r\n.\r\n" % (rcpt, marker, marker)).encode()


def send(port, rcpts, marker):
    items = ["EHLO client.test", "MAIL FROM:<s@client.test>"]
    items += ["RCPT TO:<%s>" % r for r in rcpts]
    items += ["DATA", message(rcpts[0], marker + RUN), "QUIT"]
    return smtp_dialog(port, items)


def with_marker(u, marker):
    """Files of u's Maildir/new holding marker.  phtest1 and phtest2 are
    shared with other tests that may run at the same time, so counting
    files would not do."""
    out = []
    for path in maildir_files(u):
        try:
            with open(path, "rb") as f:
                if (marker + RUN).encode() in f.read():
                    out.append(path)
        except FileNotFoundError:
            pass
    return out


def wait_marker(u, marker):
    files = poll(lambda: with_marker(u, marker))
    assert files, "no message %s for %s" % (marker, u)
    return files


def rcpt_reply(port, rcpt):
    r = smtp_dialog(port, ["EHLO client.test", "MAIL FROM:<s@client.test>",
                           "RCPT TO:<%s>" % rcpt, "QUIT"])
    return r[3]


class Setup:
    """Users, a world-readable table directory, and the vmail tree."""

    def __init__(self, db=False):
        for u in USERS + (VMAIL,):
            ensure_test_user(u)
            self.remove_forward(u)
        # phtest1 and phtest2 are shared with other tests: never reset
        reset_maildir(USER3)
        self.dir = tempfile.mkdtemp(prefix="lookup-it-", dir="/tmp")
        os.chmod(self.dir, 0o755)
        self.write("aliases", ALIASES)
        self.write("virtuals", VIRTUALS)
        vm = user(VMAIL)
        self.write("userinfo", "".join(
            "%s %d:%d:%s/vmail\n" % (n, vm.pw_uid, vm.pw_gid, self.dir)
            for n in ("alice", "bob", "catchall", "carol")))
        vdir = os.path.join(self.dir, "vmail")
        for d in (vdir, os.path.join(vdir, "virtual.test"),
                  os.path.join(vdir, "strict.test")):
            os.mkdir(d, 0o755)
            os.chown(d, vm.pw_uid, vm.pw_gid)
        self.aliases = os.path.join(self.dir, "aliases")
        if db:
            self.makemap()
            self.table = "db:%s.db" % self.aliases
        else:
            self.table = "file:%s" % self.aliases

    def write(self, name, text):
        path = os.path.join(self.dir, name)
        with open(path, "w") as f:
            f.write(text)
        os.chmod(path, 0o644)

    def makemap(self):
        r = subprocess.run([binary("makemap"), "-t", "aliases",
                            self.aliases], stdout=subprocess.PIPE,
                           stderr=subprocess.STDOUT, timeout=30)
        assert r.returncode == 0, r.stdout

    @staticmethod
    def remove_forward(u):
        try:
            os.unlink(os.path.join(user(u).pw_dir, ".forward"))
        except FileNotFoundError:
            pass

    def conf(self):
        return CONF.replace("@ALIASES@", self.table).replace(
            "@DIR@", self.dir)

    def vmail_files(self, domain, local):
        d = os.path.join(self.dir, "vmail", domain, local, "new")
        try:
            return [os.path.join(d, n) for n in os.listdir(d)]
        except FileNotFoundError:
            return []

    def cleanup(self):
        for u in USERS:
            self.remove_forward(u)
        shutil.rmtree(self.dir, ignore_errors=True)


def test_alias_list_three_users():
    s = Setup()
    try:
        with Daemon(conf=s.conf()) as d:
            r = send(d.port, ["team@example.test"], "alias-team")
            assert r[3].code == 250, r[3]
            assert r[5].code == 250, r[5]
            for u in USERS:
                wait_marker(u, "alias-team")
            # the duplicate member got one copy, not two
            time.sleep(0.5)
            assert len(with_marker("phtest1", "alias-team")) == 1
            # an alias of an alias, and "+detail" falling back
            r = send(d.port, ["chain@example.test",
                              "phtest2+tag@example.test",
                              "team+x@example.test"], "alias-chain")
            assert [x.code for x in r[3:6]] == [250, 250, 250], r
            assert r[7].code == 250, r[7]
            wait_marker("phtest1", "alias-chain")
            wait_marker(USER3, "alias-chain")
            # (phtest2 is reached by three RCPTs: duplicates across
            # recipients of one message are the session's to merge)
            wait_marker("phtest2", "alias-chain")
    finally:
        s.cleanup()


def test_alias_errors_loops_depth():
    s = Setup()
    try:
        with Daemon(conf=s.conf()) as d:
            r = rcpt_reply(d.port, "gone@example.test")
            assert r.code == 550 and "5.1.6 gone away" in r.text, r
            r = rcpt_reply(d.port, "later@example.test")
            assert r.code == 451 and "4.3.0 try again later" in r.text, r
            r = rcpt_reply(d.port, "loop1@example.test")
            assert r.code == 550 and "5.4.6" in r.text, r
            r = rcpt_reply(d.port, "deep0@example.test")
            assert r.code == 550 and "too deep" in r.text, r
            r = rcpt_reply(d.port, "deep2@example.test")
            assert r.code == 250, r
            r = rcpt_reply(d.port, "nosuchuser@example.test")
            assert r.code == 550 and "5.1.1" in r.text, r
            # "self: phtest2, self": the user self does not exist
            r = rcpt_reply(d.port, "self@example.test")
            assert r.code == 550, r
            # root is aliased, so postmaster -> root -> phtest1 works
            r = rcpt_reply(d.port, "postmaster@example.test")
            assert r.code == 250, r
    finally:
        s.cleanup()


def test_alias_db_rebuilt_is_picked_up():
    s = Setup(db=True)
    try:
        with Daemon(conf=s.conf()) as d:
            r = rcpt_reply(d.port, "newlist@example.test")
            assert r.code == 550, r
            s.write("aliases", ALIASES + "newlist: phtest2\n")
            s.makemap()
            r = rcpt_reply(d.port, "newlist@example.test")
            assert r.code == 250, r
            r = send(d.port, ["newlist@example.test"], "db-alias")
            assert r[5].code == 250, r
            wait_marker("phtest2", "db-alias")
    finally:
        s.cleanup()


def write_forward(u, text, mode=0o644, owner=None):
    pw = user(u)
    path = os.path.join(pw.pw_dir, ".forward")
    with open(path, "w") as f:
        f.write(text)
    os.chmod(path, mode)
    o = user(owner) if owner else pw
    os.chown(path, o.pw_uid, o.pw_gid)
    return path


def test_forward_file():
    s = Setup()
    try:
        with Daemon(conf=s.conf()) as d:
            # phtest3 forwards to phtest1 and keeps a copy
            write_forward(USER3, "# my forward\nphtest1, \\phtest3\n")
            r = send(d.port, ["phtest3@example.test"], "fwd-1")
            assert r[3].code == 250 and r[5].code == 250, r
            wait_marker("phtest1", "fwd-1")
            wait_marker(USER3, "fwd-1")
            reset_maildir(USER3)
            # group-writable: ignored, mail stays with the user
            write_forward(USER3, "phtest1\n", mode=0o664)
            r = send(d.port, ["phtest3@example.test"], "fwd-2")
            assert r[5].code == 250, r
            wait_marker(USER3, "fwd-2")
            assert with_marker("phtest1", "fwd-2") == []
            reset_maildir(USER3)
            # owned by someone else: ignored
            write_forward(USER3, "phtest1\n", owner="phtest2")
            r = send(d.port, ["phtest3@example.test"], "fwd-3")
            assert r[5].code == 250, r
            wait_marker(USER3, "fwd-3")
            assert with_marker("phtest1", "fwd-3") == []
            reset_maildir(USER3)
            # a symbolic link: ignored (O_NOFOLLOW)
            Setup.remove_forward(USER3)
            target = os.path.join(s.dir, "fwd-target")
            s.write("fwd-target", "phtest1\n")
            os.symlink(target, os.path.join(user(USER3).pw_dir,
                                            ".forward"))
            r = send(d.port, ["phtest3@example.test"], "fwd-4")
            assert r[5].code == 250, r
            wait_marker(USER3, "fwd-4")
            assert with_marker("phtest1", "fwd-4") == []
            Setup.remove_forward(USER3)
            reset_maildir(USER3)
            # reached through an alias, and an error: in a .forward
            write_forward(USER3, "error:550 5.2.1 mailbox disabled\n")
            r = rcpt_reply(d.port, "team@example.test")
            assert r.code == 550 and "5.2.1 mailbox disabled" in r.text, r
    finally:
        s.cleanup()


def test_virtual_domain_vmail_tree():
    s = Setup()
    try:
        with Daemon(conf=s.conf()) as d:
            r = send(d.port, ["alice@virtual.test", "bob@virtual.test",
                              "someone@virtual.test"], "vmail")
            assert [x.code for x in r[3:6]] == [250, 250, 250], r
            assert r[7].code == 250, r
            vm = user(VMAIL)
            for local in ("alice", "bob", "someone"):
                files = poll(lambda: s.vmail_files("virtual.test", local))
                assert files, "nothing in vmail/virtual.test/%s" % local
                st = os.stat(files[0])
                assert st.st_uid == vm.pw_uid, "owned by %d" % st.st_uid
            # no catch-all in strict.test
            r = rcpt_reply(d.port, "carol@strict.test")
            assert r.code == 250, r
            r = rcpt_reply(d.port, "dave@strict.test")
            assert r.code == 550 and "5.1.1" in r.text, r
    finally:
        s.cleanup()
