// for_each_tensor: every dense tensor a graph can carry data in, through all its subgraphs.
#pragma once

#include <onnx/onnx_pb.h>

namespace compress {

/// Calls fn(TensorProto&) for initializers, sparse initializer parts, Constant values and every
/// other tensor attribute, recursively through subgraphs (outer before inner).
template <class Fn>
void for_each_tensor(onnx::GraphProto& g, Fn&& fn) {
  for (auto& t : *g.mutable_initializer()) fn(t);
  for (auto& s : *g.mutable_sparse_initializer()) {
    fn(*s.mutable_values());
    fn(*s.mutable_indices());
  }
  for (auto& n : *g.mutable_node()) {
    for (auto& a : *n.mutable_attribute()) {
      if (a.has_t()) fn(*a.mutable_t());
      for (auto& t : *a.mutable_tensors()) fn(t);
      if (a.has_g()) for_each_tensor(*a.mutable_g(), fn);
      for (auto& sub : *a.mutable_graphs()) for_each_tensor(sub, fn);
    }
  }
}

}  // namespace compress
