"""
test_cluster.py -- many hosts, end to end (issue 21): what a site with
several identical MX hosts behind a TCP load balancer relies on, with
real parts started by the test itself:

    client 127.0.0.89 --> HAProxy 127.0.0.84:15761 (round robin,
        PROXY v2, SMTP health checks) --> node1 127.0.0.81:15760,
        node2 127.0.0.82:15760, node3 127.0.0.83:15760
    each node: its own spool, configuration, pid file and control
        socket; domains, virtual users, aliases and credentials in one
        PostgreSQL (127.0.0.85:15765, pglib.py) as pgsql: tables with a
        short cache TTL

Each node also listens on port 15762 of its address without PROXY (the
fixture's banner check, HAProxy's health check, and the checks of one
node at a time).  The servers are started once for the module (the
first test that needs them) and stopped by teardown_module(), which
run.py calls after the module's last test; each test leaves the cluster
as it found it (every node up, the database up).

Scenarios: a user known only to the database, through the balancer, on
every node; a user, an alias and a credential added with SQL work on
every node within the cache TTL without a reload, and stop when removed;
the database stopped gives 451 at RCPT and bounces nothing, started
again the mail flows; a node killed with SIGKILL under a bounded load:
the balancer sends the clients to the others and every message that got
250 is delivered after the node restarts on its spool, once -- but for
one case, allowed and counted: a message the crashed node had already
put in the Maildir when the kill came, before its queue learnt it, is
delivered again from its spool (the same queue id, the same node); any
other duplicate, or a loss, fails; the same user base through LDAP
(slapd) and through a proc: table program, each checked on a node of its
own.
"""

import os
import shutil
import signal
import smtplib
import socket
import subprocess
import threading
import time

import fixture
from fixture import (TEST_ROOT, TEST_USER1, TEST_USER2, Daemon,
                     ensure_test_user, maildir_path, poll, reset_maildir,
                     run_smtpd, setup_system)

TIMEOUT = 60

NODES = ("127.0.0.81", "127.0.0.82", "127.0.0.83")
PROXY_PORT = 15760		# behind HAProxy: PROXY v2 first
DIRECT_PORT = 15762		# no PROXY: checks of one node
LB_ADDR, LB_PORT = "127.0.0.84", 15761
PG_ADDR, PG_PORT = "127.0.0.85", 15765
SOLO_ADDR, SOLO_PORT = "127.0.0.86", 15766	# the LDAP and proc: node
LDAP_ADDR, LDAP_PORT = "127.0.0.87", 15767
CLIENT_ADDR = "127.0.0.89"	# every client of the test binds it
DOMAIN = "cluster.test"
CACHE_TTL = 1			# seconds, found answers
NEGATIVE_TTL = 1		# seconds, "not found"
SLACK = 4			# seconds beyond a TTL for a change to show
BASE = os.path.join(TEST_ROOT, "cluster")

DB, DB_USER, DB_PASSWORD = "mail", "mailer", "cluster-secret"
SCHEMA = """
CREATE TABLE domains (domain text PRIMARY KEY);
CREATE TABLE virtuals (address text NOT NULL, dest text NOT NULL);
CREATE INDEX virtuals_address ON virtuals (address);
CREATE TABLE credentials (username text PRIMARY KEY, hash text NOT NULL);
INSERT INTO domains VALUES ('%(domain)s');
INSERT INTO virtuals VALUES ('alice@%(domain)s', '%(user1)s'),
    ('load@%(domain)s', '%(user1)s');
""" % {"domain": DOMAIN, "user1": TEST_USER1}

# the pgsql: table's file (smtpd.conf(5)): one query per service, the
# key as the parameter $1
PGSQL_CONF = """\
conninfo host=%(host)s port=%(port)d dbname=%(db)s user=%(user)s \
password=%(password)s
pool 2
timeout 2s
query_domain SELECT 1 FROM domains WHERE domain = $1
query_alias SELECT dest FROM virtuals WHERE address = $1
query_credentials SELECT hash FROM credentials WHERE username = $1
"""

NODE_CONF = """\
spool "@TMP@/spool"
socket "@TMP@/smtpd.sock"
smtp workers 2
%(tables)slisten on @ADDR@ port %(proxy_port)d hostname %(name)s.%(domain)s \
%(proxy)s auth-optional <creds> auth-plaintext
listen on @ADDR@ port @PORT@ hostname %(name)s.%(domain)s \
auth-optional <creds> auth-plaintext
action "virtual" maildir "~/Maildir" virtual <users>
action "system" maildir "~/Maildir"
match from any for domain <domains> action "virtual"
match from any for domain "example.test" action "system"
"""

# one file for the three tables: each answers the services it is asked
TABLES = "".join(
    "table %s pgsql:%%(file)s cache-ttl %ds negative-ttl %ds\n"
    % (t, CACHE_TTL, NEGATIVE_TTL) for t in ("domains", "users", "creds"))

# a listener behind the balancer (v1 or v2: the header says which)
PROXY_OPTION = "proxy-protocol from %s" % LB_ADDR


# --------------------------------------------------------------------------
# what the drivers of this build can do

def driver_missing(scheme, path):
    """Why a table of this scheme cannot be used with this build (the
    placeholder driver fails every configuration check), or None."""
    os.makedirs(BASE, mode=0o755, exist_ok=True)
    if path is None:
        path = os.path.join(BASE, "probe-empty")
        open(path, "w").close()
    conf = os.path.join(BASE, "probe-%s.conf" % scheme)
    with open(conf, "w") as f:
        f.write('spool "%s/probe-spool"\nsocket "%s/probe.sock"\n'
                "table t %s:%s\n"
                "listen on 127.0.0.1 port 25\n"
                'action "a" maildir\nmatch from any for domain <t> '
                'action "a"\n' % (BASE, BASE, scheme, path))
    r = run_smtpd(["-n", "-f", conf])
    if "not built yet" in r.output:
        return "the %s: driver is still the placeholder in this build" \
            % scheme
    return None


def proxy_missing():
    conf = os.path.join(BASE, "probe-proxy.conf")
    with open(conf, "w") as f:
        f.write('spool "%s/probe-spool"\nsocket "%s/probe.sock"\n'
                "listen on 127.0.0.1 port 25 %s\n" % (BASE, BASE,
                                                     PROXY_OPTION))
    r = run_smtpd(["-n", "-f", conf])
    if r.returncode != 0:
        return "this build has no PROXY v2 listener (%s)" % \
            r.output.strip().splitlines()[-1:]
    return None


# --------------------------------------------------------------------------
# SMTP from the client's address

def client(host, port, timeout=10):
    s = smtplib.SMTP(host, port, local_hostname="client.example.net",
                     timeout=timeout, source_address=(CLIENT_ADDR, 0))
    s.ehlo()
    return s


def message(msgid, rcpts, subject="cluster"):
    return ("From: <%s@example.test>\r\nTo: %s\r\nSubject: %s\r\n"
            "Message-ID: <%s>\r\nDate: Mon, 07 Dec 2026 16:00:00 +0000\r\n"
            "\r\nbody of %s\r\n" % (TEST_USER2, ", ".join(
                "<%s>" % r for r in rcpts), subject, msgid, msgid)).encode()


def send(host, port, rcpts, msgid, timeout=10):
    """One message in one session; the queue id of its 250 reply, or
    AssertionError with what the server said."""
    s = client(host, port, timeout)
    try:
        code, text = s.mail("%s@example.test" % TEST_USER2)
        if code != 250:
            raise AssertionError("MAIL: %d %r" % (code, text))
        for r in rcpts:
            code, text = s.rcpt(r)
            if code != 250:
                raise AssertionError("RCPT TO:<%s>: %d %r" % (r, code, text))
        code, text = s.data(message(msgid, rcpts))
        if code != 250:
            raise AssertionError("DATA: %d %r" % (code, text))
        return fixture.queue_id(text)
    finally:
        try:
            s.quit()
        except (smtplib.SMTPException, OSError):
            s.close()


def rcpt_code(host, port, rcpt):
    """The reply code to RCPT TO:<rcpt> (and its text)."""
    s = client(host, port)
    try:
        s.mail("%s@example.test" % TEST_USER2)
        return s.rcpt(rcpt)
    finally:
        try:
            s.quit()
        except (smtplib.SMTPException, OSError):
            s.close()


def auth_code(host, port, username, password):
    """The reply code to AUTH PLAIN."""
    s = client(host, port)
    try:
        try:
            return s.login(username, password)[0]
        except smtplib.SMTPAuthenticationError as e:
            return e.smtp_code
    finally:
        try:
            s.quit()
        except (smtplib.SMTPException, OSError):
            s.close()


def crypt_hash(password):
    r = subprocess.run(["openssl", "passwd", "-6", "-stdin"],
                       input=password, stdout=subprocess.PIPE,
                       universal_newlines=True, check=True)
    return r.stdout.strip()


# --------------------------------------------------------------------------
# mailboxes: messages by Message-ID

def delivered(username):
    """Message-ID -> [(node that received it, its queue id)] for every
    message in the user's Maildir (new and cur)."""
    out = {}
    for sub in ("new", "cur"):
        d = os.path.join(maildir_path(username), sub)
        try:
            names = os.listdir(d)
        except FileNotFoundError:
            continue
        for n in names:
            try:
                with open(os.path.join(d, n), "rb") as f:
                    head = f.read(8192).split(b"\n\n", 1)[0]
            except FileNotFoundError:
                continue
            msgid = by = qid = None
            unfolded = head.replace(b"\n\t", b" ").replace(b"\n ", b" ")
            for line in unfolded.decode("utf-8", "replace").split("\n"):
                low = line.lower()
                if low.startswith("message-id:") and msgid is None:
                    msgid = line.split(":", 1)[1].strip().strip("<>")
                elif low.startswith("received:") and by is None:
                    words = line.split()
                    if "by" in words:
                        by = words[words.index("by") + 1]
                    if "id" in words:
                        qid = words[words.index("id") + 1]
            if msgid:
                out.setdefault(msgid, []).append((by, qid))
    return out


def received_from(username, msgid):
    """The [address] of the first Received: of that message."""
    for sub in ("new", "cur"):
        d = os.path.join(maildir_path(username), sub)
        for n in os.listdir(d) if os.path.isdir(d) else ():
            with open(os.path.join(d, n), "rb") as f:
                data = f.read(8192).decode("utf-8", "replace")
            if "<%s>" % msgid in data:
                at = data.index("Received: from ")
                return data[at:].split("[", 1)[1].split("]", 1)[0]
    return None


def wait_delivered(username, msgids, timeout=15):
    want = set(msgids)
    got = poll(lambda: want <= set(delivered(username)) and
               delivered(username), timeout)
    missing = want - set(got or delivered(username))
    if missing:
        raise AssertionError("not delivered to %s within %ds: %s"
                             % (username, timeout, sorted(missing)))
    return got


# --------------------------------------------------------------------------
# the nodes and the balancer

class Node(Daemon):
    """One Posthaste host of the cluster: fixed address, fixed ports, a
    directory of its own that outlives a crash."""

    keep_running = True

    def __init__(self, index, addr, conf):
        self.index = index
        self.label = "node%d" % index
        Daemon.__init__(self, conf=conf, host=addr, port=DIRECT_PORT,
                        tmp=os.path.join(BASE, self.label),
                        name="cluster-%s" % self.label)

    def crash(self):
        """SIGKILL to every process of the node at once (a host that
        dies): the parent, its children and the delivery processes share
        one process group."""
        try:
            os.killpg(self.pid, signal.SIGKILL)
        except ProcessLookupError:
            pass
        self.proc.wait(timeout=10)
        deadline = time.monotonic() + 5
        while time.monotonic() < deadline:
            try:
                os.killpg(self.pid, 0)
            except ProcessLookupError:
                break
            time.sleep(0.02)
        self.stopped = True
        self.status = self.proc.returncode


HAPROXY_CONF = """\
global
    maxconn 500
    stats socket %(tmp)s/haproxy.sock mode 600 level admin
defaults
    mode tcp
    timeout connect 1s
    timeout client 20s
    timeout server 20s
    timeout check 1s
    retries 3
    option redispatch 1
frontend mx
    bind %(addr)s:%(port)d
    default_backend nodes
backend nodes
    balance roundrobin
    option smtpchk EHLO lb.%(domain)s
    default-server %(proxy)s source %(addr)s check port %(direct)d \
inter 200ms fall 1 rise 1
%(servers)s
"""


class HAProxy:
    def __init__(self, tmp, nodes, proxy=True):
        self.tmp = tmp
        self.nodes = nodes
        self.proxy = proxy
        self.proc = None
        self.log_path = os.path.join(fixture.results_dir(),
                                     "cluster-haproxy.log")

    def start(self):
        os.makedirs(self.tmp, mode=0o755, exist_ok=True)
        conf = os.path.join(self.tmp, "haproxy.cfg")
        with open(conf, "w") as f:
            f.write(HAPROXY_CONF % {
                "tmp": self.tmp, "addr": LB_ADDR, "port": LB_PORT,
                "domain": DOMAIN, "direct": DIRECT_PORT,
                "proxy": "send-proxy-v2" if self.proxy else "",
                "servers": "".join("    server %s %s:%d\n" % (
                    n.label, n.host, PROXY_PORT) for n in self.nodes)})
        with open(self.log_path, "wb") as log:
            self.proc = subprocess.Popen(
                ["haproxy", "-db", "-f", conf], stdin=subprocess.DEVNULL,
                stdout=log, stderr=log, start_new_session=True)
        for n in self.nodes:
            self.wait_state(n.label, "UP", 10)

    def stats(self):
        """server name -> status (UP, DOWN...) from the stats socket."""
        s = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
        s.settimeout(2)
        try:
            s.connect(os.path.join(self.tmp, "haproxy.sock"))
            s.sendall(b"show stat\n")
            data = b""
            while True:
                chunk = s.recv(65536)
                if not chunk:
                    break
                data += chunk
        finally:
            s.close()
        out = {}
        for line in data.decode().splitlines():
            f = line.split(",")
            if len(f) > 17 and f[0] == "nodes":
                out[f[1]] = f[17]
        return out

    def state(self, label):
        try:
            return self.stats().get(label, "").split(" ")[0]
        except OSError:
            return ""

    def wait_state(self, label, want, timeout):
        if self.proc.poll() is not None:
            raise AssertionError("haproxy exited with %s: %s" % (
                self.proc.returncode, open(self.log_path).read()[-500:]))
        if not poll(lambda: self.state(label) == want, timeout):
            raise AssertionError("haproxy: %s is %r, not %s after %ds"
                                 % (label, self.state(label), want, timeout))

    def stop(self):
        if self.proc is None or self.proc.poll() is not None:
            return
        self.proc.terminate()
        try:
            self.proc.wait(timeout=5)
        except subprocess.TimeoutExpired:
            self.proc.kill()
            self.proc.wait(timeout=5)


class Cluster:
    def __init__(self):
        self.pg = None
        self.nodes = []
        self.lb = None

    def start(self):
        import pglib
        setup_system()
        ensure_test_user(TEST_USER1)
        ensure_test_user(TEST_USER2)
        shutil.rmtree(BASE, ignore_errors=True)
        os.makedirs(BASE, mode=0o755)
        self.pg = pglib.PgCluster(PG_PORT, host=PG_ADDR, base=BASE)
        self.pg.start()
        self.pg.create_role(DB_USER, DB_PASSWORD)
        self.pg.create_db(DB, owner=DB_USER)
        self.sql(SCHEMA)
        pgconf = os.path.join(BASE, "users.conf")
        fd = os.open(pgconf, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
        with os.fdopen(fd, "w") as f:
            f.write(PGSQL_CONF % {"host": PG_ADDR, "port": PG_PORT,
                                  "db": DB, "user": DB_USER,
                                  "password": DB_PASSWORD})
        for i, addr in enumerate(NODES, 1):
            conf = NODE_CONF % {
                "tables": TABLES % {"file": pgconf},
                "proxy_port": PROXY_PORT, "name": "node%d" % i,
                "domain": DOMAIN, "proxy": PROXY_OPTION}
            self.nodes.append(Node(i, addr, conf))
        # at once: each waits for its banner and its sandboxes
        for n in self.nodes:
            n.start(wait=False)
        for n in self.nodes:
            n.wait_banner()
        self.lb = HAProxy(os.path.join(BASE, "haproxy"), self.nodes)
        self.lb.start()

    def sql(self, text):
        return self.pg.psql(text, db=DB, user=DB_USER)

    def register(self):
        """Show the nodes' logs if the current test fails."""
        for n in self.nodes:
            if n not in fixture._started:
                fixture._started.append(n)

    def stop(self):
        problems = []
        if self.lb:
            self.lb.stop()

        def stop(n):
            try:
                n.stop()
            except AssertionError as e:
                problems.append("%s: %s" % (n.label, e))
        # at once: each takes a moment to drain and exit
        threads = [threading.Thread(target=stop, args=(n,))
                   for n in self.nodes]
        for t in threads:
            t.start()
        for t in threads:
            t.join()
        if self.pg:
            self.pg.cleanup()
        if problems:
            raise AssertionError("; ".join(problems))
        shutil.rmtree(BASE, ignore_errors=True)


_cluster = None
_cluster_error = None


def cluster():
    """The module's cluster, started by the first test that asks."""
    global _cluster, _cluster_error
    if _cluster_error:
        raise AssertionError("the cluster did not start: %s"
                             % _cluster_error)
    if _cluster is None:
        for why in (driver_missing("pgsql", None), proxy_missing()):
            if why:
                fixture.skip(why)
        try:
            import pglib
        except ImportError:
            fixture.skip("pglib.py (the pgsql engineer's) is missing")
        if not pglib.available():
            fixture.skip("PostgreSQL is not installed")
        if shutil.which("haproxy") is None:
            fixture.skip("haproxy is not installed")
        c = Cluster()
        try:
            c.start()
        except BaseException as e:
            _cluster_error = str(e) or type(e).__name__
            for n in c.nodes:
                if n.proc is not None and n not in fixture._started:
                    fixture._started.append(n)
                n.keep_running = False	# the runner stops them
            if c.lb:
                c.lb.stop()
            if c.pg:
                c.pg.cleanup()
            raise
        _cluster = c
    _cluster.register()
    return _cluster


def teardown_module():
    global _cluster
    c, _cluster = _cluster, None
    if c is not None:
        c.stop()


def unique(tag):
    return "%s.%d.%d@client.example.net" % (tag, os.getpid(),
                                            time.monotonic_ns())


# --------------------------------------------------------------------------
# the scenarios

def test_database_user_through_balancer_on_every_node():
    c = cluster()
    reset_maildir(TEST_USER1)
    ids = [unique("lb%d" % i) for i in range(2 * len(NODES))]
    for msgid in ids:
        send(LB_ADDR, LB_PORT, ["alice@%s" % DOMAIN], msgid)
    got = wait_delivered(TEST_USER1, ids)
    by = sorted(set(got[m][0][0] for m in ids))
    assert by == ["%s.%s" % (n.label, DOMAIN) for n in c.nodes], \
        "round robin reached %s, not every node" % by
    for m in ids:
        assert len(got[m]) == 1, "%s delivered %d times" % (m, len(got[m]))
    # PROXY v2 carried the client's address through the balancer
    frm = received_from(TEST_USER1, ids[0])
    assert frm == CLIENT_ADDR, "Received: from [%s], expected the " \
        "client's [%s] (not the balancer's)" % (frm, CLIENT_ADDR)


def _on_every_node(c, check, want, what, since, limit):
    """Poll check(node) on every node at once until it returns want, at
    most limit seconds after the monotonic time since (when the change
    was made); the seconds from since until the last node said it."""
    seen = dict((n.label, [None, 0.0]) for n in c.nodes)

    def one(n):
        def ask():
            try:
                seen[n.label] = [check(n), time.monotonic() - since]
            except (smtplib.SMTPException, OSError) as e:
                seen[n.label] = [repr(e), time.monotonic() - since]
            return seen[n.label][0] == want
        poll(ask, max(0, since + limit - time.monotonic()), interval=0.05)

    threads = [threading.Thread(target=one, args=(n,)) for n in c.nodes]
    for t in threads:
        t.start()
    for t in threads:
        t.join(limit + 15)
    for label, (value, took) in sorted(seen.items()):
        if value != want:
            raise AssertionError("%s on %s: %r, expected %r, %.1fs after "
                                 "the change" % (what, label, value, want,
                                                 took))
    return max(took for _, took in seen.values())


def test_sql_changes_reach_every_node_within_ttl():
    c = cluster()
    carol, team = "carol@%s" % DOMAIN, "team@%s" % DOMAIN

    def rcpt(addr):
        return lambda n: rcpt_code(n.host, DIRECT_PORT, addr)[0]

    def auth(n):
        return auth_code(n.host, DIRECT_PORT, carol, "carol-pw")

    # unknown at first (and that answer is cached negatively)
    for n in c.nodes:
        code = rcpt(carol)(n)
        assert code == 550, "RCPT %s on %s before the INSERT: %d" % (
            carol, n.label, code)
    c.sql("INSERT INTO virtuals VALUES ('%s', '%s'), ('%s', '%s'), "
          "('%s', '%s');\nINSERT INTO credentials VALUES ('%s', '%s');"
          % (carol, TEST_USER1, team, carol, team, TEST_USER2, carol,
             crypt_hash("carol-pw")))
    since, limit = time.monotonic(), NEGATIVE_TTL + SLACK
    _on_every_node(c, rcpt(carol), 250, "RCPT " + carol, since, limit)
    _on_every_node(c, rcpt(team), 250, "RCPT " + team, since, limit)
    added = _on_every_node(c, auth, 235, "AUTH " + carol, since, limit)
    # the alias expands to the user and a system account
    reset_maildir(TEST_USER1)
    reset_maildir(TEST_USER2)
    msgid = unique("team")
    send(LB_ADDR, LB_PORT, [team], msgid)
    wait_delivered(TEST_USER1, [msgid])
    wait_delivered(TEST_USER2, [msgid])
    # removed: gone everywhere within the TTL of a found answer
    c.sql("DELETE FROM virtuals WHERE address IN ('%s', '%s');\n"
          "DELETE FROM credentials WHERE username = '%s';"
          % (carol, team, carol))
    since, limit = time.monotonic(), CACHE_TTL + SLACK
    _on_every_node(c, rcpt(carol), 550, "RCPT " + carol, since, limit)
    _on_every_node(c, rcpt(team), 550, "RCPT " + team, since, limit)
    removed = _on_every_node(c, auth, 535, "AUTH " + carol, since, limit)
    print("on every node: added after %.1fs, removed after %.1fs (cache "
          "TTL %ds, negative %ds)" % (added, removed, CACHE_TTL,
                                      NEGATIVE_TTL))


def _queue_empty(n):
    r = subprocess.run([fixture.binary("smtpctl"), "-s", n.socket_path,
                        "show", "queue"], stdout=subprocess.PIPE,
                       stderr=subprocess.STDOUT, universal_newlines=True,
                       timeout=10)
    return r.returncode == 0 and r.stdout.strip() == ""


def test_database_down_is_451_then_mail_flows():
    c = cluster()
    alice = "alice@%s" % DOMAIN
    reset_maildir(TEST_USER2)	# the sender: a bounce would land there
    c.pg.stop()
    try:
        # once the cached answers expire, every node says 451
        _on_every_node(c, lambda n: rcpt_code(n.host, DIRECT_PORT,
                                              alice)[0],
                       451, "RCPT with the database down",
                       time.monotonic(), CACHE_TTL + SLACK)
        for n in c.nodes:
            code, text = rcpt_code(n.host, DIRECT_PORT, alice)
            assert code == 451 and text.startswith(b"4.3."), \
                "%s: %d %r" % (n.label, code, text)
        # through the balancer too, on each node in turn
        for _ in c.nodes:
            code, text = rcpt_code(LB_ADDR, LB_PORT, alice)
            assert code == 451, "through the balancer: %d %r" % (code,
                                                                 text)
    finally:
        c.pg.start()
    # the pool reconnects (with its back-off): mail flows again
    _on_every_node(c, lambda n: rcpt_code(n.host, DIRECT_PORT, alice)[0],
                   250, "RCPT after the database came back",
                   time.monotonic(), 15)
    reset_maildir(TEST_USER1)
    msgid = unique("back")
    send(LB_ADDR, LB_PORT, [alice], msgid)
    wait_delivered(TEST_USER1, [msgid])
    # nothing bounced, nothing left queued
    for n in c.nodes:
        assert poll(lambda: _queue_empty(n), 5), \
            "%s still has mail queued" % n.label
    assert fixture.maildir_files(TEST_USER2) == [], \
        "the sender got mail (a bounce?): %s" % delivered(TEST_USER2)


LOAD_MESSAGES = 60
LOAD_SECONDS = 10
LOAD_CLIENTS = 4
KILL_AFTER = 15		# acknowledged messages before the SIGKILL


def test_node_killed_under_load_loses_nothing():
    c = cluster()
    victim = c.nodes[1]
    reset_maildir(TEST_USER1)
    lock = threading.Lock()
    acked, failed, queue_ids = [], [], {}
    next_index = [0]
    deadline = time.monotonic() + LOAD_SECONDS

    def worker():
        while time.monotonic() < deadline:
            with lock:
                i = next_index[0]
                if i >= LOAD_MESSAGES:
                    return
                next_index[0] += 1
            msgid = "load%d.%d.%d@client.example.net" % (
                i, os.getpid(), time.monotonic_ns())
            try:
                qid = send(LB_ADDR, LB_PORT, ["load@%s" % DOMAIN], msgid,
                           timeout=5)
            except (AssertionError, smtplib.SMTPException, OSError) as e:
                with lock:
                    failed.append((msgid, str(e)))
                continue
            with lock:
                acked.append(msgid)
                queue_ids[msgid] = qid

    threads = [threading.Thread(target=worker) for _ in range(LOAD_CLIENTS)]
    for t in threads:
        t.start()
    try:
        poll(lambda: len(acked) >= KILL_AFTER, LOAD_SECONDS, 0.01)
        victim.crash()
    finally:
        for t in threads:
            t.join(LOAD_SECONDS + 10)
    c.lb.wait_state(victim.label, "DOWN", 5)
    # the balancer sent clients to the others: most messages made it
    assert len(acked) >= LOAD_MESSAGES - 2 * LOAD_CLIENTS, \
        "only %d of %d messages acknowledged; failures: %s" % (
            len(acked), LOAD_MESSAGES, failed[:5])
    # the node comes back on its spool and delivers what it acknowledged
    victim.start()
    c.lb.wait_state(victim.label, "UP", 5)
    got = wait_delivered(TEST_USER1, acked, timeout=20)
    dups = dict((m, v) for m, v in got.items() if len(v) > 1)
    # a copy may be delivered twice only by the crashed node's spool: the
    # same queue id before and after the crash (delivered, the kill came
    # before the queue forgot it)
    bad = dict((m, v) for m, v in dups.items()
               if len(set(v)) != 1 or v[0][0] != "%s.%s" % (victim.label,
                                                           DOMAIN))
    assert not bad, "delivered more than once: %s" % bad
    stray = set(got) - set(acked) - set(m for m, _ in failed)
    assert not stray, "delivered but never sent: %s" % stray
    print("load: %d acknowledged, %d failed (cut by the kill), %d "
          "delivered twice from the crashed spool" % (len(acked),
                                                      len(failed), len(dups)))


# --------------------------------------------------------------------------
# the same user base through LDAP and through a proc: program, each on a
# node of its own (the placeholders fail the configuration check: then
# the scenario is skipped, saying so)

SOLO_CONF = """\
spool "@TMP@/spool"
socket "@TMP@/smtpd.sock"
smtp workers 1
table users %(table)s cache-ttl 1s negative-ttl 1s
listen on @ADDR@ port @PORT@ hostname solo.%(domain)s \
auth-optional <users> auth-plaintext
action "virtual" maildir "~/Maildir" virtual <users>
match from any for domain <users> action "virtual"
"""
SOLO_PASSWORD = "solo horse battery"


def _user_base_checks(d):
    """The user base of the cluster, asked of one node: the domain and
    alice@ are known (delivered to phtest1), bob@ is not, alice logs in
    with her password as "alice" and not with another."""
    alice, bob = "alice@%s" % DOMAIN, "bob@%s" % DOMAIN
    code, text = rcpt_code(SOLO_ADDR, SOLO_PORT, bob)
    assert code == 550, "RCPT %s: %d %r" % (bob, code, text)
    reset_maildir(TEST_USER1)
    msgid = unique("solo")
    send(SOLO_ADDR, SOLO_PORT, [alice], msgid)
    got = wait_delivered(TEST_USER1, [msgid])
    assert got[msgid] == [("solo.%s" % DOMAIN, got[msgid][0][1])], got
    assert auth_code(SOLO_ADDR, SOLO_PORT, "alice", SOLO_PASSWORD) == 235
    assert auth_code(SOLO_ADDR, SOLO_PORT, "alice", "wrong") == 535


def _solo(table):
    setup_system()
    ensure_test_user(TEST_USER1)
    return Daemon(conf=SOLO_CONF % {"table": table, "domain": DOMAIN},
                  host=SOLO_ADDR, port=SOLO_PORT, name="cluster-solo")


def test_ldap_user_base_on_one_node():
    why = driver_missing("ldap", None)
    if why:
        fixture.skip(why)
    try:
        import test_table_ldap as tl
    except ImportError:
        fixture.skip("test_table_ldap.py (the ldap engineer's slapd "
                     "helper) is missing")

    class Slapd(tl.Slapd):
        """The ldap test's slapd, on this module's address and port."""

        def listening(self):
            if self.proc.poll() is not None:
                raise fixture.FixtureError("slapd exited: %s" % self.log())
            try:
                with socket.create_connection((LDAP_ADDR, LDAP_PORT), 1):
                    return True
            except OSError:
                return False

    # its data with the cluster's names: alice@cluster.test -> phtest1
    data = tl.fill(tl.DATA_LDIF, base=tl.BASE, binddn=tl.BINDDN,
                   bindpw=tl.BINDPW, user1=TEST_USER1,
                   hash=crypt_hash(SOLO_PASSWORD))
    data = data.replace("ldapdom.test", DOMAIN).replace("ldapuser", "alice")
    url = "ldap://%s:%d" % (LDAP_ADDR, LDAP_PORT)
    saved = tl.URL
    tl.URL = url	# start() listens there, ldapadd asks there
    try:
        with Slapd(data) as slapd:
            conf = os.path.join(slapd.dir, "cluster-ldap.conf")
            with open(conf, "w") as f:
                f.write(tl.TABLE_CONF % {"url": url, "binddn": tl.BINDDN,
                                         "bindpw": tl.BINDPW,
                                         "base": tl.BASE})
            with _solo("ldap:" + conf) as d:
                _user_base_checks(d)
    finally:
        tl.URL = saved


def test_proc_user_base_on_one_node():
    prog = os.path.join(os.path.dirname(os.path.abspath(__file__)),
                        "table_proc_test.py")
    if not os.path.exists(prog):
        fixture.skip("table_proc_test.py (the proc engineer's table "
                     "program) is missing")
    why = driver_missing("proc", prog)
    if why:
        fixture.skip(why)
    import json
    d = os.path.join(BASE, "proc")
    os.makedirs(d, mode=0o755, exist_ok=True)
    os.chmod(BASE, 0o755)
    # lookup's user runs the program: a copy it can read and run
    shutil.copy(prog, os.path.join(d, "table_proc_test.py"))
    os.chmod(os.path.join(d, "table_proc_test.py"), 0o755)
    with open(os.path.join(d, "users.json"), "w") as f:
        json.dump({"register": ["domain", "alias", "credentials"],
                   "tables": {
                       "domain": [DOMAIN],
                       "alias": {"alice@%s" % DOMAIN: TEST_USER1},
                       "credentials": {"alice": crypt_hash(SOLO_PASSWORD)}
                   }}, f)
    os.chmod(os.path.join(d, "users.json"), 0o644)
    try:
        with _solo('"proc:%s/table_proc_test.py %s/users.json"' % (d, d)) \
                as daemon:
            _user_base_checks(daemon)
    finally:
        shutil.rmtree(d, ignore_errors=True)
