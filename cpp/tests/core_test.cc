// Tests of smrt's C++ core, run by ctest (and under AddressSanitizer/UBSan by
// tests/test_cpp_core.py). Needs SMRT_LIBTENSORFLOW and SMRT_TEST_ZOO (tests/model_zoo.py's
// output directory) in the environment.
#include <smrt/smrt.h>

#include <algorithm>
#include <atomic>
#include <chrono>
#include <cstdlib>
#include <fstream>
#include <functional>
#include <iostream>
#include <map>
#include <memory>
#include <random>
#include <sstream>
#include <string>
#include <thread>
#include <vector>

#include "../src/idle_pool.h"
#include "../src/library_loading.h"

namespace {

int g_failures = 0;

#define CHECK(cond)                                                                  \
  do {                                                                               \
    if (!(cond)) {                                                                   \
      std::cerr << __FILE__ << ":" << __LINE__ << ": CHECK(" #cond ") failed\n";     \
      ++g_failures;                                                                  \
    }                                                                                \
  } while (0)

// Runs `body`, which must throw E with a message containing `fragment`.
template <class E>
void check_throws(const std::function<void()>& body, const std::string& fragment, int line) {
  try {
    body();
    std::cerr << "line " << line << ": nothing was thrown\n";
    ++g_failures;
  } catch (const E& e) {
    if (std::string(e.what()).find(fragment) == std::string::npos) {
      std::cerr << "line " << line << ": message '" << e.what() << "' lacks '" << fragment << "'\n";
      ++g_failures;
    }
  } catch (const std::exception& e) {
    std::cerr << "line " << line << ": wrong exception: " << e.what() << "\n";
    ++g_failures;
  }
}
#define CHECK_THROWS(E, body, fragment) check_throws<E>([&] { body; }, fragment, __LINE__)

std::string zoo(const std::string& name) { return std::string(std::getenv("SMRT_TEST_ZOO")) + "/" + name; }

std::string read_file(const std::string& path) {
  std::ifstream in(path, std::ios::binary);
  std::stringstream s;
  s << in.rdbuf();
  return s.str();
}

void test_reader_refuses_bad_files() {
  CHECK_THROWS(smrt::ModelNotFoundError, smrt::inspect("/nonexistent/model"), "does not exist");
  CHECK_THROWS(smrt::StatusError, smrt::parse_saved_model("", "empty"), "is empty");
  CHECK_THROWS(smrt::StatusError, smrt::parse_saved_model("\x12\xff\xff", "garbage"), "corrupt");
  const std::string pb = read_file(zoo("stateful") + "/saved_model.pb");
  for (std::size_t cut : {pb.size() / 3, pb.size() / 2, pb.size() - 1}) {
    try {
      smrt::parse_saved_model(pb.substr(0, cut), "truncated");
    } catch (const smrt::StatusError& e) {
      CHECK(e.code() == smrt::ErrorCode::kDataLoss);
    }
  }
}

// Random byte flips of a real saved_model.pb: every one parses or throws DataLoss, and the
// sanitizers see no bad access. (A bounded, deterministic cousin of a fuzzer.)
void test_reader_survives_mutations() {
  const std::string pb = read_file(zoo("stateful") + "/saved_model.pb");
  std::mt19937 rng(1234);
  for (int i = 0; i < 3000; ++i) {
    std::string bytes = pb;
    for (int flips = 1 + static_cast<int>(rng() % 4); flips > 0; --flips) {
      bytes[rng() % bytes.size()] = static_cast<char>(rng());
    }
    try {
      smrt::parse_saved_model(bytes, "mutated", /*with_ops=*/true, /*with_functions=*/true, /*with_tree=*/true);
    } catch (const smrt::StatusError& e) {
      CHECK(e.code() == smrt::ErrorCode::kDataLoss);
    }
  }
}

// Every op that can run, with its holders: ReadFile hides in a tf.cond branch (and a loop body
// and a tf.data function) where saved_model_cli's count does not look. An empty second
// graph_def (12 00) after the MetaGraphDef merges into the first, as protobuf parses it.
void test_reachable_ops() {
  const std::string pb = read_file(zoo("hidden_file_reads") + "/saved_model.pb");
  const smrt::SavedModelInfo info = smrt::parse_saved_model(pb, "hidden", /*with_ops=*/true);
  const smrt::MetaGraphInfo& meta = info.meta_graph({"serve"});
  CHECK(meta.ops && meta.reachable_ops);
  CHECK(std::count(meta.ops->begin(), meta.ops->end(), "ReadFile") == 0);
  const std::vector<std::string>& holders = meta.reachable_ops->at("ReadFile");
  CHECK(holders.size() == 3);
  CHECK(std::any_of(holders.begin(), holders.end(), [](const std::string& h) { return h.rfind("cond_true_", 0) == 0; }));
  CHECK(meta.reachable_ops->at("Placeholder") == std::vector<std::string>{""});  // "" is the graph

  // SavedModel{saved_model_schema_version = 1, meta_graphs = 2}: rebuilt with 12 00 appended
  // inside each MetaGraphDef.
  auto varint = [&](std::size_t& at) {
    std::size_t value = 0;
    for (int shift = 0;; shift += 7) {
      const auto byte = static_cast<unsigned char>(pb.at(at++));
      value |= static_cast<std::size_t>(byte & 0x7f) << shift;
      if (!(byte & 0x80)) return value;
    }
  };
  auto put_varint = [](std::string& out, std::size_t n) {
    for (; n > 0x7f; n >>= 7) out += static_cast<char>((n & 0x7f) | 0x80);
    out += static_cast<char>(n);
  };
  std::string grown;
  for (std::size_t at = 0; at < pb.size();) {
    const std::size_t start = at, tag = varint(at);
    if ((tag & 7) == 0) {
      varint(at);
      grown += pb.substr(start, at - start);
      continue;
    }
    CHECK((tag & 7) == 2);
    const std::size_t size = varint(at);
    std::string payload = pb.substr(at, size);
    at += size;
    if (tag >> 3 == 2) payload += std::string("\x12\x00", 2);
    put_varint(grown, tag);
    put_varint(grown, payload.size());
    grown += payload;
  }
  CHECK(grown.size() >= pb.size() + 2);
  const smrt::SavedModelInfo merged = smrt::parse_saved_model(grown, "merged", /*with_ops=*/true);
  CHECK(merged.meta_graphs.at(0).ops == meta.ops);
  CHECK(merged.meta_graphs.at(0).reachable_ops == meta.reachable_ops);
}

void test_run_and_errors() {
  smrt::Model model = smrt::Model::load(zoo("add_one"));
  const smrt::Signature& sig = model.signature("serving_default");
  auto out = sig.run({{"x", smrt::Tensor::from_vector<float>({1, 3}, {1, 2, 3})}});
  CHECK(out.at("y").shape() == (std::vector<int64_t>{1, 3}));
  CHECK(out.at("y").data<float>()[2] == 4.0f);

  CHECK_THROWS(smrt::SignatureNotFoundError, model.signature("nope"), "'nope'");
  CHECK_THROWS(smrt::InputTypeError, sig.run({{"x", smrt::Tensor::from_vector<double>({1, 1}, {1})}}), "float32");
  CHECK_THROWS(smrt::InvalidInputError, sig.run({{"x", smrt::Tensor::from_vector<float>({3}, {1, 2, 3})}}), "shape");
  CHECK_THROWS(smrt::InvalidInputError, sig.run({{"y", smrt::Tensor::from_vector<float>({1, 1}, {1})}}), "no input 'y'");
  // A missing input must be reported before any given tensor is touched (was a double free).
  smrt::Model two = smrt::Model::load(zoo("dynamic_shapes"));
  smrt::Tensor x = smrt::Tensor::from_vector<float>({1, 1, 3}, {1, 2, 3});
  CHECK_THROWS(smrt::InvalidInputError, two.signature("serving_default").run({{"x", x}}), "missing input 'z'");
  CHECK(x.data<float>()[1] == 2.0f);

  model.close();
  CHECK(model.closed());
  CHECK_THROWS(smrt::ModelClosedError, sig.run({{"x", smrt::Tensor::from_vector<float>({1, 1}, {1})}}), "closed");
}

// Fetching a subset of outputs, the form a bound call runs: outputs[j] gets output fetch[j].
void test_run_fetching() {
  smrt::Model model = smrt::Model::load(zoo("path_output_keys"));
  const smrt::Signature& sig = model.signature("serving_default");
  // outputs() is sorted by key: "../escape" (x + 1) before "/abs" (x * 2).
  CHECK(sig.outputs()[0].key == "../escape");
  const smrt::Tensor x = smrt::Tensor::from_vector<float>({2}, {1, 2});
  const std::size_t fetch[] = {1};
  smrt::Tensor out[1];
  sig.run(&x, fetch, 1, out);
  CHECK(out[0].data<float>()[1] == 4.0f);
  const std::size_t both[] = {1, 0};
  smrt::Tensor two[2];
  sig.run(&x, both, 2, two);
  CHECK(two[0].data<float>()[0] == 2.0f);
  CHECK(two[1].data<float>()[0] == 2.0f && two[1].data<float>()[1] == 3.0f);
  const std::size_t bad[] = {2};
  CHECK_THROWS(smrt::InvalidInputError, sig.run(&x, bad, 1, out), "no output 2");
  // Keys resolve to those positions once, before any run.
  CHECK(sig.output_position("/abs") == 1);
  CHECK_THROWS(smrt::InvalidInputError, sig.output_position("nope"), "has no output 'nope'; its outputs are: ../escape, /abs");
}

// A deadline reaches TensorFlow: a while loop of hours is cancelled, the session stays usable.
void test_deadline() {
  smrt::Model model = smrt::Model::load(zoo("control_flow"));
  const smrt::Signature& sig = model.signature("loop");
  std::map<std::string, smrt::Tensor> forever, ten;
  forever.emplace("n", smrt::Tensor::scalar<int32_t>(2147483647));
  ten.emplace("n", smrt::Tensor::scalar<int32_t>(10));
  const auto start = std::chrono::steady_clock::now();
  try {
    sig.run(forever, smrt::RunOptions{std::chrono::milliseconds(200)});
    CHECK(false);
  } catch (const smrt::StatusError& e) {
    CHECK(e.code() == smrt::ErrorCode::kDeadlineExceeded);
  }
  CHECK(std::chrono::steady_clock::now() - start < std::chrono::seconds(20));
  CHECK(sig.run(ten, smrt::RunOptions{std::chrono::milliseconds(60000)}).at("y").data<int32_t>()[0] == 45);
  CHECK(sig.run(ten, smrt::RunOptions{}).at("y").data<int32_t>()[0] == 45);  // zero: no limit
}

void test_caller_memory_and_strings() {
  smrt::Model model = smrt::Model::load(zoo("all_dtypes"));
  const smrt::Signature& sig = model.signature("scalars");
  alignas(64) static float a = 1.5f;
  static std::atomic<int> released{0};
  int64_t no_dims[1] = {0};
  {
    smrt::Tensor wrapped = smrt::Tensor::wrap(smrt::DType::kFloat32, no_dims, 0, &a, sizeof a,
                                              [](void*, std::size_t, void*) { ++released; }, nullptr);
    auto out = sig.run({{"a", wrapped}, {"b", smrt::Tensor::scalar<int64_t>(41)},
                        {"c", smrt::Tensor::strings({}, {"a string longer than twenty-two bytes"})}});
    CHECK(out.at("o_a").data<float>()[0] == 3.0f);
    CHECK(out.at("o_b").data<int64_t>()[0] == 42);
    CHECK(out.at("o_c").string_at(0) == "a string longer than twenty-two bytes");
  }
  CHECK(released == 1);  // TensorFlow let go of the caller's memory exactly once
}

void test_threads() {
  smrt::Model model = smrt::Model::load(zoo("add_one"));
  const smrt::Signature& sig = model.signature("serving_default");
  std::atomic<int> wrong{0};
  std::vector<std::thread> threads;
  for (int t = 0; t < 4; ++t) {
    threads.emplace_back([&, t] {
      for (int i = 0; i < 200; ++i) {
        const float v = static_cast<float>(t * 1000 + i);
        auto out = sig.run({{"x", smrt::Tensor::from_vector<float>({1, 1}, {v})}});
        if (out.at("y").data<float>()[0] != v + 1) ++wrong;
      }
    });
  }
  for (auto& thread : threads) thread.join();
  CHECK(wrong == 0);
}

// What the two loaders share (library_loading.h): ':'-separated path lists, and a table of
// functions resolved by name that reports the first one the library lacks.
void test_library_loading() {
  using smrt::detail::split_path_list;
  CHECK(split_path_list("").empty());
  CHECK(split_path_list("/a") == (std::vector<std::string>{"/a"}));
  CHECK(split_path_list("::/a::b:") == (std::vector<std::string>{"/a", "b"}));
  const smrt::detail::OpenedLibrary absent("/nonexistent/libsmrt_absent.so");
  CHECK(!absent.opened());
  CHECK(absent.error().find("libsmrt_absent.so") != std::string::npos);
#define SMRT_TEST_FUNCTIONS(X) X(double, cos, (double)) X(int, smrt_no_such_function, (void)) X(double, sin, (double))
  struct {
    double (*cos)(double) = nullptr;
    int (*smrt_no_such_function)(void) = nullptr;
    double (*sin)(double) = nullptr;
  } api;
  smrt::detail::OpenedLibrary library("libm.so.6");
  CHECK(library.opened());
  SMRT_TEST_FUNCTIONS(SMRT_RESOLVE_FROM_LIBRARY)
#undef SMRT_TEST_FUNCTIONS
  CHECK(api.cos && api.cos(0.0) == 1.0);
  CHECK(api.sin && api.sin(0.0) == 0.0);
  CHECK(library.missing() && std::string(library.missing()) == "smrt_no_such_function");
}

// The pool of OpenVINO infer requests (idle_pool.h): giving one back runs in a destructor, so it
// must not allocate. Room for every object is reserved when it is made.
void test_idle_pool() {
  smrt::detail::IdlePool<std::unique_ptr<int>> pool;
  static_assert(noexcept(pool.give_back(nullptr)), "give_back runs in destructors");
  int made = 0;
  const auto make = [&made] { return std::make_unique<int>(++made); };
  std::vector<std::unique_ptr<int>> out;
  for (int i = 0; i < 5; ++i) {
    out.push_back(pool.take(make));  // all five out at once: five made
    CHECK(pool.capacity() >= pool.made());
  }
  CHECK(pool.made() == 5);
  for (auto& item : out) pool.give_back(std::move(item));
  std::unique_ptr<int> again = pool.take(make);
  CHECK(again && made == 5);  // an idle one, not a new one
  pool.close();
  pool.give_back(std::move(again));  // dropped: the pool is closed
  CHECK(!pool.take(make));
  CHECK(made == 5);
}

// The OpenVINO backend from C++ (when SMRT_LIBOPENVINO names one): the same Signature surface,
// answers as TensorFlow's, fallback with a reason, threads, close.
void test_openvino_backend() {
  if (!std::getenv("SMRT_LIBOPENVINO")) {
    std::cout << "SMRT_LIBOPENVINO is not set: the OpenVINO backend is not tested\n";
    return;
  }
  smrt::BackendOptions options;
  options.backend = smrt::Backend::kOpenVINO;
  smrt::Model model = smrt::Model::load(zoo("add_one"), {"serve"}, {}, options);
  const smrt::Signature& sig = model.signature("serving_default");
  CHECK(sig.backend() == "openvino");
  CHECK(sig.backend_note().empty());
  auto out = sig.run({{"x", smrt::Tensor::from_vector<float>({1, 3}, {1, 2, 3})}});
  CHECK(out.at("y").shape() == (std::vector<int64_t>{1, 3}));
  CHECK(out.at("y").data<float>()[2] == 4.0f);
  CHECK_THROWS(smrt::InputTypeError, sig.run({{"x", smrt::Tensor::from_vector<double>({1, 1}, {1})}}), "float32");
  std::atomic<int> wrong{0};
  std::vector<std::thread> threads;
  for (int t = 0; t < 4; ++t) {
    threads.emplace_back([&, t] {
      for (int i = 0; i < 100; ++i) {
        const float v = static_cast<float>(t * 1000 + i);
        if (sig.run({{"x", smrt::Tensor::from_vector<float>({1, 1}, {v})}}).at("y").data<float>()[0] != v + 1) ++wrong;
      }
    });
  }
  for (auto& thread : threads) thread.join();
  CHECK(wrong == 0);
  model.close();
  CHECK_THROWS(smrt::ModelClosedError, sig.run({{"x", smrt::Tensor::from_vector<float>({1, 1}, {1})}}), "closed");

  // Fetching some outputs, as a bound call does: outputs[j] is output fetch[j], as on TensorFlow.
  smrt::Model keys_model = smrt::Model::load(zoo("path_output_keys"), {"serve"}, {}, options);
  const smrt::Signature& keys = keys_model.signature("serving_default");
  CHECK(keys.backend() == "openvino");
  const smrt::Tensor x = smrt::Tensor::from_vector<float>({2}, {1, 2});
  const std::size_t abs_only[] = {1}, both[] = {1, 0};
  smrt::Tensor one[1], two[2];
  keys.run(&x, abs_only, 1, one);
  CHECK(one[0].data<float>()[1] == 4.0f);
  keys.run(&x, both, 2, two);
  CHECK(two[0].data<float>()[0] == 2.0f && two[1].data<float>()[1] == 3.0f);

  smrt::Model stateful = smrt::Model::load(zoo("stateful"), {"serve"}, {}, options);
  CHECK(stateful.signature("serving_default").backend() == "tensorflow");
  CHECK(stateful.signature("serving_default").backend_note().find("'mutate'") != std::string::npos);
  CHECK(smrt::openvino_support(zoo("stateful")).at("serving_default") == stateful.signature("serving_default").backend_note());
}

}  // namespace

// The object tree of nested modules: each variable's checkpoint key (escaped, first path
// breadth first) and its VarHandleOp; calls share the session's variables.
void test_object_tree() {
  using Kind = smrt::SavedObjectInfo::Kind;
  smrt::Model model = smrt::Model::load(zoo("nested_modules"));
  const smrt::ObjectTree* tree = model.object_tree();
  CHECK(tree != nullptr);
  if (!tree) return;
  const auto child = [&](int node, const std::string& name) {
    for (const auto& [local, id] : tree->nodes.at(static_cast<std::size_t>(node)).children) {
      if (local == name) return id;
    }
    return -1;
  };
  const int inner = child(0, "inner"), v = child(0, "v");
  CHECK(inner > 0 && child(0, "alias") == inner);
  const int w = child(inner, "w"), b = child(inner, "b");
  const int escaped = child(child(child(0, "lst"), "1"), "a.b/c");
  CHECK(w > 0 && b > 0 && escaped > 0 && v > 0);
  if (w <= 0 || b <= 0 || escaped <= 0 || v <= 0) return;
  const auto& nodes = tree->nodes;
  CHECK(nodes[static_cast<std::size_t>(w)].kind == Kind::kVariable);
  CHECK(nodes[static_cast<std::size_t>(w)].checkpoint_key == "inner/w/.ATTRIBUTES/VARIABLE_VALUE");
  CHECK(nodes[static_cast<std::size_t>(b)].checkpoint_key == "inner/b/.ATTRIBUTES/VARIABLE_VALUE");
  CHECK(nodes[static_cast<std::size_t>(escaped)].checkpoint_key == "lst/1/a..b.Sc/.ATTRIBUTES/VARIABLE_VALUE");
  CHECK(nodes[static_cast<std::size_t>(b)].variable_name == "w");  // same name as w
  CHECK(nodes[static_cast<std::size_t>(b)].shape == std::vector<int64_t>{2});
  std::vector<std::string> handles;
  for (const auto& node : nodes) {
    if (node.kind == Kind::kVariable) handles.push_back(node.graph_variable);
  }
  CHECK(handles.size() == 5);
  std::sort(handles.begin(), handles.end());
  CHECK(std::unique(handles.begin(), handles.end()) == handles.end() && !handles.front().empty());

  CHECK(model.read_variable(b).data<float>()[1] == 2.0f);
  std::string f, bump;
  for (const auto& name : nodes[static_cast<std::size_t>(child(inner, "f"))].concrete_functions) f = name;
  for (const auto& name : nodes[static_cast<std::size_t>(child(0, "bump"))].concrete_functions) bump = name;
  std::vector<smrt::Tensor> in;
  in.push_back(smrt::Tensor::from_vector<float>({2}, {1.0f, 2.0f}));
  std::vector<smrt::Tensor> out = model.call_function(f, in);
  CHECK(out.size() == 1 && out[0].data<float>()[0] == 3.0f && out[0].data<float>()[1] == 6.0f);
  CHECK(model.call_function(bump, {}).empty());
  CHECK(model.read_variable(v).data<float>()[0] == 2.0f);
  CHECK(model.read_variable(escaped).data<float>()[0] == 7.0f);  // 4 + lst[0]
  in.clear();
  in.push_back(smrt::Tensor::from_vector<float>({1, 2}, {1.0f, 2.0f}));
  CHECK_THROWS(smrt::InvalidInputError, model.call_function(f, in), "expects shape (None,)");
  in.clear();
  in.push_back(smrt::Tensor::from_vector<int32_t>({2}, {1, 2}));
  CHECK_THROWS(smrt::InputTypeError, model.call_function(f, in), "expects float32");
  CHECK_THROWS(smrt::StatusError, model.call_function("__inference_nope_1", {}), "no concrete function");
  model.close();
  CHECK_THROWS(smrt::ModelClosedError, model.read_variable(v), "closed");
}

// Custom op libraries: a model whose ops nothing registers is a MissingOpError naming them (C++
// programs get no automatic tensorflow-text loading unless they add a package root), and
// load_op_library makes it load. Needs SMRT_TEST_TEXT_OPS (tensorflow_text/python/ops).
void test_op_libraries() {
  const char* text_ops = std::getenv("SMRT_TEST_TEXT_OPS");
  if (!text_ops) {
    std::cerr << "SMRT_TEST_TEXT_OPS not set: op library tests skipped\n";
    return;
  }
  const std::string dir = text_ops;
  CHECK_THROWS(smrt::MissingOpError, smrt::Model::load(zoo("text_tokenizers")),
               "'TFText>WhitespaceTokenizeWithOffsetsV2' in function '__inference_serve_");
  CHECK_THROWS(smrt::MissingOpError, smrt::Model::load(zoo("text_tokenizers")), "from the tensorflow-text package");
  CHECK_THROWS(smrt::MissingOpError, smrt::Model::load(zoo("unknown_ops")), "'Addons>NoSuchOp'");
  CHECK_THROWS(smrt::LibraryNotFoundError, smrt::runtime::load_op_library("/nonexistent/_ops.so"), "/nonexistent/_ops.so");
  CHECK_THROWS(smrt::LibraryNotFoundError, smrt::runtime::load_op_library(zoo("add_one")), zoo("add_one"));
  const auto ops = smrt::runtime::load_op_library(dir + "/_whitespace_tokenizer_v2.so");
  CHECK(ops == std::vector<std::string>{"TFText>WhitespaceTokenizeWithOffsetsV2"});
  CHECK(smrt::runtime::load_op_library(dir + "/_whitespace_tokenizer_v2.so") == ops);  // once per path
  CHECK_THROWS(smrt::MissingOpError, smrt::Model::load(zoo("text_tokenizers")), "'FastWordpieceTokenizeWithOffsets'");
  smrt::runtime::load_op_library(dir + "/_fast_wordpiece_tokenizer.so");
  const auto registered = smrt::runtime::registered_ops();
  CHECK(std::count(registered.begin(), registered.end(), "FastWordpieceTokenizeWithOffsets") == 1);
  smrt::Model model = smrt::Model::load(zoo("text_tokenizers"));
  auto out = model.signature("serving_default").run({{"text", smrt::Tensor::strings({1}, {"fox jumps"})}});
  const smrt::Tensor& ids = out.at("ids");
  CHECK(ids.shape() == (std::vector<int64_t>{3}));
  CHECK(ids.data<int64_t>()[0] == 4 && ids.data<int64_t>()[1] == 5 && ids.data<int64_t>()[2] == 6);
}

std::string varint(uint64_t n) {
  std::string out;
  do {
    out += static_cast<char>((n & 0x7f) | (n > 0x7f ? 0x80 : 0));
    n >>= 7;
  } while (n);
  return out;
}

// A load decodes the object tree of the MetaGraph it loads only: here a second MetaGraph, the
// first one's bytes with tag "other" added (tags {serve, other}).
void test_tree_of_the_loaded_meta_graph_only() {
  const std::string pb = read_file(zoo("module_guide") + "/saved_model.pb");
  std::size_t at = 0;
  std::string meta;
  while (at < pb.size() && meta.empty()) {  // SavedModel{schema_version = 1, meta_graphs = 2}
    const auto tag = static_cast<unsigned char>(pb[at++]);
    uint64_t value = 0;
    for (int shift = 0; at < pb.size(); shift += 7) {
      const auto byte = static_cast<unsigned char>(pb[at++]);
      value |= static_cast<uint64_t>(byte & 0x7f) << shift;
      if (!(byte & 0x80)) break;
    }
    if (tag == 0x12) meta = pb.substr(at, value);
    if ((tag & 7) == 2) at += value;
  }
  CHECK(!meta.empty());
  const std::string other = meta + "\x0a\x07\x22\x05other";  // meta_info_def{tags: "other"}, merged
  const std::string two = pb + "\x12" + varint(other.size()) + other;
  const std::vector<std::string> serve{"serve"};
  const smrt::SavedModelInfo info = smrt::parse_saved_model(two, "two", false, false, true, &serve);
  CHECK(info.meta_graphs.size() == 2);
  if (info.meta_graphs.size() != 2) return;
  CHECK(info.meta_graphs[0].object_tree.has_value());
  CHECK(info.meta_graphs[1].has_tags({"serve", "other"}) && !info.meta_graphs[1].object_tree.has_value());
  const smrt::SavedModelInfo all = smrt::parse_saved_model(two, "two", false, false, true);
  CHECK(all.meta_graphs.size() == 2 && all.meta_graphs[1].object_tree.has_value());
}

// One tensor as a call's inputs (Tensor is move-only: no initializer lists).
std::vector<smrt::Tensor> one(smrt::Tensor t) {
  std::vector<smrt::Tensor> v;
  v.push_back(std::move(t));
  return v;
}

// Saved functions and variables by path, as model.root reads them in Python: dispatch over the
// traced concrete functions by flat inputs, tables and assets, one state with signatures.
void test_object_paths() {
  smrt::Model model = smrt::Model::load(zoo("nested_modules"));
  std::vector<smrt::Tensor> in;
  in.push_back(smrt::Tensor::from_vector<float>({2}, {1.0f, 2.0f}));
  std::vector<smrt::Tensor> out = model.call("inner.f", in);
  CHECK(out.size() == 1 && out[0].data<float>()[0] == 3.0f && out[0].data<float>()[1] == 6.0f);
  out = model.call("root.alias.f", in);  // another path to the same function
  CHECK(out.size() == 1 && out[0].data<float>()[1] == 6.0f);
  CHECK(model.read_variable("inner.b").data<float>()[1] == 2.0f);
  CHECK(model.read_variable("lst.1.a.b/c").data<float>()[0] == 4.0f);  // a name holding '.'
  CHECK(model.object_at("") == 0 && model.object_at("alias") == model.object_at("inner"));
  // The root's __call__ was traced with (x) and with (x, y): the flat inputs pick one. Its
  // outputs {"s": x * v, "t": (f(x), x or x + y)} come flat, dict keys sorted.
  in.clear();
  in.push_back(smrt::Tensor::from_vector<float>({1}, {1.0f}));
  out = model.call("", in);
  CHECK(out.size() == 3 && out[2].data<float>()[0] == 1.0f);
  in.push_back(smrt::Tensor::from_vector<float>({}, {10.0f}));
  out = model.call("__call__", in);
  CHECK(out.size() == 3 && out[2].data<float>()[0] == 11.0f);
  CHECK(model.call("bump", {}).empty());
  CHECK(model.read_variable("v").data<float>()[0] == 2.0f);
  const smrt::ConcreteFunction f = model.concrete_function(model.object_tree()->nodes[static_cast<std::size_t>(
                                                                model.object_at("inner.f"))].concrete_functions.at(0));
  CHECK(f.inputs().size() == 1 && f.num_outputs() == 1 && f.inputs()[0].shape == std::vector<int64_t>{-1});
  const std::vector<smrt::Tensor> x1 = one(smrt::Tensor::from_vector<float>({1}, {1.0f}));
  CHECK(f.run(x1)[0].data<float>()[0] == 3.0f);
  CHECK_THROWS(smrt::StatusError, model.call("inner.nope", {}), "root.inner has no saved child 'nope'; its children are:");
  CHECK_THROWS(smrt::StatusError, model.call("v", {}), "'v' is not a saved function");
  const std::vector<smrt::Tensor> ints = one(smrt::Tensor::from_vector<int32_t>({1}, {1}));
  CHECK_THROWS(smrt::NoMatchingFunctionError, model.call("inner.f", ints), "Option 1 (");
  CHECK_THROWS(smrt::NoMatchingFunctionError, model.call("inner.f", {}), "takes these 0 flat inputs: none");

  smrt::Model tables = smrt::Model::load(zoo("lookup_tables"));
  out = tables.call("look", one(smrt::Tensor::strings({2}, {"b", "z"})));
  CHECK(out.size() == 1 && out[0].data<int64_t>()[0] == 1 && out[0].data<int64_t>()[1] == -1);
  out = tables.call("read_vocabulary", {});
  CHECK(out.size() == 1 && out[0].string_at(0) == "a\nb\nc\n");

  smrt::Model keras = smrt::Model::load(zoo("keras_stateful"));
  keras.call("set_bias", one(smrt::Tensor::from_vector<float>({2}, {10.0f, 20.0f})));
  const smrt::Tensor x = smrt::Tensor::from_vector<float>({1, 3}, {0.0f, 0.0f, 0.0f});
  const auto served = keras.signature("serve").run({{"inputs", x}});
  CHECK(served.at("output_0").data<float>()[1] == 20.0f);  // the signature sees the function's write
  keras.signature("set_bias").run({{"bias", smrt::Tensor::from_vector<float>({2}, {1.0f, 2.0f})}});
  CHECK(keras.call("serve", one(smrt::Tensor::from_vector<float>({1, 3}, {0.0f, 0.0f, 0.0f})))[0].data<float>()[1] ==
        2.0f);  // and the other way
  model.close();
  CHECK_THROWS(smrt::ModelClosedError, f.run(x1), "closed");
}

int main() {
  if (!std::getenv("SMRT_TEST_ZOO")) {
    std::cerr << "set SMRT_TEST_ZOO to tests/model_zoo.py's output directory\n";
    return 2;
  }
  test_reader_refuses_bad_files();
  test_reader_survives_mutations();
  test_reachable_ops();
  test_run_and_errors();
  test_run_fetching();
  test_deadline();
  test_caller_memory_and_strings();
  test_threads();
  test_library_loading();
  test_idle_pool();
  test_object_tree();
  test_op_libraries();
  test_object_paths();
  test_tree_of_the_loaded_meta_graph_only();
  test_openvino_backend();
  std::cout << (g_failures ? "FAILED: " : "ok: ") << g_failures << " failure(s)\n";
  return g_failures ? 1 : 0;
}
