#!/usr/bin/env bash
# make run: a relay on loopback with a demo desk. The demo keys have no
# passphrase and live in $DATA: never use them for real reports.
set -euo pipefail
BIN=${BIN:-bin} DATA=${DATA:-demo-data} PORT=${PORT:-8080}
amana() { "$BIN/amana" "$@"; }
relay() { "$BIN/amana-relay" "$@"; }
URL=http://127.0.0.1:$PORT
export AMANA_HOME=$DATA/home

if [ ! -f "$DATA/desk.json" ]; then
  mkdir -p -m 700 "$DATA" "$DATA/keys"
  echo "setting up a demo desk in $DATA (keys without passphrases: for trying Amana only)"
  for who in admin alice bob; do
    amana keygen -o "$DATA/keys/$who.key" --name "$who" --no-passphrase 2>/dev/null
    amana card -i "$DATA/keys/$who.key" > "$DATA/keys/$who.card"
  done
  relay init --data "$DATA/relay" --admin "$DATA/keys/admin.card" >/dev/null 2>&1
  amana desk create --id helpdesk --title "Demo helpdesk" \
    --description "A demo desk on this machine. Reports about sexual exploitation and abuse reach only alice." \
    --handler "$DATA/keys/alice.card" --handler "$DATA/keys/bob.card" \
    --category incident=alice,bob --category-title incident="Digital safety incident" \
    --category sea=alice --category-title sea="Sexual exploitation and abuse" \
    -i "$DATA/keys/admin.key" -o "$DATA/desk.json" 2>/dev/null
fi

# The relay itself in the background (not through the relay function, which
# would put a subshell between), so that $pid is the relay.
"$BIN/amana-relay" serve --data "$DATA/relay" --no-tor --listen "127.0.0.1:$PORT" &
pid=$!
# Ctrl-C (or a TERM) stops the relay and ends the script with status 0, so
# that make does not report the interrupt as an error; the terminal sends the
# relay the same SIGINT, and it shuts down cleanly. If the script fails on its
# own, the relay goes with it.
stop() {
  trap - INT TERM EXIT
  kill -INT "$pid" 2>/dev/null || true
  wait "$pid" 2>/dev/null || true
  echo "stopped the relay"
  exit 0
}
trap stop INT TERM
trap 'kill "$pid" 2>/dev/null || true' EXIT
for _ in $(seq 50); do
  (exec 3<>"/dev/tcp/127.0.0.1/$PORT") 2>/dev/null && break
  kill -0 $pid 2>/dev/null || { echo "the relay did not start"; exit 1; }
  sleep 0.1
done
amana desk publish "$DATA/desk.json" --relay "$URL" -i "$DATA/keys/admin.key" 2>/dev/null
FP=$(amana desk show "$DATA/desk.json" | awk -F': *' '/^fingerprint/{print $2}')
cat <<MSG

The relay is running on $URL with desk "helpdesk" (fingerprint $FP).
In another terminal, from $(pwd), try:

  export AMANA_HOME=$DATA/home
  echo "what happened, when, where" > /tmp/report.txt
  $BIN/amana submit --relay $URL --desk helpdesk --category incident \\
      --desk-fingerprint "$FP" --message-file /tmp/report.txt --file README.md
  $BIN/amana pull --relay $URL -i $DATA/keys/alice.key
  $BIN/amana list
  $BIN/amana show ID -i $DATA/keys/alice.key
  $BIN/amana export ID --out /tmp/case -i $DATA/keys/alice.key

A report in category "sea" reaches alice only: bob's key cannot open it.
Press Ctrl-C to stop the relay; 'make clean' removes $DATA.
MSG
# Until Ctrl-C, or until the relay stops by itself: then its status is ours.
wait "$pid"
