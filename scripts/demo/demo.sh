#!/usr/bin/env bash
# make demo: the whole flow once, in a temporary directory, saying what
# happens at each step.
set -euo pipefail
BIN=$(cd "${BIN:-bin}" && pwd)
T=$(mktemp -d)
chmod 700 "$T"
cleanup() { [ -n "${pid:-}" ] && kill "$pid" 2>/dev/null && wait "$pid" 2>/dev/null; rm -rf "$T"; }
trap cleanup EXIT
cd "$T"
export AMANA_HOME=$T/home
say() { printf '\n== %s\n' "$*"; }
run() { printf '$ %s\n' "$*" >&2; "$@"; }
amana() { "$BIN/amana" "$@"; }

say "1. A desk admin and two handlers make their keys (post-quantum age keys; no passphrase in this demo)"
for who in admin alice bob; do run amana keygen -o $who.key --name $who --no-passphrase 2>&1 | grep -v warning; amana card -i $who.key > $who.card; done

say "2. The operator creates the relay and pins the admin's key"
run "$BIN/amana-relay" init --data relay-data --admin admin.card

say "3. The relay starts on loopback"
"$BIN/amana-relay" serve --data relay-data --no-tor --listen 127.0.0.1:0 > relay.out 2> relay.log &
pid=$!
for _ in $(seq 50); do grep -q listening relay.out 2>/dev/null && break; sleep 0.1; done
URL=$(sed -n 's/.*listening on //p' relay.out)
echo "relay at $URL"

say "4. The admin signs a desk: 'incident' goes to alice and bob, 'sea' (sexual exploitation and abuse) to alice only"
run amana desk create --id helpdesk --title "Helpdesk" --handler alice.card --handler bob.card \
  --category incident=alice,bob --category sea=alice -i admin.key -o desk.json
run amana desk publish desk.json --relay "$URL" -i admin.key
FP=$(amana desk show desk.json | sed -n 's/^fingerprint: *//p')

say "5. A submitter sends a report in Arabic with a photo, pinned to the desk's fingerprint"
printf 'تلقيت تهديدات بعد نشر التقرير.\nI received threats after the report was published.\n' > report.txt
head -c 300000 /dev/urandom > photo.jpg
run amana submit --relay "$URL" --desk helpdesk --category sea --desk-fingerprint "$FP" --message-file report.txt --file photo.jpg

say "6. What the relay holds is ciphertext: the report's words are not in its data"
if grep -rq "threats" relay-data; then echo "FOUND PLAINTEXT ON THE RELAY"; exit 1; else echo "no plaintext in relay-data/"; fi

say "7. bob pulls: the report was routed to alice only, so bob gets nothing"
run amana --home home-bob pull --relay "$URL" -i bob.key

say "8. alice pulls, lists, reads and exports"
run amana pull --relay "$URL" -i alice.key
run amana list
ID=$(amana list --json | sed -n 's/.*"id": "\([0-9a-f]*\)".*/\1/p' | head -1)
run amana show "${ID:0:8}" -i alice.key
run amana export "$ID" --out case -i alice.key
cmp -s case/photo.jpg photo.jpg && echo "the exported photo is byte-identical"

say "9. Without amana: the age CLI (the version in go.mod) and tar open the case as pulled"
run "$BIN/age" -d -i alice.key "home/cases/$ID/submission.age" > case.tar
tar -tvf case.tar

say "10. The relay deleted the report once its only handler had it"
run amana pull --relay "$URL" -i alice.key
echo
echo "done: the relay only ever held ciphertext, and only alice could open this report."
