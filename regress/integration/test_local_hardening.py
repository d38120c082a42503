"""
Local submission and the parent's start-up, hardened (issue 16, items 8
and 9): the daemon itself keeps an ordinary user from choosing another
envelope sender, whatever the way in (sendmail -bs, an offline file);
sendmail and smtpd refuse a configuration that is not a regular file
instead of reading it for ever; the parent closes the descriptors it
inherited; the offline pick-up child does not linger as a zombie.
"""

import os
import shutil
import subprocess
import tempfile
import time

import fixture
from fixture import (as_user, capture_unix_client, maildir_holds, TEST_ROOT, TEST_USER1, TEST_USER2, Daemon, binary,
                     maildir_files, poll, proc_stat, read_file, unique_marker, user)

TIMEOUT = 120
MAILNAME = "example.test"
RCPT1 = "%s@example.test" % TEST_USER1
CONF_EXTRA = 'mailname "%s"\n' % MAILNAME




def sendmail(args, data=b"", username=None, timeout=30):
    env = {"PATH": "/usr/bin:/bin"}
    for key in ("ASAN_OPTIONS", "UBSAN_OPTIONS"):
        if key in os.environ:
            env[key] = os.environ[key]
    if username:
        env["HOME"] = user(username).pw_dir
    r = subprocess.run([binary("sendmail")] + list(args), input=data,
                       capture_output=True, env=env, cwd="/",
                       timeout=timeout,
                       preexec_fn=as_user(username) if username else None)
    r.out = r.stdout.decode("utf-8", "replace")
    r.err = r.stderr.decode("utf-8", "replace")
    return r


def delivered(marker, count=1):
    def found():
        hits = []
        for path in maildir_files(TEST_USER1):
            try:
                data = read_file(path)
            except FileNotFoundError:
                continue
            if marker.encode() in data:
                hits.append(data)
        return hits if len(hits) >= count else None
    return poll(found) or []


def final_codes(out):
    return [ln[:3] for ln in out.split("\r\n")
            if ln[:3].isdigit() and ln[3:4] != "-"]


def bs_dialog(sender, marker):
    return ("EHLO client.example.test\r\n"
            "MAIL FROM:<%s>\r\n"
            "RCPT TO:<%s>\r\n"
            "DATA\r\n"
            "Subject: %s\r\n\r\nvia -bs\r\n.\r\n"
            "QUIT\r\n" % (sender, RCPT1, marker)).encode()


def test_bs_user_cannot_choose_another_sender():
    """sendmail -bs passes SMTP through unchanged, so the daemon must
    refuse MAIL FROM:<root@...> from an ordinary user (553 5.7.1); the
    user's own address, the host name form and <> are accepted; root may
    use any sender."""
    spoof, own, null, rooted = (unique_marker(m) for m in
                                ("spoof", "own", "null", "rooted"))
    with Daemon(conf_extra=CONF_EXTRA) as d:
        r = sendmail(["-C", d.conf_path, "-bs"],
                     bs_dialog("root@%s" % MAILNAME, spoof),
                     username=TEST_USER2)
        codes = final_codes(r.out)
        assert codes[:3] == ["220", "250", "553"], r.out
        assert "5.7.1" in r.out, r.out
        assert poll(lambda: "local sender refused" in d.log()), \
            d.log_tail()
        r = sendmail(["-C", d.conf_path, "-bs"],
                     bs_dialog("%s@%s" % (TEST_USER2, MAILNAME), own),
                     username=TEST_USER2)
        assert final_codes(r.out) == ["220", "250", "250", "250", "354",
                                      "250", "221"], r.out
        r = sendmail(["-C", d.conf_path, "-bs"],
                     bs_dialog("", null), username=TEST_USER2)
        assert final_codes(r.out)[:3] == ["220", "250", "250"], r.out
        r = sendmail(["-C", d.conf_path, "-bs"],
                     bs_dialog("robot@elsewhere.test", rooted))
        assert final_codes(r.out)[:3] == ["220", "250", "250"], r.out
        msg, = delivered(own)
        assert msg.startswith(("Return-Path: <%s@%s>\n" % (
            TEST_USER2, MAILNAME)).encode()), msg[:200]
        assert delivered(rooted)[0].startswith(
            b"Return-Path: <robot@elsewhere.test>\n")
        time.sleep(0.5)
        assert not delivered_now(spoof), "the spoofed message was delivered"


def delivered_now(marker):
    return maildir_holds(marker)


def test_offline_file_cannot_claim_another_sender():
    """An offline file is submitted as its owner: one whose sender line
    names root is refused by the daemon (553) and returned to the owner's
    dead.letter, never delivered with root's Return-Path."""
    base = tempfile.mkdtemp(prefix="spoof-offline.", dir=TEST_ROOT)
    os.chmod(base, 0o755)
    conf = ('spool "%s/spool"\nsocket "%s/smtpd.sock"\n' % (base, base)) + \
        "smtp workers 1\nlisten on 127.0.0.1 port @PORT@\n" + CONF_EXTRA + \
        'action "local" maildir "~/Maildir"\n' \
        'match from any for domain "example.test" action "local"\n'
    conf_path = os.path.join(base, "smtpd.conf")
    with open(conf_path, "w") as f:
        f.write(conf.replace("@PORT@", "25"))
    offline = os.path.join(base, "spool", "offline")
    marker = unique_marker("offspoof")
    dead = os.path.join(user(TEST_USER2).pw_dir, "dead.letter")
    try:
        if os.path.exists(dead):
            os.unlink(dead)
        with Daemon(conf=conf):
            pass			# creates the spool, then stops
        r = sendmail(["-C", conf_path, RCPT1],
                     ("Subject: %s\n\noffline\n" % marker).encode(),
                     username=TEST_USER2)
        assert r.returncode == 0, r.err
        name, = os.listdir(offline)
        path = os.path.join(offline, name)
        own = ("\nsender %s@%s\n" % (TEST_USER2, MAILNAME)).encode()
        data = read_file(path)
        assert own in data, data[:300]
        st = os.stat(path)
        # the user rewrites their own file (as they may): root's sender
        with open(path, "wb") as f:
            f.write(data.replace(own, ("\nsender root@%s\n" %
                                       MAILNAME).encode()))
        os.chown(path, st.st_uid, st.st_gid)
        with Daemon(conf=conf) as d:
            assert poll(lambda: not os.path.exists(path)), \
                "offline file not handled: " + d.log_tail()
            assert poll(lambda: "local sender refused" in d.log()), \
                d.log_tail()
            assert poll(lambda: os.path.exists(dead)), "no dead.letter"
            time.sleep(0.5)
            assert not delivered_now(marker), \
                "delivered with another user's sender"
        assert marker.encode() in read_file(dead)
    finally:
        shutil.rmtree(base, ignore_errors=True)
        if os.path.exists(dead):
            os.unlink(dead)


def test_configuration_must_be_a_regular_file():
    """sendmail -C /dev/zero (or a FIFO) returns at once, saying why,
    instead of reading or waiting for ever; smtpd -n -f /dev/zero too."""
    tmp = tempfile.mkdtemp(prefix="conf-fifo.", dir=TEST_ROOT)
    os.chmod(tmp, 0o755)
    fifo = os.path.join(tmp, "fifo")
    os.mkfifo(fifo, 0o644)
    try:
        for path in ("/dev/zero", fifo):
            t0 = time.monotonic()
            r = sendmail(["-C", path, "-bp"], username=TEST_USER2,
                         timeout=20)
            assert "not a regular file" in r.err, (path, r.err)
            assert time.monotonic() - t0 < 10, path
        r = subprocess.run([binary("smtpd"), "-n", "-f", "/dev/zero"],
                           capture_output=True, timeout=20)
        assert r.returncode != 0 and b"not a regular file" in r.stderr, \
            r.stderr
    finally:
        shutil.rmtree(tmp, ignore_errors=True)


def fd_targets(pid):
    targets = {}
    d = "/proc/%d/fd" % pid
    for fd in os.listdir(d):
        try:
            targets[int(fd)] = os.readlink(os.path.join(d, fd))
        except OSError:
            pass
    return targets


def test_parent_closes_inherited_descriptors():
    """Started with two extra descriptors open (a file, a pipe), the
    parent and every child hold neither once it runs."""
    tmp = tempfile.mkdtemp(prefix="inherit.", dir=TEST_ROOT)
    os.chmod(tmp, 0o755)
    marker = os.path.join(tmp, "inherited-marker")
    with open(marker, "w") as f:
        f.write("x\n")
    wrapper = os.path.join(tmp, "smtpd-wrapper")
    with open(wrapper, "w") as f:
        # exec keeps the pid: the daemon is this process
        f.write("#!/bin/sh\nexec 7<'%s'\nexec 8<>'%s'\nexec '%s' \"$@\"\n"
                % (marker, os.path.join(tmp, "fifo"), binary("smtpd")))
    os.mkfifo(os.path.join(tmp, "fifo"))
    os.chmod(wrapper, 0o755)
    try:
        with Daemon(conf_extra=CONF_EXTRA, program=wrapper) as d:
            pids = [d.pid] + d.children()
            assert len(pids) > 2, pids
            for pid in pids:
                leaked = {fd: t for fd, t in fd_targets(pid).items()
                          if t.startswith(tmp)}
                assert not leaked, "pid %d (%s) holds %s" % (
                    pid, proc_stat(pid), leaked)
    finally:
        shutil.rmtree(tmp, ignore_errors=True)


def zombies_of(ppid):
    found = []
    for entry in os.listdir("/proc"):
        if entry.isdigit():
            st = proc_stat(int(entry))
            if st and st[2] == ppid and st[1] == "Z":
                found.append(int(entry))
    return found


def test_offline_pickup_child_reaped():
    """The offline pick-up child, done at once with an empty directory,
    is reaped promptly rather than at the next SIGCHLD.  (Before the fix
    it was a race between that child's exit and the parent's installing
    its SIGCHLD handler: hence several starts.)"""
    for _ in range(10):
        with Daemon(conf_extra=CONF_EXTRA) as d:
            time.sleep(0.3)
            z = zombies_of(d.pid)
            assert not z, "zombie children %s of the parent" % z


def captured_submit_request():
    """The bytes sendmail sends on the control socket before SMTP (its
    CTL_SUBMIT request), taken from a socket of our own."""
    tmp = tempfile.mkdtemp(prefix="subcap.", dir=TEST_ROOT)
    path = os.path.join(tmp, "s")
    conf = os.path.join(tmp, "smtpd.conf")
    with open(conf, "w") as f:
        f.write('socket "%s"\nspool "%s/spool"\n' % (path, tmp))
    try:
        data = capture_unix_client(path, [binary("sendmail"), "-C", conf,
                                          "-bs"], stdin=subprocess.PIPE)
    finally:
        shutil.rmtree(tmp, ignore_errors=True)
    assert len(data) >= 20, "sendmail sent %d bytes" % len(data)
    return data


# a program of the user's own on the control socket, sendmail bypassed
RAW = r"""
import socket, sys
s = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
s.settimeout(20)
s.connect(sys.argv[1])
s.sendall(bytes.fromhex(sys.argv[2]))
f = s.makefile("rb")
def reply():
    while True:
        line = f.readline()
        if not line or line[3:4] != b"-":
            return line.decode().strip()
print(reply())
for cmd in ("EHLO raw.test", "MAIL FROM:<%s>" % sys.argv[3], "QUIT"):
    s.sendall(cmd.encode() + b"\r\n")
    print(reply())
"""


def test_raw_control_socket_cannot_choose_another_sender():
    """A user's own program that speaks the control protocol and then
    SMTP, without sendmail, is held to the same rule."""
    python = "/usr/bin/python3"
    if not os.access(python, os.X_OK):
        fixture.skip("%s is needed to run a client as a user" % python)
    req = captured_submit_request()
    with Daemon(conf_extra=CONF_EXTRA) as d:
        for sender, want in (("root@%s" % MAILNAME, "553"),
                             ("%s@%s" % (TEST_USER2, MAILNAME), "250")):
            r = subprocess.run([python, "-c", RAW, d.socket_path,
                                req.hex(), sender], capture_output=True,
                               timeout=30, preexec_fn=as_user(TEST_USER2),
                               cwd="/")
            lines = r.stdout.decode().splitlines()
            assert len(lines) == 4 and lines[0].startswith("220"), \
                (lines, r.stderr)
            assert lines[2].startswith(want), (sender, lines)
