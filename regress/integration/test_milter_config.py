"""
Mail filters in the configuration and in smtpctl (issue 19): the real
daemon with two filters -- one on a port nobody listens on, one on a
socket this test listens on -- and a unix one, chained on the listener
and for sendmail.  `smtpctl show milters` and `-j` list every configured
filter, in the order written, with its address and state "unused" while
no worker has used it; any user may read it (as show stats).  A reload
that adds a filter shows it; one whose file has a milter error changes
nothing.  smtpd -n prints where each filter will be reached.

(A worker asking the parent for a connection is proved by the tests of
the milter client itself; the parent's connector alone by
regress/unit/test_milter_connect.c.)
"""

import json
import os
import shutil
import socket
import subprocess
import tempfile

import fixture
from fixture import (DEFAULT_CONF, TEST_USER1, Daemon, as_user, binary, poll,
                     run_smtpd)

TIMEOUT = 60
PORT_CLOSED = 15410	# nobody listens here
PORT_OPEN = 15411	# this test listens here

FILTERS = """\
milter closed "inet:127.0.0.1:%d" connect-timeout 2s on-error accept
milter open inet:127.0.0.1:%d eom-timeout 1m
milter local unix:@TMP@/filter.sock on-error quarantine
sendmail milter { local, open }
""" % (PORT_CLOSED, PORT_OPEN)

COUNTERS = ("sessions", "messages", "accepted", "rejected", "tempfailed",
            "discarded", "quarantined", "modified", "errors")


PORT_FILTERED = 15413	# a listener of the daemon's that filters


def milter_conf(filters=FILTERS):
    """DEFAULT_CONF with the filters, and a second listener filtering
    through two of them (not the one the fixture waits on for its
    banner: a session there would use the filters, and the "open" one
    never answers the negotiation, so the banner would wait for its
    command-timeout)."""
    listen = "listen on 127.0.0.1 port @PORT@"
    assert listen + "\n" in DEFAULT_CONF
    return DEFAULT_CONF.replace(
        listen + "\n", listen + "\nlisten on 127.0.0.1 port %d "
        "milter { closed open }\n" % PORT_FILTERED) + filters


class Listener:
    """A TCP socket of the test's own on 127.0.0.1 (never accepted
    from: the daemon only has to be able to reach it)."""

    def __init__(self, port):
        self.port = port
        self.sock = None

    def __enter__(self):
        s = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
        s.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        try:
            s.bind(("127.0.0.1", self.port))
        except OSError as e:
            s.close()
            fixture.skip("port %d is taken: %s" % (self.port, e))
        s.listen(16)
        self.sock = s
        return self

    def __exit__(self, *exc):
        self.sock.close()
        return False


def smtpctl(d, *args, preexec_fn=None):
    r = subprocess.run([binary("smtpctl"), "-s", d.socket_path] + list(args),
                       stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                       timeout=10, preexec_fn=preexec_fn)
    return r.returncode, r.stdout.decode("utf-8", "replace"), \
        r.stderr.decode("utf-8", "replace")


def show_lines(d, preexec_fn=None):
    rc, out, err = smtpctl(d, "show", "milters", preexec_fn=preexec_fn)
    assert rc == 0, "smtpctl show milters: exit %d, %r %r" % (rc, out, err)
    return out.splitlines()


def show_json(d):
    rc, out, err = smtpctl(d, "show", "milters", "-j")
    assert rc == 0, "smtpctl show milters -j: exit %d, %r %r" % (rc, out,
                                                                 err)
    return [json.loads(line) for line in out.splitlines()]


def check_unused_line(line, name, address):
    words = line.split()
    assert words[0] == name and words[1] == address, line
    fields = dict(w.split("=", 1) for w in words[2:])
    assert fields["state"] == "unused", line
    assert "since" not in fields and "error" not in fields, line
    for c in COUNTERS + ("on-error-used",):
        assert fields[c] == "0", (c, line)


def test_show_milters_unused():
    with Listener(PORT_OPEN), Daemon(conf=milter_conf()) as d:
        lines = show_lines(d)
        assert len(lines) == 3, lines
        check_unused_line(lines[0], "closed",
                          "inet:127.0.0.1:%d" % PORT_CLOSED)
        check_unused_line(lines[1], "open", "inet:127.0.0.1:%d" % PORT_OPEN)
        check_unused_line(lines[2], "local",
                          "unix:%s/filter.sock" % d.tmp)

        docs = show_json(d)
        assert [m["name"] for m in docs] == ["closed", "open", "local"], docs
        m = docs[0]
        assert m["address"] == "inet:127.0.0.1:%d" % PORT_CLOSED, m
        assert m["state"] == "unused" and m["since"] is None, m
        assert m["error"] is None and m["error_at"] is None, m
        for c in COUNTERS + ("on_error_used",):
            assert m[c] == 0, (c, m)

        # any user may look, as at show stats
        assert show_lines(d, preexec_fn=as_user(TEST_USER1)) == lines


def test_show_milters_none_configured():
    with Daemon() as d:
        assert show_lines(d) == ["no milters configured"]
        assert show_json(d) == []


def test_reload():
    """SIGHUP: a filter added shows; a file with a milter error keeps
    the running configuration (and its filters)."""
    with Listener(PORT_OPEN), Daemon(conf=milter_conf()) as d:
        assert len(show_lines(d)) == 3
        added = FILTERS + "milter added inet:127.0.0.1:%d\n" % PORT_OPEN
        with open(d.conf_path, "w") as f:
            f.write(milter_conf(added).replace("@TMP@", d.tmp)
                    .replace("@PORT@", str(d.port)))
        d.send_signal(1)
        names = poll(lambda: [l.split()[0] for l in show_lines(d)]
                     if len(show_lines(d)) == 4 else None, timeout=10)
        assert names == ["closed", "open", "local", "added"], \
            (names, d.log_tail())

        bad = added + "milter broken inet:127.0.0.1:0\n"
        with open(d.conf_path, "w") as f:
            f.write(milter_conf(bad).replace("@TMP@", d.tmp)
                    .replace("@PORT@", str(d.port)))
        d.send_signal(1)
        assert poll(lambda: "reload failed" in d.log(), timeout=10), \
            d.log_tail()
        assert "invalid port" in d.log(), d.log_tail()
        assert [l.split()[0] for l in show_lines(d)] == \
            ["closed", "open", "local", "added"]


def test_check_prints_filters():
    """smtpd -n: each filter with where it will be reached, the chains."""
    with fixture_conf(milter_conf().replace("@PORT@", "15412")) as path:
        r = run_smtpd(["-n", "-f", path])
        assert r.returncode == 0, r.output
        out = r.output
        assert "milter closed inet:127.0.0.1:%d: connect to 127.0.0.1 " \
            "port %d, connect-timeout 2s, command-timeout 30s, " \
            "eom-timeout 300s, on-error accept" % (PORT_CLOSED,
                                                    PORT_CLOSED) in out, out
        assert "milter open inet:127.0.0.1:%d: connect to 127.0.0.1 port " \
            "%d, connect-timeout 30s, command-timeout 30s, eom-timeout " \
            "60s, on-error tempfail" % (PORT_OPEN, PORT_OPEN) in out, out
        assert "on-error quarantine" in out, out
        assert "listen on 127.0.0.1 port %d: milters closed open" \
            % PORT_FILTERED in out, out
        assert "sendmail: milters local open" in out, out
        assert out.rstrip().endswith("configuration OK"), out


def test_config_errors():
    cases = [
        ("milter a inet:127.0.0.1:25\nmilter a inet:127.0.0.1:26\n", 2,
         'milter "a" already defined at line 1'),
        ("\nmilter a inet:127.0.0.1:70000\n", 2, "invalid port"),
        ("milter a inet:no-such-host.invalid:25\n", 1, "cannot resolve"),
        ("milter a inet:127.0.0.1:25 retry 3\n", 1,
         'unknown option "retry"'),
        ("milter a inet:127.0.0.1:25 eom-timeout 5 minutes\n", 1,
         'unknown option "minutes"'),
        ("milter a inet:127.0.0.1:25 connect-timeout soon\n", 1,
         "invalid duration"),
        ("sendmail milter nothere\n", 1, 'no milter "nothere" defined'),
        ("milter a unix:/a\nsendmail milter { a, a }\n", 2,
         "named twice in one chain"),
    ]
    for text, line, message in cases:
        with fixture_conf(DEFAULT_CONF.replace("@PORT@", "15413") +
                          text) as path:
            r = run_smtpd(["-n", "-f", path])
            want = "%s:%d: " % (path, DEFAULT_CONF.count("\n") + line)
            assert r.returncode != 0, (text, r.output)
            assert want in r.output and message in r.output, \
                (text, want, message, r.output)
            assert "configuration OK" not in r.output


class fixture_conf:
    """A configuration file in a directory of its own, @TMP@ filled."""

    def __init__(self, text):
        self.text = text
        self.dir = None

    def __enter__(self):
        fixture.setup_system()
        os.makedirs(fixture.TEST_ROOT, mode=0o755, exist_ok=True)
        self.dir = tempfile.mkdtemp(prefix="mconf.", dir=fixture.TEST_ROOT)
        path = os.path.join(self.dir, "smtpd.conf")
        with open(path, "w") as f:
            f.write(self.text.replace("@TMP@", self.dir))
        return path

    def __exit__(self, *exc):
        shutil.rmtree(self.dir, ignore_errors=True)
        return False
