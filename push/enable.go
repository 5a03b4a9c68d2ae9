package push

import (
	"context"
	"errors"

	"github.com/beevik/etree"

	"github.com/wschat/xmppws/push/pushstore"
	"github.com/wschat/xmppws/xmpp"
)

// Bounds of one enable request: a node and a publish-options value are
// opaque tokens to us, but they are stored and sent with every
// notification.
const (
	maxNodeLen     = 1024
	maxOptionLen   = 1024
	maxOptionCount = 16
)

// HandleStanza implements ws.Service for iqs in NS that a user sends to
// their own account: <enable/> and <disable/> of XEP-0357 §5 and §6.
func (s *Service) HandleStanza(ctx context.Context, st *xmpp.Stanza) {
	if st.Kind != xmpp.KindIQ || (st.Type != "get" && st.Type != "set") {
		return
	}
	el := st.El.ChildElements()[0]
	var err error
	switch {
	case !s.opts.XEP0357:
		err = xmpp.NewError(xmpp.ServiceUnavailable, "push notifications are off on this server")
	case st.Type != "set":
		err = xmpp.NewError(xmpp.BadRequest, "enable and disable are iq sets")
	case el.Tag == "enable":
		err = s.enable(ctx, st, el)
	case el.Tag == "disable":
		err = s.disable(ctx, st, el)
	default:
		err = xmpp.NewError(xmpp.FeatureNotImplemented, "")
	}
	if err != nil {
		se := xmpp.AsStanzaError(err)
		if se == nil {
			s.log.Error("push registration", "user", st.From.Bare().String(), "err", err)
			se = xmpp.NewError(xmpp.InternalServerError, "")
		}
		s.opts.Router.Deliver(st.From, xmpp.NewOutbound(xmpp.ErrorReply(st, se)))
		return
	}
	s.opts.Router.Deliver(st.From, xmpp.NewOutbound(xmpp.ResultIQ(st, nil)))
}

// appServer reads and checks the jid attribute.
func (s *Service) appServer(el *etree.Element) (xmpp.JID, error) {
	raw := xmpp.Attr(el, "jid")
	if raw == "" {
		return xmpp.JID{}, xmpp.NewError(xmpp.BadRequest, "the app server's jid is missing")
	}
	j, err := xmpp.ParseJID(raw)
	if err != nil {
		return xmpp.JID{}, xmpp.NewError(xmpp.JIDMalformed, "the app server's jid is not a valid JID")
	}
	return j, nil
}

func (s *Service) enable(ctx context.Context, st *xmpp.Stanza, el *etree.Element) error {
	j, err := s.appServer(el)
	if err != nil {
		return err
	}
	node := xmpp.Attr(el, "node")
	switch {
	case !s.hosts[j.Domain]:
		return xmpp.NewError(xmpp.RemoteServerNotFound, "this server does not federate: the app server must be a user of this server (or use the webhook)")
	case j.Local == "":
		return xmpp.NewError(xmpp.BadRequest, "the app server must be a user of this server")
	case node == "":
		return xmpp.NewError(xmpp.BadRequest, "the node is missing")
	case len(node) > maxNodeLen:
		return xmpp.NewError(xmpp.NotAcceptable, "the node is too long")
	}
	opts, err := publishOptions(el)
	if err != nil {
		return err
	}
	r := pushstore.Registration{Account: st.From.Bare(), JID: j, Node: node, Options: opts, Created: s.opts.Now().UTC()}
	err = s.opts.Store.EnablePush(ctx, r, s.opts.MaxRegistrations)
	if errors.Is(err, pushstore.ErrTooMany) {
		return xmpp.NewError(xmpp.ResourceConstraint, "this account has as many push registrations as it may; disable one first")
	}
	if err == nil {
		s.log.Debug("push enabled", "user", r.Account.String(), "app_server", j.String())
	}
	return err
}

func (s *Service) disable(ctx context.Context, st *xmpp.Stanza, el *etree.Element) error {
	j, err := s.appServer(el)
	if err != nil {
		return err
	}
	n, err := s.opts.Store.DisablePush(ctx, st.From.Bare(), j, xmpp.Attr(el, "node"))
	if err == nil {
		s.log.Debug("push disabled", "user", st.From.Bare().String(), "app_server", j.String(), "registrations", n)
	}
	return err
}

// publishOptions reads the optional publish-options form of an enable: its
// fields but FORM_TYPE, one value each.
func publishOptions(el *etree.Element) ([]pushstore.Field, error) {
	x := xmpp.Child(el, "x", xmpp.NSDataForm)
	if x == nil {
		return nil, nil
	}
	var out []pushstore.Field
	for _, f := range xmpp.Children(x, "field", xmpp.NSDataForm) {
		v := ""
		if ve := xmpp.Child(f, "value", xmpp.NSDataForm); ve != nil {
			v = ve.Text()
		}
		name := xmpp.Attr(f, "var")
		switch {
		case name == "FORM_TYPE":
			if v != FormPublishOpt {
				return nil, xmpp.NewError(xmpp.BadRequest, "the form is not "+FormPublishOpt)
			}
			continue
		case name == "":
			return nil, xmpp.NewError(xmpp.BadRequest, "a publish-options field has no var")
		case len(v) > maxOptionLen || len(name) > maxOptionLen:
			return nil, xmpp.NewError(xmpp.NotAcceptable, "a publish-options field is too long")
		}
		out = append(out, pushstore.Field{Var: name, Value: v})
	}
	if len(out) > maxOptionCount {
		return nil, xmpp.NewError(xmpp.NotAcceptable, "too many publish-options fields")
	}
	return out, nil
}
