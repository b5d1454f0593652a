// Minimal .npy (NumPy format 1.0/2.0/3.0) reader and writer for evaluator tensors: float32, float16,
// float64 (read as float), int64, int32, int8, uint8, bool; C order only.
#pragma once

#include <compress/evaluator.h>

#include <filesystem>

namespace compress::eval {

/// Throws Error(kBadInput) naming the file for anything unreadable or unsupported.
Tensor read_npy(const std::filesystem::path& path);
/// Writes format 1.0 with the tensor's dtype; throws Error(kWriteFailed).
void write_npy(const std::filesystem::path& path, const Tensor& tensor);

}  // namespace compress::eval
