#include "smrt/model.h"

#include <algorithm>
#include <atomic>
#include <filesystem>
#include <memory>
#include <mutex>
#include <numeric>
#include <shared_mutex>

#include "op_effects.h"
#include "op_libraries.h"
#include "backend.h"
#include "openvino_backend.h"
#include "shape_text.h"
#include "small_array.h"
#include "smrt/runtime.h"
#include "status.h"
#include "tf_c_api.h"

namespace smrt {

using detail::shape_string;
using detail::SmallArray;

// The TF_Session and TF_Graph of one loaded model. Runs share the lock; close takes it whole,
// so closing waits for runs in flight and no run ever sees a freed session.
class Session {
 public:
  Session(TF_Session* session, TF_Graph* graph, std::string path)
      : session_(session), graph_(graph), path_(std::move(path)) {}
  ~Session() { close(); }
  Session(const Session&) = delete;
  Session& operator=(const Session&) = delete;

  void close() {
    // Refuse new runs first: readers may keep a glibc rwlock forever, starving the writer.
    closed_.store(true, std::memory_order_release);
    std::unique_lock<std::shared_mutex> lock(mutex_);
    for (const auto& backend : backends_) backend->close();
    backends_.clear();
    if (!session_) return;
    const auto& api = tf::api();
    tf::Status status;
    api.TF_CloseSession(session_, status.get());
    api.TF_DeleteSession(session_, status.get());
    api.TF_DeleteGraph(graph_);
    session_ = nullptr;
    graph_ = nullptr;
  }
  // True from the moment close() starts. Lock-free, so asking never waits behind a close()
  // that waits for runs in flight.
  bool closed() const { return closed_.load(std::memory_order_acquire); }

  TF_Graph* graph() const { return graph_; }
  TF_Session* session() const { return session_; }
  std::shared_mutex& mutex() const { return mutex_; }
  const std::string& path() const { return path_; }
  // Another backend's signature runner, closed with the session.
  void adopt(std::shared_ptr<detail::SignatureBackend> backend) { backends_.push_back(std::move(backend)); }

 private:
  std::vector<std::shared_ptr<detail::SignatureBackend>> backends_;
  TF_Session* session_;
  TF_Graph* graph_;
  std::string path_;
  mutable std::shared_mutex mutex_;
  std::atomic<bool> closed_{false};
};

struct Signature::Endpoints {
  std::vector<TF_Output> inputs;
  std::vector<TF_Output> outputs;
};

namespace {

constexpr char kInitOpKey[] = "__saved_model_init_op";

// tensorflow.RunOptions with only timeout_in_ms (field 2, varint) set, or no buffer at all.
class RunOptionsProto {
 public:
  explicit RunOptionsProto(const RunOptions& options) {
    const auto ms = options.timeout.count();
    if (ms <= 0) return;
    auto value = static_cast<uint64_t>(ms);
    bytes_[size_++] = 2 << 3;  // field 2, wire type 0
    while (value > 0x7F) {
      bytes_[size_++] = static_cast<unsigned char>((value & 0x7F) | 0x80);
      value >>= 7;
    }
    bytes_[size_++] = static_cast<unsigned char>(value);
    buffer_ = TF_Buffer{bytes_, size_, nullptr};
  }
  const TF_Buffer* buffer() const { return size_ ? &buffer_ : nullptr; }

 private:
  unsigned char bytes_[11] = {};  // a tag byte and up to 10 varint bytes
  std::size_t size_ = 0;
  TF_Buffer buffer_{};
};

std::string spec_shape_string(const TensorSpec& spec) {
  return spec.unknown_rank ? "unknown rank" : shape_string(spec.shape.data(), static_cast<int>(spec.shape.size()));
}

// "name:0" -> the graph's TF_Output; an empty reason string on success.
std::string resolve(TF_Graph* graph, const TensorSpec& spec, TF_Output& out) {
  const std::string& name = spec.tensor_name;
  if (name.empty()) return "'" + spec.key + "' is a sparse or composite tensor, which smrt does not run yet";
  const auto colon = name.rfind(':');
  std::string op = name;
  int index = 0;
  if (colon != std::string::npos) {
    op = name.substr(0, colon);
    const std::string digits = name.substr(colon + 1);
    if (digits.empty() || digits.size() > 9 || digits.find_first_not_of("0123456789") != std::string::npos) {
      return "tensor name '" + name + "' of '" + spec.key + "' is malformed";
    }
    index = std::stoi(digits);
  }
  const auto& api = tf::api();
  out.oper = api.TF_GraphOperationByName(graph, op.c_str());
  out.index = index;
  if (!out.oper || index < 0 || index >= api.TF_OperationNumOutputs(out.oper)) {
    return "tensor '" + name + "' of '" + spec.key + "' is not in the loaded graph";
  }
  return {};
}

std::string resolve_all(TF_Graph* graph, const std::vector<TensorSpec>& specs, std::vector<TF_Output>& out) {
  out.resize(specs.size());
  for (std::size_t i = 0; i < specs.size(); ++i) {
    if (std::string why = resolve(graph, specs[i], out[i]); !why.empty()) return why;
  }
  return {};
}

struct SessionOptionsDeleter {
  void operator()(TF_SessionOptions* o) const { tf::api().TF_DeleteSessionOptions(o); }
};
struct GraphDeleter {
  void operator()(TF_Graph* g) const { tf::api().TF_DeleteGraph(g); }
};
struct SessionDeleter {
  void operator()(TF_Session* s) const {
    tf::Status status;
    tf::api().TF_DeleteSession(s, status.get());
  }
};

}  // namespace

Signature::Signature(SignatureInfo info, std::shared_ptr<Session> session)
    : info_(std::move(info)), session_(std::move(session)) {}

int Signature::input_index(std::string_view key) const noexcept {
  for (std::size_t i = 0; i < info_.inputs.size(); ++i) {
    if (info_.inputs[i].key == key) return static_cast<int>(i);
  }
  return -1;
}

std::size_t Signature::output_position(std::string_view key) const {
  for (std::size_t j = 0; j < info_.outputs.size(); ++j) {
    if (info_.outputs[j].key == key) return j;
  }
  std::string keys;
  for (const auto& spec : info_.outputs) keys += (keys.empty() ? "" : ", ") + spec.key;
  throw InvalidInputError("signature '" + info_.key + "' has no output '" + std::string(key) +
                          "'; its outputs are: " + (keys.empty() ? "none" : keys));
}

void Signature::throw_no_such_input(std::string_view key) const {
  std::string keys;
  for (const auto& spec : info_.inputs) keys += (keys.empty() ? "" : ", ") + spec.key;
  throw InvalidInputError("signature '" + info_.key + "' has no input '" + std::string(key) +
                          "'; its inputs are: " + (keys.empty() ? "none" : keys));
}

void Signature::throw_given_twice(std::string_view key) const {
  throw InvalidInputError("input '" + std::string(key) + "' of signature '" + info_.key + "' is given twice");
}

void Signature::throw_dtype_mismatch(std::size_t index, std::string_view got) const {
  const TensorSpec& spec = info_.inputs[index];
  throw InputTypeError("input '" + spec.key + "' of signature '" + info_.key + "' expects " +
                       std::string(dtype_name(spec.dtype)) + ", got " + std::string(got));
}

namespace {

// Whether `dims` is `declared` (-1 for unknown) give or take dimensions of size 1: TF Serving
// feeds [3] to an input declared (-1, 1), and [1] to a scalar.
bool equal_but_for_ones(const std::vector<int64_t>& declared, const int64_t* dims, int rank) {
  std::vector<int64_t> want, got;
  for (int64_t d : declared) {
    if (d != 1) want.push_back(d);
  }
  for (int i = 0; i < rank; ++i) {
    if (dims[i] != 1) got.push_back(dims[i]);
  }
  // An unknown declared dimension matches one given dimension, or a size-1 one dropped above.
  std::vector<bool> reach(got.size() + 1, false), next(got.size() + 1);
  reach[0] = true;
  for (int64_t w : want) {
    std::fill(next.begin(), next.end(), false);
    for (std::size_t j = 0; j <= got.size(); ++j) {
      if (!reach[j]) continue;
      if (w < 0) next[j] = true;
      if (j < got.size() && (w < 0 || w == got[j])) next[j + 1] = true;
    }
    reach.swap(next);
  }
  return reach[got.size()];
}

// Whether dims fit `spec`'s shape: the same rank, and each known dimension equal.
bool shape_fits(const TensorSpec& spec, const int64_t* dims, int rank) {
  if (spec.unknown_rank) return true;
  if (static_cast<std::size_t>(rank) != spec.shape.size()) return false;
  for (int i = 0; i < rank; ++i) {
    const int64_t want = spec.shape[static_cast<std::size_t>(i)];
    if (want >= 0 && want != dims[i]) return false;
  }
  return true;
}

// check_input's rarer cases, out of the per-call path: a rank TF Serving's clients may drop or
// add size-1 dimensions to, and every refusal.
[[gnu::noinline, gnu::cold]] void check_rank_or_shape(const TensorSpec& spec, const std::string& signature,
                                                     const int64_t* dims, int rank, bool check_shape) {
  if (!check_shape) {
    // TensorFlow decides about sizes, but not about ranks: its kernels validate sizes, while a
    // tensor of another rank can abort the process (a CHECK in a conv kernel, measured with
    // TF 2.21). So a rank may differ only by size-1 dimensions, and only for inputs of rank up
    // to 2 (feature vectors and scalars, where TF Serving's clients rely on it).
    const std::size_t declared = spec.shape.size();
    if (static_cast<std::size_t>(rank) == declared) return;
    if (declared <= 2 && rank <= 2 && equal_but_for_ones(spec.shape, dims, rank)) return;
    throw InvalidInputError("input '" + spec.key + "' of signature '" + signature + "' expects shape " +
                            spec_shape_string(spec) + ", got " + shape_string(dims, rank) +
                            ": a tensor of another rank is refused even when TensorFlow checks shapes");
  }
  if (!shape_fits(spec, dims, rank)) {
    throw InvalidInputError("input '" + spec.key + "' of signature '" + signature + "' expects shape " +
                            spec_shape_string(spec) + ", got " + shape_string(dims, rank));
  }
}

}  // namespace

void Signature::check_input(std::size_t index, DType dtype, const int64_t* dims, int rank,
                            bool check_shape) const {
  const TensorSpec& spec = info_.inputs[index];
  if (dtype != spec.dtype) throw_dtype_mismatch(index, dtype_name(dtype));
  if (spec.unknown_rank) return;
  if (static_cast<std::size_t>(rank) == spec.shape.size() && (!check_shape || shape_fits(spec, dims, rank))) return;
  check_rank_or_shape(spec, info_.key, dims, rank, check_shape);
}

void Signature::run(const Tensor* inputs, Tensor* outputs) const { run(inputs, outputs, RunOptions{}); }

void Signature::run(const Tensor* inputs, Tensor* outputs, const RunOptions& options) const {
  SmallArray<const Tensor*> pointers(info_.inputs.size());
  for (std::size_t i = 0; i < info_.inputs.size(); ++i) pointers[i] = &inputs[i];
  run_pointers(pointers.data(), nullptr, info_.outputs.size(), outputs, options);
}

void Signature::run(const Tensor* inputs, const std::size_t* fetch, std::size_t n_fetch, Tensor* outputs,
                    const RunOptions& options) const {
  for (std::size_t j = 0; j < n_fetch; ++j) {
    if (fetch[j] >= info_.outputs.size()) {
      throw InvalidInputError("signature '" + info_.key + "' has " + std::to_string(info_.outputs.size()) +
                              " outputs; there is no output " + std::to_string(fetch[j]));
    }
  }
  SmallArray<const Tensor*> pointers(info_.inputs.size());
  for (std::size_t i = 0; i < info_.inputs.size(); ++i) pointers[i] = &inputs[i];
  run_pointers(pointers.data(), fetch, n_fetch, outputs, options);
}

namespace {

// run_pointers' refusals and failures, out of the per-call path.
[[noreturn, gnu::noinline, gnu::cold]] void throw_empty_input(const std::string& input, const std::string& signature) {
  throw InvalidInputError("input '" + input + "' of signature '" + signature + "' is an empty Tensor");
}

[[noreturn, gnu::noinline, gnu::cold]] void throw_closed(const Session& session) {
  throw ModelClosedError("the model loaded from '" + session.path() + "' is closed");
}

[[noreturn, gnu::noinline, gnu::cold]] void throw_run_failed(const tf::Status& status, const std::string& signature) {
  status.throw_if_error("running signature '" + signature + "'");
  throw StatusError(ErrorCode::kInternal, "running signature '" + signature + "' failed without a status");
}

// Runs on `backend` under the session's close rules; false if TensorFlow's session should run
// it instead. A run OpenVINO fails is run again on TensorFlow's session, loaded beside it: the
// caller gets TensorFlow's answer, or its error (a request that is the caller's mistake, say
// inputs whose sizes disagree, is then InvalidArgument as on the TensorFlow backend, not
// OpenVINO's general failure). A deadline that passed is final.
[[gnu::noinline]] bool run_on_backend(const detail::SignatureBackend& backend, Session& session,
                                      const Tensor* const* inputs, const std::size_t* fetch, std::size_t n_out,
                                      Tensor* outputs, const RunOptions& options) {
  std::shared_lock<std::shared_mutex> lock(session.mutex());
  if (session.closed()) throw_closed(session);
  try {
    backend.run(inputs, fetch, n_out, outputs, options);
    return true;
  } catch (const StatusError& e) {
    if (e.code() == ErrorCode::kDeadlineExceeded || e.code() == ErrorCode::kCancelled) throw;
  }
  return false;
}

}  // namespace

void Signature::run_pointers(const Tensor* const* inputs, const std::size_t* fetch, std::size_t n_fetch,
                             Tensor* outputs, const RunOptions& options) const {
  const std::size_t n_in = info_.inputs.size(), n_out = n_fetch;
  SmallArray<TF_Tensor*> in_values(n_in), out_values(n_out);
  for (std::size_t i = 0; i < n_in; ++i) {
    const Tensor& t = *inputs[i];
    if (!t) throw_empty_input(info_.inputs[i].key, info_.key);
    const int rank = t.rank();
    SmallArray<int64_t> dims(static_cast<std::size_t>(rank));
    for (int d = 0; d < rank; ++d) dims[static_cast<std::size_t>(d)] = t.dim(d);
    check_input(i, t.dtype(), dims.data(), rank, options.check_shapes);
    in_values[i] = t.get();
  }
  if (native_ && run_on_backend(*native_, *session_, inputs, fetch, n_out, outputs, options)) return;
  // The fetched endpoints: all of them as resolved at load, or the chosen ones copied here.
  const TF_Output* fetched = endpoints_->outputs.data();
  SmallArray<TF_Output> chosen(fetch ? n_out : 0);
  if (fetch) {
    for (std::size_t j = 0; j < n_out; ++j) chosen[j] = endpoints_->outputs[fetch[j]];
    fetched = chosen.data();
  }

  // A deadline travels as a serialized tensorflow.RunOptions, built on the stack: TensorFlow
  // cancels the step when it passes, so a timed-out run frees its thread and stops using CPU.
  RunOptionsProto run_options(options);
  const auto& api = tf::api();
  thread_local tf::Status status;
  {
    std::shared_lock<std::shared_mutex> lock(session_->mutex());
    if (session_->closed()) throw_closed(*session_);
    api.TF_SessionRun(session_->session(), run_options.buffer(), endpoints_->inputs.data(), in_values.data(),
                      static_cast<int>(n_in), fetched, out_values.data(), static_cast<int>(n_out), nullptr, 0,
                      nullptr, status.get());
  }
  // Adopt whatever TensorFlow returned before looking at the status, so nothing leaks.
  for (std::size_t i = 0; i < n_out; ++i) outputs[i] = Tensor(out_values[i]);
  if (!status.ok()) throw_run_failed(status, info_.key);
}

template <class Pairs>
std::map<std::string, Tensor> Signature::run_named(const Pairs& inputs, const RunOptions& options) const {
  std::vector<const Tensor*> ordered(info_.inputs.size(), nullptr);
  const auto bound = [&](std::size_t i) { return ordered[i] != nullptr; };
  for (const auto& [key, tensor] : inputs) ordered[bind_input(key, bound)] = &tensor;
  check_all_bound(bound);
  std::vector<Tensor> out(info_.outputs.size());
  run_pointers(ordered.data(), nullptr, out.size(), out.data(), options);
  std::map<std::string, Tensor> result;
  for (std::size_t i = 0; i < out.size(); ++i) result.emplace(info_.outputs[i].key, std::move(out[i]));
  return result;
}

std::map<std::string, Tensor> Signature::run(const std::map<std::string, Tensor>& inputs) const {
  return run_named(inputs, RunOptions{});
}

std::map<std::string, Tensor> Signature::run(const std::map<std::string, Tensor>& inputs,
                                             const RunOptions& options) const {
  return run_named(inputs, options);
}

std::map<std::string, Tensor> Signature::run(
    std::initializer_list<std::pair<std::string_view, const Tensor&>> inputs) const {
  return run_named(inputs, RunOptions{});
}

Model::Model(Model&&) noexcept = default;
Model& Model::operator=(Model&&) noexcept = default;
Model::~Model() = default;

Model Model::load(const std::string& dir, const std::vector<std::string>& tags, const SessionOptions& options,
                  const BackendOptions& backend) {
  SavedModelInfo info = inspect(dir, /*with_ops=*/true, /*with_functions=*/false, /*with_tree=*/true, &tags,
                                /*with_ops_run=*/true);
  const MetaGraphInfo& meta = info.meta_graph(tags);
  const std::string config = options.serialize();
  const auto& api = tf::api();
  // An op TensorFlow does not know fails deep in the load with a terse message: say which
  // op, where, and which package has it (loading tensorflow-text's libraries if installed).
  detail::load_environment_op_libraries();
  detail::require_ops(*meta.reachable_ops, dir);

  tf::Status status;
  std::unique_ptr<TF_SessionOptions, SessionOptionsDeleter> session_options(api.TF_NewSessionOptions());
  api.TF_SetConfig(session_options.get(), config.data(), config.size(), status.get());
  status.throw_if_error("invalid session options (ConfigProto)");
  std::unique_ptr<TF_Graph, GraphDeleter> graph(api.TF_NewGraph());
  std::vector<const char*> tag_ptrs;
  for (const auto& tag : tags) tag_ptrs.push_back(tag.c_str());
  std::unique_ptr<TF_Session, SessionDeleter> session(api.TF_LoadSessionFromSavedModel(
      session_options.get(), nullptr, dir.c_str(), tag_ptrs.data(), static_cast<int>(tag_ptrs.size()), graph.get(),
      nullptr, status.get()));
  status.throw_if_error("loading the SavedModel at '" + dir + "'");

  Model model;
  model.path_ = dir;
  model.meta_graph_ = meta;
  model.session_ = std::make_shared<Session>(session.get(), graph.get(), dir);
  model.object_calls_ = std::make_shared<ObjectCalls>();
  session.release();  // the Session owns both now
  graph.release();
  for (const SignatureInfo& sig : model.meta_graph_.signatures) {
    if (sig.key == kInitOpKey) continue;
    auto endpoints = std::make_shared<Signature::Endpoints>();
    std::string why = resolve_all(model.session_->graph(), sig.inputs, endpoints->inputs);
    if (why.empty()) why = resolve_all(model.session_->graph(), sig.outputs, endpoints->outputs);
    if (!why.empty()) {
      model.unavailable_.emplace(sig.key, why);
      continue;
    }
    Signature signature(sig, model.session_);
    signature.endpoints_ = std::move(endpoints);
    if (meta.ops_run) {  // else the graph was too large to walk: assume the worst
      const auto ops = meta.ops_run->by_signature.find(sig.key);
      signature.may_keep_inputs_ = ops == meta.ops_run->by_signature.end() || detail::may_keep_inputs(ops->second);
    }
    model.signatures_.emplace(sig.key, std::move(signature));
  }
  if (backend.backend != Backend::kTensorFlow) model.use_openvino(tags, backend);
  return model;
}

void Model::use_openvino(const std::vector<std::string>& tags, const BackendOptions& options) {
  auto choices = detail::openvino_signatures(path_, tags, meta_graph_, options);
  for (auto& [key, signature] : signatures_) {
    detail::BackendChoice& choice = choices[key];
    if (choice.runner && options.backend == Backend::kAuto) {
      choice.why_not = detail::probe_disagreement(signature, *choice.runner, options.tolerance);
      if (!choice.why_not.empty()) {
        choice.runner->close();
        choice.runner.reset();
      }
    }
    if (!choice.runner) {
      signature.backend_note_ = choice.why_not;
      continue;
    }
    session_->adopt(choice.runner);
    signature.native_ = std::move(choice.runner);
    signature.backend_ = "openvino";
  }
}

const Signature& Model::signature(std::string_view key) const {
  if (auto it = signatures_.find(key); it != signatures_.end()) return it->second;
  std::string message = "the model at '" + path_ + "' has no callable signature '" + std::string(key) + "'";
  if (key == kInitOpKey) {
    message += " (it is the SavedModel's init op, which TensorFlow runs at load)";
  } else if (auto why = unavailable_.find(key); why != unavailable_.end()) {
    message += ": " + why->second;
  }
  std::string keys;
  for (const auto& [name, sig] : signatures_) keys += (keys.empty() ? "'" : ", '") + name + "'";
  message += keys.empty() ? "; it has no callable signatures" : "; its signatures are: " + keys;
  throw SignatureNotFoundError(message);
}

const Signature& Model::default_signature() const {
  if (signatures_.count("serving_default")) return signature("serving_default");
  if (signatures_.size() == 1) return signatures_.begin()->second;
  return signature("serving_default");  // throws, listing the signatures there are
}

// --- The object tree: concrete functions and variables, added to the graph at first use ----

// One concrete function's call in the graph: Placeholders for its user inputs, then a
// StatefulPartitionedCall of it whose captured inputs are the session's own VarHandleOps.
struct detail::CallEndpoints {
  std::vector<TensorSpec> inputs;  // flat user inputs
  std::vector<TF_Output> feeds;
  std::vector<TF_Output> fetches;
  TF_Operation* call = nullptr;
};
using detail::CallEndpoints;

struct Model::ObjectCalls {
  std::mutex mutex;  // adding to the graph, and the maps below
  std::map<std::string, std::shared_ptr<const CallEndpoints>> calls;
  std::map<std::string, StatusError> failed;  // name -> why it cannot be called (code and text)
  std::map<int, TF_Output> reads;             // variable node -> its ReadVariableOp
  std::map<int, TF_Output> assets;            // asset node -> a Const of its file's path
};

namespace {

// TensorFlow's nest order: sequences in order, dicts by sorted key, named tuples by field.
void flatten_specs(const StructuredValue& v, std::vector<TensorSpec>& out, const std::string& function) {
  using Kind = StructuredValue::Kind;
  switch (v.kind) {
    case Kind::kTensorSpec: {
      TensorSpec spec;
      spec.key = v.string.empty() ? "input_" + std::to_string(out.size()) : v.string;
      spec.dtype = v.dtype;
      spec.shape = v.shape;
      spec.unknown_rank = v.unknown_rank;
      out.push_back(std::move(spec));
      return;
    }
    case Kind::kList:
    case Kind::kTuple:
    case Kind::kNamedTuple:
      for (const auto& item : v.items) flatten_specs(item, out, function);
      return;
    case Kind::kDict: {
      std::vector<std::size_t> order(v.keys.size());
      std::iota(order.begin(), order.end(), 0);
      std::sort(order.begin(), order.end(), [&](std::size_t a, std::size_t b) { return v.keys[a] < v.keys[b]; });
      for (std::size_t i : order) flatten_specs(v.items[i], out, function);
      return;
    }
    case Kind::kBoundedTensorSpec:
    case Kind::kTypeSpec:
    case Kind::kTensor:
      throw StatusError(ErrorCode::kUnimplemented, "concrete function '" + function +
                                                       "' takes a composite or bounded tensor, which smrt does not call yet");
    default:
      return;  // Python values (None, numbers, strings) are no inputs
  }
}

std::string node_label(const ObjectTree& tree, int node) {
  const SavedObjectInfo& object = tree.nodes[static_cast<std::size_t>(node)];
  std::string label = "object " + std::to_string(node);
  if (!object.checkpoint_key.empty()) {
    label += " ('" + object.checkpoint_key.substr(0, object.checkpoint_key.rfind("/.ATTRIBUTES")) + "')";
  } else if (!object.variable_name.empty()) {
    label += " (variable '" + object.variable_name + "')";
  }
  return label;
}

const ConcreteFunctionSpec& concrete_function_spec(const ObjectTree* tree, const std::string& name, const std::string& path) {
  if (tree) {
    if (auto it = tree->concrete_functions.find(name); it != tree->concrete_functions.end() && it->second.in_library) {
      return it->second;
    }
  }
  throw StatusError(ErrorCode::kNotFound, "the model at '" + path + "' has no concrete function '" + name + "'");
}

// "op:k" -> that output of the graph's op, or {nullptr, 0}.
TF_Output graph_output(TF_Graph* graph, const std::string& tensor) {
  const auto colon = tensor.rfind(':');
  if (colon == std::string::npos || colon + 1 >= tensor.size()) return TF_Output{nullptr, 0};
  const std::string op_name = tensor.substr(0, colon);
  const int index = std::stoi(tensor.substr(colon + 1));  // the reader checked: up to 9 digits
  TF_Operation* op = tf::api().TF_GraphOperationByName(graph, op_name.c_str());
  if (!op || index >= tf::api().TF_OperationNumOutputs(op)) return TF_Output{nullptr, 0};
  return TF_Output{op, index};
}

// Where captured objects are bound: the graph, and the asset-path Consts added so far.
struct Captures {
  const ObjectTree& tree;
  TF_Graph* graph;
  const std::string& model_dir;
  std::map<int, TF_Output>& assets;
};

// A string Const holding `dir`/assets/`filename`, as TensorFlow's loader resolves an asset.
TF_Output asset_path_const(const Captures& at, int node, const std::string& needed_by) {
  if (auto found = at.assets.find(node); found != at.assets.end()) return found->second;
  const SavedObjectInfo& object = at.tree.nodes[static_cast<std::size_t>(node)];
  const std::string* filename = object.asset_file >= 0 ? &at.tree.asset_files[static_cast<std::size_t>(object.asset_file)] : nullptr;
  if (!filename || filename->empty()) {
    throw StatusError(ErrorCode::kDataLoss, needed_by + " captures " + node_label(at.tree, node) +
                                                ", an asset that names no file of the MetaGraph's asset_file_def");
  }
  // Inside assets/ always: TensorFlow joins the name to it (io::JoinPath), so a leading '/'
  // does not escape it, and a name with a '..' part is refused.
  const std::filesystem::path relative = std::filesystem::path(*filename).relative_path();
  for (const auto& part : relative) {
    if (part == "..") {
      throw StatusError(ErrorCode::kDataLoss, needed_by + " captures asset '" + *filename + "', which names a file outside the SavedModel's assets/ directory");
    }
  }
  const std::string path = (std::filesystem::path(at.model_dir) / "assets" / relative).string();
  Tensor value = Tensor::strings({}, {path});
  const auto& api = tf::api();
  tf::Status status;
  TF_OperationDescription* desc =
      api.TF_NewOperation(at.graph, "Const", ("smrt/asset/" + std::to_string(node)).c_str());
  api.TF_SetAttrType(desc, "dtype", static_cast<int>(DType::kString));
  api.TF_SetAttrTensor(desc, "value", value.get(), status.get());
  if (!status.ok()) {
    api.TF_FinishOperation(desc, tf::Status().get());  // frees the description; the op is unused
    status.throw_if_error("adding the path of asset '" + *filename + "' to the graph");
  }
  TF_Operation* op = api.TF_FinishOperation(desc, status.get());
  status.throw_if_error("adding the path of asset '" + *filename + "' to the graph");
  return at.assets[node] = TF_Output{op, 0};
}

// What captured input `node` is bound to: the tensor the graph's own calls pass for it (a
// signature's variables, an initialized table), else a variable's VarHandleOp that the restore
// op fills, a constant's Const op, an asset's path; an error saying why when there is none.
TF_Output bound_capture(const Captures& at, int node, DType dtype, const std::string& needed_by) {
  using Kind = SavedObjectInfo::Kind;
  const ObjectTree& tree = at.tree;
  if (node < 0 || static_cast<std::size_t>(node) >= tree.nodes.size()) {
    throw StatusError(ErrorCode::kDataLoss, needed_by + " captures object " + std::to_string(node) + ", which is not in the object graph");
  }
  const SavedObjectInfo& object = tree.nodes[static_cast<std::size_t>(node)];
  const bool resource = dtype == DType::kResource;
  if (object.kind == Kind::kAsset && dtype == DType::kString) return asset_path_const(at, node, needed_by);
  if (!object.graph_tensor.empty()) {
    const TF_Output out = graph_output(at.graph, object.graph_tensor);
    if (out.oper && static_cast<int>(tf::api().TF_OperationOutputType(out)) == static_cast<int>(dtype)) return out;
  }
  const bool variable = object.kind == Kind::kVariable && resource;
  const bool constant = object.kind == Kind::kConstant && !resource;
  if (!variable && !constant) {
    throw StatusError(ErrorCode::kUnimplemented,
                      needed_by + " captures " + node_label(tree, node) +
                          ", which none of the graph's own calls (signatures, initializers) pass and which is not a "
                          "variable or a constant: smrt cannot bind it to the session");
  }
  const std::string& op_name = variable ? object.graph_variable : object.graph_operation;
  TF_Operation* op = op_name.empty() ? nullptr : tf::api().TF_GraphOperationByName(at.graph, op_name.c_str());
  if (!op || tf::api().TF_OperationNumOutputs(op) < 1) {
    throw StatusError(ErrorCode::kUnimplemented,
                      needed_by + " uses " + node_label(tree, node) +
                          (variable ? ", which the SavedModel's restore op does not tie to a graph variable"
                                    : ", whose graph operation '" + op_name + "' is not in the loaded graph"));
  }
  return TF_Output{op, 0};
}

// Adds the call of concrete function `name` to the graph (the caller holds the ObjectCalls
// lock and a shared lock of the session). Everything is checked before the first node is added
// (but an asset's path Const, which stays for any later use).
CallEndpoints add_call(const Captures& at, const std::string& name, const ConcreteFunctionSpec& spec) {
  TF_Graph* graph = at.graph;
  const std::string label = "concrete function '" + name + "'";
  CallEndpoints call;
  flatten_specs(spec.input_signature, call.inputs, name);
  const std::size_t n_captured = spec.bound_inputs.size();
  if (spec.input_dtypes.size() != call.inputs.size() + n_captured) {
    throw StatusError(ErrorCode::kDataLoss, label + " takes " + std::to_string(spec.input_dtypes.size()) +
                                                " inputs, but its signature and captures make " +
                                                std::to_string(call.inputs.size() + n_captured));
  }
  for (std::size_t i = 0; i < call.inputs.size(); ++i) {
    if (spec.input_dtypes[i] != call.inputs[i].dtype) {
      throw StatusError(ErrorCode::kDataLoss, label + "'s input " + std::to_string(i) + " is " +
                                                  std::string(dtype_name(spec.input_dtypes[i])) + " but its signature says " +
                                                  std::string(dtype_name(call.inputs[i].dtype)));
    }
  }
  for (DType d : spec.input_dtypes) {
    if (d == DType::kInvalid) throw StatusError(ErrorCode::kUnimplemented, label + " has an input of no fixed dtype");
  }
  for (DType d : spec.output_dtypes) {
    if (d == DType::kInvalid) throw StatusError(ErrorCode::kUnimplemented, label + " has an output of no fixed dtype");
  }
  std::vector<TF_Output> captured;
  for (std::size_t i = 0; i < n_captured; ++i) {
    captured.push_back(bound_capture(at, spec.bound_inputs[i], spec.input_dtypes[call.inputs.size() + i], label));
  }
  const auto& api = tf::api();
  tf::Status status;
  const std::string prefix = "smrt/call/" + name;
  std::vector<TF_Output> all_inputs;
  for (std::size_t i = 0; i < call.inputs.size(); ++i) {
    TF_OperationDescription* desc = api.TF_NewOperation(graph, "Placeholder", (prefix + "/input_" + std::to_string(i)).c_str());
    api.TF_SetAttrType(desc, "dtype", static_cast<int>(call.inputs[i].dtype));
    TF_Operation* op = api.TF_FinishOperation(desc, status.get());
    status.throw_if_error("adding an input of " + label + " to the graph");
    call.feeds.push_back(TF_Output{op, 0});
    all_inputs.push_back(TF_Output{op, 0});
  }
  all_inputs.insert(all_inputs.end(), captured.begin(), captured.end());
  std::vector<int> tin, tout;
  for (DType d : spec.input_dtypes) tin.push_back(static_cast<int>(d));
  for (DType d : spec.output_dtypes) tout.push_back(static_cast<int>(d));
  TF_OperationDescription* desc = api.TF_NewOperation(graph, "StatefulPartitionedCall", prefix.c_str());
  api.TF_AddInputList(desc, all_inputs.data(), static_cast<int>(all_inputs.size()));
  api.TF_SetAttrTypeList(desc, "Tin", tin.data(), static_cast<int>(tin.size()));
  api.TF_SetAttrTypeList(desc, "Tout", tout.data(), static_cast<int>(tout.size()));
  api.TF_SetAttrFuncName(desc, "f", name.data(), name.size());
  call.call = api.TF_FinishOperation(desc, status.get());
  status.throw_if_error("adding the call of " + label + " to the graph");
  for (std::size_t i = 0; i < tout.size(); ++i) call.fetches.push_back(TF_Output{call.call, static_cast<int>(i)});
  return call;
}

void check_function_input(const std::string& name, const TensorSpec& spec, const Tensor& t) {
  // The label is built only for an error: this runs for every input of every call.
  const auto label = [&] { return "input '" + spec.key + "' of concrete function '" + name + "'"; };
  if (!t) throw InvalidInputError(label() + " is an empty Tensor");
  if (t.dtype() != spec.dtype) {
    throw InputTypeError(label() + " expects " + std::string(dtype_name(spec.dtype)) + ", got " + std::string(dtype_name(t.dtype())));
  }
  if (spec.unknown_rank) return;
  const int rank = t.rank();
  SmallArray<int64_t> dims(static_cast<std::size_t>(rank));
  for (int d = 0; d < rank; ++d) dims[static_cast<std::size_t>(d)] = t.dim(d);
  if (!shape_fits(spec, dims.data(), rank)) {
    throw InvalidInputError(label() + " expects shape " + spec_shape_string(spec) + ", got " + shape_string(dims.data(), rank));
  }
}

}  // namespace

std::shared_ptr<const CallEndpoints> Model::prepared_call(const std::string& name) const {
  const ConcreteFunctionSpec& spec = concrete_function_spec(object_tree(), name, path_);
  if (!session_) throw ModelClosedError("the model is closed (moved from)");
  std::shared_lock<std::shared_mutex> session_lock(session_->mutex());
  if (session_->closed()) throw ModelClosedError("the model loaded from '" + path_ + "' is closed");
  std::lock_guard<std::mutex> lock(object_calls_->mutex);
  if (auto found = object_calls_->calls.find(name); found != object_calls_->calls.end()) return found->second;
  if (auto failed = object_calls_->failed.find(name); failed != object_calls_->failed.end()) throw failed->second;
  try {
    const Captures at{*object_tree(), session_->graph(), path_, object_calls_->assets};
    auto call = std::make_shared<const CallEndpoints>(add_call(at, name, spec));
    object_calls_->calls.emplace(name, call);
    return call;
  } catch (const Error& e) {
    // Nodes already added stay: later calls must not add them again, and fail the same way.
    object_calls_->failed.emplace(name, StatusError(e.code(), e.what()));
    throw;
  }
}

const std::vector<TensorSpec>& Model::function_inputs(const std::string& name) const {
  return prepared_call(name)->inputs;  // the map keeps the endpoints as long as the model
}

ConcreteFunction Model::concrete_function(const std::string& name) const {
  return ConcreteFunction(name, prepared_call(name), session_, path_);
}

std::vector<Tensor> Model::call_function(const std::string& name, const std::vector<Tensor>& inputs) const {
  return concrete_function(name).run(inputs);
}

ConcreteFunction::ConcreteFunction(std::string name, std::shared_ptr<const detail::CallEndpoints> call,
                                   std::shared_ptr<Session> session, std::string path)
    : name_(std::move(name)), call_(std::move(call)), session_(std::move(session)), path_(std::move(path)) {}

const std::vector<TensorSpec>& ConcreteFunction::inputs() const noexcept { return call_->inputs; }

std::size_t ConcreteFunction::num_outputs() const noexcept { return call_->fetches.size(); }

namespace {

// Whether `inputs` fit flat input specs `specs` (count, dtypes, shapes).
bool inputs_fit(const std::vector<TensorSpec>& specs, const std::vector<Tensor>& inputs) noexcept {
  if (inputs.size() != specs.size()) return false;
  for (std::size_t i = 0; i < inputs.size(); ++i) {
    const Tensor& t = inputs[i];
    const TensorSpec& spec = specs[i];
    if (!t || t.dtype() != spec.dtype) return false;
    if (spec.unknown_rank) continue;
    const int rank = t.rank();
    SmallArray<int64_t> dims(static_cast<std::size_t>(rank));
    for (int d = 0; d < rank; ++d) dims[static_cast<std::size_t>(d)] = t.dim(d);
    if (!shape_fits(spec, dims.data(), rank)) return false;
  }
  return true;
}

}  // namespace

bool ConcreteFunction::fits(const std::vector<Tensor>& inputs) const noexcept { return inputs_fit(call_->inputs, inputs); }

std::vector<Tensor> ConcreteFunction::run(const std::vector<Tensor>& inputs) const {
  const std::string& name = name_;
  const CallEndpoints* call = call_.get();
  if (inputs.size() != call->inputs.size()) {
    throw InvalidInputError("concrete function '" + name + "' takes " + std::to_string(call->inputs.size()) +
                            " flat inputs, got " + std::to_string(inputs.size()));
  }
  std::vector<TF_Tensor*> in_values(inputs.size());
  for (std::size_t i = 0; i < inputs.size(); ++i) {
    check_function_input(name, call->inputs[i], inputs[i]);
    in_values[i] = inputs[i].get();
  }
  std::vector<TF_Tensor*> out_values(call->fetches.size(), nullptr);
  const TF_Operation* targets[] = {call->call};
  const bool as_target = call->fetches.empty();
  const auto& api = tf::api();
  tf::Status status;
  {
    std::shared_lock<std::shared_mutex> lock(session_->mutex());
    if (session_->closed()) throw ModelClosedError("the model loaded from '" + path_ + "' is closed");
    api.TF_SessionRun(session_->session(), nullptr, call->feeds.data(), in_values.data(), static_cast<int>(in_values.size()),
                      call->fetches.data(), out_values.data(), static_cast<int>(out_values.size()),
                      as_target ? targets : nullptr, as_target ? 1 : 0, nullptr, status.get());
  }
  std::vector<Tensor> outputs;
  for (TF_Tensor* t : out_values) outputs.emplace_back(t);
  if (!status.ok()) status.throw_if_error("calling concrete function '" + name + "'");
  return outputs;
}

Tensor Model::read_variable(int node) const {
  const ObjectTree* tree = object_tree();
  if (!tree || node < 0 || static_cast<std::size_t>(node) >= tree->nodes.size()) {
    throw StatusError(ErrorCode::kNotFound, "the model at '" + path_ + "' has no object " + std::to_string(node));
  }
  if (!session_) throw ModelClosedError("the model is closed (moved from)");
  const SavedObjectInfo& object = tree->nodes[static_cast<std::size_t>(node)];
  const std::string label = "reading " + node_label(*tree, node);
  TF_Output read{};
  {
    std::shared_lock<std::shared_mutex> session_lock(session_->mutex());
    if (session_->closed()) throw ModelClosedError("the model loaded from '" + path_ + "' is closed");
    std::lock_guard<std::mutex> lock(object_calls_->mutex);
    if (auto found = object_calls_->reads.find(node); found != object_calls_->reads.end()) {
      read = found->second;
    } else {
      if (object.kind != SavedObjectInfo::Kind::kVariable) {
        throw StatusError(ErrorCode::kNotFound, label + ": it is not a variable");
      }
      const Captures at{*tree, session_->graph(), path_, object_calls_->assets};
      const TF_Output handle = bound_capture(at, node, DType::kResource, label);
      if (object.dtype == DType::kInvalid) throw StatusError(ErrorCode::kDataLoss, label + ": it has no dtype");
      const auto& api = tf::api();
      tf::Status status;
      TF_OperationDescription* desc =
          api.TF_NewOperation(session_->graph(), "ReadVariableOp", ("smrt/read_variable/" + std::to_string(node)).c_str());
      api.TF_AddInput(desc, handle);
      api.TF_SetAttrType(desc, "dtype", static_cast<int>(object.dtype));
      TF_Operation* op = api.TF_FinishOperation(desc, status.get());
      status.throw_if_error(label);
      read = TF_Output{op, 0};
      object_calls_->reads.emplace(node, read);
    }
  }
  TF_Tensor* value = nullptr;
  const auto& api = tf::api();
  tf::Status status;
  {
    std::shared_lock<std::shared_mutex> lock(session_->mutex());
    if (session_->closed()) throw ModelClosedError("the model loaded from '" + path_ + "' is closed");
    api.TF_SessionRun(session_->session(), nullptr, nullptr, nullptr, 0, &read, &value, 1, nullptr, 0, nullptr,
                      status.get());
  }
  Tensor out(value);
  if (!status.ok()) status.throw_if_error(label);
  return out;
}

namespace {

// "a.b.c" -> {"a", "b", "c"}; "" -> {}.
std::vector<std::string_view> split_path(std::string_view path) {
  std::vector<std::string_view> parts;
  while (!path.empty()) {
    const auto dot = path.find('.');
    parts.push_back(path.substr(0, dot));
    if (dot == std::string_view::npos) break;
    path.remove_prefix(dot + 1);
    if (path.empty()) parts.emplace_back();  // a trailing '.': an empty name, never a child
  }
  return parts;
}

std::string children_list(const SavedObjectInfo& object) {
  std::vector<std::string> names;
  for (const auto& [name, id] : object.children) names.push_back("'" + name + "'");
  std::sort(names.begin(), names.end());
  std::string out;
  for (const auto& name : names) out += (out.empty() ? "" : ", ") + name;
  return out.empty() ? "none" : out;
}

}  // namespace

int Model::object_at(std::string_view path) const {
  const ObjectTree* tree = object_tree();
  if (!tree || tree->nodes.empty()) {
    throw StatusError(ErrorCode::kNotFound, "the SavedModel at '" + path_ + "' has no object graph (a TF1 SavedModel)");
  }
  std::vector<std::string_view> parts = split_path(path);
  if (!parts.empty() && parts.front() == "root") parts.erase(parts.begin());
  int node = 0;
  std::string walked = "root";
  for (std::size_t i = 0; i < parts.size();) {
    const SavedObjectInfo& object = tree->nodes[static_cast<std::size_t>(node)];
    // The longest run of parts that is one child's name (local names may hold '.').
    int found = -1;
    std::size_t used = 0;
    std::string name;
    for (std::size_t n = parts.size() - i; n >= 1 && found < 0; --n) {
      name.assign(parts[i]);
      for (std::size_t k = 1; k < n; ++k) name.append(".").append(parts[i + k]);
      for (const auto& [local, id] : object.children) {
        if (local == name && id >= 0) {
          found = id;
          used = n;
          break;
        }
      }
    }
    if (found < 0) {
      throw StatusError(ErrorCode::kNotFound, walked + " has no saved child '" + std::string(parts[i]) +
                                                  "'; its children are: " + children_list(object));
    }
    walked += "." + name;
    node = found;
    i += used;
  }
  return node;
}

std::vector<Tensor> Model::call(std::string_view path, const std::vector<Tensor>& inputs) const {
  using Kind = SavedObjectInfo::Kind;
  int node = object_at(path);
  const ObjectTree& tree = *object_tree();
  const auto is_function = [&](int n) {
    const Kind kind = tree.nodes[static_cast<std::size_t>(n)].kind;
    return kind == Kind::kFunction || kind == Kind::kBareConcreteFunction;
  };
  if (!is_function(node)) {
    for (const auto& [name, id] : tree.nodes[static_cast<std::size_t>(node)].children) {
      if (name == "__call__" && id >= 0 && is_function(id)) node = id;
    }
  }
  const std::string label = path.empty() ? "root" : std::string(path);
  if (!is_function(node)) {
    throw StatusError(ErrorCode::kNotFound, "'" + label + "' is not a saved function (nor has a saved __call__)");
  }
  std::string options;
  int option = 0;
  for (const std::string& name : tree.nodes[static_cast<std::size_t>(node)].concrete_functions) {
    auto spec = tree.concrete_functions.find(name);
    if (spec == tree.concrete_functions.end() || !spec->second.in_library) continue;
    // Checked against the decoded signature first: only the trace that fits is added to the graph.
    std::vector<TensorSpec> flat;
    try {
      flatten_specs(spec->second.input_signature, flat, name);
    } catch (const StatusError&) {
      continue;  // composite inputs: flat tensors never fit it
    }
    if (inputs_fit(flat, inputs)) return concrete_function(name).run(inputs);
    options += "\n  Option " + std::to_string(++option) + " (" + name + "):";
    for (const TensorSpec& in : flat) {
      options += " " + in.key + ": " + std::string(dtype_name(in.dtype)) + " " + spec_shape_string(in) + ";";
    }
    if (flat.empty()) options += " no inputs";
  }
  std::string got;
  for (const Tensor& t : inputs) {
    if (!t) {
      got += " (empty Tensor);";
      continue;
    }
    SmallArray<int64_t> dims(static_cast<std::size_t>(t.rank()));
    for (int d = 0; d < t.rank(); ++d) dims[static_cast<std::size_t>(d)] = t.dim(d);
    got += " " + std::string(dtype_name(t.dtype())) + " " + shape_string(dims.data(), t.rank()) + ";";
  }
  throw NoMatchingFunctionError("'" + label + "': no concrete function traced before saving takes these " +
                                std::to_string(inputs.size()) + " flat inputs:" + (got.empty() ? " none" : got) +
                                "\nIts " + std::to_string(option) + " option(s):" + options);
}

Tensor Model::read_variable(std::string_view path) const { return read_variable(object_at(path)); }

void Model::close() {
  if (session_) session_->close();
}

bool Model::closed() const { return !session_ || session_->closed(); }

}  // namespace smrt
