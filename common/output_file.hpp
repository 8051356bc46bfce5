// Every file a program writes goes through here, so that no output is ever lost
// or left half-written, and no input is ever overwritten.
//
// OutputFile writes to a temporary file in the destination's folder
// ("<path>.tmp.XXXXXX"), and commit() flushes, fsyncs and closes it, checking
// each step, then renames it over the destination in one atomic step. Until
// commit() succeeds the destination is untouched; on any failure, when the
// OutputFile is destroyed without commit(), or when SIGINT, SIGTERM, SIGHUP or
// SIGXFSZ ends the program (unless it handles or ignores them itself), the
// temporary file is removed.
// Errors are kvc::Error naming the path and the system's reason ("cannot write
// 'x.json': No space left on device").
//
// A destination that exists and is not a regular file (a device such as
// /dev/null or /dev/full, a pipe), or any path under /dev or /proc, is a stream,
// not a file: it is written in place, and a failed write is still an error.
#pragma once

#include <cstddef>
#include <string>
#include <string_view>
#include <vector>

namespace kvc {

class OutputFile {
 public:
  explicit OutputFile(std::string path);
  ~OutputFile();  // removes the temporary file unless commit() succeeded
  OutputFile(const OutputFile&) = delete;
  OutputFile& operator=(const OutputFile&) = delete;

  void write(const void* data, std::size_t bytes);
  void write(std::string_view text) { write(text.data(), text.size()); }
  // Makes the written bytes the destination's contents.
  void commit();

  const std::string& path() const { return path_; }

 private:
  void flush_buffer();
  [[noreturn]] void fail(const char* action, int error_number);

  std::string path_;       // the destination, as the user named it
  std::string target_;     // what rename() replaces: path_ with symlinks resolved
  std::string temp_path_;  // empty when writing in place
  int fd_ = -1;
  int signal_slot_ = -1;      // where a fatal signal's handler finds temp_path_
  std::vector<char> buffer_;  // small writes gathered into large ones
};

// `contents` into `path` through an OutputFile.
void write_output_file(const std::string& path, std::string_view contents);

// Checks, before any work, that every output can be written and touches no
// input: each output is not a folder, its folder exists and is writable, it is
// not the same file as any input (std::filesystem::equivalent: hard links and
// symlinks count) and no two outputs are the same file. Empty paths (an
// output that was not asked for) are ignored. Throws kvc::Error naming the paths.
void check_outputs(const std::vector<std::string>& outputs, const std::vector<std::string>& inputs);

// Checks that `path` names a file this process can read: "'x' is a directory",
// "cannot read 'x': Permission denied", "cannot read 'x': No such file or directory".
void check_readable_file(const std::string& path);

}  // namespace kvc
