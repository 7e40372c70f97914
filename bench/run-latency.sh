#!/usr/bin/env bash
# Times `rdockctl run --rm busybox true` through the three daemons against
# `runc run` of an equivalent bundle, against `runc create` + `start` +
# `delete` of it (how rdock-shim drives runc), and against `docker run` /
# `podman run` where such an engine answers; times create / start / wait / rm
# one call at a time; `rdockctl exec c true` against `runc exec` of the same
# container (and docker/podman exec); then `rdockctl ps` with N running containers, and
# reads the RSS of one idle shim and of the three idle daemons. Run as root:
#
#   bench/run-latency.sh [--runs N] [--containers N] [--build]
#
#   --runs N        timed runs per command (default 30, after 3 warmup runs)
#   --containers N  running `sleep 3600` containers for the ps and RSS
#                   figures (default 200)
#   --build         run `cargo build --release --locked --bins` and the
#                   shim's own build first (otherwise only when a binary is
#                   missing)
#
# Binaries come from ${CARGO_TARGET_DIR:-target}/release, except rdock-shim:
# the one deploy/install.sh installs, static and size-optimised (profile
# shim, target <arch>-unknown-linux-gnu), handed to rdock-runtimed with
# --shim. Each run gets its own PKI, state and run dirs (under
# $RDOCK_BENCH_DIR, default /var/tmp/rdock-bench), loopback ports (three
# consecutive ones from 27801 up) and cgroup parent (rdock-bench/<run>), and
# removes all of it on exit, also when interrupted. hyperfine's JSON goes to
# $RDOCK_BENCH_DIR/results/.
# Budgets (DESIGN.md section 8): run <= 60 ms median and <= 0.2 x docker run;
# exec <= 30 ms;
# ps with 200 containers <= 30 ms; one idle shim <= 4 MB RSS; the three idle
# daemons together <= 40 MB RSS.
set -euo pipefail

REPO=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
# shellcheck source=bench/lib.sh
. "$REPO/bench/lib.sh"
WORK=${RDOCK_BENCH_DIR:-/var/tmp/rdock-bench}
BIN=${CARGO_TARGET_DIR:-$REPO/target}/release
BINS=(rdockctl rdock-imaged rdock-runtimed rdock-netd)
SHIM_TARGET=$(uname -m)-unknown-linux-gnu # as deploy/install.sh builds it
SHIM=${CARGO_TARGET_DIR:-$REPO/target}/$SHIM_TARGET/shim/rdock-shim
# A network of the run's own, so the host's rdock0 and table are left alone.
net_flags=(--bridge "${RDOCK_BENCH_BRIDGE:-rdklat0}" --subnet "${RDOCK_BENCH_SUBNET:-10.233.0.0/24}"
	--pool "${RDOCK_BENCH_POOL:-10.234.0.0/22}" --nft-table "${RDOCK_BENCH_TABLE:-rdock_lat}" --dns-upstream none)
DOCKER_REFERENCE=0.306 # s, docker run --rm busybox true, DESIGN.md section 8
BREAKDOWN_RUNS=10      # create / start / wait / rm timed one by one

die() {
	echo "run-latency.sh: $*" >&2
	exit 1
}

runs=30 containers=200 build=0
while [ $# -gt 0 ]; do
	case $1 in
	--runs)
		[[ ${2:-} =~ ^[1-9][0-9]*$ ]] || die "--runs needs a positive number"
		runs=$2
		shift
		;;
	--containers)
		[[ ${2:-} =~ ^[1-9][0-9]*$ ]] || die "--containers needs a positive number"
		containers=$2
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
[ "$(id -u)" = 0 ] || die "must run as root (containers, mounts, cgroups)"

# --- tools -------------------------------------------------------------------
need=(hyperfine jq runc busybox-static iproute2 util-linux)
missing=()
for p in "${need[@]}"; do
	dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q 'install ok installed' || missing+=("$p")
done
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

# --- run state and cleanup ---------------------------------------------------
mkdir -p "$WORK"
RUN=$(mktemp -d "$WORK/run.XXXXXX")
CGPARENT=rdock-bench/${RUN##*/run.}
declare -A dpid=() # daemon name -> pid

cleanup() {
	begin_cleanup
	remove_containers
	teardown_run run-latency.sh "$RUN/runc-root"
}
trap cleanup EXIT
trap 'exit 130' INT
trap 'exit 143' TERM
trap 'exit 129' HUP
trap 'exit 141' PIPE

# VmRSS of a pid in kB.
rss_kb() { awk '/^VmRSS:/ {print $2}' "/proc/$1/status" 2>/dev/null || echo 0; }
# "anon A MB, file F MB, PSS P MB" of a pid (VmRSS = RssAnon + RssFile +
# RssShmem; PSS shares each page among the processes that map it).
rss_parts() {
	awk '/^RssAnon:/ {a = $2} /^RssFile:/ {f = $2} END {printf "anon %.1f MB, file %.1f MB", a / 1024, f / 1024}' \
		"/proc/$1/status" 2>/dev/null
	awk '/^Pss:/ {printf ", PSS %.1f MB", $2 / 1024}' "/proc/$1/smaps_rollup" 2>/dev/null
}
mb() { awk -v k="$1" 'BEGIN {printf "%.1f", k / 1024}'; }

# --- private daemons -----------------------------------------------------------
start_daemons 27801
say "rdock daemons ($BIN, shim $SHIM) on 127.0.0.1:$PORT-$((PORT + 2)), state in $RUN, cgroup parent $CGPARENT"
daemons_rss_start=0 daemons_start_detail=""
for d in imaged runtimed netd; do
	k=$(rss_kb "${dpid[$d]}")
	daemons_rss_start=$((daemons_rss_start + k))
	daemons_start_detail+=" $d $(mb "$k")"
done

"$REPO/deploy/busybox-rootfs.sh" -o "$RUN/busybox.tar"
ctl import "$RUN/busybox.tar" busybox:latest --change 'CMD ["sh"]' >/dev/null
out=$(ctl run --rm busybox echo hello 2>&1) || die "rdockctl run --rm busybox echo hello failed: $out"
[ "$out" = hello ] || die "rdockctl run --rm busybox echo hello printed: $out"

# --- the equivalent runc bundle ------------------------------------------------
# Same busybox tree; runc's default spec (namespaces pid, net, ipc, uts,
# mount; no terminal) with args ["true"], a writable rootfs like rdock's, and
# the rlimits clamped to the host's hard limits (runc fails above them).
B=$RUN/bundle
mkdir -p "$B/rootfs" "$RUN/runc-root"
tar -C "$B/rootfs" -xf "$RUN/busybox.tar"
runc spec --bundle "$B"
nofile_hard=$(ulimit -Hn)
[ "$nofile_hard" = unlimited ] && nofile_hard=1048576
jq --argjson h "$nofile_hard" '
	.process.args = ["true"] | .process.terminal = false | .root.readonly = false
	| .process.rlimits |= ((. // []) | map(
		if .type == "RLIMIT_NOFILE" then .hard = ([.hard, $h] | min) | .soft = ([.soft, $h] | min) else . end))
' "$B/config.json" >"$B/config.json.new"
mv "$B/config.json.new" "$B/config.json"
# A fresh id per run; `runc run` deletes the container when it exits.
cat >"$RUN/runc-run.sh" <<EOF
#!/bin/sh
exec runc --root '$RUN/runc-root' run --bundle '$B' "bench-\$\$-\$(date +%N)" </dev/null
EOF
# The same container the way rdock-shim drives runc: create, start, wait for
# the exit, delete (three runtime invocations instead of one).
cat >"$RUN/runc-split.sh" <<EOF
#!/bin/sh
id=bench-\$\$-\$(date +%N)
runc --root '$RUN/runc-root' create --bundle '$B' --pid-file '$RUN/pid.'\$id \$id </dev/null || exit 1
pid=\$(cat '$RUN/pid.'\$id) && rm -f '$RUN/pid.'\$id
runc --root '$RUN/runc-root' start \$id || exit 1
while [ -e /proc/\$pid ] && [ "\$(cut -d' ' -f3 /proc/\$pid/stat 2>/dev/null)" != Z ]; do sleep 0.001; done
exec runc --root '$RUN/runc-root' delete \$id
EOF
chmod +x "$RUN/runc-run.sh" "$RUN/runc-split.sh"
"$RUN/runc-run.sh" || die "runc run of the bundle in $B failed"
"$RUN/runc-split.sh" || die "runc create/start/delete of the bundle in $B failed"

# --- run latency -----------------------------------------------------------------
ctl_cmd="$(q "$BIN/rdockctl") -H 127.0.0.1:$PORT --tlscacert $(q "$RUN/pki/ca.crt") --tlscert $(q "$RUN/pki/admin.crt") --tlskey $(q "$RUN/pki/admin.key")"
args=(-n rdock "$ctl_cmd run --rm busybox true" -n runc "$(q "$RUN/runc-run.sh")"
	-n runc-split "$(q "$RUN/runc-split.sh")")
engines=""
if command -v docker >/dev/null && docker info >/dev/null 2>&1; then
	args+=(-n docker "docker run --rm busybox true")
	engines+=" docker"
	docker image inspect busybox >/dev/null 2>&1 || docker pull -q busybox >/dev/null
fi
if command -v podman >/dev/null && podman info >/dev/null 2>&1; then
	args+=(-n podman "podman run --rm busybox true")
	engines+=" podman"
	podman image exists busybox 2>/dev/null || podman pull -q busybox >/dev/null
fi
mkdir -p "$WORK/results"
stamp=$(date -u +%Y%m%dT%H%M%SZ)
json_run=$WORK/results/run-latency-$stamp-run.json
json_ps=$WORK/results/run-latency-$stamp-ps.json
json_exec=$WORK/results/run-latency-$stamp-exec.json
say "hyperfine --warmup 3 --runs $runs (commands: rdock runc runc-split$engines)"
hyperfine --style basic -N --warmup 3 --runs "$runs" --export-json "$json_run" "${args[@]}"

# Where the time of a run goes: the same container's life, one call at a time.
say "breakdown: create / start / wait / rm, $BREAKDOWN_RUNS times"
: >"$RUN/breakdown"
for ((i = 0; i < BREAKDOWN_RUNS; i++)); do
	t0=$(now_ns)
	ctl version >/dev/null 2>&1 || true
	t1=$(now_ns)
	id=$(ctl create busybox true)
	t2=$(now_ns)
	ctl start "$id" >/dev/null
	t3=$(now_ns)
	ctl wait "$id" >/dev/null
	t4=$(now_ns)
	ctl rm "$id" >/dev/null
	t5=$(now_ns)
	echo "$(((t1 - t0) / 1000)) $(((t2 - t1) / 1000)) $(((t3 - t2) / 1000)) $(((t4 - t3) / 1000)) $(((t5 - t4) / 1000))" >>"$RUN/breakdown"
done
bd_version=$(median_col "$RUN/breakdown" 1)
bd_create=$(median_col "$RUN/breakdown" 2)
bd_start=$(median_col "$RUN/breakdown" 3)
bd_wait=$(median_col "$RUN/breakdown" 4)
bd_rm=$(median_col "$RUN/breakdown" 5)
echo "median ms: rdockctl version $bd_version, create $bd_create, start $bd_start, wait $bd_wait, rm $bd_rm"

# --- exec into a running container -------------------------------------------------
# `rdockctl exec` against `runc exec` of the very same container (what the
# shim runs underneath) and `docker exec` / `podman exec` where they answer.
ctl run -d --name execbench busybox sleep 3600 >/dev/null
exec_id=$(ctl inspect -f '{{.Id}}' execbench)
exec_args=(-n "rdock exec" "$ctl_cmd exec execbench true"
	-n "runc exec" "runc --root $(q "$RUN/run/runtimed/runc") exec $exec_id true")
if [[ $engines == *docker* ]]; then
	docker rm -f rdock-bench-exec >/dev/null 2>&1 || true
	docker run -d --name rdock-bench-exec busybox sleep 3600 >/dev/null
	exec_args+=(-n "docker exec" "docker exec rdock-bench-exec true")
fi
if [[ $engines == *podman* ]]; then
	podman rm -f rdock-bench-exec >/dev/null 2>&1 || true
	podman run -d --name rdock-bench-exec busybox sleep 3600 >/dev/null
	exec_args+=(-n "podman exec" "podman exec rdock-bench-exec true")
fi
say "hyperfine --warmup 3 --runs $runs: exec true into a running container"
hyperfine --style basic -N --warmup 3 --runs "$runs" --export-json "$json_exec" "${exec_args[@]}"
[[ $engines == *docker* ]] && docker rm -f rdock-bench-exec >/dev/null 2>&1
[[ $engines == *podman* ]] && podman rm -f rdock-bench-exec >/dev/null 2>&1
ctl rm -f execbench >/dev/null

# --- ps with N running containers ------------------------------------------------
say "starting $containers detached 'sleep 3600' containers (4 at a time)"
t0=$(now_ns)
seq "$containers" | xargs -P 4 -I{} "$BIN/rdockctl" -H "127.0.0.1:$PORT" --tlscacert "$RUN/pki/ca.crt" \
	--tlscert "$RUN/pki/admin.crt" --tlskey "$RUN/pki/admin.key" run -d busybox sleep 3600 >"$RUN/ids" ||
	say "note: some of the 'run -d' calls failed"
t1=$(now_ns)
started=$(grep -c . "$RUN/ids" || true)
running=$(ctl ps -q | grep -c . || true)
start_s=$(awk -v n="$(((t1 - t0) / 1000000))" 'BEGIN {printf "%.1f", n / 1000}')
echo "started $started of $containers in $start_s s; ps lists $running running"
[ "$running" -gt 0 ] || die "no container is running"
say "hyperfine --warmup 3 --runs $runs: ps and ps -a with $running running containers"
hyperfine --style basic -N --warmup 3 --runs "$runs" --export-json "$json_ps" \
	-n "ps ($running)" "$ctl_cmd ps" -n "ps -a ($running)" "$ctl_cmd ps -a"

# --- RSS ----------------------------------------------------------------------------
first=$(head -n 1 "$RUN/ids")
shim_pid=
for pid in $(run_shims); do
	tr '\0' '\n' <"/proc/$pid/cmdline" | grep -qxF "$first" && shim_pid=$pid && break
done
[ -n "$shim_pid" ] || die "no rdock-shim process found for container $first"
shim_rss=$(rss_kb "$shim_pid")
all_shims=$(for pid in $(run_shims); do rss_kb "$pid"; done | sort -n)
shim_count=$(echo "$all_shims" | grep -c .)
shim_median=$(echo "$all_shims" | awk '{v[NR] = $1} END {print v[int((NR + 1) / 2)]}')
shim_max=$(echo "$all_shims" | tail -n 1)
daemons_rss=0 daemons_detail=""
for d in imaged runtimed netd; do
	k=$(rss_kb "${dpid[$d]}")
	daemons_rss=$((daemons_rss + k))
	daemons_detail+=" $d $(mb "$k") ($(rss_parts "${dpid[$d]}"));"
done
echo "shim of ${first:0:12} (pid $shim_pid): VmRSS $(mb "$shim_rss") MB ($(rss_parts "$shim_pid")); all $shim_count shims: median $(mb "$shim_median") MB, max $(mb "$shim_max") MB"
echo "daemons: $(mb "$daemons_rss") MB together:$daemons_detail with $running containers; $(mb "$daemons_rss_start") MB just after start ($daemons_start_detail MB)"

say "removing the $started containers (rm -f, 4 at a time)"
t0=$(now_ns)
xargs -r -P 4 -n 10 "$BIN/rdockctl" -H "127.0.0.1:$PORT" --tlscacert "$RUN/pki/ca.crt" \
	--tlscert "$RUN/pki/admin.crt" --tlskey "$RUN/pki/admin.key" rm -f <"$RUN/ids" >/dev/null ||
	say "note: some of the 'rm -f' calls failed"
t1=$(now_ns)
rm_s=$(awk -v n="$(((t1 - t0) / 1000000))" 'BEGIN {printf "%.1f", n / 1000}')
left=$(ctl ps -a -q | grep -c . || true)
echo "removed in $rm_s s; ps -a lists $left"
daemons_rss_after=0
for d in imaged runtimed netd; do daemons_rss_after=$((daemons_rss_after + $(rss_kb "${dpid[$d]}"))); done

# --- summary ------------------------------------------------------------------------
verdict() { awk -v v="$1" -v b="$2" 'BEGIN {print (v <= b) ? "met" : "MISSED"}'; }
rd=$(m "$json_run" rdock) rc=$(m "$json_run" runc) rs=$(m "$json_run" runc-split) dk=$(m "$json_run" docker) pm=$(m "$json_run" podman)
ex=$(m "$json_exec" "rdock exec") rx=$(m "$json_exec" "runc exec") dx=$(m "$json_exec" "docker exec") px=$(m "$json_exec" "podman exec")
ps1=$(m "$json_ps" "ps ($running)") ps2=$(m "$json_ps" "ps -a ($running)")
echo
echo "== summary ($(date -u +%Y-%m-%d); HEAD $(git -C "$REPO" rev-parse --short HEAD 2>/dev/null || echo '?'), binaries built $(date -u -r "$BIN/rdock-runtimed" +%H:%MZ); $(nproc) cores, load $(cut -d' ' -f1-3 /proc/loadavg))"
printf '%-44s %-16s %s\n' "what" "measured" "budget"
printf '%-44s %-16s %s\n' "run --rm busybox true, median" "$(ms "$rd") ms" "<= 60 ms: $(verdict "$rd" 0.060)"
printf '%-44s %-16s %s\n' "runc run (same bundle), median" "$(ms "$rc") ms" ""
printf '%-44s %-16s %s\n' "runc create+start+delete (same), median" "$(ms "$rs") ms" ""
printf '%-44s %-16s %s\n' "ratio rdock/runc" "$(ratio "$rd" "$rc")" ""
printf '%-44s %-16s %s\n' "ratio rdock/runc-split" "$(ratio "$rd" "$rs")" ""
if [ -n "$dk" ]; then
	printf '%-44s %-16s %s\n' "docker run --rm busybox true, median" "$(ms "$dk") ms" ""
	printf '%-44s %-16s %s\n' "ratio rdock/docker" "$(ratio "$rd" "$dk")" "<= 0.2: $(verdict "$(ratio "$rd" "$dk")" 0.2)"
else
	printf '%-44s %-16s %s\n' "ratio rdock/docker reference ($(ms $DOCKER_REFERENCE) ms)" "$(ratio "$rd" $DOCKER_REFERENCE)" "<= 0.2: $(verdict "$(ratio "$rd" $DOCKER_REFERENCE)" 0.2)"
fi
if [ -n "$pm" ]; then
	printf '%-44s %-16s %s\n' "podman run --rm busybox true, median" "$(ms "$pm") ms" ""
	printf '%-44s %-16s %s\n' "ratio rdock/podman" "$(ratio "$rd" "$pm")" ""
fi
printf '%-44s %-16s %s\n' "  breakdown: one call (version) / create / start" "$bd_version / $bd_create / $bd_start ms" ""
printf '%-44s %-16s %s\n' "  breakdown: wait / rm" "$bd_wait / $bd_rm ms" ""
printf '%-44s %-16s %s\n' "exec c true, median" "$(ms "$ex") ms" "<= 30 ms: $(verdict "$ex" 0.030)"
printf '%-44s %-16s %s\n' "runc exec (same container), median" "$(ms "$rx") ms" ""
[ -n "$dx" ] && printf '%-44s %-16s %s\n' "docker exec, median (ratio)" "$(ms "$dx") ms ($(ratio "$ex" "$dx"))" ""
[ -n "$px" ] && printf '%-44s %-16s %s\n' "podman exec, median (ratio)" "$(ms "$px") ms ($(ratio "$ex" "$px"))" ""
printf '%-44s %-16s %s\n' "ps with $running running, median" "$(ms "$ps1") ms" "<= 30 ms: $(verdict "$ps1" 0.030)"
printf '%-44s %-16s %s\n' "ps -a with $running, median" "$(ms "$ps2") ms" ""
printf '%-44s %-16s %s\n' "run -d of $started containers, 4 at a time" "$start_s s" ""
printf '%-44s %-16s %s\n' "rm -f of them, 4 at a time (10 per call)" "$rm_s s" ""
printf '%-44s %-16s %s\n' "one idle shim, VmRSS" "$(mb "$shim_rss") MB" "<= 4 MB: $(verdict "$shim_rss" 4096)"
printf '%-44s %-16s %s\n' "three daemons, VmRSS, $running containers" "$(mb "$daemons_rss") MB" "<= 40 MB: $(verdict "$daemons_rss" 40960)"
printf '%-44s %-16s %s\n' "three daemons, VmRSS, just started" "$(mb "$daemons_rss_start") MB" "<= 40 MB: $(verdict "$daemons_rss_start" 40960)"
printf '%-44s %-16s %s\n' "three daemons, VmRSS, idle after the bench" "$(mb "$daemons_rss_after") MB" "<= 40 MB: $(verdict "$daemons_rss_after" 40960)"
echo "results: $json_run $json_exec $json_ps"
