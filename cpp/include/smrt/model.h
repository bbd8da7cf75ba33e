// smrt::Model: a SavedModel loaded into a TensorFlow session, and its callable signatures.
#pragma once

#include <chrono>
#include <initializer_list>
#include <map>
#include <memory>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include "smrt/saved_model_info.h"
#include "smrt/tensor.h"

namespace smrt {

// Session settings; anything not covered by a typed field goes in `config_proto`, a
// serialized tensorflow.ConfigProto. The typed fields are applied after it, so they win.
struct SessionOptions {
  int intra_op_threads = 0;  // 0: TensorFlow's default
  int inter_op_threads = 0;  // < 0: run ops in the calling thread (lowest latency for small graphs)
  std::optional<bool> gpu_memory_growth;
  std::optional<double> gpu_memory_fraction;
  std::string visible_devices;  // e.g. "0,1"; empty: all
  std::string config_proto;

  // The serialized ConfigProto these options stand for.
  std::string serialize() const;
};

// Per-call settings of Signature::run.
struct RunOptions {
  // TensorFlow cancels the step once it has run this long and the run throws a
  // StatusError with ErrorCode::kDeadlineExceeded; zero: no limit.
  std::chrono::milliseconds timeout{0};
  // Whether each input's shape is checked against the SignatureDef before the run (a clear
  // InvalidInputError). false leaves shapes to TensorFlow, as TF Serving does: a declared
  // shape is not enforced, and a shape the graph cannot take fails with TensorFlow's own
  // InvalidArgument. Dtypes are always checked.
  bool check_shapes = true;
};

// Which runtime executes a model's signatures (Model::load).
enum class Backend {
  kTensorFlow,  // TensorFlow's session (libtensorflow)
  // OpenVINO (libopenvino_c), whose TensorFlow frontend converts the SavedModel's
  // serving_default signature; any signature it cannot run runs on TensorFlow instead
  // (Signature::backend_note says why).
  kOpenVINO,
  // OpenVINO where its outputs match TensorFlow's on a probe input (BackendOptions::tolerance),
  // TensorFlow elsewhere.
  kAuto,
};

// The backend's settings; the OpenVINO ones apply to signatures OpenVINO runs.
struct BackendOptions {
  Backend backend = Backend::kTensorFlow;
  std::string performance_hint = "LATENCY";  // OpenVINO's PERFORMANCE_HINT: LATENCY or THROUGHPUT
  int inference_threads = 0;                 // OpenVINO's INFERENCE_NUM_THREADS; 0: its choice
  // OpenVINO's INFERENCE_PRECISION_HINT: "f32" (TensorFlow's answers), "bf16" or "f16"
  // (faster where the CPU has them, less exact), "" for OpenVINO's choice (bf16 on CPUs with
  // AVX512_BF16 or AMX).
  std::string inference_precision = "f32";
  // kAuto keeps OpenVINO for a signature when every output element on the probe satisfies
  // |openvino - tensorflow| <= tolerance * (1 + |tensorflow|).
  double tolerance = 1e-3;
};

namespace detail {
struct CallEndpoints;  // a concrete function's call added to the graph (model.cc)
class SignatureBackend;  // backend.h
}  // namespace detail

class Session;  // the loaded TF_Session and graph, shared by a model's signatures

// A signature's inputs or outputs: indexable in run() order (sorted by key), and iterable as
// (key, spec) pairs: `for (const auto& [key, spec] : sig.inputs())`.
class TensorSpecs {
 public:
  explicit TensorSpecs(const std::vector<TensorSpec>& specs) noexcept : specs_(&specs) {}
  std::size_t size() const noexcept { return specs_->size(); }
  bool empty() const noexcept { return specs_->empty(); }
  const TensorSpec& operator[](std::size_t i) const { return (*specs_)[i]; }
  // The spec with this key, or nullptr.
  const TensorSpec* find(std::string_view key) const noexcept {
    for (const TensorSpec& spec : *specs_) {
      if (spec.key == key) return &spec;
    }
    return nullptr;
  }

  class iterator {
   public:
    using value_type = std::pair<const std::string&, const TensorSpec&>;
    explicit iterator(std::vector<TensorSpec>::const_iterator it) : it_(it) {}
    value_type operator*() const { return {it_->key, *it_}; }
    iterator& operator++() {
      ++it_;
      return *this;
    }
    bool operator!=(const iterator& other) const { return it_ != other.it_; }
    bool operator==(const iterator& other) const { return it_ == other.it_; }

   private:
    std::vector<TensorSpec>::const_iterator it_;
  };
  iterator begin() const { return iterator(specs_->begin()); }
  iterator end() const { return iterator(specs_->end()); }

 private:
  const std::vector<TensorSpec>* specs_;
};

class Signature {
 public:
  const SignatureInfo& info() const noexcept { return info_; }
  const std::string& key() const noexcept { return info_.key; }
  const std::string& method_name() const noexcept { return info_.method_name; }
  TensorSpecs inputs() const noexcept { return TensorSpecs(info_.inputs); }
  TensorSpecs outputs() const noexcept { return TensorSpecs(info_.outputs); }
  // Position of the input with this key in inputs(), or -1.
  int input_index(std::string_view key) const noexcept;
  // Position of the output with this key in outputs(), for run()'s `fetch`; throws
  // InvalidInputError naming the outputs there are when none has that key.
  std::size_t output_position(std::string_view key) const;
  // The runtime that runs this signature: "tensorflow" or "openvino".
  const std::string& backend() const noexcept { return backend_; }
  // Why TensorFlow runs it though another backend was asked for; empty otherwise.
  const std::string& backend_note() const noexcept { return backend_note_; }

  // Binding a call's inputs, given by key, to inputs() order, with the errors every front end
  // reports alike. bind_input returns the position of `key`; it throws InvalidInputError for a
  // key that is no input (naming the inputs there are) or one already bound (`bound(position)`
  // true). check_all_bound throws InvalidInputError naming every input not bound.
  template <class Bound>
  std::size_t bind_input(std::string_view key, const Bound& bound) const {
    const int position = input_index(key);
    if (position < 0) throw_no_such_input(key);
    if (bound(static_cast<std::size_t>(position))) throw_given_twice(key);
    return static_cast<std::size_t>(position);
  }
  template <class Bound>
  void check_all_bound(const Bound& bound) const {
    for (std::size_t i = 0; i < info_.inputs.size(); ++i) {
      if (!bound(i)) throw_missing(bound);
    }
  }

  // Runs with tensors keyed by input key; returns outputs keyed by output key. Thread-safe.
  std::map<std::string, Tensor> run(const std::map<std::string, Tensor>& inputs) const;
  // The same for a braced list, e.g. sig.run({{"x", Tensor::from_vector<float>({2, 3}, v)}}).
  std::map<std::string, Tensor> run(std::initializer_list<std::pair<std::string_view, const Tensor&>> inputs) const;
  // The allocation-free form: `inputs` in inputs() order, `outputs` receives outputs() in order.
  void run(const Tensor* inputs, Tensor* outputs) const;
  // The same with per-call options (a deadline); no allocation either.
  void run(const Tensor* inputs, Tensor* outputs, const RunOptions& options) const;
  std::map<std::string, Tensor> run(const std::map<std::string, Tensor>& inputs, const RunOptions& options) const;
  // Fetches only some outputs: `fetch[0..n_fetch)` are positions in outputs(), and `outputs[j]`
  // receives output fetch[j]. TensorFlow computes only what those need. No allocation for
  // signatures of ordinary size (up to 16 inputs and outputs); what a bound call runs.
  void run(const Tensor* inputs, const std::size_t* fetch, std::size_t n_fetch, Tensor* outputs,
           const RunOptions& options = {}) const;

  // InvalidInputError: no input is named `key`; names the inputs there are.
  [[noreturn]] void throw_no_such_input(std::string_view key) const;
  // Throws InputTypeError / InvalidInputError if a tensor of this dtype and shape does not fit
  // input `index` (what run() checks; check_shape false: ranks only, as RunOptions says).
  void check_input(std::size_t index, DType dtype, const int64_t* dims, int rank, bool check_shape) const;
  // Whether a run can leave TensorFlow holding an input tensor after it returns (a variable
  // assigned from it, a queue). False when every op the signature runs is stateless or only reads
  // state, checked at load: a caller may then wrap its own memory once, reuse that tensor for
  // many runs, and change or free the memory between them.
  bool may_keep_inputs() const noexcept { return may_keep_inputs_; }

 private:
  friend class Model;
  Signature(SignatureInfo info, std::shared_ptr<Session> session);
  [[noreturn]] void throw_given_twice(std::string_view key) const;
  // InputTypeError: input `index` was given `got` (a dtype).
  [[noreturn]] void throw_dtype_mismatch(std::size_t index, std::string_view got) const;
  template <class Bound>
  [[noreturn]] void throw_missing(const Bound& bound) const {
    std::string missing;
    for (std::size_t i = 0; i < info_.inputs.size(); ++i) {
      if (!bound(i)) missing += (missing.empty() ? "'" : ", '") + info_.inputs[i].key + "'";
    }
    throw InvalidInputError("missing input " + missing + " of signature '" + info_.key + "'");
  }
  // fetch nullptr: every output, in order.
  void run_pointers(const Tensor* const* inputs, const std::size_t* fetch, std::size_t n_fetch, Tensor* outputs,
                    const RunOptions& options) const;
  template <class Pairs>
  std::map<std::string, Tensor> run_named(const Pairs& inputs, const RunOptions& options) const;
  SignatureInfo info_;
  std::shared_ptr<Session> session_;
  struct Endpoints;
  std::shared_ptr<const Endpoints> endpoints_;  // resolved TF_Outputs, fixed at load
  std::shared_ptr<const detail::SignatureBackend> native_;  // null: the TensorFlow session runs it
  std::string backend_ = "tensorflow";
  std::string backend_note_;
  bool may_keep_inputs_ = true;
};

// A concrete function of the object tree with its call added to the graph: resolved once,
// run many times without lookups. Copies share the call; keep the Model alive (or closed) while
// using it: a closed model's functions throw ModelClosedError.
class ConcreteFunction {
 public:
  const std::string& name() const noexcept { return name_; }
  // Its flat user inputs, in the order run() takes them (TensorFlow's nest order: dict keys
  // sorted), and how many flat outputs it returns.
  const std::vector<TensorSpec>& inputs() const noexcept;
  std::size_t num_outputs() const noexcept;
  // Whether these tensors fit inputs() (count, dtypes, shapes).
  bool fits(const std::vector<Tensor>& inputs) const noexcept;
  // Runs it (dtype and shape checked against inputs()); returns its flat outputs, none for a
  // function without outputs. Thread-safe.
  std::vector<Tensor> run(const std::vector<Tensor>& inputs) const;

 private:
  friend class Model;
  ConcreteFunction(std::string name, std::shared_ptr<const detail::CallEndpoints> call,
                   std::shared_ptr<Session> session, std::string path);
  std::string name_;
  std::shared_ptr<const detail::CallEndpoints> call_;
  std::shared_ptr<Session> session_;
  std::string path_;  // the model's directory, for error messages
};

class Model {
 public:
  // Loads the MetaGraph with exactly these tags. Loads libtensorflow first if no library is
  // loaded yet (see runtime.h). Throws ModelNotFoundError, a StatusError (DataLoss for a
  // corrupt saved_model.pb, NotFound for a missing tag-set, TensorFlow's own codes), or
  // LibraryNotFoundError.
  // `backend`: which runtime runs the signatures; the TensorFlow session is loaded in every
  // case (it runs what another backend cannot, and the object tree). Throws
  // LibraryNotFoundError naming `pip install smrt-runtime[openvino]` when OpenVINO is asked for and
  // cannot be loaded.
  static Model load(const std::string& dir, const std::vector<std::string>& tags = {"serve"},
                    const SessionOptions& options = {}, const BackendOptions& backend = {});

  Model(Model&&) noexcept;
  Model& operator=(Model&&) noexcept;
  ~Model();

  const std::string& path() const noexcept { return path_; }
  const MetaGraphInfo& meta_graph() const noexcept { return meta_graph_; }
  // Callable signatures, by key (the init op is not one).
  const std::map<std::string, Signature, std::less<>>& signatures() const noexcept { return signatures_; }
  // Throws SignatureNotFoundError naming the keys there are.
  const Signature& signature(std::string_view key) const;
  // "serving_default" if there is one, else the only signature; throws SignatureNotFoundError.
  const Signature& default_signature() const;

  // The restored object tree (SavedObjectGraph) with each variable's graph binding; nullptr
  // for a SavedModel without one (TF1).
  const ObjectTree* object_tree() const noexcept {
    return meta_graph_.object_tree ? &*meta_graph_.object_tree : nullptr;
  }
  // The flat TensorSpecs of concrete function `name`'s user inputs, in the order call_function
  // takes them (TensorFlow's nest order: dict keys sorted). Throws NotFound-coded StatusError.
  const std::vector<TensorSpec>& function_inputs(const std::string& name) const;
  // Runs concrete function `name` of the object tree with its flat user inputs (dtype and shape
  // checked against function_inputs), its captured variables bound to the session's own
  // variables; returns its flat outputs (none for a function without outputs). The call is
  // added to the graph at first use. Thread-safe. Throws UnimplementedError-coded StatusError
  // when it captures an object smrt cannot bind to the session (naming it).
  std::vector<Tensor> call_function(const std::string& name, const std::vector<Tensor>& inputs) const;
  // The current value of variable object `node` of the object tree. Thread-safe.
  Tensor read_variable(int node) const;
  // Concrete function `name`, its call added to the graph at first use (throws as
  // call_function does).
  ConcreteFunction concrete_function(const std::string& name) const;

  // By path, as model.root reads in Python: `path` is the saved children's names joined by
  // '.' from the root ("mutate", "inner.f", "layer.kernel"; a leading "root." and "" name the
  // root; a name that holds a '.' is matched whole). Throws a NotFound-coded StatusError naming
  // the children there are.
  int object_at(std::string_view path) const;
  // Calls the saved function at `path` (a module's path calls its saved __call__) with flat
  // inputs: the first of its concrete functions traced before saving whose flat inputs fit
  // them, as TensorFlow's dispatch picks; NoMatchingFunctionError lists each one's inputs.
  std::vector<Tensor> call(std::string_view path, const std::vector<Tensor>& inputs) const;
  // The current value of the variable at `path` ("v", "inner.b").
  Tensor read_variable(std::string_view path) const;
  Tensor read_variable(const char* path) const { return read_variable(std::string_view(path)); }

  // Frees the session. Waits for runs in flight; later runs throw ModelClosedError.
  void close();
  bool closed() const;

 private:
  Model() = default;
  // Hands each signature OpenVINO can run (and, for kAuto, agrees with TensorFlow on) to it.
  void use_openvino(const std::vector<std::string>& tags, const BackendOptions& options);
  struct ObjectCalls;  // the calls and reads added to the graph so far
  // The call of concrete function `name`, added to the graph at first use.
  std::shared_ptr<const detail::CallEndpoints> prepared_call(const std::string& name) const;
  std::shared_ptr<ObjectCalls> object_calls_;
  std::string path_;
  MetaGraphInfo meta_graph_;
  std::shared_ptr<Session> session_;
  std::map<std::string, Signature, std::less<>> signatures_;
  std::map<std::string, std::string, std::less<>> unavailable_;  // key -> why it cannot run
};

// Which signatures of the MetaGraph with these tags the OpenVINO backend would run: key -> ""
// if OpenVINO converts and compiles it, else why TensorFlow would run it (before "auto"'s
// probe, which needs TensorFlow). Loads OpenVINO (LibraryNotFoundError if it cannot), never
// libtensorflow.
std::map<std::string, std::string> openvino_support(const std::string& dir, const std::vector<std::string>& tags = {"serve"});

}  // namespace smrt
