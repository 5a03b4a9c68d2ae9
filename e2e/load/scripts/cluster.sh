#!/usr/bin/env bash
# Reproduces the README's cluster load figures: N nodes (1: one node without
# [cluster]; 3: a cluster) on one FerretDB and one embedded NATS server, all
# on loopback, then xmppload spread over the nodes' URLs.
#   e2e/load/scripts/cluster.sh N USERS ROOMS ROOM_SIZE DURATION [xmppload flags...]
#   e2e/load/scripts/cluster.sh 3 1000 20 50 20s -rate 1000 -drain 30s
# NOMAM=1 turns room history off. Ports 27117 (FerretDB), 4322 (NATS) and
# 5391.. (nodes) must be free. Ends only the processes it started.
set -euo pipefail
N=$1; USERS=$2; ROOMS=$3; SIZE=$4; DUR=$5; shift 5
repo="$(cd "$(dirname "$0")/../../.." && pwd)"
W="$(mktemp -d)"; B="$W/bin"; mkdir -p "$B"
(cd "$repo" && go build -o "$B/xmppws" ./server && go build -o "$B/xmppload" ./e2e/cmd/xmppload &&
	go build -o "$B/ferretdb" ./mongo/mongotest/cmd/ferretdb && go build -o "$B/nats" ./cluster/natstest/cmd/nats)
cd "$W"
"$B/ferretdb" -listen 127.0.0.1:27117 -dir "$W/ferret" 2>"$W/ferret.log" & FPID=$!
"$B/nats" -listen 127.0.0.1:4322 -dir "$W/nats" 2>"$W/nats.log" & NPID=$!
pids=""
cleanup() { kill $pids $NPID $FPID 2>/dev/null || true; wait 2>/dev/null || true; }
trap cleanup EXIT
sleep 2
urls=""
for n in $(seq 1 "$N"); do
	mkdir -p "node$n"
	{
		printf '[http]\naddress = "127.0.0.1:539%s"\n[storage]\nbackend = "mongodb"\ndata_dir = "node%s"\n' "$n" "$n"
		printf '[storage.mongodb]\nuri = "mongodb://127.0.0.1:27117"\ndatabase = "load"\n'
		printf '[websocket.shaper]\nstanza_rate = 0.0\nbyte_rate = 0.0\n'
		printf '[modules.mod_muc_light.cache_affs]\ntime_to_live = 120\n'
		if [ -n "${NOMAM:-}" ]; then printf '[modules.mod_mam]\nmuc_light = false\n'; fi
		if [ "$N" -gt 1 ]; then printf '[cluster]\nnats_url = "nats://127.0.0.1:4322"\nnode = "node%s"\n' "$n"; fi
	} >"node$n/xmppws.toml"
	"$B/xmppws" -config "node$n/xmppws.toml" 2>"node$n/log" &
	pids="$pids $!"
	urls="$urls,ws://127.0.0.1:539$n/xmpp-websocket"
done
sleep 3
"$B/xmppload" -url "${urls#,}" -create-users -admin-socket node1/admin.sock -users "$USERS" -rooms "$ROOMS" \
	-room-size "$SIZE" -duration "$DUR" -concurrency 32 "$@" || true
echo "== CPU time and RSS (KiB): the nodes, then NATS and FerretDB"
ps -o pid,times,rss,comm -p "$(echo $pids | tr ' ' ','),$NPID,$FPID"
