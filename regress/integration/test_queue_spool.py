"""
The spool at start-up.  The spool is flat: queue/MSGID is a message,
queue/EVPID (MSGID and eight more hex digits) one of its envelopes.  A
restart delivers what was committed; an envelope whose content does not
validate is moved to corrupt/ and never acted on; an envelope without
its message (a commit that never finished: the message is renamed in
last) and a message without envelopes are removed; leftovers of an
interrupted envelope update go.
"""

import os
import shutil
import subprocess
import tempfile
import time

from fixture import (TEST_ROOT, Daemon, binary, ensure_test_user,
                     maildir_files, reset_maildir, unique_marker,
                     wait_maildir)
from test_diskfull import CONF, USER, transaction


def send(port, marker):
    r = transaction(port, marker)
    assert r.code == 250, r


def test_spool_entries_at_start():
    ensure_test_user(USER)
    reset_maildir(USER)
    top = tempfile.mkdtemp(prefix="spool.", dir=TEST_ROOT)
    os.chmod(top, 0o755)
    spool = os.path.join(top, "spool")
    try:
        good = unique_marker("good")
        d = Daemon(conf=CONF.format(spool=spool))
        with d:
            subprocess.run([binary("smtpctl"), "-s", d.socket_path,
                            "pause", "mda"], check=True, capture_output=True)
            send(d.port, good)
        queue = os.path.join(spool, "queue")
        names = sorted(os.listdir(queue))
        msgs = [n for n in names if len(n) == 8]
        envs = [n for n in names if len(n) == 16]
        assert len(msgs) == 1 and len(envs) == 1 and \
            envs[0].startswith(msgs[0]), "flat spool expected: %s" % names
        body = open(os.path.join(queue, msgs[0]), "rb").read()
        envtext = open(os.path.join(queue, envs[0])).read()
        st = os.stat(os.path.join(queue, envs[0]))

        def plant(name, data):
            path = os.path.join(queue, name)
            with open(path, "wb" if isinstance(data, bytes) else "w") as f:
                f.write(data)
            os.chown(path, st.st_uid, st.st_gid)
            os.chmod(path, 0o600)

        bad, orphan, lone = "0badc0de", "0fa11ed0", "01011e00"
        # a committed message whose envelope carries an unknown key
        bad_marker = unique_marker("corrupt")
        plant(bad, body.replace(good.encode(), bad_marker.encode()))
        plant(bad + envs[0][8:], envtext.replace(envs[0], bad + envs[0][8:])
              .replace("\nend: ok", "\nmda: /bin/sh -c evil\nend: ok"))
        # an envelope whose message never made it into queue/
        orphan_marker = unique_marker("orphan")
        plant(orphan + envs[0][8:],
              envtext.replace(envs[0], orphan + envs[0][8:]))
        os.makedirs(os.path.join(spool, "incoming"), exist_ok=True)
        # a message without envelopes, an interrupted update
        plant(lone, body.replace(good.encode(), orphan_marker.encode()))
        plant(envs[0] + ".tmp", "version: 1\n")

        d2 = Daemon(conf=CONF.format(spool=spool))
        with d2:
            files = wait_maildir(USER, 1)
            assert good.encode() in open(files[0], "rb").read()
            # the queue is empty once the good one is delivered
            deadline = time.time() + 10
            while time.time() < deadline and os.listdir(queue):
                time.sleep(0.05)
            left = os.listdir(queue)
            assert left == [], "left in queue/: %s" % left
            corrupt = os.listdir(os.path.join(spool, "corrupt"))
            assert any(n.startswith(bad + envs[0][8:]) for n in corrupt), \
                "corrupt envelope not in corrupt/: %s" % corrupt
            log = d2.log()
            assert "is corrupt" in log, log
            assert "never committed" in log, log
            time.sleep(0.5)
            delivered = b"".join(open(f, "rb").read()
                                 for f in maildir_files(USER))
            assert len(maildir_files(USER)) == 1, "more than one delivered"
            assert bad_marker.encode() not in delivered
            assert orphan_marker.encode() not in delivered
    finally:
        shutil.rmtree(top, ignore_errors=True)
