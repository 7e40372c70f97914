# Shell helpers shared by the benchmark scripts (sourced, not run).
# They read the caller's globals where noted: RUN (the run's work dir), BIN
# (the binaries), PORT (imaged's port; the others are +1, +2), CGPARENT
# (the run's cgroup parent) and the dpid array (daemon name -> pid);
# start_daemons also SHIM and the net_flags array (rdock-netd's flags).
# shellcheck shell=bash disable=SC2034,SC2154

say() { echo "==> $*"; }
alive() { readlink "/proc/$1/exe" >/dev/null 2>&1; } # a zombie counts as gone
stop_pid() {
	local pid=$1 i
	kill -TERM "$pid" 2>/dev/null || return 0
	for ((i = 0; i < 100; i++)); do
		alive "$pid" || break
		sleep 0.1
	done
	alive "$pid" && kill -KILL "$pid" 2>/dev/null
	wait "$pid" 2>/dev/null || true # reaps it when it is our child
}
port_free() { [ -z "$(ss -Htln "sport = :$1")" ]; }
free_ports() {
	local count=$1 base=$2 k ok
	for ((; base < 60000; base += 10)); do
		ok=1
		for ((k = 0; k < count; k++)); do port_free $((base + k)) || ok=0; done
		[ "$ok" = 0 ] || {
			echo "$base"
			return 0
		}
	done
	return 1
}
ctl() {
	"$BIN/rdockctl" -H "127.0.0.1:$PORT" --tlscacert "$RUN/pki/ca.crt" \
		--tlscert "$RUN/pki/admin.crt" --tlskey "$RUN/pki/admin.key" "$@"
}
start_daemon() { # NAME PORT-OFFSET EXTRA-ARGS...
	local name=$1 off=$2
	shift 2
	mkdir -p "$RUN/state/$name" "$RUN/run/$name"
	RDOCK_LOG=${RDOCK_LOG:-warn} setsid "$BIN/rdock-$name" --config "$RUN/empty.toml" \
		--listen "127.0.0.1:$((PORT + off))" --pki-dir "$RUN/pki" \
		--state-dir "$RUN/state/$name" --run-dir "$RUN/run/$name" "$@" \
		>>"$RUN/$name.log" 2>&1 </dev/null &
	# shellcheck disable=SC2004 # dpid is the caller's associative array
	dpid[$name]=$!
}
# Starts the run's three daemons on the first three consecutive free
# loopback ports from BASE up (sets PORT), with a fresh PKI, and waits until
# they answer. Reads net_flags, CGPARENT and SHIM; the caller defines die().
# Each daemon runs in its own session, so that a Ctrl-C reaches the script
# (whose cleanup removes the containers through them) and not the daemons.
# setsid execs without forking here (a background job of a script leads no
# group): $! is the daemon.
start_daemons() { # BASE
	local i d
	PORT=$(free_ports 3 "$1") || die "no three free consecutive ports for rdock"
	"$BIN/rdockctl" pki init --dir "$RUN/pki" >/dev/null
	: >"$RUN/empty.toml"
	start_daemon imaged 0
	start_daemon netd 2 "${net_flags[@]}"
	start_daemon runtimed 1 --imaged "127.0.0.1:$PORT" --netd "127.0.0.1:$((PORT + 2))" \
		--cgroup-parent "$CGPARENT" --shim "$SHIM"
	for ((i = 0; ; i++)); do
		ctl system info >/dev/null 2>&1 && break
		for d in imaged netd runtimed; do
			alive "${dpid[$d]}" || die "rdock-$d exited: $(tail -n 5 "$RUN/$d.log")"
		done
		[ "$i" -lt 80 ] || die "the daemons did not come up in 20 s (logs in $RUN)"
		sleep 0.25
	done
}
run_shims() {
	local p
	for p in /proc/[0-9]*; do
		case $(readlink "$p/exe" 2>/dev/null) in */rdock-shim | */rdock-shim" (deleted)") ;; *) continue ;; esac
		tr '\0' '\n' <"$p/cmdline" 2>/dev/null | grep -qF "$RUN/" && echo "${p#/proc/}"
	done
	return 0
}
run_cgroups() {
	local h
	for h in /sys/fs/cgroup /sys/fs/cgroup/*; do
		[ -d "$h/$CGPARENT" ] && find "$h/$CGPARENT" -depth -type d
	done
	return 0
}
q() { printf '%q' "$1"; }
ms() { awk -v s="$1" 'BEGIN {printf "%.1f", s * 1000}'; }
ratio() { awk -v a="$1" -v b="$2" 'BEGIN {printf "%.2f", a / b}'; }
now_ns() { date +%s%N; }
m() { jq -r --arg c "$2" '.results[] | select(.command == $c) | .median' "$1"; }
median_col() { # FILE COLUMN -> median in ms
	awk -v c="$2" '{print $c}' "$1" | sort -n | awk '{v[NR] = $1} END {
		m = (NR % 2) ? v[(NR + 1) / 2] : (v[NR / 2] + v[NR / 2 + 1]) / 2; printf "%.1f", m / 1000 }'
}

# --- cleanup of a run (called from the script's EXIT trap) ---------------------
# Reports on stderr and carries on past errors, also when stdout is a closed
# pipe (`... | head`): SIGPIPE is ignored, or the first echo would end it.
begin_cleanup() {
	set +e
	trap '' INT TERM HUP PIPE
	exec 1>&2
	echo "==> cleaning up $RUN"
}
# Removes the run's containers through its runtime daemon, while it runs.
remove_containers() {
	[ -n "${dpid[runtimed]:-}" ] && alive "${dpid[runtimed]}" || return 0
	ctl ps -a -q --no-trunc 2>/dev/null | xargs -r -P 4 -n 10 timeout 120 \
		"$BIN/rdockctl" -H "127.0.0.1:$PORT" --tlscacert "$RUN/pki/ca.crt" \
		--tlscert "$RUN/pki/admin.crt" --tlskey "$RUN/pki/admin.key" rm -f >/dev/null 2>&1
}
# Stops the daemons, then removes what they left: the runtime's containers
# in the runtime daemon's runc root and in the extra roots given (this kills
# their processes and removes their cgroups), shims, cgroups, mounts under
# the run dir, netd's bridges, veths and table (its own --cleanup); reports
# anything that is still there, and removes the run dir.
teardown_run() { # SCRIPT-NAME [EXTRA-RUNC-ROOT...]
	local name=$1 d root id shims pid cg h m left
	shift
	for d in runtimed netd imaged; do
		[ -n "${dpid[$d]:-}" ] && stop_pid "${dpid[$d]}"
	done
	for root in "$RUN/run/runtimed/runc" "$@"; do
		[ -d "$root" ] || continue
		runc --root "$root" list -q 2>/dev/null | while read -r id; do
			runc --root "$root" delete -f "$id" >/dev/null 2>&1
		done
	done
	shims=$(run_shims)
	if [ -n "$shims" ]; then
		echo "==> killing $(echo "$shims" | wc -l) leftover rdock-shim process(es)"
		for pid in $shims; do stop_pid "$pid"; done
	fi
	for cg in $(run_cgroups); do
		[ -f "$cg/cgroup.procs" ] && xargs -r kill -KILL <"$cg/cgroup.procs" 2>/dev/null
	done
	# Mounts under the run dir (rootfs overlays, netns files), deepest first.
	findmnt -rn -o TARGET | grep -F "$RUN/" | LC_ALL=C sort -r | while IFS= read -r m; do
		umount "$m" 2>/dev/null || umount -l "$m"
	done
	if [ -d "$RUN/state/netd" ]; then
		"$BIN/rdock-netd" --config "$RUN/empty.toml" "${net_flags[@]}" --pki-dir "$RUN/pki" \
			--state-dir "$RUN/state/netd" --run-dir "$RUN/run/netd" --cleanup >>"$RUN/netd.log" 2>&1 ||
			echo "$name: rdock-netd --cleanup failed: $(tail -n 3 "$RUN/netd.log")"
	fi
	for cg in $(run_cgroups); do rmdir "$cg" 2>/dev/null; done
	for h in /sys/fs/cgroup /sys/fs/cgroup/*; do
		[ -d "$h/rdock-bench" ] && rmdir "$h/rdock-bench" 2>/dev/null # fails while another run uses it
	done
	for root in "$@"; do
		left=$(runc --root "$root" list -q 2>/dev/null)
		[ -z "$left" ] || echo "$name: runc containers left in $root: $left"
	done
	[ -z "$(run_shims)" ] || echo "$name: rdock-shim processes left: $(run_shims)"
	[ -z "$(run_cgroups)" ] || echo "$name: cgroups left: $(run_cgroups)"
	findmnt -rn -o TARGET | grep -qF "$RUN/" && echo "$name: mounts left under $RUN"
	rm -rf --one-file-system "$RUN"
}
