package client

import (
	"context"
	"fmt"
	"strings"

	"github.com/wschat/xmppws/xmpp"
)

// AuthOAuthBearer authenticates with SASL OAUTHBEARER (RFC 7628) and a
// bearer token; authzid, when set, is put in the GS2 header. On the
// server's error challenge it sends the dummy response the RFC asks for
// and returns the <failure/> as *AuthError, with the challenge's JSON in
// its Text when the failure has none.
func (c *Client) AuthOAuthBearer(ctx context.Context, authzid, token string) error {
	a := ""
	if authzid != "" {
		a = "a=" + strings.NewReplacer("=", "=3D", ",", "=2C").Replace(authzid)
	}
	msg := "n," + a + ",\x01auth=Bearer " + token + "\x01\x01"
	if err := c.Send(ctx, saslAuth("OAUTHBEARER", msg)); err != nil {
		return fmt.Errorf("client: OAUTHBEARER: %w", err)
	}
	el, data, err := c.saslNext(ctx)
	if err != nil {
		return err
	}
	switch el.Tag {
	case "success":
		return nil
	case "challenge":
		r := xmpp.Elem("response", xmpp.NSSASL)
		r.SetText("AQ==") // a lone kvsep (0x01)
		if err := c.Send(ctx, r); err != nil {
			return fmt.Errorf("client: OAUTHBEARER: %w", err)
		}
		_, _, err := c.saslNext(ctx)
		if ae, ok := err.(*AuthError); ok && ae.Text == "" {
			ae.Text = data
		}
		if err == nil {
			return fmt.Errorf("client: OAUTHBEARER: success after an error challenge")
		}
		return err
	}
	return fmt.Errorf("client: OAUTHBEARER: unexpected <%s/> from the server", el.Tag)
}
