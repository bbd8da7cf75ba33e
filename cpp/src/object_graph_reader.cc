// SavedObjectGraph{nodes=1 SavedObject, concrete_functions=2 map<string, SavedConcreteFunction>}
// SavedObject{children=1 ObjectReference{node_id=1, local_name=2}, function=6
//   SavedFunction{concrete_functions=1}, bare_concrete_function=8
//   SavedBareConcreteFunction{concrete_function_name=1, argument_keywords=2}}
// SavedConcreteFunction{canonicalized_input_signature=3 StructuredValue}
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
#include <optional>
#include <cstring>
#include <map>
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
// occurs twice in one pair merges.
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

StructuredValue::Kind kind_of(uint32_t field) {
  using Kind = StructuredValue::Kind;
  switch (field) {
    case 1: return Kind::kNone;
    case 11: return Kind::kFloat64;
    case 12: return Kind::kInt64;
    case 13: return Kind::kString;
    case 14: return Kind::kBool;
    case 31: return Kind::kShape;
    case 32: return Kind::kDType;
    case 33: return Kind::kTensorSpec;
    case 34: return Kind::kTypeSpec;
    case 35: return Kind::kBoundedTensorSpec;
    case 51: return Kind::kList;
    case 52: return Kind::kTuple;
    case 53: return Kind::kDict;
    case 54: return Kind::kNamedTuple;
    case 55: case 56: return Kind::kTensor;
    default: return Kind::kUnset;  // not a member of the oneof
  }
}

void merge_value(std::string_view message, StructuredValue& v, int depth) {
  if (depth > kMaxDepth) throw WireError("StructuredValue nested too deeply");
  using Kind = StructuredValue::Kind;
  Reader r(message);
  while (r.next()) {
    const uint32_t field = r.field();
    const Kind kind = kind_of(field);
    if (kind == Kind::kUnset) {
      r.skip();
      continue;
    }
    if (v.kind != kind) v = StructuredValue();  // (tensor and numpy values: both opaque)
    v.kind = kind;
    switch (field) {
      case 11: v.float64 = r.float64(); break;
      case 12: {
        const auto bits = static_cast<uint64_t>(r.int64());
        v.int64 = static_cast<int64_t>(bits >> 1) ^ -static_cast<int64_t>(bits & 1);  // sint64
        break;
      }
      case 13: v.string = std::string(r.utf8()); break;
      case 14: v.boolean = r.boolean(); break;
      case 32: v.dtype = static_cast<DType>(static_cast<int32_t>(r.int64())); break;
      default: {
        const std::string_view body = r.bytes();
        switch (field) {
          case 31: wire::merge_tensor_shape(body, v.shape, v.unknown_rank); break;
          case 33:
            for_each_field(body, [&](Reader& s) {
              if (s.field() == 1) v.string = std::string(s.utf8());
              else if (s.field() == 2) wire::merge_tensor_shape(s.bytes(), v.shape, v.unknown_rank);
              else if (s.field() == 3) v.dtype = static_cast<DType>(static_cast<int32_t>(s.int64()));
              else s.skip();
            });
            break;
          case 34:
            for_each_field(body, [&](Reader& s) {
              if (s.field() == 3) v.string = std::string(s.utf8());
              else s.skip();
            });
            break;
          case 51: case 52:
            for_each_field(body, [&](Reader& l) {
              if (l.field() == 1) v.items.push_back(read_value(l.bytes(), depth + 1));
              else l.skip();
            });
            break;
          case 53:
            for_each_field(body, [&](Reader& d) {
              if (d.field() == 1) read_pair(d.bytes(), depth, v);
              else d.skip();
            });
            break;
          case 54:
            for_each_field(body, [&](Reader& t) {
              if (t.field() == 1) v.string = std::string(t.utf8());
              else if (t.field() == 2) read_pair(t.bytes(), depth, v);
              else t.skip();
            });
            break;
          default: for_each_field(body, [](Reader& x) { x.skip(); }); break;  // not decoded
        }
        break;
      }
    }
  }
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
  std::vector<std::string> concrete_functions;
  std::vector<std::string> argument_keywords;
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
    } else if (r.field() == 6 || r.field() == 8) {
      // The `kind` oneof: the last member set wins.
      const bool bare = r.field() == 8;
      const std::string_view body = r.bytes();
      if (object.kind != (bare ? SavedObject::kBare : SavedObject::kFunction)) {
        object.concrete_functions.clear();
        object.argument_keywords.clear();
      }
      object.kind = bare ? SavedObject::kBare : SavedObject::kFunction;
      for_each_field(body, [&](Reader& f) {
        if (f.field() == 1) {
          std::string name(f.utf8());
          if (bare) object.concrete_functions.assign(1, std::move(name));  // a singular field
          else object.concrete_functions.push_back(std::move(name));
        } else if (f.field() == 2 && bare) {
          object.argument_keywords.emplace_back(f.utf8());
        } else {
          f.skip();
        }
      });
    } else if ((r.field() >= 4 && r.field() <= 10) || r.field() == 12) {
      r.skip();  // another member of the `kind` oneof replaces a function
      object.kind = SavedObject::kOther;
    } else {
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
  // TF names each loaded concrete function "__inference_<clean name>_<uid>", uids increasing
  // in load order, and saved_model_cli sorts by that name. Same-length uids are assumed (the
  // real ones depend on the process's history).
  std::map<std::string, std::string> loaded_name;
  if (auto order = load_order(graph_def)) {
    for (std::size_t i = 0; i < order->size(); ++i) {
      loaded_name[(*order)[i]] = "__inference_" + clean_function_name((*order)[i]) + "_" + std::to_string(1000000000 + i);
    }
  } else {
    info.loadable = false;
  }
  // Every node is decoded (TF's loader builds them all) so corrupt bytes anywhere are reported.
  std::vector<SavedObject> objects;
  objects.reserve(graph.nodes.size());
  for (std::string_view node : graph.nodes) objects.push_back(read_object(node));
  // Each SavedConcreteFunction{canonicalized_input_signature = 3} is decoded once, however
  // many functions list it. Handing out copies is what can multiply (root children that alias
  // one function node, a function that lists one concrete function many times): it is taken
  // from `budget`.
  std::map<std::string, std::pair<StructuredValue, std::size_t>> decoded;  // name -> (value, cost)
  auto spend = [&](std::size_t amount) {
    if (amount > budget) {
      throw ExpansionError("root children that alias one function, or functions that list one concrete "
                           "function many times, multiply its input signature");
    }
    budget -= amount;
  };
  for (const auto& [name, node_id] : objects[0].children) {
    if (node_id >= objects.size()) {
      info.loadable = false;
      continue;
    }
    const SavedObject& child = objects[node_id];
    if (child.kind == SavedObject::kOther) continue;
    FunctionInfo function;
    function.name = name;
    function.bare = child.kind == SavedObject::kBare;
    spend(1 + name.size());
    for (const auto& fn : child.concrete_functions) {
      spend(1 + fn.size());  // listed names count even when missing: aliasing multiplies them too
      auto found = graph.concrete.find(fn);
      if (found == graph.concrete.end()) {
        info.loadable = false;
        continue;
      }
      auto cached = decoded.find(fn);
      if (cached == decoded.end()) {
        StructuredValue signature;
        for_each_field(found->second.view(), [&](Reader& c) {
          if (c.field() == 3) merge_value(c.bytes(), signature, 0);
          else c.skip();
        });
        finish_value(signature);
        const std::size_t size = cost(signature);
        cached = decoded.emplace(fn, std::make_pair(std::move(signature), size)).first;
      }
      ConcreteFunctionInfo cf;
      cf.name = fn;
      spend(cached->second.second);
      cf.input_signature = cached->second.first;
      if (!loaded_name.count(fn)) info.loadable = false;  // not in the function library
      if (function.bare) {
        for (const auto& keyword : child.argument_keywords) spend(1 + keyword.size());
        cf.argument_keywords = child.argument_keywords;
      }
      function.concrete_functions.push_back(std::move(cf));
    }
    std::stable_sort(function.concrete_functions.begin(), function.concrete_functions.end(),
                     [&](const ConcreteFunctionInfo& a, const ConcreteFunctionInfo& b) {
                       return loaded_name[a.name] < loaded_name[b.name];
                     });
    info.functions.push_back(std::move(function));
  }
  std::stable_sort(info.functions.begin(), info.functions.end(),
                   [](const FunctionInfo& a, const FunctionInfo& b) { return a.name < b.name; });
  return info;
}

}  // namespace smrt::detail
