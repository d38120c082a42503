"""
Metrics (issue 22): the queue's counters and gauges in the Prometheus text
format, by `smtpctl show metrics` and by GET /metrics on the address
`metrics listen on` names (served by the control process).

One daemon for the module: mail to a local user (delivered) and to a
relay nobody answers (deferred); on a second listener (TLS, AUTH, a
tag) one STARTTLS session with one AUTH failure and one success; then
 - smtpctl show metrics: the counts the test caused, and promtool (from
   Debian's prometheus) finds nothing to lint in the text;
 - GET /metrics: the same text, the right Content-Type, and 404/405/400
   for other paths, methods and garbage, the endpoint still serving after;
 - a real Prometheus started here on loopback scrapes the endpoint every
   second, and its query API returns the values the test caused;
 - etc/grafana-posthaste.json: valid JSON whose every expr queries
   metric names the daemon exports;
 - the sessions gauge per listener follows a session held open on the
   second listener.
Ports 15800-15819: 15800 the endpoint, 15801 Prometheus, 15802 the
second listener.
"""

import http.client
import json
import os
import re
import shutil
import smtplib
import socket
import subprocess
import tempfile
import time
import urllib.parse
import urllib.request

from fixture import (REPO, TEST_ROOT, Daemon, SMTPConnection, binary,
                     ensure_test_user, maildir_files, poll, reset_maildir,
                     skip, unique_marker)
from test_smtp_auth import PASSWORD, b64
from test_smtp_common import (HELO, credentials_table, expect, pki_conf,
                              sha512_crypt, starttls)

USER = "phmetrics"
METRICS_PORT = 15800
PROM_PORT = 15801
SUBMIT_PORT = 15802
SUBMIT = {"listener": "127.0.0.1:%d" % SUBMIT_PORT, "tag": "submission"}
NLOCAL = 3

CONF = """\
spool "@TMP@/spool"
socket "@TMP@/smtpd.sock"
smtp workers 1
queue retry-remote 1s
listen on 127.0.0.1 port @PORT@
listen on 127.0.0.1 port %d tls pki mail.example.test auth <creds> \
    tag "submission"
metrics listen on 127.0.0.1 port %d
action "local" maildir "~/Maildir"
action "dead" relay host "smtp://127.0.0.1:9"
match from any for domain "example.test" action "local"
match from any for domain "remote.test" action "dead"
""" % (SUBMIT_PORT, METRICS_PORT)

_daemon = None


def daemon():
    """The module's daemon, with its mail sent and settled."""
    global _daemon
    if _daemon is not None:
        return _daemon
    ensure_test_user(USER)
    reset_maildir(USER)
    creds = credentials_table([("alice", sha512_crypt(PASSWORD))])
    d = Daemon(conf=pki_conf() + "table creds file:%s\n" % creds + CONF)
    d.keep_running = True
    d.start()
    _daemon = d
    with smtplib.SMTP("127.0.0.1", d.port, timeout=10) as s:
        for i in range(NLOCAL):
            s.sendmail("sender@example.test", ["%s@example.test" % USER],
                       "Subject: %s\r\n\r\nbody\r\n" % unique_marker())
        s.sendmail("sender@example.test", ["someone@remote.test"],
                   "Subject: deferred\r\n\r\nbody\r\n")
        # two refused recipients: an unknown user, a relay attempt
        s.mail("sender@example.test")
        assert s.rcpt("nosuchuser-metrics@example.test")[0] == 550
        assert s.rcpt("someone@elsewhere.test")[0] >= 550
        s.rset()
    # the AUTH and TLS counters, end to end: one STARTTLS session, one
    # failed AUTH, one that succeeds
    with SMTPConnection(SUBMIT_PORT) as c:
        assert c.command("EHLO " + HELO).code == 250
        starttls(c)
        assert c.command("EHLO " + HELO).code == 250
        expect(c.command("AUTH PLAIN " + b64("\0alice\0wrong")), 535,
               "5.7.8", "AUTH with a wrong password")
        expect(c.command("AUTH PLAIN " + b64("\0alice\0" + PASSWORD)),
               235, "2.7.0", "AUTH PLAIN")
        c.command("QUIT")
    assert poll(lambda: len(maildir_files(USER)) == NLOCAL), \
        "the local mail was not delivered"
    # the relay's first attempt fails at once (nothing on port 9)
    assert poll(lambda: sample(show_metrics(d),
                "posthaste_messages_deferred_total",
                transport="relay") >= 1), "no deferral counted"
    return d


def teardown_module():
    global _daemon
    d, _daemon = _daemon, None
    if d is not None:
        d.keep_running = False
        d.stop()


def show_metrics(d):
    p = subprocess.run([binary("smtpctl"), "-s", d.socket_path, "show",
                        "metrics"], stdin=subprocess.DEVNULL,
                       capture_output=True, text=True, timeout=20)
    assert p.returncode == 0, p.stderr
    return p.stdout


def parse(text):
    """{(name, ((label, value), ...)): float}, and the TYPE of each
    family."""
    samples, types = {}, {}
    for line in text.splitlines():
        if line.startswith("# TYPE "):
            _, _, name, typ = line.split(" ")
            types[name] = typ
            continue
        if line.startswith("#") or not line:
            continue
        m = re.match(r'^([a-zA-Z_:][a-zA-Z0-9_:]*)(?:\{(.*)\})? (\S+)$',
                     line)
        assert m, "not a sample line: %r" % line
        labels = tuple(sorted(re.findall(r'([a-zA-Z_]\w*)="([^"]*)"',
                                         m.group(2) or "")))
        samples[(m.group(1), labels)] = float(m.group(3))
    return samples, types


def sample(text, name, **labels):
    samples, _ = parse(text)
    return samples.get((name, tuple(sorted(labels.items()))), -1)


def test_smtpctl_show_metrics():
    d = daemon()
    text = show_metrics(d)
    samples, types = parse(text)
    assert sample(text, "posthaste_messages_received_total") == NLOCAL + 1
    assert sample(text, "posthaste_messages_delivered_total",
                  transport="local") == NLOCAL
    assert sample(text, "posthaste_messages_delivered_total",
                  transport="relay") == 0
    assert sample(text, "posthaste_messages_bounced_total",
                  transport="local") == 0
    # the deferred relay envelope is the queue's only one
    queued = sum(v for (n, _), v in samples.items()
                 if n == "posthaste_queue_envelopes")
    assert queued == 1, text
    assert sample(text, "posthaste_queue_oldest_message_age_seconds") >= 0
    assert sample(text, "posthaste_delivery_delay_seconds_count") == NLOCAL
    assert sample(text, "posthaste_delivery_delay_seconds_bucket",
                  le="+Inf") == NLOCAL
    # the smtp workers' counters (common/smtpcount.c), read by control:
    # our session and the fixture's banner probe at least
    assert sample(text, "posthaste_smtp_connections_total") >= 2
    assert sample(text, "posthaste_smtp_auth_total", result="failure") == 1
    assert sample(text, "posthaste_smtp_auth_total", result="success") == 1
    assert sample(text, "posthaste_smtp_recipients_rejected_total",
                  reason="unknown_user") == 1, text
    assert sample(text, "posthaste_smtp_recipients_rejected_total",
                  reason="denied") == 1, text
    assert sample(text, "posthaste_smtp_rejects_total", stage="RCPT",
                  **{"class": "5xx"}) == 2
    # Python's ssl and OpenSSL 3 agree on TLS 1.3
    assert sample(text, "posthaste_smtp_tls_sessions_total",
                  version="TLSv1.3") == 1, text
    assert sample(text, "posthaste_smtp_tls_sessions_total",
                  version="TLSv1.2") == 0
    # no checks, no milter here: every result counted 0, and listed
    assert sample(text, "posthaste_spf_results_total", result="pass") == 0
    assert sample(text, "posthaste_dmarc_results_total", result="none") == 0
    assert sample(text, "posthaste_milter_actions_total",
                  action="reject") == 0
    assert poll(lambda: sample(show_metrics(d),
                               "posthaste_smtp_sessions_open") == 0), \
        "sessions still open"
    assert sample(text, "posthaste_message_size_bytes_count") == NLOCAL + 1
    assert sample(text, "posthaste_message_size_bytes_bucket",
                  le="1024") == NLOCAL + 1	# small test messages
    assert sample(text, "posthaste_queue_commit_latency_seconds_count") \
        == NLOCAL + 1
    assert types["posthaste_messages_received_total"] == "counter"
    assert types["posthaste_queue_envelopes"] == "gauge"
    assert types["posthaste_delivery_delay_seconds"] == "histogram"
    # every counter's name ends in _total (Prometheus conventions)
    for name, typ in types.items():
        assert name.startswith("posthaste_"), name
        assert (typ == "counter") == name.endswith("_total"), name


def test_promtool_check_metrics():
    if shutil.which("promtool") is None:
        skip("promtool (Debian package prometheus) is not installed")
    text = show_metrics(daemon())
    p = subprocess.run(["promtool", "check", "metrics"], input=text,
                       capture_output=True, text=True, timeout=30)
    assert p.returncode == 0 and p.stdout.strip() == "" and \
        p.stderr.strip() == "", "promtool: %s%s" % (p.stdout, p.stderr)


def http_get(path, method="GET", raw=None):
    if raw is not None:
        with socket.create_connection(("127.0.0.1", METRICS_PORT),
                                      timeout=10) as s:
            s.sendall(raw)
            data = b""
            while True:
                chunk = s.recv(65536)
                if not chunk:
                    break
                data += chunk
            return data
    c = http.client.HTTPConnection("127.0.0.1", METRICS_PORT, timeout=10)
    try:
        c.request(method, path)
        r = c.getresponse()
        return r.status, r.getheader("Content-Type"), r.read().decode()
    finally:
        c.close()


def test_http_endpoint():
    d = daemon()
    status, ctype, body = http_get("/metrics")
    assert status == 200
    assert ctype.startswith("text/plain; version=0.0.4"), ctype
    assert sample(body, "posthaste_messages_received_total") == NLOCAL + 1
    assert sample(body, "posthaste_messages_delivered_total",
                  transport="local") == NLOCAL
    # the same families as smtpctl's
    assert parse(body)[1] == parse(show_metrics(d))[1]
    assert http_get("/")[0] == 404
    assert http_get("/metrics", method="POST")[0] == 405
    assert http_get(None, raw=b"GARBAGE\x00\r\n\r\n").startswith(
        b"HTTP/1.1 400 ")
    status, _, body = http_get("/metrics", method="HEAD")
    assert status == 200 and body == ""
    # clients that say nothing do not keep the others waiting
    idle = [socket.create_connection(("127.0.0.1", METRICS_PORT))
            for _ in range(5)]
    try:
        assert http_get("/metrics")[0] == 200
    finally:
        for s in idle:
            s.close()


def prom_query(query):
    url = "http://127.0.0.1:%d/api/v1/query?%s" % (
        PROM_PORT, urllib.parse.urlencode({"query": query}))
    with urllib.request.urlopen(url, timeout=5) as r:
        doc = json.load(r)
    assert doc["status"] == "success", doc
    return doc["data"]["result"]


def test_prometheus_scrapes():
    prometheus = shutil.which("prometheus")
    if prometheus is None:
        skip("prometheus (Debian package prometheus) is not installed")
    daemon()
    tmp = tempfile.mkdtemp(prefix="prom.", dir=TEST_ROOT)
    with open(os.path.join(tmp, "prometheus.yml"), "w") as f:
        f.write("global:\n  scrape_interval: 1s\n  scrape_timeout: 1s\n"
                "scrape_configs:\n  - job_name: posthaste\n"
                "    static_configs:\n"
                "      - targets: ['127.0.0.1:%d']\n" % METRICS_PORT)
    log = open(os.path.join(tmp, "prometheus.log"), "w")
    proc = subprocess.Popen(
        [prometheus, "--config.file=%s/prometheus.yml" % tmp,
         "--storage.tsdb.path=%s/data" % tmp,
         "--web.listen-address=127.0.0.1:%d" % PROM_PORT],
        stdin=subprocess.DEVNULL, stdout=log, stderr=subprocess.STDOUT)

    def value(query):
        try:
            r = prom_query(query)
        except OSError:
            return None
        return r[0]["value"][1] if r else None

    try:
        assert poll(lambda: value('up{job="posthaste"}') == "1",
                    timeout=30), "Prometheus never scraped the endpoint"
        assert poll(lambda: value("posthaste_messages_received_total")
                    == str(NLOCAL + 1), timeout=10)
        assert value('posthaste_messages_delivered_total'
                     '{transport="local"}') == str(NLOCAL)
        assert float(value('posthaste_messages_deferred_total'
                           '{transport="relay"}')) >= 1
        assert value('sum(posthaste_queue_envelopes)') == "1"
    finally:
        proc.terminate()
        try:
            proc.wait(timeout=10)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait()
        log.close()
        shutil.rmtree(tmp, ignore_errors=True)


def test_grafana_dashboard_queries_our_metrics():
    with open(os.path.join(REPO, "etc", "grafana-posthaste.json")) as f:
        dash = json.load(f)
    _, types = parse(show_metrics(daemon()))
    exported = set()
    for name, typ in types.items():
        exported.add(name)
        if typ == "histogram":
            exported.update(name + s for s in ("_bucket", "_sum", "_count"))
    exprs = []

    def walk(o):
        if isinstance(o, dict):
            for k, v in o.items():
                if k == "expr":
                    exprs.append(v)
                else:
                    walk(v)
        elif isinstance(o, list):
            for v in o:
                walk(v)
    walk(dash)
    assert len(exprs) >= 5, exprs
    for e in exprs:
        names = re.findall(r"\bposthaste_[a-z_]+", e)
        assert names, "expr names no metric of ours: %s" % e
        for n in names:
            assert n in exported, "expr %s: %s is not exported" % (e, n)


def test_sessions_per_listener():
    """The gauge of the listener a session came in on moves with it; the
    other listener's stays where it was."""
    d = daemon()
    main = {"listener": "127.0.0.1:%d" % d.port, "tag": ""}

    def gauge(labels):
        return sample(show_metrics(d), "posthaste_smtp_listener_sessions_open",
                      **labels)
    assert poll(lambda: gauge(SUBMIT) == 0 and gauge(main) == 0), \
        show_metrics(d)
    with SMTPConnection(SUBMIT_PORT) as c:
        assert c.command("EHLO " + HELO).code == 250
        assert poll(lambda: gauge(SUBMIT) == 1), show_metrics(d)
        assert gauge(main) == 0
        text = show_metrics(d)
        assert sample(text, "posthaste_smtp_sessions_open") == 1, text
    assert poll(lambda: gauge(SUBMIT) == 0), show_metrics(d)
