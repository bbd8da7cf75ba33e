// The parts of a GraphDef smrt's readers need: each node's op and the functions its attributes
// name, for the graph and for every function of its library (in library order).
// GraphDef{node=1 NodeDef, library=2 FunctionDefLibrary{function=1 FunctionDef{signature=1
// OpDef{name=1}, node_def=3 NodeDef}, gradient=2 GradientDef{function_name=1,
// gradient_func=2}}}; NodeDef{name=1, op=2, input=3, attr=5 map<string, AttrValue{list=1 ListValue{func=9},
// func=10 NameAttrList{name=1, attr=2 map<string, AttrValue>}}>}.
// Parsed as protobuf parses: a singular message field that occurs several times merges, the
// last scalar wins, repeated fields concatenate, and a map's last entry for a key wins.
#pragma once

#include <string>
#include <string_view>
#include <utility>
#include <vector>

namespace smrt::detail {

struct NodeInfo {
  std::string name;
  std::string op;
  // With details only: the inputs ("node:out:0", "^control"), and a Const's string values
  // (AttrValue "value" = 8 TensorProto{string_val = 8}).
  std::vector<std::string> inputs;
  std::vector<std::string> string_values;
  // The functions of its attributes' AttrValue.func and AttrValue.list.func (what TensorFlow's
  // loader counts as a function's dependencies).
  std::vector<std::string> attr_functions;
  // Functions named deeper, in the attrs of those NameAttrLists: they are bound to the called
  // function's attr placeholders, so the call can run them too.
  std::vector<std::string> nested_functions;
  std::string f_function;  // AttrValue.func of the attribute named "f", if it is one
};

struct FunctionDefInfo {
  std::string name;
  std::vector<NodeInfo> nodes;
  // With details only: the OpDef's input_arg = 2 / output_arg = 3 ArgDef{name = 1, type = 3,
  // type_attr = 4, number_attr = 5, type_list_attr = 6}; an arg typed by an attr (or a list) is
  // kInvalid: a concrete function's args are concrete.
  std::vector<std::string> input_names;
  std::vector<int> input_types, output_types;  // DataType values
};

struct GraphDefInfo {
  std::vector<NodeInfo> nodes;
  std::vector<FunctionDefInfo> functions;                   // library order, duplicates included
  std::vector<std::pair<std::string, std::string>> gradients;  // (function, its gradient function)
};

// Throws wire::WireError on malformed bytes. `details`: also the inputs, Const strings and
// function arg types the object tree needs (object_graph_reader.cc); still linear in the size.
GraphDefInfo read_graph_def(std::string_view graph_def, bool details = false);

}  // namespace smrt::detail
