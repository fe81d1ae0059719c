"""A real DNS server on 127.0.0.1 (dnslib's, UDP and TCP on one ephemeral port) answering from a zone the
test edits: TXT records, A/AAAA records, names that fail (SERVFAIL) or never answer. Point the platform at
it with the `dns_server` fixture (tests/conftest.py), which sets HOSTNAME_DNS_RESOLVERS; the webhooks'
SSRF guard asks it when a test sets WEBHOOKS_DNS_RESOLVERS to its address."""

import ipaddress
import threading

from dnslib import AAAA, QTYPE, RCODE, RR, TXT, A
from dnslib.dns import DNSError
from dnslib.server import DNSLogger, DNSServer


class Zone:
    """What the server answers: {name: [TXT values]} and {name: [addresses]}; anything else is NXDOMAIN."""

    def __init__(self):
        self.txt: dict[str, list[str]] = {}
        self.addresses: dict[str, list[str]] = {}  # answered as A (IPv4) and AAAA (IPv6) records
        self.failing: set[str] = set()  # answered with SERVFAIL
        self.silent: set[str] = set()  # never answered (a timeout)
        self.queries: list[tuple[str, str]] = []
        self.lock = threading.Lock()
        self.stopped = threading.Event()

    def publish(self, name: str, *values: str) -> None:
        with self.lock:
            self.txt[name.rstrip(".").lower()] = list(values)

    def withdraw(self, name: str) -> None:
        with self.lock:
            self.txt.pop(name.rstrip(".").lower(), None)
            self.addresses.pop(name.rstrip(".").lower(), None)

    def publish_addresses(self, name: str, *addresses: str) -> None:
        """The name's A and AAAA records from now on (replacing the last ones): DNS rebinding in one call."""
        with self.lock:
            self.addresses[name.rstrip(".").lower()] = [str(ipaddress.ip_address(a)) for a in addresses]

    def resolve(self, request, handler):
        name = str(request.q.qname).rstrip(".").lower()
        qtype = QTYPE[request.q.qtype]
        with self.lock:
            self.queries.append((name, qtype))
            values = list(self.txt.get(name, [])) if name in self.txt else None
            addresses = list(self.addresses.get(name, [])) if name in self.addresses else None
            failing, silent = name in self.failing, name in self.silent
        if silent:
            self.stopped.wait(30)  # longer than any lookup's lifetime in the tests
            raise DNSError("not answered")  # dnslib's handler drops the query without a reply
        reply = request.reply()
        if failing:
            reply.header.rcode = RCODE.SERVFAIL
        elif values is None and addresses is None:
            reply.header.rcode = RCODE.NXDOMAIN
        elif qtype in ("A", "AAAA"):
            version = 4 if qtype == "A" else 6
            for address in addresses or ():
                if ipaddress.ip_address(address).version == version:
                    rdata = A(address) if version == 4 else AAAA(address)
                    reply.add_answer(RR(request.q.qname, getattr(QTYPE, qtype), rdata=rdata, ttl=0))
        elif qtype == "TXT" and values is not None:
            for value in values:
                # Values longer than 255 bytes are split into several strings of one record, as DNS does.
                chunks = [value[i : i + 255] for i in range(0, len(value), 255)] or [""]
                reply.add_answer(RR(request.q.qname, QTYPE.TXT, rdata=TXT(chunks), ttl=60))
        return reply


class _QuietLogger(DNSLogger):
    def __init__(self):
        super().__init__(log="-request,-reply,-truncated,-error,-recv,-send,-data")


class ChallengeDNSServer:
    def __init__(self):
        self.zone = Zone()
        # One port for both: an ephemeral TCP port, and UDP on the same number (retried if that is taken).
        for _ in range(50):
            tcp = DNSServer(self.zone, address="127.0.0.1", port=0, tcp=True, logger=_QuietLogger())
            self.port = tcp.server.server_address[1]
            try:
                udp = DNSServer(self.zone, address="127.0.0.1", port=self.port, logger=_QuietLogger())
            except OSError:
                tcp.server.server_close()
                continue
            self.servers = [udp, tcp]
            break
        else:
            raise RuntimeError("no port free for both UDP and TCP on 127.0.0.1")

    @property
    def address(self) -> str:
        return f"127.0.0.1:{self.port}"

    def start(self) -> "ChallengeDNSServer":
        for server in self.servers:
            server.start_thread()
        return self

    def stop(self) -> None:
        self.zone.stopped.set()
        for server in self.servers:
            server.stop()
            server.server.server_close()
