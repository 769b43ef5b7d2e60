# genq: one non-recursive Makefile.
#
#   make            build everything into build/ (-Wall -Wextra -Werror)
#   make test       set up (packages, local Kafka + Postgres), build, run the
#                   unit tests and the end-to-end tests, all under ASan+UBSan
#   make demo       set up, build, run a demo batch and print a report
#   make up/down    start/stop the local stack (deploy/stack.sh)
#   make asan       sanitizer build into build-asan/, unit and e2e tests
#   make test-unit  unit tests only (no network, no services)
#   make bench      benchmarks that print their figures
#   make docs       CONFIGURATION.md from the config tables
#
# BUILD picks the output directory; SAN=1 adds the sanitizers.

BUILD   ?= build
SAN     ?= 0
CC      ?= cc
PKGS    := rdkafka libcurl libprotobuf-c jansson yaml-0.1 libpq libmicrohttpd check uuid libcrypto

# Lazy (=) so that `make test` on a fresh machine can install the packages
# (deploy/setup.sh) before pkg-config is first asked.
PKG_CFLAGS = $(shell pkg-config --cflags $(PKGS) 2>/dev/null)
PKG_LIBS   = $(shell pkg-config --libs $(PKGS) 2>/dev/null)

WARN    := -Wall -Wextra -Werror -Wshadow -Wstrict-prototypes -Wmissing-prototypes \
           -Wno-unused-parameter
CFLAGS  ?= -O2 -g
ifeq ($(SAN),1)
CFLAGS  := -O1 -g -fno-omit-frame-pointer
SANFLAGS := -fsanitize=address,undefined -fno-sanitize-recover=undefined
endif
ALL_CFLAGS  = -std=c11 -D_GNU_SOURCE $(WARN) $(CFLAGS) $(SANFLAGS) \
              -Iproto -Icommon -Iproducer -Iworker $(PKG_CFLAGS) -MMD -MP
ALL_LDFLAGS = $(SANFLAGS) $(LDFLAGS)
LIBS        = $(PKG_LIBS) -lpthread -lm

# ---- sources ---------------------------------------------------------------

PROTO_SRCS    := proto/genq.pb-c.c
COMMON_SRCS   := common/xmem.c common/log.c common/globals.c common/conf.c \
                 common/codec.c common/jobjson.c common/gconf.c common/pgutil.c \
                 common/schema.c
PRODUCER_SRCS := producer/libgenq.c producer/submit.c producer/admin.c \
                 producer/migrate.c producer/report.c producer/tools.c \
                 producer/tenant.c producer/retention.c \
                 producer/provider_cmd.c producer/subcmd.c
GENQ_MAIN     := producer/genq.c
WORKER_SRCS   := worker/wconf.c worker/offtrack.c worker/httploop.c \
                 worker/provider.c worker/provider_openai.c worker/pgsink.c \
                 worker/kio.c worker/engine.c worker/eng_policy.c \
                 worker/eng_tasks.c worker/eng_media.c worker/eng_finish.c \
                 worker/backoff.c \
                 worker/provider_anthropic.c worker/provider_gemini.c \
                 worker/provider_cohere.c worker/provider_openai_images.c \
                 worker/provider_stability.c worker/provider_replicate.c \
                 worker/provider_hf.c worker/provider_kie.c \
                 worker/provider_sf_video.c worker/provider_zhipu_video.c \
                 worker/provider_openai_audio.c worker/provider_assemblyai.c \
                 worker/provider_gladia.c worker/provider_elevenlabs.c \
                 worker/adapt.c worker/policy.c \
                 worker/cbrecv.c worker/hooks.c worker/pstate.c \
                 worker/rcache.c
WORKER_MAIN   := worker/main.c
FAKEPROV_SRCS  = $(wildcard tests/fakeprov/*.c)
UNIT_TESTS     = $(patsubst tests/unit/%.c,%,$(wildcard tests/unit/test_*.c))

obj = $(patsubst %.c,$(BUILD)/obj/%.o,$(1))

LIBCOMMON := $(BUILD)/libgenqcommon.a
LIBGENQ   := $(BUILD)/libgenq.a
BINS      := $(BUILD)/genq $(BUILD)/genq-worker $(BUILD)/fakeprov \
             $(BUILD)/genq-probe

# Keep test objects between runs (make would delete them as intermediates).
.SECONDARY:

.PHONY: all clean test test-unit test-e2e asan demo up down setup bench docs \
        check-deps style-check
all: check-deps $(BINS)

# ---- protobuf-c codegen ----------------------------------------------------

proto/genq.pb-c.c proto/genq.pb-c.h: proto/genq.proto
	cd proto && protoc-c --c_out=. genq.proto

# Every object may include the generated header.
$(BUILD)/obj/%.o: %.c proto/genq.pb-c.h
	@mkdir -p $(dir $@)
	$(CC) $(ALL_CFLAGS) -c $< -o $@

# Migrations are compiled in, so a binary needs no checkout to migrate.
$(BUILD)/gen/schema_sql.c: $(sort $(wildcard schema/*.sql)) schema/embed.sh
	@mkdir -p $(dir $@)
	schema/embed.sh $(sort $(wildcard schema/*.sql)) > $@.tmp && mv $@.tmp $@

$(BUILD)/obj/gen/schema_sql.o: $(BUILD)/gen/schema_sql.c
	@mkdir -p $(dir $@)
	$(CC) $(ALL_CFLAGS) -c $< -o $@

$(LIBCOMMON): $(call obj,$(PROTO_SRCS) $(COMMON_SRCS)) $(BUILD)/obj/gen/schema_sql.o
	@rm -f $@
	ar rcs $@ $^

$(LIBGENQ): $(call obj,$(PRODUCER_SRCS))
	@rm -f $@
	ar rcs $@ $^

$(BUILD)/genq: $(call obj,$(GENQ_MAIN)) $(LIBGENQ) $(LIBCOMMON)
	$(CC) $(ALL_LDFLAGS) -o $@ $^ $(LIBS)

$(BUILD)/genq-worker: $(call obj,$(WORKER_MAIN) $(WORKER_SRCS)) $(LIBCOMMON)
	$(CC) $(ALL_LDFLAGS) -o $@ $^ $(LIBS)

$(BUILD)/genq-probe: $(call obj,tests/tools/probe.c $(WORKER_SRCS)) \
                     $(LIBCOMMON)
	$(CC) $(ALL_LDFLAGS) -o $@ $^ $(LIBS)

$(BUILD)/fakeprov: $(call obj,$(FAKEPROV_SRCS)) $(LIBCOMMON)
	$(CC) $(ALL_LDFLAGS) -o $@ $^ $(LIBS)

# Unit tests link the module under test straight from its object files.
$(BUILD)/tests/%: $(call obj,tests/unit/%.c) $(call obj,$(WORKER_SRCS)) \
                  $(LIBGENQ) $(LIBCOMMON)
	@mkdir -p $(dir $@)
	$(CC) $(ALL_LDFLAGS) -o $@ $^ $(LIBS)

# ---- packages --------------------------------------------------------------

check-deps:
	@missing=""; \
	for p in $(PKGS); do pkg-config --exists $$p || missing="$$missing $$p"; done; \
	command -v protoc-c >/dev/null || missing="$$missing protoc-c"; \
	if [ -n "$$missing" ]; then \
	  echo "genq: missing build dependencies:$$missing"; \
	  echo "genq: run 'sudo deploy/setup.sh' (Debian packages: $$(deploy/setup.sh --names-for $$missing))"; \
	  exit 1; fi

setup:
	deploy/setup.sh

# ---- tests -----------------------------------------------------------------

test-unit: all $(addprefix $(BUILD)/tests/,$(UNIT_TESTS))
	@tests/run-unit.sh $(BUILD)

# Sanitizer build, unit tests, then the end-to-end tests against it.
asan: setup
	$(MAKE) BUILD=build-asan SAN=1 all test-unit
	deploy/stack.sh up
	tests/run-e2e.sh build-asan

test-e2e: all
	tests/run-e2e.sh $(BUILD)

# The README's test command: everything, from a fresh machine.
test: setup
	@rm -f tests/out/summary
	$(MAKE) all test-unit
	$(MAKE) BUILD=build-asan SAN=1 all test-unit
	deploy/stack.sh up
	tests/run-e2e.sh build-asan
	@awk '{p += $$1; f += $$2} END {printf "all tests: %d passed, %d failed\n", p, f}' tests/out/summary

demo: setup
	$(MAKE) all
	deploy/stack.sh up
	deploy/demo.sh $(BUILD)

up: setup
	$(MAKE) all
	deploy/stack.sh up

down:
	deploy/stack.sh down

bench: all
	tests/bench/run.sh $(BUILD)

docs: all
	$(BUILD)/genq-worker --dump-config-docs > CONFIGURATION.md

style-check:
	@command -v clang-format >/dev/null || { echo "style-check: install clang-format"; exit 1; }
	clang-format --dry-run --Werror common/*.[ch] producer/*.[ch] worker/*.[ch]

clean:
	rm -rf build build-asan proto/*.pb-c.[ch]

-include $(shell find $(BUILD)/obj -name '*.d' 2>/dev/null)
