#include "py_model.h"

#include <pybind11/stl.h>

#include <algorithm>
#include <atomic>
#include <chrono>
#include <cmath>
#include <memory>
#include <optional>

#include "numpy_convert.h"
#include "py_metadata.h"
#include "smrt/model.h"

namespace py = pybind11;

namespace smrt::bindings {
namespace {

// One callable signature. Holds the Python Model object, so the session outlives the call.
class PySignature {
 public:
  PySignature(py::object model, const Signature& sig, bool check_shapes = true)
      : model_(std::move(model)), sig_(sig), check_shapes_(check_shapes) {
    for (const auto& [key, spec] : sig.outputs()) output_keys_.push_back(py::str(key));
  }

  py::dict call(const py::args& args, const py::kwargs& kwargs) const {
    const std::size_t n_in = sig_.inputs().size();
    // Owned references: converting one input can run Python code that drops another.
    std::vector<py::object> values(n_in);
    if (args.size() > 1) fail_positional(args.size());
    if (args.size() == 1) {
      py::object arg = args[0];
      if (PyDict_Check(arg.ptr())) {
        assign_named(arg.cast<py::dict>(), values);
      } else if (n_in == 1) {
        values[0] = arg;
      } else {
        fail_positional(1);
      }
    }
    assign_named(kwargs, values);
    check_missing(values);
    RunOptions options;
    options.check_shapes = check_shapes_;
    return invoke(values, options);
  }

  // sig.run(inputs, timeout=seconds, check_shapes=...): inputs as one dict, and a deadline
  // TensorFlow enforces by cancelling the step (DeadlineExceededError); None: no deadline.
  // check_shapes None: as the signature was made (smrt.load's check_shapes).
  py::dict run(const py::dict& inputs, std::optional<double> timeout, std::optional<bool> check_shapes) const {
    std::vector<py::object> values(sig_.inputs().size());
    assign_named(inputs, values);
    check_missing(values);
    RunOptions options;
    options.check_shapes = check_shapes.value_or(check_shapes_);
    if (timeout) {
      if (std::isnan(*timeout)) throw InvalidInputError("timeout must be a number of seconds or None, not nan");
      if (*timeout <= 0) {
        throw StatusError(ErrorCode::kDeadlineExceeded,
                          "running signature '" + sig_.key() + "': the deadline passed before the run started");
      }
      // Rounded up, so a small positive timeout never becomes "no limit"; capped at a year.
      const double ms = std::ceil(std::min(*timeout, 365.0 * 86400.0) * 1e3);
      options.timeout = std::chrono::milliseconds(static_cast<int64_t>(ms));
    }
    return invoke(values, options);
  }

  const Signature& signature() const { return sig_; }

 private:
  py::dict invoke(const std::vector<py::object>& values, const RunOptions& options) const {
    const std::size_t n_in = values.size();
    py::dict result;
    Loans loans;  // declared before the inputs: it must outlive them
    {
      std::vector<Tensor> inputs(n_in);
      Loans* lend = lend_inputs_->load(std::memory_order_relaxed) ? &loans : nullptr;
      for (std::size_t i = 0; i < n_in; ++i) inputs[i] = to_tensor(values[i].ptr(), sig_, i, lend);
      std::vector<Tensor> outputs(output_keys_.size());
      {
        py::gil_scoped_release release;
        sig_.run(inputs.data(), outputs.data(), options);
      }
      for (std::size_t i = 0; i < outputs.size(); ++i) {
        PyObject* array = to_numpy(std::move(outputs[i]), sig_.outputs()[i].key);
        if (!array) throw py::error_already_set();
        result[output_keys_[i]] = py::reinterpret_steal<py::object>(array);
      }
    }  // the input tensors go: TensorFlow hands lent arrays back unless it kept them
    if (!loans.all_returned()) stop_lending();
    return result;
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

  void assign_named(const py::dict& named, std::vector<py::object>& values) const {
    const auto bound = [&](std::size_t i) { return static_cast<bool>(values[i]); };
    for (auto item : named) {
      if (!PyUnicode_Check(item.first.ptr())) {
        throw InvalidInputError("input names of signature '" + sig_.key() + "' must be str, got " +
                                std::string(Py_TYPE(item.first.ptr())->tp_name));
      }
      Py_ssize_t size = 0;
      const char* name = PyUnicode_AsUTF8AndSize(item.first.ptr(), &size);
      if (!name) {  // lone surrogates: no input can have that name
        PyErr_Clear();
        const std::string shown = py::repr(item.first);  // '\ud800', quotes and all
        sig_.throw_no_such_input(shown.substr(1, shown.size() - 2));
      }
      values[sig_.bind_input({name, static_cast<std::size_t>(size)}, bound)] =
          py::reinterpret_borrow<py::object>(item.second);
    }
  }

  void check_missing(const std::vector<py::object>& values) const {
    sig_.check_all_bound([&](std::size_t i) { return static_cast<bool>(values[i]); });
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
  std::vector<py::str> output_keys_;
  // Whether aligned inputs are lent to TensorFlow in place; cleared for good once it keeps one.
  std::unique_ptr<std::atomic<bool>> lend_inputs_ = std::make_unique<std::atomic<bool>>(true);
};

// Concrete function `name` with its flat user inputs (anything array-like, converted as a
// signature's inputs are; with `lend`, aligned arrays reach TensorFlow without a copy). Returns
// its flat outputs, and whether TensorFlow handed every lent array back (false: it kept one,
// e.g. assigned it to a variable, which now shares that array's memory).
py::tuple call_function(const Model& model, const std::string& name, const py::sequence& values, bool lend) {
  const std::vector<TensorSpec>& specs = model.function_inputs(name);  // resolved once
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
      outputs = model.call_function(name, inputs);
    }
    for (std::size_t i = 0; i < outputs.size(); ++i) {
      PyObject* array = to_numpy(std::move(outputs[i]), "output " + std::to_string(i) + " of '" + name + "'");
      if (!array) throw py::error_already_set();
      result.append(py::reinterpret_steal<py::object>(array));
    }
  }  // the input tensors go: TensorFlow hands lent arrays back unless it kept them
  return py::make_tuple(result, loans.all_returned());
}

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
  py::class_<PySignature>(m, "NativeSignature")
      .def(py::init([](py::object model, const std::string& key, bool check_shapes) {
             return PySignature(model, model.cast<const Model&>().signature(key), check_shapes);
           }),
           py::arg("model"), py::arg("key"), py::arg("check_shapes") = true)
      .def_property_readonly("key", [](const PySignature& s) { return s.signature().key(); })
      .def_property_readonly("backend", [](const PySignature& s) { return s.signature().backend(); })
      .def_property_readonly("backend_note", [](const PySignature& s) { return s.signature().backend_note(); })
      .def("__call__", &PySignature::call)
      .def("run", &PySignature::run, py::arg("inputs"), py::kw_only(), py::arg("timeout") = py::none(),
           py::arg("check_shapes") = py::none());

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
      .def("call_function", &call_function, py::arg("name"), py::arg("inputs"), py::arg("lend") = true)
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
