#!/usr/bin/python3
"""A real XMPP client (Debian's python3-slixmpp) that trips the production firewall rules.

  firewall_flood.py --port P --ca PEM [--count N] JID PASSWORD

Logs in with STARTTLS (pinning --ca), sends N chat messages with a body to its own bare
JID as fast as it can, and waits until every one came back either delivered (to itself)
or bounced. Prints one JSON line: {"sent", "delivered", "bounced", "conditions", "texts"}
where conditions counts the error conditions of the bounces and texts holds their
distinct texts.
"""
import asyncio
import sys

sys.dont_write_bytecode = True  # no __pycache__ in the source tree when xmppclient is imported
import xmppclient  # noqa: E402 (after the line above)
from xmppclient import emit  # noqa: E402


class Client(xmppclient.SessionClient):
    def __init__(self, jid, password, ca):
        super().__init__(jid, password, ca)
        self.delivered = set()
        self.bounced = set()
        self.conditions = {}
        self.texts = set()
        self.settled = asyncio.Event()
        self.expected = 0
        self.add_event_handler("message", self._message)
        self.add_event_handler("message_error", self._error)

    def _check(self):
        if self.expected and len(self.delivered | self.bounced) >= self.expected:
            self.settled.set()

    def _message(self, msg):
        if msg["type"] == "chat" and msg["body"].startswith("flood "):
            self.delivered.add(msg["body"])
            self._check()

    def _error(self, msg):
        # The defined condition is the error's child in the stanzas namespace
        # (slixmpp's "condition" interface knows only some of them).
        cond = ""
        err = msg.xml.find("{jabber:client}error")
        for child in (err if err is not None else []):
            ns, _, name = child.tag[1:].partition("}")
            if ns == "urn:ietf:params:xml:ns:xmpp-stanzas" and name != "text":
                cond = name
        self.conditions[cond] = self.conditions.get(cond, 0) + 1
        if msg["error"]["text"]:
            self.texts.add(msg["error"]["text"])
        self.bounced.add(msg["id"])
        self._check()


async def main(args):
    c = Client(args.jid, args.password, args.ca)
    await xmppclient.login(c, args.port, args.timeout)
    c.expected = args.count
    for i in range(args.count):
        c.send_message(mto=c.boundjid.bare, mbody="flood %d" % i, mtype="chat")
    try:
        await asyncio.wait_for(c.settled.wait(), args.timeout)
    except asyncio.TimeoutError:
        pass
    emit({"sent": args.count, "delivered": len(c.delivered), "bounced": len(c.bounced),
          "conditions": c.conditions, "texts": sorted(c.texts)})
    c.disconnect()
    return 0


if __name__ == "__main__":
    p = xmppclient.arguments(60)
    p.add_argument("--count", type=int, default=100)
    p.add_argument("jid")
    p.add_argument("password")
    xmppclient.run(main, p.parse_args())
