"""
The spool at start-up.  The spool is flat: queue/MSGID is a committed
message, then its envelope when it has one recipient, then a footer that
says how long each is (the queue writes it last, so it ends every
committed file); queue/EVPID (MSGID and eight more hex digits) is an
envelope of a message with several recipients, or a newer copy of one
that changed after the commit.  A restart delivers what was committed,
exactly the message and nothing of what follows it; a message without a
valid footer, with a footer whose mac does not verify under the spool's
key (a tail rewritten by someone without it: a worker taken over still
holds its file), or with an envelope that does not validate is moved to
corrupt/ and never acted on; an envelope without its message (a commit
that never finished: the message is renamed in last) and a message
without envelopes are removed; leftovers of an interrupted envelope
update go; an envelope file wins over the copy in its message.  A spool
written before footers existed (no queue/.format) is taken over.
"""

import contextlib
import hashlib
import hmac
import os
import re
import shutil
import struct
import subprocess
import tempfile
import time

from fixture import (TEST_ROOT, Daemon, binary, ensure_test_user,
                     maildir_files, reset_maildir, unique_marker,
                     wait_maildir)
from test_diskfull import CONF, USER, transaction

FOOTER = re.compile(rb"#posthaste-spool 1 body=(\d{20}) envelope=(\d{6}) "
                    rb"mac=[0-9a-f]{64}\n\Z")
FOOTER_LEN = 130
QUEUE_FILES = [".format", ".key"]	# besides messages and envelopes


def send(port, marker):
    r = transaction(port, marker)
    assert r.code == 250, r


def split(data):
    """A committed message file: (message, envelope text)."""
    m = FOOTER.search(data[-FOOTER_LEN:])
    assert m, "no footer at the end: %r" % data[-FOOTER_LEN:]
    body, env = int(m.group(1)), int(m.group(2))
    assert body + env + FOOTER_LEN == len(data), "footer does not add up"
    return data[:body], data[body:body + env].decode()


def spool_key(spool):
    return open(os.path.join(spool, "queue", ".key"), "rb").read()


def footer(body, env, key):
    """What the queue writes after a message of body bytes and its
    envelope text env: sizes and the mac under the spool's key."""
    mac = hmac.new(key, b"posthaste spool footer v1" +
                   struct.pack(">QI", body, len(env)) + env,
                   hashlib.sha256).hexdigest()
    return b"#posthaste-spool 1 body=%020d envelope=%06d mac=%s\n" % (
        body, len(env), mac.encode())


def committed(key, body, envtext=""):
    env = envtext.encode()
    return body + env + footer(len(body), env, key)


def ctl(d, *args):
    return subprocess.run([binary("smtpctl"), "-s", d.socket_path] +
                          list(args), check=True, capture_output=True,
                          text=True).stdout


@contextlib.contextmanager
def fresh_spool():
    """A spool directory of its own, removed afterwards."""
    ensure_test_user(USER)
    reset_maildir(USER)
    top = tempfile.mkdtemp(prefix="spool.", dir=TEST_ROOT)
    os.chmod(top, 0o755)
    try:
        yield os.path.join(top, "spool")
    finally:
        shutil.rmtree(top, ignore_errors=True)


def one_queued(spool, marker):
    """Queue one message with delivery paused: its id, the message, the
    envelope text, the envelope id and the file's stat."""
    d = Daemon(conf=CONF.format(spool=spool))
    with d:
        ctl(d, "pause", "mda")
        send(d.port, marker)
    queue = os.path.join(spool, "queue")
    names = sorted(os.listdir(queue))
    msgs = [n for n in names if len(n) == 8]
    assert len(msgs) == 1 and names == sorted(QUEUE_FILES + msgs), \
        "one file per single-recipient message expected: %s" % names
    path = os.path.join(queue, msgs[0])
    body, envtext = split(open(path, "rb").read())
    evpid = re.search(r"\nid: ([0-9a-f]{16})\n", envtext).group(1)
    return msgs[0], body, envtext, evpid, os.stat(path)


def test_spool_entries_at_start():
    with fresh_spool() as spool:
        good = unique_marker("good")
        msgid, body, envtext, evpid, st = one_queued(spool, good)
        assert good.encode() in body and good not in envtext
        assert envtext.startswith("version: 1\n") and \
            ("id: " + msgid) in envtext, envtext
        evsuffix = evpid[8:]
        queue = os.path.join(spool, "queue")

        def plant(name, data):
            path = os.path.join(queue, name)
            with open(path, "wb" if isinstance(data, bytes) else "w") as f:
                f.write(data)
            os.chown(path, st.st_uid, st.st_gid)
            os.chmod(path, 0o600)

        def retext(newid, marker):
            return (body.replace(good.encode(), marker.encode()),
                    envtext.replace(msgid + evsuffix, newid + evsuffix))

        bad, torn, orphan, lone = "0badc0de", "07042e00", "0fa11ed0", \
            "01011e00"
        # a committed message whose envelope carries an unknown key
        bad_marker = unique_marker("corrupt")
        b, e = retext(bad, bad_marker)
        key = spool_key(spool)
        plant(bad, committed(key, b, e.replace(
            "\nend: ok", "\nmda: /bin/sh -c evil\nend: ok")))
        # a tail rewritten by someone without the key (a worker taken over
        # still holds its file): a valid envelope, sizes that add up
        forged, forged_marker = "0f0e9ed0", unique_marker("forged")
        b, e = retext(forged, forged_marker)
        plant(forged, committed(bytes(32), b, e))
        # a message whose footer is gone, or was never written
        torn_marker = unique_marker("torn")
        b, e = retext(torn, torn_marker)
        plant(torn, committed(key, b, e)[:-1])
        # an envelope whose message never made it into queue/
        orphan_marker = unique_marker("orphan")
        plant(orphan + evsuffix, retext(orphan, orphan_marker)[1])
        # a message without envelopes, an interrupted update
        plant(lone, committed(key, retext(lone, orphan_marker)[0]))
        plant(msgid + evsuffix + ".tmp", "version: 1\n")

        d2 = Daemon(conf=CONF.format(spool=spool))
        with d2:
            files = wait_maildir(USER, 1)
            got = open(files[0], "rb").read()
            assert got.endswith(body), "delivered is not the message"
            assert b"posthaste-spool" not in got and \
                b"\nversion: 1\n" not in got
            # the queue is empty once the good one is delivered
            deadline = time.time() + 10
            while time.time() < deadline and \
                    sorted(os.listdir(queue)) != QUEUE_FILES:
                time.sleep(0.05)
            left = sorted(os.listdir(queue))
            assert left == QUEUE_FILES, "left in queue/: %s" % left
            corrupt = os.listdir(os.path.join(spool, "corrupt"))
            for name in (bad, torn, forged):
                assert any(n.startswith(name + ".") for n in corrupt), \
                    "%s not in corrupt/: %s" % (name, corrupt)
            log = d2.log()
            assert "message %s is corrupt (invalid envelope)" % bad in log, log
            assert "message %s is corrupt (no valid footer)" % torn in log, \
                log
            assert "message %s is corrupt (footer does not verify)" % \
                forged in log, log
            assert "never committed" in log, log
            time.sleep(0.5)
            delivered = b"".join(open(f, "rb").read()
                                 for f in maildir_files(USER))
            assert len(maildir_files(USER)) == 1, "more than one delivered"
            for m in (bad_marker, torn_marker, orphan_marker, forged_marker):
                assert m.encode() not in delivered


def test_envelope_file_wins_over_the_copy_in_its_message():
    """A retry or pause rewrites the envelope as a file of its own; after
    a restart that file, not the copy committed with the message, says
    what happens (here: 7 tries, next one in a day, so nothing now)."""
    with fresh_spool() as spool:
        marker = unique_marker("later")
        msgid, body, envtext, evpid, st = one_queued(spool, marker)
        later = int(time.time()) + 86400
        newer = re.sub(r"\n(tries|nexttry): \d+(?=\n)", "", envtext)
        newer = newer.replace("\nend: ok", "\ntries: 7\nnexttry: %d\nend: ok"
                              % later)
        path = os.path.join(spool, "queue", evpid)
        with open(path, "w") as f:
            f.write(newer)
        os.chown(path, st.st_uid, st.st_gid)
        os.chmod(path, 0o600)
        d = Daemon(conf=CONF.format(spool=spool))
        with d:
            out = ""
            deadline = time.time() + 5
            while time.time() < deadline and evpid not in out:
                out = ctl(d, "show", "queue")
                time.sleep(0.1)
            line = [l for l in out.splitlines() if evpid in l]
            assert line and "tries=7" in line[0], out
            shown = ctl(d, "show", "envelope", evpid)
            assert "tries: 7" in shown, shown
            time.sleep(1)
            assert maildir_files(USER) == [], "delivered before its time"
            # removing it takes the message and the envelope file
            ctl(d, "remove", evpid)
            deadline = time.time() + 5
            queue = os.path.join(spool, "queue")
            while time.time() < deadline and \
                    sorted(os.listdir(queue)) != QUEUE_FILES:
                time.sleep(0.05)
            assert sorted(os.listdir(queue)) == QUEUE_FILES, \
                os.listdir(queue)


def test_spool_without_footers_is_taken_over():
    """A spool of the earlier format (the message file is the message,
    every envelope a file, no queue/.format): the queue gives each
    message its footer (once: not again after a conversion that was cut
    short), marks the spool, and delivers exactly the message."""
    with fresh_spool() as spool:
        marker = unique_marker("legacy")
        msgid, body, envtext, evpid, st = one_queued(spool, marker)
        queue = os.path.join(spool, "queue")
        os.unlink(os.path.join(queue, ".format"))
        # a second one that a conversion cut short had given its footer
        again = unique_marker("again")
        msgid2 = "0a6a1200"
        evpid2 = msgid2 + evpid[8:]
        body2 = body.replace(marker.encode(), again.encode())
        files = {msgid: body, evpid: envtext.encode(),
                 msgid2: committed(spool_key(spool), body2),
                 evpid2: envtext.replace(evpid, evpid2).encode()}
        for n, data in files.items():
            with open(os.path.join(queue, n), "wb") as f:
                f.write(data)
            os.chown(os.path.join(queue, n), st.st_uid, st.st_gid)
        d = Daemon(conf=CONF.format(spool=spool))
        with d:
            got = [open(f, "rb").read() for f in wait_maildir(USER, 2)]
            assert any(g.endswith(body) for g in got), got
            assert any(g.endswith(body2) for g in got), got
            assert not any(b"posthaste-spool" in g for g in got)
            assert open(os.path.join(queue, ".format")).read() == "2\n"
        assert len(maildir_files(USER)) == 2
