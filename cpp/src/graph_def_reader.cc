#include "graph_def_reader.h"

#include <cstdint>
#include <map>

#include "wire_reader.h"

namespace smrt::detail {
namespace {

using wire::add_map_entry;
using wire::for_each_field;
using wire::Merged;
using wire::Reader;

constexpr int kMaxDepth = 100;  // protobuf's own default recursion limit

struct AttrFunctions {
  std::vector<std::string> direct;  // AttrValue.func / AttrValue.list.func
  std::vector<std::string> nested;  // in those NameAttrLists' attrs, at any depth
  bool is_func = false;             // the oneof's member is `func`
};

AttrFunctions read_attr_value(std::string_view attr_value, int depth);

// NameAttrList{name = 1, attr = 2}: its name, and every function its attrs name (into `nested`).
std::string read_name_attr_list(std::string_view message, std::vector<std::string>& nested, int depth) {
  if (depth > kMaxDepth) throw wire::WireError("attribute values nested too deeply");
  std::string name;
  std::map<std::string, Merged> attrs;
  for_each_field(message, [&](Reader& r) {
    if (r.field() == 1) name = std::string(r.utf8());
    else if (r.field() == 2) add_map_entry(r.bytes(), attrs);
    else r.skip();
  });
  for (const auto& [key, value] : attrs) {
    AttrFunctions inner = read_attr_value(value.view(), depth + 1);
    nested.insert(nested.end(), inner.direct.begin(), inner.direct.end());
    nested.insert(nested.end(), inner.nested.begin(), inner.nested.end());
  }
  return name;
}

// The member of AttrValue's `value` oneof (list=1, s=2, i=3, f=4, b=5, type=6, shape=7,
// tensor=8, placeholder=9, func=10) that `a` is at, or 0: not a member, or one with another wire
// type than its declared type's, which protobuf parses as an unknown field (the oneof stays).
uint32_t attr_value_member(const Reader& a) {
  static constexpr wire::WireType kTypes[] = {
      wire::kLengthDelimited, wire::kLengthDelimited, wire::kVarint,          wire::kFixed32,         wire::kVarint,
      wire::kVarint,          wire::kLengthDelimited, wire::kLengthDelimited, wire::kLengthDelimited, wire::kLengthDelimited,
  };
  const uint32_t field = a.field();
  return field >= 1 && field <= 10 && a.is(kTypes[field - 1]) ? field : 0;
}

// AttrValue's `value` oneof: a different member clears what was set; the same message member
// merges (NameAttrList, or ListValue whose repeated func=9 concatenates).
AttrFunctions read_attr_value(std::string_view attr_value, int depth) {
  uint32_t member = 0;
  Merged body;
  for_each_field(attr_value, [&](Reader& a) {
    const uint32_t field = attr_value_member(a);
    if (!field) {
      a.skip();
      return;
    }
    if (field != member) body.clear();
    member = field;
    if (field == 1 || field == 10) body.add(a.bytes());
    else a.skip();
  });
  AttrFunctions out;
  if (member == 10) {
    out.is_func = true;
    out.direct.push_back(read_name_attr_list(body.view(), out.nested, depth));
  } else if (member == 1) {
    for_each_field(body.view(), [&](Reader& l) {
      if (l.field() == 9) out.direct.push_back(read_name_attr_list(l.bytes(), out.nested, depth));
      else l.skip();
    });
  }
  return out;
}

// AttrValue{tensor = 8 TensorProto{string_val = 8}}: the strings, when `tensor` is the oneof's
// member (a later member replaces it; occurrences of it merge, so their strings concatenate).
std::vector<std::string> read_string_values(std::string_view attr_value) {
  uint32_t member = 0;
  Merged tensor;
  for_each_field(attr_value, [&](Reader& a) {
    const uint32_t field = attr_value_member(a);
    if (!field) {
      a.skip();
      return;
    }
    if (field != member) tensor.clear();
    member = field;
    if (field == 8) tensor.add(a.bytes());
    else a.skip();
  });
  std::vector<std::string> strings;
  for_each_field(tensor.view(), [&](Reader& t) {
    if (t.field() == 8) strings.emplace_back(t.bytes());
    else t.skip();
  });
  return strings;
}

NodeInfo read_node(std::string_view node_def, bool details) {
  NodeInfo node;
  std::map<std::string, Merged> attrs;
  for_each_field(node_def, [&](Reader& n) {
    if (n.field() == 1) node.name = std::string(n.utf8());
    else if (n.field() == 2) node.op = std::string(n.utf8());
    else if (n.field() == 3 && details) node.inputs.emplace_back(n.utf8());
    else if (n.field() == 5) add_map_entry(n.bytes(), attrs);
    else n.skip();
  });
  if (details && node.op == "Const") {
    if (auto value = attrs.find("value"); value != attrs.end()) node.string_values = read_string_values(value->second.view());
  }
  for (const auto& [key, value] : attrs) {
    AttrFunctions functions = read_attr_value(value.view(), 0);
    if (key == "f" && functions.is_func) node.f_function = functions.direct.front();
    node.attr_functions.insert(node.attr_functions.end(), functions.direct.begin(), functions.direct.end());
    node.nested_functions.insert(node.nested_functions.end(), functions.nested.begin(), functions.nested.end());
  }
  return node;
}

// ArgDef{name = 1, type = 3, type_attr = 4, number_attr = 5, type_list_attr = 6}: its name and
// DataType, or 0 (DT_INVALID) when an attr types it.
std::pair<std::string, int> read_arg(std::string_view arg_def) {
  std::string name;
  int type = 0;
  bool by_attr = false;
  for_each_field(arg_def, [&](Reader& a) {
    if (a.field() == 1) name = std::string(a.utf8());
    else if (a.field() == 3) type = static_cast<int>(static_cast<int32_t>(a.int64()));
    else if (a.field() >= 4 && a.field() <= 6) by_attr |= !a.bytes().empty();
    else a.skip();
  });
  return {std::move(name), by_attr ? 0 : type};
}

FunctionDefInfo read_function(std::string_view function_def, bool details) {
  FunctionDefInfo function;
  Merged signature;  // an OpDef: a later occurrence renames only if it carries a name
  for_each_field(function_def, [&](Reader& f) {
    if (f.field() == 1) signature.add(f.bytes());
    else if (f.field() == 3) function.nodes.push_back(read_node(f.bytes(), details));
    else f.skip();
  });
  for_each_field(signature.view(), [&](Reader& s) {  // OpDef{name = 1, input_arg = 2, output_arg = 3}
    if (s.field() == 1) {
      function.name = std::string(s.utf8());
    } else if ((s.field() == 2 || s.field() == 3) && details) {
      auto [name, type] = read_arg(s.bytes());
      if (s.field() == 2) {
        function.input_names.push_back(std::move(name));
        function.input_types.push_back(type);
      } else {
        function.output_types.push_back(type);
      }
    } else {
      s.skip();
    }
  });
  return function;
}

std::pair<std::string, std::string> read_gradient(std::string_view gradient_def) {
  std::pair<std::string, std::string> gradient;
  for_each_field(gradient_def, [&](Reader& g) {
    if (g.field() == 1) gradient.first = std::string(g.utf8());
    else if (g.field() == 2) gradient.second = std::string(g.utf8());
    else g.skip();
  });
  return gradient;
}

}  // namespace

GraphDefInfo read_graph_def(std::string_view graph_def, bool details) {
  GraphDefInfo graph;
  Merged library;
  for_each_field(graph_def, [&](Reader& r) {
    if (r.field() == 1) graph.nodes.push_back(read_node(r.bytes(), details));
    else if (r.field() == 2) library.add(r.bytes());
    else r.skip();
  });
  for_each_field(library.view(), [&](Reader& lib) {
    if (lib.field() == 1) graph.functions.push_back(read_function(lib.bytes(), details));
    else if (lib.field() == 2) graph.gradients.push_back(read_gradient(lib.bytes()));
    else lib.skip();
  });
  return graph;
}

}  // namespace smrt::detail
