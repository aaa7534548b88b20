#!/usr/bin/env bash
# Boot one lane's kernel under QEMU (TCG, 2 CPUs), load shmpool.ko, run the
# selftests (or the demo), unload the module and check the kernel's log.
#
#   scripts/vm-run.sh [--demo | --bench] [--only PATTERN] <lane>
#
# Lanes: 6.1 and 6.12 (Debian's newest installed generic kernel of that
# series), rt (Debian's newest PREEMPT_RT kernel, the 6.12 rt flavour: spinlocks
# become sleeping locks) and debug (built from linux-source-6.1 with KASAN,
# lockdep, kmemleak; see scripts/build-debug-kernel.sh). --only runs the test programs whose name
# matches the shell glob PATTERN. --bench runs the programs build/bench/*_bench
# (those matching --only PATTERN)
# instead, like the demo (all output streamed), on a kernel booted without the
# slub/page debug options, and reports the host's CPU use by other processes
# meanwhile.
#
# Output: TAP lines as the tests run, each prefixed with the lane; at the
# end a line "lane <lane>: P passed, F failed, S skipped". Exit status 0 only
# if nothing failed. Logs are kept in build/vm/<lane>/ (console.log is the
# guest kernel's whole console, out.log the tests' output).
#
# The guest's verdict is trusted only through a marker line carrying a nonce
# that the host makes up for this boot; a guest that hangs is killed after
# VM_TIMEOUT seconds (default 1500), a test after TEST_TIMEOUT (default 600).
set -euo pipefail

top=$(cd "$(dirname "$0")/.." && pwd)
demo=0
bench=0
only='*'
while [ $# -gt 1 ]; do
	case "$1" in
	--demo) demo=1; shift ;;
	--bench) bench=1; demo=1; shift ;;	# run and judged like the demo
	--only) only=$2; shift 2 ;;
	*) break ;;
	esac
done
lane=${1:?usage: vm-run.sh [--demo | --bench] [--only PATTERN] <6.1|6.12|rt|debug>}
vm_timeout=${VM_TIMEOUT:-1500}
test_timeout=${TEST_TIMEOUT:-600}

dir=$top/build/vm/$lane
mkdir -p "$dir"
# One run per lane at a time: runs share the lane's directory and logs.
exec 9> "$dir.lock"
flock 9
cmdline_extra=
brd=
# The guest's TSC under TCG is the host's raw TSC, and this host is itself a
# VM whose raw TSC can jump: one rt run saw its clock leap 7 hours (soft
# lockup reports, a test's deadline gone). HPET follows the host's
# CLOCK_MONOTONIC, which does not jump.
clock="tsc=unstable"
case "$lane" in
debug)
	kcache=$("$top/scripts/build-debug-kernel.sh")
	kdir=$kcache/src
	kernel=$kdir/arch/x86/boot/bzImage
	# The release string does not change with the config: key the module
	# build by the kernel's cache key, or stale objects would be reused.
	rel=debug-$(basename "$kcache")
	# brd is built in: /dev/ram0 exists at boot. spbackends=device: the
	# library tests' memfd variants skip here (selftests/lib_test.h); the
	# host, 6.1 and rt run them, and this lane is for the module.
	cmdline_extra="brd.rd_nr=1 brd.rd_size=65536 kmemleak=on page_poison=1 $clock spbackends=device"
	;;
*)
	read -r rel kernel kdir < <("$top/scripts/kernels.sh" lane "$lane")
	# Debian kernels lack KASAN: SLUB redzones/poisoning and page poisoning
	# catch what they can.
	cmdline_extra="slub_debug=FZPU page_poison=1 $clock"
	# The memfd backend (the library on the kernel's futex and memfd)
	# runs on the host and in 6.1 (memfd before 6.3's exec seals); rt,
	# whose futex is the other implementation (PREEMPT_RT), runs it in
	# the programs of the blocking calls (selftests/lib_test.h:
	# lane_is_device_only()). The 6.12 lane would run rt's memfd and
	# futex code again, and tests the device backend only. Together
	# they save about 3 min of make check.
	[ "$lane" = 6.12 ] && cmdline_extra+=" spbackends=device"
	[ "$lane" = rt ] && cmdline_extra+=" spbackends=device spmemfd=lib_sync_test,lib_ring_test"
	for f in /lib/modules/"$rel"/kernel/drivers/block/brd.ko{,.xz}; do
		[ -f "$f" ] && brd=$f && break
	done
	;;
esac
# no_timer_check (below): under TCG on a loaded host the guest's check that
# the timer interrupt reaches the IO-APIC can fail, and the boot panics
# ("IO-APIC + timer doesn't work"); KVM guests skip that check the same way.
# Benchmarks measure the kernel as shipped, not its debug options.
[ "$bench" = 1 ] && cmdline_extra=
# pool_bench: 2 GiB, so that 512 MiB of every peer fits (hugetlbfs pages
# stay reserved during its run), and udmabuf (6.12, built in) at that size.
mem=1G
[ "$bench" = 1 ] && mem=2G && cmdline_extra="udmabuf.size_limit_mb=512"
# The fuzzer's and the chaos test's knobs reach the tests as init's environment: the kernel hands
# unknown name=value parameters to init.
for v in SHMPOOL_FUZZ_SECS SHMPOOL_FUZZ_SEED SHMPOOL_FUZZ_PROCS SHMPOOL_CHAOS_ROUNDS SHMPOOL_CHAOS_SEED SHMPOOL_CHAOS_BACKEND; do
	[ -n "${!v:-}" ] && cmdline_extra+=" $v=${!v}"
done

say() { echo "[$lane] $*"; }

# 1. The module, built for exactly this kernel. With SHMPOOL_KO_DIR set
# (make check, after scripts/pkg-test.sh), a module DKMS built for this
# release in the package test, $SHMPOOL_KO_DIR/<release>/shmpool.ko, is
# loaded instead (the 6.1 and 6.12 lanes); the guest prints its sha256.
mod=$top/build/mod/$rel
"$top/scripts/build-module.sh" "$kdir" "$mod" 2> >(grep -v 'Skipping BTF' >&2)
ko=$mod/shmpool.ko
if [ -n "${SHMPOOL_KO_DIR:-}" ] && [ -f "$SHMPOOL_KO_DIR/$rel/shmpool.ko" ]; then
	ko=$SHMPOOL_KO_DIR/$rel/shmpool.ko
	say "module: $ko (built by DKMS)"
fi

# 2. The initramfs: busybox, the module(s), static test programs, init.
root=$dir/root
rm -rf "$root"
mkdir -p "$root"/{bin,dev,proc,sys,tmp,tests,lib/modules}
cp /bin/busybox "$root/bin/busybox"
cp "$ko" "$root/lib/modules/shmpool.ko"
if [ -n "$brd" ]; then
	case "$brd" in
	*.xz) xz -dc "$brd" > "$root/lib/modules/brd.ko" ;;	# busybox insmod reads no .xz
	*) cp "$brd" "$root/lib/modules/brd.ko" ;;
	esac
fi
if [ "$bench" = 1 ]; then
	for b in "$top"/build/bench/*_bench; do	# the programs, not objects
		# shellcheck disable=SC2053
		[[ $(basename "$b") == $only ]] && cp "$b" "$root/tests/"
	done
elif [ "$demo" = 1 ]; then
	# the demo: pingpong, then the pipeline scenario that ends with
	# shmpoolctl; the other examples run as a test (examples_test)
	for e in pingpong pipeline; do cp "$top/build/examples/$e" "$root/tests/"; done
else
	n=0
	for t in "$top"/build/selftests/*_test; do
		# shellcheck disable=SC2053
		[[ $(basename "$t") == $only ]] || continue
		cp "$t" "$root/tests/"
		n=$((n + 1))
	done
	[ "$n" -gt 0 ] || { say "no test programs match '$only' in build/selftests (run make)"; exit 1; }
	# examples_test runs the example programs, from /examples (outside
	# /tests, whose every file init runs as a test).
	if [ -f "$root/tests/examples_test" ]; then
		mkdir -p "$root/examples"
		cp "$top"/build/examples/* "$root/examples/"
	fi
fi
# dma-buf importers for dmabuf_test and examples_test: Debian's vivid (V4L2
# test driver) and vgem (DRM), with their dependencies, decompressed (busybox
# insmod reads no .xz) and numbered in load order; init loads them. Absent
# from the debug lane's kernel: those tests skip there.
if [ "$demo" = 0 ] && { [ -f "$root/tests/dmabuf_test" ] || [ -f "$root/tests/examples_test" ]; } &&
	[ -d "/lib/modules/$rel" ]; then
	imp=$root/lib/modules/importers
	mkdir -p "$imp"
	i=10
	while read -r _ f; do
		b=$(basename "$f"); b=${b%.xz}
		case "$f" in
		*.xz) xz -dc "$f" > "$imp/$i-$b" ;;
		*) cp "$f" "$imp/$i-$b" ;;
		esac
		i=$((i + 1))
	done < <(for m in vivid vgem; do modprobe -S "$rel" --show-depends "$m" 2>/dev/null; done | awk '$1 == "insmod" && !seen[$2]++')
fi
# shmpoolctl, for its test and the demo (static, like the tests)
[ -x "$top/build/tools/shmpoolctl" ] && cp "$top/build/tools/shmpoolctl" "$root/bin/"
cp "$top/scripts/vm-init.sh" "$root/init"
chmod +x "$root/init"
(cd "$root" && find . | cpio -o -H newc --quiet | gzip -1) > "$dir/initramfs.gz"

# 3. Boot. ttyS0 carries the kernel console (to a file, complete even if the
# guest dies); ttyS1 the init's and tests' output (to us, streamed line by
# line, so that out.log can be timed and watched as the tests run).
nonce=$(od -An -N8 -tx8 /dev/urandom | tr -d ' ')
: > "$dir/console.log"
say "booting $rel ($(basename "$kernel")) under QEMU TCG, 2 CPUs"
# Host CPU ticks: busy, total, and this script's own plus its waited-for
# children's (QEMU among them), to tell how busy others kept the host.
host_cpu() {
	awk -v self="$(sed 's/.*) //' "/proc/$$/stat")" '/^cpu /{
		split(self, f, " ")
		print $2+$3+$4+$7+$8, $2+$3+$4+$5+$6+$7+$8+$9, f[12]+f[13]+f[14]+f[15]
	}' /proc/stat
}
[ "$bench" = 1 ] && read -r busy0 total0 own0 < <(host_cpu)
set +e
# Benchmarks built against DPDK use SSE4.2 (-march=corei7), which QEMU's
# default CPU model lacks: give them every feature TCG can emulate.
cpu=()
[ "$bench" = 1 ] && cpu=(-cpu max)
timeout -k 10 "$vm_timeout" qemu-system-x86_64 -accel tcg "${cpu[@]}" -smp 2 -m "$mem" \
	-nodefaults -display none -no-reboot \
	-kernel "$kernel" -initrd "$dir/initramfs.gz" \
	-append "console=ttyS0 ignore_loglevel panic=-1 oops=panic no_timer_check $cmdline_extra spnonce=$nonce splane=$lane sptimeout=$test_timeout spmode=$([ $demo = 1 ] && echo demo || echo test)" \
	-serial "file:$dir/console.log" -chardev stdio,id=out,signal=off -serial chardev:out \
	< /dev/null | stdbuf -oL tr -d '\r' | tee "$dir/out.log" | "$top/scripts/tap-filter.sh" "$lane" "$demo"
qemu_rc=${PIPESTATUS[0]}
set -e
if [ "$bench" = 1 ]; then
	read -r busy1 total1 own1 < <(host_cpu)
	say "$(awk -v b=$((busy1 - busy0)) -v t=$((total1 - total0)) -v o=$((own1 - own0)) 'BEGIN {
		p = t > 0 && b > o ? 100 * (b - o) / t : 0
		flag = p > 10 ? " -> BUSY, rerun" : ""
		printf "host: other processes used %.1f%% of all host CPUs during the VM run (QEMU excluded)%s", p, flag
	}')"
fi

# 4. The verdict, from the guest's output and the kernel's console.
exec "$top/scripts/vm-verdict.sh" "$lane" "$dir" "$nonce" "$qemu_rc" "$demo"
