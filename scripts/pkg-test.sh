#!/usr/bin/env bash
# The package test of make check: the .debs of "make deb", installed the way
# the README's "Install on a real machine" says, into a clean Debian 12
# chroot that has nothing but a minimal system, a compiler's C library
# headers, pkg-config and the kernel headers of the 6.1 and 6.12 lanes.
#
#   scripts/pkg-test.sh                 build the .debs, run the test
#   scripts/pkg-test.sh --prepare       only make the cached chroot, output to
#                                       build/pkg-test/prepare.log (make check
#                                       starts this in the background while it
#                                       builds; the test waits for it)
#   scripts/pkg-test.sh --lane LANE     after scripts/vm-run.sh LANE: did the
#                                       lane load the DKMS-built module?
#
# Output: "ok - ..." / "not ok - ..." lines (scripts/check.sh counts them),
# anything else is commentary. Exit status 0 only if all were ok.
#
# The chroot: debootstrap --variant=minbase of bookworm from the machine's
# configured Debian mirror, plus the packages in base_pkgs, cached as a
# directory build/chroot/bookworm-<key>/ (key: a hash of mirror, suites and
# package list). Each run puts a fresh overlay on it (upper layer in
# build/pkg-test/upper/), so the cached base is never touched and a run
# costs no copy. APT in the chroot uses the host's /var/cache/apt/archives,
# so packages the host already has (make deps installs the kernel headers)
# and packages an earlier run fetched are not downloaded again.
#
# The modules DKMS built are copied to build/pkg-test/modules/<release>/
# shmpool.ko; scripts/check.sh points scripts/vm-run.sh there
# (SHMPOOL_KO_DIR) so that the 6.1 and 6.12 lanes load them.
set -uo pipefail
top=$(cd "$(dirname "$0")/.." && pwd)
cd "$top" || exit 1
out=$top/build/pkg-test
mods=$out/modules

# Bump when the way the base is made changes: it is part of the cache key.
recipe=1
suite=bookworm

fails=0
result() {	# result <status> <name>
	if [ "$1" = 0 ]; then echo "ok - $2"; else echo "not ok - $2"; fails=$((fails + 1)); fi
}
say() { echo "# pkg-test: $*"; }
# Wall and CPU seconds (this script's children) since the last lap.
lap_wall=$SECONDS lap_cpu=0
cpu_now() {	# not in $(...): a subshell's children are not ours
	times > "$out/times"
	cpu=$(awk 'NR == 2 { gsub(/[ms]/, " "); print int($1 * 60 + $2 + $3 * 60 + $4) }' "$out/times")
}
lap() {
	cpu_now
	say "$1: $((SECONDS - lap_wall)) s wall, $((cpu - lap_cpu)) s CPU"
	lap_wall=$SECONDS lap_cpu=$cpu
}

lane_release() { "$top/scripts/kernels.sh" lane "$1" | cut -d' ' -f1; }

# ---- --lane: judge a lane's log ---------------------------------------------
if [ "${1:-}" = --lane ]; then
	lane=${2:?lane}
	rel=$(lane_release "$lane") || exit 1
	ko=$mods/$rel/shmpool.ko
	log=$top/build/vm/$lane/out.log
	want=$( [ -f "$ko" ] && sha256sum < "$ko" | cut -d' ' -f1)
	got=$(sed -n 's/^### MODULE \([0-9a-f]\{64\}\).*/\1/p' "$log" 2>/dev/null | head -n 1)
	loaded=$(grep -c '^### INSMOD ok' "$log" 2>/dev/null)
	[ -n "$want" ] || say "no DKMS-built module for $rel in ${mods#"$top"/}"
	[ -z "$want" ] || [ "$got" = "$want" ] || say "lane $lane inserted sha256 ${got:-(none)}, DKMS built $want"
	result "$([ -n "$want" ] && [ "$got" = "$want" ] && [ "$loaded" = 1 ] && echo 0 || echo 1)" \
		"lane $lane loaded the module DKMS built in the package test ($rel)"
	exit $((fails > 0))
fi

# ---- the test ------------------------------------------------------------------
# Root: debootstrap, mounts, chroot. Mounts live in a private mount namespace
# and go with it, whatever happens.
if [ "$(id -u)" != 0 ]; then
	if ! sudo -n true 2> /dev/null; then
		result 1 "the package test runs as root (or with sudo -n)"
		exit 1
	fi
	exec sudo -n -E "$0" "$@"
fi
mkdir -p "$out" "$top/build/chroot"
if [ "${1:-}" = --prepare ]; then
	exec > "$out/prepare.log" 2>&1 < /dev/null
fi
if [ -z "${PKGTEST_NS:-}" ]; then
	PKGTEST_NS=1 exec unshare --mount --propagation private "$0" "$@"
fi
started=$SECONDS
prepare=0
if [ "${1:-}" = --prepare ]; then
	prepare=1
else
	exec 9> "$out.lock"
	flock 9
	rm -rf "$mods"
	rm -f "$out"/{mkdeb,install,pingpong,pingpong-static,shmpoolctl,purge}.log
fi

# 1. The packages.
if [ $prepare = 0 ]; then
	if scripts/mkdeb.sh > "$out/mkdeb.log" 2>&1; then
		st=0
	else
		st=1
		cat "$out/mkdeb.log"
	fi
	lap "make deb"
	result $st "make deb builds the packages and lintian finds no error or warning"
	[ $st = 0 ] || exit 1
	debs=(build/deb/*.deb)
fi

# 2. The kernels: the 6.1 and 6.12 lanes' releases, by package name.
rels=()
for l in 6.1 6.12; do
	r=$(lane_release "$l") || { result 1 "a $l kernel with headers is installed (make deps)"; exit 1; }
	rels+=("$r")
done

# 3. The base chroot, made once per key.
# The Debian entries of the host's APT sources, as one-line entries for
# suite, suite-updates and suite-security: the mirror the machine uses.
host_sources() {
	{
		cat /etc/apt/sources.list /etc/apt/sources.list.d/*.list 2>/dev/null |
			awk -v s="$suite" '$1 == "deb" { u = 0; for (i = 2; i <= NF; i++) if ($i !~ /^\[/) { u = i; break }
				if (u && $(u + 1) ~ "^" s "(-updates|-security)?$") print "deb", $u, $(u + 1), "main" }'
		for f in /etc/apt/sources.list.d/*.sources; do
			[ -f "$f" ] || continue
			awk -v s="$suite" 'function flush() { if (deb && uri != "") for (i in su) if (su[i] ~ "^" s "(-updates|-security)?$") print "deb", uri, su[i], "main"; deb = 0; uri = ""; delete su }
				/^[ \t]*$/ { flush(); next }
				tolower($1) == "types:" { for (i = 2; i <= NF; i++) if ($i == "deb") deb = 1 }
				tolower($1) == "uris:" { uri = $2 }
				tolower($1) == "suites:" { for (i = 2; i <= NF; i++) su[i] = $i }
				END { flush() }' "$f"
		done
	} | sort -u
}
sources=$(host_sources)
mirror=${PKG_TEST_MIRROR:-$(awk -v s="$suite" '$3 == s { print $2; exit }' <<< "$sources")}
if [ -z "$mirror" ]; then
	result 1 "the host's APT sources name a Debian $suite mirror"
	exit 1
fi
# A C compiler with the C library's headers and pkg-config are the user's tools; the
# kernel headers are what DKMS builds against. Nothing of shmpool's own
# dependencies (dkms, liburcu, adduser): installing the .debs must bring them.
base_pkgs=(gcc libc6-dev pkg-config)
for r in "${rels[@]}"; do base_pkgs+=("linux-headers-$r"); done
key=$(printf '%s\n' "$recipe" "$suite" "$sources" "${base_pkgs[@]}" | sha256sum | cut -c1-12)
base=$top/build/chroot/$suite-$key

# Run a command in the chroot at $1 with a clean environment.
inroot() {
	local r=$1
	shift
	# INITRD=No: the kernel image that a headers package may pull in
	# (6.12's depends on it) needs no initramfs here.
	chroot "$r" /usr/bin/env -i PATH=/usr/sbin:/usr/bin:/sbin:/bin HOME=/root LANG=C.UTF-8 \
		DEBIAN_FRONTEND=noninteractive INITRD=No "$@"
}
# Mount what a chroot needs, and the host's package cache.
mount_fs() {
	local r=$1
	mount -t proc proc "$r/proc"
	mount --rbind /dev "$r/dev"
	mount -t sysfs sys "$r/sys"
	mount --bind /var/cache/apt/archives "$r/var/cache/apt/archives"
	cp /etc/resolv.conf "$r/etc/resolv.conf" 2>/dev/null || true
}
apt_opts=(-y -q -o APT::Sandbox::User=root -o APT::Keep-Downloaded-Packages=true
	--no-install-recommends)

make_base() {
	local tmp=$base.tmp
	rm -rf "$tmp"
	say "making the $suite chroot (cached as ${base#"$top"/}) from $mirror"
	# In two stages, so that dpkg runs without fsync from the start (this
	# tree is thrown away at will).
	{
		debootstrap --foreign --variant=minbase --cache-dir=/var/cache/apt/archives \
			"$suite" "$tmp" "$mirror" &&
			echo force-unsafe-io > "$tmp/etc/dpkg/dpkg.cfg.d/pkg-test-unsafe-io" &&
			inroot "$tmp" /debootstrap/debootstrap --second-stage
	} > "$out/debootstrap.log" 2>&1 || { tail -n 20 "$out/debootstrap.log"; return 1; }
	umount "$tmp/proc" 2> /dev/null
	echo "$sources" > "$tmp/etc/apt/sources.list"
	(
		mount_fs "$tmp"
		inroot "$tmp" apt-get -q -o APT::Sandbox::User=root update &&
			inroot "$tmp" apt-get install "${apt_opts[@]}" "${base_pkgs[@]}"
	) > "$out/base.log" 2>&1 || { tail -n 20 "$out/base.log"; return 1; }
	umount -R "$tmp/proc" "$tmp/dev" "$tmp/sys" "$tmp/var/cache/apt/archives"
	rm -f "$tmp/etc/resolv.conf"
	# Older bases (another key) go: one chroot is enough.
	find "$top/build/chroot" -mindepth 1 -maxdepth 1 -name "$suite-*" ! -name "$suite-$key.tmp" \
		-exec rm -rf {} +
	mv "$tmp" "$base"
}
# One maker at a time: the test waits here for a --prepare in the background.
exec 8> "$top/build/chroot.lock"
flock 8
if [ -d "$base" ]; then
	say "cached chroot ${base#"$top"/}"
else
	lap "waiting for the chroot lock"
	make_base
	lap "debootstrap and the kernel headers"
fi
flock -u 8
if [ $prepare = 1 ]; then
	[ -d "$base" ]
	exit
fi
result "$([ -d "$base" ] && echo 0 || echo 1)" \
	"a clean $suite chroot with only the kernel headers of ${rels[*]} (debootstrap)"
[ -d "$base" ] || exit 1

# 4. A fresh overlay on the base.
root=$out/root
umount -R "$root" 2>/dev/null
rm -rf "$out/upper" "$out/work" "$root"
mkdir -p "$out/upper" "$out/work" "$root"
mount -t overlay overlay -o "lowerdir=$base,upperdir=$out/upper,workdir=$out/work" "$root"
mount_fs "$root"

# 5. Install as the README says.
mkdir -p "$root/tmp/debs" "$root/tmp/examples"
cp "${debs[@]}" "$root/tmp/debs/"
inroot "$root" sh -c 'apt-get install '"${apt_opts[*]}"' /tmp/debs/*.deb' > "$out/install.log" 2>&1
st=$?
[ $st = 0 ] || tail -n 30 "$out/install.log"
lap "apt install with two DKMS builds"
result $st "apt install ./build/deb/*.deb in the chroot"
grep -E '^(Building for|Building initial module|Done\.|Error|Running module version|Signing|.*dkms status)' \
	"$out/install.log" | sed 's/^/# /'

# 6. DKMS: a module for each kernel, built for exactly that kernel.
for r in "${rels[@]}"; do
	ko=
	for f in "$root/lib/modules/$r/updates/dkms/shmpool.ko"{,.xz,.zst,.gz}; do
		[ -f "$f" ] && ko=$f && break
	done
	st=1
	if [ -n "$ko" ]; then
		mkdir -p "$mods/$r"
		case "$ko" in	# busybox insmod in the VM lanes reads no compressed module
		*.xz) xz -dc "$ko" > "$mods/$r/shmpool.ko" ;;
		*.zst) zstd -qdc "$ko" > "$mods/$r/shmpool.ko" ;;
		*.gz) gzip -dc "$ko" > "$mods/$r/shmpool.ko" ;;
		*) cp "$ko" "$mods/$r/shmpool.ko" ;;
		esac
		vermagic=$(inroot "$root" modinfo -F vermagic "${ko#"$root"}" 2> /dev/null | cut -d' ' -f1)
		status=$(inroot "$root" dkms status -m shmpool -k "$r" 2> /dev/null)
		say "$status"
		if [ "$vermagic" = "$r" ] && [[ $status == *": installed"* ]]; then
			st=0
		else
			say "vermagic '$vermagic', status '$status'"
		fi
	fi
	[ $st = 0 ] || tail -n 20 "$root/var/lib/dkms/shmpool/"*/build/make.log 2> /dev/null | sed 's/^/#   /'

	result $st "DKMS built and installed shmpool.ko for $r (updates/dkms, vermagic $r)"
done

# 7. What shmpool-dkms installs besides the source.
st=0
for f in /usr/lib/modules-load.d/shmpool.conf /etc/modprobe.d/shmpool.conf /lib/udev/rules.d/60-shmpool.rules; do
	[ -f "$root$f" ] || { say "missing $f"; st=1; }
done
grep -qx shmpool "$root/usr/lib/modules-load.d/shmpool.conf" || st=1
grep -q '^KERNEL=="shmpool".*GROUP="shmpool"' "$root/lib/udev/rules.d/60-shmpool.rules" || st=1
inroot "$root" getent group shmpool > /dev/null || { say "no group shmpool"; st=1; }
result $st "shmpool-dkms installs the modules-load.d entry, the modprobe.d file, the udev rule and the group shmpool"

# 8. The library as a user meets it: pkg-config, an example, dynamic and static.
flags=$(inroot "$root" pkg-config --cflags --libs libshmpool 2>&1)
st=$?
say "pkg-config --cflags --libs libshmpool: $flags"
result $st "pkg-config --cflags --libs libshmpool"

cp -a examples/. "$root/tmp/examples/"
WARN='-Wall -Wextra -Werror -Wshadow -Wstrict-prototypes -Wmissing-prototypes'
st=0
for c in "$root"/tmp/examples/*.c; do
	c=${c#"$root"}
	inroot "$root" sh -c "set -e; cflags=\$(pkg-config --cflags libshmpool); \
		libs=\$(pkg-config --libs libshmpool); gcc -std=gnu11 -O2 $WARN \$cflags $c \$libs \
		-o ${c%.c}" || { say "$c does not build"; st=1; }
done
result $st "every example in examples/ compiles and links against the installed libshmpool"

ex=/tmp/examples/pingpong
# grep reads all of ldd's output (no -q): with pipefail, a grep that quit at
# the first match could leave ldd with SIGPIPE and fail the pipeline.
if inroot "$root" ldd "$ex" | grep -E '^\s*libshmpool\.so\.0 => (/usr)?/lib/[^ ]*/libshmpool\.so\.0 ' > /dev/null; then
	st=0
else
	st=1
fi
if [ $st = 1 ]; then
	inroot "$root" ldd "$ex" > "$out/pingpong.log" 2>&1
else
	inroot "$root" env SHMPOOL_BACKEND=memfd timeout 60 "$ex" > "$out/pingpong.log" 2>&1
	st=$?
fi
[ $st = 0 ] || cat "$out/pingpong.log" 2>/dev/null
result $st "pingpong, linked to the installed libshmpool.so.0, runs in the chroot (memfd backend)"

inroot "$root" sh -c "set -e; cflags=\$(pkg-config --cflags libshmpool); \
	libs=\$(pkg-config --static --libs libshmpool); \
	gcc -std=gnu11 -O2 $WARN -static \$cflags $ex.c \$libs -o $ex-static" &&
	inroot "$root" env SHMPOOL_BACKEND=memfd timeout 60 "$ex-static" > "$out/pingpong-static.log" 2>&1
st=$?
[ $st = 0 ] || cat "$out/pingpong-static.log" 2>/dev/null
result $st "pingpong linked statically (pkg-config --static) runs in the chroot (memfd backend)"

# 9. shmpool-tools, once it is built.
if ls build/deb/shmpool-tools_*.deb > /dev/null 2>&1; then
	inroot "$root" shmpoolctl --help > "$out/shmpoolctl.log" 2>&1 &&
		inroot "$root" env SHMPOOL_BACKEND=memfd shmpoolctl ls >> "$out/shmpoolctl.log" 2>&1
	st=$?
	[ $st = 0 ] || cat "$out/shmpoolctl.log"
	result $st "shmpoolctl from shmpool-tools runs in the chroot (--help; ls on memfd)"
fi

# 10. Removal: purge takes the modules, the files and the DKMS tree away.
inroot "$root" apt-get purge -y -q shmpool-dkms > "$out/purge.log" 2>&1
st=$?
left=$(cd "$root" && ls -d lib/modules/*/updates/dkms/shmpool.ko* usr/src/shmpool-* var/lib/dkms/shmpool \
	etc/modprobe.d/shmpool.conf usr/lib/modules-load.d/shmpool.conf 2>/dev/null)
[ -z "$left" ] || { say "left after purge: $left"; st=1; }
[ $st = 0 ] || tail -n 20 "$out/purge.log"
result $st "apt purge shmpool-dkms removes the modules, the source and the config files"

lap "the library, examples and purge"
umount -R "$root"
cpu_now
say "all: $((SECONDS - started)) s wall, $cpu s CPU"
exit $((fails > 0))
