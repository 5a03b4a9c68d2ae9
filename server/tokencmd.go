package main

import (
	"context"
	"errors"
	"fmt"
	"time"

	"github.com/wschat/xmppws/account"
	"github.com/wschat/xmppws/xmpp"
)

// tokens runs "user tokens" and "user revoke-tokens" (the XEP-0484 FAST
// tokens of one account). A listing shows what an operator needs to tell
// the clients apart and never the token: the store does not have it.
func (a *admin) tokens(ctx context.Context, req adminRequest, j xmpp.JID) ([]string, error) {
	ts, ok := a.accounts.(account.TokenStore)
	if !ok {
		return nil, errors.New("this store keeps no FAST tokens")
	}
	if _, err := a.accounts.Account(ctx, j); err != nil {
		return nil, err
	}
	if req.Cmd == "user_revoke_tokens" {
		var ids []string
		if req.TokenID != "" {
			ids = []string{req.TokenID}
		}
		n, err := ts.DeleteTokens(ctx, j, ids...)
		if err != nil {
			return nil, err
		}
		if n == 0 && req.TokenID != "" {
			return nil, fmt.Errorf("%s has no token %q", j, req.TokenID)
		}
		return []string{fmt.Sprintf("revoked %d token(s)", n)}, nil
	}
	list, err := ts.Tokens(ctx, j)
	if err != nil {
		return nil, err
	}
	out := make([]string, 0, len(list))
	for _, t := range list {
		used := "never"
		if !t.LastUsed.IsZero() {
			used = t.LastUsed.UTC().Format(time.RFC3339)
		}
		client := t.Software
		if t.Device != "" {
			client += " on " + t.Device
		}
		out = append(out, fmt.Sprintf("%s\tcreated %s\tlast used %s\texpires %s\t%s\t(user-agent %s, %s)",
			t.ID, t.Created.UTC().Format(time.RFC3339), used, t.Expires.UTC().Format(time.RFC3339),
			client, t.UserAgent, t.Mechanism))
	}
	return out, nil
}
