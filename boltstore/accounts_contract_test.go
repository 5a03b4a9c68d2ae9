package boltstore

import (
	"testing"

	"github.com/wschat/xmppws/account"
	"github.com/wschat/xmppws/account/accounttest"
)

func TestAccountStoreContract(t *testing.T) {
	accounttest.Run(t, func(t *testing.T) account.Store { return openTemp(t) })
}
