#include "op_effects.h"

#include <algorithm>
#include <iterator>
#include <optional>
#include <string_view>

#include "op_libraries.h"
#include "wire_reader.h"

namespace smrt::detail {
namespace {

// Stateful ops that keep no tensor they are fed: they read variables or tables, check, print
// or draw random numbers, or call functions or run branches and loop bodies, which are stateful
// only in case their functions are (those functions' ops are in the list being checked). Sorted.
constexpr std::string_view kKeepNothing[] = {
    "Assert", "Case", "If", "LookupTableFindV2", "LookupTableSizeV2", "PartitionedCall", "Print", "PrintV2",
    "RandomStandardNormal", "RandomUniform", "RandomUniformInt", "ReadVariableOp", "StatefulPartitionedCall",
    "TruncatedNormal", "VarHandleOp", "VarIsInitializedOp", "VariableShape", "While",
};

// OpDef.is_stateful (field 17, a bool) of a serialized OpDef.
bool stateful(std::string_view op_def) {
  wire::Reader r(op_def);
  bool result = false;
  while (r.next()) {
    if (r.field() == 17 && r.is(wire::kVarint)) result = r.varint() != 0;  // the last one wins, as in protobuf
    else r.skip();
  }
  return result;
}

}  // namespace

bool may_keep_inputs(const std::vector<std::string>& ops) {
  const OpRegistry registry;
  for (const std::string& op : ops) {
    if (std::binary_search(std::begin(kKeepNothing), std::end(kKeepNothing), op)) continue;
    const std::optional<std::string> def = registry.op_def(op);
    if (!def) return true;  // unknown to the registry: assume the worst
    try {
      if (stateful(*def)) return true;
    } catch (const wire::WireError&) {
      return true;
    }
  }
  return false;
}

}  // namespace smrt::detail
