"""
redis: shared tables through the real daemon (table/redis.c): a
redis-server started here (unprivileged, 127.0.0.1:15740 and a unix
socket, no persistence) holds the virtual domains (SISMEMBER), the
virtual addresses (GET) and the users' uid:gid:home (HMGET); the daemon
asks it over TCP and over the unix socket, with AUTH and SELECT.

Checked: mail to a virtual user is delivered into the vmail tree; an
address added in redis is accepted once the negative answer expires
(negative-ttl 1s), a value changed once the found one expires
(cache-ttl 1s); a key with spaces, quotes or "%s" in it is one
argument (found when stored under exactly that name, harmless
otherwise); with redis paused beyond the table's timeout, or stopped, a
RCPT is 451, never 550; smtpd -n
names the configuration file and line of a mistake.

One redis-server and one daemon for the module.  Checked to fail when
the reply of SISMEMBER is read as a string (every domain "found") and
when the server being down is answered as "not found" (550).
"""

import os
import pwd
import random
import shutil
import signal
import socket
import subprocess
import tempfile
import time

from fixture import (REPO, Daemon, ensure_test_user, poll, run_smtpd,
                     skip, smtp_dialog)

TIMEOUT = 60
REDIS_PORT = 15740
PASSWORD = "s3cret pass"	# a space: AUTH takes it as one argument
VMAIL = "phvmail"
RUN = "-%08x" % random.getrandbits(32)

CONF = """\
spool "@TMP@/spool"
socket "@TMP@/smtpd.sock"
smtp workers 1
listen on 127.0.0.1 port @PORT@
table rdomains redis:@DIR@/redis-tcp.conf cache-ttl 1s negative-ttl 1s
table rusers redis:@DIR@/redis-unix.conf cache-ttl 1s negative-ttl 1s
action "vmail" maildir "@DIR@/vmail/%{dest.domain}/%{dest.user}" \
virtual <rdomains> userbase <rusers>
match from any for domain <rdomains> action "vmail"
"""

TCP_CONF = """\
# the domains and the virtual addresses, over TCP
server 127.0.0.1:%d
password %s
database 3
timeout 1s
pool 2
query_domain SISMEMBER domains %%s
query_alias GET virtual:%%s
""" % (REDIS_PORT, PASSWORD)

UNIX_CONF = """\
server @DIR@/redis.sock
password %s
database 3
query_userinfo HMGET user:%%s uid gid home
""" % PASSWORD


class Redis:
    """redis-server as nobody in a directory of its own, and a client
    speaking RESP on a socket (no client library needed)."""

    def __init__(self, dir):
        self.dir = dir
        self.proc = None

    def start(self):
        nobody = pwd.getpwnam("nobody")
        log = open(os.path.join(self.dir, "redis.log"), "ab")

        def drop():
            os.setgroups([])
            os.setgid(nobody.pw_gid)
            os.setuid(nobody.pw_uid)
        self.proc = subprocess.Popen(
            [shutil.which("redis-server"), "--port", str(REDIS_PORT),
             "--bind", "127.0.0.1", "--save", "", "--appendonly", "no",
             "--dir", self.dir, "--unixsocket",
             os.path.join(self.dir, "redis.sock"), "--unixsocketperm",
             "777", "--requirepass", PASSWORD, "--daemonize", "no"],
            stdin=subprocess.DEVNULL, stdout=log, stderr=log,
            preexec_fn=drop, cwd=self.dir)
        log.close()
        ok = poll(lambda: self.try_ping(), timeout=10, interval=0.02)
        assert ok, "redis-server did not start: %s" % self.log()

    def log(self):
        with open(os.path.join(self.dir, "redis.log"), "rb") as f:
            return f.read()[-2000:].decode("utf-8", "replace")

    def try_ping(self):
        # not someone else's server on our port
        assert self.proc.poll() is None, \
            "redis-server exited: %s" % self.log()
        try:
            return self.cmd("PING") == b"PONG"
        except OSError:
            return False

    def stop(self):
        if self.proc is not None and self.proc.poll() is None:
            self.proc.send_signal(signal.SIGTERM)
            try:
                self.proc.wait(10)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait()
        self.proc = None

    @staticmethod
    def _encode(args):
        out = b"*%d\r\n" % len(args)
        for a in args:
            a = a.encode() if isinstance(a, str) else a
            out += b"$%d\r\n%s\r\n" % (len(a), a)
        return out

    @staticmethod
    def _read(f):
        line = f.readline()
        if not line.endswith(b"\r\n"):
            raise OSError("redis: connection closed")
        kind, rest = line[:1], line[1:-2]
        if kind == b"+":
            return rest
        if kind == b"-":
            raise AssertionError("redis error: %r" % rest)
        if kind == b":":
            return int(rest)
        if kind == b"$":
            n = int(rest)
            if n < 0:
                return None
            data = f.read(n + 2)
            return data[:-2]
        if kind == b"*":
            return [Redis._read(f) for _ in range(int(rest))]
        raise AssertionError("redis: bad reply %r" % line)

    def cmd(self, *args):
        with socket.create_connection(("127.0.0.1", REDIS_PORT),
                                      timeout=5) as s:
            f = s.makefile("rb")
            s.sendall(self._encode(["AUTH", PASSWORD]) +
                      self._encode(["SELECT", "3"]) + self._encode(args))
            self._read(f)
            self._read(f)
            return self._read(f)


def rcpt_code(port, rcpt):
    r = smtp_dialog(port, ["EHLO client.test", "MAIL FROM:<s@client.test>",
                           "RCPT TO:<%s>" % rcpt, "QUIT"])
    return r[3]


def write(path, text):
    with open(path, "w") as f:
        f.write(text)
    os.chmod(path, 0o600)	# the parent reads it as root


def vmail_files(dir, domain, local):
    d = os.path.join(dir, "vmail", domain, local, "new")
    try:
        return [os.path.join(d, n) for n in os.listdir(d)]
    except FileNotFoundError:
        return []


def test_redis_config_errors():
    """smtpd -n: a mistake in the configuration file is FILE:LINE."""
    dir = tempfile.mkdtemp(prefix="redis-n-", dir="/tmp")
    try:
        conf = os.path.join(dir, "smtpd.conf")
        rconf = os.path.join(dir, "redis.conf")
        write(conf, "table users redis:%s\n"
              "listen on 127.0.0.1 port 15749\n"
              'action "vmail" maildir "/tmp/x" virtual <users>\n'
              "match from any for domain <users> action \"vmail\"\n"
              % rconf)
        write(rconf, TCP_CONF)
        r = run_smtpd(["-n", "-f", conf])
        assert r.returncode == 0, r.output
        for bad, line, why in (
                ("query_alias GET alias:%x", 8, "only %s"),
                ("query_alias GET alias", 8, "no %s for the key"),
                ("server localhost:6379", 8, "server given twice"),
                ("pool 0", 8, "pool"),
                ("frobnicate 1", 8, 'unknown keyword "frobnicate"')):
            text = TCP_CONF.replace("query_alias GET virtual:%s\n", "")
            write(rconf, text + bad + "\n")
            r = run_smtpd(["-n", "-f", conf])
            assert r.returncode != 0, (bad, r.output)
            assert "%s:%d: " % (rconf, line) in r.output, (bad, r.output)
            assert why in r.output, (bad, r.output)
        write(rconf, "server 127.0.0.1\n")
        r = run_smtpd(["-n", "-f", conf])
        assert r.returncode != 0 and "no query_SERVICE" in r.output, \
            r.output
        # the sample in etc/ is a valid file
        with open(os.path.join(REPO, "etc", "redis.conf")) as f:
            write(rconf, f.read())
        r = run_smtpd(["-n", "-f", conf])
        assert r.returncode == 0, r.output
    finally:
        shutil.rmtree(dir, ignore_errors=True)


def test_redis_tables():
    if shutil.which("redis-server") is None:
        skip("redis-server is not installed (mk/deps.sh)")
    vm = ensure_test_user(VMAIL)
    dir = tempfile.mkdtemp(prefix="redis-it-", dir="/tmp")
    os.chmod(dir, 0o755)
    rdir = os.path.join(dir, "redis")
    os.mkdir(rdir, 0o755)
    os.chown(rdir, pwd.getpwnam("nobody").pw_uid, -1)
    redis = Redis(rdir)
    try:
        redis.start()
        write(os.path.join(dir, "redis-tcp.conf"), TCP_CONF)
        write(os.path.join(dir, "redis-unix.conf"),
              UNIX_CONF.replace("@DIR@", rdir))
        vdir = os.path.join(dir, "vmail")
        for d in (vdir, os.path.join(vdir, "virtual.test")):
            os.mkdir(d, 0o755)
            os.chown(d, vm.pw_uid, vm.pw_gid)

        def populate():
            redis.cmd("FLUSHDB")
            redis.cmd("SADD", "domains", "virtual.test")
            redis.cmd("SET", "virtual:alice@virtual.test", "alice")
            redis.cmd("SET", 'virtual:"john doe"@virtual.test', "alice")
            for name in ("alice", "bob"):
                redis.cmd("HSET", "user:" + name, "uid", str(vm.pw_uid),
                          "gid", str(vm.pw_gid), "home", vdir)
        populate()

        with Daemon(conf=CONF.replace("@DIR@", dir)) as d:
            # a virtual user, delivered through all three lookups
            marker = "redis-alice" + RUN
            r = smtp_dialog(d.port, [
                "EHLO client.test", "MAIL FROM:<s@client.test>",
                "RCPT TO:<alice@virtual.test>", "DATA",
                ("Subject: %s\r\n\r\n%s\r\n.\r\n" % (marker, marker))
                .encode(), "QUIT"])
            assert [x.code for x in r[3:6]] == [250, 354, 250], r
            files = poll(lambda: vmail_files(dir, "virtual.test", "alice"))
            assert files, "nothing delivered: %s" % d.log_tail()
            st = os.stat(files[0])
            assert st.st_uid == vm.pw_uid, st

            # not a domain of ours (SISMEMBER 0), not a user (nil)
            r = rcpt_code(d.port, "x@other.test")
            assert r.code == 550 and "5.7.1" in r.text, r
            r = rcpt_code(d.port, "bob@virtual.test")
            assert r.code == 550 and "5.1.1" in r.text, r

            # added in redis: seen once the negative answer expired
            redis.cmd("SET", "virtual:bob@virtual.test", "bob")
            r = poll(lambda: rcpt_code(d.port, "bob@virtual.test").code
                     == 250, timeout=5, interval=0.2)
            assert r, "bob never accepted"
            # changed in redis: seen once the found answer expired
            # (cache-ttl 1s): bob's address now names no user
            redis.cmd("SET", "virtual:bob@virtual.test", "nosuchuser")
            r = poll(lambda: rcpt_code(d.port, "bob@virtual.test").code
                     == 550, timeout=5, interval=0.2)
            assert r, "bob's new value never seen"

            # keys with spaces, quotes, %s: one argument each
            r = rcpt_code(d.port, '"john doe"@virtual.test')
            assert r.code == 250, r
            for rcpt in ('"a b\\" SET x y"@virtual.test',
                         '"%s %s"@virtual.test', "'q'@virtual.test"):
                r = rcpt_code(d.port, rcpt)
                assert r.code == 550, (rcpt, r)
            assert redis.cmd("DBSIZE") == 6, redis.cmd("KEYS", "*")
            assert redis.cmd("PING") == b"PONG"

            # redis too slow (paused): 451 after the table's timeout (1s),
            # not remote.c's 15 s
            redis.cmd("CLIENT", "PAUSE", "1500")
            t0 = time.monotonic()
            r = rcpt_code(d.port, "gina@virtual.test")
            assert r.code == 451, r
            assert time.monotonic() - t0 < 5, time.monotonic() - t0
            assert poll(lambda: b"no answer within the timeout" in
                        open(d.log_path, "rb").read(), timeout=2)
            assert redis.cmd("PING") == b"PONG"	# waits for the pause

            # redis down: a temporary failure, never "unknown user"
            redis.stop()
            time.sleep(1.1)		# alice's cached answers expire
            for rcpt in ("alice@virtual.test", "carol@virtual.test"):
                r = rcpt_code(d.port, rcpt)
                assert r.code == 451, (rcpt, r)
            log = open(d.log_path, "rb").read().decode("utf-8", "replace")
            assert log.count("its answers are temporary failures") <= 2, \
                log
            # back: answers again after the back-off
            redis.start()
            populate()
            r = poll(lambda: rcpt_code(d.port, "alice@virtual.test").code
                     == 250, timeout=8, interval=0.3)
            assert r, "no answers after redis came back: %s" % \
                d.log_tail()
    finally:
        redis.stop()
        shutil.rmtree(dir, ignore_errors=True)
