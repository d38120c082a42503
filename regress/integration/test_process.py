"""
The process model of DESIGN.md: a root parent and its children, each
named by its title, running as _smtpd or _smtpq under a seccomp filter,
chrooted where listed; SIGTERM ends them all cleanly, and a child that
dies takes the daemon down.
"""

import os
import shutil
import signal
import socket
import subprocess
import tempfile
import time

import fixture

from fixture import (DAEMON_USER, EMPTY_DIR, QUEUE_USER, Daemon,
                     SMTPConnection, alive, poll, proc_cwd, proc_root,
                     proc_stat, proc_status, proc_title, proc_title_shown,
                     user)

TIMEOUT = 60

# title -> (user, chroot): "spool", "empty" or None (not chrooted)
EXPECTED = {
    "smtpd: smtp worker 1": (DAEMON_USER, "empty"),
    "smtpd: smtp worker 2": (DAEMON_USER, "empty"),
    "smtpd: queue": (QUEUE_USER, "spool"),
    "smtpd: lookup": (DAEMON_USER, None),
    "smtpd: mta": (DAEMON_USER, "empty"),
    "smtpd: control": (DAEMON_USER, "empty"),
}


def titled_children(d):
    """{title: pid} of the daemon's children."""
    out = {}
    for pid in d.children():
        title = proc_title(pid)
        if title is not None:
            out.setdefault(title, pid)
    return out


def wait_children(d):
    """Wait (briefly) until every expected title is there: titles are set
    right after fork, but not atomically with it."""
    poll(lambda: set(EXPECTED) <= set(titled_children(d)), timeout=5)
    return titled_children(d)



def test_default_worker_count():
    """Without "smtp workers", one worker per CPU but one (at least one):
    the queue, lookup and delivery processes need a CPU too."""
    conf = fixture.DEFAULT_CONF.replace("smtp workers 2\n", "")
    assert "smtp workers" not in conf
    with Daemon(conf=conf) as d:
        want = max(1, os.cpu_count() - 1)

        def workers():
            return [t for t in titled_children(d)
                    if t.startswith("smtpd: smtp worker")]
        got = poll(lambda: len(workers()) == want and workers(), 10)
        assert got and len(got) == want, \
            "%d CPUs, worker titles %s" % (os.cpu_count(), workers())
        assert "%d smtp workers" % want in d.log()

def ids(status, key):
    return [int(x) for x in status[key].split()]


def test_process_titles():
    with Daemon() as d:
        kids = wait_children(d)
        missing = sorted(set(EXPECTED) - set(kids))
        assert not missing, "missing children %s; children are %s" \
            % (missing, sorted(kids))
        workers = [t for t in kids if t.startswith("smtpd: smtp worker")]
        assert len(workers) == 2, \
            "'smtp workers 2' but worker titles are %s" % workers
        # What ps shows: no leftovers of the original command line.
        shown = dict((t, proc_title_shown(kids[t])) for t in EXPECTED)
        garbled = ["%r shows as %r" % (t, v) for t, v in sorted(shown.items())
                   if v is not None and v != t]
        assert not garbled, "ps shows leftovers of the old argv after the " \
            "title (clear the whole argv area): " + "; ".join(garbled)


def test_parent_is_root():
    with Daemon() as d:
        st = proc_status(d.pid)
        assert ids(st, "Uid") == [0, 0, 0, 0], "parent Uid: %s" % st["Uid"]


def test_children_privileges():
    """Every child: not root (real, effective, saved, fs uid and gid),
    no supplementary root group, seccomp filter mode (Seccomp: 2)."""
    with Daemon() as d:
        kids = wait_children(d)
        assert set(EXPECTED) <= set(kids), "children: %s" % sorted(kids)
        problems = []
        for pid in d.children():
            title = proc_title(pid)
            try:
                st = proc_status(pid)
            except FileNotFoundError:
                continue	# exited meanwhile (e.g. a delivery)
            who = "%s (pid %d)" % (title, pid)
            uids, gids = ids(st, "Uid"), ids(st, "Gid")
            groups = [int(g) for g in st.get("Groups", "").split()]
            if 0 in uids:
                problems.append("%s runs with uid %s" % (who, uids))
            if 0 in gids or 0 in groups:
                problems.append("%s runs with gid %s groups %s"
                                % (who, gids, groups))
            if st.get("Seccomp") != "2":
                problems.append("%s Seccomp: %s, expected 2"
                                % (who, st.get("Seccomp")))
            if title in EXPECTED:
                pw = user(EXPECTED[title][0])
                if uids != [pw.pw_uid] * 4:
                    problems.append("%s uid %s, expected %s (%d)"
                                    % (who, uids, pw.pw_name, pw.pw_uid))
                if gids != [pw.pw_gid] * 4:
                    problems.append("%s gid %s, expected %d"
                                    % (who, gids, pw.pw_gid))
                if set(groups) - {pw.pw_gid}:
                    problems.append("%s keeps supplementary groups %s"
                                    % (who, groups))
        assert not problems, "; ".join(problems)


def test_scheduling_class():
    """Every process of the daemon runs SCHED_BATCH (its wake-ups do not
    preempt the process on the CPU: mail is throughput work), unless the
    daemon was started under a class somebody chose, which it keeps."""
    with Daemon() as d:
        kids = wait_children(d)
        wrong = ["%s: %d" % (t, os.sched_getscheduler(p))
                 for t, p in sorted(kids.items()) + [("parent", d.pid)]
                 if os.sched_getscheduler(p) != os.SCHED_BATCH]
        assert not wrong, "not SCHED_BATCH (%d): %s" % (os.SCHED_BATCH,
                                                        "; ".join(wrong))
    param = os.sched_param(0)
    os.sched_setscheduler(0, os.SCHED_IDLE, param)
    try:
        d = Daemon().start()
    finally:
        os.sched_setscheduler(0, os.SCHED_OTHER, param)
    with d:
        kids = wait_children(d)
        wrong = ["%s: %d" % (t, os.sched_getscheduler(p))
                 for t, p in sorted(kids.items()) + [("parent", d.pid)]
                 if os.sched_getscheduler(p) != os.SCHED_IDLE]
        assert not wrong, "started SCHED_IDLE, now: %s" % "; ".join(wrong)


def test_children_chroot():
    """smtp workers, mta and control are jailed in an empty directory,
    the queue in the spool; each did chdir("/") inside its jail."""
    with Daemon() as d:
        kids = wait_children(d)
        problems = []
        spool = os.path.realpath(d.spool)
        for title, (_, jail) in sorted(EXPECTED.items()):
            pid = kids.get(title)
            if pid is None:
                problems.append("no %r child" % title)
                continue
            root = proc_root(pid)
            if jail is None:
                continue
            if root == "/":
                problems.append("%s is not chrooted" % title)
                continue
            if proc_cwd(pid) != root:
                problems.append("%s: cwd %s outside its chroot %s"
                                % (title, proc_cwd(pid), root))
            if jail == "spool" and root != spool:
                problems.append("%s chrooted in %s, expected the spool %s"
                                % (title, root, spool))
            if jail == "empty":
                entries = os.listdir("/proc/%d/root" % pid)
                if entries:
                    problems.append("%s chrooted in %s, which is not empty: "
                                    "%s" % (title, root, entries[:5]))
                st = os.stat(root)
                if st.st_uid != 0 or st.st_mode & 0o022:
                    problems.append("%s chroot %s writable by others "
                                    "(owner %d, mode %04o)"
                                    % (title, root, st.st_uid,
                                       st.st_mode & 0o7777))
        assert not problems, "; ".join(problems)
        assert os.path.isdir(EMPTY_DIR)


def test_sigterm_clean_exit():
    """SIGTERM: exit status 0 within 10 s, no child left behind."""
    with Daemon() as d:
        kids = [(pid, proc_stat(pid)[3]) for pid in d.children()
                if proc_stat(pid)]
        assert kids, "daemon has no children"
        t0 = time.monotonic()
        d.send_signal(signal.SIGTERM)
        status = d.wait_exit(10)
        took = time.monotonic() - t0
        assert status is not None, "still running 10s after SIGTERM"
        assert status == 0, "exit status %s after SIGTERM" % status
        left = [pid for pid, start in kids if alive(pid, start)]
        assert not left, "children left after exit: %s" % left
        assert took < 10
        # nothing listens on the port any more
        s = socket.socket()
        try:
            refused = s.connect_ex(("127.0.0.1", d.port)) != 0
        finally:
            s.close()
        assert refused, "port %d still accepts after exit" % d.port
        d.stop()	# checks the log for sanitizer reports


def test_sigterm_with_open_session():
    """An idle client does not hold up shutdown."""
    with Daemon() as d:
        with SMTPConnection(d.port) as c:
            assert c.command("EHLO tester.example.test").code == 250
            d.send_signal(signal.SIGTERM)
            status = d.wait_exit(10)
            assert status is not None, \
                "still running 10s after SIGTERM with a session open"
            assert status == 0, "exit status %s after SIGTERM" % status
        d.stop()


def test_child_death_stops_daemon():
    """A child that dies takes the whole daemon down (fail closed), with
    the reason logged."""
    with Daemon() as d:
        kids = wait_children(d)
        victim = kids.get("smtpd: mta")
        assert victim, "no mta child: %s" % sorted(kids)
        everyone = [(pid, proc_stat(pid)[3]) for pid in d.children()
                    if proc_stat(pid)]
        before = len(d.log())
        os.kill(victim, signal.SIGKILL)
        status = d.wait_exit(10)
        assert status is not None, "daemon still running 10s after its " \
            "mta child was killed"
        assert status != 0, "daemon exit status 0 after losing a child"
        left = [pid for pid, start in everyone if alive(pid, start)]
        assert not left, "children left after exit: %s" % left
        new_log = d.log()[before:]
        assert "mta" in new_log, \
            "the log does not name the child that died:\n%s" % new_log
        d.stop(expect_status=None)


def test_second_instance_refuses_a_taken_port():
    """Each worker listens on its own SO_REUSEPORT socket; a second daemon
    on the same address must not join them silently."""
    with Daemon() as d:
        conf = d.config_text()
        tmp = tempfile.mkdtemp(prefix="dup.", dir=fixture.TEST_ROOT)
        try:
            path = os.path.join(tmp, "smtpd.conf")
            with open(path, "w") as f:
                f.write(conf.replace(d.tmp, tmp))
            p = subprocess.run([fixture.binary("smtpd"), "-d", "-f", path,
                                "-P", os.path.join(tmp, "smtpd.pid")],
                               capture_output=True, timeout=30,
                               stdin=subprocess.DEVNULL)
            assert p.returncode != 0, "second instance started"
            assert b"Address already in use" in p.stderr, p.stderr
        finally:
            shutil.rmtree(tmp, ignore_errors=True)
        assert d.running()


# ---------------------------------------------------------------------------
# smtpd -V and the pid file (issue 15, item 17)

def changelog_version():
    with open(os.path.join(fixture.REPO, "debian", "changelog")) as f:
        first = f.readline()
    return first.split("(", 1)[1].split(")", 1)[0]


def test_version_flag():
    """-V prints the version (that of debian/changelog) and exits 0,
    before reading any configuration."""
    r = fixture.run_smtpd(["-V", "-f", "/nonexistent/smtpd.conf"])
    assert r.returncode == 0, r.output
    assert r.output.strip() == "Posthaste %s" % changelog_version(), \
        r.output


def read_pid(path):
    with open(path) as f:
        return int(f.read().strip())


def test_pid_file_lifecycle():
    """The parent writes its pid once it listens; a second daemon with
    the same pid file refuses to start and says who runs; a clean stop
    removes the file."""
    with Daemon() as d:
        assert read_pid(d.pid_path) == d.pid
        tmp = tempfile.mkdtemp(prefix="dup.", dir=fixture.TEST_ROOT)
        try:
            path = os.path.join(tmp, "smtpd.conf")
            conf = d.config_text().replace(d.tmp, tmp).replace(
                "port %d" % d.port, "port %d" % fixture.free_port())
            with open(path, "w") as f:
                f.write(conf)
            p = subprocess.run([fixture.binary("smtpd"), "-d", "-f", path,
                                "-P", d.pid_path], capture_output=True,
                               timeout=30, stdin=subprocess.DEVNULL)
            err = p.stderr.decode("utf-8", "replace")
            assert p.returncode == 1, "second daemon: %s" % err
            assert "already running as pid %d" % d.pid in err, err
            assert d.pid_path in err, err
        finally:
            shutil.rmtree(tmp, ignore_errors=True)
        assert d.running()
        assert read_pid(d.pid_path) == d.pid
        pid_path = d.pid_path
        d.stop()
    assert not os.path.exists(pid_path), "pid file left after a clean stop"


def test_pid_file_stale_is_taken_over():
    """A pid file a crash left (not locked, naming no live daemon) does
    not stop a start."""
    stale = os.path.join(fixture.TEST_ROOT, "stale-%d.pid" % os.getpid())
    os.makedirs(fixture.TEST_ROOT, exist_ok=True)
    with open(stale, "w") as f:
        f.write("999999999\n")
    try:
        with Daemon(args=["-P", stale]) as d:
            assert read_pid(stale) == d.pid
        assert not os.path.exists(stale)
    finally:
        if os.path.exists(stale):
            os.unlink(stale)


def test_pid_file_of_a_real_daemon():
    """Without -d (as the BSD rc scripts run it) the file names the
    detached daemon, not the process that was started; SIGTERM to that
    pid stops it and removes the file."""
    fixture.setup_system()
    tmp = tempfile.mkdtemp(prefix="bg.", dir=fixture.TEST_ROOT)
    os.chmod(tmp, 0o755)
    pid_path = os.path.join(tmp, "smtpd.pid")
    port = fixture.free_port()
    conf = fixture.DEFAULT_CONF.replace("@TMP@", tmp).replace(
        "@PORT@", str(port))
    path = os.path.join(tmp, "smtpd.conf")
    with open(path, "w") as f:
        f.write(conf)
    pid = None
    try:
        p = subprocess.run([fixture.binary("smtpd"), "-f", path, "-P",
                            pid_path], capture_output=True, timeout=30,
                           stdin=subprocess.DEVNULL)
        assert p.returncode == 0, p.stderr
        assert poll(lambda: os.path.exists(pid_path) and
                    os.path.getsize(pid_path) > 0, timeout=20)
        pid = read_pid(pid_path)
        assert alive(pid), pid
        assert poll(lambda: proc_title(pid) == "smtpd: parent",
                    timeout=20), proc_title(pid)
        with SMTPConnection(port) as c:
            assert c.greeting.code == 220
            c.command("QUIT")
        os.kill(pid, signal.SIGTERM)
        assert poll(lambda: not alive(pid), timeout=fixture.STOP_TIMEOUT), \
            "daemon did not stop"
        pid = None
        assert not os.path.exists(pid_path), "pid file left after SIGTERM"
    finally:
        if pid is not None and alive(pid):
            for kid in fixture.children_of(pid):
                os.kill(kid, signal.SIGKILL)
            os.kill(pid, signal.SIGKILL)
        shutil.rmtree(tmp, ignore_errors=True)
