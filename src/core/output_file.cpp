// Output files: symlinks are written through (the link stays, its target is replaced atomically),
// non-regular files are never replaced, and temp files of killed runs are cleaned up by the next.
#include <compress/error.h>
#include <compress/output_file.h>

#include <fcntl.h>
#include <signal.h>
#include <unistd.h>

#include <cerrno>
#include <climits>
#include <cstring>
#include <fstream>

namespace compress {

namespace fs = std::filesystem;

namespace {

// Linux's own limit on symlinks followed while resolving one path (MAXSYMLINKS).
constexpr int kMaxSymlinks = 40;

fs::path directory_of(const fs::path& p) { return p.parent_path().empty() ? fs::path(".") : p.parent_path(); }

// The pid of a `<prefix><digits>` name, 0 when the name is not exactly that.
pid_t temp_pid(const std::string& name, const std::string& prefix) {
  if (name.size() <= prefix.size() || name.compare(0, prefix.size(), prefix) != 0) return 0;
  const std::string digits = name.substr(prefix.size());
  if (digits.size() > 10 || digits.find_first_not_of("0123456789") != std::string::npos) return 0;
  const long long pid = std::stoll(digits);
  return pid > 0 && pid <= INT_MAX ? static_cast<pid_t>(pid) : 0;
}

bool process_alive(pid_t pid) { return ::kill(pid, 0) == 0 || errno == EPERM; }

}  // namespace

fs::path write_target(const fs::path& path) {
  fs::path p = path;
  for (int hops = 0; hops <= kMaxSymlinks; ++hops) {
    std::error_code ec;
    if (!fs::is_symlink(fs::symlink_status(p, ec))) return p;
    const fs::path link = fs::read_symlink(p, ec);
    if (ec) throw Error(ExitCode::kWriteFailed, path.string() + ": cannot read symlink: " + ec.message());
    p = link.is_absolute() ? link : directory_of(p) / link;
  }
  throw Error(ExitCode::kWriteFailed, path.string() + ": too many levels of symbolic links");
}

std::string output_file_problem(const fs::path& path) {
  // The kernel's view first: /proc's links (/dev/stdout -> pipe:[N]) name no path to follow.
  std::error_code ec;
  const auto status = fs::status(path, ec);
  if (fs::is_directory(status)) return "is a directory";
  if (fs::exists(status) && !fs::is_regular_file(status)) return "exists and is not a regular file";
  const fs::path target = write_target(path);
  const fs::path dir = directory_of(target);
  if (!fs::is_directory(dir, ec)) return "directory '" + dir.string() + "' does not exist";
  // access(W_OK) says yes to root even where creating fails (read-only or virtual file systems),
  // so create the very temp file the write would create.
  const fs::path probe = temp_path(target);
  const int fd = ::open(probe.c_str(), O_WRONLY | O_CREAT | O_EXCL | O_CLOEXEC, 0644);
  if (fd < 0) {
    if (errno == EEXIST) return "";
    return "directory '" + dir.string() + "' is not writable (" + std::strerror(errno) + ")";
  }
  ::close(fd);
  fs::remove(probe, ec);
  return "";
}

fs::path temp_path(const fs::path& target) {
  fs::path tmp = target;
  tmp += ".tmp-" + std::to_string(::getpid());
  return tmp;
}

int remove_stale_temps(const fs::path& target) {
  const std::string prefix = target.filename().string() + ".tmp-";
  int removed = 0;
  std::error_code ec;
  for (fs::directory_iterator it(directory_of(target), fs::directory_options::skip_permission_denied, ec), end;
       !ec && it != end; it.increment(ec)) {
    const pid_t pid = temp_pid(it->path().filename().string(), prefix);
    if (pid == 0 || pid == ::getpid() || process_alive(pid)) continue;
    std::error_code entry_ec;
    if (!fs::is_regular_file(it->symlink_status(entry_ec))) continue;
    if (fs::remove(it->path(), entry_ec)) ++removed;
  }
  return removed;
}

void write_file_atomically(const fs::path& path, std::string_view bytes) {
  const fs::path target = write_target(path);
  remove_stale_temps(target);
  const fs::path tmp = temp_path(target);
  std::error_code ec;
  {
    std::ofstream out(tmp, std::ios::binary | std::ios::trunc);
    out.write(bytes.data(), static_cast<std::streamsize>(bytes.size()));
    out.flush();
    if (!out) {
      fs::remove(tmp, ec);
      throw Error(ExitCode::kWriteFailed, path.string() + ": cannot write");
    }
  }
  fs::rename(tmp, target, ec);
  if (ec) {
    const std::string reason = ec.message();
    fs::remove(tmp, ec);
    throw Error(ExitCode::kWriteFailed, path.string() + ": cannot rename into place: " + reason);
  }
}

}  // namespace compress
