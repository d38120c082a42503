"""
test_milter_codec.py -- the milter codec (common/milter.h, issue 19)
against Sendmail's libmilter, before it is wired into the daemon.

obj/regress/milter_probe (regress/unit/milter_probe.c) speaks to a filter
through the codec only: it encodes each step of a script with
milter_put_*() and decodes every answer with milter_frame() and
milter_parse_reply() (a REPLYCODE also with milter_reply_check()).  The
filter is a python3-milter (pymilter) one, so libmilter reads our packets
and writes the replies.  The filter echoes what libmilter made of each of
our packets (connect family and address, HELO, MAIL and RCPT with their
ESMTP arguments, headers, body chunks, UNKNOWN, macros) back to us as
header fields at the end of the message, and asks for every
modification; so both directions are checked, byte for byte:
  - option negotiation: version, actions, protocol steps (SMFIP_NO* for
    a callback the filter lacks, SMFIP_NR_* for one that does not
    answer, SKIP) and the macro lists libmilter appends for
    smfi_setsymlist();
  - CONNECT for IPv4, IPv6, a unix socket and an unknown family;
  - every modification: add, insert, change and delete header fields
    (folded values with LF and CRLF, 8-bit), add recipients with and
    without ESMTP arguments, delete one, change the sender with and
    without arguments, a replacement body in more than one packet,
    progress, quarantine;
  - the verdicts accept, continue, reject, tempfail, discard, skip, and
    custom replies of one and of several lines (smfi_setmlreply).

No daemon is started.  The filter listens on a loopback port from
15400-15409 (the range set aside for this test on the shared machine).
"""

import os
import shutil
import socket
import subprocess
import tempfile
import time

import fixture

PORTS = range(15400, 15410)
START_TIMEOUT = 10

# The filter, run by /usr/bin/python3 with the port as its argument.  Its
# scenario is the first label of the host name in CONNECT.
FILTER = r'''
import sys
import Milter


def a(x):
    return ascii(x)


class CodecFilter(Milter.Base):
    def __init__(self):
        self.seen = []
        self.scenario = ""
        self.chunks = 0

    def negotiate(self, opts):
        rc = Milter.Base.negotiate(self, opts)
        # pymilter 1.0.5's setsymlist() hands its C module bytes where
        # it wants str: call the module directly
        self._ctx.setsymlist(Milter.M_CONNECT, "{client_addr} j")
        self._ctx.setsymlist(Milter.M_EOM, "i {auth_type}")
        return rc

    def connect(self, host, family, addr):
        self.scenario = host.split(".")[0]
        self.seen.append("connect %s %s %s j=%s client_addr=%s "
                         "daemon_name=%s _=%s" % (
                             a(host), family, a(addr),
                             a(self.getsymval("j")),
                             a(self.getsymval("{client_addr}")),
                             a(self.getsymval("{daemon_name}")),
                             a(self.getsymval("_"))))
        if self.scenario == "echo":
            self.setreply("550", "5.7.1", "seen %s %s %s" % (
                a(host), family, a(addr)))
            return Milter.REJECT
        return Milter.CONTINUE

    def hello(self, name):
        self.seen.append("helo " + a(name))
        return Milter.CONTINUE

    def unknown(self, cmd):
        self.seen.append("unknown " + a(cmd))
        return Milter.CONTINUE

    def envfrom(self, f, *args):
        self.seen.append("mail %s %s mail_addr=%s" % (
            a(f), a(args), a(self.getsymval("{mail_addr}"))))
        if f == "<replycode@example.org>":
            self.setreply("550", "5.7.1", "first line", "second line",
                          "third line")
            return Milter.REJECT
        return Milter.CONTINUE

    def envrcpt(self, to, *args):
        self.seen.append("rcpt %s %s rcpt_addr=%s" % (
            a(to), a(args), a(self.getsymval("{rcpt_addr}"))))
        local = to.strip("<>").split("@")[0]
        if local == "one":
            self.setreply("451", "4.7.1", "Try later")
            return Milter.TEMPFAIL
        return {"tempfail": Milter.TEMPFAIL, "reject": Milter.REJECT,
                "discard": Milter.DISCARD,
                "accept": Milter.ACCEPT}.get(local, Milter.CONTINUE)

    @Milter.nocallback
    def data(self):
        return Milter.CONTINUE

    @Milter.noreply
    def header(self, name, value):
        self.seen.append("header %s %s" % (a(name), a(value)))
        return Milter.CONTINUE

    @Milter.noreply
    def eoh(self):
        self.seen.append("eoh")
        return Milter.CONTINUE

    def body(self, chunk):
        self.chunks += 1
        self.seen.append("body " + a(chunk))
        if self.scenario == "skip":
            return Milter.SKIP
        return Milter.CONTINUE

    def eom(self):
        if self.scenario == "skip":
            self.addheader("X-Chunks", str(self.chunks))
            return Milter.CONTINUE
        if self.scenario == "discard":
            return Milter.DISCARD
        self.seen.append("eom i=%s" % a(self.getsymval("i")))
        for s in self.seen:
            self.addheader("X-Seen", s)
        self.addheader("X-Folded", "a\n\tb")
        self.addheader("X-Crlf", "c\r\n d")
        self.addheader("X-Utf8", "caf\u00e9")
        self.addheader("X-First", "top", 0)
        self.addheader("X-Third", "third", 2)
        self.chgheader("Subject", 1, "changed")
        self.chgheader("X-Drop", 2, "")
        self.addrcpt("<new@example.org>")
        self.addrcpt("<par@example.org>",
                     "NOTIFY=NEVER ORCPT=rfc822;par@example.org")
        self.delrcpt("<b@example.org>")
        self.chgfrom("<new-sender@example.org>", "SIZE=2000")
        self.chgfrom("<>")
        self.replacebody(b"x" * 70000)
        self.replacebody(b"\r\nend\r\n")
        self.progress()
        self.quarantine("held by the codec test")
        return Milter.ACCEPT


Milter.factory = CodecFilter
Milter.runmilter("codec", "inet:%s@127.0.0.1" % sys.argv[1], 30)
'''


def probe():
    path = os.path.join(fixture.BINDIR, "..", "regress", "milter_probe")
    assert os.path.exists(path), \
        "%s missing: build it with 'make unit'" % path
    return os.path.normpath(path)


def need_pymilter():
    try:
        import Milter  # noqa: F401
    except ImportError as e:
        fixture.skip("python3-milter missing: %s" % e)


def listening(port):
    """A socket in state LISTEN on 127.0.0.1:port (/proc/net/tcp)."""
    want = "0100007F:%04X" % port
    with open("/proc/net/tcp") as f:
        for line in f.readlines()[1:]:
            fields = line.split()
            if fields[1] == want and fields[3] == "0A":
                return True
    return False


def port_free(port):
    s = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    try:
        s.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        s.bind(("127.0.0.1", port))
        return True
    except OSError:
        return False
    finally:
        s.close()


class Filter:
    """The pymilter filter above, on the first free port of PORTS."""

    def __init__(self):
        self.dir = tempfile.mkdtemp(prefix="milter-codec.")
        self.script = os.path.join(self.dir, "filter.py")
        with open(self.script, "w") as f:
            f.write(FILTER)
        self.log = os.path.join(self.dir, "filter.log")
        self.proc = None
        self.port = None

    def __enter__(self):
        for port in PORTS:
            if not port_free(port):
                continue
            with open(self.log, "w") as log:
                self.proc = subprocess.Popen(
                    ["/usr/bin/python3", self.script, str(port)],
                    stdin=subprocess.DEVNULL, stdout=log, stderr=log)
            deadline = time.monotonic() + START_TIMEOUT
            while time.monotonic() < deadline:
                if self.proc.poll() is not None or listening(port):
                    break
                time.sleep(0.05)
            if self.proc.poll() is None and listening(port):
                self.port = port
                return self
            self.stop()
        log = self.output()
        shutil.rmtree(self.dir, ignore_errors=True)
        raise fixture.FixtureError("the filter did not start on any of "
                                   "ports 15400-15409:\n" + log)

    def output(self):
        try:
            with open(self.log, errors="replace") as f:
                return f.read()
        except OSError:
            return ""

    def stop(self):
        if self.proc is None:
            return
        # libmilter notices SIGTERM only at its next accept timeout
        # (seconds); the filter keeps nothing worth a clean exit
        if self.proc.poll() is None:
            self.proc.kill()
            self.proc.wait(5)
        self.proc = None

    def __exit__(self, *exc):
        self.stop()
        shutil.rmtree(self.dir, ignore_errors=True)


def esc(token):
    """A script token as milter_probe reads it."""
    if isinstance(token, str):
        token = token.encode()
    out = []
    for b in token:
        if b == 0x5c:
            out.append("\\\\")
        elif 0x20 < b < 0x7f:
            out.append(chr(b))
        else:
            out.append("\\x%02x" % b)
    return "".join(out)


def unesc(text):
    """The bytes of a value milter_probe printed."""
    out = bytearray()
    i = 0
    while i < len(text):
        c = text[i]
        if c != "\\":
            out += c.encode()
            i += 1
        elif text[i + 1] == "\\":
            out += b"\\"
            i += 2
        else:
            assert text[i + 1] == "x", text
            out.append(int(text[i + 2:i + 4], 16))
            i += 4
    return bytes(out)


class Reply:
    def __init__(self, line):
        words = line.split(" ")
        self.name = words[0]
        self.fields = {}
        for w in words[1:]:
            k, _, v = w.partition("=")
            self.fields.setdefault(k, []).append(unesc(v))

    def get(self, key):
        """The one value of key (bytes), None if absent."""
        v = self.fields.get(key)
        if v is None:
            return None
        assert len(v) == 1, (key, v)
        return v[0]

    def text(self, key):
        v = self.get(key)
        return None if v is None else v.decode("utf-8")

    def __repr__(self):
        return "%s %r" % (self.name, self.fields)


def dialog(flt, steps):
    """Run milter_probe on steps (lists of tokens) against flt; returns
    a list of (step name, [Reply...])."""
    script = "".join(" ".join(esc(t) for t in s) + "\n" for s in steps)
    r = subprocess.run([probe(), "127.0.0.1", str(flt.port)],
                       input=script.encode(), stdout=subprocess.PIPE,
                       stderr=subprocess.PIPE, timeout=60)
    out = r.stdout.decode()
    assert r.returncode == 0, "milter_probe failed (%d):\n%s%s\n" \
        "filter:\n%s" % (r.returncode, out, r.stderr.decode(),
                         flt.output())
    result = []
    for line in out.splitlines():
        if line.startswith("step "):
            result.append((line[5:], []))
        else:
            assert result, out
            result[-1][1].append(Reply(line))
    assert [s for s, _ in result] == [s[0] for s in steps], out
    return result


def replies(result, step, nth=0):
    """The replies to the nth step named step."""
    found = [r for s, r in result if s == step]
    return found[nth]


def only(result, step, nth=0):
    r = replies(result, step, nth)
    assert len(r) == 1, "%s: %r" % (step, r)
    return r[0]


OPTNEG = ["optneg", "6", "0x1ff", "0x1fffff"]


def test_milter_codec_negotiate():
    need_pymilter()
    with Filter() as flt:
        res = dialog(flt, [OPTNEG, ["quit"]])
    o = only(res, "optneg")
    assert o.name == "optneg", o
    assert o.get("version") == b"6"
    # pymilter leaves every action on
    assert int(o.text("actions"), 0) == 0x1ff
    # data has no callback (@nocallback), header and eoh no reply
    # (@noreply); SKIP is understood; every other step is wanted
    assert int(o.text("protocol"), 0) == (
        0x000200 | 0x000080 | 0x040000 | 0x000400), o
    assert o.get("sym0") == b"{client_addr} j"
    assert o.get("sym5") == b"i {auth_type}"
    for stage in (1, 2, 3, 4, 6):
        assert o.get("sym%d" % stage) is None, o


def message_steps(host):
    return [
        OPTNEG,
        ["macro", "C", "j", "mx.example.org", "{daemon_name}", "posthaste",
         "{client_addr}", "192.0.2.1", "_", "client.example.com [192.0.2.1]"],
        ["connect", host, "4", "192.0.2.1", "25"],
        ["helo", "client.example.com"],
        ["unknown", "XFOO bar"],
        ["macro", "M", "{mail_addr}", "a@example.org"],
        ["mail", "<a@example.org>", "SIZE=100", "BODY=8BITMIME"],
        ["macro", "R", "{rcpt_addr}", "b@example.org"],
        ["rcpt", "<b@example.org>", "NOTIFY=SUCCESS,FAILURE"],
        ["macro", "R", "{rcpt_addr}", "c@example.org"],
        ["rcpt", "<c@example.org>"],
        ["data"],
        ["header", "Subject", "hello\n\tfolded"],
        ["header", "X-Utf8", "caf\u00e9"],
        ["header", "X-Drop", "one"],
        ["header", "X-Drop", "two"],
        ["eoh"],
        ["body", "line one\r\n"],
        ["body", "line two\r\n"],
        ["macro", "E", "i", "4XyZ123"],
        ["eom"],
        ["quit"],
    ]


def test_milter_codec_message():
    need_pymilter()
    with Filter() as flt:
        res = dialog(flt, message_steps("mods.example.com"))
    for step in ("connect", "helo", "unknown", "mail", "rcpt", "body"):
        for r in [r for s, r in res if s == step]:
            assert [x.name for x in r] == ["continue"], (step, r)
    # negotiated away: no DATA sent, no reply awaited to header and eoh
    assert [x.name for x in replies(res, "data")] == ["skipped"]
    for step in ("header", "eoh"):
        assert replies(res, step) == [], (step, res)

    eom = replies(res, "eom")
    names = [r.name for r in eom]
    seen = [r.text("value") for r in eom
            if r.name == "addheader" and r.text("name") == "X-Seen"]
    # what libmilter made of our packets, as the filter saw it
    assert seen == [
        "connect 'mods.example.com' 2 ('192.0.2.1', 25) "
        "j='mx.example.org' client_addr='192.0.2.1' "
        "daemon_name='posthaste' _='client.example.com [192.0.2.1]'",
        "helo 'client.example.com'",
        "unknown 'XFOO bar'",
        "mail '<a@example.org>' ('SIZE=100', 'BODY=8BITMIME') "
        "mail_addr='a@example.org'",
        "rcpt '<b@example.org>' ('NOTIFY=SUCCESS,FAILURE',) "
        "rcpt_addr='b@example.org'",
        "rcpt '<c@example.org>' () rcpt_addr='c@example.org'",
        "header 'Subject' 'hello\\n\\tfolded'",
        "header 'X-Utf8' 'caf\\xe9'",
        "header 'X-Drop' 'one'",
        "header 'X-Drop' 'two'",
        "eoh",
        "body b'line one\\r\\n'",
        "body b'line two\\r\\n'",
        "eom i='4XyZ123'",
    ], "\n".join(map(str, seen))

    rest = [r for r in eom
            if not (r.name == "addheader" and r.text("name") == "X-Seen")]
    want = [
        ("addheader", {"name": b"X-Folded", "value": b"a\n\tb"}),
        # CRLF folding arrives as LF
        ("addheader", {"name": b"X-Crlf", "value": b"c\n d"}),
        ("addheader", {"name": b"X-Utf8", "value": b"caf\xc3\xa9"}),
        ("insheader", {"index": b"0", "name": b"X-First",
                       "value": b"top"}),
        ("insheader", {"index": b"2", "name": b"X-Third",
                       "value": b"third"}),
        ("chgheader", {"index": b"1", "name": b"Subject",
                       "value": b"changed"}),
        ("chgheader", {"index": b"2", "name": b"X-Drop", "value": b""}),
        ("addrcpt", {"addr": b"<new@example.org>"}),
        ("addrcpt_par", {"addr": b"<par@example.org>",
                         "args": b"NOTIFY=NEVER ORCPT=rfc822;"
                                 b"par@example.org"}),
        ("delrcpt", {"addr": b"<b@example.org>"}),
        ("chgfrom", {"addr": b"<new-sender@example.org>",
                     "args": b"SIZE=2000"}),
        ("chgfrom", {"addr": b"<>"}),
    ]
    got = [(r.name, {k: v[0] for k, v in r.fields.items()})
           for r in rest[:len(want)]]
    assert got == want, "\n".join(map(repr, got))
    tail = rest[len(want):]
    # the new body: libmilter cuts it into packets of at most 65535
    body = [r for r in tail if r.name == "replbody"]
    assert [len(r.get("data")) for r in body] == [65535, 70000 - 65535, 7]
    assert b"".join(r.get("data") for r in body) == \
        b"x" * 70000 + b"\r\nend\r\n"
    assert [r.name for r in tail[len(body):]] == \
        ["progress", "quarantine", "accept"], names
    assert tail[-2].get("text") == b"held by the codec test"


def test_milter_codec_connect_families():
    need_pymilter()
    cases = [
        (["connect", "echo.example", "6", "2001:db8::1", "587"],
         "seen 'echo.example' 10 ('2001:db8::1', 587, 0, 0)"),
        (["connect", "echo.example", "unix", "/run/posthaste/smtp.sock"],
         "seen 'echo.example' 1 '/run/posthaste/smtp.sock'"),
        (["connect", "echo.example", "none"],
         "seen 'echo.example' 0 None"),
        (["connect", "echo.example", "4", "198.51.100.7", "65534"],
         "seen 'echo.example' 2 ('198.51.100.7', 65534)"),
    ]
    with Filter() as flt:
        for connect, text in cases:
            res = dialog(flt, [OPTNEG, connect, ["quit"]])
            r = only(res, "connect")
            assert r.name == "replycode", r
            assert r.text("text") == "550 5.7.1 " + text, r
            assert r.get("code") == b"550"
            assert r.fields["line"] == [("550 5.7.1 " + text).encode()]


def test_milter_codec_verdicts():
    need_pymilter()
    with Filter() as flt:
        for local, verdict in (("continue", "continue"),
                               ("accept", "accept"),
                               ("reject", "reject"),
                               ("tempfail", "tempfail"),
                               ("discard", "discard")):
            res = dialog(flt, [
                OPTNEG, ["connect", "verdict.example", "none"],
                ["helo", "client"], ["mail", "<a@example.org>"],
                ["rcpt", "<%s@example.org>" % local], ["abort"],
                ["quit"]])
            assert only(res, "rcpt").name == verdict, (local, res)
        # one line (smfi_setreply), several (smfi_setmlreply)
        res = dialog(flt, [
            OPTNEG, ["connect", "verdict.example", "none"],
            ["helo", "client"], ["mail", "<a@example.org>"],
            ["rcpt", "<one@example.org>"], ["abort"],
            ["mail", "<replycode@example.org>"], ["abort"], ["quit"]])
        r = only(res, "rcpt")
        assert r.name == "replycode", r
        assert r.get("text") == b"451 4.7.1 Try later"
        assert r.get("code") == b"451"
        assert r.fields["line"] == [b"451 4.7.1 Try later"]
        r = only(res, "mail", 1)
        assert r.name == "replycode", r
        assert r.get("text") == (b"550-5.7.1 first line\r\n"
                                 b"550-5.7.1 second line\r\n"
                                 b"550 5.7.1 third line")
        assert r.get("code") == b"550"
        assert r.fields["line"] == [b"550-5.7.1 first line",
                                    b"550-5.7.1 second line",
                                    b"550 5.7.1 third line"]
        # discard at the end of the message
        res = dialog(flt, [
            OPTNEG, ["connect", "discard.example", "none"],
            ["helo", "client"], ["mail", "<a@example.org>"],
            ["rcpt", "<b@example.org>"], ["header", "Subject", "x"],
            ["eoh"], ["body", "x\r\n"], ["eom"], ["quit"]])
        assert [r.name for r in replies(res, "eom")] == ["discard"]


def test_milter_codec_skip():
    need_pymilter()
    with Filter() as flt:
        res = dialog(flt, [
            OPTNEG, ["connect", "skip.example", "none"],
            ["helo", "client"], ["mail", "<a@example.org>"],
            ["rcpt", "<b@example.org>"], ["eoh"],
            ["body", "first\r\n"], ["body", "second\r\n"],
            ["body", "third\r\n"], ["eom"], ["quit"]])
    assert only(res, "body", 0).name == "skip"
    # after SKIP the probe sends no more body: the filter saw one chunk
    assert only(res, "body", 1).name == "skipped"
    assert only(res, "body", 2).name == "skipped"
    eom = replies(res, "eom")
    assert [r.name for r in eom] == ["addheader", "continue"], eom
    assert eom[0].get("name") == b"X-Chunks"
    assert eom[0].get("value") == b"1"
