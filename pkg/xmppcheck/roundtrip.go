package xmppcheck

import (
	"context"
	"fmt"
	"net/url"
	"strings"
	"time"
)

// Namespaces of the round trips.
const (
	nsMAM       = "urn:xmpp:mam:2"
	nsRSM       = "http://jabber.org/protocol/rsm"
	nsUpload    = "urn:xmpp:http:upload:0"
	nsMUC       = "http://jabber.org/protocol/muc"
	nsMUCUser   = "http://jabber.org/protocol/muc#user"
	nsMUCOwner  = "http://jabber.org/protocol/muc#owner"
	nsForward   = "urn:xmpp:forward:0"
	nsDataForms = "jabber:x:data"
)

// roundTripMAM sends a message to the account itself and finds it in the
// archive with a MAM query (XEP-0313).
func (s *session) roundTripMAM(ctx context.Context, b *lineBuilder) {
	token := "pfe-verify " + randomHex(8)
	bare := s.c.Bare()
	// The server's default policy may archive only contacts' messages (the
	// standard profile's "roster"): the throwaway account asks for all of its
	// own, as a client may (XEP-0313 preferences).
	if _, err := s.c.IQ(ctx, "set", "", "<prefs xmlns='"+nsMAM+"' default='always'/>"); err != nil {
		b.fail("archive: set the account's archive preference to always: %v", err)
		return
	}
	if err := s.c.Send(ctx, "<message type='chat' to='"+escape(bare)+"' id='"+newID()+"'><body>"+escape(token)+"</body></message>"); err != nil {
		b.fail("archive: send a message to itself: %v", err)
		return
	}
	// The archive is written as the message is routed; a few tries cover a slow store.
	for try := 0; try < 5; try++ {
		qid := newID()
		_, err := s.c.IQ(ctx, "set", "", "<query xmlns='"+nsMAM+"' queryid='"+qid+"'><set xmlns='"+nsRSM+"'><max>20</max><before/></set></query>")
		if err != nil {
			b.fail("archive: MAM query refused: %v", err)
			return
		}
		// The results arrive before the query's answer, so they are queued by now.
		results := s.c.Take(func(e *Element) bool {
			r := e.Child(nsMAM, "result")
			return e.XMLName.Local == "message" && r != nil && r.Attr("queryid") == qid
		})
		for _, res := range results {
			if m := res.Find("result", "forwarded", "message", "body"); m != nil && m.Text == token {
				b.pass("archive: a message to itself was archived and found by a MAM query")
				return
			}
		}
		select {
		case <-ctx.Done():
			b.fail("archive: %v", ctx.Err())
			return
		case <-time.After(100 * time.Millisecond):
		}
	}
	b.fail("archive: the message sent to itself is not in the MAM archive")
}

// roundTripUpload asks the upload component for a slot (XEP-0363) and
// uploads nothing, so nothing is stored.
func (s *session) roundTripUpload(ctx context.Context, b *lineBuilder) {
	addr := s.componentAddr("upload")
	if addr == "" {
		return
	}
	res, err := s.c.IQ(ctx, "get", addr, "<request xmlns='"+nsUpload+"' filename='pfe-verify.txt' size='16' content-type='text/plain'/>")
	if err != nil {
		b.fail("upload: slot refused by %s: %v", addr, err)
		return
	}
	put := res.Find("slot", "put")
	get := res.Find("slot", "get")
	if put == nil || get == nil || put.Attr("url") == "" {
		b.fail("upload: %s answered without a put and get URL", addr)
		return
	}
	u, err := url.Parse(put.Attr("url"))
	if err != nil {
		b.fail("upload: slot URL unreadable: %v", err)
		return
	}
	b.pass("upload: slot granted by %s (PUT to %s://%s%s)", addr, u.Scheme, u.Host, u.Path[:min(len(u.Path), strings.LastIndex(u.Path, "/")+1)])
}

// roundTripMUC creates a room on the MUC component (XEP-0045), unlocks it as
// an instant room and destroys it.
func (s *session) roundTripMUC(ctx context.Context, b *lineBuilder, cleanup *[]string) {
	addr := s.componentAddr("muc")
	if addr == "" {
		return
	}
	room := "pfe-verify-" + randomHex(6) + "@" + addr
	if err := s.c.Send(ctx, "<presence to='"+escape(room)+"/verify'><x xmlns='"+nsMUC+"'/></presence>"); err != nil {
		b.fail("muc: join %s: %v", room, err)
		return
	}
	pres, err := s.c.Await(ctx, func(e *Element) bool {
		return e.XMLName.Local == "presence" && strings.HasPrefix(e.Attr("from"), room+"/")
	})
	if err != nil {
		b.fail("muc: no answer to joining %s: %v", room, err)
		return
	}
	if pres.Attr("type") == "error" {
		b.fail("muc: creating %s refused: %v", room, stanzaError(pres))
		return
	}
	created := false
	if x := pres.Child(nsMUCUser, "x"); x != nil {
		for _, st := range x.Children {
			if st.XMLName.Local == "status" && st.Attr("code") == "201" {
				created = true
			}
		}
	}
	if _, err := s.c.IQ(ctx, "set", room, "<query xmlns='"+nsMUCOwner+"'><x xmlns='"+nsDataForms+"' type='submit'/></query>"); err != nil && created {
		b.fail("muc: configure the new room %s: %v", room, err)
	}
	if _, err := s.c.IQ(ctx, "set", room, "<query xmlns='"+nsMUCOwner+"'><destroy/></query>"); err != nil {
		*cleanup = append(*cleanup, fmt.Sprintf("could not destroy the room %s: %v", room, err))
		b.fail("muc: destroy %s: %v", room, err)
		return
	}
	if !created {
		b.fail("muc: joined %s but the server did not say it created the room (status 201)", room)
		return
	}
	b.pass("muc: room %s created, joined and destroyed", room)
}
