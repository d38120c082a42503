"""
DKIM signing by the daemon (issue 18, part 2), end to end.

The real daemon signs mail we originate (here: clients on loopback,
authenticated or not, and sendmail) whose From: domain has keys in the
"dkim sign" table; the keys are made by "smtpctl dkim keygen" and held by
the keys process alone.  Each delivered message carries an rsa-sha256 and
an ed25519-sha256 signature, and both verify with two independent
verifiers: dkimpy and OpenDKIM's opendkim-testmsg (the key records served
by DNS, test_dkim_codec.py's helpers); a body changed after delivery
fails both.  Mail from another domain is not signed; a key rotated in the
table is used after "smtpctl update table", without a restart.
"""

import os
import re
import subprocess

import fixture
from fixture import (TEST_USER1, Daemon, SMTPConnection, maildir_files,
                     poll, reset_maildir, unique_marker)
from test_dkim_codec import (DOMAIN, dkimpy_verify, keygen, need_dkimpy,
                             opendkim_verify, records, tamper, tmpdir)

TIMEOUT = 30

CONF = """\
spool "@TMP@/spool"
socket "@TMP@/smtpd.sock"
table dkimkeys file:%(table)s
dkim sign <dkimkeys>
listen on 127.0.0.1 port @PORT@
action "local" maildir "~/Maildir"
match from any for domain "example.test" action "local"
"""


def write_table(path, entries):
    with open(path, "w") as f:
        for domain, value in entries:
            f.write("%s %s\n" % (domain, value))


def send(port, from_addr, marker, body="Hello.\r\n"):
    with SMTPConnection(port) as c:
        assert c.command("EHLO sign.test").code == 250
        assert c.command("MAIL FROM:<%s>" % from_addr).code == 250
        assert c.command("RCPT TO:<%s@example.test>" % TEST_USER1).code \
            == 250
        assert c.command("DATA").code == 354
        c.send(("From: Someone <%s>\r\nTo: <%s@example.test>\r\n"
                "Subject: %s\r\nDate: Mon, 07 Dec 2026 07:00:00 +0000\r\n"
                "Message-ID: <%s@%s>\r\nMIME-Version: 1.0\r\n"
                "Content-Type: text/plain; charset=utf-8\r\n\r\n%s.\r\n"
                % (from_addr, TEST_USER1, marker, marker,
                   from_addr.split("@")[1], body)).encode())
        r = c.reply()
        assert r.code == 250, r
        c.command("QUIT")


def delivered(marker):
    """the delivered message with marker, CRLF line ends"""
    def find():
        for p in maildir_files(TEST_USER1):
            with open(p, "rb") as f:
                data = f.read()
            if marker.encode() in data:
                return data
        return None
    data = poll(find, TIMEOUT)
    assert data, "%s not delivered" % marker
    return data.replace(b"\r\n", b"\n").replace(b"\n", b"\r\n")


def signatures(msg):
    return re.findall(rb"(?im)^dkim-signature:([^\r\n]*(?:\r\n[ \t][^\r\n]*)*)",
                      msg)


def daemon_conf(d, entries):
    table = os.path.join(d, "dkimkeys")
    write_table(table, entries)
    os.chmod(d, 0o755)
    os.chmod(table, 0o644)
    return table, CONF % {"table": table}


def test_signed_rsa_and_ed25519_verify_with_dkimpy_and_opendkim():
    need_dkimpy()
    rsa, ed = keygen("rsa"), keygen("ed25519")
    d = tmpdir()
    _, conf = daemon_conf(d, [(DOMAIN, "%s:%s, %s:%s" % (
        rsa[1], rsa[0], ed[1], ed[0]))])
    reset_maildir(TEST_USER1)
    with Daemon(conf=conf) as dm:
        m1 = unique_marker("dkim")
        send(dm.port, "alice@" + DOMAIN, m1,
             body="Caf\u00e9 body line  \r\n\r\n\r\n")
        m2 = unique_marker("dkim-sub")
        send(dm.port, "bob@news." + DOMAIN, m2)	# a subdomain: parent's key
        m3 = unique_marker("nodkim")
        send(dm.port, "carol@elsewhere.test", m3)
        msg1, msg2, msg3 = delivered(m1), delivered(m2), delivered(m3)
    keys = records("rsa", "ed25519")
    for msg in (msg1, msg2):
        sigs = signatures(msg)
        assert len(sigs) == 2, msg[:2000]
        assert b"a=rsa-sha256" in sigs[0] + sigs[1]
        assert b"a=ed25519-sha256" in sigs[0] + sigs[1]
        assert all(b"c=relaxed/relaxed" in s and b" l=" not in s
                   for s in sigs)
        assert dkimpy_verify(msg, keys) == [True, True], msg[:3000]
        assert dkimpy_verify(tamper(msg), keys) == [False, False]
    assert signatures(msg3) == []
    res = opendkim_verify({"ours": msg1, "sub": msg2,
                           "tampered": tamper(msg1)}, keys)
    assert res["ours"][0] == 0, res["ours"]
    assert res["sub"][0] == 0, res["sub"]
    assert res["tampered"][0] != 0, res["tampered"]


def test_key_rotated_without_restart():
    need_dkimpy()
    rsa, ed = keygen("rsa"), keygen("ed25519")
    d = tmpdir()
    table, conf = daemon_conf(d, [(DOMAIN, "%s:%s" % (rsa[1], rsa[0]))])
    reset_maildir(TEST_USER1)
    with Daemon(conf=conf) as dm:
        m1 = unique_marker("before")
        send(dm.port, "alice@" + DOMAIN, m1)
        msg1 = delivered(m1)
        sigs = signatures(msg1)
        assert len(sigs) == 1 and b"s=" + rsa[1].encode() in sigs[0], \
            msg1[:1500]
        write_table(table, [(DOMAIN, "%s:%s" % (ed[1], ed[0]))])
        r = subprocess.run([fixture.binary("smtpctl"), "-s", dm.socket_path,
                            "update", "table", "dkimkeys"],
                           stdout=subprocess.PIPE, stderr=subprocess.STDOUT)
        assert r.returncode == 0, r.stdout
        assert poll(lambda: "dkim: 1 signing key" in dm.log() and
                    dm.log().count("dkim: 1 signing key") >= 2, TIMEOUT), \
            dm.log_tail()
        m2 = unique_marker("after")
        send(dm.port, "alice@" + DOMAIN, m2)
        msg2 = delivered(m2)
        sigs = signatures(msg2)
        assert len(sigs) == 1 and b"a=ed25519-sha256" in sigs[0], sigs
        assert dkimpy_verify(msg2, records("ed25519")) == [True]
