// What the ops a signature runs can do to the tensors fed to it, read from the ops' own
// definitions in TensorFlow's registry.
#pragma once

#include <string>
#include <vector>

namespace smrt::detail {

// Whether running these ops (a signature's, MetaGraphInfo::ops_run) can leave TensorFlow holding
// a fed tensor after the run: true if any op is stateful (OpDef.is_stateful) and not one that
// only reads state (a variable read, a function call, an assert; see op_effects.cc), or is not
// registered. A stateless op keeps nothing past the run that computed it.
bool may_keep_inputs(const std::vector<std::string>& ops);

}  // namespace smrt::detail
