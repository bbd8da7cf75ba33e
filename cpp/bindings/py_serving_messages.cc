#include "py_serving_messages.h"

#include <pybind11/stl.h>

#include <cstring>
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

py::object object_array(const std::vector<int64_t>& shape) {
  std::vector<npy_intp> dims(shape.begin(), shape.end());
  PyObject* array = PyArray_SimpleNew(static_cast<int>(dims.size()), dims.data(), NPY_OBJECT);
  if (!array) throw py::error_already_set();
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

// Saturating size arithmetic: a hostile count must exhaust the budget, never wrap past it.
std::size_t saturating_add(std::size_t a, std::size_t b) { return a > SIZE_MAX - b ? SIZE_MAX : a + b; }
std::size_t saturating_mul(std::size_t a, std::size_t b) { return b && a > SIZE_MAX / b ? SIZE_MAX : a * b; }

class Budget {
 public:
  Budget(std::size_t limit, std::string what) : limit_(limit), what_(std::move(what)) {}
  void spend(std::size_t bytes, const std::string& on) {
    used_ = saturating_add(used_, bytes);
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
    budget.spend(saturating_add(saturating_mul(n, 8), saturating_mul(tensor.carried_strings(), kStringOverhead)), what);
    std::vector<std::string_view> values = tensor.strings();
    for (std::size_t i = 0; i < tensor.carried_strings() && i < values.size(); ++i) budget.spend(values[i].size(), what);
    py::object array = object_array(tensor.shape());
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
  budget.spend(saturating_mul(n, saturating_add(request.context.size(), kStringOverhead)), "the context repeated in each example");
  for (std::string_view e : request.examples) budget.spend(e.size(), "the examples");
  py::object array = object_array({static_cast<int64_t>(n)});
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

py::tuple decode_spec_request(const py::bytes& data) {
  auto [spec, strings] = messages::parse_spec_request(std::string_view(data));
  return py::make_tuple(spec_tuple(spec), py::cast(strings));
}

py::tuple decode_prediction_log(const py::bytes& data) {
  auto [kind, request] = messages::parse_prediction_log(std::string_view(data));
  return py::make_tuple(kind, py::bytes(request));
}


// --- encoding: NumPy arrays -> TensorProto, PredictResponse -----------------------------------

// Counts (no buffer) or writes (a buffer of the counted size) protobuf wire bytes, so a message
// is sized in one pass and written straight into its bytes object in a second.
class Out {
 public:
  explicit Out(char* p = nullptr) : p_(p) {}
  void byte(uint8_t b) {
    if (p_) *p_++ = static_cast<char>(b);
    ++n_;
  }
  void bytes(const void* data, std::size_t n) {
    if (p_ && n) {
      std::memcpy(p_, data, n);
      p_ += n;
    }
    n_ += n;
  }
  void varint(uint64_t v) {
    while (v >= 0x80) {
      byte(static_cast<uint8_t>(v | 0x80));
      v >>= 7;
    }
    byte(static_cast<uint8_t>(v));
  }
  void tag(int field, int type) { varint(static_cast<uint64_t>(field) << 3 | static_cast<uint64_t>(type)); }
  void string_field(int field, std::string_view value) {
    tag(field, 2);
    varint(value.size());
    bytes(value.data(), value.size());
  }
  std::size_t size() const { return n_; }

 private:
  char* p_;
  std::size_t n_ = 0;
};

static std::size_t varint_size(uint64_t v) {
  std::size_t n = 1;
  while (v >= 0x80) {
    v >>= 7;
    ++n;
  }
  return n;
}

// One array to encode, C-contiguous and native-endian.
struct ArrayView {
  DType dtype;
  std::vector<int64_t> dims;
  const char* data;
  std::size_t count;
  PyObject** items;  // object arrays: bytes objects
};

template <class T, class Raw>
void put_varints(Out& out, int field, const ArrayView& a, Raw raw) {
  const auto* values = reinterpret_cast<const T*>(a.data);
  std::size_t size = 0;
  for (std::size_t i = 0; i < a.count; ++i) size += varint_size(raw(values[i]));
  out.tag(field, 2);
  out.varint(size);
  for (std::size_t i = 0; i < a.count; ++i) out.varint(raw(values[i]));
}

void put_fixed(Out& out, int field, const ArrayView& a, std::size_t width) {
  out.tag(field, 2);
  out.varint(a.count * width);
  out.bytes(a.data, a.count * width);
}

// TensorProto{dtype = 1, tensor_shape = 2, tensor_content = 4 | the typed *_val fields}, as
// TensorFlow's AsProtoField / AsProtoTensorContent write it (strings always in string_val).
void put_tensor(Out& out, const ArrayView& a, bool content) {
  out.tag(1, 0);
  out.varint(static_cast<uint64_t>(a.dtype));
  Out shape;
  for (int64_t d : a.dims) {
    shape.tag(2, 2);
    shape.varint(1 + varint_size(static_cast<uint64_t>(d)));
    shape.tag(1, 0);
    shape.varint(static_cast<uint64_t>(d));
  }
  out.tag(2, 2);
  out.varint(shape.size());
  for (int64_t d : a.dims) {
    out.tag(2, 2);
    out.varint(1 + varint_size(static_cast<uint64_t>(d)));
    out.tag(1, 0);
    out.varint(static_cast<uint64_t>(d));
  }
  if (a.count == 0) return;
  if (a.dtype == DType::kString) {
    for (std::size_t i = 0; i < a.count; ++i) {
      out.string_field(8, std::string_view(PyBytes_AS_STRING(a.items[i]), static_cast<std::size_t>(PyBytes_GET_SIZE(a.items[i]))));
    }
    return;
  }
  if (content) {
    const std::size_t size = a.count * dtype_size(a.dtype);
    out.tag(4, 2);
    out.varint(size);
    out.bytes(a.data, size);
    return;
  }
  auto sign = [](auto v) { return static_cast<uint64_t>(static_cast<int64_t>(v)); };  // int32 fields sign-extend
  auto zero = [](auto v) { return static_cast<uint64_t>(v); };
  switch (a.dtype) {
    case DType::kFloat32: put_fixed(out, 5, a, 4); break;
    case DType::kFloat64: put_fixed(out, 6, a, 8); break;
    case DType::kComplex64: put_fixed(out, 9, a, 8); break;
    case DType::kComplex128: put_fixed(out, 12, a, 16); break;
    case DType::kInt32: put_varints<int32_t>(out, 7, a, sign); break;
    case DType::kInt16: put_varints<int16_t>(out, 7, a, sign); break;
    case DType::kInt8: put_varints<int8_t>(out, 7, a, sign); break;
    case DType::kUInt8: put_varints<uint8_t>(out, 7, a, zero); break;
    case DType::kUInt16: put_varints<uint16_t>(out, 7, a, zero); break;
    case DType::kInt64: put_varints<int64_t>(out, 10, a, sign); break;
    case DType::kBool: put_varints<uint8_t>(out, 11, a, [](uint8_t v) { return static_cast<uint64_t>(v != 0); }); break;
    case DType::kFloat16: case DType::kBFloat16: put_varints<uint16_t>(out, 13, a, zero); break;
    case DType::kUInt32: put_varints<uint32_t>(out, 16, a, zero); break;
    case DType::kUInt64: put_varints<uint64_t>(out, 17, a, zero); break;
    default: throw StatusError(ErrorCode::kInvalidArgument, "cannot encode dtype " + std::string(dtype_name(a.dtype)));
  }
}

// Holds the contiguous arrays (and their views) of one message being encoded.
struct Arrays {
  std::vector<py::object> owners;
  std::vector<ArrayView> views;

  void add(const py::handle& value, const std::string& what) {
    PyObject* array = PyArray_FromAny(value.ptr(), nullptr, 0, 0,
                                      NPY_ARRAY_C_CONTIGUOUS | NPY_ARRAY_ALIGNED | NPY_ARRAY_NOTSWAPPED, nullptr);
    if (!array) throw py::error_already_set();
    owners.push_back(py::reinterpret_steal<py::object>(array));
    auto* a = reinterpret_cast<PyArrayObject*>(array);
    ArrayView view{dtype_of(PyArray_DESCR(a)), {}, PyArray_BYTES(a), static_cast<std::size_t>(PyArray_SIZE(a)), nullptr};
    if (view.dtype == DType::kInvalid) {
      throw StatusError(ErrorCode::kInvalidArgument, what + ": NumPy dtype " + std::string(py::str(py::handle(reinterpret_cast<PyObject*>(PyArray_DESCR(a))))) + " has no TensorFlow dtype");
    }
    for (int i = 0; i < PyArray_NDIM(a); ++i) view.dims.push_back(PyArray_DIM(a, i));
    if (view.dtype == DType::kString) {
      view.items = reinterpret_cast<PyObject**>(PyArray_DATA(a));
      for (std::size_t i = 0; i < view.count; ++i) {
        if (!PyBytes_Check(view.items[i])) throw StatusError(ErrorCode::kInvalidArgument, what + ": a string tensor holds a non-bytes object");
      }
    }
    views.push_back(std::move(view));
  }
};

void put_model_spec(Out& out, int field, const std::string& name, std::optional<int64_t> version,
                    const std::string& signature_name) {
  auto body = [&](Out& o) {
    if (!name.empty()) o.string_field(1, name);
    if (version) {
      o.tag(2, 2);
      o.varint(*version ? 1 + varint_size(static_cast<uint64_t>(*version)) : 0);
      if (*version) {
        o.tag(1, 0);
        o.varint(static_cast<uint64_t>(*version));
      }
    }
    if (!signature_name.empty()) o.string_field(3, signature_name);
  };
  Out count;
  body(count);
  out.tag(field, 2);
  out.varint(count.size());
  body(out);
}

template <class Write>
py::bytes build(Write write) {
  Out count;
  write(count);
  PyObject* bytes = PyBytes_FromStringAndSize(nullptr, static_cast<Py_ssize_t>(count.size()));
  if (!bytes) throw py::error_already_set();
  Out out(PyBytes_AS_STRING(bytes));
  write(out);
  return py::reinterpret_steal<py::bytes>(bytes);
}

py::bytes encode_tensor(const py::handle& array, bool content) {
  Arrays arrays;
  arrays.add(array, "the tensor");
  return build([&](Out& out) { put_tensor(out, arrays.views[0], content); });
}

// PredictResponse{outputs = 1 (map<string, TensorProto>), model_spec = 2}.
py::bytes encode_predict_response(const py::dict& outputs, const std::string& name, int64_t version,
                                  const std::string& signature_name, bool content) {
  Arrays arrays;
  std::vector<std::string> keys;
  for (auto item : outputs) {
    keys.push_back(item.first.cast<std::string>());
    arrays.add(item.second, "output '" + keys.back() + "'");
  }
  return build([&](Out& out) {
    for (std::size_t i = 0; i < keys.size(); ++i) {
      Out tensor;
      put_tensor(tensor, arrays.views[i], content);
      const std::size_t entry = 1 + varint_size(keys[i].size()) + keys[i].size() + 1 + varint_size(tensor.size()) + tensor.size();
      out.tag(1, 2);
      out.varint(entry);
      out.string_field(1, keys[i]);
      out.tag(2, 2);
      out.varint(tensor.size());
      put_tensor(out, arrays.views[i], content);
    }
    put_model_spec(out, 2, name, version, signature_name);
  });
}

}  // namespace

void register_serving_messages(py::module_& m) {
  m.def("decode_predict_request", &decode_predict_request, py::arg("data"), py::arg("max_bytes"));
  m.def("decode_examples_request", &decode_examples_request, py::arg("data"), py::arg("multi_inference"),
        py::arg("max_bytes"));
  m.def("decode_prediction_log", &decode_prediction_log, py::arg("data"));
  m.def("decode_spec_request", &decode_spec_request, py::arg("data"));
  m.def("encode_tensor", &encode_tensor, py::arg("array"), py::arg("tensor_content"));
  m.def("encode_predict_response", &encode_predict_response, py::arg("outputs"), py::arg("name"),
        py::arg("version"), py::arg("signature_name"), py::arg("tensor_content"));
  m.def("masked_crc32c", [](const py::bytes& data) { return messages::masked_crc32c(std::string_view(data)); },
        py::arg("data"));
}

}  // namespace smrt::bindings
