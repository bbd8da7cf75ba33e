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

void register_exceptions() {
  py::module_ errors = py::module_::import("smrt.errors");
  auto& table = classes();
  const std::pair<ErrorCode, const char*> own[] = {
      {ErrorCode::kSignatureNotFound, "SignatureNotFoundError"},
      {ErrorCode::kInvalidInput, "InvalidInputError"},
      {ErrorCode::kInputType, "InputTypeError"},
      {ErrorCode::kModelNotFound, "ModelNotFoundError"},
      {ErrorCode::kLibraryNotFound, "LibraryNotFoundError"},
      {ErrorCode::kModelClosed, "ModelClosedError"},
  };
  for (const auto& [code, name] : own) table[code] = py::object(errors.attr(name)).release().ptr();
  for (auto item : errors.attr("STATUS_ERRORS").cast<py::dict>()) {
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
