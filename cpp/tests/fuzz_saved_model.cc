// libFuzzer target for smrt's SavedModel reader (wire_reader.h, saved_model_reader.cc,
// object_graph_reader.cc): any bytes must parse or throw a DataLoss StatusError — never crash,
// hang, read out of bounds or throw anything else. Seeds: cpp/tests/fuzz_corpus/.
//   clang++ -fsanitize=fuzzer,address,undefined ... (see CMakeLists.txt, SMRT_BUILD_FUZZERS)
#include <smrt/saved_model_info.h>

#include <cstddef>
#include <cstdint>
#include <string_view>

#include "smrt/errors.h"

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  try {
    smrt::parse_saved_model(std::string_view(reinterpret_cast<const char*>(data), size), "fuzz input",
                            /*with_ops=*/true, /*with_functions=*/true);
  } catch (const smrt::StatusError& e) {
    if (e.code() != smrt::ErrorCode::kDataLoss) __builtin_trap();
  }
  return 0;
}
