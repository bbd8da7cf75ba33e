// smrt._core: the thin pybind11 layer over the C++ core (cpp/src). Importing it does not load
// libtensorflow; smrt.load does, through load_library.
#define SMRT_IMPORT_NUMPY
#include "numpy_api.h"

#include <pybind11/pybind11.h>
#include <pybind11/stl.h>

#include "aligned_memory.h"
#include "exceptions.h"
#include "json_tensor.h"
#include "py_metadata.h"
#include "py_model.h"
#include "../src/op_packages.h"
#include "smrt/model.h"
#include "py_serving_messages.h"
#include "smrt/runtime.h"
#include "smrt/saved_model_info.h"
#include "smrt/tensor.h"

namespace py = pybind11;

PYBIND11_MODULE(_core, m) {
  if (_import_array() < 0) throw py::error_already_set();
  smrt::bindings::register_exceptions();
  m.attr("__version__") = SMRT_VERSION;
  m.attr("DISTRIBUTION") = SMRT_DISTRIBUTION;
  m.attr("ALIGNMENT") = smrt::kTensorAlignment;
  m.attr("ERROR_CODES") = smrt::bindings::error_codes();

  // Keeps the GIL: loading sets TF_CPP_MIN_LOG_LEVEL and briefly redirects stderr, which must
  // not race with Python threads touching either. It happens once per process.
  m.def("load_library", [](const std::string& path) { smrt::runtime::load_library(path); });
  m.def("ensure_loaded", [](const std::vector<std::pair<std::string, std::string>>& hints) {
    smrt::runtime::ensure_loaded(hints);
  });
  m.def("runtime_info", []() -> py::object {
    if (!smrt::runtime::is_loaded()) return py::none();
    const smrt::runtime::Info info = smrt::runtime::info();
    return py::make_tuple(info.path, info.version, info.source);
  });
  // Keeps the GIL for the same reason: loading an op library may load libtensorflow first.
  m.def("load_op_library", [](const std::string& path) { return smrt::runtime::load_op_library(path); });
  m.def("add_op_package_root", [](const std::string& dir) { smrt::runtime::add_op_package_root(dir); });
  m.def("registered_ops", []() { return smrt::runtime::registered_ops(); });
  m.def("known_op_libraries", []() {
    py::dict table;  // op -> (package, library relative to site-packages or None)
    for (const auto& [op, provider] : smrt::detail::known_op_libraries()) {
      table[op] = py::make_tuple(provider.package, provider.library ? py::str(provider.library) : py::object(py::none()));
    }
    return table;
  });
  m.def("find_library", [](const std::vector<std::pair<std::string, std::string>>& hints) -> py::object {
    const auto found = smrt::runtime::find_library(hints);
    if (!found) return py::none();
    return py::make_tuple(found->path, found->version, found->source);
  });
  m.def("ensure_openvino_loaded", [](const std::vector<std::pair<std::string, std::string>>& hints) {
    smrt::runtime::ensure_openvino_loaded(hints);
  });
  m.def("openvino_info", []() -> py::object {
    if (!smrt::runtime::openvino_loaded()) return py::none();
    const smrt::runtime::Info info = smrt::runtime::openvino_info();
    return py::make_tuple(info.path, info.version, info.source);
  });
  m.def("openvino_support", [](const std::string& dir, const std::vector<std::string>& tags) {
    py::gil_scoped_release release;
    return smrt::openvino_support(dir, tags);
  }, py::arg("dir"), py::arg("tags"));
  m.def("inspect", [](const std::string& dir, bool with_ops, bool with_functions) {
    smrt::SavedModelInfo info;
    {
      py::gil_scoped_release release;
      info = smrt::inspect(dir, with_ops, with_functions);
    }
    py::list metas;
    for (const auto& meta : info.meta_graphs) metas.append(smrt::bindings::meta_graph_to_python(meta));
    return metas;
  }, py::arg("dir"), py::arg("with_ops") = false, py::arg("with_functions") = false);
  m.def("dtype_name", [](int code) { return std::string(smrt::dtype_name(static_cast<smrt::DType>(code))); });
  m.def("dtype_enum_name", [](const std::string& name) {
    return std::string(smrt::dtype_enum_name(smrt::dtype_from_name(name)));
  });
  m.def("aligned_handler", []() { return py::reinterpret_steal<py::object>(smrt::bindings::aligned_handler_capsule()); });
  m.def("set_handler", [](py::object handler) {
    PyObject* previous = PyDataMem_SetHandler(handler.ptr());
    if (!previous) throw py::error_already_set();
    return py::reinterpret_steal<py::object>(previous);
  });
  smrt::bindings::register_model(m);
  smrt::bindings::register_json_tensor(m);
  smrt::bindings::register_serving_messages(m);
}
