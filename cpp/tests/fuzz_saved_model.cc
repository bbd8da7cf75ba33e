// libFuzzer target for smrt's SavedModel reader (wire_reader.h, saved_model_reader.cc,
// graph_def_reader.cc, graph_ops.cc, object_graph_reader.cc), with ops (the saved_model_cli
// count and the reachable set) and functions: any bytes must parse or throw a DataLoss (or, for
// a functions listing past its budget, ResourceExhausted) StatusError — never crash, hang, read
// out of bounds, use memory or time beyond linear in the input, or throw anything else. Run it
// with -rss_limit_mb and -timeout (see .ci/run). Seeds: cpp/tests/fuzz_corpus/.
//   clang++ -fsanitize=fuzzer,address,undefined ... (see CMakeLists.txt, SMRT_BUILD_FUZZERS)
#include <smrt/saved_model_info.h>

#include <cstddef>
#include <cstdint>
#include <string_view>

#include "smrt/errors.h"

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  try {
    smrt::parse_saved_model(std::string_view(reinterpret_cast<const char*>(data), size), "fuzz input",
                            /*with_ops=*/true, /*with_functions=*/true, /*with_tree=*/true);
  } catch (const smrt::StatusError& e) {
    if (e.code() != smrt::ErrorCode::kDataLoss && e.code() != smrt::ErrorCode::kResourceExhausted) __builtin_trap();
  }
  return 0;
}
