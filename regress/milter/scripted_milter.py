#!/usr/bin/python3
"""
scripted_milter.py -- a mail filter on libmilter (python3-milter) whose
every reply and modification comes from a script, and which logs every
event it receives, so that the integration tests can drive the MTA's
milter client through each corner of the protocol with a real,
independent filter implementation (Sendmail's libmilter) and check what
the MTA sent it.

    scripted_milter.py SOCKET LOGFILE [SCRIPT.json]

SOCKET is libmilter's spelling: inet:PORT@127.0.0.1 or unix:/path.
Once listening, the program writes "ready" to the log (tests wait for
the port instead).

The log holds one JSON object per line, written and flushed at once:
    {"conn": N, "stage": "connect", "args": [...], "macros": {...}}
stages: negotiate (args: actions and protocol offered, as ints), connect
(hostname, family, address), helo, envfrom (sender, ESMTP args...),
envrcpt, data, header (name, value), eoh, body (the chunk, as latin-1
text), eom, abort, unknown, close, and "reply"/"action" lines for what
the filter answered or did.  "macros" holds every macro of MACROS that
libmilter can give at that stage (libmilter keeps the macros of earlier
stages of the same message and connection, so a macro shows at its
stage and after).

The script (JSON, every key optional), read anew at each connection:
  "reply": {STAGE: REPLY}    the reply at that stage; REPLY is one of
      "continue" "accept" "reject" "tempfail" "discard" "skip", or
      {"action": "reject", "setreply": [CODE, XCODE|null, TEXT, MORE...]}
      (TEXT lines beyond the first make a multi-line reply);
      for envrcpt, also {"match": {"<addr>": REPLY, ...}, "default": R}
  "eom": [[OP, ARG...], ...]   the modifications at end of message:
      ["addheader", NAME, VALUE]          append a header
      ["insheader", INDEX, NAME, VALUE]   insert at INDEX (0 = first)
      ["chgheader", NAME, N, VALUE]       change the N-th (1-based);
                                          VALUE "" deletes it
      ["addrcpt", RCPT]  ["addrcpt", RCPT, "ARG ARG"]
      ["delrcpt", RCPT]
      ["chgfrom", SENDER]  ["chgfrom", SENDER, "ARG ARG"]
      ["replbody", TEXT]                  TEXT as latin-1 bytes
      ["quarantine", REASON]
      ["progress"]  ["sleep", SECONDS]
  "symlist": {STAGE: "macro macro ..."}   SMFIR_SETSYMLIST per stage
      (connect helo envfrom envrcpt data eoh eom)
  "noreply": [STAGE...], "nocallback": [STAGE...]   negotiated away
      (connect helo envfrom envrcpt data header eoh body unknown)
  "leadspace": true          negotiate SMFIP_HDR_LEADSPC
  "rcpt_rej": true           negotiate SMFIP_RCPT_REJ
  "crash_at": STAGE          the whole process exits (status 3) at STAGE
  "hang_at": STAGE           never answer at STAGE (sleeps an hour)
  "sleep": {STAGE: SECONDS}  answer late at STAGE
  "progress_sleep": SECONDS  at eom: send progress every second for
      that long before the modifications
"""

import json
import os
import sys
import threading
import time

import Milter

MACROS = [
    "j", "_", "i", "v", "{daemon_name}", "{daemon_addr}", "{daemon_port}",
    "{client_addr}", "{client_port}", "{client_name}", "{client_ptr}",
    "{client_resolve}", "{client_connections}", "{if_addr}", "{if_name}",
    "{auth_type}", "{auth_authen}", "{auth_author}", "{auth_ssf}",
    "{mail_addr}", "{mail_host}", "{mail_mailer}", "{rcpt_addr}",
    "{rcpt_host}", "{rcpt_mailer}", "{tls_version}", "{cipher}",
    "{cipher_bits}", "{cert_subject}", "{cert_issuer}", "{my_macro}",
]

STAGE_MACRO = {
    "connect": Milter.M_CONNECT, "helo": Milter.M_HELO,
    "envfrom": Milter.M_ENVFROM, "envrcpt": Milter.M_ENVRCPT,
    "data": Milter.M_DATA, "eoh": Milter.M_EOH, "eom": Milter.M_EOM,
}
# (no reply bit, no callback bit) per stage
STAGE_PROTO = {
    "connect": (Milter.P_NR_CONN, Milter.P_NOCONNECT),
    "helo": (Milter.P_NR_HELO, Milter.P_NOHELO),
    "envfrom": (Milter.P_NR_MAIL, Milter.P_NOMAIL),
    "envrcpt": (Milter.P_NR_RCPT, Milter.P_NORCPT),
    "data": (Milter.P_NR_DATA, Milter.P_NODATA),
    "unknown": (Milter.P_NR_UNKN, Milter.P_NOUNKNOWN),
    "eoh": (Milter.P_NR_EOH, Milter.P_NOEOH),
    "body": (Milter.P_NR_BODY, Milter.P_NOBODY),
    "header": (Milter.P_NR_HDR, Milter.P_NOHDRS),
}
REPLIES = {
    "continue": Milter.CONTINUE, "accept": Milter.ACCEPT,
    "reject": Milter.REJECT, "tempfail": Milter.TEMPFAIL,
    "discard": Milter.DISCARD, "skip": Milter.SKIP,
}

SCRIPT_PATH = None
LOG = None
LOG_LOCK = threading.Lock()
CONN_SEQ = [0]


def text(v):
    if isinstance(v, bytes):
        return v.decode("latin-1")
    return v


def log(entry):
    line = json.dumps(entry, sort_keys=True) + "\n"
    with LOG_LOCK:
        LOG.write(line)
        LOG.flush()


class Scripted(Milter.Base):

    def __init__(self):
        with LOG_LOCK:
            CONN_SEQ[0] += 1
            self.conn = CONN_SEQ[0]
        # read anew for each connection: a test changes the script
        # between SMTP sessions without restarting the filter
        self.script = {}
        if SCRIPT_PATH is not None:
            with open(SCRIPT_PATH) as f:
                self.script = json.load(f)

    def event(self, stage, *args):
        macros = {}
        for name in MACROS:
            try:
                v = self.getsymval(name)
            except Exception:
                v = None
            if v is not None:
                macros[name] = text(v)
        log({"conn": self.conn, "stage": stage,
             "args": [text(a) if not isinstance(a, (list, tuple)) else
                      [text(x) for x in a] for a in args],
             "macros": macros})
        if self.script.get("crash_at") == stage:
            log({"conn": self.conn, "stage": "crash"})
            os._exit(3)
        if self.script.get("hang_at") == stage:
            log({"conn": self.conn, "stage": "hang"})
            time.sleep(3600)
        delay = self.script.get("sleep", {}).get(stage)
        if delay:
            time.sleep(delay)
        return self.answer(stage, self.script.get("reply", {}).get(stage),
                           args)

    def answer(self, stage, spec, args):
        if spec is None:
            return Milter.CONTINUE
        if isinstance(spec, dict) and "match" in spec:
            key = text(args[0]) if args else ""
            spec = spec["match"].get(key, spec.get("default", "continue"))
        if isinstance(spec, str):
            spec = {"action": spec}
        if spec.get("setreply"):
            r = spec["setreply"]
            self.setreply(r[0], r[1], *r[2:])
        log({"conn": self.conn, "stage": "reply", "at": stage,
             "reply": spec})
        return REPLIES[spec.get("action", "continue")]

    # -- negotiation --------------------------------------------------

    def negotiate(self, opts):
        actions, proto, _, _ = opts
        log({"conn": self.conn, "stage": "negotiate",
             "args": [actions, proto]})
        self._actions = actions
        for stage, names in self.script.get("symlist", {}).items():
            # (Base.setsymlist() hands libmilter bytes, which python3's
            # milter module refuses: the context's own call takes str)
            self._ctx.setsymlist(STAGE_MACRO[stage], names)
        want = proto & (Milter.P_SKIP | Milter.P_RCPT_REJ |
                        Milter.P_HDR_LEADSPC)
        if not self.script.get("leadspace"):
            want &= ~Milter.P_HDR_LEADSPC
        if not self.script.get("rcpt_rej"):
            want &= ~Milter.P_RCPT_REJ
        for stage in self.script.get("noreply", []):
            want |= proto & STAGE_PROTO[stage][0]
        for stage in self.script.get("nocallback", []):
            want |= proto & STAGE_PROTO[stage][1]
        opts[1] = self._protocol = want
        opts[2] = opts[3] = 0
        log({"conn": self.conn, "stage": "negotiated",
             "args": [actions, want]})
        return Milter.CONTINUE

    # -- callbacks ----------------------------------------------------

    def connect(self, hostname, family, hostaddr):
        if isinstance(hostaddr, tuple):
            hostaddr = list(hostaddr[:2])
        return self.event("connect", hostname, int(family), hostaddr)

    def hello(self, hostname):
        return self.event("helo", hostname)

    def envfrom(self, f, *params):
        return self.event("envfrom", f, *params)

    def envrcpt(self, to, *params):
        return self.event("envrcpt", to, *params)

    def data(self):
        return self.event("data")

    def header(self, name, value):
        return self.event("header", name, value)

    def eoh(self):
        return self.event("eoh")

    def body(self, chunk):
        return self.event("body", chunk)

    def unknown(self, cmd):
        return self.event("unknown", cmd)

    def abort(self):
        self.event("abort")
        return Milter.CONTINUE

    def close(self):
        log({"conn": self.conn, "stage": "close"})
        return Milter.CONTINUE

    def eom(self):
        # log first (the macros), then modify, then reply
        self.event_log_only("eom")
        if self.script.get("crash_at") == "eom":
            os._exit(3)
        if self.script.get("hang_at") == "eom":
            log({"conn": self.conn, "stage": "hang"})
            time.sleep(3600)
        end = time.monotonic() + self.script.get("progress_sleep", 0)
        while time.monotonic() < end:
            self.progress()
            time.sleep(1)
        for op in self.script.get("eom", []):
            self.modify(op)
        return self.answer("eom", self.script.get("reply", {}).get("eom"), [])

    def event_log_only(self, stage):
        macros = {}
        for name in MACROS:
            v = self.getsymval(name)
            if v is not None:
                macros[name] = text(v)
        log({"conn": self.conn, "stage": stage, "args": [],
             "macros": macros})

    def modify(self, op):
        kind, args = op[0], op[1:]
        log({"conn": self.conn, "stage": "action", "op": op})
        if kind == "addheader":
            self.addheader(args[0], args[1])
        elif kind == "insheader":
            self.addheader(args[1], args[2], args[0])
        elif kind == "chgheader":
            self.chgheader(args[0], args[1], args[2])
        elif kind == "addrcpt":
            self.addrcpt(args[0], args[1] if len(args) > 1 else None)
        elif kind == "delrcpt":
            self.delrcpt(args[0])
        elif kind == "chgfrom":
            self.chgfrom(args[0], args[1] if len(args) > 1 else None)
        elif kind == "replbody":
            self.replacebody(args[0].encode("latin-1"))
        elif kind == "quarantine":
            self.quarantine(args[0])
        elif kind == "progress":
            self.progress()
        elif kind == "sleep":
            time.sleep(args[0])
        else:
            raise ValueError("unknown eom operation %r" % kind)


def main():
    global LOG, SCRIPT_PATH
    if len(sys.argv) not in (3, 4):
        sys.stderr.write("usage: scripted_milter.py SOCKET LOGFILE "
                         "[SCRIPT.json]\n")
        return 2
    if len(sys.argv) == 4:
        SCRIPT_PATH = sys.argv[3]
        with open(SCRIPT_PATH) as f:
            json.load(f)	# a broken script fails now, not per connection
    LOG = open(sys.argv[2], "a")
    Milter.factory = Scripted
    log({"stage": "ready", "pid": os.getpid()})
    # libmilter's own timeout for a silent MTA: long, the tests stop us
    Milter.runmilter("scripted", sys.argv[1], timeout=600)
    return 0


if __name__ == "__main__":
    sys.exit(main())
