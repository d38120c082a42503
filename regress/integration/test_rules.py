"""
test_rules.py -- match rules that smtpd.conf(5) documents, with the real
daemon (issue 15 item 12): each form decides where mail goes, and a mail
just outside it goes elsewhere.

    mail-from "@domain"          every sender of that domain, not its
                                 subdomains
    for domain "*.example"       the subdomains, not the domain itself
    tag NAME                     mail that came in on a listener tagged
                                 NAME (and the session's log line names
                                 the tag)

Two Maildir actions tell the routes apart: "main" (~/Maildir) and
"routed" (~/Routed).
"""

import os
import shutil

from fixture import (Daemon, free_port, poll, smtp_dialog, unique_marker,
                     ensure_test_user)

TIMEOUT = 60
RULES_USER = "phrules"		# of its own: other modules reset phtest1
ensure_test_user(RULES_USER)

HEAD = """\
spool "@TMP@/spool"
socket "@TMP@/smtpd.sock"
smtp workers 1
listen on 127.0.0.1 port @PORT@
action "main" maildir "~/Maildir"
action "routed" maildir "~/Routed"
"""
TAIL = 'match from any for domain "example.test" action "main"\n'


def home():
    return ensure_test_user(RULES_USER).pw_dir


def reset():
    for d in ("Maildir", "Routed"):
        shutil.rmtree(os.path.join(home(), d), ignore_errors=True)


def files_with(folder, marker):
    d = os.path.join(home(), folder, "new")
    try:
        names = os.listdir(d)
    except FileNotFoundError:
        return []
    found = []
    for n in names:
        try:
            with open(os.path.join(d, n), "rb") as f:
                if marker.encode() in f.read():
                    found.append(n)
        except FileNotFoundError:
            pass
    return found


def send(port, sender, rcpt):
    """One message; the RCPT reply code, and the marker it carries."""
    marker = unique_marker("rules")
    replies = smtp_dialog(port, [
        "EHLO rules.test", "MAIL FROM:<%s>" % sender, "RCPT TO:<%s>" % rcpt,
        "DATA", "Subject: %s\r\n\r\n%s\r\n.\r\n" % (marker, marker),
        "QUIT"])
    assert replies[2].code == 250, replies
    return replies[3].code, marker


def check_route(port, sender, rcpt, want):
    """want: "main", "routed" or "refused"."""
    code, marker = send(port, sender, rcpt)
    if want == "refused":
        assert code == 550, "%s -> %s: RCPT %d, expected 550" % (
            sender, rcpt, code)
        return
    assert code == 250, "%s -> %s: RCPT %d, expected 250" % (
        sender, rcpt, code)
    folder = {"main": "Maildir", "routed": "Routed"}[want]
    other = "Routed" if folder == "Maildir" else "Maildir"
    got = poll(lambda: files_with(folder, marker) or files_with(other,
                                                                marker))
    assert files_with(folder, marker), \
        "%s -> %s (port %d) went to ~/%s, expected ~/%s" % (
            sender, rcpt, port, other if got else "nowhere", folder)
    assert not files_with(other, marker)


def test_mail_from_at_domain():
    """smtpd.conf(5)'s own example, and a route: the domain only, not a
    subdomain nor another domain."""
    reset()
    rcpt = "%s@example.test" % RULES_USER
    conf = HEAD + (
        'match from any mail-from "@spam.test" for any reject\n'
        'match from any mail-from "@vip.test" for domain "example.test" '
        'action "routed"\n') + TAIL
    with Daemon(conf=conf) as d:
        check_route(d.port, "bad@spam.test", rcpt, "refused")
        check_route(d.port, "boss@vip.test", rcpt, "routed")
        check_route(d.port, "bad@x.spam.test", rcpt, "main")
        check_route(d.port, "boss@vip.test.example", rcpt, "main")
        check_route(d.port, "someone@other.test", rcpt, "main")


def test_for_domain_wildcard_literal():
    """for domain "*.sub.test": subdomains at any depth, not the domain
    itself nor a name that merely ends the same."""
    reset()
    conf = HEAD + 'match from any for domain "*.sub.test" action "routed"\n'
    with Daemon(conf=conf + TAIL) as d:
        for dom, want in (("a.sub.test", "routed"),
                          ("b.a.sub.test", "routed"),
                          ("sub.test", "refused"),
                          ("xsub.test", "refused"),
                          ("example.test", "main")):
            check_route(d.port, "a@other.test",
                        "%s@%s" % (RULES_USER, dom), want)


def test_listener_tag():
    """match tag FILTERED: the tagged listener's mail only (! tag: the
    rest); the session's log line names the tag."""
    reset()
    tagport = free_port()
    rcpt = "%s@example.test" % RULES_USER
    conf = HEAD + (
        "listen on 127.0.0.1 port %d tag FILTERED\n"
        'match from any tag FILTERED for domain "example.test" '
        'action "routed"\n'
        'match from any ! tag FILTERED mail-from "@spam.test" for any '
        'reject\n'
        % tagport) + TAIL
    with Daemon(conf=conf) as d:
        check_route(tagport, "a@other.test", rcpt, "routed")
        check_route(d.port, "a@other.test", rcpt, "main")
        check_route(d.port, "a@spam.test", rcpt, "refused")
        log = d.log()
        assert "port %d tag=FILTERED" % tagport in log, \
            "no session log line with the tag"
        assert "port %d tag=" % d.port not in log
