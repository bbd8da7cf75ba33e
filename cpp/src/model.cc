#include "smrt/model.h"

#include <atomic>
#include <memory>
#include <mutex>
#include <shared_mutex>

#include "smrt/runtime.h"
#include "status.h"
#include "tf_c_api.h"

namespace smrt {

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

 private:
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

// n value-initialized elements, on the stack when there are few: the call path allocates
// nothing for signatures of ordinary size.
template <class T, std::size_t N = 16>
class StackArray {
 public:
  explicit StackArray(std::size_t n) : heap_(n > N ? n : 0), data_(n > N ? heap_.data() : small_) {}
  T& operator[](std::size_t i) { return data_[i]; }
  T* data() { return data_; }

 private:
  T small_[N] = {};
  std::vector<T> heap_;
  T* data_;
};

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

std::string shape_string(const int64_t* dims, int rank) {
  std::string s = "(";
  for (int i = 0; i < rank; ++i) {
    s += (i ? ", " : "") + (dims[i] < 0 ? std::string("None") : std::to_string(dims[i]));
  }
  return s + (rank == 1 ? ",)" : ")");
}

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

void Signature::check_input(std::size_t index, DType dtype, const int64_t* dims, int rank) const {
  const TensorSpec& spec = info_.inputs[index];
  if (dtype != spec.dtype) throw_dtype_mismatch(index, dtype_name(dtype));
  if (spec.unknown_rank) return;
  bool fits = static_cast<std::size_t>(rank) == spec.shape.size();
  for (int i = 0; fits && i < rank; ++i) fits = spec.shape[i] < 0 || spec.shape[i] == dims[i];
  if (!fits) {
    throw InvalidInputError("input '" + spec.key + "' of signature '" + info_.key + "' expects shape " +
                            spec_shape_string(spec) + ", got " + shape_string(dims, rank));
  }
}

void Signature::run(const Tensor* inputs, Tensor* outputs) const { run(inputs, outputs, RunOptions{}); }

void Signature::run(const Tensor* inputs, Tensor* outputs, const RunOptions& options) const {
  StackArray<const Tensor*> pointers(info_.inputs.size());
  for (std::size_t i = 0; i < info_.inputs.size(); ++i) pointers[i] = &inputs[i];
  run_pointers(pointers.data(), outputs, options);
}

void Signature::run_pointers(const Tensor* const* inputs, Tensor* outputs, const RunOptions& options) const {
  const std::size_t n_in = info_.inputs.size(), n_out = info_.outputs.size();
  StackArray<TF_Tensor*> in_values(n_in), out_values(n_out);
  for (std::size_t i = 0; i < n_in; ++i) {
    const Tensor& t = *inputs[i];
    if (!t) throw InvalidInputError("input '" + info_.inputs[i].key + "' of signature '" + info_.key + "' is an empty Tensor");
    const int rank = t.rank();
    StackArray<int64_t> dims(static_cast<std::size_t>(rank));
    for (int d = 0; d < rank; ++d) dims[static_cast<std::size_t>(d)] = t.dim(d);
    check_input(i, t.dtype(), dims.data(), rank);
    in_values[i] = t.get();
  }

  // A deadline travels as a serialized tensorflow.RunOptions, built on the stack: TensorFlow
  // cancels the step when it passes, so a timed-out run frees its thread and stops using CPU.
  RunOptionsProto run_options(options);
  const auto& api = tf::api();
  thread_local tf::Status status;
  {
    std::shared_lock<std::shared_mutex> lock(session_->mutex());
    if (session_->closed()) throw ModelClosedError("the model loaded from '" + session_->path() + "' is closed");
    api.TF_SessionRun(session_->session(), run_options.buffer(), endpoints_->inputs.data(), in_values.data(),
                      static_cast<int>(n_in), endpoints_->outputs.data(), out_values.data(),
                      static_cast<int>(n_out), nullptr, 0, nullptr, status.get());
  }
  // Adopt whatever TensorFlow returned before looking at the status, so nothing leaks.
  for (std::size_t i = 0; i < n_out; ++i) outputs[i] = Tensor(out_values[i]);
  if (!status.ok()) status.throw_if_error("running signature '" + info_.key + "'");
}

template <class Pairs>
std::map<std::string, Tensor> Signature::run_named(const Pairs& inputs, const RunOptions& options) const {
  std::vector<const Tensor*> ordered(info_.inputs.size(), nullptr);
  const auto bound = [&](std::size_t i) { return ordered[i] != nullptr; };
  for (const auto& [key, tensor] : inputs) ordered[bind_input(key, bound)] = &tensor;
  check_all_bound(bound);
  std::vector<Tensor> out(info_.outputs.size());
  run_pointers(ordered.data(), out.data(), options);
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

Model Model::load(const std::string& dir, const std::vector<std::string>& tags, const SessionOptions& options) {
  SavedModelInfo info = inspect(dir);
  const MetaGraphInfo& meta = info.meta_graph(tags);
  const std::string config = options.serialize();
  const auto& api = tf::api();

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
    model.signatures_.emplace(sig.key, std::move(signature));
  }
  return model;
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

void Model::close() {
  if (session_) session_->close();
}

bool Model::closed() const { return !session_ || session_->closed(); }

}  // namespace smrt
