# Thin wrapper over CMake (as Neovim does): `make run` and `make test` are all a newcomer needs.
BUILD ?= build
BUILD_TYPE ?= RelWithDebInfo
CMAKE_FLAGS ?=
JOBS ?= $(shell nproc 2>/dev/null || echo 2)

.PHONY: all deps build run test test-docker test-sanitize bench fuzz clean

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

# The Dockerfile and docker-compose.yml for real (tests/docker/run.sh): starts a Docker engine
# without a bridge network when none runs, makes the Debian base images with debootstrap, builds
# the image, runs it and the compose file on the host network. Skips, saying why, without one.
test-docker:
	@bash tests/docker/run.sh

# The whole suite again under ASan+UBSan (ASAN_BUILD), then the threaded tests under TSan
# (TSAN_BUILD, ctest label tsan); sanitizer options and skips are in tests/CMakeLists.txt, the
# how and why in docs/testing.md. TSan runs with ASLR off (setarch -R) where it can be turned
# off: TSan runtimes before LLVM 18 abort on kernels with vm.mmap_rnd_bits above 28.
ASAN_BUILD ?= build-asan
TSAN_BUILD ?= build-tsan
NO_ASLR := $(shell setarch -R true 2>/dev/null && echo setarch -R)

test-sanitize: deps
	@cmake -S . -B $(ASAN_BUILD) -DCMAKE_BUILD_TYPE=RelWithDebInfo \
		-DSPILLWAY_SANITIZE=address,undefined $(CMAKE_FLAGS) >/dev/null
	@cmake --build $(ASAN_BUILD) -j $(JOBS)
	@cd $(ASAN_BUILD) && ctest --output-on-failure -j $(JOBS)
	@cmake -S . -B $(TSAN_BUILD) -DCMAKE_BUILD_TYPE=RelWithDebInfo \
		-DSPILLWAY_SANITIZE=thread $(CMAKE_FLAGS) >/dev/null
	@cmake --build $(TSAN_BUILD) -j $(JOBS)
	@cd $(TSAN_BUILD) && $(NO_ASLR) ctest --output-on-failure -j $(JOBS) -L tsan

bench: deps
	@sh bench/run.sh

# libFuzzer over every parser and decoder (tests/fuzz/README.md): a clang build with ASan and
# UBSan in FUZZ_BUILD, then each target for FUZZ_SECONDS seeded from its committed corpus;
# findings go to FUZZ_BUILD/findings. Fails when any target crashes. Warnings are gcc's to
# enforce (the normal build): clang's extra ones do not stop the fuzzers.
FUZZ_BUILD ?= build-fuzz
FUZZ_SECONDS ?= 60

fuzz:
	@sh tools/deps.sh fuzz
	@CC=clang cmake -S . -B $(FUZZ_BUILD) -DCMAKE_BUILD_TYPE=RelWithDebInfo -DSPILLWAY_FUZZ=ON \
		-DSPILLWAY_TESTS=OFF -DSPILLWAY_WERROR=OFF -DSPILLWAY_SANITIZE=address,undefined >/dev/null
	@cmake --build $(FUZZ_BUILD) -j $(JOBS) --target fuzzers
	@FUZZ_SECONDS=$(FUZZ_SECONDS) sh tests/fuzz/run.sh $(FUZZ_BUILD)

clean:
	rm -rf $(BUILD)
