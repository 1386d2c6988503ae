# lathe - RL post-training workbench.
#   make            build build/lathe and every built-in plugin
#   make demo       build, then run the default recipe (installs Debian deps as root)
#   make test       build and run every suite (unit, e2e, ui); one closing line
#   make asan       the same tests under AddressSanitizer + UBSan (build/asan/)
#   make tsan       the thread rules under ThreadSanitizer (build/tsan/, tests/tsan.sh)
#   make valgrind   one recipe under valgrind's leak checker
#   make fuzz       libFuzzer targets (clang, ASan + UBSan) for FUZZ_SECONDS each (tests/fuzz/)
#   make bench      side-by-side benchmarks against PyTorch (bench/README.md)
#   make install PREFIX=/usr/local DESTDIR=
#   make format     clang-format every source file

PREFIX ?= /usr/local
B ?= build
CC ?= cc
PKGS = lua5.4 libuv lmdb ncursesw json-c openblas zlib

# Warnings are errors. -Wshadow and -Wstrict-prototypes catch the mistakes
# that have bitten C codebases most; -Wno-unused-parameter because plugin
# callbacks take parameters they may not need.
WARN = -Wall -Wextra -Werror -Wshadow -Wstrict-prototypes -Wno-unused-parameter -Wno-missing-field-initializers
OPT ?= -O2 -g
SAN ?=
CFLAGS_ALL = -std=gnu11 -ffp-contract=off $(OPT) $(SAN) $(WARN) -fPIC -pthread $(CFLAGS) \
	$(shell pkg-config --cflags $(PKGS) 2>/dev/null)
LIBS = $(shell pkg-config --libs $(PKGS) 2>/dev/null) -lm -ldl -pthread

NN_SRC = $(wildcard workbench/nn/*.c)
CORE_SRC = $(filter-out workbench/main.c,$(wildcard workbench/*.c)) \
	$(wildcard lua/*.c) $(wildcard storage/*.c) $(wildcard ui/*.c)
PLUGINS = $(notdir $(patsubst %/,%,$(wildcard plugins/*/)))
TEST_SRC = $(wildcard tests/*.c)

NN_OBJ = $(NN_SRC:%.c=$(B)/obj/%.o)
CORE_OBJ = $(CORE_SRC:%.c=$(B)/obj/%.o)
TEST_OBJ = $(TEST_SRC:%.c=$(B)/obj/%.o)
PLUGIN_SO = $(PLUGINS:%=$(B)/plugins/%.so)

# The nn core is one shared library, liblathe-nn.so, that the host, every
# plugin and the tools link: one copy per process (its thread pool, its ABI
# check at plugin load; nn.h NN_ABI). Binaries in $(B) find it beside them,
# plugins one folder up; installed, in PREFIX/lib/lathe.
NN_SO = $(B)/liblathe-nn.so
NN_LINK = -L$(B) -llathe-nn
RPATH_BIN = -Wl,-rpath,'$$ORIGIN' -Wl,-rpath,'$$ORIGIN/../lib/lathe'

# Open MPI is optional: liblathe-mpi.so (workbench/mpi/transport.c, the only
# code that calls MPI) is built with mpicc when it is installed, beside the
# binary; `lathe run --mpi` loads it (workbench/cluster.h). `make test`
# installs Open MPI and builds it.
MPICC ?= $(shell command -v mpicc 2>/dev/null)
MPI_SO = $(if $(MPICC),$(B)/liblathe-mpi.so)

all: $(B)/.deps $(B)/lathe $(NN_SO) $(PLUGIN_SO) $(MPI_SO)

$(B)/liblathe-mpi.so: workbench/mpi/transport.c workbench/cluster.h $(B)/.deps
	@echo "  MPI     $@"
	@OMPI_CC=$(CC) $(MPICC) $(CFLAGS_ALL) -shared -o $@ $<

mpi: $(B)/liblathe-mpi.so

$(B)/.deps: scripts/deps.sh
	@mkdir -p $(B)
	@sh scripts/deps.sh
	@touch $@

# The nn core's elementwise loops (activations, AdamW, LayerNorm) must vectorise:
# -O3 with errno-free sqrt and non-trapping compares (neither changes a result).
# Contraction into FMA stays off everywhere.
$(B)/obj/workbench/nn/%.o: OPT += -O3 -fno-math-errno -fno-trapping-math

$(B)/obj/%.o: %.c $(B)/.deps
	@mkdir -p $(dir $@)
	@echo "  CC      $<"
	@$(CC) $(CFLAGS_ALL) -MMD -MP -c $< -o $@

$(NN_SO): $(NN_OBJ)
	@echo "  LIB     $@"
	@$(CC) $(SAN) -shared -Wl,-soname,liblathe-nn.so -o $@ $^ $(shell pkg-config --libs openblas) -lm

$(B)/lathe: $(B)/obj/workbench/main.o $(CORE_OBJ) $(NN_SO)
	@echo "  LINK    $@"
	@$(CC) $(SAN) -o $@ $(filter %.o,$^) $(NN_LINK) $(RPATH_BIN) $(LIBS)

# A plugin is its folder's sources, linked into one .so against liblathe-nn.so.
define plugin_rule
$(B)/plugins/$(1).so: $(patsubst %.c,$(B)/obj/%.o,$(wildcard plugins/$(1)/*.c)) $(NN_SO)
	@mkdir -p $$(dir $$@)
	@echo "  PLUGIN  $$@"
	@$$(CC) $$(SAN) -shared -o $$@ $$(filter %.o,$$^) $$(NN_LINK) -Wl,-rpath,'$$$$ORIGIN/..' \
		$$(shell pkg-config --libs openblas json-c) -lm
endef
$(foreach p,$(PLUGINS),$(eval $(call plugin_rule,$(p))))

# The question games' built-in attribute tables (share/data/games/derived/*.tsv,
# written by scripts/game_tables.py) compiled into games.so as C strings.
GAME_TABLES = share/data/games/derived/twenty_questions_attributes.tsv \
	share/data/games/derived/guess_my_city_attributes.tsv
$(B)/gen/game_tables.h: $(GAME_TABLES)
	@mkdir -p $(dir $@)
	@echo "  GEN     $@"
	@for v in objects:$(word 1,$^) cities:$(word 2,$^); do \
		printf 'static const char tb_%s_tsv[] =\n' $${v%%:*}; \
		sed 's/\\/\\\\/g; s/"/\\"/g; s/\t/\\t/g; s/^/"/; s/$$/\\n"/' $${v#*:}; \
		printf ';\n'; \
	done >$@.tmp && mv $@.tmp $@
$(B)/obj/plugins/games/table.o $(B)/obj/tests/test_games.o $(B)/fuzz-table: $(B)/gen/game_tables.h
$(B)/obj/plugins/games/table.o $(B)/obj/tests/test_games.o $(B)/fuzz-table: CFLAGS += -I$(B)/gen

# Test tools: damage a checkpoint (tests/tools/tamper.c) for the corrupted-checkpoint tests.
$(B)/lathe-tamper: $(B)/obj/tests/tools/tamper.o $(CORE_OBJ) $(NN_SO)
	@echo "  LINK    $@"
	@$(CC) $(SAN) -o $@ $(filter %.o,$^) $(NN_LINK) $(RPATH_BIN) $(LIBS)

$(B)/test-unit: $(TEST_OBJ) $(CORE_OBJ) $(NN_SO)
	@echo "  LINK    $@"
	@$(CC) $(SAN) -o $@ $(filter %.o,$^) $(NN_LINK) $(RPATH_BIN) $(LIBS)

# The terminal tests drive the dashboard in tmux and render figures with rsvg-convert.
test: all $(B)/test-unit $(B)/lathe-tamper
	@LATHE_DEPS_EXTRA="tmux librsvg2-bin openmpi-bin libopenmpi-dev" sh scripts/deps.sh
	@$(MAKE) --no-print-directory B=$(B) CC=$(CC) OPT="$(OPT)" SAN="$(SAN)" mpi
	B=$(B) bash tests/all.sh

# The demo works in $(B)/demo/: its store and figures land there, not in the tree.
demo: all
	@mkdir -p $(B)/demo
	cd $(B)/demo && $(CURDIR)/$(B)/lathe run $(CURDIR)/share/recipes/hlgauss_cartpole.lua \
		--store lathe.lmdb --set seeds=2 --set steps=50000
	@echo "demo: store and figures in $(B)/demo/; look with: cd $(B)/demo && ../lathe runs"

asan:
	$(MAKE) B=build/asan OPT="-O1 -g" SAN="-fsanitize=address,undefined -fno-omit-frame-pointer -fno-sanitize-recover=undefined" test

# Workers stepping runs while the loop reads them, under ThreadSanitizer.
tsan:
	$(MAKE) B=build/tsan OPT="-O1 -g" SAN="-fsanitize=thread" all
	B=build/tsan bash tests/tsan.sh

# One recipe under valgrind: no leaks, no invalid accesses.
valgrind: all
	@LATHE_DEPS_EXTRA=valgrind sh scripts/deps.sh
	cd $$(mktemp -d) && LATHE_PLUGIN_DIR=$(CURDIR)/$(B)/plugins valgrind -q --leak-check=full \
		--errors-for-leak-kinds=definite,indirect --error-exitcode=9 $(CURDIR)/$(B)/lathe run \
		$(CURDIR)/share/recipes/hlgauss_cartpole.lua --set seeds=1 --set steps=1500 --headless >/dev/null

# Fuzzing: the core and plugins built again with clang under ASan + UBSan and
# libFuzzer's coverage (build/fuzz/), one binary per target in tests/fuzz/,
# each run for FUZZ_SECONDS from the committed corpus (tests/fuzz/run.sh).
# FUZZ_RUNS=N runs N inputs per target from seed 1 instead: the same inputs on
# every machine, so CI's verdict does not depend on its speed or on luck.
FUZZ_SECONDS ?= 30
FUZZ_RUNS ?=
FUZZ_TARGETS = $(patsubst tests/fuzz/fuzz_%.c,%,$(wildcard tests/fuzz/fuzz_*.c))
FUZZ_SAN = -fsanitize=address,undefined -fno-sanitize-recover=undefined -fno-omit-frame-pointer
fuzz:
	@LATHE_DEPS_EXTRA="clang libclang-rt-dev" sh scripts/deps.sh
	$(MAKE) B=build/fuzz CC=clang OPT="-O1 -g" SAN="$(FUZZ_SAN) -fsanitize=fuzzer-no-link" fuzz-build
	FUZZ_RUNS=$(FUZZ_RUNS) bash tests/fuzz/run.sh build/fuzz $(FUZZ_SECONDS) $(FUZZ_TARGETS)

fuzz-build: all $(FUZZ_TARGETS:%=$(B)/fuzz-%)

$(B)/fuzz-%: tests/fuzz/fuzz_%.c $(CORE_OBJ) $(NN_SO)
	@echo "  FUZZ    $@"
	@$(CC) $(CFLAGS_ALL) $(FUZZ_SAN) -fsanitize=fuzzer -o $@ $(filter-out %.so %.h,$^) $(NN_LINK) \
		$(RPATH_BIN) $(LIBS)

bench: all $(B)/bench
	bash bench/run.sh

install: all
	install -d $(DESTDIR)$(PREFIX)/bin $(DESTDIR)$(PREFIX)/lib/lathe/plugins \
		$(DESTDIR)$(PREFIX)/include/lathe/nn $(DESTDIR)$(PREFIX)/share/lathe/recipes \
		$(DESTDIR)$(PREFIX)/share/lathe/examples $(DESTDIR)$(PREFIX)/share/man/man1
	install -m 755 $(B)/lathe $(DESTDIR)$(PREFIX)/bin/lathe
	install -m 644 $(PLUGIN_SO) $(DESTDIR)$(PREFIX)/lib/lathe/plugins/
	install -m 755 $(NN_SO) $(MPI_SO) $(DESTDIR)$(PREFIX)/lib/lathe/
	install -m 644 workbench/lathe.h workbench/mathtext.h $(DESTDIR)$(PREFIX)/include/lathe/
	install -m 644 workbench/nn/nn.h workbench/nn/lm.h workbench/nn/rm.h workbench/nn/tok.h \
		$(DESTDIR)$(PREFIX)/include/lathe/nn/
	install -m 644 share/plugins.lua share/prelude.lua $(DESTDIR)$(PREFIX)/share/lathe/
	install -m 644 share/recipes/*.lua $(DESTDIR)$(PREFIX)/share/lathe/recipes/
	install -m 644 share/examples/* $(DESTDIR)$(PREFIX)/share/lathe/examples/
	install -m 644 share/man/lathe.1 $(DESTDIR)$(PREFIX)/share/man/man1/
	cp -R share/data $(DESTDIR)$(PREFIX)/share/lathe/

format:
	clang-format -i $$(git ls-files '*.c' '*.h')

clean:
	rm -rf build

.PHONY: all test demo asan tsan valgrind bench install format clean fuzz fuzz-build mpi
-include $(shell find $(B)/obj -name '*.d' 2>/dev/null)

$(B)/bench: bench/bench.c $(NN_SO)
	@echo "  LINK    $@"
	@$(CC) $(CFLAGS_ALL) -o $@ $< $(NN_LINK) $(RPATH_BIN) $(LIBS)

# The bench as one static binary (OpenBLAS linked in), for a larger machine
# without lathe's packages: BENCH=$(B)/bench-static bash bench/scaling.sh there.
$(B)/bench-static: bench/bench.c $(NN_SRC) $(B)/.deps
	@echo "  LINK    $@ (static)"
	@$(CC) -std=gnu11 -ffp-contract=off -O3 -fno-math-errno -fno-trapping-math -pthread $(WARN) \
		$(shell pkg-config --cflags openblas) -static -s -o $@ bench/bench.c $(NN_SRC) \
		$(shell pkg-config --variable=libdir openblas)/libopenblas.a -lm -lpthread
