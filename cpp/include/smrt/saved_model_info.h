// What saved_model.pb says, read without libtensorflow: tag-sets and SignatureDefs.
#pragma once

#include <cstdint>
#include <map>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include "smrt/dtype.h"

namespace smrt {

// One input or output of a signature (a TensorInfo in SignatureDef).
struct TensorSpec {
  std::string key;          // the signature's name for it ("x", "output_0")
  DType dtype = DType::kInvalid;
  std::vector<int64_t> shape;  // -1 for an unknown dimension
  bool unknown_rank = false;   // when true, `shape` is empty and means nothing
  std::string tensor_name;     // graph tensor, "serving_default_x:0"
};

struct SignatureInfo {
  std::string key;
  std::string method_name;         // "tensorflow/serving/predict"
  std::vector<TensorSpec> inputs;  // sorted by key
  std::vector<TensorSpec> outputs; // sorted by key
};

// A StructuredValue (tensorflow/core/protobuf/struct.proto): how TensorFlow's nested_structure_coder
// stores a function's Python-level input signature. Only what saved_model_cli prints is kept.
struct StructuredValue {
  enum class Kind {
    kUnset,        // no field set (TensorFlow decodes it as None too, but it means "missing")
    kNone, kFloat64, kInt64, kString, kBool,
    kShape,        // a TensorShape: `shape` / `unknown_rank`
    kDType,        // a tf.DType: `dtype`
    kTensorSpec,   // `string` is the name ("" for None), with `shape`, `unknown_rank`, `dtype`
    kList, kTuple, // `items`
    kDict,         // `keys` and `items`, in the file's order
    kNamedTuple,   // `string` is the type name; `keys` (field names) and `items`
    // Stored but not decoded further (their Python reprs need TensorFlow's classes or NumPy
    // arrays): a BoundedTensorSpec, another TypeSpec (`string` = its class name), a tensor.
    kBoundedTensorSpec, kTypeSpec, kTensor,
  };
  Kind kind = Kind::kUnset;
  double float64 = 0;
  int64_t int64 = 0;
  bool boolean = false;
  std::string string;
  DType dtype = DType::kInvalid;
  std::vector<int64_t> shape;  // -1 for an unknown dimension
  bool unknown_rank = false;
  std::vector<std::string> keys;
  std::vector<StructuredValue> items;
};

// One concrete function of a saved tf.function (or a bare concrete function).
struct ConcreteFunctionInfo {
  std::string name;                  // its FunctionDef's name in the library
  // SavedConcreteFunction.canonicalized_input_signature: normally a 2-tuple (args, kwargs);
  // kUnset when the object graph has none.
  StructuredValue input_signature;
  std::vector<std::string> argument_keywords;  // bare concrete functions only
};

// A child of the SavedModel's root object that is a tf.function or a concrete function.
struct FunctionInfo {
  std::string name;   // the child's local name ("serve", "__call__")
  bool bare = false;  // a SavedBareConcreteFunction rather than a SavedFunction
  // In the order saved_model_cli lists them: by the name TensorFlow's loader gives each
  // ("__inference_<name>_<uid>", uids in the loader's topological order of the library).
  std::vector<ConcreteFunctionInfo> concrete_functions;
};

// The functions of MetaGraphDef.object_graph_def, as saved_model_cli's "Concrete Functions:"
// section lists them.
struct ObjectGraphInfo {
  std::vector<FunctionInfo> functions;  // the root's function children, sorted by name
  // False when the file itself shows tf.saved_model.load would fail (a child or concrete
  // function that is not there, a cycle in the function library): saved_model_cli then
  // prints "N/A (could not be listed due to unknown reasons)".
  bool loadable = true;
};

// One node of the SavedObjectGraph (tf.saved_model.load's restored object tree).
struct SavedObjectInfo {
  enum class Kind {
    kOther,  // no kind set, or one smrt does not know
    kUserObject, kAsset, kFunction, kVariable, kBareConcreteFunction, kConstant, kResource,
    kCapturedTensor,
  };
  Kind kind = Kind::kOther;
  std::vector<std::pair<std::string, int>> children;  // (local_name, node id), in file order
  // kVariable: SavedVariable{dtype, shape, name}.
  DType dtype = DType::kInvalid;
  std::vector<int64_t> shape;  // -1 for an unknown dimension
  bool unknown_rank = false;
  std::string variable_name;
  // kVariable: its checkpoint key (its first path from the root, breadth first, as
  // TensorFlow's checkpoint names it; "" when unreachable) and the graph's VarHandleOp the
  // restore op fills from that key ("" when the file does not establish one).
  std::string checkpoint_key;
  std::string graph_variable;
  // Any kind: the graph tensor ("op:index") the MetaGraph's own calls of object-graph functions
  // (its signatures, its init op's table initializers) pass for this object. A variable, a
  // table or another resource captured by those calls is bound to it, so functions share
  // state with the signatures; "" when no call passes it, or calls disagree.
  std::string graph_tensor;
  // kAsset: its index in ObjectTree::asset_files; -1 when it names no AssetFileDef. (An index,
  // not the name: any number of objects may name one file, and a copy each would let a small
  // crafted file ask for a copy of a long name per object.)
  int asset_file = -1;
  // kConstant: SavedConstant.operation, the graph's Const op holding its value.
  std::string graph_operation;
  // kFunction / kBareConcreteFunction: the concrete functions, and for a tf.function its
  // FunctionSpec's fullargspec (a "FullArgSpec" named tuple; kUnset when absent).
  std::vector<std::string> concrete_functions;
  std::vector<std::string> argument_keywords;  // bare concrete functions only
  StructuredValue fullargspec;
};

// SavedConcreteFunction, with its FunctionDef's arg types.
struct ConcreteFunctionSpec {
  std::vector<int> bound_inputs;  // node ids of the captured inputs, in order
  StructuredValue input_signature;   // normally (args, kwargs)
  StructuredValue output_signature;  // the outputs' structure, TensorSpecs as leaves
  bool in_library = false;           // whether the graph's function library defines it
  std::vector<DType> input_dtypes;   // the FunctionDef's inputs: user inputs, then captures
  std::vector<DType> output_dtypes;
};

// The restored object tree: node 0 is the root.
struct ObjectTree {
  std::vector<SavedObjectInfo> nodes;
  // The MetaGraph's AssetFileDef filenames, relative to the SavedModel's assets/ directory.
  std::vector<std::string> asset_files;
  std::map<std::string, ConcreteFunctionSpec> concrete_functions;
};

struct MetaGraphInfo {
  std::vector<std::string> tags;           // as stored
  std::vector<SignatureInfo> signatures;   // sorted by key
  // The ops the graph uses, sorted, as saved_model_cli --list_ops counts them (graph nodes and
  // the functions they call); filled only when inspect() is asked for them.
  std::optional<std::vector<std::string>> ops;
  // Every op that can run, with its holders: the library functions that contain it (sorted
  // names) and "" for the graph itself. Reached from every graph node (the init and restore
  // ops that run at load included) and from the object graph's concrete functions, following
  // nodes that call library functions and every function-valued attr (If/While/Case branches
  // and bodies, PartitionedCall's f, tf.data functions...), transitively. A superset of `ops`;
  // what smrt scan and op policies check. Filled only when inspect() is asked for ops.
  std::optional<std::map<std::string, std::vector<std::string>>> reachable_ops;
  bool has_object_graph = false;  // whether object_graph_def is present (TF2 SavedModels)
  // The root object's functions, read from object_graph_def; filled only when inspect() is
  // asked for them and the MetaGraph has an object graph.
  std::optional<ObjectGraphInfo> object_graph;
  // The whole object graph with variable bindings; filled only when asked for (Model::load).
  std::optional<ObjectTree> object_tree;
  // The ops a call can execute (sorted): each signature's (from its outputs back through the
  // graph, into every function reached) and the object graph's functions'. What a backend
  // other than TensorFlow checks (variables written); filled only when asked for
  // (`with_ops_run`), and left empty when the walk would pass a budget linear in the file's
  // size (a crafted file's signatures can share one huge graph).
  struct OpsRun {
    std::map<std::string, std::vector<std::string>> by_signature;
    std::vector<std::string> by_functions;
  };
  std::optional<OpsRun> ops_run;
  // The signature with this key, or nullptr.
  const SignatureInfo* find_signature(std::string_view key) const noexcept;
  // Same tags, ignoring order and repeats.
  bool has_tags(const std::vector<std::string>& tags) const;
};

struct SavedModelInfo {
  std::string path;                   // the directory
  std::vector<MetaGraphInfo> meta_graphs;
  // The MetaGraph with exactly this tag-set; throws NotFound-coded StatusError naming the
  // tag-sets there are.
  const MetaGraphInfo& meta_graph(const std::vector<std::string>& tags) const;
};

// Reads `dir`/saved_model.pb. Throws ModelNotFoundError if the directory or file is missing,
// a DataLoss StatusError if the file is empty, truncated or not a SavedModel, and (with
// `with_functions`) a ResourceExhausted StatusError if its functions listing would expand far
// beyond the file's size. Time and memory stay linear in the file's size.
// `with_tree`: also the object tree of MetaGraphs that have one; with `tree_tags`, of the
// MetaGraph with those tags only (the one a load uses). `with_ops_run`: with `with_tree`, also
// the ops each signature runs (MetaGraphInfo::ops_run), for the same MetaGraphs.
SavedModelInfo inspect(const std::string& dir, bool with_ops = false, bool with_functions = false,
                       bool with_tree = false, const std::vector<std::string>* tree_tags = nullptr,
                       bool with_ops_run = false);

// Decodes the bytes of a saved_model.pb; `origin` names it in error messages. Never reads
// out of bounds, whatever the bytes (it is fuzzed); throws as inspect() does.
SavedModelInfo parse_saved_model(std::string_view bytes, const std::string& origin, bool with_ops = false,
                                 bool with_functions = false, bool with_tree = false,
                                 const std::vector<std::string>* tree_tags = nullptr, bool with_ops_run = false);

}  // namespace smrt
