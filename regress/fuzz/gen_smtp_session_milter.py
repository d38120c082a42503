#!/usr/bin/python3
"""gen_smtp_session_milter.py -- writes the milter seeds of
fuzz_smtp_session.c into regress/fuzz/corpus/smtp_session/milter-*.

A milter input: byte 0 the listener | 4, byte 1 the write size, byte 2
the chain (bit 0 two filters, bits 1-2 and 3-4 on-error tempfail 0,
accept 1, reject 2, quarantine 3, bits 5/6 the parent cannot connect,
bit 7 reuse),
bytes 3-4 the script's length, the script (the filters' answers, see
f_answer() and f_optneg() in the harness), then the client's bytes.
Rerun after changing the script's encoding: python3 THIS."""
import os
import struct

OUT = os.path.join(os.path.dirname(os.path.abspath(__file__)),
                   "corpus", "smtp_session")

CONT, ACCEPT, REJECT, TEMPFAIL, DISCARD, REPLY, PROGRESS, SKIP = \
    0, 3, 4, 5, 6, 7, 8, 9
GARBAGE, CLOSE = 11, 12
ADDH, INSH, CHGH, REPLBODY, ADDRCPT, DELRCPT, CHGFROM, QUAR, ANYPKT = \
    13, 14, 15, 16, 17, 18, 19, 20, 21

# only the end of message asked (NOCONNECT..NODATA, NOUNKNOWN)
EOM_ONLY = 0x37f
ALL_STEPS = 0


def optneg(protocol, actions=0x1ff, symlists=()):
    b = [len(symlists) & 7]
    b += [actions & 0xff, actions >> 8]
    b += [protocol & 0xff, (protocol >> 8) & 0xff, protocol >> 16]
    for stage, idx in symlists:
        b += [stage, idx]
    return b


CLIENT = (b"EHLO client.example.net\r\n"
          b"MAIL FROM:<a@example.org> SIZE=100\r\n"
          b"RCPT TO:<u@example.org>\r\n"
          b"RCPT TO:<list@example.org>\r\n"
          b"DATA\r\n"
          b"Subject: hello\r\n"
          b"From: a@example.org\r\n"
          b"X-Folded: one\r\n two\r\n"
          b"\r\n"
          b"body line\r\n"
          b"second line\r\n"
          b".\r\n"
          b"QUIT\r\n")

LOCAL = (b"EHLO localhost\r\nMAIL FROM:<alice@mx.example.org>\r\nRCPT TO:<bob@example.org>\r\n"
         b"DATA\r\nSubject: local\r\n\r\nbody\r\n.\r\nQUIT\r\n")


def seed(name, script, cfg=0, mode=0, client=CLIENT, chunk=0):
    data = bytes([mode | 4, chunk, cfg]) + struct.pack(">H", len(script))
    data += bytes(script) + client
    with open(os.path.join(OUT, "milter-" + name), "wb") as f:
        f.write(data)


# EOM only: one header added
seed("eom-addheader", optneg(EOM_ONLY) + [ADDH, 1, 0, CONT])
# EOM only: every modification, then accept
seed("eom-all-changes", optneg(EOM_ONLY) + [
    INSH, 0, 0, 1,          # insheader 0 Subject " spaced"
    CHGH, 1, 0, 4,          # chgheader Subject #1 "" (delete)
    ADDH, 1, 2,             # addheader X-Milter "folded\n\tline"
    REPLBODY, 1,            # replbody "line1\r\nline2\r\n"
    ADDRCPT, 0, 0,          # addrcpt <u@example.org>
    ADDRCPT, 1, 1, 0,       # addrcpt_par list@example.org NOTIFY=NEVER
    DELRCPT, 8,             # delrcpt u@example.org
    CHGFROM, 0, 1, 3,       # chgfrom <u@example.org> RET=HDRS ENVID=abc
    QUAR, 1,                # quarantine "virus found"
    ACCEPT])
# EOM only: a header inserted above Received:, the body kept (a rewrite
# with the old body copied aside into a spare file)
seed("eom-insheader-top", optneg(EOM_ONLY) + [INSH, 0, 1, 0, CONT])
# every step, every answer continue, LEADSPC, macro lists
seed("all-steps", optneg(0x100000, symlists=[(0, 0), (5, 7)]) +
     [CONT] * 10 + [PROGRESS, ADDH, 2, 3, CHGH, 1, 5, 0, CONT])
# two filters: the first changes the body, the second sees it, quarantines
seed("chain-two", optneg(EOM_ONLY) + optneg(EOM_ONLY) +
     [REPLBODY, 4, REPLBODY, 5, CONT, ADDH, 0, 8, QUAR, 0, CONT],
     cfg=0x01)
# refusals at each stage, custom replies
seed("reject-mail", optneg(ALL_STEPS) + [CONT, CONT, REJECT])
seed("reply-rcpt", optneg(ALL_STEPS) + [CONT, CONT, CONT, REPLY, 3, CONT])
# a 421 reply code closes the session: nothing after it (was an empty
# line), one line at CONNECT, two at EOM
seed("replycode-421-connect", optneg(ALL_STEPS) + [REPLY, 2])
seed("replycode-421-eom", optneg(EOM_ONLY) + [REPLY, 11])
seed("tempfail-eom", optneg(EOM_ONLY) + [TEMPFAIL])
seed("discard-eom", optneg(EOM_ONLY) + [DISCARD])
seed("shutdown-eom", optneg(EOM_ONLY) + [0x80 | 10])
seed("skip-body", optneg(0) + [CONT] * 8 + [SKIP, CONT])
# a broken filter: garbage at HELO (on-error reject), a close at EOM
# (on-error quarantine), a modification where it has no place
seed("garbage-helo", optneg(ALL_STEPS) + [CONT, GARBAGE, 5, 1, 2, 3, 4, 5],
     cfg=2 << 1)
seed("close-eom-quarantine", optneg(EOM_ONLY) + [CLOSE], cfg=3 << 1)
seed("change-at-connect", optneg(ALL_STEPS) + [ADDH, 0, 0, CONT])
seed("unknown-reply", optneg(EOM_ONLY) + [ANYPKT, ord('z'), 0])
# the parent cannot connect: on-error quarantine, the message is held
seed("down-quarantine", [], cfg=0x20 | (3 << 1))
seed("down-accept-two", optneg(EOM_ONLY) + [ADDH, 1, 0, CONT],
     cfg=0x01 | 0x20 | (1 << 1))
# local submission through the sendmail chain
seed("local", optneg(EOM_ONLY) + [ADDRCPT, 11, 0, DELRCPT, 0, CONT],
     mode=3, client=LOCAL)
# reuse: the connection is pooled (QUIT_NC) at the session's end
seed("reuse", optneg(EOM_ONLY) + [ADDH, 1, 0, CONT], cfg=0x80)
# byte by byte from the client while the filter answers
seed("slow-client", optneg(EOM_ONLY) + [CHGFROM, 4, 0, CONT], chunk=7)
