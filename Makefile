# cardca: build, test, demo, benchmark and install.
#
#   make           release build of every tool
#   make check     installs what the tests need when missing, then fmt,
#                  clippy, every unit and golden-file test, mandoc -Tlint,
#                  and check-tokens
#   make check-tokens
#                  the seed flow on every PKCS#11 module we support
#                  (SoftHSM2, kryoptic, NSS softokn, p11-kit remoting, TPM 2.0
#                  on swtpm, openCryptoki), with a step x token table; then
#                  KRYOPTIC_RUNS (default 1000) card-sign --jobs 2 runs on
#                  kryoptic. Installs the modules when missing and builds
#                  kryoptic once into target/kryoptic. CHECK_TOKENS="a b"
#                  runs only those
#   make demo      the seed article's CA on a local SoftHSM2 token in ./demo,
#                  run from issuing directories (examples/ca) as an operator would
#   make bench     cardca against openssl ca + engine_pkcs11 on one token
#   make fuzz      every parser under cargo-fuzz on stable (-s none) for
#                  FUZZ_S seconds each (default 60), two at a time; installs
#                  cargo-fuzz when missing. `make check` replays the
#                  committed corpus (fuzz/corpus, fuzz/artifacts) instead
#   make install   binaries and man pages under $(DESTDIR)$(PREFIX), and the
#                  issuing directory (examples/ca) in share/cardca/ca

PREFIX ?= /usr/local
DESTDIR ?=
CARGO ?= cargo
VENV ?= $(CURDIR)/.venv
FUZZ_S ?= 60
KRYOPTIC_RUNS ?= 1000
export CARDCA_VENV := $(VENV)
# The fault-injecting PKCS#11 module the golden tests load (tests/faulty-module).
export CARDCA_FAULTY_MODULE := $(CURDIR)/target/debug/libcardca_faulty_module.so

TOOLS := card-ls card-init card-keygen csr-make tbs-build card-sign cert-store
PAGES1 := $(TOOLS:%=man/%.1)
PAGES7 := $(wildcard man/*.7)

.PHONY: all build deps check check-tokens lint test demo bench fuzz install clean

all: build

build:
	$(CARGO) build --release --locked

deps:
	./scripts/install-deps.sh --with-pkilint

# The `fuzz` feature of cardca (its fuzz target bodies, for fuzz/ and the
# corpus replay test) is off in the tools: lint and test with it on, so
# that shared/src/fuzz.rs and shared/tests/fuzz_corpus.rs are covered too.
CARDCA_FEATURES := --features cardca/fuzz

lint:
	$(CARGO) fmt --all -- --check
	$(CARGO) clippy --workspace --all-targets --locked -- -D warnings
	$(CARGO) clippy --workspace --all-targets --locked $(CARDCA_FEATURES) -- -D warnings
	mandoc -Tlint -W warning $(PAGES1) $(PAGES7)

test:
	$(CARGO) build --locked -p cardca-faulty-module
	$(CARGO) test --workspace --locked $(CARDCA_FEATURES)

check: deps lint test check-tokens

# The debug tools `make test` builds (a no-op after it).
check-tokens:
	./scripts/install-deps.sh --with-tokens
	$(CARGO) build --locked --bins
	KRYOPTIC_RUNS=$(KRYOPTIC_RUNS) ./scripts/check-tokens.sh

demo: build
	./scripts/install-deps.sh
	./scripts/demo.sh

bench: build
	$(CARGO) build --release --locked --example raw_sign
	./scripts/install-deps.sh
	./scripts/bench.sh

fuzz:
	FUZZ_S=$(FUZZ_S) ./scripts/fuzz.sh

install: build
	for t in $(TOOLS); do install -Dm755 target/release/$$t $(DESTDIR)$(PREFIX)/bin/$$t; done
	for p in $(PAGES1); do install -Dm644 $$p $(DESTDIR)$(PREFIX)/share/man/man1/$$(basename $$p); done
	for p in $(PAGES7); do install -Dm644 $$p $(DESTDIR)$(PREFIX)/share/man/man7/$$(basename $$p); done
	# The issuing directory: copy it once per CA (cardca(7)).
	install -Dm644 examples/ca/Makefile $(DESTDIR)$(PREFIX)/share/cardca/ca/Makefile
	install -Dm644 examples/ca/ca.conf $(DESTDIR)$(PREFIX)/share/cardca/ca/ca.conf
	install -Dm755 examples/ca/ca.sh $(DESTDIR)$(PREFIX)/share/cardca/ca/ca.sh
	install -Dm755 examples/ca/certmonger-helper $(DESTDIR)$(PREFIX)/share/cardca/ca/certmonger-helper

clean:
	$(CARGO) clean
	rm -rf fuzz/target fuzz/work
	rm -rf demo bench-work
