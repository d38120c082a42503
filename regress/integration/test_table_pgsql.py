"""
The pgsql: shared table through the real daemon and a real PostgreSQL
(pglib.py: a throw-away cluster as nobody on 127.0.0.1:15720, loaded
with the sample schema etc/pgsql-schema.sql, asked with the sample
etc/pgsql.conf).  One table answers every
service: the domains of a "match ... for domain <pg>" rule, the virtual
users (alias), their mail store (userinfo, userbase) and AUTH
(credentials, a crypt(3) hash).  A user that exists only in the
database gets its mail; an alias inserted with SQL works once the cache
entry expires (cache-ttl 1s), without a reload, and a deleted one stops;
a key full of quotes, backslashes and SQL is only a parameter; with the
server stopped a recipient is deferred (451 4.3.0, never 550) and
nothing is bounced, and with it back everything works again.  smtpd -n
reports a broken pgsql configuration with its file and line.

Before the daemon, obj/regress/table_probe (regress/unit/table_probe.c)
asks the table through lookup's own path, without SMTP around it: what
each service makes of the rows (netaddr and mailaddrmap too), twelve
questions queued over a pool of two connections, a query past its
timeout (an error, the connection opened again), a query that cannot be
prepared (an error, logged), a conninfo whose first host refuses.

One PostgreSQL and one daemon for the whole module (the suite's time).
"""

import os
import re
import shutil
import subprocess
import tempfile
import time

import fixture
from fixture import (Daemon, ensure_test_user, poll, run_smtpd,
                     smtp_dialog, spool_files_containing, skip, user,
                     unique_marker, REPO)
import pglib

TIMEOUT = 60
PG_PORT = 15720			# ours: 15720-15729
NOBODY_PORT = 15729		# nothing listens there
VMAIL = "phvmail"
PASSWORD = "s3cret pass"	# alice's AUTH password
DB_PASSWORD = "db'pw\\x"	# the table's role, quoted in the conninfo

CONF = """\
spool "@TMP@/spool"
socket "@TMP@/smtpd.sock"
smtp workers 1
listen on 127.0.0.1 port @PORT@ auth-optional <pg> auth-plaintext
table pg pgsql:@DIR@/pg.conf cache-ttl 1s negative-ttl 1s
action "vmail" maildir "@DIR@/vmail/%{dest.user}" virtual <pg> userbase <pg>
match from any for domain <pg> action "vmail"
"""

# The daemon's table is the sample etc/pgsql.conf (against the sample
# schema), with this conninfo in place of its own.
CONNINFO = ("conninfo host=127.0.0.1 port=%(port)d dbname=mail "
            "user=posthaste password='%(password)s'")


def sample_conf(port, password):
    with open(os.path.join(REPO, "etc", "pgsql.conf")) as f:
        lines = f.read().splitlines()
    conninfo = [i for i, x in enumerate(lines) if x.startswith("conninfo ")]
    assert len(conninfo) == 1, "etc/pgsql.conf: one conninfo line"
    lines[conninfo[0]] = CONNINFO % {"port": port, "password": password}
    return "\n".join(lines) + "\n"


def crypt_hash(password):
    r = subprocess.run(["openssl", "passwd", "-6", "-stdin"],
                       input=password, stdout=subprocess.PIPE,
                       universal_newlines=True, check=True)
    return r.stdout.strip()


def sql_quote(s):
    return "'" + s.replace("'", "''") + "'"


def auth_plain(user_name, password):
    import base64
    return "AUTH PLAIN " + base64.b64encode(
        ("\0%s\0%s" % (user_name, password)).encode()).decode()


def rcpt(port, address):
    r = smtp_dialog(port, ["EHLO t.example.test", "MAIL FROM:<s@client.test>",
                           "RCPT TO:<%s>" % address, "QUIT"])
    return r[3]


def wait_rcpt(port, address, code, timeout=10):
    """Poll until RCPT TO:<address> gets this code (cache entries
    expiring, the server coming back); the last reply."""
    deadline = time.monotonic() + timeout
    while True:
        r = rcpt(port, address)
        if r.code == code or time.monotonic() > deadline:
            return r
        time.sleep(0.2)


class Setup:
    def __init__(self):
        if not pglib.available():
            skip("PostgreSQL is not installed (mk/deps.sh: postgresql)")
        if shutil.which("openssl") is None:
            skip("openssl(1) is not installed")
        ensure_test_user(VMAIL)
        self.vm = user(VMAIL)
        self.dir = tempfile.mkdtemp(prefix="pgsql-it-", dir="/tmp")
        os.chmod(self.dir, 0o755)
        self.vmail = os.path.join(self.dir, "vmail")
        os.mkdir(self.vmail, 0o755)
        os.chown(self.vmail, self.vm.pw_uid, self.vm.pw_gid)
        self.pg = pglib.PgCluster(PG_PORT)

    def start_db(self):
        self.pg.start()
        self.pg.create_db("mail")
        with open(os.path.join(REPO, "etc", "pgsql-schema.sql")) as f:
            self.pg.psql(f.read(), db="mail")
        self.pg.psql("ALTER ROLE posthaste PASSWORD %s"
                     % sql_quote(DB_PASSWORD))
        self.sql("""
            INSERT INTO domains VALUES ('pg.test');
            INSERT INTO users VALUES ('alice', %s, %d, %d, %s);
            INSERT INTO aliases VALUES ('alice@pg.test', 'alice'),
                ('o''brien@pg.test', 'alice'),
                ('team', 'alice'), ('team', 'bob@pg.test');
            INSERT INTO networks VALUES ('192.0.2.0/24'), ('2001:db8::/32');
            INSERT INTO senders VALUES ('alice', 'alice@pg.test'),
                ('alice', '@pg.test');
            """ % (sql_quote(crypt_hash(PASSWORD)), self.vm.pw_uid,
                   self.vm.pw_gid, sql_quote(self.vmail)))
        path = os.path.join(self.dir, "pg.conf")
        with open(path, "w") as f:
            f.write(sample_conf(PG_PORT, self.conninfo_password()))
        os.chmod(path, 0o600)

    @staticmethod
    def conninfo_password():
        """DB_PASSWORD in a single-quoted conninfo value."""
        return DB_PASSWORD.replace("\\", "\\\\").replace("'", "\\'")

    def sql(self, text):
        return self.pg.psql(text, db="mail")

    def conf(self):
        return CONF.replace("@DIR@", self.dir)

    def delivered(self, marker):
        """The messages holding marker anywhere in the vmail tree (the
        Maildir is named after the recipient's local part)."""
        found = []
        for dirpath, _, names in os.walk(self.vmail):
            for n in names:
                path = os.path.join(dirpath, n)
                with open(path, errors="replace") as f:
                    if marker in f.read():
                        found.append(path)
        return found

    def cleanup(self):
        self.pg.cleanup()
        shutil.rmtree(self.dir, ignore_errors=True)


PROBE_CONF = """\
listen on 127.0.0.1 port 25
table pg pgsql:@DIR@/probe.conf cache-ttl 0
action "l" maildir alias <pg>
match from any for domain "example.test" action "l"
"""

# two hosts: the first refuses (nothing on NOBODY_PORT), libpq moves on to
# the next with a new socket, which may get the same descriptor number
PROBE_PG_CONF = """\
conninfo host=127.0.0.1,127.0.0.1 port=%(nobody_port)d,%(port)d \
dbname=mail user=posthaste password='%(password)s'
query_alias		SELECT dest FROM aliases WHERE name = $1
query_credentials	SELECT password FROM users WHERE name = $1
query_userinfo		SELECT uid, gid, home FROM users WHERE name = $1
query_domain		SELECT 1 FROM domains WHERE name = $1
query_string		SELECT 1 FROM pg_sleep(CASE WHEN $1 = 'slow' THEN 10 \
ELSE 0.1 END)
query_mailaddr		SELECT 1 FROM no_such_table WHERE a = $1
query_netaddr		SELECT 1 FROM networks WHERE $1::inet <<= net
query_mailaddrmap	SELECT address FROM senders WHERE name = $1
pool 2
timeout 1s
"""


def probe(s, *questions):
    """table_probe's answers: {index: (answer, value, ms)}."""
    path = os.path.join(fixture.BINDIR, "..", "regress", "table_probe")
    assert os.path.exists(path), "%s missing: 'make unit'" % path
    conf = os.path.join(s.dir, "probe-smtpd.conf")
    with open(conf, "w") as f:
        f.write(PROBE_CONF.replace("@DIR@", s.dir))
    with open(os.path.join(s.dir, "probe.conf"), "w") as f:
        f.write(PROBE_PG_CONF % {"port": PG_PORT, "nobody_port": NOBODY_PORT,
                                 "password": s.conninfo_password()})
    r = subprocess.run([path, conf, "pg"] + list(questions),
                       stdout=subprocess.PIPE, stderr=subprocess.STDOUT,
                       universal_newlines=True, timeout=40)
    assert r.returncode == 0, "table_probe: %d: %s" % (r.returncode,
                                                      r.stdout)
    out = {}
    for line in r.stdout.splitlines():
        m = re.match(r"^(\d+) (found|notfound|error) ?(.*) ms=(\d+)$", line)
        if m:
            out[int(m.group(1))] = (m.group(2), m.group(3),
                                    int(m.group(4)))
    return out, r.stdout


def probe_checks(s):
    """The backend alone, through lookup's own path (table_probe)."""
    # every service's rows; several questions at once over the pool
    a, log = probe(s, "alias", "team", "alias", "nobody@pg.test",
                   "userinfo", "alice", "credentials", "alice",
                   "credentials", "mallory", "domain", "pg.test",
                   "domain", "other.test", "alias", "x'; drop table users",
                   "mailaddr", "a@b", "netaddr", "192.0.2.7",
                   "netaddr", "2001:db8::25", "netaddr", "198.51.100.1",
                   "mailaddrmap", "alice", "mailaddrmap", "bob")
    assert a[0][:2] == ("found", "alice, bob@pg.test"), log
    assert a[1][0] == "notfound", log
    assert a[2][:2] == ("found", "%d:%d:%s" % (
        s.vm.pw_uid, s.vm.pw_gid, s.vmail)), log
    assert a[3][0] == "found" and a[3][1].startswith("$6$"), log
    assert a[4][0] == "notfound" and a[6][0] == "notfound", log
    assert a[5][:2] == ("found", ""), log
    assert a[7][0] == "notfound", log
    # a query that cannot be prepared fails alone, and says why
    assert a[8][0] == "error", log
    assert "no_such_table" in log and "cannot prepare" in log, log
    assert [x[0] for x in (a[9], a[10], a[11])] == [
        "found", "found", "notfound"], log
    assert a[12][:2] == ("found", "alice@pg.test, @pg.test"), log
    assert a[13][0] == "notfound", log
    # twelve questions of 0.1 s over two connections: queued, six rounds
    qs = []
    for i in range(12):
        qs += ["string", "k%d" % i]
    a, log = probe(s, *qs)
    assert len(a) == 12 and all(x[0] == "found" for x in a.values()), log
    slowest = max(x[2] for x in a.values())
    assert 550 <= slowest < 5000, "12 x 0.1 s over 2 connections took " \
        "%d ms: %s" % (slowest, log)
    # the timeout (1 s): an error, and the other connection still serves
    a, log = probe(s, "string", "slow", "-w", "1200", "string", "fast",
                   "alias", "team")
    assert a[0][0] == "error" and 900 <= a[0][2] < 4000, log
    assert "query_string timed out after 1 s" in log, log
    assert a[1][0] == "found" and a[2][0] == "found", log


def send(port, address, marker):
    msg = ("From: <s@client.test>\r\nTo: <%s>\r\nSubject: %s\r\n\r\n"
           "%s\r\n.\r\n" % (address, marker, marker))
    return smtp_dialog(port, ["EHLO t.example.test",
                              "MAIL FROM:<s@client.test>",
                              "RCPT TO:<%s>" % address, "DATA", msg,
                              "QUIT"])


def test_pgsql_shared_table():
    s = Setup()
    try:
        s.start_db()
        probe_checks(s)
        with Daemon(conf=s.conf()) as d:
            # a virtual user that exists only in the database
            marker = unique_marker("pg")
            r = send(d.port, "alice@pg.test", marker)
            assert r[3].code == 250, "RCPT alice@pg.test: %r" % r[3]
            assert r[5].code == 250, "DATA: %r" % r[5]
            files = poll(lambda: s.delivered(marker))
            assert files, "nothing in %s" % s.vmail
            assert files[0].startswith(os.path.join(s.vmail, "alice",
                                                    "new")), files
            st = os.stat(files[0])
            assert st.st_uid == s.vm.pw_uid, "owned by uid %d" % st.st_uid

            # the domain table: only pg.test is ours; an unknown user there
            r = rcpt(d.port, "alice@other.test")
            assert r.code == 550 and "5.7.1" in r.text, r
            r = rcpt(d.port, "nobody@pg.test")
            assert r.code == 550 and "5.1.1" in r.text, r

            # AUTH against the hash in the database
            r = smtp_dialog(d.port, ["EHLO t.example.test",
                                     auth_plain("alice", PASSWORD), "QUIT"])
            assert r[2].code == 235, "AUTH alice: %r" % r[2]
            r = smtp_dialog(d.port, ["EHLO t.example.test",
                                     auth_plain("alice", "wrong"), "QUIT"])
            assert r[2].code == 535, "AUTH with a wrong password: %r" % r[2]
            # (an unknown user's "not found": probe_checks)

            # an alias added with SQL works once the negative entry
            # expires (1 s), without a reload; a deleted one stops
            r = rcpt(d.port, "new@pg.test")
            assert r.code == 550, r
            s.sql("INSERT INTO aliases VALUES ('new@pg.test', 'alice')")
            r = wait_rcpt(d.port, "new@pg.test", 250, timeout=6)
            assert r.code == 250, "the new alias: %r" % r
            s.sql("DELETE FROM aliases WHERE name = 'new@pg.test'")
            r = wait_rcpt(d.port, "new@pg.test", 550, timeout=6)
            assert r.code == 550, "the deleted alias: %r" % r

            # keys are parameters: quotes, backslashes and SQL are text
            r = rcpt(d.port, "o'brien@pg.test")
            assert r.code == 250, "o'brien: %r" % r
            for evil in ("\"x'; DROP TABLE aliases; --\"@pg.test",
                         "\"a\\\\b' OR '1'='1\"@pg.test",
                         "\"x'||pg_sleep(5)||'\"@pg.test"):
                t0 = time.monotonic()
                r = rcpt(d.port, evil)
                assert r.code == 550, "%s: %r" % (evil, r)
                assert time.monotonic() - t0 < 3, "%s was slow" % evil
            r = smtp_dialog(d.port, ["EHLO t.example.test",
                                     auth_plain("' OR ''='", "' OR ''='"),
                                     "QUIT"])
            assert r[2].code == 535, "AUTH with SQL: %r" % r[2]
            assert s.sql("SELECT count(*) FROM aliases").strip() == "4"

            # the server stopped: deferred, never refused, nothing bounced
            s.pg.stop()
            marker = unique_marker("pgdown")
            for address in ("alice@pg.test", "down@pg.test"):
                # alice@pg.test may still be cached for a second
                r = wait_rcpt(d.port, address, 451, timeout=4)
                assert r.code == 451 and "4.3.0" in r.text, \
                    "%s with the server down: %r" % (address, r)
            r = send(d.port, "down2@pg.test", marker)
            assert r[3].code == 451, "RCPT with the server down: %r" % r[3]
            assert r[4].code >= 500, "DATA after no recipient: %r" % r[4]
            r = smtp_dialog(d.port, ["EHLO t.example.test",
                                     auth_plain("alice", PASSWORD), "QUIT"])
            assert r[2].code == 454, "AUTH with the server down: %r" % r[2]
            assert not spool_files_containing(d.spool, marker.encode()), \
                "a message was queued"
            outages = len(re.findall(r"table pg: PostgreSQL unreachable",
                                     d.log()))
            assert outages == 1, "the outage was logged %d times" % outages

            # and back: the connections come again (back-off 1 s, 2 s ...)
            s.pg.start()
            r = wait_rcpt(d.port, "alice@pg.test", 250, timeout=15)
            assert r.code == 250, "with the server back: %r" % r
            assert "table pg: PostgreSQL is back" in d.log()
            marker = unique_marker("pgback")
            r = send(d.port, "o'brien@pg.test", marker)
            assert r[5].code == 250, "DATA: %r" % r[5]
            assert poll(lambda: s.delivered(marker)), \
                "nothing delivered after the server came back"
    finally:
        s.cleanup()


BAD_CONFS = [
    # (pg.conf text, what smtpd -n must say after "pg.conf:")
    ("conninfo host=127.0.0.1 user=u\nquery_alias SELECT d FROM a\n",
     "2: query_alias: no $1"),
    ("conninfo host=127.0.0.1 user=u\nquery_alias SELECT $1\n\n"
     "query_alias SELECT $1\n", "4: duplicate query_alias"),
    ("# c\nconninfo host=127.0.0.1 user=u\nquery_users SELECT $1\n",
     "3: unknown keyword \"query_users\""),
    ("conninfo host=db.example.test user=u\nquery_alias SELECT $1\n",
     "1: conninfo: host= must be a numeric address"),
    ("conninfo host=127.0.0.1 user=u\nquery_alias SELECT $1\npool 99\n",
     "3: pool: expected a number"),
]


def test_pgsql_config_errors():
    d = tempfile.mkdtemp(prefix="pgsql-n-", dir="/tmp")
    try:
        conf = os.path.join(d, "smtpd.conf")
        pgconf = os.path.join(d, "pg.conf")
        with open(conf, "w") as f:
            f.write("listen on 127.0.0.1 port 25\n"
                    "table pg pgsql:%s\n"
                    "action \"local\" maildir alias <pg>\n"
                    "match from any for domain \"example.test\" "
                    "action \"local\"\n" % pgconf)
        for text, why in BAD_CONFS:
            with open(pgconf, "w") as f:
                f.write(text)
            r = run_smtpd(["-n", "-f", conf])
            assert r.returncode != 0, "smtpd -n accepted %r" % text
            want = "%s:%s" % (pgconf, why)
            assert want in r.output, "%r: %r does not say %r" % (
                text, r.output, want)
            assert "(line 2)" in r.output, r.output
        with open(pgconf, "w") as f:
            f.write("conninfo host=127.0.0.1 user=u\n"
                    "query_alias SELECT d FROM a WHERE k = $1\n")
        r = run_smtpd(["-n", "-f", conf])
        assert r.returncode == 0, r.output
        os.unlink(pgconf)
        r = run_smtpd(["-n", "-f", conf])
        assert r.returncode != 0 and "No such file" in r.output, r.output
    finally:
        shutil.rmtree(d, ignore_errors=True)
