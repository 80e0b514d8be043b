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
CFLAGS += -std=gnu11 -Wall -Wextra -Wno-unused-parameter -Wno-missing-field-initializers -Werror \
	  -D_GNU_SOURCE -DPYTRACE_VERSION='"$(VERSION)"' $(INCLUDES)
LDLIBS := $(shell pkg-config --libs libbpf 2>/dev/null || echo -lbpf) -lelf -lz -lprotobuf-c -lpg_query -lmicrohttpd -lpthread -lm
BPF_CFLAGS := -g -O2 -Wall -Werror -target bpf -D__TARGET_ARCH_$(ARCH) -I$(OUTPUT) -Iinclude -Ibpf

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

ifeq ($(V),1)
	Q =
	msg =
else
	Q = @
	msg = @printf '  %-8s %s\n' "$(1)" "$(2)";
endif

.PHONY: all clean install check unit-test demo deps bench
.DELETE_ON_ERROR:
.SECONDARY:

all: $(OUTPUT)/pytrace-bpf $(SKELS)

$(OUTPUT) $(OUTPUT)/src $(OUTPUT)/bpf $(OUTPUT)/tests $(OUTPUT)/proto $(OUTPUT)/tools:
	$(Q)mkdir -p $@

$(OUTPUT)/vmlinux.h: | $(OUTPUT)
	$(call msg,GEN,$@)
	$(Q)$(BPFTOOL) btf dump file $(VMLINUX_BTF) format c > $@

$(OUTPUT)/bpf/%.tmp.bpf.o: bpf/%.bpf.c $(wildcard bpf/*.bpf.h) $(wildcard include/*.h) $(OUTPUT)/vmlinux.h | $(OUTPUT)/bpf
	$(call msg,BPF,$@)
	$(Q)$(CLANG) $(BPF_CFLAGS) -c $< -o $@

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

deps:
	$(Q)scripts/install-deps.sh

unit-test: $(UNIT_BINS)
	$(Q)tests/run-unit.sh $(UNIT_BINS)

check: deps
	$(Q)$(MAKE) --no-print-directory all $(UNIT_BINS) $(TOOL_BINS)
	$(Q)tests/run-all.sh $(UNIT_BINS)

demo: deps
	$(Q)$(MAKE) --no-print-directory all
	$(Q)scripts/demo.sh

bench: all
	$(Q)bench/flame_overhead.sh

install: $(OUTPUT)/pytrace-bpf $(SKELS)
	$(call msg,INSTALL,$(DESTDIR)$(PREFIX)/bin/pytrace-bpf)
	$(Q)install -D -m 0755 $(OUTPUT)/pytrace-bpf $(DESTDIR)$(PREFIX)/bin/pytrace-bpf

clean:
	$(call msg,CLEAN)
	$(Q)rm -rf $(OUTPUT)
