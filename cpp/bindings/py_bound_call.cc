#include "py_bound_call.h"

#include "fast_call.h"

namespace py = pybind11;

namespace smrt::bindings {

BoundCall::BoundCall(py::object model, const Signature& sig, const RunOptions& options,
                     const std::vector<py::object>& inputs, const py::dict& outputs)
    : model_(std::move(model)), sig_(sig), options_(options), input_arrays_(inputs) {
  inputs_.reserve(inputs.size());
  for (std::size_t i = 0; i < inputs.size(); ++i) inputs_.push_back(lend_tensor(inputs[i].ptr(), sig, i, loans_, options.check_shapes));
  if (outputs.empty()) {
    throw InvalidInputError("binding signature '" + sig.key() + "' needs at least one output array");
  }
  for (auto [key, array] : outputs) {
    if (!PyUnicode_Check(key.ptr())) {
      throw InvalidInputError("output names of signature '" + sig.key() + "' must be str, got " +
                              std::string(Py_TYPE(key.ptr())->tp_name));
    }
    const std::size_t index = sig.output_position(py::str(key).cast<std::string>());
    check_output_array(array.ptr(), sig, index, options.check_shapes);
    fetch_.push_back(index);
    output_arrays_.push_back(py::reinterpret_borrow<py::object>(array));
  }
  fetched_.resize(fetch_.size());
}

PyObject* BoundCall::call(PyObject* const*, std::size_t nargs, PyObject* kwnames) {
  if (nargs || (kwnames && PyTuple_GET_SIZE(kwnames))) {
    throw InvalidInputError("a bound call of signature '" + sig_.key() +
                            "' takes no arguments: write new values into its input arrays");
  }
  // One run at a time: its arrays are shared by every caller of this binding.
  if (running_.exchange(true)) {
    throw StatusError(ErrorCode::kFailedPrecondition, "a bound call of signature '" + sig_.key() +
                                                          "' is already running in another thread; bind once per thread");
  }
  struct Done {
    BoundCall& self;
    ~Done() {
      for (Tensor& t : self.fetched_) t = Tensor();
      self.running_.store(false);
    }
  } done{*this};
  {
    PyThreadState* state = PyEval_SaveThread();
    try {
      sig_.run(inputs_.data(), fetch_.data(), fetch_.size(), fetched_.data(), options_);
    } catch (...) {
      PyEval_RestoreThread(state);
      throw;
    }
    PyEval_RestoreThread(state);
  }
  for (std::size_t j = 0; j < fetch_.size(); ++j) copy_output(fetched_[j], output_arrays_[j].ptr(), sig_, fetch_[j]);
  Py_RETURN_NONE;
}

py::dict BoundCall::inputs() const {
  py::dict out;
  for (std::size_t i = 0; i < input_arrays_.size(); ++i) out[py::str(sig_.inputs()[i].key)] = input_arrays_[i];
  return out;
}

py::dict BoundCall::outputs() const {
  py::dict out;
  for (std::size_t j = 0; j < fetch_.size(); ++j) out[py::str(sig_.outputs()[fetch_[j]].key)] = output_arrays_[j];
  return out;
}

void register_bound_call(py::module_& m) {
  py::class_<BoundCall>(m, "BoundCall", py::custom_type_setup(&enable_vectorcall<BoundCall, &BoundCall::call>))
      .def_property_readonly("inputs", &BoundCall::inputs)
      .def_property_readonly("outputs", &BoundCall::outputs);
}

}  // namespace smrt::bindings
