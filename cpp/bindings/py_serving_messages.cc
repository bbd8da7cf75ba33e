#include "py_serving_messages.h"

#include <pybind11/stl.h>

#include <string>

#include "aligned_memory.h"
#include "numpy_api.h"
#include "numpy_convert.h"
#include "serving_messages.h"
#include "smrt/errors.h"

namespace py = pybind11;

namespace smrt::bindings {
namespace {

// What a bytes object costs beyond its payload (header and the array's pointer), for budgets.
constexpr std::size_t kStringOverhead = 64;

py::object spec_tuple(const messages::ModelSpec& spec) {
  return py::make_tuple(spec.name, spec.version ? py::object(py::int_(*spec.version)) : py::object(py::none()),
                        spec.version_label, spec.signature_name);
}

// An uninitialized C-contiguous array, 64-byte aligned so TensorFlow takes it without a copy.
py::object aligned_empty(DType dtype, const std::vector<int64_t>& shape) {
  PyArray_Descr* descr = numpy_descr(dtype);  // a new reference, stolen below
  if (!descr) throw StatusError(ErrorCode::kInvalidArgument, std::string("NumPy cannot hold ") + std::string(dtype_name(dtype)));
  py::object handler = py::reinterpret_steal<py::object>(aligned_handler_capsule());
  PyObject* previous = PyDataMem_SetHandler(handler.ptr());
  if (!previous) {
    Py_DECREF(descr);
    throw py::error_already_set();
  }
  std::vector<npy_intp> dims(shape.begin(), shape.end());
  PyObject* array = PyArray_NewFromDescr(&PyArray_Type, descr, static_cast<int>(dims.size()), dims.data(), nullptr,
                                         nullptr, 0, nullptr);
  PyObject* restored = PyDataMem_SetHandler(previous);
  Py_DECREF(previous);
  Py_XDECREF(restored);
  if (!array) throw py::error_already_set();
  return py::reinterpret_steal<py::object>(array);
}

py::object object_array(std::size_t n, const std::vector<int64_t>& shape) {
  std::vector<npy_intp> dims(shape.begin(), shape.end());
  PyObject* array = PyArray_SimpleNew(static_cast<int>(dims.size()), dims.data(), NPY_OBJECT);
  if (!array) throw py::error_already_set();
  (void)n;
  return py::reinterpret_steal<py::object>(array);
}

// Fills object array `array` with bytes objects for `values`; runs of one value share one object.
void fill_bytes(const py::object& array, const std::vector<std::string_view>& values) {
  auto** items = static_cast<PyObject**>(PyArray_DATA(reinterpret_cast<PyArrayObject*>(array.ptr())));
  PyObject* previous = nullptr;
  std::string_view previous_view;
  for (std::size_t i = 0; i < values.size(); ++i) {
    if (!previous || values[i].data() != previous_view.data() || values[i].size() != previous_view.size()) {
      previous = PyBytes_FromStringAndSize(values[i].data(), static_cast<Py_ssize_t>(values[i].size()));
      if (!previous) throw py::error_already_set();
      previous_view = values[i];
    } else {
      Py_INCREF(previous);
    }
    Py_XDECREF(items[i]);  // NumPy fills new object arrays with None
    items[i] = previous;
  }
}

class Budget {
 public:
  Budget(std::size_t limit, std::string what) : limit_(limit), what_(std::move(what)) {}
  void spend(std::size_t bytes, const std::string& on) {
    used_ = bytes > limit_ - std::min(used_, limit_) ? limit_ + 1 : used_ + bytes;
    if (used_ > limit_) {
      throw StatusError(ErrorCode::kResourceExhausted, on + " would take more than the " + std::to_string(limit_) +
                                                           " bytes " + what_ + " may decode to");
    }
  }

 private:
  std::size_t limit_, used_ = 0;
  std::string what_;
};

py::object tensor_to_numpy(const messages::TensorProto& tensor, Budget& budget, const std::string& what) {
  if (tensor.dtype() == DType::kString) {
    const auto n = static_cast<std::size_t>(tensor.num_elements());
    budget.spend(n > SIZE_MAX / 8 ? SIZE_MAX : n * 8 + tensor.carried_strings() * kStringOverhead, what);
    std::vector<std::string_view> values = tensor.strings();
    for (std::size_t i = 0; i < tensor.carried_strings() && i < values.size(); ++i) budget.spend(values[i].size(), what);
    py::object array = object_array(n, tensor.shape());
    fill_bytes(array, values);
    return array;
  }
  budget.spend(tensor.byte_size(), what);
  py::object array = aligned_empty(tensor.dtype(), tensor.shape());
  void* data = PyArray_DATA(reinterpret_cast<PyArrayObject*>(array.ptr()));
  {
    py::gil_scoped_release release;  // the one copy of a large tensor_content
    tensor.copy_to(data);
  }
  return array;
}

py::tuple decode_predict_request(const py::bytes& data, std::size_t max_bytes) {
  const std::string_view message = data;
  messages::PredictRequest request = messages::parse_predict_request(message);
  Budget budget(max_bytes, "a request");
  py::dict inputs;
  for (const auto& [key, value] : request.inputs) {
    const std::string what = "input '" + key + "'";
    messages::TensorProto tensor(value.view(), what);
    inputs[py::str(key)] = tensor_to_numpy(tensor, budget, what);
  }
  return py::make_tuple(spec_tuple(request.model_spec), inputs, py::cast(request.output_filter));
}

py::tuple decode_examples_request(const py::bytes& data, bool multi_inference, std::size_t max_bytes) {
  const std::string_view message = data;
  messages::ExamplesRequest request = messages::parse_examples_request(message, multi_inference);
  Budget budget(max_bytes, "a request's tf.Examples");
  const std::size_t n = request.examples.size();
  budget.spend(n * (request.context.size() + kStringOverhead), "the context repeated in each example");
  for (std::string_view e : request.examples) budget.spend(e.size(), "the examples");
  py::object array = object_array(n, {static_cast<int64_t>(n)});
  auto** items = static_cast<PyObject**>(PyArray_DATA(reinterpret_cast<PyArrayObject*>(array.ptr())));
  for (std::size_t i = 0; i < n; ++i) {
    const std::string_view e = request.examples[i];
    PyObject* bytes = PyBytes_FromStringAndSize(nullptr, static_cast<Py_ssize_t>(request.context.size() + e.size()));
    if (!bytes) throw py::error_already_set();
    char* out = PyBytes_AS_STRING(bytes);
    std::memcpy(out, request.context.data(), request.context.size());
    std::memcpy(out + request.context.size(), e.data(), e.size());
    Py_XDECREF(items[i]);
    items[i] = bytes;
  }
  py::list tasks;
  for (const auto& [spec, method] : request.tasks) tasks.append(py::make_tuple(spec_tuple(spec), method));
  return py::make_tuple(tasks, array);
}

py::tuple decode_prediction_log(const py::bytes& data) {
  auto [kind, request] = messages::parse_prediction_log(std::string_view(data));
  return py::make_tuple(kind, py::bytes(request));
}

}  // namespace

void register_serving_messages(py::module_& m) {
  m.def("decode_predict_request", &decode_predict_request, py::arg("data"), py::arg("max_bytes"));
  m.def("decode_examples_request", &decode_examples_request, py::arg("data"), py::arg("multi_inference"),
        py::arg("max_bytes"));
  m.def("decode_prediction_log", &decode_prediction_log, py::arg("data"));
  m.def("masked_crc32c", [](const py::bytes& data) { return messages::masked_crc32c(std::string_view(data)); },
        py::arg("data"));
}

}  // namespace smrt::bindings
