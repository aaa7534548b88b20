#!/bin/busybox sh
# /init of the test VM (scripts/vm-run.sh builds the initramfs around it).
# Output goes to ttyS1, which the host reads; the kernel console is ttyS0.
# Every line the host relies on starts with "### ".
/bin/busybox --install -s /bin
export PATH=/bin
mount -t proc proc /proc
mount -t sysfs sys /sys
mount -t devtmpfs dev /dev
mount -t debugfs debugfs /sys/kernel/debug 2>/dev/null
mount -t tmpfs tmp /tmp
mkdir -p /dev/shm && mount -t tmpfs shm /dev/shm
exec > /dev/ttyS1 2>&1

kmsg() { echo "shmpool-vm: $*" > /dev/kmsg; }
finish() {
	echo "### RESULT $spnonce"
	sync
	poweroff -f
}

echo "### KERNEL $(uname -r)"
[ -f /lib/modules/brd.ko ] && insmod /lib/modules/brd.ko rd_nr=1 rd_size=65536
# kmemleak: forget what boot left behind, so that reports are ours, and no
# periodic scan: a scan in the middle of the tests can suspect objects that
# are only in flight (e.g. queued for kfree_rcu() in pages kmemleak does not
# scan) and freed a moment later. The scans after rmmod below judge.
if [ -w /sys/kernel/debug/kmemleak ]; then
	echo scan=off > /sys/kernel/debug/kmemleak
	echo clear > /sys/kernel/debug/kmemleak
fi
# dma-buf importers (vm-run.sh): vivid as one webcam-like capture node only
# (its default is a dozen nodes), then vgem.
if [ -d /lib/modules/importers ]; then
	for m in /lib/modules/importers/*.ko; do
		case "$m" in
		*-vivid.ko) insmod "$m" n_devs=1 node_types=0x1 num_inputs=1 input_types=0x0 multiplanar=1 ;;
		*) insmod "$m" ;;
		esac || echo "### IMPORTER ${m##*/} failed"
	done
	echo "### IMPORTERS" /dev/video* /dev/dri/card*
fi
kmsg "start"
echo "### MODULE $(sha256sum /lib/modules/shmpool.ko)"
if insmod /lib/modules/shmpool.ko; then
	echo "### INSMOD ok"
else
	echo "### INSMOD failed"
	finish
fi

cd /tmp
for t in /tests/*; do
	name=${t##*/}
	if [ "$spmode" = demo ]; then
		echo "### BEGIN $name"
		"$t"
		echo "### END $name rc=$?"
		continue
	fi
	echo "### BEGIN $name"
	kmsg "test $name"
	start=$(date +%s)
	timeout -s KILL "$sptimeout" "$t"
	rc=$?
	echo "### END $name rc=$rc secs=$(( $(date +%s) - start ))"
done

kmsg "tests done"
echo "### POOLS $(cat /sys/class/misc/shmpool/pools)"
echo "### PAGES $(cat /sys/class/misc/shmpool/pages)"
if [ "$(cat /sys/class/misc/shmpool/pools)" != 0 ] && [ -r /sys/kernel/debug/shmpool/pools ]; then
	echo "### left behind:"
	sed 's/^/### /' /sys/kernel/debug/shmpool/pools
fi
# A process that attached and detached keeps its mm's notifier until it
# exits: rmmod must drop it under the live process (attach_test.c).
linger=
if [ "$spmode" != demo ] && [ -x /tests/attach_test ]; then
	SHMPOOL_ATTACH_TEST_LINGER=1 /tests/attach_test > /tmp/linger 2>&1 &
	linger=$!
	i=0
	while [ $i -lt 100 ] && ! grep -q '^ready$' /tmp/linger; do
		sleep 0.1
		i=$((i + 1))
	done
	if grep -q '^ready$' /tmp/linger; then
		echo "### LINGER ready"
	else
		echo "### LINGER not ready: $(cat /tmp/linger)"
	fi
fi
if rmmod shmpool; then
	echo "### RMMOD ok"
else
	echo "### RMMOD failed"
fi
if [ -n "$linger" ]; then
	kill -9 "$linger"
	wait "$linger"
fi
if [ -w /sys/kernel/debug/kmemleak ]; then
	# Objects must be a few seconds old before kmemleak reports them.
	sleep 6
	echo scan > /sys/kernel/debug/kmemleak
	sleep 1
	echo scan > /sys/kernel/debug/kmemleak
	echo "### KMEMLEAK BEGIN"
	cat /sys/kernel/debug/kmemleak
	echo "### KMEMLEAK END"
fi
kmsg "end"
finish
