#include "json_tensor.h"

#include <charconv>
#include <cstdint>
#include <cstring>
#include <string_view>
#include <vector>

#include "numpy_api.h"

namespace py = pybind11;

namespace smrt::bindings {
namespace {

// What the leaves of a JSON tensor are, one bit per kind (smrt/serving/tensor_json.py reads it).
enum Kind : int {
  kFloat = 1,
  kInt = 2,
  kBool = 4,
  kString = 8,
  kObject = 16,
  kNull = 32,
  kOther = 64,
};

int kind_of(PyObject* o) {
  if (PyFloat_CheckExact(o)) return kFloat;
  if (PyBool_Check(o)) return kBool;  // before int: bool is an int subclass
  if (PyLong_CheckExact(o)) return kInt;
  if (PyUnicode_CheckExact(o)) return kString;
  if (PyDict_CheckExact(o)) return kObject;
  if (o == Py_None) return kNull;
  return kOther;
}

// (shape, leaves in C order, kinds): level by level, every list of a level must be as long as
// the others, and a level is all lists or all leaves. Raises ValueError (with the REST API's
// wording) for ragged lists or more than max_rank levels. The pointers collected are borrowed:
// the GIL is held throughout and no Python code runs, so nothing can change under them.
py::tuple flatten_json(const py::handle& value, std::size_t max_rank) {
  std::vector<PyObject*> level{value.ptr()}, next;
  py::list shape;
  std::size_t rank = 0;
  for (;;) {
    bool any_list = false, all_lists = true;
    int kinds = 0;
    for (PyObject* o : level) {
      if (PyList_CheckExact(o)) {
        any_list = true;
      } else {
        all_lists = false;
        kinds |= kind_of(o);
      }
    }
    if (!any_list) {
      py::list leaves(level.size());
      for (std::size_t i = 0; i < level.size(); ++i) {
        Py_INCREF(level[i]);
        PyList_SET_ITEM(leaves.ptr(), static_cast<Py_ssize_t>(i), level[i]);
      }
      return py::make_tuple(py::tuple(shape), leaves, kinds);
    }
    const Py_ssize_t n = all_lists ? PyList_GET_SIZE(level[0]) : -1;
    for (PyObject* o : level) {
      if (!all_lists || PyList_GET_SIZE(o) != n) {
        throw py::value_error("lists of different lengths (a tensor's nested lists must be rectangular)");
      }
    }
    if (++rank > max_rank) {
      throw py::value_error("nests too deeply (tensors have at most " + std::to_string(max_rank) +
                            " dimensions here)");
    }
    shape.append(n);
    next.clear();
    next.reserve(level.size() * static_cast<std::size_t>(n));
    for (PyObject* o : level) {
      PyObject** items = PySequence_Fast_ITEMS(o);
      next.insert(next.end(), items, items + n);
    }
    level.swap(next);
  }
}

// The REST fast path: a predict body that is exactly {"instances": T} or {"inputs": T}, maybe
// with "signature_name", T a rectangular nest of JSON numbers, read straight into doubles,
// without a Python object per number. Anything else (other fields, strings, booleans, null,
// objects, empty or ragged lists, escapes, duplicate keys, numbers a double cannot hold
// exactly as the general path reads them) is not refused here: the caller falls back to the
// general path, which reports errors as it always has.
class NumericPredict {
 public:
  NumericPredict(const char* data, std::size_t size, std::size_t max_rank)
      : p_(data), end_(data + size), max_rank_(max_rank) {}

  // false: not the simple shape; use the general path.
  bool parse() {
    skip_space();
    if (!eat('{')) return false;
    bool first = true;
    for (;;) {
      skip_space();
      if (eat('}')) break;
      if (!first && !(eat(',') && (skip_space(), true))) return false;
      first = false;
      std::string_view key;
      if (!string(key)) return false;
      skip_space();
      if (!eat(':')) return false;
      skip_space();
      if (key == "signature_name") {
        if (has_name_ || !string(name_)) return false;
        has_name_ = true;
      } else if (key == "instances" || key == "inputs") {
        if (!field_.empty()) return false;  // both, or twice: the general path says which
        field_ = key;
        if (!tensor()) return false;
      } else {
        return false;
      }
    }
    skip_space();
    return p_ == end_ && !field_.empty() && !shape_.empty();
  }

  std::string_view field() const { return field_; }
  bool has_name() const { return has_name_; }
  std::string_view name() const { return name_; }
  const std::vector<int64_t>& shape() const { return shape_; }
  const std::vector<double>& values() const { return values_; }

 private:
  void skip_space() {
    while (p_ < end_ && (*p_ == ' ' || *p_ == '\n' || *p_ == '\r' || *p_ == '\t')) ++p_;
  }
  bool eat(char c) {
    if (p_ < end_ && *p_ == c) {
      ++p_;
      return true;
    }
    return false;
  }
  // A string without escapes or control characters.
  bool string(std::string_view& out) {
    if (!eat('"')) return false;
    const char* start = p_;
    while (p_ < end_ && *p_ != '"') {
      if (*p_ == '\\' || static_cast<unsigned char>(*p_) < 0x20) return false;
      ++p_;
    }
    if (p_ == end_) return false;
    out = std::string_view(start, static_cast<std::size_t>(p_ - start));
    ++p_;
    return true;
  }
  // A JSON number as the general path reads it: an integer token is an integer (exact up to
  // 15 digits, where a double holds it exactly; "-0" is 0), anything else a double.
  bool number() {
    const char* start = p_;
    if (p_ < end_ && *p_ == '-') ++p_;
    if (p_ == end_ || *p_ < '0' || *p_ > '9') return false;
    if (*p_ == '0' && p_ + 1 < end_ && p_[1] >= '0' && p_[1] <= '9') return false;  // leading zero
    bool integer = true;
    while (p_ < end_) {
      const char c = *p_;
      if (c >= '0' && c <= '9') {
        ++p_;
      } else if (c == '.' || c == 'e' || c == 'E' || c == '+' || (c == '-' && p_ > start)) {
        integer = false;
        ++p_;
      } else {
        break;
      }
    }
    const std::size_t length = static_cast<std::size_t>(p_ - start);
    if (integer) {
      if (length > 16) return false;
      int64_t v = 0;
      const auto [ptr, ec] = std::from_chars(start, p_, v);
      if (ec != std::errc() || ptr != p_) return false;
      values_.push_back(static_cast<double>(v));
      return true;
    }
    if (start[length - 1] < '0' || start[length - 1] > '9') return false;
    double v = 0;
    const auto [ptr, ec] = std::from_chars(start, p_, v);
    if (ec != std::errc() || ptr != p_) return false;  // out of range too: the general path decides
    values_.push_back(v);
    return true;
  }
  // A nest of lists of numbers; every list at one depth as long as the first, numbers only at
  // the deepest level.
  bool tensor() {
    std::vector<int64_t> counts;  // elements seen so far in each open list
    std::size_t depth = 0;
    bool shape_known = false;
    for (;;) {
      skip_space();
      if (eat('[')) {
        if (shape_known ? depth >= shape_.size() : depth >= max_rank_) return false;
        if (!shape_known) shape_.push_back(-1);
        ++depth;
        counts.push_back(0);
        skip_space();
        if (p_ < end_ && *p_ == ']') return false;  // empty: the general path
        continue;
      }
      // A number, only where the shape says the leaves are.
      if (depth == 0) return false;  // a bare number is no nest
      if (shape_known && depth != shape_.size()) return false;
      if (!number()) return false;
      shape_known = true;
      for (;;) {  // after a value: ',' continues the list, ']' closes it
        ++counts.back();
        skip_space();
        if (eat(',')) break;
        if (!eat(']')) return false;
        int64_t& size = shape_[depth - 1];
        if (size < 0) size = counts.back();
        if (size != counts.back()) return false;  // ragged
        counts.pop_back();
        if (--depth == 0) return true;
      }
    }
  }

  const char* p_;
  const char* end_;
  std::size_t max_rank_;
  std::string_view field_, name_;
  bool has_name_ = false;
  std::vector<int64_t> shape_;
  std::vector<double> values_;
};

// (field, signature_name or None, float64 array), or None when the body is not that simple.
py::object parse_numeric_predict(const py::bytes& body, std::size_t max_rank) {
  char* data = nullptr;
  Py_ssize_t size = 0;
  if (PyBytes_AsStringAndSize(body.ptr(), &data, &size) < 0) throw py::error_already_set();
  NumericPredict parsed(data, static_cast<std::size_t>(size), max_rank);
  bool ok = false;
  {
    py::gil_scoped_release release;  // the bytes object is immutable and held by the caller
    ok = parsed.parse();
  }
  if (!ok) return py::none();
  int64_t count = 1;
  for (int64_t d : parsed.shape()) count *= d;
  if (count != static_cast<int64_t>(parsed.values().size())) return py::none();
  py::object name = py::none();
  if (parsed.has_name()) {
    PyObject* text = PyUnicode_DecodeUTF8(parsed.name().data(), static_cast<Py_ssize_t>(parsed.name().size()), nullptr);
    if (!text) {
      PyErr_Clear();
      return py::none();
    }
    name = py::reinterpret_steal<py::object>(text);
  }
  std::vector<npy_intp> dims(parsed.shape().begin(), parsed.shape().end());
  PyObject* array = PyArray_SimpleNew(static_cast<int>(dims.size()), dims.data(), NPY_FLOAT64);
  if (!array) throw py::error_already_set();
  std::memcpy(PyArray_DATA(reinterpret_cast<PyArrayObject*>(array)), parsed.values().data(),
              parsed.values().size() * sizeof(double));
  return py::make_tuple(std::string(parsed.field()), name, py::reinterpret_steal<py::object>(array));
}

}  // namespace

void register_json_tensor(py::module_& m) {
  m.def("flatten_json", &flatten_json, py::arg("value"), py::arg("max_rank"));
  m.def("parse_numeric_predict", &parse_numeric_predict, py::arg("body"), py::arg("max_rank"));
}

}  // namespace smrt::bindings
