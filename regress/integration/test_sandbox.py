"""
test_sandbox.py -- each process's seccomp sandbox refuses what that process
never does (smtpd(8), "Processes"; platform/sandbox_linux.c), and lookup
reads only the files it was configured to read (Landlock).

The daemon here is obj/regress/smtpd-sandbox: the real smtpd, built with
platform/sandbox_linux.c's test hook (POSTHASTE_TEST_SANDBOX, never installed).
POSTHASTE_SANDBOX_TRY="profile:call" makes the process of that sandbox
profile try the call right after entering its sandbox, as code a hostile
client or DNS answer took over could.  The filter must kill it (SIGSYS),
and the parent logs the death; a call that returns is logged as
"survived".  Also: no installed build carries the sanitizer build's
extra allowances.
"""

import os
import platform
import re
import shutil
import subprocess
import tempfile
import time

import fixture
from fixture import (TEST_USER1, Daemon, SMTPConnection, unique_marker,
                     reset_maildir, wait_maildir)

TIMEOUT = 60

# what the build with sanitizers (SAN=1) puts in privsep.o
SAN_MARKER = b"POSTHASTE_SAN_SANDBOX_ALLOWANCES"

# the process title the parent logs, per sandbox profile
TITLES = {"smtp": "smtp worker", "queue": "queue", "lookup": "lookup",
          "mta": "mta", "control": "control", "auth": "auth",
          "keys": "keys"}


def sandbox_binary():
    path = os.path.join(fixture.BINDIR, "..", "regress", "smtpd-sandbox")
    assert os.path.exists(path), \
        "%s missing: build it with 'make unit'" % path
    return os.path.normpath(path)


def killed_at_start(profile, call):
    """Start the daemon with PROFILE trying CALL once sandboxed: the
    process must die by the filter's signal, and the parent say so."""
    if call == "read-etc" and _has_marker(sandbox_binary()):
        # the sanitizers read /proc/self/maps for a report: their build
        # lets every profile open files read-only (sandbox_linux.c)
        fixture.skip("a sanitizer build allows read-only opens")
    conf = None
    if profile == "auth":
        # the system-password helper runs for "auth" without a table
        import test_smtp_auth
        conf = test_smtp_auth.system_auth_conf()
    d = Daemon(program=sandbox_binary(), conf=conf,
               env={"POSTHASTE_SANDBOX_TRY": "%s:%s" % (profile, call)})
    d.start(wait=False)
    try:
        # the process logs through the parent, and its channel is not
        # up yet: a death is the only sign that the call was tried
        status = d.wait_exit(15)
        log = d.log()
        assert "survived" not in log, \
            "%s was allowed in %s:\n%s" % (call, profile, d.log_tail())
        # any smtp worker: whichever entered its sandbox first dies first
        want = re.compile(r"parent: %s( \d+)? \(pid \d+\) killed by the "
                          r"seccomp sandbox \(SIGSYS\)" % TITLES[profile])
        lines = [ln for ln in log.splitlines() if want.search(ln)]
        assert lines, "no death by SIGSYS of %s logged:\n%s" % (
            TITLES[profile], d.log_tail())
        assert status not in (None, 0), \
            "daemon still up (or exited 0) after its %s died" % profile
    finally:
        d.stop(expect_status=None)
        for name in os.listdir("/tmp"):
            if name.startswith("posthaste-sandbox-"):
                p = os.path.join("/tmp", name)
                if os.path.isdir(p):
                    os.rmdir(p)
                else:
                    os.unlink(p)


def _make(profile, call):
    def test():
        killed_at_start(profile, call)
    test.__name__ = "test_%s_%s_killed" % (profile, call.replace("-", "_"))
    test.__doc__ = "%s: %s kills the process" % (profile, call)
    return test


# lookup: no raw or packet sockets, no file created, removed, renamed
_CASES = [("lookup", c) for c in ("socket-raw6", "socket-packet", "create",
                                  "unlink", "rename", "mkdir")]
# W^X everywhere
_CASES += [(p, c) for p in ("smtp", "queue", "lookup", "mta", "control",
                            "auth")
           for c in ("mmap-exec", "mprotect-exec")]
_CASES += [("lookup", "pkey-mprotect-exec")]
# the servers open no sockets at all, auth unix sockets only
_CASES += [(p, "socket-inet") for p in ("smtp", "queue", "control",
                                        "auth")]
# mta: TCP and unix stream sockets only
_CASES += [("mta", "socket-raw6")]
# keys, the holder of the private keys: its channels and nothing else --
# no file opened even to read, no socket, no executable memory
_CASES += [("keys", c) for c in ("socket-inet", "read-etc", "create",
                                 "mmap-exec", "mprotect-exec")]

for _p, _c in _CASES:
    _t = _make(_p, _c)
    globals()[_t.__name__] = _t
del _p, _c, _t


def send(port, rcpt, marker):
    with SMTPConnection(port) as c:
        assert c.command("EHLO sandbox.test").code == 250
        assert c.command("MAIL FROM:<a@example.test>").code == 250
        assert c.command("RCPT TO:<%s>" % rcpt).code == 250
        assert c.command("DATA").code == 354
        c.send(("Subject: %s\r\n\r\nbody\r\n.\r\n" % marker).encode())
        assert c.reply().code == 250
        c.command("QUIT")


def test_lookup_may_still_do_dns_sockets():
    """The hook itself, and the other side of lookup's filter: a UDP/TCP
    socket (DNS) is allowed, the daemon stays up and delivers."""
    reset_maildir(TEST_USER1)
    marker = unique_marker("sandbox")
    with Daemon(program=sandbox_binary(),
                env={"POSTHASTE_SANDBOX_TRY": "lookup:socket-inet"}) as d:
        send(d.port, "%s@example.test" % TEST_USER1, marker)
        files = wait_maildir(TEST_USER1, 1)
        assert marker.encode() in open(files[0], "rb").read()
        assert "sandbox test: lookup survived socket-inet" in d.log(), \
            d.log_tail()


def landlock_abi():
    """The kernel's Landlock ABI version, or 0 where it has none."""
    import ctypes
    libc = ctypes.CDLL(None, use_errno=True)
    libc.syscall.restype = ctypes.c_long
    # landlock_create_ruleset(NULL, 0, LANDLOCK_CREATE_RULESET_VERSION)
    abi = libc.syscall(ctypes.c_long(444), None, ctypes.c_size_t(0),
                       ctypes.c_uint32(1))
    return abi if abi > 0 else 0


LANDLOCK_PROBE = "/var/tmp/posthaste-landlock-probe"


def lookup_tries_read(call):
    """Start the sandbox build with lookup trying CALL (an open for
    reading); mail must still be delivered.  The log line of the try."""
    reset_maildir(TEST_USER1)
    marker = unique_marker("sandbox")
    with Daemon(program=sandbox_binary(),
                env={"POSTHASTE_SANDBOX_TRY": "lookup:%s" % call}) as d:
        send(d.port, "%s@example.test" % TEST_USER1, marker)
        files = wait_maildir(TEST_USER1, 1)
        assert marker.encode() in open(files[0], "rb").read()
        lines = [ln for ln in d.log().splitlines()
                 if "sandbox test: lookup survived %s" % call in ln]
        assert lines, d.log_tail()
        return lines[0]


def test_lookup_cannot_read_outside_its_files():
    """Landlock (issue 16): once sandboxed, lookup reads only /etc, its
    tables' directories and their :include: files' (lookup.c).  A file
    outside, readable by everyone, cannot be opened (EACCES); /etc/passwd
    still can, and mail still resolves and is delivered."""
    if platform.system() != "Linux" or landlock_abi() < 1:
        fixture.skip("no Landlock in this kernel")
    with open(LANDLOCK_PROBE, "w") as f:
        f.write("probe\n")
    os.chmod(LANDLOCK_PROBE, 0o644)
    try:
        line = lookup_tries_read("read-outside")
        assert "returned -1, Permission denied" in line, line
        line = lookup_tries_read("read-etc")
        assert re.search(r"read-etc: returned \d+$", line), line
    finally:
        os.unlink(LANDLOCK_PROBE)


def test_lookup_writes_only_its_mta_sts_cache():
    """lookup creates and removes files in spool/sts (the MTA-STS policy
    cache, lookup/sts.c) through that directory's descriptor, which the
    seccomp filter allows, and nowhere else: not even with that
    descriptor and an absolute path (into /tmp, where anyone may write),
    which Landlock refuses."""
    if platform.system() != "Linux" or landlock_abi() < 1:
        fixture.skip("no Landlock in this kernel")
    line = lookup_tries_read("sts-write")
    assert re.search(r"sts-write: returned 0$", line), line
    line = lookup_tries_read("sts-escape")
    assert "returned -1, Permission denied" in line, line


INCLUDE_CONF = """\
spool "@TMP@/spool"
socket "@TMP@/smtpd.sock"
smtp workers 1
listen on 127.0.0.1 port @PORT@
table aliases file:@ALIASES@
action "local" maildir "~/Maildir" alias <aliases>
match from any for domain "example.test" action "local"
"""


def test_lookup_reads_its_tables_and_include_files():
    """The other side of the read set: an aliases table and the
    :include: file it names, each in a directory of its own outside
    /etc, are read once lookup is sandboxed: the mail is delivered."""
    tabdir = tempfile.mkdtemp(prefix="landlock-tab-", dir="/tmp")
    incdir = tempfile.mkdtemp(prefix="landlock-inc-", dir="/tmp")
    try:
        for d in (tabdir, incdir):
            os.chmod(d, 0o755)
        inc = os.path.join(incdir, "list")
        aliases = os.path.join(tabdir, "aliases")
        with open(inc, "w") as f:
            f.write("%s\n" % TEST_USER1)
        with open(aliases, "w") as f:
            f.write("listed: :include:%s\n" % inc)
        os.chmod(inc, 0o644)
        os.chmod(aliases, 0o644)
        reset_maildir(TEST_USER1)
        marker = unique_marker("landlock")
        with Daemon(conf=INCLUDE_CONF.replace("@ALIASES@", aliases)) as d:
            send(d.port, "listed@example.test", marker)
            files = wait_maildir(TEST_USER1, 1)
            assert marker.encode() in open(files[0], "rb").read()
            assert "include file" not in d.log(), d.log_tail()
    finally:
        shutil.rmtree(tabdir, ignore_errors=True)
        shutil.rmtree(incdir, ignore_errors=True)


def mda_killed(call):
    reset_maildir(TEST_USER1)
    marker = unique_marker("sandbox")
    with Daemon(program=sandbox_binary(),
                env={"POSTHASTE_SANDBOX_TRY": "mda:%s" % call}) as d:
        send(d.port, "%s@example.test" % TEST_USER1, marker)
        deadline = time.time() + 20
        while time.time() < deadline:
            if "killed by the seccomp sandbox" in d.log():
                break
            time.sleep(0.2)
        log = d.log()
        assert "sandbox test: mda tries %s" % call in log, d.log_tail()
        assert "survived" not in log, d.log_tail()
        assert [ln for ln in log.splitlines() if "delivery" in ln and
                "killed by the seccomp sandbox" in ln], d.log_tail()
        assert fixture.maildir_files(TEST_USER1) == []


def test_mda_mmap_exec_killed():
    """A local delivery process (Maildir) may not map executable memory."""
    mda_killed("mmap-exec")


def test_mda_mprotect_exec_killed():
    """... nor make memory executable."""
    mda_killed("mprotect-exec")


def _has_marker(path):
    with open(path, "rb") as f:
        return SAN_MARKER in f.read()


def test_installed_build_has_no_sanitizer_allowances():
    """obj/bin/smtpd, what 'make install' takes (and obj-deb's, what the
    package takes), is built without the sanitizer build's sandbox
    allowances (POSTHASTE_SAN)."""
    paths = [os.path.join(fixture.REPO, d, "bin", "smtpd")
             for d in ("obj", "obj-deb")]
    paths = [p for p in paths if os.path.exists(p)]
    if not paths:
        fixture.skip("obj/bin/smtpd not built")
    for path in paths:
        assert not _has_marker(path), "%s has the SAN allowances" % path


def test_install_refuses_a_sanitizer_build():
    """mk/install.sh refuses binaries built with SAN=1 (it looks for the
    marker), whatever OBJDIR names them."""
    san = os.path.join(fixture.REPO, "obj-san", "bin", "smtpd")
    if not os.path.exists(san) or not _has_marker(san):
        fixture.skip("no sanitizer build in obj-san/")
    with tempfile.TemporaryDirectory() as dest:
        r = subprocess.run(
            ["sh", "mk/install.sh", dest, "/usr/sbin", "/usr/bin",
             "/usr/share/man", "/etc", "/usr/libexec/posthaste"],
            cwd=fixture.REPO, env=dict(os.environ, OBJDIR="obj-san"),
            stdout=subprocess.PIPE, stderr=subprocess.STDOUT)
        out = r.stdout.decode("utf-8", "replace")
        assert r.returncode != 0, out
        assert "sanitizer build" in out, out
        assert not os.path.exists(os.path.join(dest, "usr", "sbin",
                                               "smtpd")), out
