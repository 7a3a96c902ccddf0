#!/bin/sh
# install.sh: install amana-relay from a release archive on a Debian or
# Ubuntu server, as root. It installs tor if it is missing, makes the system
# user amana-relay, installs the binaries, the systemd units (the relay, and
# a daily backup timer left disabled), the operator guide with every document
# it links to, makes the data and backup directories, and says what to do
# next. It starts nothing and changes no setting of tor's own service. Run it
# again to upgrade: it replaces the binaries, the units and the documents, and
# keeps the data, the backups, /etc/amana-relay and any drop-in of yours in
# /etc/systemd/system/amana-relay.service.d.
#
#   sudo ./deploy/install.sh
#
# ROOT=/some/dir installs under that directory instead of / and skips what
# only makes sense on the real system (apt-get, useradd, chown, systemctl):
# for tests, and to see what it would lay out.
set -eu

ROOT=${ROOT:-}
here=$(cd "$(dirname "$0")/.." && pwd)
user=amana-relay
bindir=$ROOT/usr/local/bin
unitdir=$ROOT/etc/systemd/system
docdir=$ROOT/usr/local/share/doc/amana-relay
confdir=$ROOT/etc/amana-relay
data=$ROOT/var/lib/amana-relay
backups=$ROOT/var/backups/amana-relay
units="amana-relay.service amana-relay-backup.service amana-relay-backup.timer"

say() { printf 'install: %s\n' "$*"; }
fail() { printf 'install: %s\nhint: %s\n' "$1" "$2" >&2; exit 1; }

for f in bin/amana-relay bin/amana deploy/amana-relay.service deploy/amana-relay-backup.service deploy/amana-relay-backup.timer docs/operator.md; do
	[ -f "$here/$f" ] || fail "$here/$f is missing" "run install.sh from an unpacked release archive (make release)"
done

if [ -z "$ROOT" ]; then
	[ "$(id -u)" = 0 ] || fail "install.sh needs root" "run it with sudo"
	if ! command -v tor >/dev/null 2>&1; then
		command -v apt-get >/dev/null 2>&1 || fail "tor is not installed" "install tor from your distribution, then run install.sh again"
		say "installing tor"
		apt-get install -y --no-install-recommends tor >/dev/null
	fi
	if ! getent passwd "$user" >/dev/null; then
		say "creating the system user $user"
		useradd --system --user-group --home-dir /var/lib/amana-relay --no-create-home --shell /usr/sbin/nologin "$user"
	fi
fi

install -d -m 0755 "$bindir" "$unitdir" "$docdir" "$confdir"
install -m 0755 "$here/bin/amana-relay" "$here/bin/amana" "$bindir/"
for u in $units; do
	install -m 0644 "$here/deploy/$u" "$unitdir/$u"
done
# The guide and every document it links to (the release has them all).
for f in "$here"/docs/*.md; do
	install -m 0644 "$f" "$docdir/"
done
# The data directory, and the one for backups (amana-relay-backup.service
# writes there; /var/backups itself is root's): both belong to the relay's
# user alone.
for d in "$data" "$backups"; do
	if [ ! -d "$d" ]; then
		install -d -m 0700 "$d"
		[ -n "$ROOT" ] || chown "$user:$user" "$d"
	fi
	chmod 0700 "$d"
done
say "installed $("$bindir/amana-relay" --version)"

if [ -z "$ROOT" ] && [ -d /run/systemd/system ]; then
	systemctl daemon-reload
	if systemctl is-active --quiet amana-relay; then
		say "restarting the running relay on the new version"
		systemctl restart amana-relay
	fi
fi

cat <<NEXT

Next:
  1. Copy the desk admin's card (from 'amana card -i admin.key') to this server, then:
       sudo -u $user amana-relay init --data /var/lib/amana-relay --admin admin.card
  2. Start the relay, now and at every boot:
       sudo systemctl enable --now amana-relay
  3. Read the onion addresses and check the host:
       sudo -u $user amana-relay status --data /var/lib/amana-relay
       sudo -u $user amana-relay doctor --data /var/lib/amana-relay
  4. Back up every day: put the operator's age public key in
     /etc/amana-relay/backup-recipients, then
       sudo systemctl enable --now amana-relay-backup.timer
     (backups go to /var/backups/amana-relay: copy them off the server).
The guide is in /usr/local/share/doc/amana-relay/operator.md.
NEXT
