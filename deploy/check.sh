#!/usr/bin/env bash
# Checks the deployment files without installing anything (.ci/run runs it):
# bash -n and shellcheck on every shell script of deploy/, bench/ and .ci/,
# and `systemd-analyze verify` on the units (any warning fails). Needs the
# Debian packages shellcheck and systemd.
set -euo pipefail

REPO=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
cd "$REPO"

shopt -s nullglob
scripts=(.ci/run deploy/*.sh bench/*.sh)
for s in "${scripts[@]}"; do bash -n "$s"; done
shellcheck "${scripts[@]}"
echo "shell scripts ok: ${scripts[*]}"

# verify wants each ExecStart binary to exist: check copies that run /bin/true.
tmp=$(mktemp -d)
trap 'rm -rf "$tmp"' EXIT
cp deploy/systemd/*.service "$tmp/"
sed -i 's|^ExecStart=/usr/local/bin/rdock-[a-z]*|ExecStart=/bin/true|' "$tmp"/*.service
# systemd-analyze exits 0 on most warnings: fail on any output instead.
out=$(systemd-analyze verify "$tmp"/*.service 2>&1) || true
if [ -n "$out" ]; then
	echo "$out" >&2
	echo "check.sh: systemd-analyze verify found problems in deploy/systemd" >&2
	exit 1
fi
echo "systemd units ok: $(cd deploy/systemd && echo *.service)"
