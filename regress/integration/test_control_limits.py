"""
The control socket against greedy local users (issue 16, items 1 and 2):
a client that pipelines requests without reading the answers costs the
control process a bounded amount of memory and is dropped; idle
connections are closed, one uid holds only so many, root is always
served, and sendmail leaves the message offline when the daemon does
not answer in time rather than hanging.
"""

import os
import pwd
import select
import signal
import shutil
import subprocess
import tempfile
import time

import fixture
from fixture import (as_user, capture_unix_client, TEST_ROOT, Daemon, binary, ensure_test_user, poll,
                     proc_status, proc_title)

TIMEOUT = 180
MAILNAME = "example.test"
CONF_EXTRA = 'mailname "%s"\n' % MAILNAME
# users of their own: the per-uid cap is counted per user
USERS = ["phlim1", "phlim2", "phlim3", "phlim4"]
for _name in USERS:
    ensure_test_user(_name)

MAX_CLIENTS = 64	# control.c
PER_UID = 16		# CONTROL_MAX_PER_UID
ROOT_RESERVE = 16	# CONTROL_ROOT_RESERVE
IDLE_TIMEOUT = 10	# CONTROL_IDLE_TIMEOUT
OFFLINE_RESCAN = 10	# smtpd.c OFFLINE_RESCAN_SECS
# the helpers run as test users, who cannot read root's own python
PYTHON = "/usr/bin/python3"




def ctl(d, *args, username=None, timeout=20):
    return subprocess.run(
        [binary("smtpctl"), "-s", d.socket_path] + list(args),
        stdin=subprocess.DEVNULL, capture_output=True, timeout=timeout,
        preexec_fn=as_user(username) if username else None)


def control_pid(d):
    for pid in d.children():
        if (proc_title(pid) or "").startswith("smtpd: control"):
            return pid
    raise AssertionError("no control process among %s" % d.children())


def rss_kb(pid):
    return int(proc_status(pid)["VmRSS"].split()[0])


def captured_request(*args):
    """The bytes smtpctl sends for a command (header and request), taken
    from a socket of our own: the test needs no copy of the protocol's
    numbers and follows any change to them."""
    tmp = tempfile.mkdtemp(prefix="ctlcap.", dir=TEST_ROOT)
    path = os.path.join(tmp, "s")
    try:
        data = capture_unix_client(path, [binary("smtpctl"), "-s", path] +
                                   list(args))
    finally:
        shutil.rmtree(tmp, ignore_errors=True)
    assert len(data) >= 20, "smtpctl sent %d bytes" % len(data)
    return data


# A client run as a user: pipelines COUNT copies of a request for at most
# SECONDS (or until the daemon has taken nothing for a second) without
# reading a byte, then says how much it got out and keeps the socket
# until told to go.
FLOOD = r"""
import os, socket, sys, time
path, count, seconds = sys.argv[1], int(sys.argv[2]), float(sys.argv[3])
req = bytes.fromhex(sys.argv[4])
s = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
s.connect(path)
s.setblocking(False)
buf = req * count
off = 0
end = time.monotonic() + seconds
progress = time.monotonic()
while off < len(buf) and time.monotonic() < end:
    try:
        off += s.send(buf[off:off + 65536])
        progress = time.monotonic()
    except BlockingIOError:
        if time.monotonic() - progress > 1:
            break
        time.sleep(0.01)
    except OSError:
        break
print("sent %d" % (off // len(req)), flush=True)
sys.stdin.readline()
# dropped?  the daemon's end is closed once what it had queued is read
s.setblocking(True)
s.settimeout(5)
try:
    while s.recv(1 << 20):
        pass
    print("closed", flush=True)
except socket.timeout:
    print("open", flush=True)
except OSError:
    print("closed", flush=True)
"""

# A user's idle connections: opens N, says how many the daemon kept (a
# refused one is answered and closed at once), then on each line from
# stdin says how many are still open.
HOLD = r"""
import select, socket, sys, time
path, n = sys.argv[1], int(sys.argv[2])
socks = []
for _ in range(n):
    s = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
    s.settimeout(5)
    try:
        s.connect(path)
    except OSError:
        break
    socks.append(s)
def still_open():
    time.sleep(0.5)
    kept = 0
    for s in socks:
        r, _, _ = select.select([s], [], [], 0)
        if not r:
            kept += 1
            continue
        try:
            s.setblocking(False)
            while True:
                data = s.recv(65536)
                if not data:
                    break
        except BlockingIOError:
            kept += 1
        except OSError:
            pass
    return kept
print("kept %d" % still_open(), flush=True)
for line in sys.stdin:
    print("kept %d" % still_open(), flush=True)
"""


def run_as(username, script, *args):
    if not os.access(PYTHON, os.X_OK):
        fixture.skip("%s is needed to run clients as users" % PYTHON)
    return subprocess.Popen(
        [PYTHON, "-c", script] + [str(a) for a in args],
        stdin=subprocess.PIPE, stdout=subprocess.PIPE, text=True,
        preexec_fn=as_user(username))


def read_line(p, timeout=30):
    r, _, _ = select.select([p.stdout], [], [], timeout)
    assert r, "helper said nothing in %ds" % timeout
    return p.stdout.readline().strip()


def stop(p):
    if p.poll() is None:
        p.kill()
    p.wait()


def test_pipelined_requests_do_not_grow_control():
    """50 000 'show stats' pipelined by a user who never reads: control's
    RSS stays small, smtpctl from another user and from root still
    answers, and the flooding client is dropped."""
    req = captured_request("show", "stats")
    with Daemon(conf_extra=CONF_EXTRA) as d:
        pid = control_pid(d)
        before = rss_kb(pid)
        flood = run_as(USERS[0], FLOOD, d.socket_path, 50000, 20, req.hex())
        try:
            line = read_line(flood, 40)
            assert line.startswith("sent "), line
            sent = int(line.split()[1])
            peak = rss_kb(pid)
            for _ in range(25):
                time.sleep(0.2)
                peak = max(peak, rss_kb(pid))
            print("control RSS %d kB before, %d kB peak; %d requests got "
                  "in (of 50000)" % (before, peak, sent))
            assert peak - before < 8 * 1024, \
                "control grew from %d to %d kB" % (before, peak)
            assert sent < 50000, \
                "every request was read without a reply read"
            # others are served meanwhile
            r = ctl(d, "show", "stats", username=USERS[1])
            assert r.returncode == 0, r.stderr
            r = ctl(d, "show", "status")
            assert r.returncode == 0 and b"mda:" in r.stdout, r.stderr
            # the flooder is dropped once idle (or not draining)
            assert poll(lambda: "uid %d" % pwd.getpwnam(USERS[0]).pw_uid
                        in d.log() and ("idle for" in d.log() or
                                        "not read in" in d.log()),
                        timeout=60), d.log_tail()
            flood.stdin.write("\n")
            flood.stdin.flush()
            assert read_line(flood, 30) == "closed"
        finally:
            stop(flood)


def test_idle_connections_do_not_lock_out_root_or_users():
    """Users hold all the connections they can: each uid gets at most
    PER_UID, users together leave root a reserve (smtpctl answers root
    at once), a user refused is told so at once, sendmail refused that
    way leaves the message offline without waiting, and the idle
    connections are closed after the idle timeout."""
    with Daemon(conf_extra=CONF_EXTRA) as d:
        holders = []
        try:
            for name in USERS[:3]:
                p = run_as(name, HOLD, d.socket_path, MAX_CLIENTS)
                holders.append(p)
                kept = int(read_line(p).split()[1])
                assert kept == PER_UID, \
                    "%s holds %d connections" % (name, kept)
            # 48 = MAX_CLIENTS - ROOT_RESERVE user connections now
            t0 = time.monotonic()
            r = ctl(d, "show", "status")
            assert r.returncode == 0 and b"mda:" in r.stdout, r.stderr
            assert time.monotonic() - t0 < 5, "root waited"
            t0 = time.monotonic()
            r = ctl(d, "show", "stats", username=USERS[3])
            assert r.returncode != 0 and b"too many" in r.stderr, \
                (r.returncode, r.stderr)
            assert time.monotonic() - t0 < 5, "a refused user waited"
            # sendmail: not served, so the message goes offline at once
            t0 = time.monotonic()
            r = subprocess.run(
                [binary("sendmail"), "-C", d.conf_path,
                 "%s@%s" % (USERS[0], MAILNAME)],
                input=b"Subject: busy\n\nbusy\n", capture_output=True,
                timeout=30, preexec_fn=as_user(USERS[3]), cwd="/",
                env={"PATH": "/usr/bin:/bin",
                     "HOME": pwd.getpwnam(USERS[3]).pw_dir})
            took = time.monotonic() - t0
            assert r.returncode == 0, r.stderr
            offline = os.path.join(d.spool, "offline")
            assert any(os.stat(os.path.join(offline, f)).st_uid ==
                       pwd.getpwnam(USERS[3]).pw_uid
                       for f in os.listdir(offline)), os.listdir(offline)
            assert took < 5, "sendmail took %.1fs" % took
            # sendmail -bs: an SMTP refusal, not control's binary answer
            r = subprocess.run(
                [binary("sendmail"), "-C", d.conf_path, "-bs"],
                input=b"QUIT\r\n", capture_output=True, timeout=30,
                preexec_fn=as_user(USERS[3]), cwd="/",
                env={"PATH": "/usr/bin:/bin",
                     "HOME": pwd.getpwnam(USERS[3]).pw_dir})
            assert r.stdout.startswith(b"421 "), (r.stdout, r.stderr)
            # idle connections are closed after the timeout
            time.sleep(IDLE_TIMEOUT + 2)
            for p in holders:
                p.stdin.write("\n")
                p.stdin.flush()
                kept = int(read_line(p).split()[1])
                assert kept == 0, "%d idle connections kept" % kept
            r = ctl(d, "show", "stats", username=USERS[3])
            assert r.returncode == 0, r.stderr
        finally:
            for p in holders:
                stop(p)


def test_sendmail_goes_offline_when_the_daemon_does_not_answer():
    """The control process stopped (SIGSTOP): sendmail does not wait for
    ever but leaves the message in the offline directory within the
    greeting timeout; sendmail -bs says 421.  Once the daemon answers
    again, the running daemon picks the file up."""
    with Daemon(conf_extra=CONF_EXTRA) as d:
        pid = control_pid(d)
        env = {"PATH": "/usr/bin:/bin",
               "HOME": pwd.getpwnam(USERS[0]).pw_dir}
        os.kill(pid, signal.SIGSTOP)
        try:
            # both wait out the same greeting timeout: run them together
            t0 = time.monotonic()
            bs = subprocess.Popen(
                [binary("sendmail"), "-C", d.conf_path, "-bs"],
                stdin=subprocess.PIPE, stdout=subprocess.PIPE,
                stderr=subprocess.PIPE, preexec_fn=as_user(USERS[0]),
                cwd="/", env=env)
            r = subprocess.run(
                [binary("sendmail"), "-C", d.conf_path,
                 "%s@%s" % (USERS[1], MAILNAME)],
                input=b"Subject: stuck\n\nstuck\n", capture_output=True,
                timeout=40, preexec_fn=as_user(USERS[0]), cwd="/", env=env)
            took = time.monotonic() - t0
            out, err = bs.communicate(b"QUIT\r\n", timeout=40)
            assert r.returncode == 0, r.stderr
            offline = os.path.join(d.spool, "offline")
            assert len(os.listdir(offline)) == 1, os.listdir(offline)
            assert took < 20, "sendmail took %.1fs" % took
            assert out.startswith(b"421 "), (out, err)
        finally:
            os.kill(pid, signal.SIGCONT)
        r = ctl(d, "show", "status")
        assert r.returncode == 0, r.stderr
        # picked up while the daemon runs, not only at the next start
        assert poll(lambda: not os.listdir(offline), timeout=OFFLINE_RESCAN
                    + 20), "offline file left: %s" % d.log_tail()
        assert poll(lambda: "submitted, queued as" in d.log()), \
            d.log_tail()
