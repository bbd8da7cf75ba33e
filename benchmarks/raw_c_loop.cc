// The floor for per-call latency: TF_SessionRun in a C++ loop, with no Python and no smrt.
//
// Build (no TensorFlow headers, no smrt library; libtensorflow is dlopen'ed at run time):
//   g++ -O2 -std=c++17 -I cpp/src benchmarks/raw_c_loop.cc -ldl -o raw_c_loop
// Run:
//   raw_c_loop LIBTENSORFLOW SAVED_MODEL_DIR INPUT_TENSOR OUTPUT_TENSOR SHAPE ITERATIONS|- WARMUP
//              [CONFIG_HEX]
//   e.g. raw_c_loop .../libtensorflow_cc.so.2 models/tiny_add serving_default_x:0
//        PartitionedCall:0 1,4 10000 1000
//
// Loads the SavedModel (tag "serve"; session options: default, or the serialized ConfigProto
// given in hex as CONFIG_HEX, passed to TF_SetConfig), feeds one float32 tensor of
// SHAPE filled with 1.0 (allocated once with TF_AllocateTensor), and times each of ITERATIONS
// calls after WARMUP untimed ones. A timed call is TF_SessionRun plus TF_DeleteTensor of its
// output. Prints one JSON line: {"iterations", "p50_us", "p99_us", "mean_us", "min_us"}.
//
// With ITERATIONS "-" it serves blocks instead (how run_core.py interleaves contenders): after
// loading and WARMUP calls it prints {"ready": true}, then for each line "N W" read from stdin
// runs W untimed and N timed calls and prints their JSON line, until end of input.
#include <dlfcn.h>

#include <algorithm>
#include <chrono>
#include <cmath>
#include <cstdio>
#include <cstdlib>
#include <numeric>
#include <stdexcept>
#include <string>
#include <vector>

#include "tf_c_api.h"

namespace {

constexpr int kFloat32 = 1;  // TF_FLOAT

using smrt::tf::Api;

[[noreturn]] void fail(const std::string& message) {
  std::fprintf(stderr, "raw_c_loop: %s\n", message.c_str());
  std::exit(1);
}

Api load_api(const char* path) {
  setenv("TF_CPP_MIN_LOG_LEVEL", "2", /*overwrite=*/0);
  void* handle = dlopen(path, RTLD_NOW | RTLD_LOCAL);
  if (!handle) fail(std::string("dlopen: ") + dlerror());
  Api api;
#define RESOLVE(ret, name, args)                                  \
  api.name = reinterpret_cast<ret(*) args>(dlsym(handle, #name)); \
  if (!api.name) fail("missing symbol " #name);
  SMRT_TF_FUNCTIONS(RESOLVE)
#undef RESOLVE
  return api;
}

void check(const Api& api, TF_Status* status, const char* what) {
  if (api.TF_GetCode(status) != 0) fail(std::string(what) + ": " + api.TF_Message(status));
}

// "op:index" (index 0 if omitted) -> the graph's TF_Output.
TF_Output resolve(const Api& api, TF_Graph* graph, const std::string& name) {
  const auto colon = name.rfind(':');
  const std::string op = name.substr(0, colon);
  const int index = colon == std::string::npos ? 0 : std::stoi(name.substr(colon + 1));
  TF_Operation* oper = api.TF_GraphOperationByName(graph, op.c_str());
  if (!oper || index >= api.TF_OperationNumOutputs(oper)) fail("no tensor '" + name + "' in the graph");
  return {oper, index};
}

std::string parse_hex(const std::string& hex) {
  if (hex.size() % 2 != 0) fail("CONFIG_HEX must have an even number of digits");
  std::string bytes;
  for (std::size_t i = 0; i < hex.size(); i += 2) {
    bytes.push_back(static_cast<char>(std::stoi(hex.substr(i, 2), nullptr, 16)));
  }
  return bytes;
}

std::vector<int64_t> parse_shape(const std::string& text) {
  std::vector<int64_t> dims;
  std::size_t start = 0;
  while (start <= text.size()) {
    const std::size_t comma = std::min(text.find(',', start), text.size());
    if (comma > start) dims.push_back(std::stoll(text.substr(start, comma - start)));
    start = comma + 1;
  }
  return dims;
}

TF_Tensor* ones(const Api& api, const std::vector<int64_t>& dims) {
  int64_t n = 1;
  for (int64_t d : dims) n *= d;
  const auto nbytes = static_cast<std::size_t>(n) * sizeof(float);
  TF_Tensor* t = api.TF_AllocateTensor(kFloat32, dims.data(), static_cast<int>(dims.size()), nbytes);
  if (!t) fail("TF_AllocateTensor failed");
  std::fill_n(static_cast<float*>(api.TF_TensorData(t)), n, 1.0f);
  return t;
}

// Nearest-rank percentile of sorted samples (the same definition the Python side uses).
double percentile(const std::vector<double>& sorted, double q) {
  const auto rank = static_cast<std::size_t>(std::ceil(q * static_cast<double>(sorted.size())));
  return sorted[std::min(sorted.size() - 1, rank == 0 ? 0 : rank - 1)];
}

// Times `iterations` calls of `run_once`; prints their summary as one JSON line.
template <class Fn>
void time_block(Fn&& run_once, int iterations) {
  std::vector<double> micros(static_cast<std::size_t>(iterations));
  for (double& sample : micros) {
    const auto start = std::chrono::steady_clock::now();
    run_once();
    sample = std::chrono::duration<double, std::micro>(std::chrono::steady_clock::now() - start).count();
  }
  std::sort(micros.begin(), micros.end());
  const double mean = std::accumulate(micros.begin(), micros.end(), 0.0) / micros.size();
  std::printf(
      "{\"iterations\": %d, \"p50_us\": %.3f, \"p99_us\": %.3f, \"mean_us\": %.3f, \"min_us\": %.3f}\n",
      iterations, percentile(micros, 0.50), percentile(micros, 0.99), mean, micros.front());
  std::fflush(stdout);
}

}  // namespace

int main(int argc, char** argv) {
  if (argc != 8 && argc != 9) {
    std::fprintf(stderr,
                 "usage: %s LIBTENSORFLOW SAVED_MODEL_DIR INPUT_TENSOR OUTPUT_TENSOR SHAPE "
                 "ITERATIONS|- WARMUP [CONFIG_HEX]\n",
                 argv[0]);
    return 2;
  }
  const Api api = load_api(argv[1]);
  const bool serve = std::string(argv[6]) == "-";
  const int iterations = serve ? 0 : std::atoi(argv[6]), warmup = std::atoi(argv[7]);
  if ((!serve && iterations <= 0) || warmup < 0) fail("ITERATIONS must be > 0 or -, WARMUP >= 0");

  TF_Status* status = api.TF_NewStatus();
  TF_SessionOptions* options = api.TF_NewSessionOptions();
  if (argc == 9) {
    const std::string config = parse_hex(argv[8]);
    api.TF_SetConfig(options, config.data(), config.size(), status);
    check(api, status, "CONFIG_HEX");
  }
  TF_Graph* graph = api.TF_NewGraph();
  const char* tags[] = {"serve"};
  TF_Session* session =
      api.TF_LoadSessionFromSavedModel(options, nullptr, argv[2], tags, 1, graph, nullptr, status);
  check(api, status, "loading the SavedModel");

  const TF_Output input = resolve(api, graph, argv[3]);
  const TF_Output output = resolve(api, graph, argv[4]);
  TF_Tensor* input_value = ones(api, parse_shape(argv[5]));

  auto run_once = [&] {
    TF_Tensor* out = nullptr;
    api.TF_SessionRun(session, nullptr, &input, &input_value, 1, &output, &out, 1, nullptr, 0,
                      nullptr, status);
    check(api, status, "TF_SessionRun");
    api.TF_DeleteTensor(out);
  };

  for (int i = 0; i < warmup; ++i) run_once();
  if (!serve) {
    time_block(run_once, iterations);
  } else {
    std::printf("{\"ready\": true}\n");
    std::fflush(stdout);
    int n = 0, w = 0;
    while (std::scanf("%d %d", &n, &w) == 2 && n > 0 && w >= 0) {
      for (int i = 0; i < w; ++i) run_once();
      time_block(run_once, n);
    }
  }

  api.TF_DeleteTensor(input_value);
  api.TF_CloseSession(session, status);
  api.TF_DeleteSession(session, status);
  api.TF_DeleteGraph(graph);
  api.TF_DeleteSessionOptions(options);
  api.TF_DeleteStatus(status);
  return 0;
}
