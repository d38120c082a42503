"""
test_privsep.py -- a worker taken over by a client cannot make the queue
deliver anywhere lookup did not choose (smtpd(8), "Processes").

The daemon here is obj/regress/smtpd-forge: the real smtpd, linked with
a worker that rewrites every destination it hands to the queue into a
command run as a user of our choosing (POSTHASTE_FORGE="user command"),
as a worker whose process a client took over could.  Lookup's seal
(common/destmac.c) does not cover the forgery, so the queue must refuse
the envelope before anything is queued or run.
"""

import os

import fixture
from fixture import (TEST_USER1, Daemon, SMTPConnection, unique_marker,
                     reset_maildir, wait_maildir)

TIMEOUT = 60


def forge_binary():
    path = os.path.join(fixture.BINDIR, "..", "regress", "smtpd-forge")
    assert os.path.exists(path), \
        "%s missing: build it with 'make unit'" % path
    return os.path.normpath(path)


def send(c, rcpt, marker):
    assert c.command("EHLO forge.test").code == 250
    assert c.command("MAIL FROM:<a@example.test>").code == 250
    assert c.command("RCPT TO:<%s>" % rcpt).code == 250
    assert c.command("DATA").code == 354
    c.send(("Subject: %s\r\n\r\nbody\r\n.\r\n" % marker).encode())
    return c.reply()


def test_forge_build_without_forgery_delivers():
    """The test build is the real daemon: without POSTHASTE_FORGE it
    delivers like obj/bin/smtpd (so the refusal below is the seal's)."""
    reset_maildir(TEST_USER1)
    marker = unique_marker("forge")
    with Daemon(program=forge_binary()) as d:
        with SMTPConnection(d.port) as c:
            assert send(c, "%s@example.test" % TEST_USER1, marker).code \
                == 250
            c.command("QUIT")
        files = wait_maildir(TEST_USER1, 1)
        assert marker.encode() in open(files[0], "rb").read()


def test_forged_destination_is_refused():
    """The worker turns a Maildir recipient into "run touch as phtest1":
    the queue finds no valid seal, says so and stops the daemon; nothing
    is queued, acknowledged or run."""
    reset_maildir(TEST_USER1)
    marker = unique_marker("forge")
    proof = "/tmp/posthaste-forged-%s" % marker
    d = Daemon(program=forge_binary(), env={
        "POSTHASTE_FORGE": "%s /usr/bin/touch %s" % (TEST_USER1, proof)})
    d.start()
    try:
        with SMTPConnection(d.port) as c:
            try:
                r = send(c, "%s@example.test" % TEST_USER1, marker)
                code = r.code
            except (OSError, fixture.SMTPError):
                code = None	# the daemon went down under us
        assert code != 250, "a forged destination was acknowledged"
        status = d.wait_exit(20)
        assert status not in (None, 0), \
            "daemon still up (or exited 0) after a forged envelope"
        assert "did not seal" in d.log(), d.log_tail()
        assert not os.path.exists(proof), "the forged command ran"
        queued = [n for n in os.listdir(os.path.join(d.spool, "queue"))
                  if not n.startswith(".")]
        assert queued == [], "forged message queued: %s" % queued
        assert fixture.maildir_files(TEST_USER1) == []
    finally:
        d.stop(expect_status=None)
        if os.path.exists(proof):
            os.unlink(proof)
