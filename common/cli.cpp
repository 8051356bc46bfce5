#include "common/cli.hpp"

#include <cstdio>
#include <new>

#include "common/check.hpp"

namespace kvc {

int run_program(CLI::App& app, int argc, char** argv, const std::function<int()>& body) {
  try {
    app.parse(argc, argv);
  } catch (const CLI::CallForHelp& help) {
    return app.exit(help);
  } catch (const CLI::ParseError& error) {
    std::fprintf(stderr, "error: %s (run with --help for usage)\n", error.what());
    return error.get_exit_code() != 0 ? error.get_exit_code() : 2;
  }
  try {
    return body();
  } catch (const Error& error) {
    std::fflush(stdout);  // what was printed before the error stays before it
    std::fprintf(stderr, "error: %s\n", error.what());
  } catch (const std::bad_alloc&) {
    std::fflush(stdout);
    std::fprintf(stderr, "error: out of memory\n");
  }
  return 1;
}

}  // namespace kvc
