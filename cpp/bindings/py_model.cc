#include "py_model.h"

#include <pybind11/stl.h>

#include <algorithm>
#include <atomic>
#include <chrono>
#include <cmath>
#include <memory>
#include <optional>

#include "fast_call.h"
#include "numpy_convert.h"
#include "py_bound_call.h"
#include "../src/small_array.h"
#include "py_metadata.h"
#include "smrt/model.h"

namespace py = pybind11;

namespace smrt::bindings {

using ::smrt::detail::SmallArray;
namespace {

// A call's inputs in inputs() order, each an owned reference (converting one input can run
// Python code that drops another) or null while not given.
class CallValues {
 public:
  explicit CallValues(std::size_t n) : items_(n) {}
  CallValues(const CallValues&) = delete;
  CallValues& operator=(const CallValues&) = delete;
  ~CallValues() {
    for (PyObject* item : items_) Py_XDECREF(item);
  }
  std::size_t size() const { return items_.size(); }
  bool bound(std::size_t i) const { return items_[i] != nullptr; }
  PyObject* operator[](std::size_t i) const { return items_[i]; }
  void set(std::size_t i, PyObject* value) {
    Py_INCREF(value);
    Py_XSETREF(items_[i], value);
  }

 private:
  SmallArray<PyObject*> items_;
};

// No GIL in this scope (PyEval_SaveThread itself allocates nothing).
class WithoutGil {
 public:
  WithoutGil() : state_(PyEval_SaveThread()) {}
  WithoutGil(const WithoutGil&) = delete;
  WithoutGil& operator=(const WithoutGil&) = delete;
  ~WithoutGil() { PyEval_RestoreThread(state_); }

 private:
  PyThreadState* state_;
};

// One callable signature. Holds the Python Model object, so the session outlives the call.
class PySignature {
 public:
  PySignature(py::object model, const Signature& sig, bool check_shapes = true)
      : model_(std::move(model)), sig_(sig), check_shapes_(check_shapes) {
    // Interned once: a call's keyword names are matched to inputs by identity first.
    for (const auto& [key, spec] : sig.inputs()) input_names_.push_back(interned(key));
    for (const auto& [key, spec] : sig.outputs()) output_keys_.push_back(interned(key));
    if (!sig.may_keep_inputs()) reused_inputs_ = std::make_unique<ReusedInput[]>(sig.inputs().size());
  }

  // sig(x=...), sig(dict), sig(array): the vectorcall entry (fast_call.h).
  PyObject* call(PyObject* const* args, std::size_t nargs, PyObject* kwnames) const {
    CallValues values(input_names_.size());
    if (nargs > 1) fail_positional(nargs);
    if (nargs == 1) {
      PyObject* arg = args[0];
      if (PyDict_Check(arg)) {
        assign_named(py::reinterpret_borrow<py::dict>(arg), values);
      } else if (values.size() == 1) {
        values.set(0, arg);
      } else {
        fail_positional(1);
      }
    }
    if (kwnames) {
      const Py_ssize_t n_kw = PyTuple_GET_SIZE(kwnames);
      for (Py_ssize_t k = 0; k < n_kw; ++k) {
        assign(PyTuple_GET_ITEM(kwnames, k), args[nargs + static_cast<std::size_t>(k)], values);
      }
    }
    check_missing(values);
    RunOptions options;
    options.check_shapes = check_shapes_;
    return invoke(values, options);
  }

  // sig.run(inputs, timeout=seconds, check_shapes=..., fetch=keys): inputs as one dict, and a
  // deadline TensorFlow enforces by cancelling the step (DeadlineExceededError); None: no
  // deadline. check_shapes None: as the signature was made (smrt.load's check_shapes). fetch:
  // the output keys to return (TensorFlow runs only the ops they need); None: every output.
  py::dict run(const py::dict& inputs, std::optional<double> timeout, std::optional<bool> check_shapes,
               const py::object& fetch) const {
    CallValues values(input_names_.size());
    assign_named(inputs, values);
    check_missing(values);
    RunOptions options;
    options.check_shapes = check_shapes.value_or(check_shapes_);
    if (timeout) options.timeout = timeout_ms(*timeout);
    if (fetch.is_none()) return py::reinterpret_steal<py::dict>(invoke(values, options));
    const std::vector<std::size_t> positions = fetch_positions(fetch);
    return py::reinterpret_steal<py::dict>(invoke(values, options, positions.data(), positions.size()));
  }

  // sig.bind(inputs, outputs): a BoundCall over these arrays (py_bound_call.h).
  std::unique_ptr<BoundCall> bind(const py::dict& inputs, const py::dict& outputs, std::optional<double> timeout,
                                  std::optional<bool> check_shapes) const {
    RunOptions options;
    options.check_shapes = check_shapes.value_or(check_shapes_);
    if (timeout) options.timeout = timeout_ms(*timeout);
    CallValues values(input_names_.size());
    assign_named(inputs, values);
    check_missing(values);
    std::vector<py::object> arrays;
    for (std::size_t i = 0; i < values.size(); ++i) arrays.push_back(py::reinterpret_borrow<py::object>(values[i]));
    return std::make_unique<BoundCall>(model_, sig_, options, arrays, outputs);
  }

  const Signature& signature() const { return sig_; }

 private:
  static py::object interned(const std::string& key) {
    PyObject* name = PyUnicode_FromStringAndSize(key.data(), static_cast<Py_ssize_t>(key.size()));
    if (!name) {  // a key that is not UTF-8 cannot be a keyword; keep it matchable by value
      PyErr_Clear();
      name = PyUnicode_DecodeUTF8(key.data(), static_cast<Py_ssize_t>(key.size()), "surrogateescape");
      if (!name) throw py::error_already_set();
    }
    PyUnicode_InternInPlace(&name);
    return py::reinterpret_steal<py::object>(name);
  }

  std::chrono::milliseconds timeout_ms(double timeout) const {
    if (std::isnan(timeout)) throw InvalidInputError("timeout must be a number of seconds or None, not nan");
    if (timeout <= 0) {
      throw StatusError(ErrorCode::kDeadlineExceeded,
                        "running signature '" + sig_.key() + "': the deadline passed before the run started");
    }
    // Rounded up, so a small positive timeout never becomes "no limit"; capped at a year.
    const double ms = std::ceil(std::min(timeout, 365.0 * 86400.0) * 1e3);
    return std::chrono::milliseconds(static_cast<int64_t>(ms));
  }

  // Positions in outputs() of run()'s `fetch` keys: one or more, each once.
  std::vector<std::size_t> fetch_positions(const py::object& fetch) const {
    if (py::isinstance<py::str>(fetch) || py::isinstance<py::bytes>(fetch) || !py::isinstance<py::sequence>(fetch)) {
      throw InvalidInputError("fetch of signature '" + sig_.key() + "' must be a list of output keys, not " +
                              std::string(Py_TYPE(fetch.ptr())->tp_name));
    }
    std::vector<std::size_t> positions;
    for (const py::handle key : fetch) {
      if (!PyUnicode_Check(key.ptr())) {
        throw InvalidInputError("output names of signature '" + sig_.key() + "' must be str, got " +
                                std::string(Py_TYPE(key.ptr())->tp_name));
      }
      const std::string name = py::str(key);
      const std::size_t position = sig_.output_position(name);
      if (std::find(positions.begin(), positions.end(), position) != positions.end()) {
        throw InvalidInputError("output '" + name + "' of signature '" + sig_.key() + "' is fetched twice");
      }
      positions.push_back(position);
    }
    if (positions.empty()) throw InvalidInputError("fetch of signature '" + sig_.key() + "' names no output");
    return positions;
  }

  // A new reference to the outputs dict: every output, or the `n_fetch` at positions `fetch`.
  PyObject* invoke(const CallValues& values, const RunOptions& options, const std::size_t* fetch = nullptr,
                   std::size_t n_fetch = 0) const {
    const std::size_t n_in = values.size(), n_out = fetch ? n_fetch : output_keys_.size();
    py::object result;
    Loans loans;  // declared before the inputs: it must outlive them
    {
      SmallArray<Tensor> inputs(n_in);
      SmallArray<std::unique_ptr<ReusedInput::Wrapped>> reused(n_in);
      Loans* lend = lend_inputs_->load(std::memory_order_relaxed) ? &loans : nullptr;
      for (std::size_t i = 0; i < n_in; ++i) {
        InPlace in_place{lend, reused_inputs_ ? &reused_inputs_[i] : nullptr, nullptr};
        inputs[i] = to_tensor(values[i], sig_, i, in_place);
        reused[i] = std::move(in_place.reused);
      }
      SmallArray<Tensor> outputs(n_out);
      if (release_gil_) {
        WithoutGil release;
        run_native(inputs.data(), fetch, n_out, outputs.data(), options);
      } else {
        run_native(inputs.data(), fetch, n_out, outputs.data(), options);
      }
      result = py::reinterpret_steal<py::object>(PyDict_New());
      if (!result) throw py::error_already_set();
      for (std::size_t i = 0; i < n_out; ++i) {
        const std::size_t position = fetch ? fetch[i] : i;
        PyObject* array = to_numpy(std::move(outputs[i]), sig_.outputs()[position].key);
        if (!array) throw py::error_already_set();
        const int failed = PyDict_SetItem(result.ptr(), output_keys_[position].ptr(), array);
        Py_DECREF(array);
        if (failed) throw py::error_already_set();
      }
      for (std::size_t i = 0; i < n_in; ++i) {
        if (!reused[i]) continue;
        reused[i]->tensor = std::move(inputs[i]);
        reused_inputs_[i].keep(std::move(reused[i]));
      }
    }  // the input tensors go: TensorFlow hands lent arrays back unless it kept them
    if (!loans.all_returned()) stop_lending();
    return result.release().ptr();
  }

  void run_native(const Tensor* inputs, const std::size_t* fetch, std::size_t n_out, Tensor* outputs,
                  const RunOptions& options) const {
    if (fetch) sig_.run(inputs, fetch, n_out, outputs, options);
    else sig_.run(inputs, outputs, options);
  }

  // TensorFlow kept an input buffer past the call (say, a signature assigned it to a variable):
  // the model state now lives in the caller's array. Tell them, and copy from now on.
  void stop_lending() const {
    lend_inputs_->store(false);
    const std::string message =
        "signature '" + sig_.key() + "' kept a reference to an input array after the call (for example, it "
        "assigned the input to a variable), so the model now shares that array's memory: do not modify it. "
        "smrt copies this signature's inputs from now on.";
    if (PyErr_WarnEx(PyExc_RuntimeWarning, message.c_str(), 1) < 0) throw py::error_already_set();
  }

  // Binds one named value: by identity with an interned input name (a keyword written in the
  // caller's code is interned too), else by value, with the errors Signature::bind_input gives.
  void assign(PyObject* name, PyObject* value, CallValues& values) const {
    for (std::size_t i = 0; i < input_names_.size(); ++i) {
      if (input_names_[i].ptr() == name && !values.bound(i)) {
        values.set(i, value);
        return;
      }
    }
    if (!PyUnicode_Check(name)) {
      throw InvalidInputError("input names of signature '" + sig_.key() + "' must be str, got " +
                              std::string(Py_TYPE(name)->tp_name));
    }
    Py_ssize_t size = 0;
    const char* utf8 = PyUnicode_AsUTF8AndSize(name, &size);
    if (!utf8) {  // lone surrogates: no input can have that name
      PyErr_Clear();
      const std::string shown = py::repr(name);  // '\ud800', quotes and all
      sig_.throw_no_such_input(shown.substr(1, shown.size() - 2));
    }
    const auto bound = [&](std::size_t i) { return values.bound(i); };
    values.set(sig_.bind_input({utf8, static_cast<std::size_t>(size)}, bound), value);
  }

  void assign_named(const py::dict& named, CallValues& values) const {
    for (auto item : named) assign(item.first.ptr(), item.second.ptr(), values);
  }

  void check_missing(const CallValues& values) const {
    sig_.check_all_bound([&](std::size_t i) { return values.bound(i); });
  }

  [[noreturn]] void fail_positional(std::size_t count) const {
    throw InvalidInputError("signature '" + sig_.key() + "' takes " + std::to_string(sig_.inputs().size()) +
                            " inputs (" + input_list() + "): pass them by name, or one dict; got " +
                            std::to_string(count) + " positional argument(s)");
  }

  std::string input_list() const {
    std::string keys;
    for (const auto& [key, spec] : sig_.inputs()) keys += (keys.empty() ? "" : ", ") + key;
    return keys.empty() ? "none" : keys;
  }

  py::object model_;
  const Signature& sig_;
  bool check_shapes_;  // smrt.load(check_shapes=...): the default of every call
  std::vector<py::object> input_names_;  // interned str, in inputs() order
  std::vector<py::object> output_keys_;  // interned str, in outputs() order
  // Whether aligned inputs are lent to TensorFlow in place; cleared for good once it keeps one.
  std::unique_ptr<std::atomic<bool>> lend_inputs_ = std::make_unique<std::atomic<bool>>(true);
  // One per input when the signature keeps no input (ReusedInput); else null and arrays are lent.
  std::unique_ptr<ReusedInput[]> reused_inputs_;
 public:
  bool release_gil_ = true;  // smrt.load(release_gil=...): see python/smrt/model.py
};

// A concrete function of the object tree, resolved once (NativeModel.concrete_function):
// calls go straight to its endpoints. Holds the NativeModel so the session outlives it.
class PyConcreteFunction {
 public:
  PyConcreteFunction(py::object model, ConcreteFunction function)
      : model_(std::move(model)), function_(std::move(function)) {}

  // Its flat user inputs (anything array-like, converted as a signature's inputs are; with
  // `lend`, aligned arrays reach TensorFlow without a copy). Returns its flat outputs, and
  // whether TensorFlow handed every lent array back (false: it kept one, e.g. assigned it to
  // a variable, which now shares that array's memory).
  py::tuple call(const py::sequence& values, bool lend) const {
    const std::vector<TensorSpec>& specs = function_.inputs();
    const std::string& name = function_.name();
    if (values.size() != specs.size()) {
      throw InvalidInputError("concrete function '" + name + "' takes " + std::to_string(specs.size()) +
                              " flat inputs, got " + std::to_string(values.size()));
    }
    py::list result;
    Loans loans;  // declared before the inputs: it must outlive them
    {
      std::vector<Tensor> inputs(specs.size());
      for (std::size_t i = 0; i < specs.size(); ++i) {
        py::object value = values[i];
        inputs[i] = to_tensor(value.ptr(), specs[i], name, lend ? &loans : nullptr);
      }
      std::vector<Tensor> outputs;
      {
        py::gil_scoped_release release;
        outputs = function_.run(inputs);
      }
      for (std::size_t i = 0; i < outputs.size(); ++i) {
        PyObject* array = to_numpy(std::move(outputs[i]), "output " + std::to_string(i) + " of '" + name + "'");
        if (!array) throw py::error_already_set();
        result.append(py::reinterpret_steal<py::object>(array));
      }
    }  // the input tensors go: TensorFlow hands lent arrays back unless it kept them
    return py::make_tuple(result, loans.all_returned());
  }

  const ConcreteFunction& function() const noexcept { return function_; }

 private:
  py::object model_;
  ConcreteFunction function_;
};

Model load_model(const std::string& path, const std::vector<std::string>& tags, int intra_op_threads,
                 int inter_op_threads, std::optional<bool> gpu_memory_growth,
                 std::optional<double> gpu_memory_fraction, const std::string& visible_devices,
                 const py::bytes& config_proto, const std::string& backend_name, const std::string& performance_hint,
                 int inference_threads, const std::string& inference_precision, double tolerance) {
  SessionOptions options;
  options.intra_op_threads = intra_op_threads;
  options.inter_op_threads = inter_op_threads;
  options.gpu_memory_growth = gpu_memory_growth;
  options.gpu_memory_fraction = gpu_memory_fraction;
  options.visible_devices = visible_devices;
  options.config_proto = config_proto;
  BackendOptions backend;
  if (backend_name == "openvino") backend.backend = Backend::kOpenVINO;
  else if (backend_name == "auto") backend.backend = Backend::kAuto;
  else if (backend_name != "tensorflow") {
    throw InvalidInputError("backend must be 'tensorflow', 'openvino' or 'auto', not '" + backend_name + "'");
  }
  backend.performance_hint = performance_hint;
  backend.inference_threads = inference_threads;
  backend.inference_precision = inference_precision;
  backend.tolerance = tolerance;
  py::gil_scoped_release release;  // loading takes a while; let other threads run
  return Model::load(path, tags, options, backend);
}

}  // namespace

void register_model(py::module_& m) {
  register_bound_call(m);
  py::class_<PySignature> signature(m, "NativeSignature",
                                    py::custom_type_setup(&enable_vectorcall<PySignature, &PySignature::call>));
  signature
      .def(py::init([](py::object model, const std::string& key, bool check_shapes) {
             return PySignature(model, model.cast<const Model&>().signature(key), check_shapes);
           }),
           py::arg("model"), py::arg("key"), py::arg("check_shapes") = true)
      .def_property_readonly("key", [](const PySignature& s) { return s.signature().key(); })
      .def_readwrite("release_gil", &PySignature::release_gil_)
      .def_property_readonly("backend", [](const PySignature& s) { return s.signature().backend(); })
      .def_property_readonly("backend_note", [](const PySignature& s) { return s.signature().backend_note(); })
      .def_property_readonly("may_keep_inputs", [](const PySignature& s) { return s.signature().may_keep_inputs(); })
      .def("run", &PySignature::run, py::arg("inputs"), py::kw_only(), py::arg("timeout") = py::none(),
           py::arg("check_shapes") = py::none(), py::arg("fetch") = py::none())
      .def("bind", &PySignature::bind, py::arg("inputs"), py::arg("outputs"), py::kw_only(),
           py::arg("timeout") = py::none(), py::arg("check_shapes") = py::none());
  // `sig(...)` on a Python subclass (smrt.Signature) takes the same vectorcall entry.
  m.def("inherit_fast_call", [signature](py::type subclass) {
    inherit_vectorcall(reinterpret_cast<PyTypeObject*>(subclass.ptr()), reinterpret_cast<PyTypeObject*>(signature.ptr()));
  });

  py::class_<PyConcreteFunction>(m, "NativeConcreteFunction")
      .def_property_readonly("name", [](const PyConcreteFunction& f) { return f.function().name(); })
      .def("__call__", &PyConcreteFunction::call, py::arg("inputs"), py::arg("lend") = true);

  py::class_<Model>(m, "NativeModel")
      .def(py::init(&load_model), py::arg("path"), py::arg("tags"), py::arg("intra_op_threads") = 0,
           py::arg("inter_op_threads") = 0, py::arg("gpu_memory_growth") = py::none(),
           py::arg("gpu_memory_fraction") = py::none(), py::arg("visible_devices") = "",
           py::arg("config_proto") = py::bytes(), py::arg("backend") = "tensorflow",
           py::arg("performance_hint") = "latency", py::arg("inference_threads") = 0,
           py::arg("inference_precision") = "f32", py::arg("tolerance") = 1e-3)
      .def("meta_graph", [](const Model& model) { return meta_graph_to_python(model.meta_graph()); })
      .def("signature_keys", [](const Model& model) {
        std::vector<std::string> keys;
        for (const auto& [key, sig] : model.signatures()) keys.push_back(key);
        return keys;
      })
      .def("signature", [](py::object self, const std::string& key) {
        return PySignature(self, self.cast<const Model&>().signature(key));
      })
      .def("default_signature", [](py::object self) {
        return PySignature(self, self.cast<const Model&>().default_signature());
      })
      .def("object_tree", [](const Model& model) -> py::object {
        const ObjectTree* tree = model.object_tree();
        return tree ? object_tree_to_python(*tree) : py::object(py::none());
      })
      .def("concrete_function", [](py::object self, const std::string& name) {
        const Model& model = self.cast<const Model&>();
        std::optional<ConcreteFunction> function;
        {
          py::gil_scoped_release release;  // the first use adds its call to the graph
          function.emplace(model.concrete_function(name));
        }
        return PyConcreteFunction(self, std::move(*function));
      }, py::arg("name"))
      .def("read_variable", [](const Model& model, int node) {
        Tensor value;
        {
          py::gil_scoped_release release;
          value = model.read_variable(node);
        }
        PyObject* array = to_numpy(std::move(value), "variable");
        if (!array) throw py::error_already_set();
        return py::reinterpret_steal<py::object>(array);
      }, py::arg("node"))
      .def("close", [](Model& model) {
        py::gil_scoped_release release;  // waits for runs in flight, which may need the GIL to finish
        model.close();
      })
      .def_property_readonly("closed", &Model::closed);
}

}  // namespace smrt::bindings
