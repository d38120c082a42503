"""
Log lines in the shape log analysers know: one per received message
(from=, size=, nrcpt=, client=) and one per delivery attempt (to=,
relay=, delay=, delays=a/b/c/d, dsn=, status=), with the queue id.
"""

import re

from fixture import Daemon, SMTPConnection, ensure_test_user, wait_maildir

USER = "phctl"


def test_received_and_delivered_lines():
    ensure_test_user(USER)
    with Daemon() as d:
        with SMTPConnection(d.port) as c:
            c.command("EHLO log.test")
            c.command("MAIL FROM:<a@example.test>")
            c.command("RCPT TO:<%s@example.test>" % USER)
            c.command("DATA")
            c.send(b"Subject: log\r\n\r\nx\r\n.\r\n")
            msgid = c.reply().text.split()[-1]
            c.command("QUIT")
        pat = (r"%s[0-9a-f]{8}: to=<%s@example\.test>, relay=local, "
               r"delay=\d+\.\d\d, delays=0/\d+\.\d\d/\d+\.\d\d/\d+\.\d\d, "
               r"tries=1, dsn=2\.0\.0, status=sent \(delivered\)"
               % (msgid, USER))
        import time
        deadline = time.monotonic() + 10
        while not re.search(pat, d.log()):
            assert time.monotonic() < deadline, \
                "no delivery line like %r in:\n%s" % (pat, d.log_tail())
            time.sleep(0.1)
        assert re.search(r"%s: from=<a@example\.test>, size=\d+, nrcpt=1, "
                         r"client=127\.0\.0\.1" % msgid, d.log()), \
            d.log_tail()
