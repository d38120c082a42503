"""
test_milter_rspamd.py -- rspamd (Debian's package) as a mail filter in
front of the daemon: its proxy worker in milter mode, scanning itself
(self_scan), on a loopback port, started by the test with a minimal
configuration of its own (no Redis, no controller or normal worker, no
module that would look anything up on the network).

  - a GTUBE message is refused with rspamd's own reply ("554 5.7.1 Gtube
    pattern", SMFIR_REPLYCODE at the end of message) and not delivered;
  - a normal message is delivered with the fields rspamd's milter_headers
    module adds (the routines configured below: Debian's default is
    none), X-Rspamd-Queue-Id being our queue id (macro i).

What rspamd sends was checked against Postfix 3.7 with the same
configuration (regress/milter/POSTFIX_NOTES.md).  Skipped when rspamd is
not installed.
"""

import grp
import os
import pwd
import re
import shutil
import signal
import subprocess
import time

import fixture
from fixture import TEST_USER1, Daemon
from milterlib import (Session, assert_reply, maildir_with, message,
                       milter_conf, port_free, tmpdir, wait_delivered,
                       wait_port)

TIMEOUT = 60
PORT = 15430		# rspamd's proxy worker
DNS_PORT = 15431	# nothing answers there: no query leaves the machine
RCPT1 = "%s@example.test" % TEST_USER1
SENDER = "a@example.org"
GTUBE = "XJS*C4JDBQADN1.NSBN3*2IDNEN*GTUBE-STANDARD-ANTI-UBE-TEST-EMAIL*C.34X"

CONF = """\
options {
  pidfile = "@DIR@/rspamd.pid";
  filters = "";
  explicit_modules = [];
  dns { nameserver = ["127.0.0.1:@DNS@"]; timeout = 1s; retransmits = 1; }
  control_socket = "@DIR@/rspamd.sock mode=0600";
  hs_cache_dir = "@DIR@/";
  cache_file = "@DIR@/symbols.cache";
  dynamic_conf = "@DIR@/dynamic";
  history_file = "@DIR@/history";
  stats_file = "@DIR@/stats.ucl";
  # a short list: compiling Debian's 9600 suffixes takes 15 s
  url_tld = "@DIR@/tld.dat";
  tempdir = "@DIR@";
}
logging { type = "file"; filename = "@DIR@/rspamd.log"; level = "info"; }
actions { reject = 15; add_header = 6; greylist = 4; }
modules { path = "${PLUGINSDIR}"; }
milter_headers {
  use = ["x-spamd-result", "x-rspamd-server", "x-rspamd-queue-id",
         "x-spam-level", "x-spam-status", "x-rspamd-action"];
  skip_local = false;
  skip_authenticated = false;
}
worker "rspamd_proxy" {
  bind_socket = "127.0.0.1:@PORT@";
  milter = yes;
  timeout = 30s;
  upstream "local" { default = yes; self_scan = yes; }
  count = 1;
}
"""


class Rspamd:
    def __init__(self):
        self.dir = tmpdir("rspamd.")
        self.proc = None

    def start(self):
        exe = shutil.which("rspamd") or "/usr/bin/rspamd"
        if not os.path.exists(exe):
            fixture.skip("rspamd is not installed (mk/deps.sh installs it)")
        with open(os.path.join(self.dir, "rspamd.conf"), "w") as f:
            f.write(CONF.replace("@DIR@", self.dir)
                    .replace("@PORT@", str(PORT))
                    .replace("@DNS@", str(DNS_PORT)))
        with open(os.path.join(self.dir, "tld.dat"), "w") as f:
            f.write("com\norg\nnet\ntest\nexample\n")
        argv = [exe, "-f", "-c", os.path.join(self.dir, "rspamd.conf")]
        try:
            pw = pwd.getpwnam("_rspamd")
            os.chown(self.dir, pw.pw_uid, grp.getgrnam("_rspamd").gr_gid)
            argv += ["-u", "_rspamd", "-g", "_rspamd"]
        except KeyError:
            argv += ["-i"]	# no user of its own: as root
        port_free(PORT)
        self.out = open(os.path.join(self.dir, "stdout"), "ab")
        self.proc = subprocess.Popen(argv, stdin=subprocess.DEVNULL,
                                     stdout=self.out,
                                     stderr=subprocess.STDOUT,
                                     start_new_session=True)
        try:
            wait_port(PORT, self.proc, timeout=30)
        except fixture.FixtureError:
            raise fixture.FixtureError("rspamd did not start: %s"
                                       % self.log()[-2000:])
        return self

    def log(self):
        try:
            with open(os.path.join(self.dir, "rspamd.log"), "rb") as f:
                return f.read().decode("utf-8", "replace")
        except FileNotFoundError:
            return ""

    def stop(self):
        """The main process ends its workers on SIGTERM; anything of its
        process group still there after that is killed."""
        if self.proc is None:
            return
        pgid = self.proc.pid
        if self.proc.poll() is None:
            self.proc.send_signal(signal.SIGTERM)
            try:
                self.proc.wait(10)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait(10)
        deadline = time.monotonic() + 5
        while self.group_alive(pgid) and time.monotonic() < deadline:
            time.sleep(0.1)
        if self.group_alive(pgid):
            os.killpg(pgid, signal.SIGKILL)
        self.proc = None
        self.out.close()
        shutil.rmtree(self.dir, ignore_errors=True)

    @staticmethod
    def group_alive(pgid):
        try:
            os.killpg(pgid, 0)
            return True
        except ProcessLookupError:
            return False

    def __enter__(self):
        return self.start()

    def __exit__(self, *exc):
        self.stop()
        return False


def conf():
    return milter_conf([("rspamd", PORT, "")], ["rspamd"])


def test_gtube_rejected_with_rspamds_reply():
    fixture.reset_maildir(TEST_USER1)
    marker = fixture.unique_marker("gtube")
    with Rspamd() as rs, Daemon(conf=conf()) as d:
        with Session(d.port) as s:
            s.ehlo()
            t = s.transaction(SENDER, [RCPT1], message(
                marker, body="%s\r\n%s\r\n" % (GTUBE, marker)))
            assert_reply(t["dot"], 554, "5.7.1 Gtube pattern",
                         "end of data of a GTUBE message")
            # the session goes on
            assert_reply(s.cmd("RSET"), 250, what="RSET")
        assert "gtube reject pattern has been found" in rs.log(), \
            rs.log()[-1500:]
        time.sleep(1)
        assert maildir_with(marker) == [], "the GTUBE message arrived"


def test_normal_message_gets_rspamds_headers():
    fixture.reset_maildir(TEST_USER1)
    marker = fixture.unique_marker("ham")
    with Rspamd(), Daemon(conf=conf()) as d:
        with Session(d.port) as s:
            s.ehlo()
            t = s.transaction(SENDER, [RCPT1], message(marker))
            assert_reply(t["dot"], 250, what="end of data")
            qid = fixture.queue_id(t["dot"])
        got, = wait_delivered(marker)
    head, _, body = got.decode("utf-8", "replace").partition("\n\n")
    fields = re.findall(r"^([A-Za-z-]+): ?(.*(?:\n\t.*)*)$", head, re.M)
    added = dict(f for f in fields if f[0].startswith(("X-Spam",
                                                       "X-Rspamd")))
    assert re.match(r"^default: False \[-?[0-9.]+ / 15\.00\]",
                    added.get("X-Spamd-Result", "")), added
    assert added.get("X-Rspamd-Action") == "no action", added
    assert re.match(r"^No, score=-?[0-9.]+$",
                    added.get("X-Spam-Status", "")), added
    assert added.get("X-Rspamd-Server"), added
    assert added.get("X-Rspamd-Queue-Id") == qid, (added, qid)
    # added at the end of the header, after the message's own fields
    names = [f[0] for f in fields]
    assert names.index("Date") < min(names.index(n) for n in added), names
    assert body == "line one %s\n\nline three  \n" % marker, body
