"""
fixture.py -- what every integration test needs: the real daemon, running
as root on a loopback port with a temporary spool, test users to deliver
to, and small helpers for scripted SMTP dialogs and mailboxes.

Standard library only (Debian's /usr/bin/python3).  Must run as root: the
daemon binds, chroots and drops privileges, and the tests create system
and test users.

Typical use in a test module:

    from fixture import Daemon, smtp_dialog, TEST_USER1

    def test_something():
        with Daemon() as d:
            replies = smtp_dialog(d.port, ["EHLO t.example.test", "QUIT"])
            assert replies[1].code == 250

Daemon.stop() (also run by the `with` block and by the runner for a daemon
a test left running) sends SIGTERM and requires exit status 0 within 10 s,
no child left behind and no sanitizer report in the daemon's log.
"""

import fcntl
import grp
import os
import pwd
import re
import shutil
import signal
import socket
import subprocess
import tempfile
import time

# Set by run.py from --bindir (absolute).
BINDIR = None
# Where daemon logs are kept (regress/results/<bindir name>/), set by run.py.
RESULTS = None

REPO = os.path.dirname(os.path.dirname(os.path.dirname(
    os.path.abspath(__file__))))
TEST_ROOT = "/var/tmp/posthaste-test"
TEST_HOMES = os.path.join(TEST_ROOT, "home")
EMPTY_DIR = "/var/empty"
MAIL_DIR = "/var/mail"

DAEMON_USER = "_smtpd"
QUEUE_USER = "_smtpq"
TEST_USER1 = "phtest1"	# Maildir, domain example.test
TEST_USER2 = "phtest2"	# mbox, domain mbox.test

START_TIMEOUT = 30	# seconds until the 220 banner (ASan builds are slow)
STOP_TIMEOUT = 10	# seconds from SIGTERM to exit, as the issue requires
DELIVERY_TIMEOUT = 10	# seconds from "250 queued" to the mailbox

# Sanitizer settings for the daemon, unless the caller set its own.
SANITIZER_ENV = {
    "ASAN_OPTIONS": "detect_leaks=0:abort_on_error=1",
    "UBSAN_OPTIONS": "print_stacktrace=1:halt_on_error=1",
}
# ... and for every other program a test runs (sendmail, smtpctl, makemap):
# LeakSanitizer's ptrace-based stop-the-world can hang a process that
# changed its uid, so leaks are checked in the unit tests only.
for _key, _value in SANITIZER_ENV.items():
    os.environ.setdefault(_key, _value)
# Any of these in a daemon's output fails the test that ran it.
SANITIZER_PATTERNS = ("runtime error:", "AddressSanitizer",
                      "LeakSanitizer", "UndefinedBehaviorSanitizer")

# The configuration of issue 2; @TMP@ and @PORT@ are filled in.
DEFAULT_CONF = """\
spool "@TMP@/spool"
socket "@TMP@/smtpd.sock"
smtp workers 2
smtp max-message-size 10M
listen on 127.0.0.1 port @PORT@
action "local" maildir "~/Maildir"
action "spool" mbox
match from any for domain "example.test" action "local"
match from any for domain "mbox.test" action "spool"
"""


class FixtureError(Exception):
    """The test environment could not be set up (not a test failure
    of the daemon as such, but reported the same way)."""


class Skip(Exception):
    """Raised by skip(): the test did not run, for the reason given.
    The runner counts it apart from passed and failed tests, so a test
    whose tool is missing can never count as passed."""


def skip(reason):
    raise Skip(reason)


# --------------------------------------------------------------------------
# bookkeeping shared with run.py

_started = []		# every Daemon started in the current test

# A daemon that never comes up would cost every later test the whole
# START_TIMEOUT; after this many failed starts in a row, fail at once.
MAX_START_FAILURES = 3
_start_failures = 0


_current_test = None


def begin_test(name=None):
    """Called by the runner before each test."""
    global _current_test
    _current_test = name
    del _started[:]


def end_test():
    """Called by the runner after each test: stop every daemon the test
    left running.  Returns the list of daemons the test started (for
    printing their logs on failure).  Raises if a stop failed.  A daemon
    with keep_running set serves the module's next tests: its module's
    teardown_module() stops it (run.py)."""
    daemons = list(_started)
    errors = []
    for d in daemons:
        if getattr(d, "keep_running", False):
            continue
        try:
            d.stop()
        except AssertionError as e:
            errors.append(str(e))
        except Exception as e:	# cleanup must reach every daemon
            errors.append("%s: %s" % (type(e).__name__, e))
    if errors:
        raise AssertionError("; ".join(errors))
    return daemons


def binary(name):
    if BINDIR is None:
        raise FixtureError("fixture.BINDIR not set (run via run.py)")
    return os.path.join(BINDIR, name)


def results_dir():
    path = RESULTS or os.path.join(REPO, "regress", "results")
    os.makedirs(path, exist_ok=True)
    return path


# --------------------------------------------------------------------------
# users and directories

# Users the tests create carry one of these comments (GECOS), so that
# teardown_system() can tell them from the daemon's real accounts (which
# "make run" and the package create as "Posthaste _smtpd") and remove them
# even after an interrupted run.
TEST_USER_COMMENT = "Posthaste test user"
TEST_SYSTEM_USER_COMMENT = "Posthaste test system user"
# Several runs may share the machine (obj and obj-san, two checkouts): each
# holds a shared lock on this file, and only the last one out cleans up.
LOCK_FILE = "/var/tmp/posthaste-test.lock"
_lock_fd = None
_created_groups = []
_created_empty_dir = False


def _useradd(name, system, home=None):
    """useradd with a group of the same name (reusing an existing one)."""
    cmd = ["useradd"]
    if system:
        cmd += ["-r", "-M", "-d", EMPTY_DIR, "-s", "/usr/sbin/nologin",
                "-c", TEST_SYSTEM_USER_COMMENT]
    else:
        cmd += ["-m", "-d", home, "-s", "/bin/sh",
                "-c", TEST_USER_COMMENT]
    new_group = False
    try:
        grp.getgrnam(name)
        cmd += ["-g", name]
    except KeyError:
        cmd += ["-U"]
        new_group = True
    cmd.append(name)
    r = subprocess.run(cmd, stdout=subprocess.PIPE, stderr=subprocess.STDOUT,
                       universal_newlines=True)
    if r.returncode != 0:
        raise FixtureError("%s: %s" % (" ".join(cmd), r.stdout.strip()))
    if new_group:
        _created_groups.append(name)


def ensure_system_user(name):
    try:
        return pwd.getpwnam(name)
    except KeyError:
        pass
    _useradd(name, system=True)
    return pwd.getpwnam(name)


def ensure_test_user(name):
    """A normal user with a home under TEST_HOMES; its home is (re)created
    if missing, e.g. after /var/tmp was cleaned."""
    os.makedirs(TEST_HOMES, mode=0o755, exist_ok=True)
    os.chmod(TEST_ROOT, 0o755)
    os.chmod(TEST_HOMES, 0o755)
    try:
        pw = pwd.getpwnam(name)
    except KeyError:
        _useradd(name, system=False, home=os.path.join(TEST_HOMES, name))
        pw = pwd.getpwnam(name)
    if not os.path.isdir(pw.pw_dir):
        os.makedirs(pw.pw_dir, mode=0o755)
        os.chown(pw.pw_dir, pw.pw_uid, pw.pw_gid)
    os.chmod(pw.pw_dir, 0o755)
    return pw


def ensure_empty_dir():
    global _created_empty_dir
    if not os.path.isdir(EMPTY_DIR):
        os.makedirs(EMPTY_DIR, mode=0o755)
        _created_empty_dir = True
    os.chown(EMPTY_DIR, 0, 0)
    os.chmod(EMPTY_DIR, 0o755)


_setup_done = False


def setup_system():
    """Once per run: users, /var/empty, the test root.  Idempotent."""
    global _setup_done
    if _setup_done:
        return
    if os.geteuid() != 0:
        raise FixtureError("integration tests must run as root")
    global _lock_fd
    while _lock_fd is None:
        fd = os.open(LOCK_FILE, os.O_RDWR | os.O_CREAT, 0o600)
        fcntl.flock(fd, fcntl.LOCK_SH)
        # a run that is cleaning up holds the file exclusively and removes
        # it when done: ours must be the file still at that path
        try:
            same = os.stat(LOCK_FILE).st_ino == os.fstat(fd).st_ino
        except FileNotFoundError:
            same = False
        if same:
            _lock_fd = fd
        else:
            os.close(fd)
    ensure_system_user(DAEMON_USER)
    ensure_system_user(QUEUE_USER)
    ensure_empty_dir()
    ensure_test_user(TEST_USER1)
    ensure_test_user(TEST_USER2)
    _setup_done = True


def teardown_system():
    """After the run: remove the users, groups, mailboxes and directories
    the run created (and only those), and the test root.  Returns a list
    of what could not be removed."""
    global _setup_done, _created_empty_dir, _lock_fd
    problems = []
    _setup_done = False
    if _lock_fd is not None:
        try:
            fcntl.flock(_lock_fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            # another run is still using the users and the test root
            os.close(_lock_fd)
            _lock_fd = None
            return problems
        # held exclusively until everything is removed (below): a run
        # starting meanwhile waits for it, then makes a new lock file
    for pw in pwd.getpwall():
        if pw.pw_gecos not in (TEST_USER_COMMENT, TEST_SYSTEM_USER_COMMENT):
            continue
        r = subprocess.run(["userdel", pw.pw_name], stdout=subprocess.PIPE,
                           stderr=subprocess.STDOUT,
                           universal_newlines=True)
        if r.returncode != 0:
            problems.append("userdel %s: %s" % (pw.pw_name,
                                                r.stdout.strip()))
        for spool in (os.path.join(MAIL_DIR, pw.pw_name),
                      os.path.join(MAIL_DIR, pw.pw_name + ".lock")):
            try:
                os.unlink(spool)
            except FileNotFoundError:
                pass
    for name in reversed(_created_groups):
        try:
            grp.getgrnam(name)
        except KeyError:
            continue	# userdel removed it with its user
        r = subprocess.run(["groupdel", name], stdout=subprocess.PIPE,
                           stderr=subprocess.STDOUT,
                           universal_newlines=True)
        if r.returncode != 0:
            problems.append("groupdel %s: %s" % (name, r.stdout.strip()))
    del _created_groups[:]
    if _created_empty_dir:
        try:
            os.rmdir(EMPTY_DIR)
        except OSError as e:
            problems.append("%s: %s" % (EMPTY_DIR, e))
        _created_empty_dir = False
    shutil.rmtree(TEST_ROOT, ignore_errors=True)
    if os.path.exists(TEST_ROOT):
        problems.append("%s could not be removed" % TEST_ROOT)
    if _lock_fd is not None:
        os.unlink(LOCK_FILE)
        os.close(_lock_fd)
        _lock_fd = None
    return problems


def user(name):
    return pwd.getpwnam(name)


def as_user(name):
    """A preexec_fn that makes a child process run as user `name' (its
    own group, no supplementary groups)."""
    pw = pwd.getpwnam(name)

    def drop():
        os.setgroups([])
        os.setgid(pw.pw_gid)
        os.setuid(pw.pw_uid)
    return drop


def maildir_holds(marker, username=TEST_USER1):
    """Is a message with marker in the user's Maildir now?  (Other tests
    may deliver there too: counting files would not do.)"""
    marker = marker.encode() if isinstance(marker, str) else marker
    for path in maildir_files(username):
        try:
            if marker in read_file(path):
                return True
        except FileNotFoundError:
            pass
    return False


def capture_unix_client(path, argv, stdin=subprocess.DEVNULL):
    """Run argv (a client told to use the unix socket `path') against a
    listening socket of ours at path, and return the bytes it sent
    before it stopped sending for 2 s or closed (it is then killed)."""
    srv = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
    srv.bind(path)
    srv.listen(1)
    p = subprocess.Popen(argv, stdin=stdin, stdout=subprocess.PIPE,
                         stderr=subprocess.PIPE)
    data = b""
    try:
        srv.settimeout(10)
        conn, _ = srv.accept()
        conn.settimeout(2)
        try:
            while True:
                chunk = conn.recv(65536)
                if not chunk:
                    break
                data += chunk
        except socket.timeout:
            pass
        conn.close()
    finally:
        p.kill()
        p.wait()
        srv.close()
    return data


# --------------------------------------------------------------------------
# processes

def free_port():
    """A TCP port on 127.0.0.1 that was free a moment ago."""
    s = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    try:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]
    finally:
        s.close()


def proc_stat(pid):
    """(comm, state, ppid, starttime) of a process, or None if gone."""
    try:
        with open("/proc/%d/stat" % pid, "rb") as f:
            data = f.read().decode("ascii", "replace")
    except (FileNotFoundError, ProcessLookupError):
        return None
    # comm is in parentheses and may itself contain ")" or spaces
    lparen, rparen = data.index("("), data.rindex(")")
    rest = data[rparen + 2:].split()
    return (data[lparen + 1:rparen], rest[0], int(rest[1]), int(rest[19]))


def children_of(ppid):
    """Pids whose parent is ppid (zombies excluded)."""
    pids = []
    for entry in os.listdir("/proc"):
        if not entry.isdigit():
            continue
        st = proc_stat(int(entry))
        if st and st[2] == ppid and st[1] != "Z":
            pids.append(int(entry))
    return sorted(pids)


def alive(pid, starttime=None):
    """True if pid exists, is no zombie and (if given) is the same process
    that had this starttime."""
    st = proc_stat(pid)
    if st is None or st[1] in ("Z", "X"):
        return False
    return starttime is None or st[3] == starttime


def _cmdline(pid):
    try:
        with open("/proc/%d/cmdline" % pid, "rb") as f:
            return f.read()
    except (FileNotFoundError, ProcessLookupError):
        return None


def proc_title(pid):
    """The title a process set for itself: /proc/PID/cmdline up to its
    first NUL, white space trimmed."""
    raw = _cmdline(pid)
    if raw is None:
        return None
    return raw.split(b"\0", 1)[0].decode("utf-8", "replace").strip()


def proc_title_shown(pid):
    """The title as ps(1) shows it: the whole argv area, NULs as spaces
    (leftovers of the original arguments included)."""
    raw = _cmdline(pid)
    if raw is None:
        return None
    return raw.replace(b"\0", b" ").decode("utf-8", "replace").strip()


def proc_status(pid):
    """/proc/PID/status as a dict of strings."""
    status = {}
    with open("/proc/%d/status" % pid) as f:
        for line in f:
            key, _, value = line.partition(":")
            status[key] = value.strip()
    return status


def proc_root(pid):
    return os.readlink("/proc/%d/root" % pid)


def proc_cwd(pid):
    return os.readlink("/proc/%d/cwd" % pid)


# --------------------------------------------------------------------------
# the daemon

class Daemon:
    """The real daemon, started as root in the foreground:
    BINDIR/smtpd -d -v -f TMP/smtpd.conf -P TMP/smtpd.pid, output to a log
    file.

    Attributes once started: port, tmp, spool, socket_path, conf_path,
    log_path, proc (subprocess.Popen), pid.

    Several daemons at once on fixed places (test_cluster.py): host is
    the loopback address the banner is awaited on (@ADDR@ in the
    configuration), port a fixed port instead of a free one, and tmp a
    directory of the caller's that outlives stop() (the spool stays for
    a restart; the caller removes it).
    """

    _serial = 0

    def __init__(self, conf_extra="", conf=None, args=(), env=None,
                 name=None, program=None, host="127.0.0.1", port=None,
                 tmp=None):
        self.program = program	# another build of smtpd (test_privsep)
        self.host = host
        self.fixed_port = port
        self.fixed_tmp = tmp
        self.conf_extra = conf_extra
        self.conf_template = conf
        self.args = list(args)
        self.env_extra = env or {}
        self.name = name
        self.proc = None
        self.pid = None
        self.port = None
        self.tmp = None
        self.status = None	# exit status once stopped
        self.stopped = False
        self.log_path = None

    # -- context manager -------------------------------------------------

    def __enter__(self):
        if self.proc is None:
            self.start()
        return self

    def __exit__(self, exc_type, exc, tb):
        if exc_type is None:
            self.stop()
        else:
            # The test already failed; clean up without masking its error
            # (the runner still shows the log).
            try:
                self.stop()
            except Exception:
                pass
        return False

    # -- configuration ---------------------------------------------------

    def config_text(self):
        text = self.conf_template if self.conf_template is not None \
            else DEFAULT_CONF
        if self.conf_extra:
            text = text.rstrip("\n") + "\n" + self.conf_extra.rstrip("\n") \
                + "\n"
        return text.replace("@TMP@", self.tmp).replace(
            "@PORT@", str(self.port)).replace("@ADDR@", self.host)

    @property
    def spool(self):
        return os.path.join(self.tmp, "spool")

    @property
    def socket_path(self):
        return os.path.join(self.tmp, "smtpd.sock")

    @property
    def conf_path(self):
        return os.path.join(self.tmp, "smtpd.conf")

    @property
    def pid_path(self):
        return os.path.join(self.tmp, "smtpd.pid")

    # -- start -------------------------------------------------------------

    def start(self, conf_extra=None, conf=None, wait=True):
        """Write the configuration, start the daemon and (with wait) wait
        for its 220 banner.  A port someone took meanwhile is retried."""
        setup_system()
        global _start_failures
        if _start_failures >= MAX_START_FAILURES:
            raise FixtureError(
                "not started: the daemon failed to start %d times in a row"
                % _start_failures)
        if conf_extra is not None:
            self.conf_extra = conf_extra
        if conf is not None:
            self.conf_template = conf
        last = None
        for _ in range(3):
            self._spawn()
            if not wait:
                return self
            try:
                self.wait_banner()
                _start_failures = 0
                return self
            except FixtureError as e:
                last = e
                if self.proc.poll() is None:
                    break		# hung: end_test() stops it
                # Exited by itself: nothing left to stop.
                self.stopped = True
                self.status = self.proc.returncode
                self._cleanup_tmp()
                if "in use" not in self.log():
                    break
                # port race: try another one
        _start_failures += 1
        raise last

    def _spawn(self):
        os.makedirs(TEST_ROOT, mode=0o755, exist_ok=True)
        # The tmp dir holds the spool and the control socket: root's, but
        # traversable, so that unprivileged users can reach the socket.
        if self.fixed_tmp:
            self.tmp = self.fixed_tmp
            os.makedirs(self.tmp, mode=0o755, exist_ok=True)
        else:
            self.tmp = tempfile.mkdtemp(prefix="d.", dir=TEST_ROOT)
        os.chmod(self.tmp, 0o755)
        self.port = self.fixed_port or free_port()
        with open(self.conf_path, "w") as f:
            f.write(self.config_text())

        Daemon._serial += 1
        base = self.name or _current_test or "daemon"
        base = re.sub(r"[^A-Za-z0-9_.-]+", "-", base)
        self.log_path = os.path.join(
            results_dir(), "%s.%d.log" % (base, Daemon._serial))
        env = dict(os.environ)
        for key, value in SANITIZER_ENV.items():
            env.setdefault(key, value)
        env.update(self.env_extra)
        # a pid file of its own: /run/smtpd.pid would let only one
        # daemon of the run (or of the machine) start
        cmd = [self.program or binary("smtpd"), "-d", "-v", "-f",
               self.conf_path, "-P", self.pid_path] + self.args
        with open(self.log_path, "wb") as log:
            log.write(("# %s\n" % " ".join(cmd)).encode())
            log.flush()
            try:
                self.proc = subprocess.Popen(
                    cmd, stdin=subprocess.DEVNULL, stdout=log, stderr=log,
                    cwd=self.tmp, env=env, start_new_session=True)
            except OSError as e:
                self._cleanup_tmp()
                raise FixtureError("cannot start %s: %s" % (cmd[0], e))
        self.pid = self.proc.pid
        self.status = None
        self.stopped = False
        if self not in _started:
            _started.append(self)

    def wait_banner(self, timeout=START_TIMEOUT):
        """Wait until the daemon answers with a 220 greeting."""
        deadline = time.monotonic() + timeout
        last = "no connection"
        while time.monotonic() < deadline:
            if self.proc.poll() is not None:
                lines = [ln for ln in self.log().splitlines()
                         if ln.strip() and not ln.startswith("# ")]
                raise FixtureError(
                    "daemon exited with status %s before its 220 banner%s"
                    % (_describe_status(self.proc.returncode),
                       ": " + lines[-1].strip() if lines else ""))
            try:
                with SMTPConnection(self.port, host=self.host,
                                    timeout=5) as c:
                    if c.greeting.code == 220:
                        c.command("QUIT")
                        self.wait_sandboxed(deadline)
                        return
                    last = "greeting %s" % (c.greeting,)
            except (OSError, SMTPError) as e:
                last = str(e)
            time.sleep(0.1)
        raise FixtureError("no 220 banner on %s port %d within %ds (%s)"
                           % (self.host, self.port, timeout, last))

    def wait_sandboxed(self, deadline):
        """The workers greet before every sibling has finished starting
        (the mta reads its CA store as root, slowly under ASan): wait
        until each core child has entered its sandbox."""
        core = ("smtpd: queue", "smtpd: lookup", "smtpd: mta",
                "smtpd: control", "smtpd: smtp worker")
        while time.monotonic() < deadline:
            waiting = []
            for pid in self.children():
                try:
                    if (proc_title(pid) or "").startswith(core) and \
                            proc_status(pid).get("Seccomp") != "2":
                        waiting.append(pid)
                except OSError:
                    pass	# gone meanwhile
            if not waiting:
                return
            time.sleep(0.05)

    # -- inspection --------------------------------------------------------

    def log(self):
        if not self.log_path:
            return ""
        try:
            with open(self.log_path, "rb") as f:
                return f.read().decode("utf-8", "replace")
        except FileNotFoundError:
            return ""

    def log_tail(self, lines=40):
        return "\n".join(self.log().splitlines()[-lines:])

    def children(self):
        return children_of(self.pid)

    def running(self):
        return self.proc is not None and self.proc.poll() is None

    def sanitizer_report(self):
        """The first sanitizer line in the log, or None."""
        for line in self.log().splitlines():
            if any(p in line for p in SANITIZER_PATTERNS):
                return line.strip()
        return None

    # -- stop --------------------------------------------------------------

    def send_signal(self, sig):
        self.proc.send_signal(sig)

    def wait_exit(self, timeout):
        """Wait for the daemon to exit; its status, or None on timeout."""
        try:
            return self.proc.wait(timeout=timeout)
        except subprocess.TimeoutExpired:
            return None

    def stop(self, sig=signal.SIGTERM, timeout=STOP_TIMEOUT,
             expect_status=0):
        """Stop with SIGTERM and check the shutdown was clean: exit status
        0 within 10 s, every child gone, no sanitizer report.  Idempotent;
        also used after a test made the daemon exit by itself (then only
        the exit status and the leftovers are checked)."""
        if self.proc is None or self.stopped:
            return self.status
        self.stopped = True
        problems = []
        kids = [(pid, (proc_stat(pid) or (0, 0, 0, None))[3])
                for pid in children_of(self.pid)]
        if self.proc.poll() is None:
            self.proc.send_signal(sig)
            if self.wait_exit(timeout) is None:
                problems.append("did not exit within %ds after %s"
                                % (timeout, signal.Signals(sig).name))
                self._kill_everything(kids)
        self.status = self.proc.returncode
        if not problems and expect_status is not None \
                and self.status != expect_status:
            problems.append("exit status %s, expected %s"
                            % (_describe_status(self.status), expect_status))
        left = [pid for pid, start in kids if alive(pid, start)]
        if left:
            time.sleep(0.5)	# the reaper may lag a moment behind
            left = [pid for pid, start in kids if alive(pid, start)]
        if left:
            problems.append("children left running after exit: %s" % ", ".join(
                "%d (%s)" % (pid, proc_title(pid)) for pid in left))
            self._kill_everything(kids)
        report = self.sanitizer_report()
        if report:
            problems.append("sanitizer: %s" % report)
        self._cleanup_tmp()
        if problems:
            raise AssertionError("daemon: " + "; ".join(problems))
        return self.status

    def _kill_everything(self, kids):
        for pid, start in kids:
            if alive(pid, start):
                try:
                    os.kill(pid, signal.SIGKILL)
                except ProcessLookupError:
                    pass
        try:
            os.killpg(self.pid, signal.SIGKILL)
        except (ProcessLookupError, PermissionError):
            pass
        try:
            self.proc.wait(timeout=5)
        except subprocess.TimeoutExpired:
            pass

    def _cleanup_tmp(self):
        if self.tmp and not self.fixed_tmp and \
                not os.environ.get("POSTHASTE_KEEP"):
            shutil.rmtree(self.tmp, ignore_errors=True)


def _describe_status(status):
    if status is not None and status < 0:
        return "%d (killed by %s)" % (status, signal.Signals(-status).name)
    return str(status)


def run_smtpd(args, timeout=10):
    """Run BINDIR/smtpd with args (not as a daemon, e.g. -n); returns the
    CompletedProcess with stdout and stderr merged into .output.  A
    sanitizer report fails the caller."""
    env = dict(os.environ)
    for key, value in SANITIZER_ENV.items():
        env.setdefault(key, value)
    r = subprocess.run([binary("smtpd")] + list(args),
                       stdin=subprocess.DEVNULL, stdout=subprocess.PIPE,
                       stderr=subprocess.STDOUT, env=env, timeout=timeout)
    r.output = r.stdout.decode("utf-8", "replace")
    for line in r.output.splitlines():
        if any(p in line for p in SANITIZER_PATTERNS):
            raise AssertionError("sanitizer: %s" % line.strip())
    return r


# --------------------------------------------------------------------------
# SMTP, raw

class SMTPError(Exception):
    pass


class Reply:
    """One SMTP reply: code and the text of its lines (without codes)."""

    def __init__(self, code, lines):
        self.code = code
        self.lines = lines

    @property
    def text(self):
        return "\n".join(self.lines)

    def __repr__(self):
        return "%d %s" % (self.code, " / ".join(self.lines))

    __str__ = __repr__


class SMTPConnection:
    """A raw SMTP client that sends exactly the bytes it is given.
    The greeting is read on connect (self.greeting)."""

    def __init__(self, port, host="127.0.0.1", timeout=30):
        self.sock = socket.create_connection((host, port), timeout=timeout)
        self.buf = b""
        self.greeting = self.reply()

    def __enter__(self):
        return self

    def __exit__(self, *exc):
        self.close()
        return False

    def close(self):
        if self.sock:
            self.sock.close()
            self.sock = None

    def _line(self):
        while b"\n" not in self.buf:
            data = self.sock.recv(4096)
            if not data:
                raise SMTPError("connection closed by server (pending: %r)"
                                % self.buf)
            self.buf += data
        line, _, self.buf = self.buf.partition(b"\n")
        return line.rstrip(b"\r").decode("utf-8", "replace")

    def reply(self):
        lines = []
        while True:
            line = self._line()
            if len(line) < 3 or not line[:3].isdigit() or \
                    (len(line) > 3 and line[3] not in " -"):
                raise SMTPError("malformed reply line %r" % line)
            lines.append((int(line[:3]), line[4:]))
            if len(line) == 3 or line[3] == " ":
                break
        codes = set(c for c, _ in lines)
        if len(codes) != 1:
            raise SMTPError("mixed codes in one reply: %r" % lines)
        return Reply(lines[0][0], [t for _, t in lines])

    def send(self, data):
        """Send a str (CRLF appended) or bytes (as they are)."""
        if isinstance(data, str):
            data = data.encode("utf-8") + b"\r\n"
        self.sock.sendall(data)

    def command(self, data):
        self.send(data)
        return self.reply()


def smtp_dialog(port, items, timeout=30):
    """Connect, then send each item and read one reply per item.  A str
    item is a command line (CRLF added), a bytes item is sent as it is
    (e.g. a message body ending in b"\\r\\n.\\r\\n").  Returns the list of
    replies, the greeting first.  Stops early, returning what it has, if
    the server closes the connection."""
    replies = []
    with SMTPConnection(port, timeout=timeout) as c:
        replies.append(c.greeting)
        for item in items:
            try:
                replies.append(c.command(item))
            except SMTPError:
                break
    return replies


QUEUED_RE = re.compile(r"^2\.0\.0 Ok: queued as (\S+)$")


def queue_id(reply):
    """The MSGID of a "250 2.0.0 Ok: queued as MSGID" reply (Reply or
    smtplib's bytes); fails the test if the reply is not that."""
    text = reply.text if isinstance(reply, Reply) else \
        (reply.decode() if isinstance(reply, bytes) else reply)
    m = QUEUED_RE.match(text.strip())
    if not m:
        raise AssertionError("end of data reply is %r, expected "
                             "'2.0.0 Ok: queued as ID'" % text)
    return m.group(1)


def dot_stuff(body):
    """RFC 5321 4.5.2 transparency: CRLF lines, a leading "." doubled."""
    out = []
    for line in body.split(b"\r\n"):
        out.append(b"." + line if line.startswith(b".") else line)
    return b"\r\n".join(out)


# --------------------------------------------------------------------------
# smtpctl

def smtpctl(d, *args, user=None, check=True, text=True):
    """smtpctl against daemon d, as root or as user (setpriv); raises
    when it fails and check is set."""
    cmd = [binary("smtpctl"), "-s", d.socket_path] + list(args)
    if user:
        cmd = ["setpriv", "--reuid", user, "--regid", user, "--init-groups",
               "--"] + cmd
    p = subprocess.run(cmd, stdin=subprocess.DEVNULL, capture_output=True,
                       text=text, timeout=20)
    if check and p.returncode != 0:
        err = p.stderr if text else p.stderr.decode(errors="replace")
        raise AssertionError("smtpctl %s: exit %d: %s" % (
            " ".join(args), p.returncode, err))
    return p


def queue_json(d, user=None):
    """smtpctl show queue -j: the envelopes, one dict each."""
    import json
    out = smtpctl(d, "show", "queue", "-j", user=user).stdout
    return [json.loads(line) for line in out.splitlines() if line.strip()]


# --------------------------------------------------------------------------
# mailboxes

def poll(fn, timeout=DELIVERY_TIMEOUT, interval=0.05):
    """Call fn until it returns something true; return that, or the last
    false value after timeout."""
    deadline = time.monotonic() + timeout
    while True:
        value = fn()
        if value or time.monotonic() >= deadline:
            return value
        time.sleep(interval)


def maildir_path(username):
    return os.path.join(user(username).pw_dir, "Maildir")


def reset_maildir(username):
    shutil.rmtree(maildir_path(username), ignore_errors=True)


def maildir_files(username, sub="new"):
    d = os.path.join(maildir_path(username), sub)
    try:
        return sorted(os.path.join(d, n) for n in os.listdir(d))
    except FileNotFoundError:
        return []


def wait_maildir(username, count=1, timeout=DELIVERY_TIMEOUT):
    """Wait for count files in ~user/Maildir/new; returns their paths
    (fails the test if fewer arrive, or more)."""
    files = poll(lambda: len(maildir_files(username)) >= count and
                 maildir_files(username), timeout)
    files = maildir_files(username)
    if len(files) != count:
        raise AssertionError(
            "%d file(s) in %s/new after %ds, expected %d"
            % (len(files), maildir_path(username), timeout, count))
    return files


def mbox_path(username):
    return os.path.join(MAIL_DIR, username)


def reset_mbox(username, create=True):
    """Remove /var/mail/USER and its dotlock; with create, leave an empty
    one as useradd's CREATE_MAIL_SPOOL does (owner USER, group mail,
    0660)."""
    path = mbox_path(username)
    for p in (path, path + ".lock"):
        try:
            os.unlink(p)
        except FileNotFoundError:
            pass
    if create:
        pw = user(username)
        try:
            gid = grp.getgrnam("mail").gr_gid
        except KeyError:
            gid = pw.pw_gid
        fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o660)
        os.fchown(fd, pw.pw_uid, gid)
        os.fchmod(fd, 0o660)
        os.close(fd)


def read_file(path):
    with open(path, "rb") as f:
        return f.read()


def wait_stable_file(path, marker, timeout=DELIVERY_TIMEOUT):
    """Wait until the file contains marker and stops changing (an mbox is
    appended in place, unlike a Maildir file); returns its bytes."""
    def ready():
        try:
            data = read_file(path)
        except FileNotFoundError:
            return None
        if marker not in data:
            return None
        time.sleep(0.3)
        return data if read_file(path) == data else None
    data = poll(ready, timeout)
    if not data:
        raise AssertionError("%r did not arrive in %s within %ds"
                             % (marker, path, timeout))
    return data


def spool_files_containing(spool, marker):
    """Files anywhere in the spool whose content holds marker."""
    hits = []
    for dirpath, _, filenames in os.walk(spool):
        for name in filenames:
            path = os.path.join(dirpath, name)
            try:
                if os.path.isfile(path) and not os.path.islink(path) \
                        and marker in read_file(path):
                    hits.append(path)
            except OSError:
                pass
    return hits


# --------------------------------------------------------------------------
# the headers the daemon prepends

RECEIVED_RE = re.compile(
    r"Received: from (?P<helo>[^ \n]+) \((?P<rdns>localhost|unknown) "
    r"\[(?P<ip>[0-9a-fA-F.:]+)\]\)\n"
    r"\tby (?P<host>[^ \n]+) \(Posthaste\) "
    r"with (?P<with>SMTP|ESMTP|ESMTPS|ESMTPA|ESMTPSA) id (?P<id>[^ \n]+)\n"
    r"\tfor <(?P<rcpt>[^>\n]+)>;\n"
    r"\t(?P<date>[^\n]+)\n")


def local_hostnames():
    names = {socket.gethostname(), socket.getfqdn()}
    try:
        with open("/etc/mailname") as f:
            names.add(f.read().strip())
    except OSError:
        pass
    return names


def split_delivery(data, sender, rcpt, helo, msgid, ip="127.0.0.1"):
    """Check the block the daemon prepends to a delivered message --

        Return-Path: <SENDER>
        Delivered-To: RCPT
        Received: from HELO (RDNS [IP])
        \\tby HOSTNAME (Posthaste) with ESMTP id MSGID
        \\tfor <RCPT>;
        \\tDATE

    -- and return the rest (the message as delivered)."""
    import email.utils
    text = data.decode("utf-8", "surrogateescape")
    head = "Return-Path: <%s>\nDelivered-To: %s\n" % (sender, rcpt)
    if not text.startswith(head):
        raise AssertionError("delivered message starts %r, expected %r"
                             % (text[:120], head))
    text = text[len(head):]
    m = RECEIVED_RE.match(text)
    if not m:
        raise AssertionError("no well-formed Received header after "
                             "Delivered-To: %r" % text[:300])
    if m.group("helo") != helo:
        raise AssertionError("Received: from %r, expected the HELO name %r"
                             % (m.group("helo"), helo))
    if m.group("ip") != ip:
        raise AssertionError("Received: [%s], expected [%s]"
                             % (m.group("ip"), ip))
    if m.group("host") not in local_hostnames():
        raise AssertionError("Received: by %r, expected one of %s"
                             % (m.group("host"), sorted(local_hostnames())))
    if m.group("id") != msgid:
        raise AssertionError("Received: id %r, expected the queue id %r"
                             % (m.group("id"), msgid))
    if m.group("rcpt") != rcpt:
        raise AssertionError("Received: for <%s>, expected <%s>"
                             % (m.group("rcpt"), rcpt))
    try:
        when = email.utils.parsedate_to_datetime(m.group("date"))
    except (TypeError, ValueError):
        when = None
    if when is None or when.tzinfo is None:
        raise AssertionError("Received: date %r is not an RFC 5322 date "
                             "with a zone" % m.group("date"))
    if abs(time.time() - when.timestamp()) > 300:
        raise AssertionError("Received: date %r is not now"
                             % m.group("date"))
    return text[m.end():].encode("utf-8", "surrogateescape")


def check_owner_mode(path, username, mode=None):
    st = os.stat(path)
    pw = user(username)
    if st.st_uid != pw.pw_uid:
        try:
            owner = pwd.getpwuid(st.st_uid).pw_name
        except KeyError:
            owner = str(st.st_uid)
        raise AssertionError("%s is owned by %s, expected %s"
                             % (path, owner, username))
    if mode is not None and (st.st_mode & 0o7777) != mode:
        raise AssertionError("%s has mode %04o, expected %04o"
                             % (path, st.st_mode & 0o7777, mode))


def unique_marker(tag="msg"):
    return "posthaste-%s-%d-%d" % (tag, os.getpid(), time.monotonic_ns())

