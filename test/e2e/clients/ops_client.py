#!/usr/bin/python3
"""A real XMPP client (Debian's python3-slixmpp) for the operations tests: accounts,
roster and message archive before and after backup/restore and storage migration.

Connects with STARTTLS to 127.0.0.1:--port, pinning the server's certificate (--ca).
Prints one JSON object on stdout.

  login JID PASSWORD            {"ok": true} or {"ok": false, "reason": ...}
  populate JID PW PEER PEER_PW N
                                JID adds PEER to its roster (name "peer"), both log in,
                                JID sends N chat messages "ops-1".."ops-N" to PEER and waits
                                until PEER received them all: {"sent": N, "received": M}
  check JID PASSWORD            {"roster": [bare JIDs], "archive": [bodies]}: the roster
                                and every body in JID's own MAM archive (urn:xmpp:mam:2)
"""
import asyncio
import sys

from slixmpp.xmlstream import ET
from slixmpp.xmlstream.handler import Callback
from slixmpp.xmlstream.matcher import MatchXPath

sys.dont_write_bytecode = True  # no __pycache__ in the source tree when xmppclient is imported
import xmppclient  # noqa: E402 (after the line above)
from xmppclient import emit  # noqa: E402

NS_MAM = "urn:xmpp:mam:2"
NS_FORWARD = "urn:xmpp:forward:0"


class Client(xmppclient.SessionClient):
    # An early disconnect has always meant waiting out --timeout here, not a
    # {"ok": false} login: kept so that this client's outputs stay as they were.
    FAIL_ON_EARLY_DISCONNECT = False

    def __init__(self, jid, password, ca):
        super().__init__(jid, password, ca)
        self.received = []
        self.archived = []
        self.add_event_handler("message", self._message)
        self.register_handler(Callback("mam result",
                                       MatchXPath("{jabber:client}message/{%s}result" % NS_MAM), self._mam))
        self.register_plugin("xep_0030")

    async def session_ready(self):
        await self.get_roster()

    def _message(self, msg):
        if msg["type"] == "chat" and msg["body"].startswith("ops-"):
            self.received.append(msg["body"])

    def _mam(self, msg):
        for body in msg.xml.iter("{jabber:client}body"):
            self.archived.append(body.text)

    async def archive(self, timeout):
        # One page is enough for the handful of messages the tests send.
        iq = self.make_iq_set()
        q = ET.SubElement(iq.xml, "{%s}query" % NS_MAM, queryid="ops")
        iq["to"] = None
        await iq.send(timeout=timeout)
        return list(self.archived)


async def login(args, jid, password):
    return await xmppclient.login(Client(jid, password, args.ca), args.port, args.timeout)


async def main(args):
    a = args.accounts
    if args.mode == "login":
        try:
            c = await login(args, a[0], a[1])
        except RuntimeError as e:
            emit({"ok": False, "reason": str(e)})
            return 0
        emit({"ok": True})
        c.disconnect()
        return 0
    if args.mode == "populate":
        x = await login(args, a[0], a[1])
        y = await login(args, a[2], a[3])
        await x.update_roster(a[2], name="peer", subscription="none")
        n = int(a[4])
        for i in range(1, n + 1):
            x.send_message(mto=a[2], mbody="ops-%d" % i, mtype="chat")
        loop = asyncio.get_event_loop()
        deadline = loop.time() + args.timeout
        while len(y.received) < n and loop.time() < deadline:
            await asyncio.sleep(0.05)
        emit({"sent": n, "received": len(y.received)})
        x.disconnect()
        y.disconnect()
        return 0
    c = await login(args, a[0], a[1])
    roster = sorted(str(j) for j in c.client_roster.keys() if str(j) != c.boundjid.bare)
    bodies = await c.archive(args.timeout)
    emit({"roster": roster, "archive": sorted(bodies)})
    c.disconnect()
    return 0


if __name__ == "__main__":
    p = xmppclient.arguments(timeout=15)
    p.add_argument("mode", choices=["login", "populate", "check"])
    p.add_argument("accounts", nargs="+")
    xmppclient.run(main, p.parse_args())
