#include "exceptions.h"

#include <map>
#include <string_view>

#include "smrt/errors.h"

namespace py = pybind11;

namespace smrt::bindings {
namespace {

// ErrorCode -> Python class; filled once at import, then only read. Never freed: classes
// live as long as the interpreter.
std::map<ErrorCode, PyObject*>& classes() {
  static auto* table = new std::map<ErrorCode, PyObject*>();
  return *table;
}

}  // namespace

py::dict error_codes() {
  py::dict codes;
#define SMRT_ERROR_CODE_ITEM(name, value) codes[#name] = value;
  SMRT_ERROR_CODES(SMRT_ERROR_CODE_ITEM)
#undef SMRT_ERROR_CODE_ITEM
  return codes;
}

void register_exceptions() {
  py::module_ errors = py::module_::import("smrt.errors");
  auto& table = classes();
  for (auto item : errors.attr("ERRORS").cast<py::dict>()) {
    table[static_cast<ErrorCode>(item.first.cast<int>())] = item.second.inc_ref().ptr();
  }

  py::register_exception_translator([](std::exception_ptr p) {
    try {
      if (p) std::rethrow_exception(p);
    } catch (const Error& e) {
      auto& table = classes();
      auto it = table.find(e.code());
      PyObject* cls = it != table.end() ? it->second : table.at(ErrorCode::kUnknown);
      // TensorFlow quotes input bytes and paths in its messages; they need not be UTF-8.
      const std::string_view what = e.what();
      PyObject* message = PyUnicode_DecodeUTF8(what.data(), static_cast<Py_ssize_t>(what.size()), "backslashreplace");
      if (!message) return;  // the decoding error is set instead
      PyErr_SetObject(cls, message);
      Py_DECREF(message);
    }
  });
}

}  // namespace smrt::bindings
