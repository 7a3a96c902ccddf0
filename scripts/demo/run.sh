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

relay serve --data "$DATA/relay" --no-tor --listen "127.0.0.1:$PORT" &
pid=$!
trap 'kill $pid 2>/dev/null; wait $pid 2>/dev/null' EXIT INT TERM
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
wait $pid
