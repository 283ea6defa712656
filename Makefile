# trustgate - the two commands that matter: `make demo` and `make check`.
# Everything is built by CMake in build/ (release) and build-asan/ (sanitizers).
#
# `make` and `make demo` configure build/ with TG_TESTS=OFF, so they need only
# the packages `scripts/install-deps.sh build` installs; `make check` configures
# the same folder with TG_TESTS=ON (cmocka, Node.js, chromium).  Each target
# states the option, so switching between them only reconfigures.

BUILD      ?= build
ASAN_BUILD ?= build-asan
JOBS       ?= $(shell nproc 2>/dev/null || echo 2)
CONFIG     ?= examples/insurance/trustgate.yaml
# LISTEN=HOST:PORT serves the demo elsewhere than the config's 127.0.0.1:8080.
LISTEN     ?=
DEMO_URL   := http://$(if $(LISTEN),$(LISTEN),127.0.0.1:8080)

.PHONY: all trustgate deps demo demo-cluster check check-release check-asan node-deps bench clean

all: trustgate

# $(call configure,DIR,CMAKE OPTIONS): configure DIR for this checkout.  A
# build folder copied or moved here with its checkout still names the old
# source or build path in its CMakeCache.txt, which CMake refuses; such a
# folder is removed and configured afresh.
define configure
	@cache="$(1)/CMakeCache.txt"; \
	if [ -f "$$cache" ]; then \
	  home=$$(sed -n 's/^CMAKE_HOME_DIRECTORY:INTERNAL=//p' "$$cache"); \
	  bdir=$$(sed -n 's/^CMAKE_CACHEFILE_DIR:INTERNAL=//p' "$$cache"); \
	  if ! [ "$$home" -ef . ] || ! [ "$$bdir" -ef "$(1)" ]; then \
	    echo "$(1)/ was configured for $$home; recreating it for $(CURDIR)"; \
	    rm -rf -- "$(1)"; \
	  fi; \
	fi
	@cmake -S . -B $(1) $(2) >/dev/null
endef

trustgate:
	$(call configure,$(BUILD),-DCMAKE_BUILD_TYPE=Release -DTG_TESTS=OFF)
	@cmake --build $(BUILD) -j $(JOBS) --target trustgate

deps:
	@scripts/install-deps.sh build

# The demo's workflow asks a policy system: the test suite's support server
# (tests/support/fake_upstream.md, its policy-lookup tool) stands in for one.
DEMO_TOOLS_PORT := 8099

demo: deps trustgate
	@cmake --build $(BUILD) -j $(JOBS) --target fake-upstream
	@echo "trustgate demo"
	@echo "  chat page  $(DEMO_URL)/          play the customer (try 我想投资60万买理财保险，推荐哪个产品？)"
	@echo "  console    $(DEMO_URL)/console/  log in as reviewer1, agent1 or super1, password 'demo'"
	@echo "  API key 'tg-demo-key'  (try: curl -s $(DEMO_URL)/v1/chat/completions \\"
	@echo "    -H 'Authorization: Bearer tg-demo-key' -H 'Content-Type: application/json' \\"
	@echo "    -d '{\"messages\":[{\"role\":\"user\",\"content\":\"意外险理赔需要哪些材料？\"}]}')"
	@echo "  review API tokens: reviewer1 'tg-demo-reviewer', agent1 'tg-demo-agent', super1 'tg-demo-super'"
	@echo "    (GET /v1/reviews, POST /v1/reviews/ID/claim, POST /v1/reviews/ID/decision, GET /v1/handoffs)"
	@echo "  workflow   a policy system on 127.0.0.1:$(DEMO_TOOLS_PORT) for the coverage check"
	@echo "    (try 我的保单P2024000001，去滑雪受伤了能赔吗？ — or P2024000002, P2024000003)"
	@$(BUILD)/fake-upstream --listen 127.0.0.1:$(DEMO_TOOLS_PORT) >/dev/null 2>&1 & tools=$$!; \
	  trap 'kill $$tools 2>/dev/null' EXIT INT TERM; \
	  $(BUILD)/trustgate serve -c $(CONFIG) $(if $(LISTEN),--listen $(LISTEN))

# The demo on three nodes sharing one PostgreSQL store, behind nginx on
# $(DEMO_URL); scripts/demo-cluster.sh installs, builds and starts it all.
demo-cluster:
	@BUILD=$(BUILD) CONFIG=$(CONFIG) LISTEN=$(LISTEN) scripts/demo-cluster.sh

# The test packages are installed exactly as package-lock.json says, again
# whenever the lock file is newer than the last install.
node-deps:
	@if [ ! -f node_modules/.package-lock.json ] || \
	    [ package-lock.json -nt node_modules/.package-lock.json ]; then \
	  npm ci --no-audit --no-fund --loglevel=error; fi

check:
	@scripts/install-deps.sh check
	@$(MAKE) --no-print-directory node-deps
	@$(MAKE) --no-print-directory check-release
	@$(MAKE) --no-print-directory check-asan

check-release:
	$(call configure,$(BUILD),-DCMAKE_BUILD_TYPE=Release -DTG_TESTS=ON)
	@cmake --build $(BUILD) -j $(JOBS)
	@cd $(BUILD) && ctest --output-on-failure --no-tests=error -j $(JOBS)

check-asan:
	$(call configure,$(ASAN_BUILD),-DCMAKE_BUILD_TYPE=Debug -DTG_SANITIZE=ON -DTG_TESTS=ON)
	@cmake --build $(ASAN_BUILD) -j $(JOBS)
	@cd $(ASAN_BUILD) && ASAN_OPTIONS=detect_leaks=1:abort_on_error=1 \
	  UBSAN_OPTIONS=print_stacktrace=1:halt_on_error=1 ctest --output-on-failure --no-tests=error -j $(JOBS)

bench:
	@scripts/install-deps.sh bench
	@bench/run.sh

clean:
	rm -rf $(BUILD) $(ASAN_BUILD)
