#include "py_metadata.h"

#include <pybind11/gil_safe_call_once.h>
#include <pybind11/stl.h>

#include <string>
#include <vector>

namespace py = pybind11;

namespace smrt::bindings {
namespace {

// The Python classes the metadata becomes. smrt.saved_model imports smrt._core, so they are
// looked up on first use rather than when _core is imported.
struct PythonTypes {
  py::object tensor_spec, signature_info, meta_graph_info;
  py::object object_graph_info, function_info, concrete_function_info;
  py::object shape_value, dtype_value, tensor_spec_value, opaque_value;
  py::object mapping_proxy, namedtuple;
};

const PythonTypes& types() {
  PYBIND11_CONSTINIT static py::gil_safe_call_once_and_store<PythonTypes> storage;
  return storage
      .call_once_and_store_result([] {
        const py::module_ saved_model = py::module_::import("smrt.saved_model");
        PythonTypes t;
        t.tensor_spec = saved_model.attr("TensorSpec");
        t.signature_info = saved_model.attr("SignatureInfo");
        t.meta_graph_info = saved_model.attr("MetaGraphInfo");
        t.object_graph_info = saved_model.attr("ObjectGraphInfo");
        t.function_info = saved_model.attr("FunctionInfo");
        t.concrete_function_info = saved_model.attr("ConcreteFunctionInfo");
        t.shape_value = saved_model.attr("ShapeValue");
        t.dtype_value = saved_model.attr("DTypeValue");
        t.tensor_spec_value = saved_model.attr("TensorSpecValue");
        t.opaque_value = saved_model.attr("OpaqueValue");
        t.mapping_proxy = py::module_::import("types").attr("MappingProxyType");
        t.namedtuple = py::module_::import("collections").attr("namedtuple");
        return t;
      })
      .get_stored();
}

py::str dtype_text(DType dtype) {
  const std::string_view name = dtype_name(dtype);
  return py::str(name.data(), name.size());
}

// Which sizes a shape holds as None: a signature's TensorInfo counts any negative size as
// unknown, TensorFlow's TensorShape (in a function's input signature) only -1.
enum class Unknown { kNegative, kMinusOne };

// A Shape: a tuple with None per unknown dimension, or None for unknown rank.
py::object shape_to_python(const std::vector<int64_t>& dims, bool unknown_rank, Unknown unknown) {
  if (unknown_rank) return py::none();
  py::tuple out(dims.size());
  for (std::size_t i = 0; i < dims.size(); ++i) {
    const bool is_unknown = unknown == Unknown::kNegative ? dims[i] < 0 : dims[i] == -1;
    out[i] = is_unknown ? py::none() : py::object(py::int_(dims[i]));
  }
  return std::move(out);
}

py::object specs_to_python(const std::vector<TensorSpec>& specs) {
  py::dict out;
  for (const TensorSpec& spec : specs) {
    out[py::str(spec.key)] = types().tensor_spec(
        py::arg("name") = spec.key, py::arg("dtype") = dtype_text(spec.dtype),
        py::arg("shape") = shape_to_python(spec.shape, spec.unknown_rank, Unknown::kNegative), py::arg("tensor_name") = spec.tensor_name);
  }
  return types().mapping_proxy(out);
}

py::object signature_to_python(const SignatureInfo& sig) {
  return types().signature_info(py::arg("key") = sig.key, py::arg("method_name") = sig.method_name,
                                py::arg("inputs") = specs_to_python(sig.inputs),
                                py::arg("outputs") = specs_to_python(sig.outputs));
}

py::object structured_to_python(const StructuredValue& v);

py::list items_to_python(const StructuredValue& v) {
  py::list out;
  for (const StructuredValue& item : v.items) out.append(structured_to_python(item));
  return out;
}

py::object shape_value(const StructuredValue& v) {
  return types().shape_value(py::arg("dims") = shape_to_python(v.shape, v.unknown_rank, Unknown::kMinusOne));
}

py::object dtype_value(const StructuredValue& v) { return types().dtype_value(py::arg("name") = dtype_text(v.dtype)); }

py::object opaque_value(const char* kind, const std::string& detail = "") {
  return types().opaque_value(py::arg("kind") = kind, py::arg("detail") = detail);
}

// A namedtuple of a class made for it, as TensorFlow's nested_structure_coder builds it; opaque
// when Python rejects the name or a field (TensorFlow's loader would fail too).
py::object named_tuple_to_python(const StructuredValue& v) {
  py::object cls;
  try {
    cls = types().namedtuple(v.string, py::cast(v.keys));
  } catch (py::error_already_set& e) {
    if (!e.matches(PyExc_ValueError)) throw;
    return opaque_value("namedtuple", v.string);
  }
  return cls(*items_to_python(v));
}

// The Python value TensorFlow's nested_structure_coder decodes, with smrt.saved_model's classes
// standing in for TensorShape, DType, TensorSpec and what smrt does not decode.
py::object structured_to_python(const StructuredValue& v) {
  using Kind = StructuredValue::Kind;
  switch (v.kind) {
    case Kind::kUnset:
    case Kind::kNone: return py::none();
    case Kind::kFloat64: return py::float_(v.float64);
    case Kind::kInt64: return py::int_(v.int64);
    case Kind::kString: return py::str(v.string);
    case Kind::kBool: return py::bool_(v.boolean);
    case Kind::kShape: return shape_value(v);
    case Kind::kDType: return dtype_value(v);
    case Kind::kTensorSpec:
      return types().tensor_spec_value(
          py::arg("name") = v.string.empty() ? py::object(py::none()) : py::object(py::str(v.string)),
          py::arg("shape") = shape_value(v), py::arg("dtype") = dtype_value(v));
    case Kind::kList: return items_to_python(v);
    case Kind::kTuple: return py::tuple(items_to_python(v));
    case Kind::kDict: {
      py::dict out;
      for (std::size_t i = 0; i < v.items.size(); ++i) out[py::str(v.keys[i])] = structured_to_python(v.items[i]);
      return std::move(out);
    }
    case Kind::kNamedTuple: return named_tuple_to_python(v);
    case Kind::kBoundedTensorSpec: return opaque_value("BoundedTensorSpec");
    case Kind::kTypeSpec: return opaque_value("TypeSpec", v.string);
    case Kind::kTensor: return opaque_value("tensor");
  }
  return py::none();
}

py::object concrete_function_to_python(const ConcreteFunctionInfo& c) {
  // The input signature is normally (args, kwargs); anything else (or none) gives None, None.
  const py::object signature = structured_to_python(c.input_signature);
  py::object args = py::none(), kwargs = py::none();
  if (PyTuple_Check(signature.ptr()) && PyTuple_GET_SIZE(signature.ptr()) == 2) {
    args = signature[py::int_(0)];
    kwargs = signature[py::int_(1)];
  }
  return types().concrete_function_info(py::arg("name") = c.name, py::arg("args") = args,
                                        py::arg("kwargs") = kwargs,
                                        py::arg("argument_keywords") = py::tuple(py::cast(c.argument_keywords)));
}

py::object object_graph_to_python(const ObjectGraphInfo& graph) {
  py::list functions;
  for (const FunctionInfo& f : graph.functions) {
    py::list concrete;
    for (const ConcreteFunctionInfo& c : f.concrete_functions) concrete.append(concrete_function_to_python(c));
    functions.append(types().function_info(py::arg("name") = f.name, py::arg("bare") = f.bare,
                                           py::arg("concrete_functions") = py::tuple(concrete)));
  }
  return types().object_graph_info(py::arg("functions") = py::tuple(functions), py::arg("loadable") = graph.loadable);
}

py::object reachable_ops_to_python(const std::map<std::string, std::vector<std::string>>& reachable) {
  py::dict out;
  for (const auto& [op, holders] : reachable) out[py::str(op)] = py::tuple(py::cast(holders));
  return types().mapping_proxy(out);
}

const char* kind_name(SavedObjectInfo::Kind kind) {
  using Kind = SavedObjectInfo::Kind;
  switch (kind) {
    case Kind::kUserObject: return "user_object";
    case Kind::kAsset: return "asset";
    case Kind::kFunction: return "function";
    case Kind::kVariable: return "variable";
    case Kind::kBareConcreteFunction: return "bare_concrete_function";
    case Kind::kConstant: return "constant";
    case Kind::kResource: return "resource";
    case Kind::kCapturedTensor: return "captured_tensor";
    case Kind::kOther: break;
  }
  return "other";
}

}  // namespace

py::object object_tree_to_python(const ObjectTree& tree) {
  std::vector<py::str> asset_names;
  for (const std::string& name : tree.asset_files) asset_names.emplace_back(name);
  py::list nodes;
  for (const SavedObjectInfo& node : tree.nodes) {
    py::dict out;
    out["kind"] = kind_name(node.kind);
    py::list children;
    for (const auto& [name, id] : node.children) children.append(py::make_tuple(py::str(name), id));
    out["children"] = children;
    if (node.kind == SavedObjectInfo::Kind::kVariable) {
      out["dtype"] = dtype_text(node.dtype);
      out["shape"] = shape_to_python(node.shape, node.unknown_rank, Unknown::kNegative);
      out["name"] = node.variable_name;
      out["checkpoint_key"] = node.checkpoint_key;
      out["bound"] = !node.graph_variable.empty();
    }
    if (node.kind == SavedObjectInfo::Kind::kAsset) {  // one str per file, shared by its objects
      out["asset_filename"] = node.asset_file >= 0 ? asset_names[static_cast<std::size_t>(node.asset_file)] : py::str("");
    }
    out["concrete_functions"] = py::cast(node.concrete_functions);
    out["argument_keywords"] = py::cast(node.argument_keywords);
    out["fullargspec"] = structured_to_python(node.fullargspec);
    nodes.append(out);
  }
  py::dict concrete;
  for (const auto& [name, spec] : tree.concrete_functions) {
    if (!spec.in_library) continue;  // not callable: TensorFlow's loader would fail on it
    py::dict out;
    out["input_signature"] = structured_to_python(spec.input_signature);
    out["output_signature"] = structured_to_python(spec.output_signature);
    out["has_outputs"] = !spec.output_dtypes.empty();
    concrete[py::str(name)] = out;
  }
  return py::make_tuple(nodes, concrete);
}

py::object meta_graph_to_python(const MetaGraphInfo& meta) {
  py::dict signatures;
  for (const SignatureInfo& sig : meta.signatures) signatures[py::str(sig.key)] = signature_to_python(sig);
  return types().meta_graph_info(
      py::arg("tags") = py::tuple(py::cast(meta.tags)), py::arg("signatures") = types().mapping_proxy(signatures),
      py::arg("ops") = meta.ops ? py::object(py::tuple(py::cast(*meta.ops))) : py::object(py::none()),
      py::arg("has_object_graph") = meta.has_object_graph,
      py::arg("object_graph") = meta.object_graph ? object_graph_to_python(*meta.object_graph) : py::object(py::none()),
      py::arg("reachable_ops") = meta.reachable_ops ? reachable_ops_to_python(*meta.reachable_ops) : py::object(py::none()));
}

}  // namespace smrt::bindings
