"""
test_mta_mx.py -- MX order and fallback in the mta (issue 6), with the
lookup process resolving through dnsmasq (started here on a random
loopback port, "resolver 127.0.0.1 port N").

MX delivery goes to port 25, so the scripted servers listen on port 25
of their own loopback addresses (127.0.0.x), which nothing else uses.
"""

import os
import signal
import subprocess
import time

import fixture
from fixture import Daemon, unique_marker
from test_mta_relay import FakeSMTP, send_mail, message, wait_log

TIMEOUT = 60

DNSMASQ = "/usr/sbin/dnsmasq"

CONF = """\
spool "@TMP@/spool"
socket "@TMP@/smtpd.sock"
smtp workers 1
resolver 127.0.0.1 port %(dns)d
listen on 127.0.0.1 port @PORT@
action "mx" relay
match from local for any action "mx"
"""


class Dnsmasq:
    """dnsmasq answering for .test: mx.test has MX 10 mx1 (127.0.0.51)
    and MX 20 mx2 (127.0.0.52); down.test has two MX that nobody
    serves."""

    def __init__(self):
        if not os.access(DNSMASQ, os.X_OK):
            raise fixture.FixtureError("dnsmasq not installed "
                                       "(mk/deps.sh: dnsmasq-base)")
        for _ in range(5):
            self.port = fixture.free_port()
            self.proc = subprocess.Popen(
                [DNSMASQ, "--keep-in-foreground", "--no-daemon",
                 "--conf-file=/dev/null", "--no-resolv", "--no-hosts",
                 "--no-poll", "--bind-interfaces",
                 "--listen-address=127.0.0.1", "--user=nobody",
                 "--group=nogroup", "--pid-file=",
                 "--log-facility=/dev/null", "--port=%d" % self.port,
                 "--local=/test/",
                 "--mx-host=mx.test,mx1.mx.test,10",
                 "--mx-host=mx.test,mx2.mx.test,20",
                 "--host-record=mx1.mx.test,127.0.0.51",
                 "--host-record=mx2.mx.test,127.0.0.52",
                 "--mx-host=down.test,mx1.down.test,10",
                 "--mx-host=down.test,mx2.down.test,20",
                 "--host-record=mx1.down.test,127.0.0.53",
                 "--host-record=mx2.down.test,127.0.0.54"],
                stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
                start_new_session=True)
            time.sleep(0.3)
            if self.proc.poll() is None:
                return
        raise fixture.FixtureError("dnsmasq did not start")

    def stop(self):
        if self.proc.poll() is None:
            self.proc.send_signal(signal.SIGTERM)
            try:
                self.proc.wait(5)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait(5)

    def __enter__(self):
        return self

    def __exit__(self, *exc):
        self.stop()
        return False


def mx_server(ip, **kw):
    try:
        return FakeSMTP(addr=(ip, 25), **kw)
    except OSError as e:
        raise fixture.FixtureError("cannot listen on %s:25: %s" % (ip, e))


def test_mx_fallback_when_first_refuses():
    """MX 10 refuses the connection: the mail goes to MX 20."""
    with Dnsmasq() as dns, mx_server("127.0.0.52") as mx2, \
            Daemon(conf=CONF % {"dns": dns.port}) as d:
        send_mail(d.port, ["u@mx.test"], message(unique_marker("mx")))
        wait_log(d, r"to=<u@mx.test>, relay=mx2\.mx\.test\[127\.0\.0\.52\]"
                 r":25.*status=sent")
        wait_log(d, r"mx1\.mx\.test\[127\.0\.0\.51\]:25.*(refused|connect)")
        assert len(mx2.transactions()) == 1


def test_mx_fallback_on_421_greeting():
    """MX 10 answers 421: MX 20 gets the mail."""
    with Dnsmasq() as dns, \
            mx_server("127.0.0.51", greeting="421 4.3.2 busy") as mx1, \
            mx_server("127.0.0.52") as mx2, \
            Daemon(conf=CONF % {"dns": dns.port}) as d:
        send_mail(d.port, ["v@mx.test"], message("greet"))
        wait_log(d, r"to=<v@mx.test>, relay=mx2\.mx\.test.*status=sent")
        assert mx1.transactions() == [] and len(mx2.transactions()) == 1


def test_mx_preferred_host_first():
    """Both MX up: the lower preference gets the mail."""
    with Dnsmasq() as dns, mx_server("127.0.0.51") as mx1, \
            mx_server("127.0.0.52") as mx2, \
            Daemon(conf=CONF % {"dns": dns.port}) as d:
        send_mail(d.port, ["w@mx.test"], message("pref"))
        wait_log(d, r"to=<w@mx.test>, relay=mx1\.mx\.test.*status=sent")
        assert mx2.sessions == []


def test_all_mx_down_defers():
    with Dnsmasq() as dns, Daemon(conf=CONF % {"dns": dns.port}) as d:
        send_mail(d.port, ["x@down.test"], message("down"))
        wait_log(d, r"to=<x@down.test>.*dsn=4\.4\.1, status=deferred")


def test_unknown_domain_bounces():
    """NXDOMAIN from lookup is permanent: 5.1.2."""
    with Dnsmasq() as dns, Daemon(conf=CONF % {"dns": dns.port}) as d:
        send_mail(d.port, ["y@nowhere.test"], message("nx"))
        wait_log(d, r"to=<y@nowhere.test>.*dsn=5\.1\.2, status=bounced")
