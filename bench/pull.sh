#!/usr/bin/env bash
# Times `rdockctl pull` of a ~200 MB, 3-layer image from a loopback registry
# against `skopeo copy` to an OCI directory (and `docker pull` / `podman pull`
# where such an engine answers), with hyperfine. Run as root:
#
#   bench/pull.sh [--runs N] [--build]
#
#   --runs N   timed runs per command (default 5, after 1 warmup run)
#   --build    run `cargo build --release --locked` first (otherwise only
#              when target/release lacks a binary)
#
# The image is generated once and cached in $RDOCK_BENCH_DIR (default
# /var/tmp/rdock-bench/image); each run gets its own Debian docker-registry on
# a free loopback port and its own rdock-imaged (private PKI, state and ports),
# and removes them on exit. JSON results go to $RDOCK_BENCH_DIR/results/.
# Budget (DESIGN.md section 8): rdock <= 0.5 x docker pull.
set -euo pipefail

REPO=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
# shellcheck source=bench/lib.sh
. "$REPO/bench/lib.sh"
SELF=$REPO/bench/pull.sh
WORK=${RDOCK_BENCH_DIR:-/var/tmp/rdock-bench}
BIN=${CARGO_TARGET_DIR:-$REPO/target}/release
LAYERS_MIB=(120 60 20)  # one file of random bytes per layer, gzip -1
DOCKER_REFERENCE=3.56   # s, docker pull of the same kind of image, DESIGN.md section 8
# Only rdock-imaged is started: a pull involves no other daemon (and netd
# would set up host networking that a pull does not need).

die() {
	echo "pull.sh: $*" >&2
	exit 1
}

# --- imaged control (also called by hyperfine's --prepare, see below) --------
# Uses RUN, PORT, BIN from the environment.
start_imaged() {
	mkdir -p "$RUN/state/imaged" "$RUN/run/imaged"
	RDOCK_LOG=${RDOCK_LOG:-warn} "$BIN/rdock-imaged" --config "$RUN/empty.toml" \
		--listen "127.0.0.1:$PORT" --pki-dir "$RUN/pki" --state-dir "$RUN/state/imaged" \
		--run-dir "$RUN/run/imaged" >>"$RUN/imaged.log" 2>&1 </dev/null &
	echo $! >"$RUN/imaged.pid"
}
wait_imaged() {
	local i
	for ((i = 0; i < 60; i++)); do
		ctl images >/dev/null 2>&1 && return 0
		alive "$(cat "$RUN/imaged.pid")" || break
		sleep 0.25
	done
	tail -n 5 "$RUN/imaged.log" >&2
	die "rdock-imaged did not come up (log: $RUN/imaged.log)"
}
# A zombie (exited, not yet reaped) has no exe link: it counts as gone.
# A cold start for the next pull when `rmi` leaves the blobs behind.
reset_imaged() {
	stop_pid "$(cat "$RUN/imaged.pid")"
	rm -rf --one-file-system "$RUN/state/imaged" "$RUN/run/imaged"
	start_imaged
	wait_imaged
}
case ${1:-} in
__rmi)
	ctl rmi "$REF" >/dev/null 2>&1 || true
	exit 0
	;;
__reset)
	reset_imaged
	exit 0
	;;
esac

runs=5 build=0
while [ $# -gt 0 ]; do
	case $1 in
	--runs)
		[[ ${2:-} =~ ^[1-9][0-9]*$ ]] || die "--runs needs a positive number"
		runs=$2
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
[ "$(id -u)" = 0 ] || die "must run as root (imaged unpacks layers as root)"

# --- tools -------------------------------------------------------------------
need=(docker-registry skopeo hyperfine jq gzip iproute2)
missing=()
for p in "${need[@]}"; do
	dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q 'install ok installed' || missing+=("$p")
done
if [ ${#missing[@]} -gt 0 ]; then
	say "installing ${missing[*]}"
	apt-get update -qq >/dev/null
	DEBIAN_FRONTEND=noninteractive apt-get install -y -qq "${missing[@]}" >/dev/null </dev/null
fi
if [ "$build" = 1 ] || [ ! -x "$BIN/rdockctl" ] || [ ! -x "$BIN/rdock-imaged" ]; then
	say "cargo build --release --locked --bins"
	(cd "$REPO" && cargo build --release --locked --bins --quiet)
fi

# --- the image (cached) ------------------------------------------------------
IMAGE=$WORK/image
if [ ! -f "$IMAGE/complete" ]; then
	say "generating the benchmark image in $IMAGE (once)"
	rm -rf "$IMAGE"
	mkdir -p "$IMAGE/oci/blobs/sha256" "$IMAGE/tmp"
	blob() { # FILE -> moves it into the layout, prints "sha256:HEX SIZE"
		local hex size
		hex=$(sha256sum "$1" | cut -d' ' -f1)
		size=$(stat -c %s "$1")
		mv "$1" "$IMAGE/oci/blobs/sha256/$hex"
		echo "sha256:$hex $size"
	}
	diff_ids=() layers=() i=0
	for mib in "${LAYERS_MIB[@]}"; do
		i=$((i + 1))
		mkdir -p "$IMAGE/tmp/l$i/bench"
		head -c "${mib}M" /dev/urandom >"$IMAGE/tmp/l$i/bench/layer$i.bin"
		tar -C "$IMAGE/tmp/l$i" --create --file="$IMAGE/tmp/l$i.tar" --format=gnu \
			--sort=name --mtime=@0 --owner=0 --group=0 --numeric-owner bench
		diff_ids+=("\"sha256:$(sha256sum "$IMAGE/tmp/l$i.tar" | cut -d' ' -f1)\"")
		gzip -1 -n -c "$IMAGE/tmp/l$i.tar" >"$IMAGE/tmp/l$i.tar.gz"
		read -r digest size < <(blob "$IMAGE/tmp/l$i.tar.gz")
		layers+=("{\"mediaType\":\"application/vnd.oci.image.layer.v1.tar+gzip\",\"digest\":\"$digest\",\"size\":$size}")
		rm -rf "$IMAGE/tmp/l$i" "$IMAGE/tmp/l$i.tar"
	done
	join() { local IFS=,; echo "$*"; }
	printf '{"architecture":"amd64","os":"linux","created":"1970-01-01T00:00:00Z","config":{"Cmd":["sh"]},"rootfs":{"type":"layers","diff_ids":[%s]}}' \
		"$(join "${diff_ids[@]}")" >"$IMAGE/tmp/config.json"
	read -r cdigest csize < <(blob "$IMAGE/tmp/config.json")
	printf '{"schemaVersion":2,"mediaType":"application/vnd.oci.image.manifest.v1+json","config":{"mediaType":"application/vnd.oci.image.config.v1+json","digest":"%s","size":%s},"layers":[%s]}' \
		"$cdigest" "$csize" "$(join "${layers[@]}")" >"$IMAGE/tmp/manifest.json"
	read -r mdigest msize < <(blob "$IMAGE/tmp/manifest.json")
	printf '{"schemaVersion":2,"mediaType":"application/vnd.oci.image.index.v1+json","manifests":[{"mediaType":"application/vnd.oci.image.manifest.v1+json","digest":"%s","size":%s,"annotations":{"org.opencontainers.image.ref.name":"bench"}}]}' \
		"$mdigest" "$msize" >"$IMAGE/oci/index.json"
	echo '{"imageLayoutVersion":"1.0.0"}' >"$IMAGE/oci/oci-layout"
	rmdir "$IMAGE/tmp"
	touch "$IMAGE/complete"
fi
say "image: $(du -sh "$IMAGE/oci" | cut -f1) in ${#LAYERS_MIB[@]} layers ($IMAGE/oci)"

# --- private registry and rdock ----------------------------------------------
mkdir -p "$WORK"
RUN=$(mktemp -d "$WORK/run.XXXXXX")
pids=()
docker_ok=0 podman_ok=0
cleanup() {
	set +e
	[ "$docker_ok" = 1 ] && docker rmi -f "$REF" >/dev/null 2>&1
	[ "$podman_ok" = 1 ] && podman rmi -f "$REF" >/dev/null 2>&1
	[ -f "$RUN/imaged.pid" ] && pids+=("$(cat "$RUN/imaged.pid")")
	for pid in "${pids[@]}"; do stop_pid "$pid"; done
	# Anything imaged left mounted under the run dir, deepest first.
	findmnt -rn -o TARGET | grep -F "$RUN/" | LC_ALL=C sort -r | while IFS= read -r m; do
		umount "$m" 2>/dev/null || umount -l "$m"
	done
	rm -rf --one-file-system "$RUN"
}
trap cleanup EXIT
trap 'exit 130' INT TERM

# Prints the first of COUNT consecutive free loopback ports at or after BASE.

RPORT=$(free_ports 1 27750) || die "no free port for the registry"
mkdir -p "$RUN/registry"
cat >"$RUN/registry.yml" <<EOF
version: 0.1
log:
  level: error
storage:
  filesystem:
    rootdirectory: $RUN/registry
  delete:
    enabled: true
http:
  addr: 127.0.0.1:$RPORT
EOF
docker-registry serve "$RUN/registry.yml" >"$RUN/registry.log" 2>&1 </dev/null &
pids+=($!)
for ((i = 0; i < 50; i++)); do
	port_free "$RPORT" || break
	kill -0 "${pids[0]}" 2>/dev/null || die "docker-registry exited: $(tail -n 3 "$RUN/registry.log")"
	sleep 0.1
done
port_free "$RPORT" && die "docker-registry did not listen on 127.0.0.1:$RPORT"
REF=127.0.0.1:$RPORT/bench/big:latest
say "registry on 127.0.0.1:$RPORT; pushing $REF"
skopeo copy --quiet --dest-tls-verify=false "oci:$IMAGE/oci:bench" "docker://$REF"

PORT=$(free_ports 3 27701) || die "no free ports for rdock"
"$BIN/rdockctl" pki init --dir "$RUN/pki" >/dev/null
: >"$RUN/empty.toml"
export RUN PORT BIN REF
start_imaged
wait_imaged
say "rdock-imaged ($BIN) on 127.0.0.1:$PORT, state in $RUN/state"

# One untimed pull checks that the pull works and whether `rmi` frees the
# layers; if it does not, each timed pull starts from a fresh imaged instead.
ctl pull "$REF" >/dev/null
ctl images | grep -q "bench/big" || die "rdockctl images does not list $REF after a pull"
ctl rmi "$REF" >/dev/null
left=$(du -sm "$RUN/state/imaged" | cut -f1)
if [ "$left" -gt 50 ]; then
	say "note: after rmi imaged still keeps ${left} MB; each run starts from an empty imaged"
	rdock_prepare="bash $(printf '%q' "$SELF") __reset"
else
	rdock_prepare="bash $(printf '%q' "$SELF") __rmi"
fi

# --- benchmark ---------------------------------------------------------------
ctl_cmd="$(q "$BIN/rdockctl") -H 127.0.0.1:$PORT --tlscacert $(q "$RUN/pki/ca.crt") --tlscert $(q "$RUN/pki/admin.crt") --tlskey $(q "$RUN/pki/admin.key")"
args=(
	-n rdock --prepare "$rdock_prepare" "$ctl_cmd pull $REF"
	-n skopeo --prepare "rm -rf $(q "$RUN/skopeo-out")" "skopeo copy --quiet --src-tls-verify=false docker://$REF oci:$(q "$RUN/skopeo-out"):latest"
)
if command -v docker >/dev/null && docker info >/dev/null 2>&1; then
	docker_ok=1
	args+=(-n docker --prepare "docker rmi -f $REF >/dev/null 2>&1 || true" "docker pull -q $REF")
fi
if command -v podman >/dev/null && podman info >/dev/null 2>&1; then
	podman_ok=1
	args+=(-n podman --prepare "podman rmi -f $REF >/dev/null 2>&1 || true" "podman pull -q --tls-verify=false $REF")
fi
mkdir -p "$WORK/results"
json=$WORK/results/pull-$(date -u +%Y%m%dT%H%M%SZ).json
say "hyperfine --warmup 1 --runs $runs (commands: rdock skopeo$([ $docker_ok = 1 ] && echo ' docker')$([ $podman_ok = 1 ] && echo ' podman'))"
hyperfine --style basic --warmup 1 --runs "$runs" --export-json "$json" "${args[@]}"

# --- summary -----------------------------------------------------------------
echo
jq -r --argjson ref "$DOCKER_REFERENCE" '
	def s: if . == null then "n/a" else "\(. * 1000 | round / 1000) s" end;
	(.results | map({key: .command, value: .median}) | from_entries) as $m
	| (.results[] | "median \(.command): \(.median | s) (mean \(.mean | s), stddev \(.stddev | s))"),
	  "ratio rdock/skopeo: \($m.rdock / $m.skopeo * 100 | round / 100)",
	  (if $m.docker then "ratio rdock/docker: \($m.rdock / $m.docker * 100 | round / 100) (budget <= 0.5: \(if $m.rdock <= 0.5 * $m.docker then "met" else "MISSED" end))"
	   else "no docker engine here: rdock vs the reference docker pull of \($ref) s: \($m.rdock / $ref * 100 | round / 100) (budget <= 0.5: \(if $m.rdock <= 0.5 * $ref then "met" else "MISSED" end))" end),
	  (if $m.podman then "ratio rdock/podman: \($m.rdock / $m.podman * 100 | round / 100)" else empty end)
' "$json"
echo "results: $json"
