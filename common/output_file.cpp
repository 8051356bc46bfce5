#include "common/output_file.hpp"

#include <fcntl.h>
#include <sys/stat.h>
#include <unistd.h>

#include <atomic>
#include <cerrno>
#include <csignal>
#include <cstdlib>
#include <cstring>
#include <filesystem>

#include "common/check.hpp"

namespace kvc {
namespace {

namespace fs = std::filesystem;

constexpr std::size_t kBufferBytes = 1 << 16;

std::string in_quotes(const std::string& path) {
  return "'" + path + "'";
}

// Devices and pipes, and the /dev and /proc names for them (/dev/stdout is a
// symlink to whatever stdout is): renaming a file over one would replace it.
bool is_stream(const std::string& path) {
  std::error_code ec;
  const std::string absolute = fs::absolute(path, ec).lexically_normal().string();
  if (absolute.rfind("/dev/", 0) == 0 || absolute.rfind("/proc/", 0) == 0) return true;
  struct stat info {};
  return ::stat(path.c_str(), &info) == 0 && !S_ISREG(info.st_mode);
}

// The folder a new file at `path` would land in.
fs::path folder_of(const fs::path& path) {
  const fs::path parent = path.parent_path();
  return parent.empty() ? fs::path(".") : parent;
}

// The permission bits a new file gets: the replaced file's, or 0666 less the umask.
mode_t permissions_for(const std::string& target) {
  struct stat info {};
  if (::stat(target.c_str(), &info) == 0) return info.st_mode & 07777;
  const mode_t mask = ::umask(0);
  ::umask(mask);
  return 0666 & ~mask;
}

// Whether two paths name one file: the same inode when both exist, else the
// same absolute path once "." and ".." and symlinks in existing folders are resolved.
bool same_file(const std::string& a, const std::string& b) {
  std::error_code ec;
  if (fs::exists(a, ec) && fs::exists(b, ec)) return fs::equivalent(a, b, ec) && !ec;
  const fs::path canonical_a = fs::weakly_canonical(fs::absolute(a, ec), ec);
  if (ec) return a == b;
  const fs::path canonical_b = fs::weakly_canonical(fs::absolute(b, ec), ec);
  return ec ? a == b : canonical_a == canonical_b;
}

// The temporary files being written, so that a signal that ends the program
// (Ctrl-C, kill, the file-size limit) removes them as well. The handler only
// reads these slots and calls unlink(), both async-signal-safe.
constexpr int kMaxOpenOutputs = 8;
std::atomic<const char*> g_temp_paths[kMaxOpenOutputs];

extern "C" void remove_temp_files_and_reraise(int signal_number) {
  for (auto& slot : g_temp_paths) {
    if (const char* path = slot.load()) ::unlink(path);
  }
  std::signal(signal_number, SIG_DFL);
  std::raise(signal_number);
}

// Signals the program neither ignores nor handles itself get the cleanup.
void install_signal_cleanup_once() {
  static const bool installed = [] {
    for (const int signal_number : {SIGINT, SIGTERM, SIGHUP, SIGXFSZ}) {
      struct sigaction current {};
      if (::sigaction(signal_number, nullptr, &current) != 0) continue;
      if ((current.sa_flags & SA_SIGINFO) != 0 || current.sa_handler != SIG_DFL) continue;
      struct sigaction cleanup {};
      cleanup.sa_handler = remove_temp_files_and_reraise;
      sigemptyset(&cleanup.sa_mask);
      ::sigaction(signal_number, &cleanup, nullptr);
    }
    return true;
  }();
  (void)installed;
}

// The slot now holding `path`, or -1 when all are taken (the file is then
// still removed on every failure, only not on a signal).
int register_temp_path(const char* path) {
  install_signal_cleanup_once();
  for (int i = 0; i < kMaxOpenOutputs; ++i) {
    const char* empty = nullptr;
    if (g_temp_paths[i].compare_exchange_strong(empty, path)) return i;
  }
  return -1;
}

void unregister_temp_path(int slot) {
  if (slot >= 0) g_temp_paths[slot].store(nullptr);
}

}  // namespace

OutputFile::OutputFile(std::string path) : path_(std::move(path)) {
  KVC_CHECK(!path_.empty(), "output path is empty");
  std::error_code ec;
  KVC_CHECK(!fs::is_directory(path_, ec), in_quotes(path_), " is a directory");
  if (is_stream(path_)) {
    fd_ = ::open(path_.c_str(), O_WRONLY | O_TRUNC | O_CLOEXEC);
    if (fd_ < 0) fail("open", errno);
  } else {
    // A symlink stays a symlink: the file it points to is replaced.
    target_ = fs::is_symlink(path_, ec) ? fs::weakly_canonical(path_, ec).string() : path_;
    if (ec) target_ = path_;
    temp_path_ = target_ + ".tmp.XXXXXX";
    fd_ = ::mkstemp(temp_path_.data());
    if (fd_ < 0) {
      const int error_number = errno;
      temp_path_.clear();
      fail("create a file beside", error_number);
    }
    signal_slot_ = register_temp_path(temp_path_.c_str());
    if (::fchmod(fd_, permissions_for(target_)) != 0) fail("write", errno);
  }
  buffer_.reserve(kBufferBytes);
}

OutputFile::~OutputFile() {
  if (fd_ >= 0) ::close(fd_);
  if (!temp_path_.empty()) ::unlink(temp_path_.c_str());
  unregister_temp_path(signal_slot_);
}

void OutputFile::fail(const char* action, int error_number) {
  if (fd_ >= 0) ::close(fd_);
  fd_ = -1;
  if (!temp_path_.empty()) ::unlink(temp_path_.c_str());
  unregister_temp_path(signal_slot_);
  signal_slot_ = -1;
  temp_path_.clear();
  KVC_FAIL("cannot ", action, " ", in_quotes(path_), ": ", std::strerror(error_number));
}

void OutputFile::flush_buffer() {
  KVC_CHECK(fd_ >= 0, "cannot write ", in_quotes(path_), ": it is already closed");
  const char* data = buffer_.data();
  std::size_t left = buffer_.size();
  while (left > 0) {
    const ssize_t written = ::write(fd_, data, left);
    if (written < 0 && errno == EINTR) continue;
    if (written <= 0) fail("write", written < 0 ? errno : EIO);
    data += written;
    left -= static_cast<std::size_t>(written);
  }
  buffer_.clear();
}

void OutputFile::write(const void* data, std::size_t bytes) {
  const char* bytes_in = static_cast<const char*>(data);
  while (bytes > 0) {
    const std::size_t take = std::min(bytes, kBufferBytes - buffer_.size());
    buffer_.insert(buffer_.end(), bytes_in, bytes_in + take);
    bytes_in += take;
    bytes -= take;
    if (buffer_.size() == kBufferBytes) flush_buffer();
  }
}

void OutputFile::commit() {
  flush_buffer();
  if (!temp_path_.empty() && ::fsync(fd_) != 0) fail("write", errno);
  const int fd = fd_;
  fd_ = -1;
  if (::close(fd) != 0) fail("write", errno);
  if (temp_path_.empty()) return;
  if (::rename(temp_path_.c_str(), target_.c_str()) != 0) fail("replace", errno);
  unregister_temp_path(signal_slot_);
  signal_slot_ = -1;
  temp_path_.clear();
}

void write_output_file(const std::string& path, std::string_view contents) {
  OutputFile file(path);
  file.write(contents);
  file.commit();
}

void check_outputs(const std::vector<std::string>& outputs,
                   const std::vector<std::string>& inputs) {
  for (std::size_t o = 0; o < outputs.size(); ++o) {
    const std::string& out = outputs[o];
    if (out.empty()) continue;
    std::error_code ec;
    KVC_CHECK(!fs::is_directory(out, ec), "output ", in_quotes(out), " is a directory");
    for (const std::string& in : inputs) {
      KVC_CHECK(in.empty() || !same_file(out, in), "output ", in_quotes(out), " is the input ",
                in_quotes(in), ": writing it would destroy the input; choose another path");
    }
    for (std::size_t other = 0; other < o; ++other) {
      KVC_CHECK(outputs[other].empty() || !same_file(out, outputs[other]), "outputs ",
                in_quotes(outputs[other]), " and ", in_quotes(out),
                " are the same file; give each its own path");
    }
    // A stream, or a file that exists, must itself be writable: a read-only
    // file is not replaced behind its owner's back.
    if (is_stream(out) || fs::exists(out, ec)) {
      KVC_CHECK(::access(out.c_str(), W_OK) == 0, "cannot write ", in_quotes(out), ": ",
                std::strerror(errno));
    }
    if (is_stream(out)) continue;
    const fs::path folder = folder_of(fs::path(out));
    KVC_CHECK(fs::is_directory(folder, ec), "cannot write ", in_quotes(out), ": folder ",
              in_quotes(folder.string()), " does not exist");
    KVC_CHECK(::access(folder.c_str(), W_OK | X_OK) == 0, "cannot write ", in_quotes(out), ": ",
              std::strerror(errno));
  }
}

void check_readable_file(const std::string& path) {
  // O_NONBLOCK: opening a FIFO must not wait for a writer.
  const int fd = ::open(path.c_str(), O_RDONLY | O_NONBLOCK | O_CLOEXEC);
  KVC_CHECK(fd >= 0, "cannot read ", in_quotes(path), ": ", std::strerror(errno));
  struct stat info {};
  const bool is_folder = ::fstat(fd, &info) == 0 && S_ISDIR(info.st_mode);
  ::close(fd);
  KVC_CHECK(!is_folder, in_quotes(path), " is a directory");
}

}  // namespace kvc
