"""
dnsserver.py -- a small authoritative DNS server on loopback for the
integration tests: SPF records now, DKIM keys, DMARC policies and block
lists later.  UDP and TCP on 127.0.0.1 (ports 15360-15369 are kept for
it), answering from a zone held in memory, which a test may replace
between cases (set_zone) without restarting the server.

Wire format through python3-dnslib (Debian; mk/deps.sh installs it).  A
test whose dnslib is missing calls fixture.skip() through require().

The zone is a dict: lower-case name without the trailing dot -> list of
records, each a (TYPE, value) pair:

    ("A", "192.0.2.1")   ("AAAA", "2001:db8::1")   ("PTR", "host.example")
    ("MX", (10, "mx.example"))   ("CNAME", "other.example")
    ("TXT", "text") or ("TXT", ["several", "strings"])   ("SPF", ...)
    "TIMEOUT"   -- a question with no record of its type is never answered

A TXT string longer than 255 bytes is cut into character-strings; text
is sent as Latin-1 where it fits (so "\\x80" is the byte 0x80), else as
UTF-8.  A name that is not in the zone (and has no name below it) is
NXDOMAIN; one that is, with no record of the type asked, NOERROR with no
answer.  A CNAME is followed inside the zone.  Answers too big for the
client's UDP size (512, or its EDNS size) go out truncated (TC), and the
resolver asks again over TCP.

zone_from_openspf() turns the openspf test suite's zonedata into a zone
(RFC 7208 suite conventions: an SPF record is served as TXT too unless
the name has TXT records or "TXT: NONE").

    with DNSServer(zone, port=15360) as dns:
        ...  # point the resolver at 127.0.0.1 port 15360
"""

import socket
import struct
import threading

try:
    import dnslib
except ImportError:		# reported by require()
    dnslib = None

PORT_FIRST = 15360
PORT_LAST = 15369


def require():
    """Skip the calling test when python3-dnslib is not installed."""
    if dnslib is None:
        from fixture import skip
        skip("python3-dnslib is not installed (mk/deps.sh installs it)")


def _txt_strings(value):
    """One TXT record's value as a list of byte strings of <= 255."""
    if isinstance(value, (list, tuple)):
        parts = list(value)
    else:
        parts = [value]
    out = []
    for p in parts:
        if isinstance(p, str):
            try:
                b = p.encode("latin-1")
            except UnicodeEncodeError:
                b = p.encode("utf-8")
        else:
            b = bytes(p)
        if not b and not isinstance(value, (list, tuple)):
            out.append(b)
        while b:
            out.append(b[:255])
            b = b[255:]
    return out


def zone_from_openspf(zonedata):
    """The openspf suite's zonedata (as yaml loads it) as a zone."""
    zone = {}
    for name, records in (zonedata or {}).items():
        name = str(name).lower().rstrip(".")
        out = zone.setdefault(name, [])
        has_txt = False
        spf = []
        for r in records or []:
            if r == "TIMEOUT":
                out.append("TIMEOUT")
                continue
            ((rtype, value),) = r.items()
            rtype = rtype.upper()
            if rtype == "TXT":
                has_txt = True
                if value == "NONE":
                    continue
            if rtype == "SPF":
                if value == "NONE":
                    continue
                spf.append(value)
            if rtype == "MX":
                value = (int(value[0]), str(value[1]))
            elif rtype in ("A", "AAAA", "PTR", "CNAME"):
                value = str(value)
            out.append((rtype, value))
        if not has_txt:
            out.extend(("TXT", v) for v in spf)
    return zone


class DNSServer:
    def __init__(self, zone=None, port=PORT_FIRST, host="127.0.0.1"):
        require()
        if not PORT_FIRST <= port <= PORT_LAST:
            raise ValueError("dnsserver: ports %d-%d only" %
                             (PORT_FIRST, PORT_LAST))
        self.host = host
        self.port = port
        self.zone = {}
        self.lock = threading.Lock()
        self.queries = []	# (name, type name) of every question
        self.set_zone(zone or {})
        self.udp = None
        self.tcp = None
        self.threads = []
        self.stopping = False

    def set_zone(self, zone):
        z = {}
        for name, records in zone.items():
            z[name.lower().rstrip(".")] = list(records)
        with self.lock:
            self.zone = z
            self.queries = []

    def start(self):
        self.udp = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
        self.udp.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        self.udp.bind((self.host, self.port))
        self.udp.settimeout(0.2)
        self.tcp = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
        self.tcp.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        self.tcp.bind((self.host, self.port))
        self.tcp.listen(16)
        self.tcp.settimeout(0.2)
        for fn in (self._serve_udp, self._serve_tcp):
            t = threading.Thread(target=fn, daemon=True)
            t.start()
            self.threads.append(t)
        return self

    def stop(self):
        self.stopping = True
        for t in self.threads:
            t.join(5)
        for s in (self.udp, self.tcp):
            if s is not None:
                s.close()
        self.threads = []

    def __enter__(self):
        return self.start()

    def __exit__(self, *exc):
        self.stop()

    # -- answering ------------------------------------------------------

    def _rr(self, name, rtype, value):
        Q = dnslib.QTYPE
        if rtype == "A":
            rd, t = dnslib.A(value), Q.A
        elif rtype == "AAAA":
            rd, t = dnslib.AAAA(value), Q.AAAA
        elif rtype == "PTR":
            rd, t = dnslib.PTR(value), Q.PTR
        elif rtype == "CNAME":
            rd, t = dnslib.CNAME(value), Q.CNAME
        elif rtype == "MX":
            rd, t = dnslib.MX(value[1] if value[1] else ".", value[0]), Q.MX
        elif rtype in ("TXT", "SPF"):
            rd = dnslib.TXT(_txt_strings(value))
            t = Q.TXT if rtype == "TXT" else 99
        else:
            return None
        return dnslib.RR(name, t, rdata=rd, ttl=300)

    def _exists(self, name):
        if name in self.zone:
            return True
        return any(n.endswith("." + name) for n in self.zone)

    def _lookup(self, qname, qtype, reply, depth=0, owner=None):
        """Answer records into reply; False: do not answer at all."""
        name = qname.lower().rstrip(".")
        records = self.zone.get(name)
        if records is None:
            if not self._exists(name):
                if depth == 0:
                    reply.header.rcode = dnslib.RCODE.NXDOMAIN
            return True
        wanted = [r for r in records if r != "TIMEOUT" and r[0] == qtype]
        cname = [r for r in records if r != "TIMEOUT" and r[0] == "CNAME"]
        if not wanted and cname and qtype != "CNAME" and depth < 8:
            reply.add_answer(self._rr(owner or qname, "CNAME",
                                      cname[0][1]))
            return self._lookup(cname[0][1], qtype, reply, depth + 1)
        if not wanted and "TIMEOUT" in records:
            return False
        for r in wanted:
            rr = self._rr(owner or qname, r[0], r[1])
            if rr is not None:
                reply.add_answer(rr)
        return True

    def answer(self, data):
        """The reply to one wire-format question, or None (no answer)."""
        try:
            req = dnslib.DNSRecord.parse(data)
        except Exception:
            return None, 512
        size = 512
        for ar in req.ar:
            if ar.rtype == dnslib.QTYPE.OPT:
                size = max(512, ar.rclass)
        reply = req.reply(ra=1, aa=1)
        if not req.questions:
            reply.header.rcode = dnslib.RCODE.FORMERR
            return reply.pack(), size
        q = req.questions[0]
        qtype = dnslib.QTYPE.get(q.qtype)
        if q.qtype == 99:
            qtype = "SPF"
        # the labels as they are on the wire, not dnslib's escaped text
        qname = ".".join(l.decode("latin-1") for l in q.qname.label)
        with self.lock:
            self.queries.append((qname.lower(), qtype))
            if not self._lookup(qname, qtype, reply, owner=q.qname):
                return None, size
        return reply.pack(), size

    def _serve_udp(self):
        while not self.stopping:
            try:
                data, peer = self.udp.recvfrom(65535)
            except socket.timeout:
                continue
            except OSError:
                return
            out, size = self.answer(data)
            if out is None:
                continue
            if len(out) > size:
                # no records, TC set: the resolver asks over TCP
                out = self._truncated(data)
            try:
                self.udp.sendto(out, peer)
            except OSError:
                pass

    def _truncated(self, query):
        req = dnslib.DNSRecord.parse(query)
        reply = req.reply(ra=1, aa=1)
        reply.header.tc = 1
        return reply.pack()

    def _serve_tcp(self):
        while not self.stopping:
            try:
                conn, _ = self.tcp.accept()
            except socket.timeout:
                continue
            except OSError:
                return
            conn.settimeout(2)
            try:
                while not self.stopping:
                    hdr = self._recv_exact(conn, 2)
                    if hdr is None:
                        break
                    data = self._recv_exact(conn, struct.unpack("!H",
                                                                hdr)[0])
                    if data is None:
                        break
                    out, _ = self.answer(data)
                    if out is None:
                        continue
                    conn.sendall(struct.pack("!H", len(out)) + out)
            except OSError:
                pass
            finally:
                conn.close()

    @staticmethod
    def _recv_exact(conn, n):
        buf = b""
        while len(buf) < n:
            chunk = conn.recv(n - len(buf))
            if not chunk:
                return None
            buf += chunk
        return buf
