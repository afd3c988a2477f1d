# Thin wrapper over CMake (as Neovim does): `make run` and `make test` are all a newcomer needs.
BUILD ?= build
BUILD_TYPE ?= RelWithDebInfo
CMAKE_FLAGS ?=
JOBS ?= $(shell nproc 2>/dev/null || echo 2)

.PHONY: all deps build run test clean

all: build

deps:
	@sh tools/deps.sh

build: deps
	@cmake -S . -B $(BUILD) -DCMAKE_BUILD_TYPE=$(BUILD_TYPE) $(CMAKE_FLAGS) >/dev/null
	@cmake --build $(BUILD) -j $(JOBS)

run: build
	@echo "spillway: send NDJSON to 127.0.0.1:5170 (tcp) or run/spillway.sock, syslog to udp 127.0.0.1:5514;"
	@echo "spillway: events land in data/out/events.ndjson. Ctrl-C stops (drains first)."
	@exec $(BUILD)/spillway run

test: build
	@cd $(BUILD) && ctest --output-on-failure -j $(JOBS)

clean:
	rm -rf $(BUILD)
