"""
What the programs accept, the manual pages document (issue 15, item 17:
auth-plaintext, auth-cram-md5, smtpctl monitor, encrypt, update table and
pause/resume smtp were accepted but undocumented).

The keywords are read from the sources, so a keyword added later without
its manual entry fails here too: every option parse_listen() knows has an
".It Ic" entry in smtpd.conf(5); every command smtpctl's usage lists has
an ".It Cm" entry in smtpctl(8); every option letter smtpd's getopt takes
has an ".It Fl" entry in smtpd(8).  The pages' mandoc lint is
test_package::test_manpages_lint.
"""

import os
import re

from fixture import REPO

TIMEOUT = 30


def read(*path):
    with open(os.path.join(REPO, *path)) as f:
        return f.read()


def function_body(source, name):
    """The text of C function `name` (from its definition line to the
    closing brace at the start of a line)."""
    m = re.search(r"^%s\(" % re.escape(name), source, re.M)
    assert m, "no function %s" % name
    end = source.index("\n}\n", m.end())
    return source[m.start():end]


def it_entries(page, macro):
    """The words of each ".It <macro> ..." line of a manual page."""
    out = []
    for line in page.splitlines():
        if line.startswith(".It "):
            words = line.split()
            if macro in words:
                out.append(words)
    return out


def test_listen_options_documented():
    body = function_body(read("config", "parse_rules.c"), "parse_listen")
    keywords = set(re.findall(r'tok_is_keyword\(t, "([a-z0-9-]+)"\)', body))
    keywords.discard("on")		# "listen on", the statement itself
    assert {"auth", "auth-plaintext", "auth-cram-md5", "tls"} <= keywords, \
        keywords
    documented = set()
    for words in it_entries(read("man", "smtpd.conf.5"), "Ic"):
        documented.update(words)
    missing = sorted(k for k in keywords if k not in documented)
    assert not missing, "listen options without an .It Ic entry in " \
        "smtpd.conf(5): %s" % ", ".join(missing)


def smtpctl_commands():
    """(verb, argument) pairs from smtpctl's usage text, e.g. ("pause",
    "smtp"), ("monitor", None)."""
    body = function_body(read("programs", "smtpctl.c"), "usage")
    text = "".join(re.findall(r'"((?:[^"\\]|\\.)*)"', body))
    text = text.split("commands:", 1)[1].replace("\\n", "\n")
    pairs = []
    for chunk in re.split(r"\n| {2,}", text):
        words = chunk.split()
        if not words or words[0].startswith("print"):
            continue
        verb = words[0]
        if len(words) == 1 or words[1].startswith("[") or \
                words[1].isupper():
            pairs.append((verb, None))
            continue
        for arg in words[1].split("|"):
            if arg.isupper() or arg.startswith("-"):
                continue
            pairs.append((verb, arg))
    return pairs


def test_smtpctl_commands_documented():
    pairs = smtpctl_commands()
    for want in (("monitor", None), ("encrypt", None), ("update", "table"),
                 ("pause", "smtp"), ("resume", "smtp"), ("show", "queue")):
        assert want in pairs, (want, pairs)
    entries = it_entries(read("man", "smtpctl.8"), "Cm")
    missing = []
    for verb, arg in pairs:
        if not any(verb in words and (arg is None or arg in words)
                   for words in entries):
            missing.append(verb + (" " + arg if arg else ""))
    assert not missing, "smtpctl commands without an .It Cm entry in " \
        "smtpctl(8): %s" % ", ".join(missing)


def test_smtpd_options_documented():
    m = re.search(r'getopt\(argc, argv, "([^"]+)"\)',
                  read("smtpd", "smtpd.c"))
    assert m
    letters = [c for c in m.group(1) if c.isalpha() and c != "h"]
    assert "V" in letters and "P" in letters, letters
    page = read("man", "smtpd.8")
    missing = [c for c in letters
               if not re.search(r"^\.It Fl %s\b" % c, page, re.M)]
    assert not missing, "smtpd options without an .It Fl entry in " \
        "smtpd(8): %s" % ", ".join(missing)
    synopsis = page.split(".Sh SYNOPSIS", 1)[1].split(".Sh", 1)[0]
    assert "Fl P Ar pidfile" in synopsis and "V" in synopsis, synopsis


def test_rc_scripts_use_the_pid_file():
    """The FreeBSD script tells rc.subr the pid file the daemon writes;
    both BSD scripts put it in /var/run (there is no /run); the systemd
    unit names the default."""
    fbsd = read("etc", "rc.d", "posthaste.freebsd")
    m = re.search(r'^pidfile="([^"]+)"', fbsd, re.M)
    assert m and m.group(1) == "/var/run/smtpd.pid", fbsd
    assert "-P ${pidfile}" in fbsd, fbsd
    obsd = read("etc", "rc.d", "posthaste.openbsd")
    assert re.search(r'^daemon_flags=".*-P \$\{pidfile\}', obsd, re.M), obsd
    unit = read("etc", "posthaste.service")
    assert re.search(r"^ExecStart=/usr/sbin/smtpd -d -P /run/smtpd.pid$",
                     unit, re.M), unit
