# Sprig's front door.  `make run` and `make test` work on a fresh Debian 12
# machine as root (with git and make: apt-get install git make): both
# install what is missing (scripts/deps.sh) first, and so do fuzz,
# format-check and bench for what they need (scripts/deps.sh TARGET).

BUILD      ?= build
ASAN_BUILD ?= build-asan
JOBS       ?= $(shell nproc)
CMAKE_ARGS ?=
DATA       ?= ./sprig-data
PORT       ?= 5646
QUIC_PORT  ?= 5645
PREFIX     ?= /usr/local

# The builds below are cmake's makefiles run from this one: without this,
# each prints "Entering/Leaving directory" around everything it does.
MAKEFLAGS  += --no-print-directory

.PHONY: all deps build build-asan run test test-normal test-asan bench \
        bench-auth bench-api bench-build bench-net bench-import secrets-leak \
        bench-quic-streams \
        bench-js crash-long powerloss flips fuzz format format-check clean \
        install soak tsan test-tsan valgrind bench-cluster bench-cluster-tls \
        jepsen bench-bgverify

all: build

deps:
	@sh scripts/deps.sh

build: deps
	@cmake -S . -B $(BUILD) -DSPRIG_WERROR=ON $(CMAKE_ARGS) >/dev/null
	@cmake --build $(BUILD) -j $(JOBS)

build-asan: deps
	@cmake -S . -B $(ASAN_BUILD) -DSPRIG_SANITIZE=ON -DSPRIG_WERROR=ON \
	    -DCMAKE_BUILD_TYPE=Debug -DSPRIG_BENCH=OFF $(CMAKE_ARGS) >/dev/null
	@cmake --build $(ASAN_BUILD) -j $(JOBS)

# Sprig's main job on an embedded default storage in the working directory:
# the demo writes a few documents (so there is something to look at), then
# the server serves ./sprig-data over WebSockets on 127.0.0.1:$(PORT) and
# QUIC on 127.0.0.1:$(QUIC_PORT) (make run PORT=N QUIC_PORT=M; defaults
# 5646 and 5645) until Ctrl-C, with the demo schema's declarative view
# (messages by author).  Builds the tool alone, not the tests.
run: deps
	@cmake -S . -B $(BUILD) -DSPRIG_WERROR=ON $(CMAKE_ARGS) >/dev/null
	@cmake --build $(BUILD) -j $(JOBS) --target sprig_cli
	@$(BUILD)/tools/sprig --path $(DATA) demo
	@echo
	@S="$(BUILD)/tools/sprig --path $(DATA)"; \
	if SPRIG_DEMO_PW=demo $$S admin user create demo \
	    --password-env SPRIG_DEMO_PW >/dev/null 2>&1; then \
	    $$S admin group create admins >/dev/null 2>&1; \
	    $$S admin group grant admins '*' sprig >/dev/null && \
	    $$S admin user add-group demo admins >/dev/null; \
	fi; \
	echo "make run: a demo administrator 'demo' with password 'demo' exists" \
	    "(for this local demo only; sprig admin --help)."; \
	echo "  try: SPRIG_PW=demo $(BUILD)/tools/sprig --url" \
	    "ws://127.0.0.1:$(PORT) --user demo --password-env SPRIG_PW db list"; \
	echo "  web console: http://127.0.0.1:$(PORT)/ (in a browser; log in" \
	    "as demo / demo)"
	@$(BUILD)/tools/sprig --path $(DATA) --schema examples/schemas/demo.json \
	    serve --ws 127.0.0.1:$(PORT) --quic 127.0.0.1:$(QUIC_PORT)

# The whole suite, in a normal build and in an ASan+UBSan build, then the
# short ThreadSanitizer stage (test-tsan).
test: test-normal test-asan test-tsan

# The suite's ctest: JOBS tests that keep a core busy at a time, and up to
# WAIT_SLOTS more that mostly wait (the cluster tests) beside them
# (resource groups "cpus" and "waits": tests/schedule/CMakeLists.txt).
# Two are enough: the waiting tests' time over two slots stays well inside
# the busy tests' run, and more at once would starve their elections.
WAIT_SLOTS ?= 2
CTEST_SCHEDULED = printf '{"version":{"major":1,"minor":0},"local":[{"cpus":[{"id":"0","slots":%d}],"waits":[{"id":"0","slots":%d}]}]}\n' \
	    $(JOBS) $(WAIT_SLOTS) >ctest-cpus.json && \
	    ctest --output-on-failure --resource-spec-file ctest-cpus.json \
	    -j $$(($(JOBS) + $(WAIT_SLOTS)))

test-normal: build
	@sh scripts/deps.sh test
	@echo "== test suite: normal build"
	@cd $(BUILD) && $(CTEST_SCHEDULED)

test-asan: build-asan
	@echo "== test suite: ASan+UBSan build"
	@cd $(ASAN_BUILD) && ASAN_OPTIONS=detect_leaks=1:abort_on_error=1 \
	    UBSAN_OPTIONS=halt_on_error=1:print_stacktrace=1 $(CTEST_SCHEDULED)

# Benchmarks (Release build in $(BUILD)): the local engine against raw LMDB
# and SQLite, its CPU-bound rows again under callgrind (instructions per
# operation), and the commerce workload against PostgreSQL over loopback
# (bench/run.sh), then the network against Redis and PostgreSQL on
# loopback (bench/bench_net.py), then bulk import from the CLI against
# sqlite3's .import (bench/bench_import.py); all write
# bench/results/*.json (and docs/benchmarks.md).  bench-net and
# bench-import: one of them alone.
bench: bench-build
	@sh bench/run.sh $(BUILD)
	@python3 bench/bench_net.py $(BUILD)
	@python3 bench/bench_import.py $(BUILD)
	@$(BUILD)/bench/api_bench --out bench/results/api.json
	@node bench/bench_js.mjs $(BUILD)
	@python3 bench/cluster/bench_cluster.py $(BUILD)
	@python3 bench/cluster/tls_cost.py $(BUILD) --out bench/results/cluster_tls.json
	@$(BUILD)/bench/bench_bgverify --out bench/results/bgverify.json

# The page verification on a ~1 GB database (issue 17 item 3): the open,
# the background walk past its budget, sprig check, and gets while the
# walk runs against after (bench/bench_bgverify.c).
bench-bgverify: bench-build
	@$(BUILD)/bench/bench_bgverify --out bench/results/bgverify.json

# The JavaScript client from Node beside sprig-bench, and the changes
# feed's throughput to 10 followers (bench/bench_js.mjs).
bench-js: bench-build
	@node bench/bench_js.mjs $(BUILD)

# Bulk import from the CLI: sprig doc import (local, and over --url) beside
# sqlite3's .import of the same rows (bench/bench_import.py).
bench-import: bench-build
	@python3 bench/bench_import.py $(BUILD)
	@$(BUILD)/bench/auth_bench --out bench/results/auth.json

# Custom API round trips beside db.get and kv.increment (issue 12).
bench-api: bench-build
	@$(BUILD)/bench/api_bench --out bench/results/api.json

# Permission checks on vs off (50 clients, one run) and logins/s.
# Passwords and token secrets searched for in a core image of running
# servers (ws://, wss://, quic://), their logs and files
# (tests/secrets_leak_test.sh; in `make test` as ctest secrets_leak).
secrets-leak: build
	@sh tests/secrets_leak_test.sh $(BUILD)/tools/sprig

bench-auth: bench-build
	@$(BUILD)/bench/auth_bench --out bench/results/auth.json
	@python3 bench/auth_callgrind.py $(BUILD)

bench-net: bench-build
	@python3 bench/bench_net.py $(BUILD)

# QUIC's stream mappings (issue 11): one stream against a stream per
# request under 0/1/10 % loss (bench/quic_streams.c), then instructions
# per request of each under callgrind (2000 kv.get, client and server).
bench-quic-streams: bench-build
	@$(BUILD)/bench/quic_streams --runs 5 --seconds 2 \
	    --out bench/results/quic_streams.json
	@for m in one request; do \
	    valgrind -q --tool=callgrind --instr-atstart=no \
	        --callgrind-out-file=$(BUILD)/quic-streams-cg.$$m \
	        $(BUILD)/bench/quic_streams --cg $$m 2000 >/dev/null && \
	    callgrind_annotate $(BUILD)/quic-streams-cg.$$m | \
	        awk -v m=$$m '/PROGRAM TOTALS/ { gsub(",", "", $$1); \
	            printf "%s: %d instructions per request\n", m, $$1 / 2000 }'; \
	done
# The cluster benchmark (issue 18): 3 Sprig nodes against 3 etcd 3.4
# nodes on loopback, writes/s and p50/p99 with 1 and 64 in flight, and
# failover time -> bench/results/cluster.json (bench/cluster/).
bench-cluster: bench-build
	@python3 bench/cluster/bench_cluster.py $(BUILD)

# What node-to-node TLS costs (issue 18): 3 loopback nodes, plain TCP
# beside TLS, writes/s and p50/p99 with 1 and 64 in flight (alternating
# rounds), then instructions per committed write under callgrind ->
# bench/results/cluster_tls.json, cluster_tls_cg.json.
bench-cluster-tls: bench-build
	@python3 bench/cluster/tls_cost.py $(BUILD) --out bench/results/cluster_tls.json
	@python3 bench/cluster/tls_cost.py $(BUILD) --callgrind 10 \
	    --out bench/results/cluster_tls_cg.json
# The long Jepsen-style run (issue 18; tests/cluster_jepsen_test.py): 3 real
# nodes, JEPSEN_ROUNDS rounds of 5 clients x JEPSEN_OPS operations under
# kill -9 and SIGSTOP of the leader and of a follower, each history checked
# by tools/lincheck/lincheck.py, then the kill-the-leader test twice as long.
# SPRIG_SEED replays a run.
JEPSEN_ROUNDS ?= 5
JEPSEN_OPS    ?= 80
JEPSEN_READS  ?= linearizable
jepsen: deps
	@cmake -S . -B $(BUILD) -DSPRIG_WERROR=ON $(CMAKE_ARGS) >/dev/null
	@cmake --build $(BUILD) -j $(JOBS) --target sprig_cli sprig_lin_record \
	    sprig_write_load
	@python3 tests/cluster_jepsen_test.py $(BUILD)/tools/sprig \
	    $(BUILD)/tools/sprig-lin-record $(BUILD)/jepsen-tmp \
	    --rounds $(JEPSEN_ROUNDS) --ops $(JEPSEN_OPS) --reads $(JEPSEN_READS) \
	    --control
	@python3 tests/cluster_kill_leader_test.py $(BUILD)/tools/sprig \
	    $(BUILD)/tools/sprig-write-load $(BUILD)/jepsen-kill-tmp --rounds 4

bench-build:
	@sh scripts/deps.sh bench
	@cmake -S . -B $(BUILD) -DSPRIG_WERROR=ON -DCMAKE_BUILD_TYPE=Release \
	    $(CMAKE_ARGS) >/dev/null
	@cmake --build $(BUILD) -j $(JOBS)

# The long crash loop: 10,000 SIGKILL rounds (make test runs a short one).
crash-long: build
	@SPRIG_CRASH_ROUNDS=10000 $(BUILD)/tests/test_crash

# The soak (issue 17 item 6; tests/soak/): 200 connections of mixed load
# (inserts, gets, view queries, key-value, PubSub) for 60 s in 4 rounds
# against a server process that enforces logins; then every acknowledged
# write is read back (through the server, and from the files after it
# exits), the server's fds and threads must return to their baseline and
# its memory stay bounded, and p50/p99 per operation are printed.  make
# test runs a 10-second version (ctest soak).
SOAK_SECONDS ?= 60
SOAK_CLIENTS ?= 200
soak: deps
	@cmake -S . -B $(BUILD) -DSPRIG_WERROR=ON $(CMAKE_ARGS) >/dev/null
	@cmake --build $(BUILD) -j $(JOBS) --target sprig_soak
	@$(BUILD)/tests/sprig-soak --seconds $(SOAK_SECONDS) \
	    --clients $(SOAK_CLIENTS) --rounds 4

# The long power-loss run (tests/powerloss, docs/reliability.md): each
# workload mode recorded once under the LD_PRELOAD recorder, then 300 crash
# images of it judged (make test runs a short one).  SPRIG_SEED replays.
powerloss: build
	@sh tests/powerloss/powerloss.sh long \
	    $(BUILD)/tests/powerloss/sprig_powerloss \
	    $(BUILD)/tests/powerloss/libsprig_powerloss.so \
	    $(BUILD)/test-tmp/powerloss-long

# The long byte-flip run (issue 17 item 3): FLIP_ROUNDS rounds of random
# byte flips in a storage's files, each read back in a child process
# (make test runs 24).  Replay one with SPRIG_SEED=N.
FLIP_ROUNDS ?= 1000
flips: build
	@SPRIG_FLIP_ROUNDS=$(FLIP_ROUNDS) SPRIG_VALUE_FLIP_ROUNDS=$(FLIP_ROUNDS) \
	    $(BUILD)/tests/test_flips

# ThreadSanitizer (issue 17 item 7): the threaded tests -- the writer and
# asynchronous submission, the server, the client, PubSub, concurrency,
# key-value, request order, QUIC -- and a short soak, built with
# -fsanitize=thread in $(TSAN_BUILD) and run; any data race fails
# (halt_on_error).  Suppressions: tests/tsan.supp, each with its reason.
TSAN_BUILD ?= build-tsan
TSAN_TESTS ?= test_cmd_submit test_server test_server_order \
              test_server_batches test_pubsub test_concurrency test_kv \
              test_quic
tsan: deps
	@cmake -S . -B $(TSAN_BUILD) -DSPRIG_TSAN=ON -DSPRIG_WERROR=ON \
	    -DCMAKE_BUILD_TYPE=RelWithDebInfo -DSPRIG_BENCH=OFF \
	    $(CMAKE_ARGS) >/dev/null
	@cmake --build $(TSAN_BUILD) -j $(JOBS) --target $(TSAN_TESTS) sprig_soak
	@cd $(TSAN_BUILD) && \
	    TSAN_OPTIONS="halt_on_error=1 second_deadlock_stack=1 suppressions=$(CURDIR)/tests/tsan.supp" \
	    ctest --output-on-failure -j $(JOBS) \
	    -R '^($(shell echo $(TSAN_TESTS) | tr ' ' '|'))$$'
	@TSAN_OPTIONS="halt_on_error=1 suppressions=$(CURDIR)/tests/tsan.supp" \
	    SPRIG_TEST_TMP=$(TSAN_BUILD)/test-tmp \
	    $(TSAN_BUILD)/tests/sprig-soak --seconds 6 --clients 24 --rounds 2

# make test's short ThreadSanitizer stage: only the library and the
# threaded tests that run in seconds under TSan -- the writer and
# asynchronous submission, the server and client (shared batches, request
# order, a hundred clients, shutdown mid-request), PubSub, the background
# page verification (close mid-walk, map growth) -- then a 6 s
# soak of 24 connections (server, client, writer, PubSub together).
# `make tsan` adds test_concurrency (~8 min under TSan), test_kv and QUIC.
TSAN_SHORT ?= test_cmd_submit test_server test_server_order \
              test_server_batches test_pubsub test_bgverify
test-tsan: deps
	@echo "== ThreadSanitizer stage (short): $(TSAN_SHORT), soak"
	@cmake -S . -B $(TSAN_BUILD) -DSPRIG_TSAN=ON -DSPRIG_WERROR=ON \
	    -DCMAKE_BUILD_TYPE=RelWithDebInfo -DSPRIG_BENCH=OFF \
	    $(CMAKE_ARGS) >/dev/null
	@cmake --build $(TSAN_BUILD) -j $(JOBS) --target $(TSAN_SHORT) sprig_soak
	@cd $(TSAN_BUILD) && \
	    TSAN_OPTIONS="halt_on_error=1 second_deadlock_stack=1 suppressions=$(CURDIR)/tests/tsan.supp" \
	    ctest --output-on-failure -j $(JOBS) \
	    -R '^($(shell echo $(TSAN_SHORT) | tr ' ' '|'))$$'
	@TSAN_OPTIONS="halt_on_error=1 suppressions=$(CURDIR)/tests/tsan.supp" \
	    SPRIG_TEST_TMP=$(TSAN_BUILD)/test-tmp \
	    $(TSAN_BUILD)/tests/sprig-soak --seconds 6 --clients 24 --rounds 2

# valgrind memcheck (issue 17 item 7) over the unit tests of the normal
# build -- those that neither open sockets nor depend on timing -- each
# with --error-exitcode (scripts/valgrind.sh; suppressions in
# tests/valgrind.supp, each with its reason).  make test runs two
# (ctest valgrind_short).
valgrind: build
	@sh scripts/valgrind.sh $(CURDIR)/$(BUILD)

# The long fuzz run: each libFuzzer harness (clang, ASan + UBSan) for
# FUZZ_SECONDS, seeded from fuzz/corpus/<name>/ (make test replays those).
# New inputs go to $(FUZZ_BUILD)/corpus-<name>/, crashes to $(FUZZ_BUILD)/:
# after the fix, copy a crash file into fuzz/corpus/<name>/.
FUZZ_BUILD   ?= build-fuzz
FUZZ_SECONDS ?= 300
FUZZERS      ?= http_upgrade frame request quic key schema_record bstate jview \
                cmd_record doc_record log_record kv_record view_record \
                admin_record meta_record vault manifest
fuzz:
	@sh scripts/deps.sh fuzz
	@CC=clang cmake -S . -B $(FUZZ_BUILD) -DSPRIG_FUZZ=ON -DSPRIG_SANITIZE=ON \
	    -DSPRIG_BENCH=OFF -DCMAKE_BUILD_TYPE=Debug $(CMAKE_ARGS) >/dev/null
	@cmake --build $(FUZZ_BUILD) -j $(JOBS) \
	    --target $(addprefix fuzz_,$(FUZZERS))
	@set -e; for f in $(FUZZERS); do \
	    echo "== fuzz_$$f: $(FUZZ_SECONDS) s"; \
	    mkdir -p $(FUZZ_BUILD)/corpus-$$f; \
	    $(FUZZ_BUILD)/fuzz/fuzz_$$f -max_total_time=$(FUZZ_SECONDS) \
	        -print_final_stats=1 -artifact_prefix=$(FUZZ_BUILD)/ \
	        $(FUZZ_BUILD)/corpus-$$f fuzz/corpus/$$f; \
	done

format:
	@sh scripts/deps.sh format
	@clang-format -i $$(git ls-files '*.c' '*.h')

format-check:
	@sh scripts/deps.sh format-check
	@clang-format --dry-run --Werror $$(git ls-files '*.c' '*.h')

# Install the library, its header, sprig.pc and the tools under PREFIX
# (make install PREFIX=$$HOME/.local; default /usr/local).  sprig.pc finds
# its prefix from where it lies, so it is right under any PREFIX.
install: build
	@cmake --install $(BUILD) --prefix $(PREFIX)

clean:
	rm -rf $(BUILD) $(ASAN_BUILD) $(FUZZ_BUILD) $(TSAN_BUILD)
