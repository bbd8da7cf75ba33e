// SavedObjectGraph{nodes=1 SavedObject, concrete_functions=2 map<string, SavedConcreteFunction>}
// SavedObject{children=1 ObjectReference{node_id=1, local_name=2}, and the `kind` oneof:
//   user_object=4, asset=5 SavedAsset{asset_file_def_index=1}, function=6 SavedFunction{concrete_functions=1, function_spec=2
//   FunctionSpec{fullargspec=1 StructuredValue}}, variable=7 SavedVariable{dtype=1, shape=2,
//   name=6}, bare_concrete_function=8 SavedBareConcreteFunction{concrete_function_name=1,
//   argument_keywords=2, function_spec=4}, constant=9 SavedConstant{operation=1},
//   resource=10, captured_tensor=12}
// SavedConcreteFunction{bound_inputs=2 (int32 node ids), canonicalized_input_signature=3,
//   output_signature=4 (StructuredValues)}
// SaverDef{restore_op_name=3}: the restore function ties checkpoint keys to graph variables.
// AssetFileDef{filename=2} (MetaGraphDef.asset_file_def, repeated): an asset's file name.
// The graph's own StatefulPartitionedCall/PartitionedCall nodes of object-graph functions
// (signatures, table initializers) tie captured objects to graph tensors.
// StructuredValue{none_value=1, float64_value=11 (double), int64_value=12 (sint64),
//   string_value=13, bool_value=14, tensor_shape_value=31, tensor_dtype_value=32,
//   tensor_spec_value=33 {name=1, shape=2, dtype=3}, type_spec_value=34
//   {type_spec_class_name=3}, bounded_tensor_spec_value=35, list_value=51 {values=1},
//   tuple_value=52 {values=1}, dict_value=53 {fields=1 map<string, StructuredValue>},
//   named_tuple_value=54 {name=1, values=2 PairValue{key=1, value=2}}, tensor_value=55,
//   numpy_value=56}  (a oneof: a different member replaces, the same one merges)
// Parsed as protobuf parses: a singular message field that occurs several times merges, the
// last scalar wins, repeated fields concatenate, and a map's last entry for a key wins.
#include "object_graph_reader.h"

#include <algorithm>
#include <cctype>
#include <cstring>
#include <limits>
#include <map>
#include <optional>
#include <set>
#include <string>
#include <vector>

#include "graph_def_reader.h"
#include "wire_reader.h"

namespace smrt::detail {
namespace {

using wire::Reader;
using wire::WireError;

constexpr int kMaxDepth = 100;  // protobuf's own default recursion limit

using wire::for_each_field;

// Merges one occurrence of a StructuredValue into `v`, as protobuf's MergeFrom does, so that
// merging each occurrence in turn equals parsing their concatenation without copying bytes:
// every known field is a member of the `kind` oneof, so a different member replaces what was
// set; the same scalar member is overwritten; the same message member merges (its repeated
// fields append, its scalars are overwritten). finish_value() completes it.
void merge_value(std::string_view message, StructuredValue& v, int depth);

StructuredValue read_value(std::string_view message, int depth) {
  StructuredValue v;
  merge_value(message, v, depth);
  return v;
}

// A {key = 1 string, value = 2 StructuredValue} pair: a map entry or a PairValue; a value that
// occurs twice in one pair merges. Kept in file order: finish_value() applies map semantics.
void read_pair(std::string_view message, int depth, StructuredValue& into) {
  std::string key;
  StructuredValue value;
  for_each_field(message, [&](Reader& r) {
    if (r.field() == 1) key = std::string(r.utf8());
    else if (r.field() == 2) merge_value(r.bytes(), value, depth + 1);
    else r.skip();
  });
  into.keys.push_back(std::move(key));
  into.items.push_back(std::move(value));
}

DType read_dtype(Reader& r) { return static_cast<DType>(static_cast<int32_t>(r.int64())); }

// --- One merge per member of the `kind` oneof: `v` already holds that member; `r` is at it.

void merge_float64(Reader& r, StructuredValue& v, int) { v.float64 = r.float64(); }

void merge_sint64(Reader& r, StructuredValue& v, int) {  // zigzag-encoded
  const auto bits = static_cast<uint64_t>(r.int64());
  v.int64 = static_cast<int64_t>(bits >> 1) ^ -static_cast<int64_t>(bits & 1);
}

void merge_string(Reader& r, StructuredValue& v, int) { v.string = std::string(r.utf8()); }

void merge_bool(Reader& r, StructuredValue& v, int) { v.boolean = r.boolean(); }

void merge_dtype(Reader& r, StructuredValue& v, int) { v.dtype = read_dtype(r); }

void merge_shape(Reader& r, StructuredValue& v, int) {
  wire::merge_tensor_shape(r.bytes(), v.shape, v.unknown_rank);
}

// TensorSpecProto{name = 1, shape = 2, dtype = 3}.
void merge_tensor_spec(Reader& r, StructuredValue& v, int) {
  for_each_field(r.bytes(), [&](Reader& s) {
    if (s.field() == 1) v.string = std::string(s.utf8());
    else if (s.field() == 2) wire::merge_tensor_shape(s.bytes(), v.shape, v.unknown_rank);
    else if (s.field() == 3) v.dtype = read_dtype(s);
    else s.skip();
  });
}

// TypeSpecProto{type_spec_class_name = 3}.
void merge_type_spec(Reader& r, StructuredValue& v, int) {
  for_each_field(r.bytes(), [&](Reader& s) {
    if (s.field() == 3) v.string = std::string(s.utf8());
    else s.skip();
  });
}

// ListValue / TupleValue{values = 1}.
void merge_items(Reader& r, StructuredValue& v, int depth) {
  for_each_field(r.bytes(), [&](Reader& l) {
    if (l.field() == 1) v.items.push_back(read_value(l.bytes(), depth + 1));
    else l.skip();
  });
}

// DictValue{fields = 1 map<string, StructuredValue>}.
void merge_dict(Reader& r, StructuredValue& v, int depth) {
  for_each_field(r.bytes(), [&](Reader& d) {
    if (d.field() == 1) read_pair(d.bytes(), depth, v);
    else d.skip();
  });
}

// NamedTupleValue{name = 1, values = 2 PairValue}.
void merge_named_tuple(Reader& r, StructuredValue& v, int depth) {
  for_each_field(r.bytes(), [&](Reader& t) {
    if (t.field() == 1) v.string = std::string(t.utf8());
    else if (t.field() == 2) read_pair(t.bytes(), depth, v);
    else t.skip();
  });
}

// NoneValue, BoundedTensorSpecProto, TensorProto, NumPy values: not decoded, but checked to be
// well-formed messages.
void merge_opaque(Reader& r, StructuredValue&, int) {
  for_each_field(r.bytes(), [](Reader& x) { x.skip(); });
}

struct Member {
  uint32_t field;
  wire::WireType type;  // its declared type's
  StructuredValue::Kind kind;
  void (*merge)(Reader& r, StructuredValue& v, int depth);
};

constexpr auto kBytes = wire::kLengthDelimited;  // messages and strings

// StructuredValue's `kind` oneof: field number, wire type, what smrt calls it, how it merges.
constexpr Member kMembers[] = {
    {1, kBytes, StructuredValue::Kind::kNone, merge_opaque},
    {11, wire::kFixed64, StructuredValue::Kind::kFloat64, merge_float64},
    {12, wire::kVarint, StructuredValue::Kind::kInt64, merge_sint64},
    {13, kBytes, StructuredValue::Kind::kString, merge_string},
    {14, wire::kVarint, StructuredValue::Kind::kBool, merge_bool},
    {31, kBytes, StructuredValue::Kind::kShape, merge_shape},
    {32, wire::kVarint, StructuredValue::Kind::kDType, merge_dtype},
    {33, kBytes, StructuredValue::Kind::kTensorSpec, merge_tensor_spec},
    {34, kBytes, StructuredValue::Kind::kTypeSpec, merge_type_spec},
    {35, kBytes, StructuredValue::Kind::kBoundedTensorSpec, merge_opaque},
    {51, kBytes, StructuredValue::Kind::kList, merge_items},
    {52, kBytes, StructuredValue::Kind::kTuple, merge_items},
    {53, kBytes, StructuredValue::Kind::kDict, merge_dict},
    {54, kBytes, StructuredValue::Kind::kNamedTuple, merge_named_tuple},
    {55, kBytes, StructuredValue::Kind::kTensor, merge_opaque},  // tensor_value
    {56, kBytes, StructuredValue::Kind::kTensor, merge_opaque},  // numpy_value: opaque alike
};

// The oneof member the current field is, or nullptr: not a member, or one that came with
// another wire type, which protobuf parses as an unknown field (it leaves the oneof as it was).
const Member* member_of(const Reader& r) {
  for (const Member& member : kMembers) {
    if (member.field == r.field()) return r.is(member.type) ? &member : nullptr;
  }
  return nullptr;
}

void merge_value(std::string_view message, StructuredValue& v, int depth) {
  if (depth > kMaxDepth) throw WireError("StructuredValue nested too deeply");
  for_each_field(message, [&](Reader& r) {
    const Member* member = member_of(r);
    if (!member) {
      r.skip();
      return;
    }
    if (v.kind != member->kind) v = StructuredValue();  // another member replaces
    v.kind = member->kind;
    member->merge(r, v, depth);
  });
}

// Once every occurrence is merged, at every depth: a shape of unknown rank drops its dims, and
// a dict gets protobuf map semantics (the last entry for a key wins, kept in its first place).
void finish_value(StructuredValue& v) {
  for (auto& item : v.items) finish_value(item);
  if (v.unknown_rank) v.shape.clear();
  if (v.kind != StructuredValue::Kind::kDict) return;
  std::vector<std::string> keys;
  std::vector<StructuredValue> items;
  std::map<std::string, std::size_t> at;
  for (std::size_t i = 0; i < v.keys.size(); ++i) {
    auto [it, fresh] = at.emplace(v.keys[i], keys.size());
    if (fresh) {
      keys.push_back(std::move(v.keys[i]));
      items.push_back(std::move(v.items[i]));
    } else {
      items[it->second] = std::move(v.items[i]);
    }
  }
  v.keys = std::move(keys);
  v.items = std::move(items);
}

// What a decoded value costs to hand out: one per value, plus its strings' bytes.
std::size_t cost(const StructuredValue& v) {
  std::size_t total = 1 + v.string.size() + v.shape.size();
  for (const auto& key : v.keys) total += key.size();
  for (const auto& item : v.items) total += cost(item);
  return total;
}

struct SavedObject {
  std::vector<std::pair<std::string, uint64_t>> children;  // (local_name, node_id)
  enum { kOther, kFunction, kBare } kind = kOther;
  uint32_t member = 0;  // the field number of the `kind` oneof's member, 0 if none
  std::vector<std::string> concrete_functions;
  std::vector<std::string> argument_keywords;
  wire::Merged function_spec;  // SavedFunction.function_spec = 2 / SavedBareConcreteFunction's = 4
  wire::Merged variable;       // SavedVariable, when member == 7
  wire::Merged constant;       // SavedConstant, when member == 9
  wire::Merged asset;          // SavedAsset, when member == 5
};

SavedObject read_object(std::string_view message) {
  SavedObject object;
  for_each_field(message, [&](Reader& r) {
    if (r.field() == 1) {
      uint64_t node = 0;
      std::string name;
      for_each_field(r.bytes(), [&](Reader& c) {
        if (c.field() == 1) node = static_cast<uint64_t>(c.int64());
        else if (c.field() == 2) name = std::string(c.utf8());
        else c.skip();
      });
      object.children.emplace_back(std::move(name), node);
      return;
    }
    // Every member of the `kind` oneof is a message; one with another wire type is an unknown
    // field to protobuf, which leaves the oneof as it was.
    const bool oneof = ((r.field() >= 4 && r.field() <= 10) || r.field() == 12) && r.is(wire::kLengthDelimited);
    if (!oneof) {
      r.skip();
      return;
    }
    // The `kind` oneof: another member replaces what was set; the same one merges.
    if (object.member != r.field()) {
      object.concrete_functions.clear();
      object.argument_keywords.clear();
      object.function_spec.clear();
      object.variable.clear();
      object.constant.clear();
      object.asset.clear();
    }
    object.member = r.field();
    if (r.field() == 6 || r.field() == 8) {
      const bool bare = r.field() == 8;
      object.kind = bare ? SavedObject::kBare : SavedObject::kFunction;
      for_each_field(r.bytes(), [&](Reader& f) {
        if (f.field() == 1) {
          std::string name(f.utf8());
          if (bare) object.concrete_functions.assign(1, std::move(name));  // a singular field
          else object.concrete_functions.push_back(std::move(name));
        } else if (f.field() == 2 && bare) {
          object.argument_keywords.emplace_back(f.utf8());
        } else if (f.field() == (bare ? 4u : 2u)) {
          object.function_spec.add(f.bytes());
        } else {
          f.skip();
        }
      });
    } else if (r.field() == 7 && r.type() == wire::kLengthDelimited) {
      object.kind = SavedObject::kOther;
      object.variable.add(r.bytes());
    } else if (r.field() == 9 && r.type() == wire::kLengthDelimited) {
      object.kind = SavedObject::kOther;
      object.constant.add(r.bytes());
    } else if (r.field() == 5 && r.type() == wire::kLengthDelimited) {
      object.kind = SavedObject::kOther;
      object.asset.add(r.bytes());
    } else {
      object.kind = SavedObject::kOther;
      r.skip();
    }
  });
  return object;
}

// The order tensorflow's function_deserialization.load_function_def_library creates the
// library's functions in (its _sort_function_defs), or nothing when that sort fails (TF's
// loader then raises: a cycle, or a dependency on a function not in the library).
std::optional<std::vector<std::string>> load_order(const GraphDefInfo& graph) {
  std::vector<std::string> names;                                    // library order
  std::map<std::string, const std::vector<NodeInfo>*> bodies;         // a later duplicate wins
  for (const auto& function : graph.functions) {
    names.push_back(function.name);
    bodies[function.name] = &function.nodes;
  }
  const std::set<std::string> library(names.begin(), names.end());
  std::map<std::string, std::vector<std::string>> edges;  // dep -> functions that need it
  std::map<std::string, int> in_count;
  for (const auto& [name, nodes] : bodies) {
    std::set<std::string> deps;  // _list_function_deps (custom-gradient deps not modelled)
    for (const NodeInfo& node : *nodes) {
      if (library.count(node.op)) deps.insert(node.op);
      else deps.insert(node.attr_functions.begin(), node.attr_functions.end());
    }
    for (const auto& dep : deps) {
      edges[dep].push_back(name);
      ++in_count[name];
    }
  }
  std::vector<std::string> ready, output;
  for (const auto& name : names) {
    if (in_count[name] == 0) ready.push_back(name);
  }
  while (!ready.empty()) {
    std::string node = std::move(ready.back());
    ready.pop_back();
    output.push_back(node);
    for (const auto& dest : edges[node]) {
      if (--in_count[dest] == 0) ready.push_back(dest);
    }
  }
  if (output.size() != names.size()) return std::nullopt;
  return output;
}

// "__inference_<name>_<digits>" -> "<name>", as function_deserialization._clean_function_name.
std::string clean_function_name(const std::string& name) {
  static const std::string prefix = "__inference_";
  if (name.compare(0, prefix.size(), prefix) != 0) return name;
  std::size_t end = name.size();
  while (end > prefix.size() && std::isdigit(static_cast<unsigned char>(name[end - 1]))) --end;
  if (end == name.size() || end <= prefix.size() || name[end - 1] != '_') return name;
  return name.substr(prefix.size(), end - 1 - prefix.size());
}

// SavedObjectGraph{nodes = 1, concrete_functions = 2}: the nodes' bytes, and each concrete
// function's SavedConcreteFunction (map semantics: the last entry for a name wins; a value
// that occurs twice in one entry merges).
struct ObjectGraphBytes {
  std::vector<std::string_view> nodes;
  std::map<std::string, wire::Merged> concrete;
};

ObjectGraphBytes split_object_graph(std::string_view object_graph) {
  ObjectGraphBytes out;
  for_each_field(object_graph, [&](Reader& r) {
    if (r.field() == 1) {
      out.nodes.push_back(r.bytes());
    } else if (r.field() == 2) {
      wire::add_map_entry(r.bytes(), out.concrete);
    } else {
      r.skip();
    }
  });
  return out;
}

// The name TF's loader gives each library function ("__inference_<clean name>_<uid>", uids
// increasing in load order), which saved_model_cli sorts by; nothing when the loader would
// fail. Same-length uids are assumed (the real ones depend on the process's history).
std::optional<std::map<std::string, std::string>> loaded_names(const GraphDefInfo& graph_def) {
  const auto order = load_order(graph_def);
  if (!order) return std::nullopt;
  std::map<std::string, std::string> names;
  for (std::size_t i = 0; i < order->size(); ++i) {
    names[(*order)[i]] = "__inference_" + clean_function_name((*order)[i]) + "_" + std::to_string(1000000000 + i);
  }
  return names;
}

// SavedConcreteFunction{canonicalized_input_signature = 3}: the decoded, finished signature.
StructuredValue read_input_signature(std::string_view saved_concrete_function) {
  StructuredValue signature;
  for_each_field(saved_concrete_function, [&](Reader& c) {
    if (c.field() == 3) merge_value(c.bytes(), signature, 0);
    else c.skip();
  });
  finish_value(signature);
  return signature;
}

// Lists the root's function children. Each concrete function's input signature is decoded
// once, however many functions list it; handing out copies is what can multiply (root children
// that alias one function node, a function that lists one concrete function many times), so
// every copy and name is taken from `budget`.
class FunctionLister {
 public:
  FunctionLister(const ObjectGraphBytes& graph, const GraphDefInfo& graph_def, std::size_t& budget)
      : graph_(graph), budget_(budget) {
    if (auto names = loaded_names(graph_def)) loaded_name_ = std::move(*names);
    else loadable = false;
  }

  FunctionInfo list(const std::string& name, const SavedObject& child) {
    FunctionInfo function;
    function.name = name;
    function.bare = child.kind == SavedObject::kBare;
    spend(1 + name.size());
    for (const auto& fn : child.concrete_functions) {
      spend(1 + fn.size());  // listed names count even when missing: aliasing multiplies them too
      auto found = graph_.concrete.find(fn);
      if (found == graph_.concrete.end()) {
        loadable = false;
        continue;
      }
      ConcreteFunctionInfo cf;
      cf.name = fn;
      cf.input_signature = input_signature(fn, found->second.view());
      if (!loaded_name_.count(fn)) loadable = false;  // not in the function library
      if (function.bare) {
        for (const auto& keyword : child.argument_keywords) spend(1 + keyword.size());
        cf.argument_keywords = child.argument_keywords;
      }
      function.concrete_functions.push_back(std::move(cf));
    }
    std::stable_sort(function.concrete_functions.begin(), function.concrete_functions.end(),
                     [&](const ConcreteFunctionInfo& a, const ConcreteFunctionInfo& b) {
                       return loaded_name_[a.name] < loaded_name_[b.name];
                     });
    return function;
  }

  bool loadable = true;  // false once the file shows TF's loader would fail

 private:
  // A copy of `fn`'s decoded signature, paid for.
  const StructuredValue& input_signature(const std::string& fn, std::string_view saved_concrete_function) {
    auto cached = decoded_.find(fn);
    if (cached == decoded_.end()) {
      StructuredValue signature = read_input_signature(saved_concrete_function);
      const std::size_t size = cost(signature);
      cached = decoded_.emplace(fn, std::make_pair(std::move(signature), size)).first;
    }
    spend(cached->second.second);
    return cached->second.first;
  }

  void spend(std::size_t amount) {
    if (amount > budget_) {
      throw ExpansionError("root children that alias one function, or functions that list one concrete "
                           "function many times, multiply its input signature");
    }
    budget_ -= amount;
  }

  const ObjectGraphBytes& graph_;
  std::size_t& budget_;
  std::map<std::string, std::string> loaded_name_;
  std::map<std::string, std::pair<StructuredValue, std::size_t>> decoded_;  // name -> (value, cost)
};

}  // namespace

std::vector<std::string> concrete_function_names(std::string_view object_graph) {
  const ObjectGraphBytes graph = split_object_graph(object_graph);
  std::vector<std::string> names;
  for (const auto& [name, value] : graph.concrete) names.push_back(name);
  for (std::string_view node : graph.nodes) {
    const SavedObject object = read_object(node);
    names.insert(names.end(), object.concrete_functions.begin(), object.concrete_functions.end());
  }
  return names;
}

ObjectGraphInfo read_object_graph(std::string_view object_graph, const GraphDefInfo& graph_def,
                                  std::size_t& budget) {
  ObjectGraphInfo info;
  const ObjectGraphBytes graph = split_object_graph(object_graph);
  if (graph.nodes.empty()) {  // TF's loader cannot make a root object
    info.loadable = false;
    return info;
  }
  FunctionLister lister(graph, graph_def, budget);
  // Every node is decoded (TF's loader builds them all) so corrupt bytes anywhere are reported.
  std::vector<SavedObject> objects;
  objects.reserve(graph.nodes.size());
  for (std::string_view node : graph.nodes) objects.push_back(read_object(node));
  for (const auto& [name, node_id] : objects[0].children) {
    if (node_id >= objects.size()) {
      lister.loadable = false;
      continue;
    }
    const SavedObject& child = objects[node_id];
    if (child.kind != SavedObject::kOther) info.functions.push_back(lister.list(name, child));
  }
  info.loadable = lister.loadable;
  std::stable_sort(info.functions.begin(), info.functions.end(),
                   [](const FunctionInfo& a, const FunctionInfo& b) { return a.name < b.name; });
  return info;
}

namespace {

// TensorFlow's checkpoint names an object by its path from the root, each local name escaped
// (trackable_utils.escape_local_name: "." -> "..", "/" -> ".S").
std::string escape_local_name(const std::string& name) {
  std::string out;
  for (char c : name) {
    if (c == '.') out += "..";
    else if (c == '/') out += ".S";
    else out += c;
  }
  return out;
}

// Each node's parent on its first path from the root, breadth first over children in file
// order, as TensorFlow's ObjectGraphView._breadth_first_traversal finds it: (parent, the
// child's index in it); (-1, 0) for the root and for nodes the root does not reach.
std::vector<std::pair<int, std::size_t>> first_parents(const std::vector<SavedObjectInfo>& nodes) {
  std::vector<std::pair<int, std::size_t>> parents(nodes.size(), {-1, 0});
  std::vector<bool> seen(nodes.size(), false);
  if (nodes.empty()) return parents;
  seen[0] = true;
  std::vector<int> queue{0};
  for (std::size_t next = 0; next < queue.size(); ++next) {
    const int node = queue[next];
    const auto& children = nodes[static_cast<std::size_t>(node)].children;
    for (std::size_t i = 0; i < children.size(); ++i) {
      const int child = children[i].second;
      if (child < 0 || seen[static_cast<std::size_t>(child)]) continue;
      seen[static_cast<std::size_t>(child)] = true;
      parents[static_cast<std::size_t>(child)] = {node, i};
      queue.push_back(child);
    }
  }
  return parents;
}

// The checkpoint key of `node` ("" when the root does not reach it, or when the keys would
// cost more than `budget` bytes in all: a file of deep chains cannot make them quadratic).
std::string checkpoint_key(const std::vector<SavedObjectInfo>& nodes,
                           const std::vector<std::pair<int, std::size_t>>& parents, int node, std::size_t& budget) {
  std::vector<const std::string*> names;
  for (int at = node; at != 0; at = parents[static_cast<std::size_t>(at)].first) {
    const auto [parent, index] = parents[static_cast<std::size_t>(at)];
    if (parent < 0) return "";
    const std::string& name = nodes[static_cast<std::size_t>(parent)].children[index].first;
    if (name.size() + 1 > budget) return "";
    budget -= name.size() + 1;
    names.push_back(&name);
  }
  if (names.empty()) return "";
  std::string key;
  for (auto it = names.rbegin(); it != names.rend(); ++it) key += escape_local_name(**it) + "/";
  return key + ".ATTRIBUTES/VARIABLE_VALUE";
}

// "node:out:3" -> ("node", "out", 3) for a FunctionDef's data input; nothing for a control
// input or any other form.
struct FunctionInput {
  std::string node, output;
  long index = 0;
};
std::optional<FunctionInput> split_function_input(const std::string& input) {
  if (input.empty() || input[0] == '^') return std::nullopt;
  const auto first = input.find(':');
  if (first == std::string::npos) return FunctionInput{input, "", -1};  // a function argument
  const auto second = input.find(':', first + 1);
  if (second == std::string::npos) return std::nullopt;
  const std::string digits = input.substr(second + 1);
  if (digits.empty() || digits.size() > 9 || digits.find_first_not_of("0123456789") != std::string::npos) return std::nullopt;
  return FunctionInput{input.substr(0, first), input.substr(first + 1, second - first - 1), std::stol(digits)};
}

// A graph node's data input "node" or "node:0" -> "node"; "" for anything else.
std::string graph_input_node(const std::string& input) {
  if (input.empty() || input[0] == '^') return "";
  const auto colon = input.find(':');
  if (colon == std::string::npos) return input;
  return input.compare(colon, std::string::npos, ":0") == 0 ? input.substr(0, colon) : "";
}

// SaverDef{restore_op_name = 3}.
std::string restore_op_name(std::string_view saver_def) {
  std::string name;
  for_each_field(saver_def, [&](Reader& r) {
    if (r.field() == 3) name = std::string(r.utf8());
    else r.skip();
  });
  const auto colon = name.find(':');
  return colon == std::string::npos ? name : name.substr(0, colon);
}

// checkpoint key -> the graph's VarHandleOp that the restore op assigns that key's value to.
// Followed in the restore function (the restore op's `f`): RestoreV2(prefix, tensor_names
// Const, ...), AssignVariableOp(<arg>, Identity*(RestoreV2:tensors:j)), and the restore op's
// input for <arg>. Keys that any step leaves ambiguous are left out: no binding beats a wrong one.
std::map<std::string, std::string> restored_variables(const GraphDefInfo& graph, std::string_view saver_def) {
  std::map<std::string, std::string> bound;
  const std::string restore_name = restore_op_name(saver_def);
  if (restore_name.empty()) return bound;
  std::map<std::string, const NodeInfo*> graph_nodes;
  std::set<std::string> duplicate_nodes;
  for (const NodeInfo& node : graph.nodes) {
    if (!graph_nodes.emplace(node.name, &node).second) duplicate_nodes.insert(node.name);
  }
  auto restore = graph_nodes.find(restore_name);
  if (restore == graph_nodes.end() || duplicate_nodes.count(restore_name) || restore->second->f_function.empty()) {
    return bound;
  }
  const NodeInfo& call = *restore->second;
  const FunctionDefInfo* function = nullptr;
  for (const auto& f : graph.functions) {
    if (f.name == call.f_function) function = &f;  // a later duplicate wins, as in the library
  }
  if (!function) return bound;
  std::vector<std::string> call_inputs;  // data inputs only, in order
  for (const auto& input : call.inputs) {
    if (!input.empty() && input[0] != '^') call_inputs.push_back(input);
  }
  std::map<std::string, const NodeInfo*> nodes;
  std::set<std::string> duplicates;
  for (const NodeInfo& node : function->nodes) {
    if (!nodes.emplace(node.name, &node).second) duplicates.insert(node.name);
  }
  const auto unique = [&](const std::string& name) -> const NodeInfo* {
    auto it = nodes.find(name);
    return it == nodes.end() || duplicates.count(name) ? nullptr : it->second;
  };
  std::map<std::string, long> arg_position;  // -1: two args of that name
  for (std::size_t i = 0; i < function->input_names.size(); ++i) {
    auto [it, fresh] = arg_position.emplace(function->input_names[i], static_cast<long>(i));
    if (!fresh) it->second = -1;
  }
  std::map<std::string, int> keys_seen;  // a key restored twice is ambiguous
  for (const NodeInfo& assign : function->nodes) {
    if (assign.op != "AssignVariableOp" || assign.inputs.size() < 2) continue;
    // The value: through Identity nodes to RestoreV2:tensors:j.
    auto value = split_function_input(assign.inputs[1]);
    for (int hops = 0; value && value->index >= 0 && hops < 16; ++hops) {
      const NodeInfo* node = unique(value->node);
      if (!node || node->op != "Identity" || node->inputs.empty()) break;
      value = split_function_input(node->inputs[0]);
    }
    if (!value || value->output != "tensors") continue;
    const NodeInfo* restore_v2 = unique(value->node);
    if (!restore_v2 || restore_v2->op != "RestoreV2" || restore_v2->inputs.size() < 2) continue;
    const auto names = split_function_input(restore_v2->inputs[1]);
    const NodeInfo* names_node = names && names->index == 0 ? unique(names->node) : nullptr;
    if (!names_node || names_node->op != "Const") continue;
    if (value->index >= static_cast<long>(names_node->string_values.size())) continue;
    const std::string& key = names_node->string_values[static_cast<std::size_t>(value->index)];
    // The variable: a function argument, fed by the restore op's input in that position.
    const auto handle = split_function_input(assign.inputs[0]);
    if (!handle || handle->index != -1) continue;
    const auto arg = arg_position.find(handle->node);
    if (arg == arg_position.end() || arg->second < 0) continue;
    const auto position = static_cast<std::size_t>(arg->second);
    if (position >= call_inputs.size()) continue;
    const std::string var_name = graph_input_node(call_inputs[position]);
    auto var = graph_nodes.find(var_name);
    if (var == graph_nodes.end() || duplicate_nodes.count(var_name) || var->second->op != "VarHandleOp") continue;
    if (++keys_seen[key] == 1) bound[key] = var_name;
    else bound.erase(key);
  }
  return bound;
}

// A graph node's data input "node" or "node:k" -> "node:k"; "" for a control input or junk.
std::string graph_tensor_name(const std::string& input) {
  if (input.empty() || input[0] == '^') return "";
  const auto colon = input.find(':');
  if (colon == std::string::npos) return input + ":0";
  const std::string digits = input.substr(colon + 1);
  if (colon == 0 || digits.empty() || digits.size() > 9 || digits.find_first_not_of("0123456789") != std::string::npos) {
    return "";
  }
  return input;
}

// Object node -> the graph tensor the MetaGraph's own calls of object-graph concrete functions
// pass for it (a signature's StatefulPartitionedCall passes its captured variables, the init
// op's calls of `_initialize` functions pass their tables and asset paths): position
// n_user_inputs + i of such a call is bound input i. A node that calls pass different tensors
// for is left out. Linear: each call node is read once.
std::map<int, std::string> graph_call_captures(const GraphDefInfo& graph, const ObjectTree& tree) {
  std::map<int, std::string> bound;
  std::set<int> ambiguous;
  for (const NodeInfo& node : graph.nodes) {
    if (node.f_function.empty() || (node.op != "StatefulPartitionedCall" && node.op != "PartitionedCall")) continue;
    const auto cf = tree.concrete_functions.find(node.f_function);
    if (cf == tree.concrete_functions.end() || !cf->second.in_library) continue;
    const ConcreteFunctionSpec& spec = cf->second;
    std::vector<const std::string*> data;
    for (const auto& input : node.inputs) {
      if (!input.empty() && input[0] != '^') data.push_back(&input);
    }
    if (spec.bound_inputs.size() > spec.input_dtypes.size() || data.size() != spec.input_dtypes.size()) continue;
    const std::size_t n_user = spec.input_dtypes.size() - spec.bound_inputs.size();
    for (std::size_t i = 0; i < spec.bound_inputs.size(); ++i) {
      const int object = spec.bound_inputs[i];
      if (object < 0 || static_cast<std::size_t>(object) >= tree.nodes.size()) continue;
      std::string tensor = graph_tensor_name(*data[n_user + i]);
      auto [it, fresh] = bound.emplace(object, tensor);
      if (tensor.empty() || (!fresh && it->second != tensor)) ambiguous.insert(object);
    }
  }
  for (int object : ambiguous) bound.erase(object);
  return bound;
}

// MetaGraphDef.asset_file_def = 6 AssetFileDef{filename = 2}, one message each.
std::vector<std::string> asset_filenames(const std::vector<std::string_view>& asset_file_defs) {
  std::vector<std::string> names;
  for (std::string_view message : asset_file_defs) {
    std::string name;
    for_each_field(message, [&](Reader& r) {
      if (r.field() == 2) name = std::string(r.utf8());
      else r.skip();
    });
    names.push_back(std::move(name));
  }
  return names;
}

SavedObjectInfo::Kind kind_of(uint32_t member) {
  using Kind = SavedObjectInfo::Kind;
  switch (member) {
    case 4: return Kind::kUserObject;
    case 5: return Kind::kAsset;
    case 6: return Kind::kFunction;
    case 7: return Kind::kVariable;
    case 8: return Kind::kBareConcreteFunction;
    case 9: return Kind::kConstant;
    case 10: return Kind::kResource;
    case 12: return Kind::kCapturedTensor;
    default: return Kind::kOther;
  }
}

// SavedVariable{dtype = 1, shape = 2, name = 6}.
void read_variable(std::string_view message, SavedObjectInfo& info) {
  wire::Merged shape;
  for_each_field(message, [&](Reader& r) {
    if (r.field() == 1) info.dtype = read_dtype(r);
    else if (r.field() == 2) shape.add(r.bytes());
    else if (r.field() == 6) info.variable_name = std::string(r.utf8());
    else r.skip();
  });
  wire::read_tensor_shape(shape.view(), info.shape, info.unknown_rank);
}

// FunctionSpec{fullargspec = 1 StructuredValue}.
StructuredValue read_fullargspec(std::string_view function_spec) {
  StructuredValue spec;
  for_each_field(function_spec, [&](Reader& r) {
    if (r.field() == 1) merge_value(r.bytes(), spec, 0);
    else r.skip();
  });
  finish_value(spec);
  return spec;
}

// SavedConcreteFunction{bound_inputs = 2 (packed or not), canonicalized_input_signature = 3,
// output_signature = 4}.
ConcreteFunctionSpec read_concrete_function(std::string_view message) {
  ConcreteFunctionSpec spec;
  for_each_field(message, [&](Reader& r) {
    if (r.field() == 2) {
      if (r.type() == wire::kLengthDelimited) {
        Reader packed(r.bytes());
        while (!packed.at_end()) spec.bound_inputs.push_back(static_cast<int>(static_cast<int32_t>(packed.varint())));
      } else {
        spec.bound_inputs.push_back(static_cast<int>(static_cast<int32_t>(r.int64())));
      }
    } else if (r.field() == 3) {
      merge_value(r.bytes(), spec.input_signature, 0);
    } else if (r.field() == 4) {
      merge_value(r.bytes(), spec.output_signature, 0);
    } else {
      r.skip();
    }
  });
  finish_value(spec.input_signature);
  finish_value(spec.output_signature);
  return spec;
}

}  // namespace

ObjectTree read_object_tree(std::string_view object_graph, const GraphDefInfo& graph_def, std::string_view saver_def,
                            const std::vector<std::string_view>& asset_file_defs) {
  ObjectTree tree;
  tree.asset_files = asset_filenames(asset_file_defs);
  const std::vector<std::string>& assets = tree.asset_files;
  const ObjectGraphBytes graph = split_object_graph(object_graph);
  tree.nodes.reserve(graph.nodes.size());
  for (std::string_view bytes : graph.nodes) {
    SavedObject object = read_object(bytes);
    SavedObjectInfo info;
    info.kind = kind_of(object.member);
    for (auto& [name, id] : object.children) {
      const int node = id < graph.nodes.size() ? static_cast<int>(id) : -1;  // -1: not there
      info.children.emplace_back(std::move(name), node);
    }
    if (info.kind == SavedObjectInfo::Kind::kVariable) read_variable(object.variable.view(), info);
    if (info.kind == SavedObjectInfo::Kind::kConstant) {
      for_each_field(object.constant.view(), [&](Reader& c) {  // SavedConstant{operation = 1}
        if (c.field() == 1) info.graph_operation = std::string(c.utf8());
        else c.skip();
      });
    }
    if (info.kind == SavedObjectInfo::Kind::kAsset) {
      int64_t index = -1;
      for_each_field(object.asset.view(), [&](Reader& a) {  // SavedAsset{asset_file_def_index = 1}
        if (a.field() == 1) index = a.int64();
        else a.skip();
      });
      if (index >= 0 && static_cast<uint64_t>(index) < assets.size() && index <= std::numeric_limits<int>::max()) {
        info.asset_file = static_cast<int>(index);
      }
    }
    info.concrete_functions = std::move(object.concrete_functions);
    info.argument_keywords = std::move(object.argument_keywords);
    if (object.function_spec.present()) info.fullargspec = read_fullargspec(object.function_spec.view());
    tree.nodes.push_back(std::move(info));
  }
  std::map<std::string, const FunctionDefInfo*> library;
  for (const auto& f : graph_def.functions) library[f.name] = &f;  // a later duplicate wins
  for (const auto& [name, bytes] : graph.concrete) {
    ConcreteFunctionSpec spec = read_concrete_function(bytes.view());
    if (auto f = library.find(name); f != library.end()) {
      spec.in_library = true;
      for (int t : f->second->input_types) spec.input_dtypes.push_back(static_cast<DType>(t));
      for (int t : f->second->output_types) spec.output_dtypes.push_back(static_cast<DType>(t));
    }
    tree.concrete_functions.emplace(name, std::move(spec));
  }
  for (auto& [object, tensor] : graph_call_captures(graph_def, tree)) {
    tree.nodes[static_cast<std::size_t>(object)].graph_tensor = std::move(tensor);
  }
  const auto parents = first_parents(tree.nodes);
  const auto restored = restored_variables(graph_def, saver_def);
  std::size_t budget = 4096 + 4 * object_graph.size();
  for (std::size_t i = 0; i < tree.nodes.size(); ++i) {
    SavedObjectInfo& node = tree.nodes[i];
    if (node.kind != SavedObjectInfo::Kind::kVariable) continue;
    node.checkpoint_key = checkpoint_key(tree.nodes, parents, static_cast<int>(i), budget);
    if (auto var = restored.find(node.checkpoint_key); var != restored.end()) node.graph_variable = var->second;
  }
  return tree;
}

}  // namespace smrt::detail
