#!/usr/bin/env bash
# Networking figures of rdock through the three daemons: the added cost of a
# container's network in `rdockctl run --rm busybox true` (default bridge
# against `--network none`), and TCP throughput from the host into a
# container through a published port (127.0.0.1:HOSTPORT, nftables DNAT)
# against the same straight to the container's bridge address. Run as root:
#
#   bench/net.sh [--runs N] [--transfers N] [--mib N] [--build]
#
#   --runs N       timed runs per run command (default 30, after 3 warmups)
#   --transfers N  timed transfers per path (default 3)
#   --mib N        MiB sent per transfer (default 2048: at about 3 GiB/s,
#                  512 MiB last under 0.2 s)
#   --build        run `cargo build --release --locked --bins` and the
#                  shim's own build first (otherwise only when a binary is
#                  missing)
#
# Binaries come from ${CARGO_TARGET_DIR:-target}/release, except rdock-shim:
# the static, size-optimised one deploy/install.sh installs (profile shim,
# target <arch>-unknown-linux-gnu). Each run gets its own PKI, state and run
# dirs (under $RDOCK_BENCH_DIR, default /var/tmp/rdock-bench), loopback ports
# (three consecutive ones from 27901 up) and cgroup parent
# (rdock-bench/<run>), and its netd its own bridge, subnet, pool and nftables
# table (RDOCK_BENCH_BRIDGE, _SUBNET, _POOL, _TABLE; default rdkbench0,
# 10.231.0.0/24, 10.232.0.0/22, rdock_bench), with DNS forwarding off. On
# exit, also when interrupted, it removes the containers, stops the daemons,
# runs `rdock-netd ... --cleanup` with the same settings and checks that no
# container, shim, veth, bridge, nft table, mount or cgroup is left.
#
# The receiver in the container is busybox `nc -ll -p 5001 -e dd
# of=/dev/null bs=1M` (one persistent listener; dd reads up to 1 MiB per
# call, where `nc -l > /dev/null` copies through a buffer of about 1 KiB and
# tops out far below the network path). The sender is a few lines of
# python3 on the host: sendall() of 1 MiB buffers, shutdown(SHUT_WR), then
# wait for the receiver to close; a transfer that is cut short fails with a
# reset. For reference, the same receiver and sender over plain loopback in
# throwaway network and pid namespaces (nothing bound on the host).
# Traffic goes only to 127.0.0.1 and the bench's own bridge subnet.
# Also times create / start / wait / rm one call at a time on each network.
# hyperfine's JSON and the transfer figures go to $RDOCK_BENCH_DIR/results/.
# Budget (DESIGN.md section 8): run --rm busybox true, default network, <=
# 60 ms median.
set -euo pipefail

REPO=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
# shellcheck source=bench/lib.sh
. "$REPO/bench/lib.sh"
WORK=${RDOCK_BENCH_DIR:-/var/tmp/rdock-bench}
BIN=${CARGO_TARGET_DIR:-$REPO/target}/release
BINS=(rdockctl rdock-imaged rdock-runtimed rdock-netd)
SHIM_TARGET=$(uname -m)-unknown-linux-gnu # as deploy/install.sh builds it
SHIM=${CARGO_TARGET_DIR:-$REPO/target}/$SHIM_TARGET/shim/rdock-shim
BRIDGE=${RDOCK_BENCH_BRIDGE:-rdkbench0}
SUBNET=${RDOCK_BENCH_SUBNET:-10.231.0.0/24}
POOL=${RDOCK_BENCH_POOL:-10.232.0.0/22}
TABLE=${RDOCK_BENCH_TABLE:-rdock_bench}
CTR_PORT=5001
BREAKDOWN_RUNS=10 # create / start / wait / rm timed one by one, per network

die() {
	echo "net.sh: $*" >&2
	exit 1
}

runs=30 transfers=3 mib=2048 build=0
while [ $# -gt 0 ]; do
	case $1 in
	--runs | --transfers | --mib)
		[[ ${2:-} =~ ^[1-9][0-9]*$ ]] || die "$1 needs a positive number"
		case $1 in --runs) runs=$2 ;; --transfers) transfers=$2 ;; --mib) mib=$2 ;; esac
		shift
		;;
	--build) build=1 ;;
	-h | --help)
		sed -n '2,/^set -euo/{/^set -euo/d;s/^# \{0,1\}//;p}' "${BASH_SOURCE[0]}"
		exit 0
		;;
	*) die "unknown argument: $1 (see --help)" ;;
	esac
	shift
done
[ "$(id -u)" = 0 ] || die "must run as root (containers, bridges, nftables)"

# --- tools -------------------------------------------------------------------
need=(hyperfine jq runc busybox-static iproute2 nftables util-linux)
missing=()
for p in "${need[@]}"; do
	dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q 'install ok installed' || missing+=("$p")
done
command -v python3 >/dev/null || missing+=(python3) # any python3 on PATH will do
if [ ${#missing[@]} -gt 0 ]; then
	say "installing ${missing[*]}"
	apt-get update -qq >/dev/null
	DEBIAN_FRONTEND=noninteractive apt-get install -y -qq "${missing[@]}" >/dev/null </dev/null
fi
build_release=$build build_shim=$build
for b in "${BINS[@]}"; do [ -x "$BIN/$b" ] || build_release=1; done
[ -x "$SHIM" ] || build_shim=1
if [ "$build_release" = 1 ]; then
	say "cargo build --release --locked --bins (into $BIN)"
	(cd "$REPO" && cargo build --release --locked --bins --quiet)
fi
if [ "$build_shim" = 1 ]; then
	say "building rdock-shim as deploy/install.sh does (static, profile shim)"
	(cd "$REPO" && RUSTFLAGS="-C target-feature=+crt-static" cargo build --profile shim --locked \
		--target "$SHIM_TARGET" -p rdock-shim --bin rdock-shim --quiet)
fi

# Another run of this bench, or the leftovers of one that was killed -9:
# its bridge or table would be taken over and then removed by our cleanup.
if ip link show "$BRIDGE" >/dev/null 2>&1 || nft list table ip "$TABLE" >/dev/null 2>&1; then
	die "bridge $BRIDGE or nft table ip $TABLE exists: another net.sh is running, or one was killed
  (then: ip link del $BRIDGE; nft delete table ip $TABLE), or set RDOCK_BENCH_BRIDGE/_TABLE"
fi
[ -z "$(ip -4 route show root "$SUBNET")" ] || die "$SUBNET is routed on this host already: set RDOCK_BENCH_SUBNET"

# --- run state and cleanup ---------------------------------------------------
mkdir -p "$WORK"
RUN=$(mktemp -d "$WORK/run.XXXXXX")
CGPARENT=rdock-bench/${RUN##*/run.}
declare -A dpid=() # daemon name -> pid

net_flags=(--bridge "$BRIDGE" --subnet "$SUBNET" --pool "$POOL" --nft-table "$TABLE" --dns-upstream none)
# Interfaces enslaved to the bench's bridge (the containers' veths).
bridge_ports() { ip -o link show master "$BRIDGE" 2>/dev/null | awk -F': ' '{print $2}' | cut -d@ -f1; }
cleanup() {
	begin_cleanup
	remove_containers
	local ports
	ports=$(bridge_ports)
	[ -z "$ports" ] || echo "net.sh: veths still on $BRIDGE after rm -f: ${ports//$'\n'/ }"
	teardown_run net.sh
	ip link show "$BRIDGE" >/dev/null 2>&1 && echo "net.sh: bridge $BRIDGE left"
	nft list table ip "$TABLE" >/dev/null 2>&1 && echo "net.sh: nft table ip $TABLE left"
}
trap cleanup EXIT
trap 'exit 130' INT
trap 'exit 143' TERM
trap 'exit 129' HUP
trap 'exit 141' PIPE


# --- private daemons -----------------------------------------------------------
start_daemons 27901
say "rdock daemons ($BIN, shim $SHIM) on 127.0.0.1:$PORT-$((PORT + 2)), state in $RUN"
say "netd: bridge $BRIDGE, subnet $SUBNET, pool $POOL, nft table ip $TABLE"

"$REPO/deploy/busybox-rootfs.sh" -o "$RUN/busybox.tar"
ctl import "$RUN/busybox.tar" busybox:latest --change 'CMD ["sh"]' >/dev/null
for net in bridge none; do
	out=$(ctl run --rm --network "$net" busybox echo hello 2>&1) ||
		die "rdockctl run --rm --network $net busybox echo hello failed: $out"
	[ "$out" = hello ] || die "rdockctl run --rm --network $net busybox echo hello printed: $out"
done
# What each kind of container sees: an address on the bridge, or only lo.
out=$(ctl run --rm busybox ip -4 -o addr show eth0 2>&1) || die "ip addr in a bridge container failed: $out"
echo "bridge container: $(echo "$out" | awk '{print $2, $4}')"
out=$(ctl run --rm --network none busybox ip -o link show 2>&1) || die "ip link in a --network none container failed: $out"
echo "--network none container: $(echo "$out" | awk -F': ' '{printf "%s ", $2}')"

mkdir -p "$WORK/results"
stamp=$(date -u +%Y%m%dT%H%M%SZ)
json_run=$WORK/results/net-$stamp-run.json
tsv_tcp=$WORK/results/net-$stamp-tcp.tsv

# --- 1. run --rm: bridge against none ---------------------------------------------
ctl_cmd="$(q "$BIN/rdockctl") -H 127.0.0.1:$PORT --tlscacert $(q "$RUN/pki/ca.crt") --tlscert $(q "$RUN/pki/admin.crt") --tlskey $(q "$RUN/pki/admin.key")"
say "hyperfine --warmup 3 --runs $runs: run --rm busybox true, default bridge and --network none"
hyperfine --style basic -N --warmup 3 --runs "$runs" --export-json "$json_run" \
	-n bridge "$ctl_cmd run --rm busybox true" \
	-n none "$ctl_cmd run --rm --network none busybox true"
left=$(ctl ps -a -q | grep -c . || true)
[ "$left" = 0 ] || die "$left container(s) left after the run --rm bench"
[ -z "$(bridge_ports)" ] || die "veths left on $BRIDGE after the run --rm bench: $(bridge_ports | tr '\n' ' ')"

# Where the difference goes: the same container's life one call at a time,
# the two networks alternating.
say "breakdown: create / start / wait / rm, $BREAKDOWN_RUNS times per network"
for ((i = 0; i < BREAKDOWN_RUNS; i++)); do
	for net in bridge none; do
		t0=$(now_ns)
		id=$(ctl create --network "$net" busybox true)
		t1=$(now_ns)
		ctl start "$id" >/dev/null
		t2=$(now_ns)
		ctl wait "$id" >/dev/null
		t3=$(now_ns)
		ctl rm "$id" >/dev/null
		t4=$(now_ns)
		echo "$(((t1 - t0) / 1000)) $(((t2 - t1) / 1000)) $(((t3 - t2) / 1000)) $(((t4 - t3) / 1000))" >>"$RUN/breakdown-$net"
	done
done
declare -A bd=()
for net in bridge none; do
	bd[$net]="$(median_col "$RUN/breakdown-$net" 1) / $(median_col "$RUN/breakdown-$net" 2) / $(median_col "$RUN/breakdown-$net" 3) / $(median_col "$RUN/breakdown-$net" 4)"
	echo "median ms, $net: create / start / wait / rm ${bd[$net]}"
done

# --- 2. TCP throughput, host -> container -------------------------------------------
cat >"$RUN/send.py" <<'EOF'
# send.py HOST PORT MIB: MiB/s of MIB MiB, from connect to the receiver's close.
import socket, sys, time
host, port, mib = sys.argv[1], int(sys.argv[2]), int(sys.argv[3])
buf = b"\0" * (1 << 20)
s = socket.create_connection((host, port), timeout=60)
t0 = time.perf_counter()
for _ in range(mib):
    s.sendall(buf)
s.shutdown(socket.SHUT_WR)
while s.recv(65536):
    pass
print(f"{mib / (time.perf_counter() - t0):.1f}")
EOF
cat >"$RUN/probe.py" <<'EOF'
# probe.py HOST PORT: exits 0 once a TCP connection to HOST:PORT succeeds.
import socket, sys, time
for _ in range(100):
    try:
        socket.create_connection((sys.argv[1], int(sys.argv[2])), timeout=1).close()
        sys.exit(0)
    except OSError:
        time.sleep(0.1)
sys.exit(1)
EOF
# The reference: the same receiver and sender over the loopback of fresh
# network and pid namespaces. The script is the namespace's init, so the
# kernel kills the listener when it ends, and unshare --kill-child ends it
# when unshare is killed; the listener does not hold our stdout either.
cat >"$RUN/loopback.sh" <<EOF
#!/bin/sh
ip link set lo up || exit 1
busybox nc -ll -p $CTR_PORT -e dd of=/dev/null bs=1M </dev/null >/dev/null 2>&1 &
python3 '$RUN/probe.py' 127.0.0.1 $CTR_PORT && python3 '$RUN/send.py' 127.0.0.1 $CTR_PORT $mib
EOF
chmod +x "$RUN/loopback.sh"

HPORT=$(free_ports 1 28001) || die "no free loopback port to publish"
say "receiver: busybox nc -ll -p $CTR_PORT -e dd of=/dev/null bs=1M, published on 127.0.0.1:$HPORT"
rid=$(ctl run -d --name netbench-recv -p "127.0.0.1:$HPORT:$CTR_PORT" busybox \
	nc -ll -p "$CTR_PORT" -e dd of=/dev/null bs=1M)
cip=$(ctl inspect -f '{{.NetworkSettings.IPAddress}}' "$rid")
[[ $cip =~ ^[0-9.]+$ ]] || die "no bridge address for the receiver: '$cip'"
echo "receiver ${rid:0:12}: bridge address $cip; $(ctl port "$rid" | tr '\n' ' ')"
python3 "$RUN/probe.py" "$cip" "$CTR_PORT" || die "the receiver does not answer on $cip:$CTR_PORT"
python3 "$RUN/probe.py" 127.0.0.1 "$HPORT" || die "the receiver does not answer on 127.0.0.1:$HPORT"
# One untimed transfer each way, then the timed ones, the paths alternating
# so that a change of machine load hits all of them alike.
python3 "$RUN/send.py" 127.0.0.1 "$HPORT" 64 >/dev/null || die "warmup transfer to 127.0.0.1:$HPORT failed"
python3 "$RUN/send.py" "$cip" "$CTR_PORT" 64 >/dev/null || die "warmup transfer to $cip:$CTR_PORT failed"
say "$transfers transfers of $mib MiB per path"
printf 'round\tpath\tMiB/s\n' >"$tsv_tcp"
for ((r = 1; r <= transfers; r++)); do
	v=$(python3 "$RUN/send.py" 127.0.0.1 "$HPORT" "$mib") || die "transfer to 127.0.0.1:$HPORT failed"
	printf '%s\tpublished\t%s\n' "$r" "$v" >>"$tsv_tcp"
	echo "  round $r: published 127.0.0.1:$HPORT  $v MiB/s"
	v=$(python3 "$RUN/send.py" "$cip" "$CTR_PORT" "$mib") || die "transfer to $cip:$CTR_PORT failed"
	printf '%s\tbridge\t%s\n' "$r" "$v" >>"$tsv_tcp"
	echo "  round $r: bridge $cip:$CTR_PORT  $v MiB/s"
	v=$(unshare --net --pid --fork --kill-child "$RUN/loopback.sh") || die "loopback reference transfer failed"
	printf '%s\tloopback\t%s\n' "$r" "$v" >>"$tsv_tcp"
	echo "  round $r: loopback (own netns, no container)  $v MiB/s"
done
ctl rm -f "$rid" >/dev/null
[ -z "$(bridge_ports)" ] || die "veths left on $BRIDGE after rm -f: $(bridge_ports | tr '\n' ' ')"
nft list table ip "$TABLE" 2>/dev/null | grep -q "dport $HPORT" && die "DNAT rule for $HPORT left in table $TABLE"

# --- summary ------------------------------------------------------------------------
tcp() { # PATH -> "median min max" in MiB/s
	awk -F'\t' -v p="$1" '$2 == p {print $3}' "$tsv_tcp" | sort -n | awk '{v[NR] = $1} END {
		m = (NR % 2) ? v[(NR + 1) / 2] : (v[NR / 2] + v[NR / 2 + 1]) / 2; printf "%.0f %.0f %.0f", m, v[1], v[NR] }'
}
rb=$(m "$json_run" bridge) rn=$(m "$json_run" none)
read -r pub_m pub_lo pub_hi <<<"$(tcp published)"
read -r br_m br_lo br_hi <<<"$(tcp bridge)"
read -r lo_m lo_lo lo_hi <<<"$(tcp loopback)"
echo
echo "== summary ($(date -u +%Y-%m-%d); HEAD $(git -C "$REPO" rev-parse --short HEAD 2>/dev/null || echo '?'), binaries built $(date -u -r "$BIN/rdock-runtimed" +%H:%MZ); $(nproc) cores, load $(cut -d' ' -f1-3 /proc/loadavg))"
printf '%-52s %s\n' "run --rm busybox true, default bridge, median" "$(ms "$rb") ms (budget 60 ms: $(awk -v v="$rb" 'BEGIN {print (v <= 0.060) ? "met" : "MISSED"}'))"
printf '%-52s %s\n' "run --rm --network none busybox true, median" "$(ms "$rn") ms"
printf '%-52s %s\n' "added cost of the bridge network" "$(ms "$(awk -v a="$rb" -v b="$rn" 'BEGIN {print a - b}')") ms, ratio bridge/none $(ratio "$rb" "$rn")"
printf '%-52s %s\n' "  breakdown, bridge: create / start / wait / rm" "${bd[bridge]} ms"
printf '%-52s %s\n' "  breakdown, none: create / start / wait / rm" "${bd[none]} ms"
printf '%-52s %s\n' "TCP host -> container, published 127.0.0.1:port" "$pub_m MiB/s median of $transfers ($pub_lo-$pub_hi)"
printf '%-52s %s\n' "TCP host -> container, bridge address" "$br_m MiB/s median of $transfers ($br_lo-$br_hi)"
printf '%-52s %s\n' "ratio published/bridge" "$(ratio "$pub_m" "$br_m")"
printf '%-52s %s\n' "reference: same over loopback, no container" "$lo_m MiB/s median of $transfers ($lo_lo-$lo_hi)"
echo "($mib MiB per transfer; 1 MiB = 1048576 bytes)"
echo "results: $json_run $tsv_tcp"
