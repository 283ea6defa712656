/*
 * fuzz.h - the libFuzzer entry point every target defines.  Built with
 * clang -fsanitize=fuzzer by scripts/fuzz.sh for real fuzzing, and with
 * replay.c by CMake so `make check` replays each target's corpus.
 */
#ifndef TG_FUZZ_H
#define TG_FUZZ_H

#include <stddef.h>
#include <stdint.h>

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

#endif
