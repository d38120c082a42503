"""
test_table_ldap.py -- ldap: shared tables (table/ldap.c) against a real
OpenLDAP slapd, through the real daemon (issue 21).

slapd (Debian's slapd package) is started by this module as the
unprivileged user openldap, with a cn=config directory of its own made
by slapadd -n0 from CONFIG_LDIF (an mdb database in a temporary
directory) on ldap://127.0.0.1:15730, the entries of DATA_LDIF loaded
with slapadd before it starts; it is stopped at the end of the module.
The daemon binds as cn=posthaste,dc=example,dc=org, the one DN the ACL
lets read userPassword.

One daemon for every case:

  - a domain only in LDAP (associatedDomain) is ours, a virtual user
    only in LDAP (mailLocalAddress -> mailRoutingAddress phtest1) is
    delivered, an address not in LDAP is refused 550;
  - "virtual <ldap> userbase <ldap>": a virtual user with its uid, gid
    and home in LDAP (userinfo) is delivered into a vmail tree as the
    vmail user;
  - AUTH PLAIN checks the password against userPassword, which holds
    "{CRYPT}" and a SHA-512 crypt(3) hash: the driver takes the prefix
    off (etc/ldap.conf says so too); "senders <ldap>" lets the user send
    from the addresses of its two "mail" values only (mailaddrmap);
  - smtpctl table lookup shows the answers: the values of two entries
    joined with ", " (alias), uid:gid:home (userinfo), the hash without
    "{CRYPT}"; "*" and "*)(mailLocalAddress=*" find nothing (exit 1);
  - a user name with "*)(" in it is an escaped assertion value: with the
    right password of another user it still fails (pasted raw into the
    filter it would have matched that user); a user name with two
    entries is a temporary failure (454), neither password is taken;
  - an entry added with ldapadd works once the negative answer's ttl
    (1 s) is over;
  - slapd frozen (SIGSTOP): no answer within the table's timeout (2 s),
    the search is abandoned and the recipient gets 451;
  - slapd stopped: the same recipients get 451 (a temporary failure),
    never 550, AUTH 454, and the outage is logged once; slapd started
    again is found by the next attempt of the back-off.

And "smtpd -n" reports a bad ldap configuration file with its file and
line.  Port: 15730 (the ldap owner's range 15730-15739).
"""

import base64
import os
import pwd
import shutil
import signal
import socket
import subprocess
import tempfile
import time

import fixture
from fixture import Daemon, TEST_USER1, poll, run_smtpd, smtp_dialog
from test_smtp_common import sha512_crypt, wait_marker, unique

TIMEOUT = 60

SLAPD = "/usr/sbin/slapd"
SLAPADD = "/usr/sbin/slapadd"
LDAPADD = "/usr/bin/ldapadd"
SLAPD_USER = "openldap"
SLAPD_PORT = 15730
URL = "ldap://127.0.0.1:%d" % SLAPD_PORT
BASE = "dc=example,dc=org"
ROOTDN = "cn=admin," + BASE
ROOTPW = "admin-secret"
BINDDN = "cn=posthaste," + BASE
BINDPW = "posthaste-secret"
PASSWORD = "ldap horse battery"
VMAIL = "phvmail"	# the virtual mailboxes' owner (test_lookup_aliases's)

CONFIG_LDIF = """\
dn: cn=config
objectClass: olcGlobal
cn: config
olcPidFile: @DIR@/slapd.pid

dn: cn=module{0},cn=config
objectClass: olcModuleList
cn: module{0}
olcModulePath: /usr/lib/ldap
olcModuleLoad: back_mdb

dn: cn=schema,cn=config
objectClass: olcSchemaConfig
cn: schema

include: file:///etc/ldap/schema/core.ldif

include: file:///etc/ldap/schema/cosine.ldif

include: file:///etc/ldap/schema/inetorgperson.ldif

include: file:///etc/ldap/schema/nis.ldif

include: file:///etc/ldap/schema/misc.ldif

dn: olcDatabase={-1}frontend,cn=config
objectClass: olcDatabaseConfig
objectClass: olcFrontendConfig
olcDatabase: {-1}frontend

dn: olcDatabase={0}config,cn=config
objectClass: olcDatabaseConfig
olcDatabase: {0}config
olcAccess: {0}to * by * none

dn: olcDatabase={1}mdb,cn=config
objectClass: olcDatabaseConfig
objectClass: olcMdbConfig
olcDatabase: {1}mdb
olcSuffix: @BASE@
olcDbDirectory: @DIR@/db
olcDbMaxSize: 16777216
olcRootDN: @ROOTDN@
olcRootPW: @ROOTPW@
olcAccess: {0}to attrs=userPassword by dn.exact="@BINDDN@" read
  by anonymous auth by * none
olcAccess: {1}to * by * read
"""

DATA_LDIF = """\
dn: @BASE@
objectClass: dcObject
objectClass: organization
dc: example
o: Example

dn: @BINDDN@
objectClass: organizationalRole
objectClass: simpleSecurityObject
cn: posthaste
userPassword: @BINDPW@

dn: ou=domains,@BASE@
objectClass: organizationalUnit
ou: domains

dn: ou=ldapdom.test,ou=domains,@BASE@
objectClass: organizationalUnit
objectClass: domainRelatedObject
ou: ldapdom.test
associatedDomain: ldapdom.test

dn: ou=people,@BASE@
objectClass: organizationalUnit
ou: people

dn: uid=ldapuser,ou=people,@BASE@
objectClass: inetOrgPerson
objectClass: posixAccount
objectClass: inetLocalMailRecipient
uid: ldapuser
cn: LDAP User
sn: User
uidNumber: 5001
gidNumber: 5001
homeDirectory: /var/empty
mailLocalAddress: ldapuser@ldapdom.test
mailRoutingAddress: @USER1@
mail: ldapuser@ldapdom.test
mail: ldap.user@ldapdom.test
userPassword: {CRYPT}@HASH@

dn: cn=team1,ou=people,@BASE@
objectClass: inetOrgPerson
objectClass: inetLocalMailRecipient
cn: team1
sn: Team
mailLocalAddress: team@ldapdom.test
mailRoutingAddress: phtest1

dn: cn=team2,ou=people,@BASE@
objectClass: inetOrgPerson
objectClass: inetLocalMailRecipient
cn: team2
sn: Team
mailLocalAddress: team@ldapdom.test
mailRoutingAddress: phtest2

dn: uid=twin,ou=people,@BASE@
objectClass: inetOrgPerson
objectClass: posixAccount
uid: twin
cn: Twin
sn: One
uidNumber: 5002
gidNumber: 5002
homeDirectory: /var/empty
userPassword: {CRYPT}@HASH@

dn: ou=others,@BASE@
objectClass: organizationalUnit
ou: others

dn: uid=twin,ou=others,@BASE@
objectClass: inetOrgPerson
objectClass: posixAccount
uid: twin
cn: Twin
sn: Two
uidNumber: 5003
gidNumber: 5003
homeDirectory: /var/empty
userPassword: {CRYPT}@HASH@

dn: uid=vuser,ou=people,@BASE@
objectClass: inetOrgPerson
objectClass: posixAccount
objectClass: inetLocalMailRecipient
uid: vuser
cn: Virtual User
sn: User
uidNumber: @VUID@
gidNumber: @VGID@
homeDirectory: @VDIR@
mailLocalAddress: vuser@vmail.test
mailRoutingAddress: vuser
"""

LATER_LDIF = """\
dn: uid=later,ou=people,@BASE@
objectClass: inetOrgPerson
objectClass: inetLocalMailRecipient
uid: later
cn: Later
sn: Later
mailLocalAddress: later@ldapdom.test
mailRoutingAddress: @USER1@
"""

TABLE_CONF = """\
# the ldap: table of test_table_ldap.py
url %(url)s
username %(binddn)s
password %(bindpw)s
basedn %(base)s
pool 2
timeout 2s

domain_filter (&(objectClass=domainRelatedObject)(associatedDomain=%%s))
alias_filter (&(objectClass=inetLocalMailRecipient)(mailLocalAddress=%%s))
alias_attributes mailRoutingAddress
credentials_filter (&(objectClass=posixAccount)(uid=%%s))
credentials_attributes userPassword
userinfo_filter (&(objectClass=posixAccount)(uid=%%s))
userinfo_attributes uidNumber gidNumber homeDirectory
mailaddrmap_filter (&(objectClass=posixAccount)(uid=%%s))
mailaddrmap_attributes mail
"""

CONF = """\
spool "@TMP@/spool"
socket "@TMP@/smtpd.sock"
smtp workers 1
listen on 127.0.0.1 port @PORT@ auth-optional <ldap> auth-plaintext \
    senders <ldap>
table ldap ldap:%(conf)s cache-ttl 1s negative-ttl 1s
action "local" maildir "~/Maildir"
action "ldap" maildir "~/Maildir" virtual <ldap>
action "vmail" maildir "%(vdir)s/%%{dest.domain}/%%{dest.user}" \
    virtual <ldap> userbase <ldap>
match from any for domain "example.test" action "local"
match from any for domain "vmail.test" action "vmail"
match from any for domain <ldap> action "ldap"
"""


def fill(text, **kw):
    for k, v in kw.items():
        text = text.replace("@%s@" % k.upper(), v)
    return text


class Slapd:
    """slapd on 127.0.0.1:15730 as user openldap, its cn=config and mdb
    database in a temporary directory; stop() ends it."""

    def __init__(self, data):
        for prog in (SLAPD, SLAPADD, LDAPADD):
            if not os.path.exists(prog):
                fixture.skip("%s is missing (slapd, ldap-utils)" % prog)
        try:
            self.pw = pwd.getpwnam(SLAPD_USER)
        except KeyError:
            fixture.skip("no user %s (the slapd package makes it)"
                         % SLAPD_USER)
        self.dir = tempfile.mkdtemp(prefix="slapd-", dir="/tmp")
        self.proc = None
        self.log_path = os.path.join(self.dir, "slapd.log")
        self.data = data

    def path(self, name):
        return os.path.join(self.dir, name)

    def write(self, name, text):
        with open(self.path(name), "w") as f:
            f.write(text)
        return self.path(name)

    def run(self, argv, stdin=None):
        r = subprocess.run(argv, input=stdin, stdout=subprocess.PIPE,
                           stderr=subprocess.STDOUT, timeout=20)
        assert r.returncode == 0, "%s: %s" % (" ".join(argv),
                                              r.stdout.decode(errors="replace"))
        return r

    def start(self):
        cfg = self.path("slapd.d")
        os.mkdir(cfg, 0o700)
        os.mkdir(self.path("db"), 0o700)
        conf = self.write("config.ldif", fill(
            CONFIG_LDIF, dir=self.dir, base=BASE, rootdn=ROOTDN,
            rootpw=ROOTPW, binddn=BINDDN))
        data = self.write("data.ldif", self.data)
        self.run([SLAPADD, "-n0", "-F", cfg, "-l", conf])
        self.run([SLAPADD, "-n1", "-F", cfg, "-l", data])
        for root, dirs, files in os.walk(self.dir):
            for n in dirs + files:
                os.chown(os.path.join(root, n), self.pw.pw_uid,
                         self.pw.pw_gid)
        os.chown(self.dir, self.pw.pw_uid, self.pw.pw_gid)
        os.chmod(self.dir, 0o755)
        return self.launch()

    def launch(self):
        """slapd on the directory start() made (again after stop())."""
        cfg = self.path("slapd.d")
        with open(self.log_path, "ab") as log:
            self.proc = subprocess.Popen(
                [SLAPD, "-d", "0", "-u", SLAPD_USER, "-g", SLAPD_USER,
                 "-F", cfg, "-h", URL + "/"],
                stdin=subprocess.DEVNULL, stdout=log, stderr=log,
                start_new_session=True)
        if not poll(self.listening, timeout=10):
            self.stop()
            raise fixture.FixtureError("slapd did not listen on %d: %s"
                                       % (SLAPD_PORT, self.log()))
        return self

    def listening(self):
        if self.proc.poll() is not None:
            raise fixture.FixtureError("slapd exited: %s" % self.log())
        try:
            with socket.create_connection(("127.0.0.1", SLAPD_PORT),
                                          timeout=1):
                return True
        except OSError:
            return False

    def log(self):
        try:
            with open(self.log_path, "rb") as f:
                return f.read().decode("utf-8", "replace")[-2000:]
        except OSError:
            return ""

    def ldapadd(self, ldif):
        self.run([LDAPADD, "-x", "-H", URL, "-D", ROOTDN, "-w", ROOTPW],
                 stdin=ldif.encode())

    def stop(self):
        if self.proc is not None and self.proc.poll() is None:
            self.proc.send_signal(signal.SIGTERM)
            try:
                self.proc.wait(timeout=10)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait(timeout=5)

    def cleanup(self):
        self.stop()
        shutil.rmtree(self.dir, ignore_errors=True)

    def __enter__(self):
        return self.start()

    def __exit__(self, *exc):
        self.cleanup()
        return False


def rcpt(port, address):
    """The reply to RCPT TO:<address>."""
    r = smtp_dialog(port, ["EHLO client.test", "MAIL FROM:<s@client.test>",
                           "RCPT TO:<%s>" % address, "QUIT"])
    return r[3]


def auth_plain(port, user, password, senders=()):
    """The reply to AUTH PLAIN, and then to MAIL FROM with each sender."""
    token = base64.b64encode(("\0%s\0%s" % (user, password)).encode())
    items = ["EHLO client.test", "AUTH PLAIN %s" % token.decode()]
    for sender in senders:
        items += ["MAIL FROM:<%s>" % sender, "RSET"]
    r = smtp_dialog(port, items + ["QUIT"])
    if senders:
        return r[2], [r[3 + 2 * i] for i in range(len(senders))]
    return r[2]


def send(port, address, marker):
    body = ("From: <s@client.test>\r\nTo: <%s>\r\nSubject: %s\r\n\r\n"
            "%s\r\n.\r\n" % (address, marker, marker)).encode()
    r = smtp_dialog(port, ["EHLO client.test", "MAIL FROM:<s@client.test>",
                           "RCPT TO:<%s>" % address, "DATA", body, "QUIT"])
    assert r[3].code == 250 and r[5].code == 250, r


def lookup(d, service, key):
    """smtpctl table lookup ldap SERVICE KEY: (exit status, output)."""
    r = subprocess.run([fixture.binary("smtpctl"), "-s", d.socket_path,
                        "table", "lookup", "ldap", service, key],
                       stdout=subprocess.PIPE, stderr=subprocess.STDOUT,
                       timeout=20, universal_newlines=True)
    return r.returncode, r.stdout.strip()


def table_conf_file(directory):
    path = os.path.join(directory, "ldap.conf")
    with open(path, "w") as f:
        f.write(TABLE_CONF % {"url": URL, "binddn": BINDDN,
                              "bindpw": BINDPW, "base": BASE})
    os.chmod(path, 0o600)	# a password: the parent reads it as root
    return path


def vmail_tree():
    """A directory for the virtual mailboxes, vmail.test's owned by the
    vmail user."""
    vm = fixture.ensure_test_user(VMAIL)
    vdir = tempfile.mkdtemp(prefix="ldap-vmail-", dir="/tmp")
    os.chmod(vdir, 0o755)
    os.mkdir(os.path.join(vdir, "vmail.test"), 0o755)
    os.chown(os.path.join(vdir, "vmail.test"), vm.pw_uid, vm.pw_gid)
    return vm, vdir


def test_ldap_tables():
    """Every case of the module docstring against one slapd and one
    daemon."""
    vm, vdir = vmail_tree()
    data = fill(DATA_LDIF, base=BASE, binddn=BINDDN, bindpw=BINDPW,
                user1=TEST_USER1, hash=sha512_crypt(PASSWORD),
                vuid=str(vm.pw_uid), vgid=str(vm.pw_gid), vdir=vdir)
    try:
        ldap_cases(data, vm, vdir)
    finally:
        shutil.rmtree(vdir, ignore_errors=True)


def ldap_cases(data, vm, vdir):
    with Slapd(data) as s:
        path = table_conf_file(s.dir)
        with Daemon(conf=CONF % {"conf": path, "vdir": vdir}) as d:
            # a domain and a virtual user only in LDAP
            marker = unique("ldap-virtual")
            send(d.port, "ldapuser@ldapdom.test", marker)
            wait_marker(TEST_USER1, marker)
            r = rcpt(d.port, "nobody@ldapdom.test")
            assert r.code == 550, r
            # a virtual user whose uid, gid and home are in LDAP too
            marker = unique("ldap-userbase")
            send(d.port, "vuser@vmail.test", marker)
            new = os.path.join(vdir, "vmail.test", "vuser", "new")
            files = poll(lambda: os.path.isdir(new) and os.listdir(new))
            assert files, "nothing in %s" % new
            st = os.stat(os.path.join(new, files[0]))
            assert st.st_uid == vm.pw_uid, "owned by %d" % st.st_uid
            r = rcpt(d.port, "ldapuser@other.test")
            assert r.code == 550, r

            # what the table answers, as smtpctl shows it: the values of
            # two entries joined, a userinfo, the hash without {CRYPT}
            rc, out = lookup(d, "alias", "team@ldapdom.test")
            assert rc == 0 and sorted(out.split(", ")) == \
                ["phtest1", "phtest2"], (rc, out)
            rc, out = lookup(d, "userinfo", "vuser")
            assert (rc, out) == (0, "%d:%d:%s" % (vm.pw_uid, vm.pw_gid,
                                                  vdir)), (rc, out)
            rc, out = lookup(d, "credentials", "ldapuser")
            assert rc == 0 and out.startswith("$6$"), (rc, out)
            # a key is an assertion value: "*)(" is no wildcard
            rc, out = lookup(d, "alias", "*)(mailLocalAddress=*")
            assert rc == 1, (rc, out)
            rc, out = lookup(d, "alias", "*")
            assert rc == 1, (rc, out)

            # AUTH against userPassword's {CRYPT} hash
            # ... and the sender addresses it may use: both values of
            # "mail" (joined with ", "), no other
            r, mail = auth_plain(d.port, "ldapuser", PASSWORD, senders=(
                "ldap.user@ldapdom.test", "ldapuser@ldapdom.test",
                "other@ldapdom.test"))
            assert r.code == 235, r
            assert [m.code for m in mail] == [250, 250, 553], mail
            r = auth_plain(d.port, "ldapuser", "wrong")
            assert r.code == 535, r
            # the key is an assertion value: "*)(uid=ldapuser" pasted
            # into (&(objectClass=posixAccount)(uid=%s)) would find
            # ldapuser, and his password would do
            r = auth_plain(d.port, "*)(uid=ldapuser", PASSWORD)
            assert r.code == 535, r
            # two entries for one user name: which password is a guess,
            # so neither is taken (a temporary failure, logged)
            r = auth_plain(d.port, "twin", PASSWORD)
            assert r.code == 454, r

            # an entry added later: seen once the negative ttl is over
            r = rcpt(d.port, "later@ldapdom.test")
            assert r.code == 550, r
            s.ldapadd(fill(LATER_LDIF, base=BASE, user1=TEST_USER1))
            assert poll(lambda: rcpt(d.port, "later@ldapdom.test").code
                        == 250, timeout=5), \
                rcpt(d.port, "later@ldapdom.test")

            # slapd frozen: no answer within "timeout 2s", the search is
            # abandoned and the recipient deferred
            s.proc.send_signal(signal.SIGSTOP)
            try:
                start = time.monotonic()
                r = rcpt(d.port, "frozen@ldapdom.test")
                took = time.monotonic() - start
            finally:
                s.proc.send_signal(signal.SIGCONT)
            assert r.code == 451, r
            assert 1.5 < took < 6, took
            assert poll(lambda: rcpt(d.port, "ldapuser@ldapdom.test").code
                        == 250, timeout=5)

            # slapd gone: temporary failures, never "unknown user"
            s.stop()
            for address in ("ldapuser@ldapdom.test", "nobody@ldapdom.test"):
                assert poll(lambda: rcpt(d.port, address).code == 451,
                            timeout=5), rcpt(d.port, address)
            r = auth_plain(d.port, "ldapuser", PASSWORD)
            assert r.code == 454, r
            rc, out = lookup(d, "alias", "ldapuser@ldapdom.test")
            assert rc == 2, (rc, out)

            # back: the next attempt (1 s, 2 s, 4 s ... after the
            # outage began) finds it
            s.launch()
            assert poll(lambda: rcpt(d.port, "ldapuser@ldapdom.test").code
                        == 250, timeout=10), \
                rcpt(d.port, "ldapuser@ldapdom.test")
            log = d.log()
        assert log.count("unreachable") == 1, \
            [ln for ln in log.splitlines() if "unreachable" in ln]
        assert "answers again" in log
        assert "no answer from %s within 2 s" % URL in log
        assert 'credentials search for "twin": more than one entry' in log


BAD_CONFS = [
    # (file text, line, what the error says)
    ("url ldap://127.0.0.1:15730\nbasedn dc=x\nalias_filter (mail=%s)\n",
     3, "alias_attributes"),
    ("url ldap://ldap.example.org\nbasedn dc=x\n", 1, "not an IP address"),
    ("# c\nurl ldap://127.0.0.1\nbasedn dc=x\nsurname x\n", 4,
     "unknown keyword"),
    ("url ldap://127.0.0.1\nbasedn dc=x\ndomain_filter (dc=x)\n", 3,
     "no %s"),
]


def test_ldap_config_errors():
    """smtpd -n names the ldap configuration file and the line."""
    tmp = tempfile.mkdtemp(prefix="ldapconf-", dir="/tmp")
    try:
        for text, line, why in BAD_CONFS:
            path = os.path.join(tmp, "ldap.conf")
            with open(path, "w") as f:
                f.write(text)
            conf = os.path.join(tmp, "smtpd.conf")
            with open(conf, "w") as f:
                f.write(fill(CONF % {"conf": path, "vdir": tmp}, tmp=tmp,
                             port="2525"))
            r = run_smtpd(["-n", "-f", conf])
            assert r.returncode == 1, r.output
            assert "%s:%d: " % (path, line) in r.output, r.output
            assert why in r.output, r.output
        # the example in the sources is a valid configuration
        sample = os.path.join(fixture.REPO, "etc", "ldap.conf")
        with open(conf, "w") as f:
            f.write(fill(CONF % {"conf": sample, "vdir": tmp}, tmp=tmp,
                         port="2525"))
        r = run_smtpd(["-n", "-f", conf])
        assert r.returncode == 0 and "configuration OK" in r.output, \
            r.output
    finally:
        shutil.rmtree(tmp, ignore_errors=True)
