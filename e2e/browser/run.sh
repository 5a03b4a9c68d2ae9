#!/usr/bin/env bash
# Browser end-to-end test of the web client. Installs what is missing
# (Debian's Chromium, playwright-core from package-lock.json), builds the
# server and runs the test with Node's test runner. Works on a clean clone
# with only Go, Node 20 and npm present (as root, or with sudo, for apt-get).
set -euo pipefail
cd "$(dirname "$0")/../.."

if [ ! -x /usr/bin/chromium ]; then
	echo "== installing chromium"
	sudo=""
	if [ "$(id -u)" -ne 0 ]; then sudo="sudo"; fi
	$sudo apt-get update
	$sudo env DEBIAN_FRONTEND=noninteractive apt-get install -y chromium
fi

if [ ! -d e2e/browser/node_modules ]; then
	echo "== npm ci (e2e/browser)"
	(cd e2e/browser && npm ci --no-audit --no-fund)
fi

# A binary the caller built already (CI exports XMPPWS_BIN) is used as is.
if [ -z "${XMPPWS_BIN:-}" ] || [ ! -x "$XMPPWS_BIN" ]; then
	tmp="$(mktemp -d)"
	trap 'rm -rf "$tmp"' EXIT
	echo "== go build ./server"
	go build -o "$tmp/xmppws" ./server
	export XMPPWS_BIN="$tmp/xmppws"
fi

# --experimental-websocket: xmpp.js (dialects.test.mjs) needs a global WebSocket on Node 20.
echo "== node --test e2e/browser/"
node --experimental-websocket --test e2e/browser/
