# SPDX-License-Identifier: (LGPL-2.1 OR BSD-2-Clause)
# pytrace-bpf: `make` builds build/pytrace-bpf; `make check` runs every test; `make demo` runs the demo.

OUTPUT ?= build
CLANG ?= clang
BPFTOOL ?= bpftool
CC ?= cc
PREFIX ?= /usr/local
DESTDIR ?=
VERSION := 0.1.0

ARCH := $(shell uname -m | sed 's/x86_64/x86/;s/aarch64/arm64/')
VMLINUX_BTF ?= /sys/kernel/btf/vmlinux

INCLUDES := -I$(OUTPUT) -I$(OUTPUT)/proto -Iinclude -Isrc
CFLAGS ?= -g -O2
COMMON_CFLAGS := -std=gnu11 -Wall -Wextra -Wno-unused-parameter -Wno-missing-field-initializers -Werror \
	  -D_GNU_SOURCE -DPYTRACE_VERSION='"$(VERSION)"' $(INCLUDES)
CFLAGS += $(COMMON_CFLAGS)
# SAN=1: AddressSanitizer and UBSan in everything built (make check-sanitize builds so in build-asan)
SAN_CFLAGS := -fsanitize=address,undefined -fno-sanitize-recover=undefined -fno-omit-frame-pointer
ifneq ($(SAN),)
CFLAGS += $(SAN_CFLAGS)
endif
LDLIBS := $(shell pkg-config --libs libbpf 2>/dev/null || echo -lbpf) -lelf -lz -lprotobuf-c -lpg_query -lmicrohttpd -lpthread -lm
BPF_CFLAGS := -g -O2 -Wall -Werror -target bpf -D__TARGET_ARCH_$(ARCH) -I$(OUTPUT) -Iinclude -Ibpf
# PHASES=1: the wire programs time their phases (pg_phases; bench/wire_phases.py reads it). For
# measurements only: each mark costs a clock read and a map lookup. make OUTPUT=build-phases PHASES=1
ifneq ($(PHASES),)
BPF_CFLAGS += -DPT_PHASES
endif

BPF_SRCS := $(wildcard bpf/*.bpf.c)
BPF_NAMES := $(patsubst bpf/%.bpf.c,%,$(BPF_SRCS))
SKELS := $(patsubst %,$(OUTPUT)/%.skel.h,$(BPF_NAMES))
SRCS := $(wildcard src/*.c)
OBJS := $(patsubst src/%.c,$(OUTPUT)/src/%.o,$(SRCS))
LIB_OBJS := $(filter-out $(OUTPUT)/src/main.o,$(OBJS))
# protobuf-c messages (pprof): proto/X.proto -> $(OUTPUT)/proto/X.pb-c.{c,h}
PROTOS := $(wildcard proto/*.proto)
PROTO_OBJS := $(patsubst proto/%.proto,$(OUTPUT)/proto/%.pb-c.o,$(PROTOS))
LIB_OBJS += $(PROTO_OBJS)
UNIT_SRCS := $(wildcard tests/unit/test_*.c)
UNIT_BINS := $(patsubst tests/unit/%.c,$(OUTPUT)/tests/%,$(UNIT_SRCS))
# small programs the integration scripts drive (tests/tools/X.c -> $(OUTPUT)/tools/X)
TOOL_BINS := $(patsubst tests/tools/%.c,$(OUTPUT)/tools/%,$(wildcard tests/tools/*.c))
# libFuzzer targets: tests/fuzz/fuzz_NAME.c, whose first line names the sources it links
# (/* fuzz-sources: src/a.c src/b.c */); each also gets a cmocka replay of its seed corpus and
# regression inputs, built like the unit tests and run with them.
FUZZ_SRCS := $(wildcard tests/fuzz/fuzz_*.c)
FUZZ_NAMES := $(patsubst tests/fuzz/fuzz_%.c,%,$(FUZZ_SRCS))
FUZZ_BINS := $(patsubst %,$(OUTPUT)/fuzz/fuzz_%,$(FUZZ_NAMES))
FUZZ_SECONDS ?= 30
# -Wno-string-plus-int: clang reads sqlnorm.c's SQLNORM_CUT_MARK + 1 (the mark without its space) as a slip
FUZZ_CFLAGS := -g -O1 $(COMMON_CFLAGS) -fsanitize=fuzzer,address,undefined -fno-sanitize-recover=undefined \
	       -fno-omit-frame-pointer -Wno-string-plus-int
fuzz_srcs = $(shell sed -n '1s|^/\* fuzz-sources: \(.*\) \*/$$|\1|p' $(1))
REPLAY_BINS := $(patsubst %,$(OUTPUT)/tests/replay_%,$(FUZZ_NAMES))
UNIT_BINS += $(REPLAY_BINS)
SAN_OUTPUT ?= build-asan

ifeq ($(V),1)
	Q =
	msg =
else
	Q = @
	msg = @printf '  %-8s %s\n' "$(1)" "$(2)";
endif

.PHONY: all clean install check unit-test demo deps bench bench-tools fuzz fuzz-build check-sanitize unit-bins FORCE print-ldlibs
.DELETE_ON_ERROR:
.SECONDARY:

all: $(OUTPUT)/pytrace-bpf $(SKELS)

$(OUTPUT) $(OUTPUT)/src $(OUTPUT)/bpf $(OUTPUT)/tests $(OUTPUT)/proto $(OUTPUT)/tools $(OUTPUT)/fuzz:
	$(Q)mkdir -p $@

$(OUTPUT)/vmlinux.h: | $(OUTPUT)
	$(call msg,GEN,$@)
	$(Q)$(BPFTOOL) btf dump file $(VMLINUX_BTF) format c > $@

$(OUTPUT)/bpf/%.tmp.bpf.o: bpf/%.bpf.c $(wildcard bpf/*.bpf.h) $(wildcard include/*.h) $(OUTPUT)/vmlinux.h | $(OUTPUT)/bpf
	$(call msg,BPF,$@)
	$(Q)$(CLANG) $(BPF_CFLAGS) -c $< -o $@

# The wire programs as PHASES=1 builds them, compiled by make check so that the variant cannot rot
# unseen (not loaded: bench/wire_phases.py is run by hand)
$(OUTPUT)/bpf/pgwire-phases.o: bpf/pgwire.bpf.c $(wildcard bpf/*.bpf.h) $(wildcard include/*.h) $(OUTPUT)/vmlinux.h | $(OUTPUT)/bpf
	$(call msg,BPF,$@)
	$(Q)$(CLANG) $(BPF_CFLAGS) -DPT_PHASES -c $< -o $@

$(OUTPUT)/bpf/%.bpf.o: $(OUTPUT)/bpf/%.tmp.bpf.o
	$(call msg,GEN-OBJ,$@)
	$(Q)$(BPFTOOL) gen object $@ $<

$(OUTPUT)/%.skel.h: $(OUTPUT)/bpf/%.bpf.o
	$(call msg,GEN-SKEL,$@)
	$(Q)$(BPFTOOL) gen skeleton $< > $@

$(OUTPUT)/proto/%.pb-c.c $(OUTPUT)/proto/%.pb-c.h: proto/%.proto | $(OUTPUT)/proto
	$(call msg,PROTOC-C,$@)
	$(Q)protoc-c -Iproto --c_out=$(OUTPUT)/proto $<

$(OUTPUT)/proto/%.pb-c.o: $(OUTPUT)/proto/%.pb-c.c $(OUTPUT)/proto/%.pb-c.h
	$(call msg,CC,$@)
	$(Q)$(CC) $(CFLAGS) -c $< -o $@

$(OUTPUT)/src/%.o: src/%.c $(wildcard src/*.h) $(wildcard include/*.h) $(PROTO_OBJS:.o=.h) | $(OUTPUT)/src
	$(call msg,CC,$@)
	$(Q)$(CC) $(CFLAGS) -c $< -o $@

# Which user-side objects include which skeleton: each BPF object's loader, and only it.
$(OUTPUT)/src/session.o: $(OUTPUT)/session.skel.h
$(OUTPUT)/src/sampler.o: $(OUTPUT)/sampler.skel.h
$(OUTPUT)/src/libpq.o: $(OUTPUT)/sql.skel.h
$(OUTPUT)/src/httptrace.o: $(OUTPUT)/http.skel.h
$(OUTPUT)/src/pgwiretrace.o: $(OUTPUT)/pgwire.skel.h
$(OUTPUT)/src/pgtls.o: $(OUTPUT)/pgtls.skel.h
$(OUTPUT)/src/funcprobe.o: $(OUTPUT)/funcs.skel.h

$(OUTPUT)/libpytrace.a: $(LIB_OBJS)
	$(call msg,AR,$@)
	$(Q)rm -f $@ && ar rcs $@ $^

$(OUTPUT)/pytrace-bpf: $(OUTPUT)/src/main.o $(OUTPUT)/libpytrace.a
	$(call msg,BINARY,$@)
	$(Q)$(CC) $(CFLAGS) $^ $(LDLIBS) -o $@

$(OUTPUT)/tests/%: tests/unit/%.c $(OUTPUT)/libpytrace.a | $(OUTPUT)/tests
	$(call msg,TEST,$@)
	$(Q)$(CC) $(CFLAGS) -DTEST_DATA_DIR='"$(CURDIR)/tests/data"' $< $(OUTPUT)/libpytrace.a \
		$(LDLIBS) -lcmocka -o $@

$(OUTPUT)/tools/%: tests/tools/%.c $(OUTPUT)/libpytrace.a | $(OUTPUT)/tools
	$(call msg,TOOL,$@)
	$(Q)$(CC) $(CFLAGS) $< $(OUTPUT)/libpytrace.a $(LDLIBS) -o $@

$(OUTPUT)/tests/replay_%: tests/fuzz/replay.c tests/fuzz/fuzz_%.c $(OUTPUT)/libpytrace.a | $(OUTPUT)/tests
	$(call msg,REPLAY,$@)
	$(Q)$(CC) $(CFLAGS) -DFUZZ_NAME='"$*"' -DFUZZ_DIR='"$(CURDIR)/tests/fuzz"' $< tests/fuzz/fuzz_$*.c \
		$(OUTPUT)/libpytrace.a $(LDLIBS) -lcmocka -o $@

.SECONDEXPANSION:
$(OUTPUT)/fuzz/fuzz_%: tests/fuzz/fuzz_%.c $$(call fuzz_srcs,tests/fuzz/fuzz_$$*.c) $(wildcard src/*.h) \
		$(wildcard include/*.h) | $(OUTPUT)/fuzz $(SKELS)
	$(call msg,FUZZ-CC,$@)
	$(Q)test -n "$(call fuzz_srcs,$<)" || { echo "$<: no /* fuzz-sources: ... */ first line" >&2; exit 1; }
	$(Q)$(CLANG) $(FUZZ_CFLAGS) $< $(call fuzz_srcs,$<) $(LDLIBS) -o $@

# One run per target (make -j runs them side by side); a failure is recorded, not fatal, so
# that every target runs; `fuzz` then fails if any did.
$(OUTPUT)/fuzz/%.result: $(OUTPUT)/fuzz/fuzz_% FORCE
	$(call msg,FUZZ,$* $(FUZZ_SECONDS) s)
	$(Q)tests/fuzz/run.sh $< tests/fuzz/corpus/$* $(FUZZ_SECONDS) $(OUTPUT)/fuzz/$* > $@

fuzz-build: $(FUZZ_BINS)

fuzz: $(patsubst %,$(OUTPUT)/fuzz/%.result,$(FUZZ_NAMES))
	$(Q)tests/fuzz/run.sh --summary $^

unit-bins: $(UNIT_BINS)

# What a program linked against libpytrace.a needs (tests that build their own harness ask for it).
print-ldlibs:
	@echo $(LDLIBS)

# The tool and the unit tests with ASan+UBSan in $(SAN_OUTPUT), the unit tests run there (and the
# reader of Django's URL patterns, which test_requests.py runs on every interpreter).
check-sanitize:
	$(Q)$(MAKE) --no-print-directory OUTPUT=$(SAN_OUTPUT) SAN=1 all unit-bins $(SAN_OUTPUT)/tools/route_table
	$(Q)tests/run-sanitize.sh $(SAN_OUTPUT)

FORCE:

deps:
	$(Q)scripts/install-deps.sh

unit-test: $(UNIT_BINS)
	$(Q)tests/run-unit.sh $(UNIT_BINS)

check: deps
	$(Q)$(MAKE) --no-print-directory all $(UNIT_BINS) $(TOOL_BINS) $(OUTPUT)/bpf/pgwire-phases.o
	$(Q)tests/run-all.sh $(UNIT_BINS)

demo: deps
	$(Q)$(MAKE) --no-print-directory all
	$(Q)scripts/demo.sh

bench: all bench-tools
	$(Q)bench/flame_overhead.sh

# Loaders the benchmarks run beside the tool (bench/NAME/NAME.bpf.c + NAME.c -> $(OUTPUT)/NAME):
# their BPF objects go through the same skeleton rules as bpf/*.bpf.c; not built by `make`.
# ($$* in a prerequisite is the stem, named twice there: these rules come after .SECONDEXPANSION.)
BENCH_TOOLS := sockfloor
BENCH_LDLIBS := $(shell pkg-config --libs libbpf 2>/dev/null || echo -lbpf) -lelf -lz

bench-tools: $(patsubst %,$(OUTPUT)/%,$(BENCH_TOOLS)) $(OUTPUT)/sockpeer_cost $(OUTPUT)/verifier_stats

# the verifier's work on each program of the tool's BPF objects
$(OUTPUT)/verifier_stats: bench/verifier_stats.c
	$(call msg,BINARY,$@)
	$(Q)$(CC) $(CFLAGS) $< $(BENCH_LDLIBS) -o $@

# src/sockpeer.c's two ways to tell where a socket leads, timed side by side
$(OUTPUT)/sockpeer_cost: bench/sockpeer_cost.c $(OUTPUT)/libpytrace.a
	$(call msg,BINARY,$@)
	$(Q)$(CC) $(CFLAGS) $< $(OUTPUT)/libpytrace.a $(LDLIBS) -o $@

$(patsubst %,$(OUTPUT)/bpf/%.tmp.bpf.o,$(BENCH_TOOLS)): $(OUTPUT)/bpf/%.tmp.bpf.o: bench/$$*/$$*.bpf.c $(OUTPUT)/vmlinux.h | $(OUTPUT)/bpf
	$(call msg,BPF,$@)
	$(Q)$(CLANG) $(BPF_CFLAGS) -c $< -o $@

$(patsubst %,$(OUTPUT)/%,$(BENCH_TOOLS)): $(OUTPUT)/%: bench/$$*/$$*.c $(OUTPUT)/$$*.skel.h
	$(call msg,BINARY,$@)
	$(Q)$(CC) $(CFLAGS) $< $(BENCH_LDLIBS) -o $@

# The unit names the binary by $(PREFIX) (not $(DESTDIR): that is only where files are staged).
install: $(OUTPUT)/pytrace-bpf $(SKELS)
	$(call msg,INSTALL,$(DESTDIR)$(PREFIX)/bin/pytrace-bpf)
	$(Q)install -D -m 0755 $(OUTPUT)/pytrace-bpf $(DESTDIR)$(PREFIX)/bin/pytrace-bpf
	$(call msg,INSTALL,$(DESTDIR)$(PREFIX)/lib/systemd/system/pytrace-bpf.service)
	$(Q)install -d -m 0755 $(DESTDIR)$(PREFIX)/lib/systemd/system
	$(Q)sed 's|@PREFIX@|$(PREFIX)|g' scripts/pytrace-bpf.service > $(DESTDIR)$(PREFIX)/lib/systemd/system/pytrace-bpf.service
	$(Q)chmod 0644 $(DESTDIR)$(PREFIX)/lib/systemd/system/pytrace-bpf.service
	$(call msg,INSTALL,$(DESTDIR)$(PREFIX)/share/pytrace-bpf/)
	$(Q)install -D -m 0644 scripts/prometheus.yml $(DESTDIR)$(PREFIX)/share/pytrace-bpf/prometheus.yml
	$(Q)install -D -m 0644 scripts/k8s/pytrace-bpf-daemonset.yaml $(DESTDIR)$(PREFIX)/share/pytrace-bpf/k8s/pytrace-bpf-daemonset.yaml

clean:
	$(call msg,CLEAN)
	$(Q)rm -rf $(OUTPUT) $(SAN_OUTPUT)
