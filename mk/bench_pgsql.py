#!/usr/bin/python3
"""
bench_pgsql.py -- the PostgreSQL side of "make bench SCENARIOS=pgsql".

    bench_pgsql.py up DIR PORT USERS      a PostgreSQL cluster (pglib.py,
        as nobody) on 127.0.0.1:PORT holding the bench's virtual users:
        benchuser@bench.test and u00001..uUSERS@bench.test, all mapped
        to the system user benchuser; writes DIR/pgsql.conf (the pgsql:
        table's file), DIR/virtuals (the same map for makemap) and
        DIR/pgdata (where the cluster is, for "down")
    bench_pgsql.py down DIR               stop it and remove it
    bench_pgsql.py queries DIR            the lookups the server has run
        on the table so far (pg_stat_user_tables: index and sequential
        scans of "virtuals"; a backend reports its counts at the latest
        when it exits, so ask after the daemon stopped)
    bench_pgsql.py rcpt PORT USERS SESSIONS SECONDS
        RCPT TO of distinct recipients (u00001@bench.test...) through
        SESSIONS SMTP sessions to 127.0.0.1:PORT at once, each one
        command at a time (no pipelining: every RCPT waits for its
        answer, so a session has one lookup in flight), RSET and a new
        MAIL FROM every 500 recipients; stops after USERS recipients or
        SECONDS seconds.  Prints one JSON line: recipients answered,
        how many 250, the seconds, and recipients per second.

Everything is bounded in count and time.  Standard library and
regress/integration/pglib.py only.
"""

import json
import os
import pwd
import shutil
import socket
import subprocess
import sys
import threading
import time

HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, os.path.join(os.path.dirname(HERE), "regress",
                                "integration"))
import pglib  # noqa: E402

DB, ROLE, PASSWORD = "mail", "mailer", "bench-secret"
MAX_USERS = 100000
MAX_SECONDS = 120
BATCH = 500		# recipients per transaction (smtp max-rcpt is 1000)

# the pgsql: table's file (see smtpd.conf(5), etc/pgsql.conf)
CONF = """\
conninfo host=127.0.0.1 port=%d dbname=%s user=%s password=%s
pool 4
query_alias SELECT dest FROM virtuals WHERE address = $1
"""


def up(d, port, users):
    users = min(int(users), MAX_USERS)
    os.makedirs(d, mode=0o755, exist_ok=True)
    pg = pglib.PgCluster(int(port), base=d)
    with open(os.path.join(d, "pgdata"), "w") as f:
        f.write("%s %d\n" % (pg.dir, int(port)))
    pg.start()
    pg.create_role(ROLE, PASSWORD)
    pg.create_db(DB, owner=ROLE)
    rows = ["benchuser@bench.test"] + ["u%05d@bench.test" % i
                                       for i in range(1, users + 1)]
    pg.psql("CREATE TABLE virtuals (address text PRIMARY KEY, "
            "dest text NOT NULL);\n"
            "INSERT INTO virtuals SELECT a, 'benchuser' FROM "
            "unnest(ARRAY[%s]) a;\nANALYZE virtuals;\n"
            % ",".join("'%s'" % r for r in rows), db=DB, user=ROLE)
    fd = os.open(os.path.join(d, "pgsql.conf"),
                 os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
    with os.fdopen(fd, "w") as f:
        f.write(CONF % (int(port), DB, ROLE, PASSWORD))
    with open(os.path.join(d, "virtuals"), "w") as f:
        for r in rows:
            f.write("%s benchuser\n" % r)


def _where(d):
    with open(os.path.join(d, "pgdata")) as f:
        where, port = f.read().split()
    return where, port


def down(d):
    """pg_ctl stop as the server's user, then the directory goes."""
    try:
        where, _ = _where(d)
    except OSError:
        return
    pw = pwd.getpwnam(pglib.PG_USER)

    def drop():
        os.setgroups([])
        os.setgid(pw.pw_gid)
        os.setuid(pw.pw_uid)
    subprocess.run([os.path.join(pglib.bindir(), "pg_ctl"), "-D",
                    os.path.join(where, "data"), "-m", "fast", "-w", "-t",
                    "20", "stop"], cwd=where, preexec_fn=drop,
                   stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
                   timeout=30)
    shutil.rmtree(d, ignore_errors=True)


def queries(d):
    where, port = _where(d)
    r = subprocess.run([os.path.join(pglib.bindir(), "psql"), "-X", "-A",
                        "-t", "-h", where, "-p", port, "-U",
                        pglib.SUPERUSER, "-d", DB, "-c",
                        "SELECT coalesce(idx_scan, 0) + coalesce(seq_scan, 0) "
                        "FROM pg_stat_user_tables WHERE relname = "
                        "'virtuals'"], stdout=subprocess.PIPE,
                       universal_newlines=True, timeout=30, check=True)
    print(int(r.stdout.strip() or 0))


class Session:
    def __init__(self, port):
        self.sock = socket.create_connection(("127.0.0.1", port), 10)
        self.buf = b""
        self.reply()

    def reply(self):
        while True:
            while b"\n" not in self.buf:
                data = self.sock.recv(65536)
                if not data:
                    raise OSError("connection closed")
                self.buf += data
            line, _, self.buf = self.buf.partition(b"\n")
            if line[3:4] != b"-":
                return int(line[:3])

    def cmd(self, text):
        self.sock.sendall(text.encode() + b"\r\n")
        return self.reply()


def rcpt(port, users, sessions, seconds):
    users = min(int(users), MAX_USERS)
    sessions = max(1, int(sessions))
    deadline = time.monotonic() + min(float(seconds), MAX_SECONDS)
    counts = [[0, 0] for _ in range(sessions)]
    errors = []

    def run(k):
        try:
            s = Session(int(port))
            s.cmd("EHLO client.test")
            n = 0
            for i in range(k + 1, users + 1, sessions):
                if time.monotonic() > deadline:
                    break
                if n % BATCH == 0:
                    if n:
                        s.cmd("RSET")
                    s.cmd("MAIL FROM:<loadgen@client.test>")
                code = s.cmd("RCPT TO:<u%05d@bench.test>" % i)
                n += 1
                counts[k][0] += 1
                counts[k][1] += code == 250
            s.cmd("QUIT")
        except OSError as e:
            errors.append(str(e))

    threads = [threading.Thread(target=run, args=(k,))
               for k in range(sessions)]
    t0 = time.monotonic()
    for t in threads:
        t.start()
    for t in threads:
        t.join(MAX_SECONDS + 30)
    took = time.monotonic() - t0
    answered = sum(c[0] for c in counts)
    print(json.dumps({"sessions": sessions, "rcpt": answered,
                      "rcpt_250": sum(c[1] for c in counts),
                      "seconds": round(took, 3),
                      "rcpt_per_s": round(answered / took, 1),
                      "load": open("/proc/loadavg").read().split()[0],
                      "errors": errors[:3]}))


def main(argv):
    if len(argv) == 4 and argv[0] == "up":
        up(*argv[1:])
    elif len(argv) == 2 and argv[0] == "down":
        down(argv[1])
    elif len(argv) == 2 and argv[0] == "queries":
        queries(argv[1])
    elif len(argv) == 5 and argv[0] == "rcpt":
        rcpt(*argv[1:])
    else:
        sys.stderr.write(__doc__)
        return 2
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
