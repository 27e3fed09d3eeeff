#!/usr/bin/python3
"""Real XMPP clients (Debian's python3-slixmpp) for the lifecycle, TLS and reload tests.

Every mode connects with STARTTLS to 127.0.0.1:PORT and pins the server's certificate
(--ca: a PEM file; the development server's self-signed certificate or a test CA), so a
session only exists when TLS really worked. Results are JSON lines on stdout.

  login JID PASSWORD         log in; print {"ok", "tls", "cipher"} and disconnect
  disco JID PASSWORD         log in; print {"features": [...]} of the server's disco#info
  pair  JID1 PW1 JID2 PW2    log both in, print {"event": "online"}, then JID1 sends a
                             numbered message to JID2 every --interval seconds until a
                             line "stop" arrives on stdin; print {"sent", "received",
                             "missing", "disconnects"} once every message arrived or
                             --drain seconds passed
"""
import asyncio
import ssl
import sys

sys.dont_write_bytecode = True  # no __pycache__ in the source tree when xmppclient is imported
import xmppclient  # noqa: E402 (after the line above)
from xmppclient import emit  # noqa: E402


class Client(xmppclient.SessionClient):
    def __init__(self, jid, password, ca):
        super().__init__(jid, password, ca)
        self.received = set()
        self.add_event_handler("message", self._message)
        self.register_plugin("xep_0030")
        self.register_plugin("xep_0199")

    def _message(self, msg):
        if msg["type"] in ("chat", "normal") and msg["body"].startswith("n="):
            self.received.add(int(msg["body"][2:]))

    def tls_info(self):
        sock = self.socket
        if isinstance(sock, ssl.SSLSocket) or hasattr(sock, "cipher"):
            return True, sock.cipher()[0]
        tr = self.transport.get_extra_info("ssl_object") if self.transport else None
        return tr is not None, tr.cipher()[0] if tr else ""


async def login(args, jid, password):
    return await xmppclient.login(Client(jid, password, args.ca), args.port, args.timeout)


async def main(args):
    if args.mode in ("login", "disco"):
        c = await login(args, args.accounts[0], args.accounts[1])
        if args.mode == "login":
            tls, cipher = c.tls_info()
            emit({"ok": True, "tls": tls, "cipher": cipher})
        else:
            info = await c["xep_0030"].get_info(jid=c.boundjid.domain, timeout=args.timeout)
            emit({"features": sorted(info["disco_info"]["features"])})
        c.disconnect()
        return 0
    a = await login(args, args.accounts[0], args.accounts[1])
    b = await login(args, args.accounts[2], args.accounts[3])
    emit({"event": "online"})
    stop = asyncio.Event()
    loop = asyncio.get_event_loop()
    loop.add_reader(sys.stdin.fileno(), lambda: stop.set() if sys.stdin.readline().strip() in ("stop", "") else None)
    sent = 0
    while not stop.is_set():
        sent += 1
        a.send_message(mto=b.boundjid.bare, mbody="n=%d" % sent, mtype="chat")
        try:
            await asyncio.wait_for(stop.wait(), args.interval)
        except asyncio.TimeoutError:
            pass
    deadline = loop.time() + args.drain
    while len(b.received) < sent and loop.time() < deadline:
        await asyncio.sleep(0.05)
    missing = sorted(set(range(1, sent + 1)) - b.received)
    emit({"sent": sent, "received": len(b.received), "missing": missing[:20],
          "disconnects": a.disconnects + b.disconnects})
    a.disconnect()
    b.disconnect()
    return 0


if __name__ == "__main__":
    p = xmppclient.arguments(timeout=15)
    p.add_argument("--interval", type=float, default=0.05)
    p.add_argument("--drain", type=float, default=5)
    p.add_argument("mode", choices=["login", "disco", "pair"])
    p.add_argument("accounts", nargs="+")
    xmppclient.run(main, p.parse_args())
