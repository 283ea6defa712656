# trustgate - the two commands that matter: `make demo` and `make check`.
# Everything is built by CMake in build/ (release) and build-asan/ (sanitizers).

BUILD      ?= build
ASAN_BUILD ?= build-asan
JOBS       ?= $(shell nproc 2>/dev/null || echo 2)
CONFIG     ?= examples/insurance/trustgate.yaml

.PHONY: all trustgate deps demo check check-release check-asan node-deps bench clean

all: trustgate

trustgate:
	@cmake -S . -B $(BUILD) -DCMAKE_BUILD_TYPE=Release >/dev/null
	@cmake --build $(BUILD) -j $(JOBS) --target trustgate

deps:
	@scripts/install-deps.sh build

demo: deps trustgate
	@echo "trustgate demo"
	@echo "  chat page  http://127.0.0.1:8080/          play the customer (try 我想投资60万买理财保险，推荐哪个产品？)"
	@echo "  console    http://127.0.0.1:8080/console/  log in as reviewer1, agent1 or super1, password 'demo'"
	@echo "  API key 'tg-demo-key'  (try: curl -s http://127.0.0.1:8080/v1/chat/completions \\"
	@echo "    -H 'Authorization: Bearer tg-demo-key' -H 'Content-Type: application/json' \\"
	@echo "    -d '{\"messages\":[{\"role\":\"user\",\"content\":\"意外险理赔需要哪些材料？\"}]}')"
	@echo "  review API tokens: reviewer1 'tg-demo-reviewer', agent1 'tg-demo-agent', super1 'tg-demo-super'"
	@echo "    (GET /v1/reviews, POST /v1/reviews/ID/claim, POST /v1/reviews/ID/decision, GET /v1/handoffs)"
	@$(BUILD)/trustgate serve -c $(CONFIG)

node-deps:
	@if [ ! -d node_modules/openai ] || [ ! -d node_modules/playwright-core ]; then \
	  npm ci --no-audit --no-fund --loglevel=error; fi

check: 
	@scripts/install-deps.sh check
	@$(MAKE) --no-print-directory node-deps
	@$(MAKE) --no-print-directory check-release
	@$(MAKE) --no-print-directory check-asan

check-release:
	@cmake -S . -B $(BUILD) -DCMAKE_BUILD_TYPE=Release -DTG_TESTS=ON >/dev/null
	@cmake --build $(BUILD) -j $(JOBS)
	@cd $(BUILD) && ctest --output-on-failure --no-tests=error -j $(JOBS)

check-asan:
	@cmake -S . -B $(ASAN_BUILD) -DCMAKE_BUILD_TYPE=Debug -DTG_SANITIZE=ON -DTG_TESTS=ON >/dev/null
	@cmake --build $(ASAN_BUILD) -j $(JOBS)
	@cd $(ASAN_BUILD) && ASAN_OPTIONS=detect_leaks=1:abort_on_error=1 \
	  UBSAN_OPTIONS=print_stacktrace=1:halt_on_error=1 ctest --output-on-failure --no-tests=error -j $(JOBS)

bench:
	@scripts/install-deps.sh bench
	@bench/run.sh

clean:
	rm -rf $(BUILD) $(ASAN_BUILD)
