#!/usr/bin/python3
"""Real XMPP clients (Debian's python3-slixmpp) for the soak runs.

Every session uses STARTTLS to 127.0.0.1:PORT and verifies the server's certificate against
--ca, so a session exists only when TLS worked. Output is one JSON object per line on stdout.

  chat A PW_A B PW_B   log A and B in; print {"event": "online", "who", "sessions"} at every
                       session start (the first and each reconnect) and {"event": "offline",
                       "who"} at every disconnect; reconnect after --retry seconds until told
                       to stop. While both are online A sends "n=K" to B every --interval
                       seconds. A line "stop" (or EOF) on stdin ends sending; once every sent
                       message arrived or --drain seconds passed it prints {"sent", "received",
                       "missing", "disconnects", "sessions"} and exits 0.
  logins JID PW ...    log each account in turn; print {"jid", "ok", "error"} per account;
                       exit 0 only when every login worked.
"""
import argparse
import asyncio
import json
import logging
import ssl
import sys

from slixmpp import ClientXMPP


def emit(obj):
    print(json.dumps(obj), flush=True)


def tls_context(ca):
    ctx = ssl.create_default_context(cafile=ca)
    # The development certificate names the XMPP domain; the clients dial 127.0.0.1.
    ctx.check_hostname = False
    ctx.verify_mode = ssl.CERT_REQUIRED
    # slixmpp 1.8 offers SCRAM-*-PLUS with tls-unique, which TLS 1.3 lacks.
    ctx.maximum_version = ssl.TLSVersion.TLSv1_2
    return ctx


class Session(ClientXMPP):
    """One account that stays logged in: it reconnects whenever it is dropped."""

    def __init__(self, who, jid, password, args):
        super().__init__(jid, password)
        self.who, self.args = who, args
        self.ssl_context = tls_context(args.ca)
        self.sessions = 0
        self.disconnects = 0
        self.online = False
        self.stopping = False
        self.received = set()
        self.first = asyncio.get_event_loop().create_future()
        self.add_event_handler("session_start", self._started)
        self.add_event_handler("disconnected", self._dropped)
        self.add_event_handler("connection_failed", self._failed)
        self.add_event_handler("failed_auth", self._auth_failed)
        self.add_event_handler("message", self._message)

    def dial(self):
        self.connect(("127.0.0.1", self.args.port))

    async def _started(self, _):
        self.sessions += 1
        self.online = True
        self.send_presence()
        emit({"event": "online", "who": self.who, "sessions": self.sessions})
        if not self.first.done():
            self.first.set_result(True)

    def _dropped(self, _):
        was_online, self.online = self.online, False
        if was_online:
            self.disconnects += 1
            emit({"event": "offline", "who": self.who})
        if not self.stopping:
            asyncio.get_event_loop().call_later(self.args.retry, self.dial)

    def _failed(self, _):
        if not self.stopping:
            asyncio.get_event_loop().call_later(self.args.retry, self.dial)

    def _auth_failed(self, _):
        if not self.first.done():
            self.first.set_exception(RuntimeError("authentication failed for %s" % self.boundjid.bare))

    def _message(self, msg):
        body = msg["body"]
        if msg["type"] in ("chat", "normal") and body.startswith("n="):
            self.received.add(int(body[2:]))


async def chat(args):
    a = Session("a", args.accounts[0], args.accounts[1], args)
    b = Session("b", args.accounts[2], args.accounts[3], args)
    for s in (a, b):
        s.dial()
    await asyncio.wait_for(asyncio.gather(a.first, b.first), args.timeout)
    stop = asyncio.Event()
    loop = asyncio.get_event_loop()

    def on_stdin():
        line = sys.stdin.readline()
        if line.strip() == "stop" or line == "":
            stop.set()

    loop.add_reader(sys.stdin.fileno(), on_stdin)
    sent = 0
    while not stop.is_set():
        if a.online and b.online:
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
    emit({"sent": sent, "received": len(b.received & set(range(1, sent + 1))), "missing": missing[:20],
          "disconnects": a.disconnects + b.disconnects, "sessions": a.sessions + b.sessions})
    for s in (a, b):
        s.stopping = True
        s.disconnect()
    return 0


class Login(ClientXMPP):
    def __init__(self, jid, password, args):
        super().__init__(jid, password)
        self.ssl_context = tls_context(args.ca)
        self.done = asyncio.get_event_loop().create_future()
        self.add_event_handler("session_start", lambda _: self.done.done() or self.done.set_result(True))
        self.add_event_handler("failed_auth", lambda _: self.done.done() or self.done.set_exception(
            RuntimeError("authentication failed")))
        self.add_event_handler("disconnected", lambda _: self.done.done() or self.done.set_exception(
            RuntimeError("disconnected before the session started")))


async def logins(args):
    failed = 0
    pairs = list(zip(args.accounts[0::2], args.accounts[1::2]))
    for jid, password in pairs:
        c = Login(jid, password, args)
        c.connect(("127.0.0.1", args.port))
        try:
            await asyncio.wait_for(c.done, args.timeout)
            emit({"jid": jid, "ok": True})
        except Exception as e:  # reported per account; the driver counts them
            failed += 1
            emit({"jid": jid, "ok": False, "error": "%s: %s" % (type(e).__name__, e)})
        c.disconnect()
    return 1 if failed else 0


if __name__ == "__main__":
    p = argparse.ArgumentParser()
    p.add_argument("--port", type=int, required=True)
    p.add_argument("--ca", required=True)
    p.add_argument("--timeout", type=float, default=15)
    p.add_argument("--interval", type=float, default=0.05)
    p.add_argument("--retry", type=float, default=0.1)
    p.add_argument("--drain", type=float, default=10)
    p.add_argument("mode", choices=["chat", "logins"])
    p.add_argument("accounts", nargs="+")
    logging.basicConfig(level=logging.CRITICAL)
    args = p.parse_args()
    if len(args.accounts) % 2 or (args.mode == "chat" and len(args.accounts) != 4):
        p.error("accounts are JID PASSWORD pairs (chat takes exactly two)")
    try:
        sys.exit(asyncio.get_event_loop().run_until_complete(chat(args) if args.mode == "chat" else logins(args)))
    except Exception as e:  # the driver reads the reason from the JSON
        emit({"error": "%s: %s" % (type(e).__name__, e)})
        sys.exit(1)
