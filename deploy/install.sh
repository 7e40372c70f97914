#!/usr/bin/env bash
# Installs rdock on this host and starts its three daemons. Run as root.
#
#   deploy/install.sh [--no-build] [--dev] [--restart] [--host NAME_OR_IP]...
#
# Idempotent: run it again and it installs only the packages that are missing,
# rebuilds (cargo decides what changed), replaces only the binaries that
# differ, restarts only the daemons whose binary changed, starts the ones that
# are not running and leaves running ones alone.
#
#   --no-build   install the binaries already in target/release
#   --dev        also install the Debian packages the test suite and bench/ use
#   --restart    restart every daemon, changed or not
#   --host NAME  extra host name or IP for the daemons' certificates, for
#                management from other hosts (only when the PKI is created)
set -euo pipefail

# Binaries built and installed to /usr/local/bin, one a line.
BINARIES=(
	rdock-imaged
	rdock-runtimed
	rdock-shim
	rdock-netd
	rdockctl
)
# The shim's own build (see the build step).
SHIM_TARGET=$(uname -m)-unknown-linux-gnu
# Daemons, in start order: runtimed uses the other two.
DAEMONS=(imaged netd runtimed)

# Debian packages the engine needs at run time (gcc builds the `ring` crate).
PACKAGES=(runc tini busybox-static nftables iproute2 ca-certificates util-linux procps gcc libc6-dev)
# ... and the ones the test suite (.ci/run) and bench/ need on top.
DEV_PACKAGES=(docker-registry skopeo hyperfine jq)

PREFIX=/usr/local/bin
ETC=/etc/rdock
PKI=$ETC/pki
RUN=/run/rdock
LOGS=/var/log/rdock
UNITS=/etc/systemd/system
REPO=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)

say() { echo "==> $*"; }
die() {
	echo "install.sh: $*" >&2
	exit 1
}

build=1 dev=0 restart_all=0 hosts=()
while [ $# -gt 0 ]; do
	case $1 in
	--no-build) build=0 ;;
	--dev) dev=1 ;;
	--restart) restart_all=1 ;;
	--host)
		[ $# -ge 2 ] || die "--host needs a value"
		hosts+=(--host "$2")
		shift
		;;
	-h | --help)
		sed -n '2,/^set -euo/{/^set -euo/d;s/^# \{0,1\}//;p}' "${BASH_SOURCE[0]}"
		exit 0
		;;
	*) die "unknown argument: $1 (see --help)" ;;
	esac
	shift
done

[ "$(id -u)" = 0 ] || die "must run as root (try: sudo $0)"
mkdir -p /run/lock
exec 9>/run/lock/rdock-install.lock
flock -n 9 || die "another install.sh is running"

systemd_is_init() {
	[ -d /run/systemd/system ] && [ "$(cat /proc/1/comm 2>/dev/null)" = systemd ]
}

# Runs a command with its output kept back unless it fails.
quiet() {
	local out
	out=$(mktemp)
	if "$@" >"$out" 2>&1; then
		rm -f "$out"
	else
		cat "$out" >&2
		rm -f "$out"
		return 1
	fi
}

installed() {
	dpkg-query -W -f='${Status}' "$1" 2>/dev/null | grep -q 'install ok installed'
}

# --- Debian packages ---------------------------------------------------------
wanted=("${PACKAGES[@]}")
[ "$dev" = 1 ] && wanted+=("${DEV_PACKAGES[@]}")
missing=()
for p in "${wanted[@]}"; do installed "$p" || missing+=("$p"); done
if [ ${#missing[@]} -gt 0 ]; then
	say "installing Debian packages: ${missing[*]}"
	quiet apt-get update -qq || die "apt-get update failed"
	quiet env DEBIAN_FRONTEND=noninteractive apt-get install -y -qq "${missing[@]}" ||
		die "apt-get install ${missing[*]} failed"
	# Tests and benchmarks run their own registries; stop the one the package
	# may have started on :5000 (only if this run installed it).
	if [[ " ${missing[*]} " == *" docker-registry "* ]] && systemd_is_init; then
		systemctl disable --now docker-registry >/dev/null 2>&1 || true
	fi
fi

# --- build -------------------------------------------------------------------
target=${CARGO_TARGET_DIR:-$REPO/target}
if [ "$build" = 1 ]; then
	cargo=$(command -v cargo || true)
	owner=$(stat -c %U "$REPO")
	home=
	if [ -n "${SUDO_USER:-}" ] && [ "$SUDO_USER" = "$owner" ] && [ "$owner" != root ]; then
		# Under sudo, build as the owner of the checkout so target/ stays theirs.
		home=$(getent passwd "$owner" | cut -d: -f6)
		[ -n "$cargo" ] || cargo=$home/.cargo/bin/cargo
	fi
	[ -x "${cargo:-/nonexistent}" ] || die "cargo not found (install Rust with rustup, or use --no-build)"
	run_cargo() {
		if [ -n "$home" ]; then
			(cd "$REPO" && runuser -u "$owner" -- env HOME="$home" PATH="$(dirname "$cargo"):$PATH" \
				RUSTFLAGS="${RUSTFLAGS:-}" "$cargo" "$@") || die "cargo $* failed"
		else
			(cd "$REPO" && "$cargo" "$@") || die "cargo $* failed"
		fi
	}
	say "building release binaries (cargo build --release --locked --bins; a first build takes several minutes)"
	run_cargo build --release --locked --bins --quiet
	# The shim runs once per container: a static, size-optimised build keeps
	# an idle one under 4 MB of memory (DESIGN.md section 8).
	say "building rdock-shim (static, profile shim)"
	RUSTFLAGS="-C target-feature=+crt-static" run_cargo build --profile shim --locked \
		--target "$SHIM_TARGET" -p rdock-shim --bin rdock-shim --quiet
fi

# --- binaries ----------------------------------------------------------------
changed=()
for b in "${BINARIES[@]}"; do
	src=$target/release/$b
	[ "$b" = rdock-shim ] && [ -x "$target/$SHIM_TARGET/shim/$b" ] && src=$target/$SHIM_TARGET/shim/$b
	[ -x "$src" ] || die "$src is missing (build first, or drop --no-build)"
	if ! cmp -s "$src" "$PREFIX/$b"; then
		# A new file renamed over the old one: a running daemon keeps its image.
		install -m 0755 "$src" "$PREFIX/.$b.new"
		mv -f "$PREFIX/.$b.new" "$PREFIX/$b"
		changed+=("$b")
	fi
done
if [ ${#changed[@]} -gt 0 ]; then
	say "installed to $PREFIX: ${changed[*]}"
else
	say "binaries in $PREFIX are up to date"
fi
binary_changed() { [[ " ${changed[*]} " == *" rdock-$1 "* ]]; }

# --- PKI and configs ---------------------------------------------------------
if [ ! -f "$PKI/ca.crt" ]; then
	name=$(hostname 2>/dev/null || true)
	case $name in "" | localhost) ;; *) hosts+=(--host "$name") ;; esac
	say "creating the PKI in $PKI (rdockctl pki init)"
	quiet "$PREFIX/rdockctl" pki init --dir "$PKI" "${hosts[@]}" || die "rdockctl pki init failed"
fi
mkdir -p "$ETC"
for d in "${DAEMONS[@]}"; do
	if [ ! -e "$ETC/$d.toml" ]; then
		install -m 0644 "$REPO/deploy/config/$d.toml" "$ETC/$d.toml"
		say "wrote $ETC/$d.toml"
	fi
done

# --- start -------------------------------------------------------------------
if systemd_is_init; then
	units_changed=0
	for d in "${DAEMONS[@]}"; do
		u=rdock-$d.service
		if ! cmp -s "$REPO/deploy/systemd/$u" "$UNITS/$u"; then
			install -m 0644 "$REPO/deploy/systemd/$u" "$UNITS/$u"
			units_changed=1
		fi
	done
	[ "$units_changed" = 1 ] && systemctl daemon-reload
	for d in "${DAEMONS[@]}"; do
		u=rdock-$d.service
		systemctl enable --quiet "$u"
		if ! systemctl is-active --quiet "$u"; then
			say "starting $u"
			systemctl start "$u" || die "$u did not start (journalctl -u $u)"
		elif [ "$restart_all" = 1 ] || [ "$units_changed" = 1 ] || binary_changed "$d"; then
			say "restarting $u"
			systemctl restart "$u" || die "$u did not restart (journalctl -u $u)"
		else
			say "$u is already running"
		fi
	done
	logs="journalctl -u rdock-imaged -u rdock-runtimed -u rdock-netd"
else
	# No systemd as PID 1: run the daemons in the background, pid files in
	# /run/rdock, logs in /var/log/rdock.
	mkdir -p "$RUN" "$LOGS"
	alive() { readlink "/proc/$1/exe" >/dev/null 2>&1; }
	# Prints the pid of daemon $1 started by this script, if it runs.
	pid_of() {
		local pid exe
		pid=$(cat "$RUN/$1.pid" 2>/dev/null) || return 1
		[[ $pid =~ ^[0-9]+$ ]] || return 1
		exe=$(readlink "/proc/$pid/exe" 2>/dev/null) || return 1
		# "(deleted)": still the daemon, its binary was just replaced.
		[ "$exe" = "$PREFIX/rdock-$1" ] || [ "$exe" = "$PREFIX/rdock-$1 (deleted)" ] || return 1
		echo "$pid"
	}
	stop() {
		local pid=$1 i
		kill -TERM "$pid" 2>/dev/null || return 0
		for ((i = 0; i < 150; i++)); do
			alive "$pid" || return 0
			sleep 0.1
		done
		kill -KILL "$pid" 2>/dev/null || true
	}
	start() {
		(
			exec 9>&- # the install lock stays with this script
			cd /
			if [ -r /etc/default/rdock ]; then
				set -a
				# shellcheck disable=SC1091
				. /etc/default/rdock
				set +a
			fi
			exec setsid nohup "$PREFIX/rdock-$1" >>"$LOGS/$1.log" 2>&1 </dev/null
		) &
		echo $! >"$RUN/$1.pid"
	}
	started=()
	for d in "${DAEMONS[@]}"; do
		if pid=$(pid_of "$d"); then
			if [ "$restart_all" = 1 ] || binary_changed "$d"; then
				say "restarting rdock-$d (pid $pid)"
				stop "$pid"
			else
				say "rdock-$d is already running (pid $pid)"
				continue
			fi
		else
			say "starting rdock-$d"
		fi
		start "$d"
		started+=("$d")
	done
	logs="$LOGS/{imaged,runtimed,netd}.log"
fi

# --- wait until all three answer ---------------------------------------------
# Ask the daemons configured here, whatever RDOCK_HOST or ~/.rdock/config.toml say.
addr=$(sed -n 's/^[[:space:]]*listen[[:space:]]*=[[:space:]]*"\([^"]*\)".*/\1/p' "$ETC/imaged.toml" | tail -n 1)
case ${addr%:*} in "" | 0.0.0.0 | "[::]") host=127.0.0.1 ;; *) host=${addr%:*} ;; esac
ctl=("$PREFIX/rdockctl" -H "$host:${addr##*:}" --tlscacert "$PKI/ca.crt"
	--tlscert "$PKI/admin.crt" --tlskey "$PKI/admin.key")
[ -n "$addr" ] || ctl[2]=127.0.0.1:7701
for ((i = 0; i < 60; i++)); do
	if timeout 5 "${ctl[@]}" system info >/dev/null 2>&1; then
		say "rdock is running; logs: $logs"
		exit 0
	fi
	for d in "${started[@]:-}"; do
		[ -n "$d" ] || continue
		if ! pid_of "$d" >/dev/null; then
			tail -n 5 "$LOGS/$d.log" >&2 || true
			die "rdock-$d exited at start (log: $LOGS/$d.log)"
		fi
	done
	sleep 0.25
done
timeout 5 "${ctl[@]}" system info >&2 || true
die "the daemons did not all answer within 15 s (logs: $logs)"
