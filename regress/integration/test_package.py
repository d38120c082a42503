"""
Manual pages and the Debian package.

test_manpages_lint: every page in man/ is "mandoc -Tlint" clean (apart
from cross-references to pages that are not installed yet).  Skipped,
with the reason, only when mandoc is missing (mk/deps.sh installs it).

test_debian_package copies the committed tree (plus debian/), builds it
with "dpkg-buildpackage -us -uc -b", checks the package's metadata and
files, and runs the package's own programs from the unpacked .deb: its
smtpd on its /etc/smtpd.conf (listener moved to a free port, spool in a
temporary directory), and a message submitted with its sendmail must be
delivered.  It does not install the package, which would make Posthaste
the machine's MTA (and remove another one).

With POSTHASTE_PACKAGE_TEST=1 it also installs the package with apt-get
(when no other MTA is installed, or POSTHASTE_PACKAGE_TEST=replace-mta to
let apt remove it), runs the installed daemon the same way, checks
mailq, and purges the package again.
"""

import glob
import os
import shutil
import subprocess
import tempfile
import time

from fixture import (REPO, TEST_USER1, free_port, mbox_path, poll,
                     read_file, user, skip, unique_marker)

TIMEOUT = 1200
PKG = "posthaste"


def run(cmd, **kw):
    kw.setdefault("stdout", subprocess.PIPE)
    kw.setdefault("stderr", subprocess.STDOUT)
    r = subprocess.run(cmd, **kw)
    r.text = (r.stdout or b"").decode("utf-8", "replace")
    return r


def test_manpages_lint():
    if shutil.which("mandoc") is None:
        skip("mandoc is not installed (mk/deps.sh installs it)")
    pages = sorted(glob.glob(os.path.join(REPO, "man", "*.[58]")))
    assert len(pages) >= 6, pages
    r = run(["mandoc", "-Tlint"] + pages)
    problems = [ln for ln in r.text.splitlines()
                if "referenced manual not found" not in ln and
                "outdated mandoc.db" not in ln]
    assert not problems, "\n".join(problems)


def installed_mtas():
    r = run(["dpkg-query", "-W",
             "-f=${Package} ${db:Status-Status} ${Provides}\n"])
    return [ln.split()[0] for ln in r.text.splitlines()
            if " installed " in ln + " " and "mail-transport-agent" in ln
            and not ln.startswith(PKG + " ")]


def build_package(work):
    src = os.path.join(work, PKG)
    os.makedirs(src)
    archive = run(["git", "-C", REPO, "archive", "HEAD"])
    assert archive.returncode == 0, archive.text
    r = subprocess.run(["tar", "-x", "-C", src], input=archive.stdout)
    assert r.returncode == 0
    if not os.path.isdir(os.path.join(src, "debian")):
        shutil.copytree(os.path.join(REPO, "debian"),
                        os.path.join(src, "debian"))
    r = run(["dpkg-buildpackage", "-us", "-uc", "-b"], cwd=src,
            timeout=900)
    assert r.returncode == 0, "dpkg-buildpackage failed:\n" + r.text[-3000:]
    debs = glob.glob(os.path.join(work, "%s_*.deb" % PKG))
    assert len(debs) == 1, debs
    return debs[0]


def check_package(deb):
    info = run(["dpkg-deb", "-f", deb, "Provides", "Conflicts", "Replaces"])
    for field in ("Provides", "Conflicts", "Replaces"):
        assert "%s: mail-transport-agent" % field in info.text, info.text
    files = run(["dpkg-deb", "-c", deb]).text
    for path in ("./usr/sbin/smtpd", "./usr/sbin/smtpctl",
                 "./usr/sbin/sendmail", "./usr/bin/mailq",
                 "./usr/bin/newaliases", "./etc/smtpd.conf",
                 "./lib/systemd/system/posthaste.service",
                 "./usr/share/man/man8/sendmail.8.gz",
                 "./usr/share/man/man5/smtpd.conf.5.gz"):
        assert path in files, "%s missing from the package" % path


def wait_delivery(marker):
    """The package's default configuration delivers to /var/mail/USER
    (Debian Policy 11.6), where mail(1) looks."""
    def found():
        try:
            return marker.encode() in read_file(mbox_path(TEST_USER1))
        except FileNotFoundError:
            return False
    return poll(found, timeout=20)


def start_daemon(smtpd, conf_src, tmp, spool=None, sock=None):
    """The daemon on a copy of conf_src, listening on a free port."""
    text = open(conf_src).read()
    port = free_port()
    text = text.replace("listen on localhost",
                        "listen on 127.0.0.1 port %d" % port)
    if spool:
        text = 'spool "%s"\nsocket "%s"\n' % (spool, sock) + text
    conf = os.path.join(tmp, "smtpd.conf")
    with open(conf, "w") as f:
        f.write(text)
    log = open(os.path.join(tmp, "smtpd.log"), "wb")
    proc = subprocess.Popen([smtpd, "-d", "-f", conf], stdout=log,
                            stderr=log, stdin=subprocess.DEVNULL)
    return proc, conf


def submit(sendmail, conf, marker):
    pw = user(TEST_USER1)

    def drop():
        os.setgroups([])
        os.setgid(pw.pw_gid)
        os.setuid(pw.pw_uid)
    return run([sendmail, "-C", conf, TEST_USER1],
               input=("Subject: %s\n\npackaged\n" % marker).encode(),
               preexec_fn=drop, env={"HOME": pw.pw_dir})


def stop(proc):
    proc.terminate()
    try:
        return proc.wait(timeout=15)
    except subprocess.TimeoutExpired:
        proc.kill()
        return proc.wait()


def test_debian_package():
    for tool in ("dpkg-buildpackage", "dh", "git"):
        if shutil.which(tool) is None:
            skip("%s is not installed (mk/deps.sh installs it)" % tool)
    mode = os.environ.get("POSTHASTE_PACKAGE_TEST", "")
    work = tempfile.mkdtemp(prefix="posthaste-pkg.")
    try:
        deb = build_package(work)
        check_package(deb)
        others = installed_mtas()
        tmp = os.path.join(work, "run")
        os.makedirs(tmp)
        os.chmod(work, 0o755)
        os.chmod(tmp, 0o755)
        marker = unique_marker("pkg")
        if mode not in ("1", "replace-mta") or (others and
                                                 mode != "replace-mta"):
            # Do not remove another MTA: run the package's own files.
            root = os.path.join(work, "root")
            assert run(["dpkg-deb", "-x", deb, root]).returncode == 0
            os.chmod(work, 0o755)
            proc, conf = start_daemon(
                os.path.join(root, "usr/sbin/smtpd"),
                os.path.join(root, "etc/smtpd.conf"), tmp,
                spool=os.path.join(tmp, "spool"),
                sock=os.path.join(tmp, "smtpd.sock"))
            try:
                time.sleep(1)
                assert proc.poll() is None, read_file(
                    os.path.join(tmp, "smtpd.log")).decode()
                r = submit(os.path.join(root, "usr/sbin/sendmail"), conf,
                           marker)
                assert r.returncode == 0, r.text
                assert wait_delivery(marker), "not delivered"
            finally:
                assert stop(proc) == 0
            if mode in ("1", "replace-mta"):
                print("note: %s installed; the package was built and its "
                      "files run, but not installed (POSTHASTE_PACKAGE_TEST="
                      "replace-mta lets apt replace it)" % ", ".join(others))
            return
        r = run(["apt-get", "install", "-y", "--no-install-recommends",
                 deb], env=dict(os.environ,
                                DEBIAN_FRONTEND="noninteractive"),
                timeout=600)
        assert r.returncode == 0, "apt-get install failed:\n" + r.text
        try:
            for u in ("_smtpd", "_smtpq"):
                user(u)
            st = os.stat("/var/spool/smtpd/offline")
            assert (st.st_mode & 0o7777) == 0o1777
            assert os.path.exists("/etc/mailname")
            assert os.path.exists("/etc/aliases")
            proc, conf = start_daemon("/usr/sbin/smtpd", "/etc/smtpd.conf",
                                      tmp)
            try:
                time.sleep(1)
                assert proc.poll() is None, read_file(
                    os.path.join(tmp, "smtpd.log")).decode()
                r = submit("/usr/sbin/sendmail", conf, marker)
                assert r.returncode == 0, r.text
                assert wait_delivery(marker), "not delivered"
                r = run(["/usr/bin/mailq"])
                assert r.returncode == 0, r.text
            finally:
                assert stop(proc) == 0
        finally:
            r = run(["apt-get", "purge", "-y", PKG],
                    env=dict(os.environ, DEBIAN_FRONTEND="noninteractive"))
            assert r.returncode == 0, r.text
    finally:
        shutil.rmtree(work, ignore_errors=True)
