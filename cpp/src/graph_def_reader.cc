#include "graph_def_reader.h"

#include <cstdint>

#include "wire_reader.h"

namespace smrt::detail {
namespace {

using wire::for_each_field;
using wire::Reader;

std::string name_attr_list_name(std::string_view message) {  // NameAttrList{name = 1}
  std::string name;
  for_each_field(message, [&](Reader& r) {
    if (r.field() == 1) name = std::string(r.utf8());
    else r.skip();
  });
  return name;
}

// The functions an AttrValue names. Its `value` oneof (list=1 ... func=10): the last member
// set wins; ListValue{func = 9} repeats.
std::vector<std::string> attr_functions(std::string_view attr_value) {
  std::vector<std::string> functions;
  uint32_t member = 0;
  for_each_field(attr_value, [&](Reader& a) {
    const uint32_t field = a.field();
    if (field == 10) {
      functions.assign(1, name_attr_list_name(a.bytes()));
    } else if (field == 1) {
      if (member != 1) functions.clear();
      for_each_field(a.bytes(), [&](Reader& l) {
        if (l.field() == 9) functions.push_back(name_attr_list_name(l.bytes()));
        else l.skip();
      });
    } else {
      a.skip();
      if (field < 2 || field > 9) return;  // not a member of the oneof
      functions.clear();
    }
    member = field;
  });
  return functions;
}

NodeInfo read_node(std::string_view node_def) {
  NodeInfo node;
  for_each_field(node_def, [&](Reader& n) {
    if (n.field() == 2) {
      node.op = std::string(n.utf8());
    } else if (n.field() == 5) {
      std::string key;
      std::vector<std::string> functions;
      for_each_field(n.bytes(), [&](Reader& e) {
        if (e.field() == 1) key = std::string(e.utf8());
        else if (e.field() == 2) functions = attr_functions(e.bytes());
        else e.skip();
      });
      if (key == "f" && !functions.empty()) node.f_function = functions.back();
      node.attr_functions.insert(node.attr_functions.end(), functions.begin(), functions.end());
    } else {
      n.skip();
    }
  });
  return node;
}

FunctionDefInfo read_function(std::string_view function_def) {
  FunctionDefInfo function;
  for_each_field(function_def, [&](Reader& f) {
    if (f.field() == 1) function.name = name_attr_list_name(f.bytes());  // OpDef{name = 1}
    else if (f.field() == 3) function.nodes.push_back(read_node(f.bytes()));
    else f.skip();
  });
  return function;
}

}  // namespace

GraphDefInfo read_graph_def(std::string_view graph_def) {
  GraphDefInfo graph;
  for_each_field(graph_def, [&](Reader& r) {
    if (r.field() == 1) {
      graph.nodes.push_back(read_node(r.bytes()));
    } else if (r.field() == 2) {
      for_each_field(r.bytes(), [&](Reader& lib) {
        if (lib.field() == 1) graph.functions.push_back(read_function(lib.bytes()));
        else lib.skip();
      });
    } else {
      r.skip();
    }
  });
  return graph;
}

}  // namespace smrt::detail
