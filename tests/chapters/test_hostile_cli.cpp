// Every program against hostile arguments: folders and unreadable files as
// inputs, outputs that are inputs or each other, writes that fail (/dev/full,
// a file-size limit), absurd thread counts, seeds and numbers. Each must answer
// with one line on stderr and a non-zero exit, and leave every input as it was.
#include <gtest/gtest.h>
#include <unistd.h>

#include <array>
#include <cctype>
#include <filesystem>
#include <fstream>
#include <vector>

#include "tests/support/cli_expectations.hpp"

namespace kvc::testing {
namespace {

// True when `text` prints a negative number (" -" followed by a digit).
bool has_negative_number(const std::string& text) {
  for (std::size_t at = text.find(" -"); at != std::string::npos; at = text.find(" -", at + 1)) {
    if (at + 2 < text.size() && std::isdigit(static_cast<unsigned char>(text[at + 2]))) return true;
  }
  return false;
}

namespace fs = std::filesystem;

// The programs that load a checkpoint with -z and take --json, --threads, -t, -p and -s.
const char* const kGenerators[] = {"ch01_naive_attention", "ch02_contiguous_kv_cache", "ch03_gqa",
                                   "ch04_paged_allocator", "ch04_serve"};

// `command` run as an unprivileged user when the tests run as root (root reads
// any file, so "Permission denied" needs someone else).
std::string without_privileges(const std::string& command) {
  return ::geteuid() == 0 ? "setpriv --reuid=65534 --regid=65534 --clear-groups " + command
                          : command;
}

// A fresh folder holding copies of the real model, so no test can harm models/.
class HostileCli : public ::testing::Test {
 protected:
  void SetUp() override {
    dir_ = temp_path("hostile");
    fs::create_directories(dir_);
    checkpoint_ = dir_ + "/model.bin";
    tokenizer_ = dir_ + "/tok.bin";
    fs::copy_file(model_file("stories260K.bin"), checkpoint_);
    fs::copy_file(model_file("tok512.bin"), tokenizer_);
    checkpoint_bytes_ = read_file(checkpoint_);
    tokenizer_bytes_ = read_file(tokenizer_);
  }
  void TearDown() override {
    EXPECT_EQ(read_file(checkpoint_), checkpoint_bytes_) << "the checkpoint changed";
    EXPECT_EQ(read_file(tokenizer_), tokenizer_bytes_) << "the tokenizer changed";
    for (const auto& entry : fs::directory_iterator(dir_)) {
      EXPECT_EQ(entry.path().string().find(".tmp."), std::string::npos)
          << "temporary file left behind: " << entry.path();
    }
    fs::remove_all(dir_);
  }
  static std::string program(const std::string& name) { return program_path(name); }
  CommandResult run(const std::string& name, const std::string& args) const {
    return run_command(program(name) + " " + args);
  }
  // The model and a short run: ch04_serve counts new tokens, the others positions.
  std::string model_args(const std::string& name, int steps = 8) const {
    return checkpoint_ + " -z " + tokenizer_ +
           (name == "ch04_serve" ? " --max-new-tokens " : " -n ") + std::to_string(steps);
  }

  std::string dir_, checkpoint_, tokenizer_, checkpoint_bytes_, tokenizer_bytes_;
};

// The program ran, then one line "error: ..." naming `must_mention` ended stderr.
void expect_failed_at_the_end(const CommandResult& r, const std::string& must_mention) {
  EXPECT_NE(r.exit_code, 0);
  ASSERT_FALSE(r.err.empty());
  const std::size_t last_line = r.err.rfind('\n', r.err.size() - 2);
  const std::string line = r.err.substr(last_line == std::string::npos ? 0 : last_line + 1);
  EXPECT_EQ(line.rfind("error: ", 0), 0u) << r.err;
  EXPECT_NE(line.find(must_mention), std::string::npos) << r.err;
}

TEST_F(HostileCli, FoldersAndUnreadableFilesAsInputsAreNamed) {
  const std::string unreadable = dir_ + "/unreadable.bin";
  std::ofstream(unreadable) << "x";
  fs::permissions(unreadable, fs::perms::none);
  for (const char* name : kGenerators) {
    SCOPED_TRACE(name);
    expect_one_line_error(run(name, dir_ + " -z " + tokenizer_), "is a directory");
    expect_one_line_error(run(name, checkpoint_ + " -z " + dir_), "is a directory");
    expect_one_line_error(
        run_command(without_privileges(program(name) + " " + checkpoint_ + " -z " + unreadable)),
        "cannot read '" + unreadable + "': Permission denied");
    expect_one_line_error(
        run_command(without_privileges(program(name) + " " + unreadable + " -z " + tokenizer_)),
        "Permission denied");
  }
  expect_one_line_error(run("ch04_serve", model_args("ch04_serve") + " --prompts-file " + dir_),
                        "is a directory");
  expect_one_line_error(run("kvc_convert_gqa", "--kv-heads 1 " + dir_ + " " + dir_ + "/out.bin"),
                        "is a directory");
  expect_one_line_error(
      run("kvc_convert_gqa", "--evaluate " + checkpoint_ + " -z " + tokenizer_ + " --text " + dir_),
      "is a directory");
  expect_one_line_error(run("kv_calculator", "--lengths-file " + dir_), "is a directory");
  expect_one_line_error(run("ch04_fragmentation", "--lengths-file " + dir_), "is a directory");
  expect_one_line_error(run("kvc_tour", "--model " + dir_), "is a directory");
  fs::remove(unreadable);
}

TEST_F(HostileCli, OutputsOntoInputsAreRefusedBeforeAnyWork) {
  const std::string link = dir_ + "/hard_link.bin";
  fs::create_hard_link(checkpoint_, link);
  for (const char* name : kGenerators) {
    SCOPED_TRACE(name);
    expect_one_line_error(run(name, model_args(name) + " --json " + checkpoint_), "is the input");
    expect_one_line_error(run(name, model_args(name) + " --json " + tokenizer_), "is the input");
    expect_one_line_error(run(name, model_args(name) + " --json " + link), "is the input");
    expect_one_line_error(run(name, model_args(name) + " --json " + dir_), "is a directory");
    expect_one_line_error(
        run(name, model_args(name) + " --json " + dir_ + "/no/such/folder/r.json"),
        "does not exist");
  }
  const std::string prompts = dir_ + "/prompts.txt";
  std::ofstream(prompts) << "Once upon a time\n";
  expect_one_line_error(
      run("ch04_serve", model_args("ch04_serve") + " --prompts-file " + prompts + " --json " +
                            dir_ + "/../" + fs::path(dir_).filename().string() + "/prompts.txt"),
      "is the input");
  EXPECT_EQ(read_file(prompts), "Once upon a time\n");

  expect_one_line_error(run("kvc_convert_gqa", "--kv-heads 1 " + checkpoint_ + " " + checkpoint_),
                        "is the input");
  expect_one_line_error(run("kvc_convert_gqa", "--kv-heads 1 " + checkpoint_ + " " + link),
                        "is the input");
  expect_one_line_error(run("kvc_make_model", "--preset tour --out " + dir_ +
                                                  "/x.bin --tokenizer-out " + dir_ + "/./x.bin"),
                        "are the same file");
  EXPECT_FALSE(fs::exists(dir_ + "/x.bin"));
  fs::remove(link);
}

TEST_F(HostileCli, ReadOnlyOutputsAreNotReplaced) {
  fs::permissions(dir_, fs::perms::all);  // the folder is writable: only the file says no
  const std::string read_only = dir_ + "/read_only.bin";
  std::ofstream(read_only) << "keep";
  fs::permissions(read_only,
                  fs::perms::owner_read | fs::perms::group_read | fs::perms::others_read);
  expect_one_line_error(run_command(without_privileges(program("kvc_make_model") +
                                                       " --preset tiny --out " + read_only)),
                        "cannot write '" + read_only + "': Permission denied");
  expect_one_line_error(run_command(without_privileges(program("ch02_contiguous_kv_cache") + " " +
                                                       model_args("ch02_contiguous_kv_cache") +
                                                       " --json " + read_only)),
                        "Permission denied");
  EXPECT_EQ(read_file(read_only), "keep");
}

TEST_F(HostileCli, FailedWritesAreErrorsAndLeaveNothingHalfWritten) {
  for (const char* name : kGenerators) {
    SCOPED_TRACE(name);
    expect_failed_at_the_end(run(name, model_args(name) + " -t 0 --json /dev/full"),
                             "cannot write '/dev/full': No space left on device");
  }
  expect_failed_at_the_end(run("kvc_convert_gqa", "--kv-heads 1 " + checkpoint_ + " /dev/full"),
                           "No space left on device");
  expect_failed_at_the_end(run("kvc_make_model", "--preset tour --out /dev/full"),
                           "No space left on device");

  // A write that fails midway (here: the file-size limit) keeps the old file whole.
  const std::string previous = dir_ + "/previous.bin";
  std::ofstream(previous) << "the previous contents";
  const std::string limited = "{ trap '' XFSZ; ulimit -f 64; ";
  expect_failed_at_the_end(
      run_command(limited + program("kvc_make_model") + " --preset tour --out " + previous + "; }"),
      "File too large");
  expect_failed_at_the_end(run_command(limited + program("kvc_convert_gqa") + " --kv-heads 1 " +
                                       checkpoint_ + " " + previous + "; }"),
                           "File too large");
  EXPECT_EQ(read_file(previous), "the previous contents");
  expect_failed_at_the_end(
      run_command(limited + program("kvc_make_model") + " --preset tour --out " + dir_ +
                  "/m.bin --tokenizer-out " + previous + "; }"),
      "File too large");
  EXPECT_FALSE(fs::exists(dir_ + "/m.bin"));
  EXPECT_EQ(read_file(previous), "the previous contents");
  // Killed by the limit's signal instead: its handler removes the temporary file
  // (TearDown checks), and the old file stays whole.
  EXPECT_NE(run_command("{ ulimit -f 64; " + program("kvc_make_model") + " --preset tour --out " +
                        previous + "; }")
                .exit_code,
            0);
  EXPECT_EQ(read_file(previous), "the previous contents");
  fs::remove(previous);
}

TEST_F(HostileCli, StdoutThatCannotBeWrittenIsAnError) {
  const auto full_stdout = [&](const std::string& name, const std::string& args) {
    return run_command("{ " + program(name) + " " + args + " >/dev/full; }");
  };
  for (const char* name : kGenerators) {
    SCOPED_TRACE(name);
    expect_failed_at_the_end(full_stdout(name, model_args(name)), "cannot write standard output");
  }
  expect_failed_at_the_end(full_stdout("kv_calculator", ""), "cannot write standard output");
  expect_failed_at_the_end(full_stdout("kv_calculator", "--help"), "cannot write standard output");
  expect_failed_at_the_end(full_stdout("ch04_fragmentation", ""), "cannot write standard output");
  expect_failed_at_the_end(full_stdout("kvc_make_model", "--list"), "cannot write standard output");
  expect_failed_at_the_end(full_stdout("kvc_tour", "-n 8 --threads 1"),
                           "cannot write standard output");
}

TEST_F(HostileCli, NumbersOutOfRangeGetShortSpecificMessages) {
  // Every message names the flag and the range in few characters: no 309-digit maximum.
  const auto expect_short = [](const CommandResult& r, const std::string& must_mention) {
    expect_one_line_error(r, must_mention);
    EXPECT_LT(r.err.size(), 160u) << r.err;
  };
  for (const char* name : kGenerators) {
    SCOPED_TRACE(name);
    expect_short(run(name, model_args(name) + " --threads 100000000"), "--threads");
    expect_short(run(name, model_args(name) + " --threads -1"), "--threads");
    expect_short(run(name, model_args(name) + " -s -5"), "--seed");
    expect_short(run(name, model_args(name) + " -s 1e30"), "--seed");
    expect_short(run(name, model_args(name) + " -s 99999999999999999999"), "--seed");
    expect_short(run(name, model_args(name) + " -t nan"), "--temperature");
    expect_short(run(name, model_args(name) + " -t inf"), "--temperature");
    expect_short(run(name, model_args(name) + " -t -1e-45"), "--temperature");
    expect_short(run(name, model_args(name) + " -p nan"), "--top-p");
    expect_short(run(name, model_args(name) + " -p 1e400"), "--top-p");
  }
  expect_short(run("ch04_serve", model_args("ch04_serve") + " -s 0"),
               "--seed: must be an integer from 1");
  expect_short(run("ch04_serve", model_args("ch04_serve") + " --completions 100000"),
               "--completions");
  expect_short(run("ch04_serve", model_args("ch04_serve") + " --kv-blocks 1e30"), "--kv-blocks");
  expect_short(
      run("ch04_paged_allocator", model_args("ch04_paged_allocator") + " --kv-blocks 99999999999"),
      "--kv-blocks");
  expect_short(run("kvc_convert_gqa", "--evaluate --threads 5000 " + checkpoint_), "--threads");
  // {program, arguments, what the message names}
  const std::vector<std::array<const char*, 3>> cases = {
      {"kvc_tour", "--threads 5000", "--threads"},
      {"kvc_tour", "-s -5", "--seed"},
      {"kvc_tour", "-t nan", "--temperature"},
      {"kvc_make_model", "--preset tour --out x.bin --seed -5", "--seed"},
      {"kvc_make_model", "--preset tour --out x.bin --seq-len 1e30", "--seq-len"},
      {"kv_calculator", "--gpu-gib 1e300", "--gpu-gib"},
      {"kv_calculator", "--gpu-gib 0", "--gpu-gib"},
      {"kv_calculator", "--reserve nan", "--reserve"},
      {"kv_calculator", "--context 2147483648", "--context"},
      {"ch04_fragmentation", "--requests 2000000000", "--requests"},
      {"ch04_fragmentation", "--seed -5", "--seed"},
      {"ch04_fragmentation", "--block-sizes 0", "--block-sizes"},
  };
  for (const auto& [name, args, flag] : cases) expect_short(run(name, args), flag);
}

TEST_F(HostileCli, TinyTemperaturesSampleGreedily) {
  for (const char* name : kGenerators) {
    SCOPED_TRACE(name);
    const auto greedy = run(name, model_args(name, 40) + " -t 0 -s 3 --threads 1");
    const auto tiny = run(name, model_args(name, 40) + " -t 1e-45 -s 3 --threads 1");
    ASSERT_EQ(greedy.exit_code, 0) << greedy.err;
    ASSERT_EQ(tiny.exit_code, 0) << tiny.err;
    // The text only: ch04_serve's summary table ends with a throughput.
    const auto text = [](const std::string& out) {
      return out.substr(0, out.find("\n\nrequests"));
    };
    EXPECT_EQ(text(tiny.out), text(greedy.out));
    EXPECT_EQ(tiny.out.find("<unk>"), std::string::npos) << tiny.out;
    EXPECT_NE(tiny.out.find("Once upon a time"), std::string::npos) << tiny.out;
  }
}

TEST_F(HostileCli, HugeSizesAreRefusedOrReportedSanely) {
  // ch04_serve sizes its pool only from valid requests, in 64 bits.
  expect_one_line_error(run("ch04_serve", checkpoint_ + " -z " + tokenizer_ +
                                              " --completions 256 --max-new-tokens 1048576 "
                                              "--block-size 1 --max-running 256"),
                        "more than the model's context");
  // A pool bigger than the machine is refused up front, naming its size.
  for (const char* name : {"ch04_serve", "ch04_paged_allocator"}) {
    expect_one_line_error(run(name, model_args(name) + " --kv-blocks 1073741824 --block-size 256"),
                          "320.00 TiB of K and V, more than this machine's");
  }
  // Reports stay true at the edges: no negative sizes, nothing above 100%, no SIGFPE.
  for (const char* args :
       {"--context 2147483647", "--context 2147483647 --gpu-gib 1048576 --model llama-2-70b",
        "--lengths 2147483647,2147483647 --context 2147483647 --gpu-gib 1048576",
        "--gpu-gib 0.001 --lengths 5"}) {
    SCOPED_TRACE(args);
    const auto r = run("kv_calculator", std::string(args));
    ASSERT_EQ(r.exit_code, 0) << r.err;
    EXPECT_FALSE(has_negative_number(r.out)) << r.out;
  }
  const std::string lengths = dir_ + "/lengths.txt";
  std::ofstream(lengths) << "2147483647 2147483647 1\n";
  for (const std::string& args :
       {std::string("--context 2147483647"), "--context 2147483647 --lengths-file " + lengths}) {
    SCOPED_TRACE(args);
    const auto r = run("ch04_fragmentation", args);
    ASSERT_EQ(r.exit_code, 0) << r.err;
    EXPECT_FALSE(has_negative_number(r.out)) << r.out;
    EXPECT_EQ(r.out.find("100.1%"), std::string::npos) << r.out;
    for (std::size_t at = r.out.find('%'); at != std::string::npos; at = r.out.find('%', at + 1)) {
      const std::size_t start = r.out.rfind(' ', at) + 1;
      EXPECT_LE(std::stod(r.out.substr(start, at - start)), 100.0) << r.out;
    }
  }
  fs::remove(lengths);
}

// NEW (ch07): ch04_serve --kv-dtype names one of common/kv_dtype.hpp's formats.
TEST_F(HostileCli, KvDtypesTheServerCannotStoreAreOneLine) {
  const std::string serve = model_args("ch04_serve");
  expect_one_line_error(run("ch04_serve", serve + " --kv-dtype fp64"), "unknown KV dtype 'fp64'");
  expect_one_line_error(run("ch04_serve", serve + " --kv-dtype int8 --compare"),
                        "--compare checks the tokens against chapter 02's fp32 cache");
  expect_one_line_error(run("kv_calculator", "--dtype q4_0"), "unknown KV dtype 'q4_0'");
}

}  // namespace
}  // namespace kvc::testing
