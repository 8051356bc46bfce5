// OutputFile and the path checks: a destination changes only on commit(), whole;
// failures name the path and the reason; outputs never land on inputs.
#include "common/output_file.hpp"

#include <gtest/gtest.h>

#include <filesystem>
#include <fstream>
#include <string>
#include <vector>

#include "common/check.hpp"
#include "common/checkpoint.hpp"
#include "common/tokenizer.hpp"
#include "tests/support/test_support.hpp"

namespace kvc::testing {
namespace {

namespace fs = std::filesystem;

// `error` names `phrase`, or the assertion shows what it said instead.
::testing::AssertionResult mentions(const std::string& error, const std::string& phrase) {
  if (error.find(phrase) != std::string::npos) return ::testing::AssertionSuccess();
  return ::testing::AssertionFailure() << "error \"" << error << "\" lacks \"" << phrase << "\"";
}

// What failed with kvc::Error, or "" when nothing did.
template <typename Fn>
std::string error_of(Fn&& fn) {
  try {
    fn();
  } catch (const Error& error) {
    return error.what();
  }
  return "";
}

class OutputFileTest : public ::testing::Test {
 protected:
  void SetUp() override {
    dir_ = temp_path("outputs");
    fs::create_directories(dir_);
  }
  void TearDown() override { fs::remove_all(dir_); }
  std::vector<std::string> files() const {
    std::vector<std::string> names;
    for (const auto& entry : fs::directory_iterator(dir_)) {
      names.push_back(entry.path().filename().string());
    }
    std::sort(names.begin(), names.end());
    return names;
  }

  std::string dir_;
};

TEST_F(OutputFileTest, DestinationChangesOnlyOnCommitAndWhole) {
  const std::string path = dir_ + "/out.txt";
  std::ofstream(path) << "old";
  {
    OutputFile out(path);
    std::string big(200'000, 'x');  // more than one buffer
    out.write(big);
    EXPECT_EQ(read_file(path), "old") << "written before commit";
    EXPECT_EQ(files().size(), 2u) << "the temporary file sits beside the destination";
    out.commit();
  }
  EXPECT_EQ(read_file(path), std::string(200'000, 'x'));
  EXPECT_EQ(files(), std::vector<std::string>{"out.txt"});
}

TEST_F(OutputFileTest, AbandonedWriteLeavesTheOldFileAndNoTemporary) {
  const std::string path = dir_ + "/out.txt";
  std::ofstream(path) << "old";
  {
    OutputFile out(path);
    out.write("new contents");
  }
  EXPECT_EQ(read_file(path), "old");
  EXPECT_EQ(files(), std::vector<std::string>{"out.txt"});
}

TEST_F(OutputFileTest, ReplacedFileKeepsItsPermissionsAndSymlinksStay) {
  const std::string path = dir_ + "/out.txt", link = dir_ + "/link.txt";
  std::ofstream(path) << "old";
  fs::permissions(path, fs::perms::owner_read | fs::perms::owner_write | fs::perms::group_read);
  fs::create_symlink(path, link);
  write_output_file(link, "new");
  EXPECT_TRUE(fs::is_symlink(link));
  EXPECT_EQ(read_file(path), "new");
  EXPECT_EQ(fs::status(path).permissions() & fs::perms::all,
            fs::perms::owner_read | fs::perms::owner_write | fs::perms::group_read);
}

TEST_F(OutputFileTest, FailuresNameThePathAndTheReason) {
  EXPECT_EQ(error_of([] { write_output_file("/dev/full", "x"); }),
            "cannot write '/dev/full': No space left on device");
  EXPECT_TRUE(mentions(error_of([&] { write_output_file(dir_ + "/missing/x.json", "x"); }),
                       "No such file or directory"));
  EXPECT_TRUE(mentions(error_of([&] { write_output_file(dir_, "x"); }), "is a directory"));
  // Every writer of the project goes through it.
  const Model model = make_model({8, 16, 1, 2, 1, 8, 4});
  EXPECT_TRUE(
      mentions(error_of([&] { save_checkpoint("/dev/full", model, CheckpointFormat::kLegacy); }),
               "No space left on device"));
  const Tokenizer tokenizer(model_file("tok512.bin"), 512);
  EXPECT_TRUE(mentions(error_of([&] { tokenizer.save("/dev/full"); }), "No space left on device"));
  write_output_file("/dev/null", "a stream is written in place");
  EXPECT_TRUE(fs::is_character_file("/dev/null"));
}

TEST_F(OutputFileTest, OutputsMayNotBeInputsOrEachOther) {
  const std::string input = dir_ + "/in.bin";
  const std::string hard_link = dir_ + "/hard.bin", soft_link = dir_ + "/soft.bin";
  const std::string dotted = dir_ + "/../" + fs::path(dir_).filename().string() + "/in.bin";
  std::ofstream(input) << "input";
  fs::create_hard_link(input, hard_link);
  fs::create_symlink(input, soft_link);
  for (const std::string& out : {input, hard_link, soft_link, dotted}) {
    EXPECT_TRUE(mentions(error_of([&] {
                           check_outputs({out}, {"", input});
                         }),
                         "is the input"))
        << out;
  }
  EXPECT_TRUE(mentions(error_of([&] {
                         check_outputs({dir_ + "/a", dir_ + "/./a"}, {});
                       }),
                       "are the same file"));
  // Relative and absolute spellings of one new file, before it exists.
  const std::string relative = fs::relative(dir_ + "/new.bin").string();
  EXPECT_TRUE(mentions(error_of([&] {
                         check_outputs({relative, "./" + relative}, {});
                       }),
                       "are the same file"));
  EXPECT_TRUE(mentions(error_of([&] {
                         check_outputs({relative, dir_ + "/new.bin"}, {});
                       }),
                       "are the same file"));
  EXPECT_TRUE(mentions(error_of([&] { check_outputs({dir_}, {}); }), "is a directory"));
  EXPECT_TRUE(mentions(error_of([&] { check_outputs({dir_ + "/no/x"}, {}); }), "does not exist"));
  EXPECT_EQ(error_of([&] { check_outputs({"", dir_ + "/a", "/dev/null"}, {input, ""}); }), "");
  EXPECT_EQ(read_file(input), "input");
}

TEST_F(OutputFileTest, ReadableFileNamesFoldersAndMissingFiles) {
  EXPECT_EQ(error_of([&] { check_readable_file(dir_); }), "'" + dir_ + "' is a directory");
  EXPECT_EQ(error_of([&] { check_readable_file(dir_ + "/none"); }),
            "cannot read '" + dir_ + "/none': No such file or directory");
  EXPECT_EQ(error_of([] { check_readable_file(model_file("tok512.bin")); }), "");
}

}  // namespace
}  // namespace kvc::testing
