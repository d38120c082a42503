#!/usr/bin/python3
"""authres_read.py: read Authentication-Results headers with python3-authres
(an independent RFC 8601 parser, Debian's python3-authres) and print what
it understood, for regress/unit/test_authres.c to compare with what
common/authres.c meant to write.

Standard input holds one header (folded as written).  Output: the
authserv-id on the first line, then one line per result:
    method=result [reason=TEXT] ptype.property=value ...
Exit status 2 when the module is missing (the test skips), 1 when it
cannot parse the header.
"""
import sys

try:
    import authres
except ImportError:
    sys.exit(2)


def main():
    text = sys.stdin.read()
    try:
        ar = authres.AuthenticationResultsHeader.parse(text)
    except Exception as e:  # any parse failure is the answer "no"
        print("parse error: %s" % e)
        return 1
    print(ar.authserv_id)
    for r in ar.results:
        words = ["%s=%s" % (r.method, r.result)]
        if r.reason is not None:
            words.append("reason=%s" % r.reason)
        for p in r.properties:
            words.append("%s.%s=%s" % (p.type, p.name, p.value))
        print(" ".join(words))
    return 0


if __name__ == "__main__":
    sys.exit(main())
