# shmpool — the one entry point.
#
#   make            module for every installed kernel (or KDIR=...), library,
#                   examples and selftests
#   make check      deps, everything above, host tests (plain + ASan/UBSan),
#                   static checks, then the QEMU lanes (LANES="6.1 6.12 rt debug")
#   make demo       deps, build, boot the 6.1 lane and run the demo
#   make fuzz       the random-operation selftest alone, longer, in one lane
#                   (FUZZ_SECS=600 FUZZ_LANE=debug [FUZZ_SEED=n])
#   make deps       install build/test/VM dependencies with apt-get
#   make install    library, headers, pkg-config file and man pages under PREFIX
#                   (libraries in LIBDIR, default PREFIX/lib)
#   make deb        Debian packages into build/deb/ (scripts/mkdeb.sh)
#   make clean
#
# Kernel modules are built out of tree under build/mod/<kernel release>/.

VERSION   := 0.1.0
SOVERSION := 0
PREFIX    ?= /usr/local
LIBDIR    ?= $(PREFIX)/lib
LANES     ?= 6.1 6.12 rt debug

SHELL := /bin/bash
TOP := $(CURDIR)
B   := $(TOP)/build
CC  ?= gcc

WARN      := -Wall -Wextra -Werror -Wshadow -Wstrict-prototypes -Wmissing-prototypes
LIB_CFLAGS := -std=c11 -O2 -g $(WARN) -fvisibility=hidden \
	-I$(TOP)/include -I$(TOP)/lib $(EXTRA_CFLAGS)
SAN_FLAGS := -fsanitize=address,undefined -fno-sanitize-recover=all -fno-omit-frame-pointer

LIB_SRCS := $(sort $(wildcard lib/*.c))
LIB_HDRS := $(wildcard include/*.h include/uapi/linux/*.h lib/*.h)
LIB_PIC  := $(patsubst lib/%.c,$(B)/lib/pic/%.o,$(LIB_SRCS))
LIB_OBJS := $(patsubst lib/%.c,$(B)/lib/obj/%.o,$(LIB_SRCS))
LIB_SO   := $(B)/lib/libshmpool.so.$(VERSION)
LIB_A    := $(B)/lib/libshmpool.a
LIB_PC   := $(B)/lib/libshmpool.pc

EXAMPLES := $(patsubst examples/%.c,$(B)/examples/%,$(wildcard examples/*.c))
HOST_TESTS := $(patsubst selftests/%.c,%,$(wildcard selftests/lib_*_test.c))

ifneq ($(KDIR),)
MOD_TARGETS := $(B)/mod/kdir-$(subst /,_,$(KDIR))/shmpool.ko
else
KRELS := $(shell $(TOP)/scripts/kernels.sh headers 2>/dev/null)
MOD_TARGETS := $(foreach r,$(KRELS),$(B)/mod/$(r)/shmpool.ko)
endif

all: modules lib examples selftests

# ---- kernel module -------------------------------------------------------
modules:
ifeq ($(strip $(MOD_TARGETS)),)
	@echo "no kernel headers found under /usr/src: run 'make deps' or pass KDIR=" >&2; exit 1
endif
# "+": the kernel's make (in build-module.sh) joins our jobserver.
ifneq ($(KDIR),)
	+@scripts/build-module.sh $(KDIR) $(B)/mod/kdir-$(subst /,_,$(KDIR))
else
	+@set -e; for r in $(KRELS); do \
		echo "  MODULE  build/mod/$$r/shmpool.ko"; \
		scripts/build-module.sh /usr/src/linux-headers-$$r $(B)/mod/$$r 2> >(grep -v 'Skipping BTF' >&2); \
	done
endif

# ---- library ---------------------------------------------------------------
lib: $(LIB_SO) $(LIB_A) $(LIB_PC)

$(B)/lib/pic/%.o: lib/%.c $(LIB_HDRS)
	@mkdir -p $(@D)
	$(CC) $(LIB_CFLAGS) -fPIC -c $< -o $@

$(B)/lib/obj/%.o: lib/%.c $(LIB_HDRS)
	@mkdir -p $(@D)
	$(CC) $(LIB_CFLAGS) -c $< -o $@

$(LIB_SO): $(LIB_PIC) lib/libshmpool.map
	$(CC) -shared -Wl,-soname,libshmpool.so.$(SOVERSION) \
		-Wl,--version-script=lib/libshmpool.map -Wl,-z,defs $(LDFLAGS) \
		-o $@ $(LIB_PIC) -lurcu-memb -lurcu-common -lpthread
	ln -sf libshmpool.so.$(VERSION) $(B)/lib/libshmpool.so.$(SOVERSION)
	ln -sf libshmpool.so.$(SOVERSION) $(B)/lib/libshmpool.so

$(LIB_A): $(LIB_OBJS)
	@rm -f $@
	ar rcs $@ $^

# Regenerated every time: it depends on PREFIX, which make cannot see change.
$(LIB_PC): lib/libshmpool.pc.in FORCE
	@mkdir -p $(@D)
	@sed -e 's|@PREFIX@|$(PREFIX)|g' -e 's|@LIBDIR@|$(LIBDIR)|g' -e 's|@VERSION@|$(VERSION)|g' $< > $@

# ---- examples, selftests, host test builds ----------------------------------
examples: $(EXAMPLES)

$(B)/examples/%: examples/%.c $(wildcard examples/*.h) $(LIB_A) $(LIB_HDRS)
	@mkdir -p $(@D)
	$(CC) -std=gnu11 -O2 -g $(WARN) -I$(TOP)/include -static $< $(LIB_A) -lurcu-memb -lurcu-common -lpthread -o $@

selftests: lib
	@$(MAKE) -s -C selftests OUTPUT=$(B)/selftests

# Benchmarks (not tests: no timing assertions, never part of make check).
# The host table first, then the doorbell table in the 6.1 and 6.12 lanes.
BENCHES := $(patsubst bench/%.c,$(B)/bench/%,$(wildcard bench/*_bench.c))

# iceoryx 2.0 (Debian's libiceoryx-binding-c-dev, no pkg-config file) is a
# peer of ring_bench's latency table, compiled in with -DHAVE_ICEORYX when its
# headers are there. Debian ships its libraries as shared objects only, and
# the VM lanes run static programs without its daemon: so on the host make
# bench runs build/bench/ring_bench-iceoryx, the same source linked
# dynamically, and the VMs get the static ring_bench without iceoryx.
ICEORYX_INC := $(patsubst %/iceoryx_binding_c/runtime.h,%,$(firstword \
	$(wildcard /usr/include/iceoryx/v2.*/iceoryx_binding_c/runtime.h)))
ifneq ($(ICEORYX_INC),)
IOX_ROUDI := $(shell { dpkg -L iceoryx 2>/dev/null | grep -m1 '/iox-roudi$$'; } || command -v iox-roudi)
HOST_BENCHES := $(patsubst $(B)/bench/ring_bench,$(B)/bench/ring_bench-iceoryx,$(BENCHES))
else
HOST_BENCHES := $(BENCHES)
endif

# alloc_bench's stronger peers (mimalloc, jemalloc, libpmemobj; see
# bench/alloc_bench.c): dlopen()ed by build/bench/alloc_bench-peers, dynamic,
# which make bench runs on the host; the VMs get the static alloc_bench.
ifneq ($(wildcard /usr/include/libpmemobj.h),)
HOST_BENCHES := $(patsubst $(B)/bench/alloc_bench,$(B)/bench/alloc_bench-peers,$(HOST_BENCHES))
endif

bench: $(BENCHES) $(HOST_BENCHES)
	@set -e; for b in $(HOST_BENCHES); do \
		echo "## host, kernel $$(uname -r): $$(basename $$b)"; $$b; done
	@echo "## host: alloc_bench's one-process tables counted (callgrind)"; \
		if command -v valgrind >/dev/null; then bench/alloc_count.sh; \
		else echo "skipped: valgrind is not installed (scripts/deps.sh installs it)"; fi
	@set -e; for l in 6.1 6.12; do scripts/vm-run.sh --bench $$l; done

$(B)/bench/%: bench/%.c bench/bench.c bench/bench.h $(LIB_A) $(LIB_HDRS)
	@mkdir -p $(@D)
	$(CC) -std=gnu11 -O2 -g $(WARN) -I$(TOP)/include -static $< bench/bench.c $(LIB_A) -lurcu-memb -lurcu-common -lpthread -o $@

# rte_ring (DPDK 22.11) is a peer of ring_bench, compiled in when DPDK is
# installed; rte_ring_init() on caller memory needs no EAL initialisation.
DPDK_CFLAGS := $(shell pkg-config --cflags libdpdk 2>/dev/null)
ifneq ($(DPDK_CFLAGS),)
$(B)/bench/ring_bench: bench/ring_bench.c bench/bench.c bench/bench.h $(LIB_A) $(LIB_HDRS)
	@mkdir -p $(@D)
	$(CC) -std=gnu11 -O2 -g $(WARN) -I$(TOP)/include $(DPDK_CFLAGS) -DHAVE_RTE_RING \
		-DALLOW_EXPERIMENTAL_API -static $< bench/bench.c $(LIB_A) -lrte_ring -lrte_eal \
		-lrte_kvargs -lrte_telemetry -lurcu-memb -lurcu-common -lbsd -lmd -lnuma \
		-lpthread -ldl -o $@ 2> >(grep -v -e 'statically linked applications' -e 'in function' >&2)
endif

# ring_bench with iceoryx (see ICEORYX_INC above) and, when DPDK is there,
# rte_ring: dynamic, but libshmpool and liburcu are linked in statically as
# in the static build; the rings' hot paths are inline either way.
ifneq ($(ICEORYX_INC),)
ifneq ($(DPDK_CFLAGS),)
IOX_RTE := $(DPDK_CFLAGS) -DHAVE_RTE_RING -DALLOW_EXPERIMENTAL_API
IOX_RTE_LIBS := -lrte_ring -lrte_eal
endif
$(B)/bench/ring_bench-iceoryx: bench/ring_bench.c bench/bench.c bench/bench.h $(LIB_A) $(LIB_HDRS)
	@mkdir -p $(@D)
	$(CC) -std=gnu11 -O2 -g $(WARN) -I$(TOP)/include $(IOX_RTE) -isystem $(ICEORYX_INC) \
		-DHAVE_ICEORYX -DIOX_ROUDI='"$(IOX_ROUDI)"' $< bench/bench.c $(LIB_A) \
		$(IOX_RTE_LIBS) -liceoryx_binding_c -Wl,-Bstatic -lurcu-memb -lurcu-common \
		-Wl,-Bdynamic -lpthread -o $@
endif

# C++ peers (bench/*.cpp, e.g. Boost.Interprocess) linked into their C benchmark.
$(B)/bench/%.o: bench/%.cpp
	@mkdir -p $(@D)
	$(CXX) -std=gnu++17 -O2 -g -Wall -Wextra -Werror -c $< -o $@

$(B)/bench/alloc_bench: bench/alloc_bench.c $(B)/bench/alloc_boost.o bench/bench.c bench/bench.h $(LIB_A) $(LIB_HDRS)
	@mkdir -p $(@D)
	$(CC) -std=gnu11 -O2 -g $(WARN) -I$(TOP)/include -static $< bench/bench.c \
		$(B)/bench/alloc_boost.o $(LIB_A) -lurcu-memb -lurcu-common -lstdc++ -lpthread -lm -o $@

$(B)/bench/alloc_bench-peers: bench/alloc_bench.c $(B)/bench/alloc_boost.o bench/bench.c bench/bench.h $(LIB_A) $(LIB_HDRS)
	@mkdir -p $(@D)
	$(CC) -std=gnu11 -O2 -g $(WARN) -I$(TOP)/include -DHAVE_PEERS $< bench/bench.c \
		$(B)/bench/alloc_boost.o $(LIB_A) -Wl,-Bstatic -lurcu-memb -lurcu-common \
		-Wl,-Bdynamic -lstdc++ -ldl -lpthread -lm -o $@

# Library tests once more with ASan+UBSan (dynamic: sanitizers need it).
# The library is compiled once per sanitizer (build/san/<name>/) and its
# objects linked into every test (not an archive: a test links all of it).
ASAN_CFLAGS := -std=gnu11 -O1 -g $(WARN) $(SAN_FLAGS) -I$(TOP)/include -I$(TOP)/lib
ASAN_OBJS := $(patsubst lib/%.c,$(B)/san/asan/%.o,$(LIB_SRCS))
asan-tests: $(patsubst %,$(B)/asan/%,$(HOST_TESTS))

$(ASAN_OBJS): $(B)/san/asan/%.o: lib/%.c $(LIB_HDRS)
	@mkdir -p $(@D)
	$(CC) $(ASAN_CFLAGS) -c $< -o $@

$(B)/asan/%: selftests/%.c $(wildcard selftests/*.h) $(ASAN_OBJS) $(LIB_HDRS) $(B)/kselftest/kselftest_harness.h
	@mkdir -p $(@D)
	$(CC) $(ASAN_CFLAGS) -I$(B)/kselftest $< $(ASAN_OBJS) -lurcu-memb -lurcu-common -lpthread -o $@

# And with ThreadSanitizer, for the concurrent code (threads within a
# process: TSan does not see other processes' accesses to shared memory).
TSAN_CFLAGS := -std=gnu11 -O1 -g $(WARN) -Wno-tsan -fsanitize=thread -fno-omit-frame-pointer \
	-DSHMPOOL_TEST_THREADS -I$(TOP)/include -I$(TOP)/lib
TSAN_OBJS := $(patsubst lib/%.c,$(B)/san/tsan/%.o,$(LIB_SRCS))
tsan-tests: $(patsubst %,$(B)/tsan/%,$(HOST_TESTS))

$(TSAN_OBJS): $(B)/san/tsan/%.o: lib/%.c $(LIB_HDRS)
	@mkdir -p $(@D)
	$(CC) $(TSAN_CFLAGS) -c $< -o $@

$(B)/tsan/%: selftests/%.c $(wildcard selftests/*.h) $(TSAN_OBJS) $(LIB_HDRS) $(B)/kselftest/kselftest_harness.h
	@mkdir -p $(@D)
	$(CC) $(TSAN_CFLAGS) -I$(B)/kselftest $< $(TSAN_OBJS) -lurcu-memb -lurcu-common -lpthread -o $@

$(B)/kselftest/kselftest_harness.h:
	scripts/kselftest-headers.sh $(B)/kselftest

# ---- top-level jobs --------------------------------------------------------
deps:
	@scripts/deps.sh

check: deps
	@echo "== builds ($$(date +%T))"
	@scripts/pkg-test.sh --prepare &	# its chroot, made while the rest builds
	@# The debug lane's kernel, built at the lowest priority on what CPU the
	@# builds, the host tests and the other lanes leave idle; the lane waits
	@# for it (a lock) and builds it itself if this one failed.
	@case " $(LANES) " in *" debug "*) mkdir -p $(B) && \
		nice -n 19 scripts/build-debug-kernel.sh > $(B)/kdebug.log 2>&1 < /dev/null & ;; esac
	@# Both cores: at nice 0 the builds come first, and the kernel above
	@# still has the idle time of the host tests and the lanes.
	@$(MAKE) -s -j$$(nproc) all asan-tests tsan-tests
	@scripts/check.sh $(LANES)

demo: deps
	@$(MAKE) -s all
	@scripts/vm-run.sh --demo 6.1

# The fuzzer runs for 20 s in every lane of make check; this runs it alone
# for longer. Its knobs reach the guest on the kernel command line.
FUZZ_SECS ?= 600
FUZZ_LANE ?= debug
fuzz:
	@$(MAKE) -s selftests
	@SHMPOOL_FUZZ_SECS=$(FUZZ_SECS) SHMPOOL_FUZZ_SEED=$(FUZZ_SEED) \
		TEST_TIMEOUT=$$(($(FUZZ_SECS) + 600)) VM_TIMEOUT=$$(($(FUZZ_SECS) + 1500)) \
		scripts/vm-run.sh --only fuzz_test $(FUZZ_LANE)

# The chaos test kills a worker in each of 10 rounds per backend in every
# lane of make check; this runs many more rounds on the device in one lane
# (about 1-2 s a round under TCG).
CHAOS_ROUNDS ?= 1000
CHAOS_LANE ?= 6.12
chaos:
	@$(MAKE) -s selftests
	@SHMPOOL_CHAOS_ROUNDS=$(CHAOS_ROUNDS) SHMPOOL_CHAOS_SEED=$(CHAOS_SEED) \
		SHMPOOL_CHAOS_BACKEND=device \
		TEST_TIMEOUT=$$(($(CHAOS_ROUNDS) * 5 + 600)) VM_TIMEOUT=$$(($(CHAOS_ROUNDS) * 5 + 1500)) \
		scripts/vm-run.sh --only lib_chaos_test $(CHAOS_LANE)

# The hostile-peer tests with fresh random seeds and HOSTILE_TRIALS trials
# each (make check runs one fixed seed), host memfd backend, plain and ASan.
hostile:
	@$(MAKE) -s selftests asan-tests
	@scripts/hostile.sh

install: lib
	install -d $(DESTDIR)$(LIBDIR) $(DESTDIR)$(PREFIX)/include/linux \
		$(DESTDIR)$(LIBDIR)/pkgconfig
	install -m 644 $(LIB_A) $(DESTDIR)$(LIBDIR)/
	install -m 755 $(LIB_SO) $(DESTDIR)$(LIBDIR)/
	ln -sf libshmpool.so.$(VERSION) $(DESTDIR)$(LIBDIR)/libshmpool.so.$(SOVERSION)
	ln -sf libshmpool.so.$(SOVERSION) $(DESTDIR)$(LIBDIR)/libshmpool.so
	install -m 644 include/shmpool*.h $(DESTDIR)$(PREFIX)/include/
	install -m 644 include/uapi/linux/shmpool.h $(DESTDIR)$(PREFIX)/include/linux/
	install -m 644 $(LIB_PC) $(DESTDIR)$(LIBDIR)/pkgconfig/
	@# man pages: section by suffix; .so links are installed as they are
	@set -e; for f in man/*.[1-8]; do \
		d=$(DESTDIR)$(PREFIX)/share/man/man$${f##*.}; \
		install -d $$d; install -m 644 $$f $$d/; \
	done

# Debian packages (debian/), built from a copy of the tree in build/deb/.
deb:
	@scripts/mkdeb.sh

clean:
	rm -rf $(B)/lib $(B)/asan $(B)/tsan $(B)/san $(B)/selftests $(B)/examples $(B)/mod $(B)/vm

# Also drops the cached debug kernel and extracted headers.
distclean:
	rm -rf $(B)

FORCE:
.PHONY: FORCE all modules lib examples selftests asan-tests tsan-tests deps check demo fuzz chaos hostile bench install clean distclean deb

# ---- tools: shmpoolctl --------------------------------------------------------
# Static, like the examples, so that the same binary runs in the VM lanes
# (busybox initramfs, no libc there); it is installed into $(PREFIX)/bin,
# since any user may look at the pools they can open.
TOOLS := $(B)/tools/shmpoolctl

all: tools
tools: $(TOOLS)

# TOOLS_LINK: -static for the VM lanes; the Debian package links libc
# dynamically (debian/rules: TOOLS_LINK=), as Debian wants its binaries.
TOOLS_LINK ?= -static
$(B)/tools/%: tools/%.c $(LIB_A) $(LIB_HDRS)
	@mkdir -p $(@D)
	$(CC) -std=c11 -O2 -g $(WARN) -I$(TOP)/include -DSHMPOOL_VERSION='"$(VERSION)"' \
		$(EXTRA_CFLAGS) $(TOOLS_LINK) $< $(LIB_A) -lurcu-memb -lurcu-common -lpthread \
		$(if $(TOOLS_LINK),,$(LDFLAGS)) -o $@

install: install-tools
install-tools: tools
	install -d $(DESTDIR)$(PREFIX)/bin $(DESTDIR)$(PREFIX)/share/man/man8
	install -m 755 $(TOOLS) $(DESTDIR)$(PREFIX)/bin/
	install -m 644 man/shmpoolctl.8 $(DESTDIR)$(PREFIX)/share/man/man8/

.PHONY: tools install-tools
