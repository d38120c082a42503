"""
pglib.py -- a throw-away PostgreSQL cluster for the integration tests:
initdb, start, stop and psql, as an unprivileged user, on loopback.

The shared tables (pgsql:, issue 21) and the cluster test need a real
PostgreSQL server.  Debian's postgresql package brings the programs
(/usr/lib/postgresql/<version>/bin); its own cluster and service are not
used (mk/deps.sh disables the service).  Each PgCluster is a data
directory under a temporary directory of its own, owned by an
unprivileged user (PostgreSQL refuses to run as root), listening on the
given loopback address and port and on a unix socket in that directory.
Durability is off (fsync, synchronous_commit, full_page_writes): a test
cluster is thrown away, and this keeps initdb and start to about a second.

Authentication: over TCP every role needs its password (scram-sha-256),
so a driver's conninfo password is really checked; over the unix socket
the superuser "postgres" gets in without one (trust), which is what
psql() uses.

    from pglib import PgCluster, available

    if not available():
        fixture.skip("PostgreSQL is not installed")
    with PgCluster(15720) as pg:
        pg.create_role("mail", "secret")
        pg.create_db("mail", owner="mail")
        pg.psql("CREATE TABLE t (k text)", db="mail", user="mail")
        print(pg.psql("SELECT k FROM t", db="mail"))   # rows, '|' separated
        pg.stop()      # the server is down; the data stays
        pg.start()     # and up again on the same port
    # leaving the block stops the server and removes the directory

Standard library only.  Must run as root (to switch to the server's user).
"""

import glob
import os
import pwd
import shutil
import subprocess
import tempfile
import time

PG_USER = "nobody"	# the unprivileged account the server runs as
SUPERUSER = "postgres"	# the cluster's superuser role (not a system user)
START_TIMEOUT = 30	# seconds for pg_ctl start -w (ASan runs are slow)


def bindir():
    """Debian's newest /usr/lib/postgresql/N/bin holding initdb, or None."""
    best = None
    for d in glob.glob("/usr/lib/postgresql/*/bin"):
        if not os.access(os.path.join(d, "initdb"), os.X_OK):
            continue
        try:
            version = int(d.split("/")[-2])
        except ValueError:
            continue
        if best is None or version > best[0]:
            best = (version, d)
    return best[1] if best else None


def available():
    """Are initdb, pg_ctl and psql installed (else: fixture.skip)."""
    d = bindir()
    return d is not None and all(
        os.access(os.path.join(d, p), os.X_OK)
        for p in ("initdb", "pg_ctl", "psql"))


class PgError(Exception):
    """A PostgreSQL program failed (its output is the message)."""


class PgCluster:
    def __init__(self, port, host="127.0.0.1", user=PG_USER, base=None,
                 settings=None):
        self.port = port
        self.host = host
        self.user = user
        self.bin = bindir()
        if self.bin is None:
            raise PgError("no PostgreSQL in /usr/lib/postgresql/*/bin")
        self.pw = pwd.getpwnam(user)
        self.dir = tempfile.mkdtemp(prefix="posthaste-pg.", dir=base)
        os.chmod(self.dir, 0o755)
        os.chown(self.dir, self.pw.pw_uid, self.pw.pw_gid)
        self.data = os.path.join(self.dir, "data")
        self.socket_dir = self.dir
        self.log_path = os.path.join(self.dir, "postgres.log")
        self.settings = dict(settings or {})
        self.running = False
        self._initialised = False

    # ------------------------------------------------------------------
    def _as_server_user(self):
        pw = self.pw

        def drop():
            os.setgroups([])
            os.setgid(pw.pw_gid)
            os.setuid(pw.pw_uid)
        return drop

    def _run(self, argv, as_server=True, input=None, timeout=60):
        env = {"PATH": "/usr/bin:/bin", "LC_ALL": "C", "TZ": "UTC",
               "HOME": self.dir, "PGTZ": "UTC"}
        r = subprocess.run(argv, input=input, stdout=subprocess.PIPE,
                           stderr=subprocess.STDOUT, cwd=self.dir, env=env,
                           universal_newlines=True, timeout=timeout,
                           preexec_fn=self._as_server_user()
                           if as_server else None)
        if r.returncode != 0:
            raise PgError("%s: exit %d: %s" % (os.path.basename(argv[0]),
                                              r.returncode, r.stdout.strip()))
        return r.stdout

    def _initdb(self):
        self._run([os.path.join(self.bin, "initdb"), "-D", self.data,
                   "-U", SUPERUSER, "-E", "UTF8", "--locale=C",
                   "--no-sync", "--auth-local=trust",
                   "--auth-host=scram-sha-256"])
        conf = {
            "listen_addresses": "'%s'" % self.host,
            "port": str(self.port),
            "unix_socket_directories": "'%s'" % self.socket_dir,
            "fsync": "off",
            "synchronous_commit": "off",
            "full_page_writes": "off",
            "shared_buffers": "16MB",
            "max_connections": "40",
            "log_min_messages": "warning",
            "log_connections": "off",
            "password_encryption": "'scram-sha-256'",
        }
        conf.update(self.settings)
        with open(os.path.join(self.data, "postgresql.conf"), "a") as f:
            f.write("\n# pglib.py\n")
            for k, v in conf.items():
                f.write("%s = %s\n" % (k, v))
        self._initialised = True

    # ------------------------------------------------------------------
    def start(self):
        """initdb (the first time), then start the server and wait until
        it accepts connections."""
        if self.running:
            return
        if not self._initialised:
            self._initdb()
        self._run([os.path.join(self.bin, "pg_ctl"), "-D", self.data,
                   "-l", self.log_path, "-w", "-t", str(START_TIMEOUT),
                   "start"], timeout=START_TIMEOUT + 10)
        self.running = True

    def stop(self, mode="fast"):
        """Stop the server (mode: smart, fast or immediate); the data
        directory stays, start() brings it back on the same port."""
        if not self.running:
            return
        self._run([os.path.join(self.bin, "pg_ctl"), "-D", self.data,
                   "-m", mode, "-w", "-t", "20", "stop"], timeout=30)
        self.running = False

    def cleanup(self):
        try:
            self.stop("immediate")
        finally:
            shutil.rmtree(self.dir, ignore_errors=True)

    def __enter__(self):
        try:
            self.start()
        except BaseException:
            self.cleanup()
            raise
        return self

    def __exit__(self, *exc):
        self.cleanup()

    # ------------------------------------------------------------------
    def psql(self, sql, db="postgres", user=SUPERUSER):
        """Run SQL (one or more statements) through the unix socket; stops
        at the first error (PgError).  Returns the rows, unaligned, '|'
        between columns, one line each, no header."""
        psql = os.path.join(self.bin, "psql")
        return self._run([psql, "-X", "-q", "-A", "-t",
                          "-v", "ON_ERROR_STOP=1",
                          "-h", self.socket_dir, "-p", str(self.port),
                          "-U", user, "-d", db, "-f", "-"],
                         as_server=False, input=sql)

    def create_role(self, name, password):
        """A login role with a password (the SQL quoting is ours: names
        and passwords are the test's own constants)."""
        self.psql("CREATE ROLE \"%s\" LOGIN PASSWORD '%s'"
                  % (name, password.replace("'", "''")))

    def create_db(self, name, owner=SUPERUSER):
        self.psql("CREATE DATABASE \"%s\" OWNER \"%s\"" % (name, owner))

    def conninfo(self, db, user, password):
        """A libpq conninfo string for TCP to this server (numeric host:
        the pgsql: table refuses a host name)."""
        return "host=%s port=%d dbname=%s user=%s password=%s" % (
            self.host, self.port, db, user, password)

    def log_tail(self, lines=30):
        try:
            with open(self.log_path, errors="replace") as f:
                return "".join(f.readlines()[-lines:])
        except OSError:
            return ""

    def wait_ready(self, timeout=10):
        """Poll until the server answers a query (after start())."""
        deadline = time.monotonic() + timeout
        while True:
            try:
                self.psql("SELECT 1")
                return
            except PgError:
                if time.monotonic() > deadline:
                    raise
                time.sleep(0.05)
