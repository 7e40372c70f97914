#!/usr/bin/env bash
# Writes a busybox root filesystem tarball, made from the host's Debian
# busybox-static, to stdout or to FILE:
#
#   deploy/busybox-rootfs.sh [-o FILE] | rdockctl import - busybox:latest
#
# Contents: /bin/busybox and one bin/<applet> -> busybox symlink per applet,
# /etc/passwd and /etc/group (root, nobody, www-data), /tmp (1777), /root,
# /var/www/index.html for httpd. The tarball is deterministic: sorted names,
# mtime 0, numeric owner 0:0. Installs busybox-static (as root) if missing.
set -euo pipefail

die() {
	echo "busybox-rootfs.sh: $*" >&2
	exit 1
}

out=
while [ $# -gt 0 ]; do
	case $1 in
	-o)
		[ $# -ge 2 ] || die "-o needs a file name"
		out=$2
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
[ -n "$out" ] || [ ! -t 1 ] || die "refusing to write a tarball to a terminal: pipe it or use -o FILE"

# Debian's busybox package also ships /bin/busybox, dynamically linked: it
# would not run in an image without libc, so insist on busybox-static.
if ! dpkg-query -W -f='${Status}' busybox-static 2>/dev/null | grep -q 'install ok installed'; then
	[ "$(id -u)" = 0 ] || die "busybox-static is not installed (run as root, or: apt-get install busybox-static)"
	echo "busybox-rootfs.sh: installing busybox-static" >&2
	apt-get update -qq >/dev/null 2>&1 || die "apt-get update failed"
	DEBIAN_FRONTEND=noninteractive apt-get install -y -qq busybox-static >/dev/null 2>&1 ||
		die "apt-get install busybox-static failed"
fi
[ -x /bin/busybox ] || die "/bin/busybox is missing"

umask 022
root=$(mktemp -d)
trap 'rm -rf "$root"' EXIT

mkdir -p "$root"/{bin,dev,etc,proc,sys,root,tmp,var/www}
cp /bin/busybox "$root/bin/busybox"
chmod 0755 "$root" "$root/bin/busybox"
chmod 0700 "$root/root"
chmod 1777 "$root/tmp"
applets=0
while IFS= read -r applet; do
	case $applet in "" | busybox | */*) continue ;; esac
	ln -s busybox "$root/bin/$applet"
	applets=$((applets + 1))
done < <(/bin/busybox --list)
[ "$applets" -gt 0 ] || die "/bin/busybox --list printed no applets"

cat >"$root/etc/passwd" <<'EOF'
root:x:0:0:root:/root:/bin/sh
www-data:x:33:33:www-data:/var/www:/bin/false
nobody:x:65534:65534:nobody:/nonexistent:/bin/false
EOF
cat >"$root/etc/group" <<'EOF'
root:x:0:
www-data:x:33:
nogroup:x:65534:
EOF
echo "hello from rdock" >"$root/var/www/index.html"
chmod 0644 "$root/etc/passwd" "$root/etc/group" "$root/var/www/index.html"

tarball() {
	tar --create --file=- --directory="$root" --format=gnu --sort=name \
		--mtime=@0 --owner=0 --group=0 --numeric-owner .
}
if [ -n "$out" ]; then
	tarball >"$out.tmp.$$" || {
		rm -f "$out.tmp.$$"
		die "tar failed"
	}
	mv -f "$out.tmp.$$" "$out"
else
	tarball
fi
