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
