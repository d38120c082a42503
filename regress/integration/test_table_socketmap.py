"""
socketmap: shared tables through the real daemon (table/socketmap.c),
against a socketmap server written here (Sendmail's protocol, as
Postfix's socketmap_table(5) describes it: netstrings "MAP KEY" ->
"OK value" / "NOTFOUND " / "TEMP reason"), on 127.0.0.1:15741 and on a
unix socket.

Checked: virtual domains, addresses and users answered by the server
deliver a message into the vmail tree; a key added on the server is
seen once the negative answer expires (negative-ttl 1s); a question
whose connection the server closes without answering is asked again on
a new connection, once; a key with
spaces and quotes reaches the server as it is, in one request; TEMP, a
malformed reply and a stopped server are 451, never 550; smtpd -n
refuses a target that is no numeric address or no absolute path.

Checked to fail when a TEMP reply is read as "not found" and when the
map name is not put before the key.
"""

import os
import random
import shutil
import socket
import tempfile
import threading

from fixture import (Daemon, ensure_test_user, poll, run_smtpd,
                     smtp_dialog)

TIMEOUT = 60
SM_PORT = 15741
VMAIL = "phvmail"
RUN = "-%08x" % random.getrandbits(32)

CONF = """\
spool "@TMP@/spool"
socket "@TMP@/smtpd.sock"
smtp workers 1
listen on 127.0.0.1 port @PORT@
table sdomains socketmap:inet:127.0.0.1:%d:domains cache-ttl 1s \
negative-ttl 1s
table svirtual socketmap:unix:@DIR@/sm.sock:virtual cache-ttl 1s \
negative-ttl 1s
table susers socketmap:inet:127.0.0.1:%d:users
action "vmail" maildir "@DIR@/vmail/%%{dest.domain}/%%{dest.user}" \
virtual <svirtual> userbase <susers>
match from any for domain <sdomains> action "vmail"
""" % (SM_PORT, SM_PORT)


def netstring(data):
    return b"%d:%s," % (len(data), data)


class SocketmapServer:
    """A socketmap server: maps[name][key] -> value (bytes); a value
    None answers "TEMP", b"!bad" a malformed netstring.  Every request
    is kept in .requests."""

    def __init__(self, unix_path):
        self.maps = {}
        self.requests = []
        self.unix_path = unix_path
        self.listeners = []
        self.conns = []
        self.lock = threading.Lock()

    def start(self):
        tcp = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
        tcp.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        tcp.bind(("127.0.0.1", SM_PORT))
        if os.path.exists(self.unix_path):
            os.unlink(self.unix_path)
        unix = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
        unix.bind(self.unix_path)
        os.chmod(self.unix_path, 0o777)
        self.listeners = [tcp, unix]
        for s in self.listeners:
            s.listen(16)
            threading.Thread(target=self.accept, args=(s,),
                             daemon=True).start()

    def stop(self):
        with self.lock:
            for s in self.listeners + self.conns:
                try:
                    s.shutdown(socket.SHUT_RDWR)
                except OSError:
                    pass
                s.close()
            self.listeners = []
            self.conns = []

    def accept(self, s):
        while True:
            try:
                c, _ = s.accept()
            except OSError:
                return
            with self.lock:
                self.conns.append(c)
            threading.Thread(target=self.serve, args=(c,),
                             daemon=True).start()

    def serve(self, c):
        buf = b""
        try:
            while True:
                while b":" not in buf:
                    data = c.recv(4096)
                    if not data:
                        return
                    buf += data
                n, rest = buf.split(b":", 1)
                n = int(n)
                while len(rest) < n + 1:
                    data = c.recv(4096)
                    if not data:
                        return
                    rest += data
                assert rest[n:n + 1] == b",", rest
                req, buf = rest[:n], rest[n + 1:]
                self.requests.append(req)
                name, key = req.split(b" ", 1)
                value = self.maps.get(name.decode(), {}).get(key, b"")
                if value == b"!close-once":
                    # an idle timeout crossing the question: no reply
                    self.maps[name.decode()][key] = b"alice"
                    return
                if value == b"":
                    reply = netstring(b"NOTFOUND ")
                elif value is None:
                    reply = netstring(b"TEMP the test says so")
                elif value == b"!bad":
                    reply = b"4:OK x;"
                else:
                    reply = netstring(b"OK " + value)
                c.sendall(reply)
        except OSError:
            return
        finally:
            c.close()


def rcpt_code(port, rcpt):
    r = smtp_dialog(port, ["EHLO client.test", "MAIL FROM:<s@client.test>",
                           "RCPT TO:<%s>" % rcpt, "QUIT"])
    return r[3]


def vmail_files(dir, domain, local):
    d = os.path.join(dir, "vmail", domain, local, "new")
    try:
        return [os.path.join(d, n) for n in os.listdir(d)]
    except FileNotFoundError:
        return []


def test_socketmap_config_errors():
    dir = tempfile.mkdtemp(prefix="sm-n-", dir="/tmp")
    try:
        conf = os.path.join(dir, "smtpd.conf")
        base = ("listen on 127.0.0.1 port 15749\n"
                'action "vmail" maildir "/tmp/x" virtual <sm>\n'
                "match from any for domain <sm> action \"vmail\"\n")
        for target, why in (
                ("inet:127.0.0.1:%d:domains" % SM_PORT, None),
                ("inet:[::1]:%d:domains" % SM_PORT, None),
                ("unix:/run/sm.sock:virtual", None),
                ("inet:localhost:%d:domains" % SM_PORT, "not a numeric"),
                ("inet:127.0.0.1:0:domains", "bad port"),
                ("unix:run/sm.sock:virtual", "absolute path"),
                ("tcp:127.0.0.1:25:x", "expected unix:"),
                ("inet:127.0.0.1:%d:" % SM_PORT, "expected unix:")):
            with open(conf, "w") as f:
                f.write("table sm socketmap:%s\n" % target + base)
            r = run_smtpd(["-n", "-f", conf])
            if why is None:
                assert r.returncode == 0, (target, r.output)
            else:
                assert r.returncode != 0, (target, r.output)
                assert "table sm (line 1): " in r.output and \
                    why in r.output, (target, r.output)
    finally:
        shutil.rmtree(dir, ignore_errors=True)


def test_socketmap_tables():
    vm = ensure_test_user(VMAIL)
    dir = tempfile.mkdtemp(prefix="sm-it-", dir="/tmp")
    os.chmod(dir, 0o755)
    server = SocketmapServer(os.path.join(dir, "sm.sock"))
    try:
        vdir = os.path.join(dir, "vmail")
        for d in (vdir, os.path.join(vdir, "virtual.test")):
            os.mkdir(d, 0o755)
            os.chown(d, vm.pw_uid, vm.pw_gid)
        home = ("%d:%d:%s" % (vm.pw_uid, vm.pw_gid, vdir)).encode()
        server.maps = {
            "domains": {b"virtual.test": b"ok", b"temp.test": None},
            "virtual": {b"alice@virtual.test": b"alice",
                        b'"john doe"@virtual.test': b"alice",
                        b"broken@virtual.test": b"!bad",
                        b"frank@virtual.test": b"alice",
                        b"late@virtual.test": b"!close-once"},
            "users": {b"alice": home, b"bob": home},
        }
        server.start()
        with Daemon(conf=CONF.replace("@DIR@", dir)) as d:
            marker = "sm-alice" + RUN
            r = smtp_dialog(d.port, [
                "EHLO client.test", "MAIL FROM:<s@client.test>",
                "RCPT TO:<alice@virtual.test>", "DATA",
                ("Subject: %s\r\n\r\n%s\r\n.\r\n" % (marker, marker))
                .encode(), "QUIT"])
            assert [x.code for x in r[3:6]] == [250, 354, 250], r
            files = poll(lambda: vmail_files(dir, "virtual.test", "alice"))
            assert files, "nothing delivered: %s" % d.log_tail()
            assert b"domains virtual.test" in server.requests, \
                server.requests
            assert b"users alice" in server.requests, server.requests

            r = rcpt_code(d.port, "x@other.test")
            assert r.code == 550 and "5.7.1" in r.text, r
            r = rcpt_code(d.port, "bob@virtual.test")
            assert r.code == 550 and "5.1.1" in r.text, r
            server.maps["virtual"][b"bob@virtual.test"] = b"bob"
            ok = poll(lambda: rcpt_code(d.port, "bob@virtual.test").code
                      == 250, timeout=5, interval=0.2)
            assert ok, "bob never accepted"

            # the key as it is, one request, map name first
            r = rcpt_code(d.port, '"john doe"@virtual.test')
            assert r.code == 250, r
            assert b'virtual "john doe"@virtual.test' in server.requests, \
                server.requests
            n = len(server.requests)
            r = rcpt_code(d.port, '"a b\\" c,d:"@virtual.test')
            assert r.code == 550, r
            assert all(q.startswith((b"virtual ", b"domains ", b"users "))
                       for q in server.requests[n:]), server.requests[n:]

            # a connection closed as the question went out: asked again
            r = rcpt_code(d.port, "late@virtual.test")
            assert r.code == 250, r
            assert server.requests.count(b"virtual late@virtual.test") == 2

            # TEMP, a malformed reply: temporary failures
            r = rcpt_code(d.port, "x@temp.test")
            assert r.code == 451, r
            r = rcpt_code(d.port, "broken@virtual.test")
            assert r.code == 451, r
            r = rcpt_code(d.port, "alice@virtual.test")
            assert r.code == 250, r

            # the server stopped: 451, never 550
            server.stop()
            for rcpt in ("carol@virtual.test", "dave@virtual.test"):
                r = rcpt_code(d.port, rcpt)
                assert r.code == 451, (rcpt, r)
            with open(d.log_path, "rb") as f:
                log = f.read().decode("utf-8", "replace")
            assert log.count("its answers are temporary failures") <= 3, \
                log
            # back: a question never asked before is answered again
            server.start()
            ok = poll(lambda: rcpt_code(d.port, "frank@virtual.test").code
                      == 250, timeout=8, interval=0.3)
            assert ok, "no answers after the server came back: %s" % \
                d.log_tail()
            assert poll(lambda: b"is back" in open(d.log_path, "rb").read(),
                        timeout=2), d.log_tail()
    finally:
        server.stop()
        shutil.rmtree(dir, ignore_errors=True)
