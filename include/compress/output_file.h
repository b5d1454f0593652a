// Output files: where a write through a symlink lands, what may be replaced, temp names beside the
// target and the temp files a killed run left behind.
#pragma once

#include <filesystem>
#include <string>
#include <string_view>

namespace compress {

/// The file a write to `path` replaces: `path` itself, or the end of its symlink chain, so that a
/// link stays a link and its target gets the new content. Throws Error(kWriteFailed) for a loop.
std::filesystem::path write_target(const std::filesystem::path& path);

/// Why `path` cannot be written as an output file, or "" when it can: it exists (through symlinks)
/// and is not a regular file (a device such as /dev/null, a directory, a FIFO), or the directory of
/// its target is missing or not writable (probed by creating the temp file, which root cannot
/// bypass on a read-only or virtual file system).
std::string output_file_problem(const std::filesystem::path& path);

/// `<target>.tmp-<pid of this process>`: the temp file beside `target`.
std::filesystem::path temp_path(const std::filesystem::path& target);

/// Removes `<target>.tmp-<pid>` regular files beside `target` whose process is no longer alive (a
/// run killed during its write). Other names and temps of live processes are left alone.
/// Returns how many it removed.
int remove_stale_temps(const std::filesystem::path& target);

/// Writes `bytes` to the temp file beside write_target(path) and renames it over the target.
/// Throws Error(kWriteFailed) and leaves no temp file on failure.
void write_file_atomically(const std::filesystem::path& path, std::string_view bytes);

}  // namespace compress
