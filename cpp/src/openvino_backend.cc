#include "openvino_backend.h"

#include <algorithm>
#include <cctype>
#include <cstring>

#include "idle_pool.h"
#include "openvino_c_api.h"
#include "shape_text.h"
#include "small_array.h"

namespace smrt::detail {
namespace {

constexpr char kConverted[] = "serving_default";  // the signature OpenVINO's frontend converts

// OpenVINO's element type for a DType, or kDynamic when it has none smrt can hand it.
int element_type(DType dtype) {
  switch (dtype) {
    case DType::kFloat32: return ov::kF32;
    case DType::kFloat64: return ov::kF64;
    case DType::kFloat16: return ov::kF16;
    case DType::kBFloat16: return ov::kBF16;
    case DType::kInt8: return ov::kI8;
    case DType::kInt16: return ov::kI16;
    case DType::kInt32: return ov::kI32;
    case DType::kInt64: return ov::kI64;
    case DType::kUInt8: return ov::kU8;
    case DType::kUInt16: return ov::kU16;
    case DType::kUInt32: return ov::kU32;
    case DType::kUInt64: return ov::kU64;
    case DType::kBool: return ov::kBoolean;  // one byte per element in both
    default: return ov::kDynamic;
  }
}

// Ops that change state a converted model would freeze at load (OpenVINO turns variables into
// constants): variables, hash tables.
bool writes_state(const std::string& op) {
  static const char* const kPrefixes[] = {"Assign", "ResourceScatter", "ResourceApply", "ResourceSparseApply",
                                          "Scatter", "ResourceStridedSliceAssign", "LookupTableInsert",
                                          "LookupTableImport", "LookupTableRemove", "InitializeTable"};
  for (const char* prefix : kPrefixes) {
    if (op.rfind(prefix, 0) == 0) return true;
  }
  return false;
}

std::string first_writer(const std::vector<std::string>& ops) {
  for (const auto& op : ops) {
    if (writes_state(op)) return op;
  }
  return "";
}

// OpenVINO's words for a failed call, trimmed to their first lines (its reports are long). Take
// them at once: the C API keeps one last message for the whole process, which the next failure
// on any thread replaces, and sets it only when it caught an exception (for a status of its
// own, an argument it refuses, the message would be an older failure's).
std::string last_error(ov_status_e status) {
  const auto& api = ov::api();
  std::string message;
  if (status == ov::kGeneralError || status == ov::kNotImplemented || status == ov::kRequestBusy ||
      status == ov::kInferCancelled || status == ov::kUnknownException) {
    if (const char* last = api.ov_get_last_err_msg()) {  // a copy, ours to free
      message = last;
      api.ov_free(last);
    }
  }
  if (message.empty()) {
    const char* info = api.ov_get_error_info(status);
    message = info ? info : "status " + std::to_string(status);
  }
  std::size_t cut = 0;
  for (int lines = 0; lines < 6 && cut != std::string::npos; ++lines) cut = message.find('\n', cut + 1);
  if (cut != std::string::npos) message = message.substr(0, cut) + " ...";
  return message;
}

void check(ov_status_e status, const std::string& context, ErrorCode code = ErrorCode::kInternal) {
  if (status != ov::kOk) throw StatusError(code, context + ": OpenVINO: " + last_error(status));
}

// A run that fails inside OpenVINO is OpenVINO's failure, not the caller's: inputs it cannot
// take are refused before it runs (OpenVinoSignature::check_input).
ErrorCode run_failure(ov_status_e status) {
  return status == ov::kNotImplemented ? ErrorCode::kUnimplemented : ErrorCode::kInternal;
}

struct CoreFree {
  void operator()(ov_core* c) const { ov::api().ov_core_free(c); }
};
struct ModelFree {
  void operator()(ov_model* m) const { ov::api().ov_model_free(m); }
};
struct CompiledFree {
  void operator()(ov_compiled_model* m) const { ov::api().ov_compiled_model_free(m); }
};
struct PortFree {
  void operator()(ov_output_const_port* p) const { ov::api().ov_output_const_port_free(p); }
};
struct TensorFree {
  void operator()(ov_tensor* t) const { ov::api().ov_tensor_free(t); }
};
struct RequestFree {
  void operator()(ov_infer_request* r) const { ov::api().ov_infer_request_free(r); }
};
using CompiledPtr = std::unique_ptr<ov_compiled_model, CompiledFree>;
using TensorPtr = std::unique_ptr<ov_tensor, TensorFree>;
using RequestPtr = std::unique_ptr<ov_infer_request, RequestFree>;

// What a compiled input takes: each dimension's bounds (max -1: no bound), or any rank.
class PortShape {
 public:
  PortShape() = default;
  explicit PortShape(const ov_partial_shape_t& shape) : any_rank_(shape.rank.min != shape.rank.max) {
    if (!any_rank_) dims_.assign(shape.dims, shape.dims + shape.rank.min);
  }

  bool fits(const Tensor& t) const {
    if (any_rank_) return true;
    if (static_cast<std::size_t>(t.rank()) != dims_.size()) return false;
    for (int d = 0; d < t.rank(); ++d) {
      const ov_dimension_t& bounds = dims_[static_cast<std::size_t>(d)];
      if (t.dim(d) < bounds.min || (bounds.max >= 0 && t.dim(d) > bounds.max)) return false;
    }
    return true;
  }

  // "(1, None, 3)" as smrt writes shapes; a bounded dimension as "1..8".
  std::string str() const {
    if (any_rank_) return "any shape";
    std::string s = "(";
    for (std::size_t d = 0; d < dims_.size(); ++d) {
      const ov_dimension_t& b = dims_[d];
      s += d ? ", " : "";
      if (b.min == b.max) s += std::to_string(b.min);
      else if (b.max < 0 && b.min == 0) s += "None";
      else s += std::to_string(b.min) + ".." + (b.max < 0 ? std::string("") : std::to_string(b.max));
    }
    return s + (dims_.size() == 1 ? ",)" : ")");
  }

 private:
  bool any_rank_ = true;
  std::vector<ov_dimension_t> dims_;
};

// A port's name, element type and shape.
struct Port {
  std::string name;
  int type = ov::kDynamic;
  PortShape shape;
};

std::vector<Port> ports(const ov_compiled_model* compiled, bool inputs) {
  const auto& api = ov::api();
  std::size_t n = 0;
  check((inputs ? api.ov_compiled_model_inputs_size : api.ov_compiled_model_outputs_size)(compiled, &n),
        "listing the converted model's ports");
  std::vector<Port> out(n);
  for (std::size_t i = 0; i < n; ++i) {
    ov_output_const_port* raw = nullptr;
    check((inputs ? api.ov_compiled_model_input_by_index : api.ov_compiled_model_output_by_index)(compiled, i, &raw),
          "reading a port of the converted model");
    std::unique_ptr<ov_output_const_port, PortFree> port(raw);
    char* name = nullptr;
    if (api.ov_port_get_any_name(port.get(), &name) == ov::kOk && name) {
      out[i].name = name;
      api.ov_free(name);
    }
    check(api.ov_port_get_element_type(port.get(), &out[i].type), "reading a port's element type");
    ov_partial_shape_t shape{};
    check(api.ov_port_get_partial_shape(port.get(), &shape), "reading a port's shape");
    try {
      out[i].shape = PortShape(shape);
    } catch (...) {
      api.ov_partial_shape_free(&shape);
      throw;
    }
    api.ov_partial_shape_free(&shape);
  }
  return out;
}

// Each spec's port (by name) in `available`; an empty string, or why they do not line up.
std::string match_ports(const std::vector<TensorSpec>& specs, const std::vector<Port>& available, const char* what,
                        std::vector<std::size_t>& positions) {
  if (specs.size() != available.size()) {
    return "OpenVINO's converted model has " + std::to_string(available.size()) + " " + what + "s, the signature " +
           std::to_string(specs.size());
  }
  positions.clear();
  for (const TensorSpec& spec : specs) {
    auto found = std::find_if(available.begin(), available.end(), [&](const Port& p) { return p.name == spec.key; });
    if (found == available.end()) return std::string(what) + " '" + spec.key + "' has no port of that name in OpenVINO's converted model";
    if (found->type != element_type(spec.dtype)) {
      return std::string(what) + " '" + spec.key + "' is " + std::string(dtype_name(spec.dtype)) +
             " in the signature but another element type in OpenVINO's converted model";
    }
    positions.push_back(static_cast<std::size_t>(found - available.begin()));
  }
  return "";
}

// One compiled signature and its pool of infer requests: a call takes an idle request (or
// makes one), so concurrent calls run concurrently and each request serves one call at a time.
class OpenVinoSignature final : public SignatureBackend {
 public:
  OpenVinoSignature(std::shared_ptr<ov_core> core, CompiledPtr compiled, const SignatureInfo& info,
                    std::vector<std::size_t> in_ports, std::vector<PortShape> in_shapes,
                    std::vector<std::size_t> out_ports)
      : core_(std::move(core)), compiled_(std::move(compiled)), info_(info), in_ports_(std::move(in_ports)),
        in_shapes_(std::move(in_shapes)), out_ports_(std::move(out_ports)),
        context_("running signature '" + info.key + "' on OpenVINO") {
    for (const TensorSpec& spec : info_.inputs) in_types_.push_back(element_type(spec.dtype));
  }

  void run(const Tensor* const* inputs, const std::size_t* fetch, std::size_t n_fetch, Tensor* outputs,
           const RunOptions& options) const override {
    for (std::size_t i = 0; i < in_ports_.size(); ++i) check_input(i, *inputs[i]);
    Lease lease(*this);
    ov_infer_request* request = lease.get();
    const auto& api = ov::api();
    const std::string& context = context_;
    for (std::size_t i = 0; i < in_ports_.size(); ++i) {
      const Tensor& t = *inputs[i];
      const int rank = t.rank();
      SmallArray<int64_t, 8> dims(static_cast<std::size_t>(rank));
      for (int d = 0; d < rank; ++d) dims[static_cast<std::size_t>(d)] = t.dim(d);
      // The input's own memory (NumPy's, when it was lent to the Tensor): no copy. An empty
      // tensor may have no buffer; OpenVINO wants a pointer all the same.
      alignas(64) static unsigned char empty[64];
      void* data = t.raw_data() ? t.raw_data() : empty;
      ov_tensor* raw = nullptr;
      check(api.ov_tensor_create_from_host_ptr(in_types_[i], ov_shape_t{rank, dims.data()}, data, &raw), context);
      TensorPtr tensor(raw);
      check(api.ov_infer_request_set_input_tensor_by_index(request, in_ports_[i], tensor.get()), context);
    }
    infer(request, options, context);
    for (std::size_t j = 0; j < n_fetch; ++j) outputs[j] = output(request, fetch ? fetch[j] : j);
  }

  void close() override {
    pool_.close();
    compiled_.reset();
  }

 private:
  // A shape the compiled model does not take (smrt's own check against the SignatureDef lets
  // one through with check_shapes=False), refused before OpenVINO runs; Signature::run_pointers
  // then runs the call on TensorFlow, as the TensorFlow backend would.
  void check_input(std::size_t i, const Tensor& t) const {
    if (in_shapes_[i].fits(t)) return;
    throw StatusError(ErrorCode::kInvalidArgument,
                      context_ + ": input '" + info_.inputs[i].key + "' has shape " +
                          shape_string(t.shape().data(), t.rank()) + ", which OpenVINO's compiled model does not take " +
                          "(it takes " + in_shapes_[i].str() + ")");
  }

  // Output k of the finished request, copied out: the request reuses its buffers next call.
  Tensor output(ov_infer_request* request, std::size_t k) const {
    const auto& api = ov::api();
    const std::string& context = context_;
    ov_tensor* raw = nullptr;
    check(api.ov_infer_request_get_output_tensor_by_index(request, out_ports_[k], &raw), context);
    TensorPtr tensor(raw);
    std::size_t bytes = 0;
    void* data = nullptr;
    check(api.ov_tensor_get_byte_size(tensor.get(), &bytes), context);
    const DType dtype = info_.outputs[k].dtype;
    ov_shape_t shape{};
    Tensor out;
    if (api.ov_tensor_get_shape(tensor.get(), &shape) != ov::kOk) {
      // The C API cannot express a rank-0 shape (ov_shape_create wants rank > 0): a scalar.
      if (bytes != dtype_size(dtype)) check(api.ov_tensor_get_shape(tensor.get(), &shape), context);
      out = Tensor::allocate(dtype, nullptr, 0);
    } else {
      try {
        out = Tensor::allocate(dtype, shape.dims, static_cast<int>(shape.rank));
      } catch (...) {
        api.ov_shape_free(&shape);
        throw;
      }
      api.ov_shape_free(&shape);
    }
    check(api.ov_tensor_data(tensor.get(), &data), context);
    if (bytes != out.byte_size()) throw StatusError(ErrorCode::kInternal, context + ": output size mismatch");
    if (bytes) std::memcpy(out.raw_data(), data, bytes);
    return out;
  }

  // An infer request for one call, back to the pool afterwards (without allocating: IdlePool).
  class Lease {
   public:
    explicit Lease(const OpenVinoSignature& owner) : owner_(owner) {
      request_ = owner_.pool_.take([&owner] {
        ov_infer_request* raw = nullptr;
        check(ov::api().ov_compiled_model_create_infer_request(owner.compiled_.get(), &raw),
              "creating an OpenVINO infer request");
        return RequestPtr(raw);
      });
      if (!request_) throw ModelClosedError("the model of signature '" + owner_.info_.key + "' is closed");
    }
    ~Lease() { owner_.pool_.give_back(std::move(request_)); }
    Lease(const Lease&) = delete;
    Lease& operator=(const Lease&) = delete;
    ov_infer_request* get() const { return request_.get(); }

   private:
    const OpenVinoSignature& owner_;
    RequestPtr request_;
  };

  // A deadline runs the request asynchronously and cancels it when it passes, as TensorFlow
  // cancels a step: the call raises DeadlineExceeded and the request is free again.
  static void infer(ov_infer_request* request, const RunOptions& options, const std::string& context) {
    const auto& api = ov::api();
    if (options.timeout.count() <= 0) {
      if (const ov_status_e status = api.ov_infer_request_infer(request); status != ov::kOk) {
        throw StatusError(run_failure(status), context + ": OpenVINO: " + last_error(status));
      }
      return;
    }
    check(api.ov_infer_request_start_async(request), context);
    const ov_status_e waited = api.ov_infer_request_wait_for(request, options.timeout.count());
    if (waited == ov::kOk) return;
    // OpenVINO's words for a failed run, taken before cancel and wait replace them.
    const std::string why = waited == ov::kResultNotReady ? "" : last_error(waited);
    api.ov_infer_request_cancel(request);
    api.ov_infer_request_wait(request);  // returns INFER_CANCELLED or the finished run's status
    if (waited == ov::kResultNotReady) {
      throw StatusError(ErrorCode::kDeadlineExceeded,
                        context + ": the run took longer than " + std::to_string(options.timeout.count()) + " ms");
    }
    throw StatusError(run_failure(waited), context + ": OpenVINO: " + why);
  }

  std::shared_ptr<ov_core> core_;
  CompiledPtr compiled_;
  SignatureInfo info_;
  std::vector<std::size_t> in_ports_;
  std::vector<PortShape> in_shapes_;  // what the compiled model takes, in inputs() order
  std::vector<std::size_t> out_ports_;
  std::vector<int> in_types_;
  const std::string context_;  // for error messages, made once
  mutable IdlePool<RequestPtr> pool_;
};

std::string upper(std::string s) {
  for (char& c : s) c = static_cast<char>(std::toupper(static_cast<unsigned char>(c)));
  return s;
}

}  // namespace

std::string openvino_refuses(const MetaGraphInfo& meta, const std::vector<std::string>& tags, const std::string& key) {
  if (key != kConverted) return "OpenVINO's TensorFlow frontend converts only the serving_default signature";
  if (!(tags.size() == 1 && tags[0] == "serve")) return "OpenVINO's TensorFlow frontend reads only the 'serve' MetaGraph";
  const SignatureInfo* sig = meta.find_signature(key);
  if (!sig) return "no such signature";
  for (const auto* specs : {&sig->inputs, &sig->outputs}) {
    for (const TensorSpec& spec : *specs) {
      const char* what = specs == &sig->inputs ? "input" : "output";
      if (spec.tensor_name.empty()) return std::string(what) + " '" + spec.key + "' is a sparse or composite tensor";
      if (element_type(spec.dtype) == ov::kDynamic) {
        return std::string(what) + " '" + spec.key + "' is " + std::string(dtype_name(spec.dtype)) + ", which OpenVINO does not run";
      }
    }
  }
  if (!meta.ops_run) return "the graph is too large for smrt to check which signatures change the model's state";
  {
    auto own = meta.ops_run->by_signature.find(key);
    if (own != meta.ops_run->by_signature.end()) {
      if (std::string op = first_writer(own->second); !op.empty()) {
        return "it changes the model's state (" + op + "), which OpenVINO's converted model cannot";
      }
    }
    // Another signature (or a saved function) that writes variables would change what this
    // one reads on TensorFlow, while OpenVINO keeps the values it converted at load.
    for (const auto& [other, ops] : meta.ops_run->by_signature) {
      if (other == key || other == "__saved_model_init_op") continue;
      if (std::string op = first_writer(ops); !op.empty()) {
        return "signature '" + other + "' changes the model's state (" + op +
               "), which OpenVINO's converted model would not see";
      }
    }
    if (std::string op = first_writer(meta.ops_run->by_functions); !op.empty()) {
      return "a saved function changes the model's state (" + op + "), which OpenVINO's converted model would not see";
    }
  }
  return "";
}

std::map<std::string, BackendChoice> openvino_signatures(const std::string& dir, const std::vector<std::string>& tags,
                                                         const MetaGraphInfo& meta, const BackendOptions& options) {
  const std::string hint = upper(options.performance_hint);
  if (hint != "LATENCY" && hint != "THROUGHPUT" && hint != "CUMULATIVE_THROUGHPUT") {
    throw InvalidInputError("performance_hint must be 'latency' or 'throughput', not '" + options.performance_hint + "'");
  }
  if (options.inference_threads < 0) throw InvalidInputError("inference_threads must be >= 0 (0 lets OpenVINO choose)");
  const std::string& precision = options.inference_precision;
  if (!precision.empty() && precision != "f32" && precision != "bf16" && precision != "f16") {
    throw InvalidInputError("inference_precision must be 'f32', 'bf16', 'f16' or '' (OpenVINO's choice), not '" +
                            precision + "'");
  }
  const auto& api = ov::api();  // loads libopenvino_c, or throws LibraryNotFoundError

  std::map<std::string, BackendChoice> choices;
  bool wanted = false;
  for (const SignatureInfo& sig : meta.signatures) {
    choices[sig.key].why_not = openvino_refuses(meta, tags, sig.key);
    wanted = wanted || choices[sig.key].why_not.empty();
  }
  if (!wanted) return choices;
  BackendChoice& choice = choices[kConverted];
  const SignatureInfo& sig = *meta.find_signature(kConverted);

  ov_core* raw_core = nullptr;
  check(api.ov_core_create(&raw_core), "starting OpenVINO");
  std::shared_ptr<ov_core> core(raw_core, CoreFree{});
  ov_model* raw_model = nullptr;
  if (const ov_status_e status = api.ov_core_read_model(core.get(), dir.c_str(), nullptr, &raw_model); status != ov::kOk) {
    choice.why_not = "OpenVINO could not convert it: " + last_error(status);
    return choices;
  }
  std::unique_ptr<ov_model, ModelFree> model(raw_model);
  ov_compiled_model* raw_compiled = nullptr;
  const std::string threads = std::to_string(options.inference_threads);
  // The C API takes properties as variadic (key, value) pairs: hint, precision, then threads.
  const char* props[6] = {"PERFORMANCE_HINT", hint.c_str()};
  std::size_t n = 2;
  if (!precision.empty()) {
    props[n++] = "INFERENCE_PRECISION_HINT";
    props[n++] = precision.c_str();
  }
  if (options.inference_threads > 0) {
    props[n++] = "INFERENCE_NUM_THREADS";
    props[n++] = threads.c_str();
  }
  const auto compile = api.ov_core_compile_model;
  const ov_status_e status =
      n == 2   ? compile(core.get(), model.get(), "CPU", n, &raw_compiled, props[0], props[1])
      : n == 4 ? compile(core.get(), model.get(), "CPU", n, &raw_compiled, props[0], props[1], props[2], props[3])
               : compile(core.get(), model.get(), "CPU", n, &raw_compiled, props[0], props[1], props[2], props[3],
                         props[4], props[5]);
  if (status != ov::kOk) {
    choice.why_not = "OpenVINO could not compile it: " + last_error(status);
    return choices;
  }
  CompiledPtr compiled(raw_compiled);
  std::vector<std::size_t> in_ports, out_ports;
  const std::vector<Port> compiled_inputs = ports(compiled.get(), true);
  std::string why = match_ports(sig.inputs, compiled_inputs, "input", in_ports);
  if (why.empty()) why = match_ports(sig.outputs, ports(compiled.get(), false), "output", out_ports);
  if (!why.empty()) {
    choice.why_not = why;
    return choices;
  }
  std::vector<PortShape> in_shapes;
  for (std::size_t port : in_ports) in_shapes.push_back(compiled_inputs[port].shape);
  choice.runner = std::make_shared<OpenVinoSignature>(core, std::move(compiled), sig, std::move(in_ports),
                                                      std::move(in_shapes), std::move(out_ports));
  return choices;
}

}  // namespace smrt::detail

std::map<std::string, std::string> smrt::openvino_support(const std::string& dir, const std::vector<std::string>& tags) {
  const SavedModelInfo info = inspect(dir, /*with_ops=*/false, /*with_functions=*/false, /*with_tree=*/true,
                                      /*tree_tags=*/&tags, /*with_ops_run=*/true);
  BackendOptions options;
  options.backend = Backend::kOpenVINO;
  std::map<std::string, std::string> support;
  for (auto& [key, choice] : detail::openvino_signatures(dir, tags, info.meta_graph(tags), options)) {
    if (key == "__saved_model_init_op") continue;
    if (choice.runner) choice.runner->close();
    support.emplace(key, choice.why_not);
  }
  return support;
}
