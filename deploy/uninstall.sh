#!/usr/bin/env bash
# Stops rdock and removes it from this host. Run as root.
#
#   deploy/uninstall.sh [--purge]
#
# Stops the daemons (systemd units, or the ones install.sh started in the
# background) and any other process running an installed rdock binary,
# unmounts what is still mounted under /var/lib/rdock and /run/rdock, removes
# rdock's nftables table and bridge, the binaries, the unit files, the state,
# runtime and log directories. --purge also removes /etc/rdock (configs and
# the PKI: clients' certificates then no longer work) and /etc/default/rdock.
# Idempotent.
set -euo pipefail

PREFIX=/usr/local/bin
UNITS=/etc/systemd/system
DAEMONS=(runtimed netd imaged) # stop order: runtimed first
STATE_DIRS=(/var/lib/rdock /run/rdock)

say() { echo "==> $*"; }
die() {
	echo "uninstall.sh: $*" >&2
	exit 1
}

purge=0
case ${1:-} in
"") ;;
--purge) purge=1 ;;
-h | --help)
	sed -n '2,/^set -euo/{/^set -euo/d;s/^# \{0,1\}//;p}' "${BASH_SOURCE[0]}"
	exit 0
	;;
*) die "unknown argument: $1 (see --help)" ;;
esac
[ "$(id -u)" = 0 ] || die "must run as root (try: sudo $0)"

alive() { readlink "/proc/$1/exe" >/dev/null 2>&1; }
# Sends TERM to the given pids, waits up to 15 s, then KILLs what is left.
stop_pids() {
	local pid i left
	[ $# -gt 0 ] || return 0
	kill -TERM "$@" 2>/dev/null || true
	for ((i = 0; i < 150; i++)); do
		left=0
		for pid in "$@"; do alive "$pid" && left=1; done
		[ "$left" = 0 ] && return 0
		sleep 0.1
	done
	kill -KILL "$@" 2>/dev/null || true
	sleep 0.2
}

# --- stop --------------------------------------------------------------------
if [ -d /run/systemd/system ] && [ "$(cat /proc/1/comm 2>/dev/null)" = systemd ]; then
	for d in "${DAEMONS[@]}"; do
		u=rdock-$d.service
		if systemctl cat "$u" >/dev/null 2>&1; then
			say "stopping $u"
			systemctl disable --now --quiet "$u" || true
		fi
	done
fi
# Processes started by install.sh without systemd, and anything else running
# an installed rdock binary (such as a container's shim, which outlives
# runtimed). Daemons of tests or benchmarks run from target/ are not touched.
for d in "${DAEMONS[@]}"; do
	pid=$(cat "/run/rdock/$d.pid" 2>/dev/null || true)
	case $(readlink "/proc/${pid:-0}/exe" 2>/dev/null || true) in
	"$PREFIX/rdock-$d" | "$PREFIX/rdock-$d (deleted)")
		say "stopping rdock-$d (pid $pid)"
		stop_pids "$pid"
		;;
	esac
done
others=()
for exe in /proc/[0-9]*/exe; do
	case $(readlink "$exe" 2>/dev/null || true) in
	"$PREFIX"/rdock*)
		pid=${exe#/proc/}
		others+=("${pid%/exe}")
		;;
	esac
done
if [ ${#others[@]} -gt 0 ]; then
	say "stopping other rdock processes: ${others[*]}"
	stop_pids "${others[@]}"
fi

# --- unmount -----------------------------------------------------------------
# Mount points under the state dirs, deepest first (reverse order puts a path
# after everything below it). /proc/self/mountinfo escapes blanks as \040.
mounts_under() {
	local dir
	for dir in "${STATE_DIRS[@]}"; do
		awk -v d="$dir" '$5 == d || index($5, d "/") == 1 { print $5 }' /proc/self/mountinfo
	done | while IFS= read -r m; do printf '%b\n' "$m"; done | LC_ALL=C sort -ru
}
for _ in 1 2 3 4 5; do
	mapfile -t mounts < <(mounts_under)
	[ ${#mounts[@]} -gt 0 ] || break
	say "unmounting ${#mounts[@]} mount(s) under ${STATE_DIRS[*]}"
	for m in "${mounts[@]}"; do
		umount "$m" 2>/dev/null || umount -l "$m" 2>/dev/null || true
	done
done
mapfile -t mounts < <(mounts_under)
[ ${#mounts[@]} -eq 0 ] || die "still mounted, not removing state: ${mounts[*]}"

# --- network leftovers (netd's nftables table and bridges) ------------------
# netd knows every bridge, veth and rule it made (user networks' rdk-*
# bridges too): let it remove them, with the installed config.
if [ -x "$PREFIX/rdock-netd" ]; then
	if "$PREFIX/rdock-netd" --cleanup >/dev/null 2>&1; then
		say "removed rdock's bridges, veths and nftables rules"
	fi
fi
if command -v nft >/dev/null; then
	for family in ip inet; do
		if nft delete table "$family" rdock 2>/dev/null; then
			say "deleted nftables table $family rdock"
		fi
	done
fi
if command -v ip >/dev/null && ip link show rdock0 >/dev/null 2>&1; then
	ip link delete rdock0
	say "deleted bridge rdock0"
fi

# --- cgroups ---------------------------------------------------------------------
# The runtime daemon's cgroup parent (`rdock` unless cgroup_parent says
# otherwise) in every hierarchy: empty once the containers are gone.
cgparent=$(sed -n 's/^[[:space:]]*cgroup_parent[[:space:]]*=[[:space:]]*"\([^"]*\)".*/\1/p' \
	/etc/rdock/runtimed.toml 2>/dev/null | head -n 1)
cgparent=${cgparent:-rdock}
for h in /sys/fs/cgroup /sys/fs/cgroup/*; do
	[ -d "$h/$cgparent" ] || continue
	if find "$h/$cgparent" -depth -type d -exec rmdir {} + 2>/dev/null; then
		say "removed cgroup $h/$cgparent"
	else
		echo "uninstall.sh: cgroup $h/$cgparent still has processes; left in place" >&2
	fi
done

# --- files -------------------------------------------------------------------
removed=()
for f in "$PREFIX"/rdock* "$UNITS"/rdock-*.service; do
	[ -e "$f" ] || [ -L "$f" ] || continue
	rm -f "$f"
	removed+=("$f")
done
if [[ " ${removed[*]} " == *".service "* ]] && [ -d /run/systemd/system ] &&
	[ "$(cat /proc/1/comm 2>/dev/null)" = systemd ]; then
	systemctl daemon-reload
fi
dirs=("${STATE_DIRS[@]}" /var/log/rdock /run/lock/rdock-install.lock)
[ "$purge" = 1 ] && dirs+=(/etc/rdock /etc/default/rdock)
for d in "${dirs[@]}"; do
	if [ -e "$d" ]; then
		# --one-file-system: never follow a mount we failed to see into the host.
		rm -rf --one-file-system "$d"
		removed+=("$d")
	fi
done
if [ ${#removed[@]} -gt 0 ]; then
	say "removed ${removed[*]}"
else
	say "nothing to remove"
fi
[ "$purge" = 1 ] || [ ! -d /etc/rdock ] || say "kept /etc/rdock (configs and PKI); --purge removes it"
