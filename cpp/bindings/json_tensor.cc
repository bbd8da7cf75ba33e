#include "json_tensor.h"

#include <cstdint>
#include <vector>

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

}  // namespace

void register_json_tensor(py::module_& m) {
  m.def("flatten_json", &flatten_json, py::arg("value"), py::arg("max_rank"));
}

}  // namespace smrt::bindings
