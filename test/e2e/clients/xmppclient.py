"""What the e2e test clients beside this file share (Debian's python3-slixmpp).

The scripts are run by path, so this directory is on sys.path and they import it
as `xmppclient`. It holds the TLS setup every client needs against Prosody 13, a
ClientXMPP whose `online` future settles when the session starts or cannot, and
the JSON-out conventions the Go tests read.
"""
import argparse
import asyncio
import json
import logging
import ssl
import sys

from slixmpp import ClientXMPP


def arguments(timeout):
    """A parser with the options every client takes: --port (the c2s port on
    127.0.0.1), --ca (the PEM file to trust) and --timeout (seconds; default timeout)."""
    p = argparse.ArgumentParser()
    p.add_argument("--port", type=int, required=True)
    p.add_argument("--ca", required=True)
    p.add_argument("--timeout", type=float, default=timeout)
    return p


def emit(obj):
    """Print obj as one JSON line on stdout, flushed (the Go tests read lines as they come)."""
    print(json.dumps(obj), flush=True)


def tls_context(ca, check_hostname):
    """An SSL context that trusts only the PEM file ca (a test CA or the server's
    self-signed certificate), with TLS capped at 1.2 (see below)."""
    ctx = ssl.create_default_context(cafile=ca)
    # With check_hostname False the certificate is still verified against ca; it
    # just names the XMPP domain while the client dials 127.0.0.1.
    ctx.check_hostname = check_hostname
    ctx.verify_mode = ssl.CERT_REQUIRED
    # slixmpp 1.8.3 knows only the tls-unique channel binding, which TLS 1.3
    # does not define: over 1.3 its SCRAM-*-PLUS fails and its fallback
    # SCRAM sends the "y" flag, which Prosody 13 (it offers -PLUS) rightly
    # takes for a downgrade attack. Over TLS 1.2 it logs in with -PLUS.
    ctx.maximum_version = ssl.TLSVersion.TLSv1_2
    return ctx


class SessionClient(ClientXMPP):
    """A ClientXMPP that pins the server certificate (ca) and sets `online` to True
    once the session started and session_ready() returned, or to a RuntimeError
    naming the reason: failed authentication, or (when FAIL_ON_EARLY_DISCONNECT)
    a disconnect before the session started. `disconnects` counts disconnects."""

    FAIL_ON_EARLY_DISCONNECT = True

    def __init__(self, jid, password, ca, check_hostname=False):
        super().__init__(jid, password)
        self.ssl_context = tls_context(ca, check_hostname)
        self.online = asyncio.get_event_loop().create_future()
        self.disconnects = 0
        self.add_event_handler("session_start", self._started)
        self.add_event_handler("failed_auth", self._failed)
        self.add_event_handler("disconnected", self._disconnected)

    async def session_ready(self):
        """Runs after the initial presence and before `online` is set; override to
        fetch what the session needs first (the roster, say)."""

    async def _started(self, _):
        self.send_presence()
        await self.session_ready()
        if not self.online.done():
            self.online.set_result(True)

    def _failed(self, _):
        if not self.online.done():
            self.online.set_exception(RuntimeError("authentication failed for " + str(self.boundjid.bare)))

    def _disconnected(self, _):
        self.disconnects += 1
        if self.FAIL_ON_EARLY_DISCONNECT and not self.online.done():
            self.online.set_exception(RuntimeError("disconnected before the session started"))


async def login(client, port, timeout):
    """Connect client to 127.0.0.1:port and wait up to timeout seconds for its
    session; returns client, or raises what `online` was set to (or a timeout)."""
    client.connect(("127.0.0.1", port))
    await asyncio.wait_for(client.online, timeout)
    return client


def run(main, args):
    """Run main(args) to completion and exit with its code; an exception becomes a
    {"error": "Type: message"} line (the Go test reads the reason from it) and exit 1."""
    logging.basicConfig(level=logging.ERROR)
    try:
        sys.exit(asyncio.get_event_loop().run_until_complete(main(args)))
    except Exception as e:
        emit({"error": "%s: %s" % (type(e).__name__, e)})
        sys.exit(1)
