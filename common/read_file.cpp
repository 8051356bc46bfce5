#include "common/read_file.hpp"

#include <filesystem>
#include <fstream>

#include "common/check.hpp"

namespace kvc {

std::string read_file_bounded(const std::string& path, std::size_t max_bytes,
                              std::string_view what) {
  std::error_code ec;
  KVC_CHECK(!std::filesystem::is_directory(path, ec), what, " '", path, "': is a directory");
  std::ifstream in(path, std::ios::binary);
  KVC_CHECK(in.is_open(), what, " '", path, "': cannot open it");
  // Read in chunks until end of file or one byte past the bound: a special
  // file (a pipe, /dev/zero) has no size to ask for in advance.
  std::string bytes;
  char chunk[1 << 16];
  while (in && bytes.size() <= max_bytes) {
    in.read(chunk, sizeof(chunk));
    bytes.append(chunk, static_cast<std::size_t>(in.gcount()));
  }
  KVC_CHECK(!in.bad(), what, " '", path, "': read error");
  KVC_CHECK(bytes.size() <= max_bytes, what, " '", path, "': larger than the limit of ", max_bytes,
            " bytes");
  return bytes;
}

}  // namespace kvc
