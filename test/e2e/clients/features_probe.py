#!/usr/bin/python3
"""What a real client (Debian's python3-slixmpp) sees of a server's features.

Logs in as JID with STARTTLS to 127.0.0.1:--port, verifying the server's
certificate against --ca (a test CA or the generated self-signed certificate)
for the JID's domain, and prints one JSON object on stdout:

  stream_features  one list per <stream:features> received (before TLS, after
                   TLS, after authentication), each the sorted "{ns}name" of
                   every element inside it (so SASL2's inline Bind2/FAST show)
  server, account  disco#info of the domain and of the user's bare JID:
                   {"features": [...], "identities": [[category, type], ...],
                    "forms": {FORM_TYPE: {var: [values]}}} (XEP-0128 extensions)
  infos            disco#info of each --info JID (another local domain, say)
  items            disco#items of the domain: {jid: disco#info of that jid}
  muc              for each item offering http://jabber.org/protocol/muc: a
                   room is created (self-presence with status 110), configured
                   as an instant room, and a groupchat message comes back
  upload           for each item offering urn:xmpp:http:upload:0: a slot is
                   requested, the file PUT and then GET back over plain HTTP
                   from 127.0.0.1:--http-port (Host header from the slot URL);
                   the Go test fetches the slot's own https URL itself
  error            set when something failed; the Go test prints it

Nothing here decides what is expected: the Go test compares this with the plan.
"""
import asyncio
import hashlib
import json
import logging
import os
import sys
import urllib.parse
import urllib.request

from slixmpp import JID
from slixmpp.xmlstream import ET
from slixmpp.xmlstream.handler import Callback
from slixmpp.xmlstream.matcher import MatchXPath

sys.dont_write_bytecode = True  # no __pycache__ in the source tree when xmppclient is imported
import xmppclient  # noqa: E402 (after the line above)

NS_MUC = "http://jabber.org/protocol/muc"
NS_MUC_USER = "http://jabber.org/protocol/muc#user"
NS_MUC_OWNER = "http://jabber.org/protocol/muc#owner"
NS_UPLOAD = "urn:xmpp:http:upload:0"
FEATURES = "{http://etherx.jabber.org/streams}features"


class Probe(xmppclient.SessionClient):
    def __init__(self, args):
        # The certificate must name the XMPP domain.
        super().__init__(args.jid, args.password, args.ca, check_hostname=True)
        self.args = args
        self.stream_features = []
        self.register_handler(Callback("capture features", MatchXPath(FEATURES), self._features))
        self.register_plugin("xep_0030")
        self.register_plugin("xep_0045")
        self.register_plugin("xep_0363")

    def _features(self, stanza):
        self.stream_features.append(sorted({el.tag for el in stanza.xml.iter() if el is not stanza.xml}))

    async def info(self, jid):
        iq = await self["xep_0030"].get_info(jid=jid, timeout=self.args.timeout)
        di = iq["disco_info"]
        forms = {}
        for x in di.xml.findall("{jabber:x:data}x"):
            fields = {}
            for f in x.findall("{jabber:x:data}field"):
                fields[f.get("var")] = [v.text or "" for v in f.findall("{jabber:x:data}value")]
            forms[(fields.pop("FORM_TYPE", None) or [""])[0]] = fields
        return {"features": sorted(di["features"]),
                "identities": sorted([i[0], i[1]] for i in di["identities"]),
                "forms": forms}

    async def join_room(self, service):
        room = JID("e2e-probe@" + service)
        me = JID(str(room) + "/probe")
        joined = asyncio.get_event_loop().create_future()
        echoed = asyncio.get_event_loop().create_future()

        def on_presence(p):
            if p["from"] != me or joined.done():
                return
            if p["type"] == "error":
                joined.set_exception(RuntimeError("join %s: %s" % (room, p["error"]["condition"])))
                return
            x = p.xml.find("{%s}x" % NS_MUC_USER)
            codes = sorted(s.get("code") for s in x.findall("{%s}status" % NS_MUC_USER)) if x is not None else []
            joined.set_result(codes)

        def on_message(m):
            if m["type"] == "groupchat" and m["from"] == me and m["body"] == "hello room" and not echoed.done():
                echoed.set_result(True)

        self.add_event_handler("presence", on_presence)
        self.add_event_handler("groupchat_message", on_message)
        pres = self.make_presence(pto=me)
        pres.append(ET.Element("{%s}x" % NS_MUC))
        pres.send()
        codes = await asyncio.wait_for(joined, self.args.timeout)
        if "201" in codes:  # a new, locked room: accept the default configuration
            iq = self.make_iq_set(ito=room)
            q = ET.Element("{%s}query" % NS_MUC_OWNER)
            ET.SubElement(q, "{jabber:x:data}x", type="submit")
            iq.append(q)
            await iq.send(timeout=self.args.timeout)
        self.send_message(mto=room, mbody="hello room", mtype="groupchat")
        await asyncio.wait_for(echoed, self.args.timeout)
        return {"room": str(room), "status_codes": codes, "message_echoed": True}

    async def upload(self, service):
        data = os.urandom(1024) + b"prosody-pfe e2e upload"
        iq = await self["xep_0363"].request_slot(JID(service), "probe.bin", len(data),
                                                 "application/octet-stream", timeout=self.args.timeout)
        slot = iq["http_upload_slot"]
        put_url, get_url = slot["put"]["url"], slot["get"]["url"]
        headers = {h.get("name"): (h.text or "") for h in slot["put"].xml.findall("{%s}header" % NS_UPLOAD)}
        headers["Content-Type"] = "application/octet-stream"
        put_status = await asyncio.get_event_loop().run_in_executor(
            None, http, "PUT", put_url, self.args.http_port, data, headers, self.args.timeout)
        get_status, body = await asyncio.get_event_loop().run_in_executor(
            None, http_get, get_url, self.args.http_port, self.args.timeout)
        return {"put_url": put_url, "get_url": get_url, "put_status": put_status,
                "get_status": get_status, "same_bytes": body == data,
                "sha256": hashlib.sha256(data).hexdigest()}


def local(url, port):
    """The slot URL sent to 127.0.0.1:port over plain HTTP, and its Host."""
    u = urllib.parse.urlsplit(url)
    return urllib.parse.urlunsplit(("http", "127.0.0.1:%d" % port, u.path, u.query, "")), u.hostname


def http(method, url, port, data, headers, timeout):
    target, host = local(url, port)
    req = urllib.request.Request(target, data=data, method=method, headers=dict(headers, Host=host))
    with urllib.request.urlopen(req, timeout=timeout) as resp:
        return resp.status


def http_get(url, port, timeout):
    target, host = local(url, port)
    req = urllib.request.Request(target, headers={"Host": host})
    with urllib.request.urlopen(req, timeout=timeout) as resp:
        return resp.status, resp.read()


async def main(args, out):
    c = Probe(args)
    c.connect(("127.0.0.1", args.port))
    res = {"stream_features": c.stream_features}
    try:
        await asyncio.wait_for(c.online, args.timeout)
        domain = c.boundjid.domain
        res["server"] = await c.info(domain)
        res["account"] = await c.info(c.boundjid.bare)
        res["infos"] = {jid: await c.info(jid) for jid in args.info}
        items = await c["xep_0030"].get_items(jid=domain, timeout=args.timeout)
        res["items"] = {}
        for item in items["disco_items"]["items"]:
            res["items"][str(item[0])] = await c.info(item[0])
        res["muc"], res["upload"] = {}, {}
        for jid, info in res["items"].items():
            if NS_MUC in info["features"]:
                res["muc"][jid] = await c.join_room(jid)
            if NS_UPLOAD in info["features"]:
                res["upload"][jid] = await c.upload(jid)
    except Exception as e:  # the Go test reads the reason from the JSON
        res["error"] = "%s: %s" % (type(e).__name__, e)
    finally:
        c.disconnect()
    print(json.dumps(res), file=out, flush=True)
    return 1 if "error" in res else 0


if __name__ == "__main__":
    p = xmppclient.arguments(timeout=10)
    p.add_argument("--http-port", type=int, required=True)
    p.add_argument("--info", action="append", default=[], help="also fetch disco#info of this JID")
    p.add_argument("jid")
    p.add_argument("password")
    logging.basicConfig(level=logging.ERROR)
    out = sys.stdout
    sys.stdout = sys.stderr  # slixmpp 1.8.3 prints debris (xep_0045); keep stdout JSON only
    sys.exit(asyncio.get_event_loop().run_until_complete(main(p.parse_args(), out)))
