"""
Manual pages and the Debian package.

test_manpages_lint: every page in man/ is "mandoc -Tlint" clean (apart
from cross-references to pages that are not installed yet).  Skipped,
with the reason, only when mandoc is missing (mk/deps.sh installs it).
test_manpages_groff: groff, which man(1) uses on Debian, renders every
page without a warning (an mdoc macro name at the start of a .%T once
swallowed smtpd(8)'s last reference and its footer).

test_make_install_staged: "make install" into a DESTDIR stages the
programs, the mailq and newaliases links and their manual pages (links to
sendmail(8)).

test_debian_package copies the committed tree (plus debian/), builds it
with "dpkg-buildpackage -us -uc -b", runs lintian on the .deb (any E: line
fails), checks the package's metadata and files (the debconf question for
root's alias, the manual page links), and runs the package's own programs
from the unpacked .deb: its smtpd on its /etc/smtpd.conf (listener moved
to a free port, spool in a temporary directory), and a message submitted
with its sendmail must be delivered to /var/mail/USER.  It does not
install the package, which would make Posthaste the machine's MTA (and
remove another one).  test_postinst_root_alias runs the postinst's
set_root_alias on a copy of the aliases file.

With POSTHASTE_PACKAGE_TEST=1 it also installs the package with apt-get
(when no other MTA is installed, or POSTHASTE_PACKAGE_TEST=replace-mta to
let apt remove it), noninteractively and with no answer to the debconf
question, runs the installed daemon the same way, checks mailq, answers
the question with dpkg-reconfigure (root's alias lands in /etc/aliases),
and purges the package again.
"""

import glob
import os
import shutil
import subprocess
import tempfile
import time

from fixture import (REPO, TEST_USER1, free_port, mbox_path,
                     poll, read_file, user, skip, unique_marker)
import fixture

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


def test_manpages_groff():
    if shutil.which("groff") is None:
        skip("groff is not installed (mk/deps.sh installs lintian, which "
             "needs it)")
    pages = sorted(glob.glob(os.path.join(REPO, "man", "*.[58]")))
    for page in pages:
        r = run(["groff", "-mandoc", "-Tutf8", "-ww", "-z", page])
        assert r.returncode == 0 and r.text.strip() == "", \
            "groff on %s:\n%s" % (page, r.text)
    # the last reference and the footer of smtpd(8) are there
    r = subprocess.run(["groff", "-mandoc", "-Tutf8", "-P-c",
                        os.path.join(REPO, "man", "smtpd.8")],
                       stdout=subprocess.PIPE, stderr=subprocess.DEVNULL)
    text = r.stdout.decode("utf-8", "replace")
    assert "RFC 3464" in text, "smtpd(8): RFC 3464 reference missing"
    assert text.rstrip().splitlines()[-1].split()[0] in ("BSD", "Linux",
                                                          "Debian"), \
        "smtpd(8): no footer: %r" % text[-300:]


def test_make_install_staged():
    """make install's script with a DESTDIR: programs, the mailq and
    newaliases links, and their manual pages linked to sendmail(8)."""
    dest = tempfile.mkdtemp(prefix="posthaste-install.")
    try:
        env = dict(os.environ, OBJDIR=os.path.dirname(fixture.BINDIR))
        r = run(["sh", os.path.join(REPO, "mk", "install.sh"), dest,
                 "/usr/sbin", "/usr/bin", "/usr/share/man", "/etc",
                 "/usr/libexec/posthaste"], env=env)
        assert r.returncode == 0, r.text
        for prog in ("mailq", "newaliases"):
            link = os.path.join(dest, "usr/bin", prog)
            assert os.readlink(link) == "/usr/sbin/sendmail", link
            page = os.path.join(dest, "usr/share/man/man8", prog + ".8")
            assert os.readlink(page) == "sendmail.8", \
                "%s is not a link to sendmail.8" % page
            assert os.path.isfile(page), "%s dangles" % page
    finally:
        shutil.rmtree(dest, ignore_errors=True)


def postinst_function(name):
    """The text of a shell function of debian/posthaste.postinst."""
    text = read_file(os.path.join(REPO, "debian",
                                  "posthaste.postinst")).decode()
    start = text.index("\n%s()\n" % name) + 1
    end = text.index("\n}\n", start) + 3
    return text[start:end]


def test_postinst_root_alias():
    """The debconf answer becomes "root: NAME" in /etc/aliases: replacing
    an entry, before the commented sample, or appended; anything but
    names and addresses (a program, a file) is refused."""
    func = postinst_function("set_root_alias")
    sample = read_file(os.path.join(REPO, "etc", "aliases")).decode()
    tmp = tempfile.mkdtemp(prefix="posthaste-postinst.")
    try:
        aliases = os.path.join(tmp, "aliases")
        script = func.replace("/etc/aliases", aliases).replace(
            "newaliases >", "true >")

        def answer(value, text):
            with open(aliases, "w") as f:
                f.write(text)
            r = run(["sh", "-c", script + '\nset_root_alias "$1"\n', "sh",
                     value])
            assert r.returncode == 0, r.text
            return open(aliases).read(), r.text

        text, _ = answer("alice", sample)
        roots = [ln for ln in text.splitlines() if ln.startswith("root:")]
        assert roots == ["root:\talice"], roots
        assert "#root:" in text and len(text.splitlines()) == \
            len(sample.splitlines()) + 1
        text, _ = answer("bob, carol@example.test", text)
        roots = [ln for ln in text.splitlines() if ln.startswith("root:")]
        assert roots == ["root:\tbob, carol@example.test"], roots
        text, _ = answer("dave", "postmaster: root\n")
        assert text == "postmaster: root\nroot:\tdave\n", text
        for bad in ('"|/bin/sh -c x"', "/etc/passwd", ":include:/x",
                    "a; rm -rf /", "alice\nroot: x"):
            text, out = answer(bad, "postmaster: root\n")
            assert text == "postmaster: root\n", (bad, text)
            assert "left alone" in out, out
    finally:
        shutil.rmtree(tmp, ignore_errors=True)


def lintian_errors(deb):
    """lintian's E: lines for the package (warnings are listed in the
    issue note, not failed on)."""
    r = run(["lintian", "--allow-root", deb], timeout=600)
    return [ln for ln in r.text.splitlines() if ln.startswith("E:")], r.text


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
    for prog in ("mailq", "newaliases"):
        link = "./usr/share/man/man8/%s.8.gz -> sendmail.8.gz" % prog
        assert link in files, "%s missing from the package" % link
    # debconf: the question for root's alias, and its config script
    control = run(["dpkg-deb", "-I", deb]).text
    for member in ("config", "templates", "postinst"):
        assert " %s" % member in control, "no DEBIAN/%s" % member
    templates = run(["dpkg-deb", "-I", deb, "templates"]).text
    assert "Template: posthaste/root_address" in templates, templates


def wait_delivery(marker):
    """The package's default configuration delivers to /var/mail/USER
    (Debian Policy 11.6), where mail(1) looks."""
    def found():
        try:
            return marker.encode() in read_file(mbox_path(TEST_USER1))
        except FileNotFoundError:
            return False
    return poll(found, timeout=20)


def start_daemon(smtpd, conf_src, tmp, spool=None, sock=None, aliases=None):
    """The daemon on a copy of conf_src, listening on a free port (and
    with aliases in place of /etc/aliases, which the package's postinst
    would have installed)."""
    text = open(conf_src).read()
    if aliases:
        text = text.replace("file:/etc/aliases", "file:" + aliases)
    port = free_port()
    text = text.replace("listen on localhost",
                        "listen on 127.0.0.1 port %d" % port)
    if spool:
        text = 'spool "%s"\nsocket "%s"\n' % (spool, sock) + text
        # not installed: the machine may have no /etc/aliases (the
        # package's postinst makes it); use the tree's sample
        aliases = os.path.join(tmp, "aliases")
        shutil.copy(os.path.join(REPO, "etc", "aliases"), aliases)
        text = text.replace("/etc/aliases", aliases)
    conf = os.path.join(tmp, "smtpd.conf")
    with open(conf, "w") as f:
        f.write(text)
    log = open(os.path.join(tmp, "smtpd.log"), "wb")
    proc = subprocess.Popen([smtpd, "-d", "-f", conf, "-P",
                             os.path.join(tmp, "smtpd.pid")], stdout=log,
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
    for tool in ("dpkg-buildpackage", "dh", "git", "lintian"):
        if shutil.which(tool) is None:
            skip("%s is not installed (mk/deps.sh installs it)" % tool)
    mode = os.environ.get("POSTHASTE_PACKAGE_TEST", "")
    work = tempfile.mkdtemp(prefix="posthaste-pkg.")
    try:
        deb = build_package(work)
        errors, report = lintian_errors(deb)
        assert not errors, "lintian:\n" + report
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
                sock=os.path.join(tmp, "smtpd.sock"),
                aliases=os.path.join(root, "usr/share/posthaste/aliases"))
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
        # the package writes /etc/aliases (root's alias) and
        # /etc/mailname, which purge leaves: put them back as found
        saved = {p: read_file(p) if os.path.exists(p) else None
                 for p in ("/etc/aliases", "/etc/mailname")}
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
            # no answer (noninteractive): root's mail stays in
            # /var/mail/root; an answer given later becomes the alias
            r = run(["debconf-set-selections"], input=(
                "posthaste posthaste/root_address string %s\n"
                % TEST_USER1).encode())
            assert r.returncode == 0, r.text
            r = run(["dpkg-reconfigure", "-fnoninteractive", PKG],
                    timeout=300)
            assert r.returncode == 0, r.text
            roots = [ln for ln in read_file("/etc/aliases").decode()
                     .splitlines() if ln.startswith("root:")]
            assert roots == ["root:\t%s" % TEST_USER1], roots
        finally:
            r = run(["apt-get", "purge", "-y", PKG],
                    env=dict(os.environ, DEBIAN_FRONTEND="noninteractive"))
            for p, data in saved.items():
                if data is None:
                    if os.path.exists(p):
                        os.unlink(p)
                else:
                    with open(p, "wb") as f:
                        f.write(data)
            assert r.returncode == 0, r.text
    finally:
        shutil.rmtree(work, ignore_errors=True)
