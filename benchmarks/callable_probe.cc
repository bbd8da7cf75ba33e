// Below the C API floor? Session::MakeCallable/RunCallable (TensorFlow's C++ API, which
// pre-resolves feeds and fetches once) against Session::Run and the C API's TF_SessionRun,
// on the same loaded SavedModel, in one process, in alternating blocks.
//
// A separate benchmark program, NOT part of smrt: it is built against the TensorFlow wheel's
// own C++ headers and libraries (smrt never links TensorFlow's C++ API, nor a second protobuf).
//   TFD=$(python -c "import tensorflow as tf, os; print(os.path.dirname(tf.__file__))")
//   g++ -O2 -std=c++17 -I$TFD/include benchmarks/callable_probe.cc -o callable_probe \
//       -L$TFD -l:libtensorflow_cc.so.2 -l:libtensorflow_framework.so.2 -Wl,-rpath,$TFD
//   ./callable_probe SAVED_MODEL_DIR INPUT_TENSOR OUTPUT_TENSOR ROUNDS CALLS_PER_BLOCK
// Prints one JSON line per API: the median over rounds of each block's p50, in microseconds.
#include <algorithm>
#include <chrono>
#include <cstdio>
#include <cstdlib>
#include <string>
#include <vector>

#include "tensorflow/c/c_api.h"
#include "tensorflow/cc/saved_model/loader.h"
#include "tensorflow/core/public/session.h"

namespace {

template <class Fn>
double block_p50_us(Fn&& call, int n) {
  std::vector<double> us(static_cast<std::size_t>(n));
  for (double& sample : us) {
    const auto start = std::chrono::steady_clock::now();
    call();
    sample = std::chrono::duration<double, std::micro>(std::chrono::steady_clock::now() - start).count();
  }
  std::sort(us.begin(), us.end());
  return us[us.size() / 2];
}

double median(std::vector<double> v) {
  std::sort(v.begin(), v.end());
  return v[v.size() / 2];
}

void check(const tensorflow::Status& s, const char* what) {
  if (!s.ok()) {
    std::fprintf(stderr, "%s: %s\n", what, std::string(s.message()).c_str());
    std::exit(1);
  }
}

}  // namespace

int main(int argc, char** argv) {
  if (argc != 6) {
    std::fprintf(stderr, "usage: %s SAVED_MODEL_DIR INPUT_TENSOR OUTPUT_TENSOR ROUNDS CALLS\n", argv[0]);
    return 2;
  }
  const std::string dir = argv[1], in = argv[2], out = argv[3];
  const int rounds = std::atoi(argv[4]), calls = std::atoi(argv[5]);

  tensorflow::SessionOptions options;
  options.config.set_inter_op_parallelism_threads(-1);  // the inline floor
  tensorflow::SavedModelBundle bundle;
  check(tensorflow::LoadSavedModel(options, tensorflow::RunOptions(), dir, {"serve"}, &bundle), "loading");
  tensorflow::Session* session = bundle.session.get();

  tensorflow::Tensor x(tensorflow::DT_FLOAT, tensorflow::TensorShape({1, 4}));
  std::fill_n(x.flat<float>().data(), 4, 1.0f);
  const std::vector<tensorflow::Tensor> feeds{x};
  std::vector<tensorflow::Tensor> fetched;

  tensorflow::CallableOptions callable_options;
  callable_options.add_feed(in);
  callable_options.add_fetch(out);
  tensorflow::Session::CallableHandle handle;
  check(session->MakeCallable(callable_options, &handle), "MakeCallable");
  auto run_callable = [&] {
    fetched.clear();
    check(session->RunCallable(handle, feeds, &fetched, nullptr), "RunCallable");
  };
  auto run = [&] {
    fetched.clear();
    check(session->Run({{in, x}}, {out}, {}, &fetched), "Run");
  };

  // The C API on a session of its own (same options), as raw_c_loop.cc calls it.
  TF_Status* status = TF_NewStatus();
  TF_SessionOptions* c_options = TF_NewSessionOptions();
  const unsigned char inline_config[] = {0x28, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0x01};
  TF_SetConfig(c_options, inline_config, sizeof inline_config, status);
  TF_Graph* graph = TF_NewGraph();
  const char* tags[] = {"serve"};
  TF_Session* c_session = TF_LoadSessionFromSavedModel(c_options, nullptr, dir.c_str(), tags, 1, graph, nullptr, status);
  if (TF_GetCode(status) != TF_OK) {
    std::fprintf(stderr, "C API load: %s\n", TF_Message(status));
    return 1;
  }
  auto op_of = [&](const std::string& name) {
    return TF_Output{TF_GraphOperationByName(graph, name.substr(0, name.rfind(':')).c_str()),
                     std::atoi(name.substr(name.rfind(':') + 1).c_str())};
  };
  const TF_Output c_in = op_of(in), c_out = op_of(out);
  const int64_t dims[] = {1, 4};
  TF_Tensor* c_x = TF_AllocateTensor(TF_FLOAT, dims, 2, 16);
  std::fill_n(static_cast<float*>(TF_TensorData(c_x)), 4, 1.0f);
  auto c_run = [&] {
    TF_Tensor* y = nullptr;
    TF_SessionRun(c_session, nullptr, &c_in, &c_x, 1, &c_out, &y, 1, nullptr, 0, nullptr, status);
    if (TF_GetCode(status) != TF_OK) std::exit(1);
    TF_DeleteTensor(y);
  };

  for (int i = 0; i < 1000; ++i) run_callable(), run(), c_run();
  std::vector<double> callable_us, run_us, c_us;
  for (int r = 0; r < rounds; ++r) {  // alternating blocks, so drift hits all three alike
    callable_us.push_back(block_p50_us(run_callable, calls));
    run_us.push_back(block_p50_us(run, calls));
    c_us.push_back(block_p50_us(c_run, calls));
  }
  std::vector<double> ratio;
  for (int r = 0; r < rounds; ++r) ratio.push_back(callable_us[r] / c_us[r]);
  std::printf("{\"RunCallable_p50_us\": %.3f, \"Session_Run_p50_us\": %.3f, \"TF_SessionRun_p50_us\": %.3f, "
              "\"RunCallable_over_TF_SessionRun\": %.3f}\n",
              median(callable_us), median(run_us), median(c_us), median(ratio));
  check(session->ReleaseCallable(handle), "ReleaseCallable");
  TF_DeleteTensor(c_x);
  TF_CloseSession(c_session, status);
  TF_DeleteSession(c_session, status);
  TF_DeleteGraph(graph);
  TF_DeleteSessionOptions(c_options);
  TF_DeleteStatus(status);
  return 0;
}
