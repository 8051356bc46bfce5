// Tokenizer: llama2.c's encode/decode rules on hand-built vocabularies whose
// answers follow from the rules, and properties on the real tok512.bin and
// 32000-token tokenizer.bin. Bad files must fail with a one-line kvc::Error.
#include "common/tokenizer.hpp"

#include <gtest/gtest.h>
#include <unistd.h>

#include <algorithm>
#include <cstdint>
#include <cstdio>
#include <filesystem>
#include <fstream>
#include <iterator>
#include <limits>
#include <optional>
#include <random>
#include <string>
#include <utility>
#include <vector>

#include "common/check.hpp"
#include "tests/support/reference_encode.hpp"
#include "tests/support/test_support.hpp"

namespace {

namespace fs = std::filesystem;
using kvc::Tokenizer;

using kvc::testing::read_file;

// A file in the temp directory, removed when the test ends.
class TempFile {
 public:
  explicit TempFile(const std::string& name)
      : path_(fs::temp_directory_path() / ("kvc_tok_" + std::to_string(::getpid()) + "_" + name)) {}
  ~TempFile() { fs::remove(path_); }
  TempFile(const TempFile&) = delete;
  TempFile& operator=(const TempFile&) = delete;

  const fs::path& path() const { return path_; }
  void write(const std::string& bytes) const {
    std::ofstream(path_, std::ios::binary).write(bytes.data(), std::ssize(bytes));
  }

 private:
  fs::path path_;
};

using kvc::testing::error_of;

// llama2.c's layout: <unk>, <s>, </s>, the 256 byte pieces, then `extra`.
Tokenizer make_tokenizer(const std::vector<std::pair<std::string, float>>& extra) {
  std::vector<std::string> pieces = {"<unk>", "\n<s>\n", "\n</s>\n"};
  for (int byte = 0; byte < 256; ++byte) {
    char name[8];
    std::snprintf(name, sizeof(name), "<0x%02X>", byte);
    pieces.emplace_back(name);
  }
  std::vector<float> scores(pieces.size(), 0.0f);
  for (const auto& [piece, score] : extra) {
    pieces.push_back(piece);
    scores.push_back(score);
  }
  return Tokenizer(std::move(pieces), std::move(scores));
}

int byte_token(char byte) {
  return static_cast<unsigned char>(byte) + 3;
}

// Concatenates decode() over `tokens` after the leading BOS, as run.c prints.
std::string decode_all(const Tokenizer& tokenizer, const std::vector<int>& tokens) {
  std::string text;
  for (std::size_t i = 1; i < tokens.size(); ++i) {
    text += tokenizer.decode(tokens[i - 1], tokens[i]);
  }
  return text;
}

// ---------------------------------------------------------------------------
// Rules, on hand-built vocabularies.

TEST(TokenizerRules, EmptyTextHasNoDummyPrefix) {
  const Tokenizer tokenizer = make_tokenizer({{" ", 0.0f}});
  EXPECT_EQ(tokenizer.encode("", true, false), std::vector<int>({kvc::kBosToken}));
  EXPECT_EQ(tokenizer.encode("", false, false), std::vector<int>());
  EXPECT_EQ(tokenizer.encode("", true, true), std::vector<int>({kvc::kBosToken, kvc::kEosToken}));
}

TEST(TokenizerRules, DummyPrefixThenOneTokenPerCharacter) {
  const Tokenizer tokenizer = make_tokenizer({{" ", 0.0f}, {"a", 0.0f}, {"b", 0.0f}});
  const int space = tokenizer.lookup(" ");
  const int a = tokenizer.lookup("a");
  const int b = tokenizer.lookup("b");
  EXPECT_EQ(tokenizer.encode("ab", false, false), std::vector<int>({space, a, b}));
  EXPECT_EQ(tokenizer.encode("ba", true, true),
            std::vector<int>({kvc::kBosToken, space, b, a, kvc::kEosToken}));
}

TEST(TokenizerRules, MissingSpacePieceIsAClearError) {
  const Tokenizer tokenizer = make_tokenizer({{"a", 0.0f}});
  EXPECT_NE(error_of([&] { tokenizer.encode("a", true, false); }).find("\" \" piece"),
            std::string::npos);
  EXPECT_EQ(tokenizer.encode("", true, false), std::vector<int>({kvc::kBosToken}));
}

TEST(TokenizerRules, HigherScoringMergeWins) {
  // "abc" can merge as ab+c or a+bc: whichever merged piece scores higher.
  const std::vector<std::pair<std::string, float>> base = {
      {" ", 0.0f}, {"a", 0.0f}, {"b", 0.0f}, {"c", 0.0f}};
  auto with = [&](float ab_score, float bc_score) {
    auto extra = base;
    extra.emplace_back("ab", ab_score);
    extra.emplace_back("bc", bc_score);
    return make_tokenizer(extra);
  };
  const Tokenizer bc_first = with(-5.0f, -1.0f);
  EXPECT_EQ(bc_first.encode("abc", false, false),
            std::vector<int>({bc_first.lookup(" "), bc_first.lookup("a"), bc_first.lookup("bc")}));
  const Tokenizer ab_first = with(-1.0f, -5.0f);
  EXPECT_EQ(ab_first.encode("abc", false, false),
            std::vector<int>({ab_first.lookup(" "), ab_first.lookup("ab"), ab_first.lookup("c")}));
  // On equal scores the leftmost pair merges first.
  const Tokenizer tie = with(-2.0f, -2.0f);
  EXPECT_EQ(tie.encode("abc", false, false),
            std::vector<int>({tie.lookup(" "), tie.lookup("ab"), tie.lookup("c")}));
}

TEST(TokenizerRules, TiesGoToTheLeftmostPairEvenWhenItFormedLater) {
  // After "ab" merges, "abc" (formed by that merge) and "cd" (there from the
  // start) score the same. llama2.c rescans left to right, so "abc" wins;
  // an encoder that broke ties by age would merge "cd" instead.
  const Tokenizer tokenizer = make_tokenizer({{" ", 0.0f},
                                              {"a", 0.0f},
                                              {"b", 0.0f},
                                              {"c", 0.0f},
                                              {"d", 0.0f},
                                              {"ab", 5.0f},
                                              {"abc", 1.0f},
                                              {"cd", 1.0f}});
  const std::vector<int> expected = {tokenizer.lookup(" "), tokenizer.lookup("abc"),
                                     tokenizer.lookup("d")};
  EXPECT_EQ(tokenizer.encode("abcd", false, false), expected);
  EXPECT_EQ(kvc::testing::reference_encode(tokenizer, "abcd", false, false), expected);
}

// Random vocabularies over a 4-letter alphabet with few distinct scores (many
// ties), duplicate and empty pieces, and random texts: the fast encode must
// give exactly llama2.c's tokens.
TEST(TokenizerRules, FastEncodeMatchesLlama2cOnRandomVocabularies) {
  std::mt19937 rng(7);
  const std::string alphabet = "ab c";
  const float score_choices[] = {-1e10f, -1.0f, 0.0f, 0.0f, 1.0f, 2.0f};
  auto random_string = [&](int max_length) {
    std::string text(std::uniform_int_distribution<int>(0, max_length)(rng), ' ');
    for (char& ch : text) ch = alphabet[std::uniform_int_distribution<int>(0, 3)(rng)];
    return text;
  };
  int compared = 0;
  for (int vocab = 0; vocab < 200; ++vocab) {
    std::vector<std::pair<std::string, float>> extra = {{" ", 0.0f}};
    for (char ch : alphabet) extra.emplace_back(std::string(1, ch), 0.0f);
    const int pieces = std::uniform_int_distribution<int>(0, 40)(rng);
    for (int i = 0; i < pieces; ++i) {
      extra.emplace_back(random_string(5), score_choices[rng() % std::size(score_choices)]);
    }
    const Tokenizer tokenizer = make_tokenizer(extra);
    for (int t = 0; t < 20; ++t) {
      const std::string text = random_string(40);
      ASSERT_EQ(tokenizer.encode(text, true, false),
                kvc::testing::reference_encode(tokenizer, text, true, false))
          << "text '" << text << "' in vocabulary " << vocab;
      ++compared;
    }
  }
  EXPECT_EQ(compared, 200 * 20);
}

TEST(TokenizerRules, RejectsFewerThanThreePiecesAndNonFiniteScores) {
  EXPECT_NE(error_of([] {
              Tokenizer({"<unk>", "<s>"}, {0.0f, 0.0f});
            }).find("too few"),
            std::string::npos);
  for (const float bad :
       {std::numeric_limits<float>::quiet_NaN(), std::numeric_limits<float>::infinity(),
        -std::numeric_limits<float>::infinity()}) {
    EXPECT_NE(error_of([&] {
                make_tokenizer({{" ", bad}});
              }).find("not a finite number"),
              std::string::npos);
  }
}

TEST(TokenizerRules, MergesRepeatUntilNoPairIsInTheVocabulary) {
  const Tokenizer tokenizer = make_tokenizer(
      {{" ", 0.0f}, {"a", 0.0f}, {"b", 0.0f}, {"ab", -1.0f}, {" ab", -2.0f}, {" abab", -3.0f}});
  // " " a b a b -> " " ab ab -> " ab" ab -> " abab"
  EXPECT_EQ(tokenizer.encode("abab", true, false),
            std::vector<int>({kvc::kBosToken, tokenizer.lookup(" abab")}));
}

TEST(TokenizerRules, ScoresAtOrBelowMinusTenBillionNeverMerge) {
  const Tokenizer tokenizer =
      make_tokenizer({{" ", 0.0f}, {"a", 0.0f}, {"b", 0.0f}, {"ab", -1e10f}, {"ba", -9e9f}});
  const int a = tokenizer.lookup("a");
  const int b = tokenizer.lookup("b");
  EXPECT_EQ(tokenizer.encode("ab", false, false), std::vector<int>({tokenizer.lookup(" "), a, b}));
  EXPECT_EQ(tokenizer.encode("ba", false, false),
            std::vector<int>({tokenizer.lookup(" "), tokenizer.lookup("ba")}));
}

TEST(TokenizerRules, CodePointsAreLookedUpWhole) {
  const std::string e_acute = "\xC3\xA9";  // é
  const Tokenizer tokenizer = make_tokenizer({{" ", 0.0f}, {e_acute, 0.0f}});
  EXPECT_EQ(tokenizer.encode(e_acute + e_acute, false, false),
            std::vector<int>(
                {tokenizer.lookup(" "), tokenizer.lookup(e_acute), tokenizer.lookup(e_acute)}));
}

TEST(TokenizerRules, UnknownCodePointFallsBackToItsBytes) {
  const std::string snowman = "\xE2\x98\x83";  // ☃, not in this vocabulary
  const Tokenizer tokenizer = make_tokenizer({{" ", 0.0f}});
  EXPECT_EQ(tokenizer.encode(snowman, false, false),
            std::vector<int>({tokenizer.lookup(" "), byte_token(snowman[0]), byte_token(snowman[1]),
                              byte_token(snowman[2])}));
}

TEST(TokenizerRules, ContinuationBytesGroupAtMostFourToACodePoint) {
  // Five stray continuation bytes: a group of four (in the vocabulary), then one.
  const std::string four(4, '\x80');
  const Tokenizer tokenizer = make_tokenizer({{" ", 0.0f}, {four, 0.0f}});
  EXPECT_EQ(tokenizer.encode(four + "\x80", false, false),
            std::vector<int>({tokenizer.lookup(" "), tokenizer.lookup(four), byte_token('\x80')}));
}

TEST(TokenizerRules, DecodeStripsTheSpaceOnlyAfterBos) {
  const Tokenizer tokenizer = make_tokenizer({{" ", 0.0f}, {" cat", 0.0f}, {"cat", 0.0f}});
  const int space_cat = tokenizer.lookup(" cat");
  EXPECT_EQ(tokenizer.decode(kvc::kBosToken, space_cat), "cat");
  EXPECT_EQ(tokenizer.decode(tokenizer.lookup("cat"), space_cat), " cat");
  EXPECT_EQ(tokenizer.decode(kvc::kBosToken, tokenizer.lookup(" ")), "");
}

TEST(TokenizerRules, BytePiecesDecodeToTheirByte) {
  const Tokenizer tokenizer = make_tokenizer({{" ", 0.0f}});
  for (int byte = 0; byte < 256; ++byte) {
    const std::string expected(1, static_cast<char>(byte));
    EXPECT_EQ(tokenizer.decode(0, byte + 3), expected) << "byte " << byte;
    EXPECT_EQ(tokenizer.decode(kvc::kBosToken, byte + 3), expected) << "byte " << byte;
  }
  EXPECT_EQ(tokenizer.decode(0, tokenizer.lookup("<0x0A>")), "\n");
}

TEST(TokenizerRules, DecodeRejectsIdsOutsideTheVocabulary) {
  const Tokenizer tokenizer = make_tokenizer({{" ", 0.0f}});
  EXPECT_NE(error_of([&] { tokenizer.decode(0, tokenizer.vocab_size()); }), "");
  EXPECT_NE(error_of([&] { tokenizer.decode(0, -1); }), "");
}

TEST(TokenizerRules, PrintablePieces) {
  EXPECT_FALSE(Tokenizer::is_printable_piece(""));
  EXPECT_TRUE(Tokenizer::is_printable_piece("a"));
  EXPECT_TRUE(Tokenizer::is_printable_piece(" "));
  EXPECT_TRUE(Tokenizer::is_printable_piece("\n"));
  EXPECT_TRUE(Tokenizer::is_printable_piece("\t"));
  EXPECT_FALSE(Tokenizer::is_printable_piece(std::string(1, '\0')));
  EXPECT_FALSE(Tokenizer::is_printable_piece("\x01"));
  EXPECT_FALSE(Tokenizer::is_printable_piece("\x7F"));
  EXPECT_FALSE(Tokenizer::is_printable_piece("\xC3"));  // half of "é"
  EXPECT_TRUE(Tokenizer::is_printable_piece("\xC3\xA9"));
}

TEST(TokenizerRules, MaxTokenLengthIsTheLongestPiece) {
  EXPECT_EQ(make_tokenizer({{" ", 0.0f}}).max_token_length(), 6);  // "\n</s>\n", "<0x00>"
  EXPECT_EQ(make_tokenizer({{"abcdefghij", 0.0f}}).max_token_length(), 10);
}

TEST(TokenizerRules, SaveThenLoadGivesTheSameVocabulary) {
  const Tokenizer original = make_tokenizer({{" ", -1.5f}, {"hello", 3.25f}, {"\xC3\xA9", -7.0f}});
  const TempFile file("roundtrip.bin");
  original.save(file.path());
  const Tokenizer loaded(file.path(), original.vocab_size());
  ASSERT_EQ(loaded.vocab_size(), original.vocab_size());
  EXPECT_EQ(loaded.max_token_length(), original.max_token_length());
  for (int id = 0; id < original.vocab_size(); ++id) {
    EXPECT_EQ(loaded.piece(id), original.piece(id));
    EXPECT_EQ(loaded.score(id), original.score(id));
  }
}

// ---------------------------------------------------------------------------
// Bad files.

TEST(TokenizerFile, MissingFileNamesThePath) {
  const std::string path = (fs::temp_directory_path() / "kvc_no_such_tokenizer.bin").string();
  const std::string message = error_of([&] { Tokenizer(path, 512); });
  EXPECT_NE(message.find(path), std::string::npos) << message;
  EXPECT_NE(message.find("cannot open"), std::string::npos) << message;
}

TEST(TokenizerFile, EmptyFile) {
  const TempFile file("empty.bin");
  file.write("");
  EXPECT_NE(error_of([&] { Tokenizer(file.path(), 512); }).find("empty"), std::string::npos);
}

TEST(TokenizerFile, TruncatedFiles) {
  const Tokenizer tokenizer = make_tokenizer({{" ", 0.0f}, {"hello", 0.0f}});
  const TempFile whole("whole.bin");
  tokenizer.save(whole.path());
  const std::string bytes = read_file(whole.path());
  const int vocab_size = tokenizer.vocab_size();

  const TempFile cut("cut.bin");
  cut.write(bytes.substr(0, 2));  // inside the header
  EXPECT_NE(error_of([&] { Tokenizer(cut.path(), vocab_size); }).find("header"), std::string::npos);
  cut.write(bytes.substr(0, bytes.size() - 2));  // inside the last piece
  EXPECT_NE(error_of([&] { Tokenizer(cut.path(), vocab_size); }).find("truncated in token"),
            std::string::npos);
  cut.write(bytes.substr(0, bytes.size() - 5 - 6));  // inside the last length field
  EXPECT_NE(error_of([&] { Tokenizer(cut.path(), vocab_size); }).find("truncated in token"),
            std::string::npos);
}

TEST(TokenizerFile, WrongVocabSize) {
  const Tokenizer tokenizer = make_tokenizer({{" ", 0.0f}});
  const TempFile file("vocab.bin");
  tokenizer.save(file.path());
  const int vocab_size = tokenizer.vocab_size();
  EXPECT_NE(error_of([&] { Tokenizer(file.path(), vocab_size + 1); }).find("holds only"),
            std::string::npos);
  EXPECT_NE(error_of([&] { Tokenizer(file.path(), vocab_size - 1); }).find("more than vocab_size"),
            std::string::npos);
  EXPECT_NE(error_of([&] { Tokenizer(file.path(), 0); }), "");
}

TEST(TokenizerFile, BadPieceLengths) {
  // Three tokens (ids 0..2 are the specials every vocabulary has): "abcd" of
  // the given length, then two empty pieces.
  auto file_with_length = [](std::int32_t max_length, std::int32_t length) {
    std::string bytes(reinterpret_cast<const char*>(&max_length), sizeof(max_length));
    const float score = 0.0f;
    const std::int32_t empty = 0;
    bytes.append(reinterpret_cast<const char*>(&score), sizeof(score));
    bytes.append(reinterpret_cast<const char*>(&length), sizeof(length));
    bytes.append("abcd");
    for (int id = 1; id < 3; ++id) {
      bytes.append(reinterpret_cast<const char*>(&score), sizeof(score));
      bytes.append(reinterpret_cast<const char*>(&empty), sizeof(empty));
    }
    return bytes;
  };
  const TempFile file("lengths.bin");
  file.write(file_with_length(4, -1));
  EXPECT_NE(error_of([&] { Tokenizer(file.path(), 3); }).find("negative length"),
            std::string::npos);
  file.write(file_with_length(2, 4));
  EXPECT_NE(error_of([&] { Tokenizer(file.path(), 3); }).find("more than max_token_length"),
            std::string::npos);
  file.write(file_with_length(4, 4));
  EXPECT_EQ(Tokenizer(file.path(), 3).piece(0), "abcd");
}

// A tokenizer file of `pieces` (each with score `score`), as save() writes it.
std::string tokenizer_bytes(const std::vector<std::string>& pieces, float score) {
  std::int32_t max_length = 0;
  for (const std::string& piece : pieces) {
    max_length = std::max(max_length, static_cast<std::int32_t>(piece.size()));
  }
  std::string bytes(reinterpret_cast<const char*>(&max_length), sizeof(max_length));
  for (const std::string& piece : pieces) {
    const auto length = static_cast<std::int32_t>(piece.size());
    bytes.append(reinterpret_cast<const char*>(&score), sizeof(score));
    bytes.append(reinterpret_cast<const char*>(&length), sizeof(length));
    bytes.append(piece);
  }
  return bytes;
}

TEST(TokenizerFile, VocabularyOfFewerThanThreeTokens) {
  // Ids 0..2 are special: a smaller vocabulary would be read out of bounds.
  for (int vocab_size : {-1, 0, 1, 2}) {
    const std::vector<std::string> pieces(std::max(vocab_size, 0), "x");
    const std::string message = error_of(
        [&] { Tokenizer::from_bytes(tokenizer_bytes(pieces, 0.0f), vocab_size, "t.bin"); });
    EXPECT_NE(message.find("too small"), std::string::npos) << message;
  }
}

TEST(TokenizerFile, NonFiniteScores) {
  const TempFile file("nan.bin");
  for (const float bad :
       {std::numeric_limits<float>::quiet_NaN(), std::numeric_limits<float>::infinity(),
        -std::numeric_limits<float>::infinity()}) {
    file.write(tokenizer_bytes({"<unk>", "<s>", "</s>"}, bad));
    const std::string message = error_of([&] { Tokenizer(file.path(), 3); });
    EXPECT_NE(message.find("not a finite number"), std::string::npos) << message;
    EXPECT_NE(message.find(file.path().string()), std::string::npos) << message;
  }
}

TEST(TokenizerFile, DirectoryAndEndlessFilesAreOneLineErrors) {
  const std::string directory = fs::temp_directory_path().string();
  const std::string message = error_of([&] { Tokenizer(directory, 512); });
  EXPECT_NE(message.find("is a directory"), std::string::npos) << message;
  // /dev/zero never ends: the loader stops at its bound instead of reading until memory runs out.
  const std::string endless = error_of([] { Tokenizer("/dev/zero", 512); });
  EXPECT_NE(endless.find("larger than the limit"), std::string::npos) << endless;
}

// ---------------------------------------------------------------------------
// The real vocabularies, committed in models/.

class RealTokenizer : public ::testing::TestWithParam<std::pair<const char*, int>> {
 protected:
  void SetUp() override {
    path_ = kvc::testing::model_file(GetParam().first);
    tokenizer_.emplace(path_.string(), GetParam().second);
  }

  fs::path path_;
  std::optional<Tokenizer> tokenizer_;
};

TEST_P(RealTokenizer, LoadsTheLlamaLayout) {
  EXPECT_EQ(tokenizer_->vocab_size(), GetParam().second);
  EXPECT_EQ(tokenizer_->piece(kvc::kBosToken), "\n<s>\n");
  EXPECT_EQ(tokenizer_->piece(kvc::kEosToken), "\n</s>\n");
  EXPECT_EQ(tokenizer_->lookup("<0x00>"), 3);
  EXPECT_EQ(tokenizer_->lookup("<0x0A>"), 13);
  EXPECT_EQ(tokenizer_->lookup("<0xFF>"), 258);
  EXPECT_GE(tokenizer_->lookup(" "), 0);
}

TEST_P(RealTokenizer, SaveReproducesTheFileByteForByte) {
  const TempFile copy("copy.bin");
  tokenizer_->save(copy.path());
  EXPECT_TRUE(read_file(copy.path()) == read_file(path_));
}

TEST_P(RealTokenizer, RoundTripsTextAndLeavesNoMergeablePair) {
  const std::vector<std::string> texts = {
      "Once upon a time, there was a little girl named Lily.",
      "Lily and Tom went to the beach",
      "One day",
      "Hello\nworld\t  with   spaces ",
      " leading space",
      "na\xC3\xAFve caf\xC3\xA9 \xE2\x80\x9Cquoted\xE2\x80\x9D",
      "emoji \xF0\x9F\x98\x80 and \xE2\x98\x83!",
      "\x80\xFF stray bytes",
  };
  for (const std::string& text : texts) {
    const std::vector<int> tokens = tokenizer_->encode(text, true, false);
    ASSERT_FALSE(tokens.empty());
    EXPECT_EQ(tokens.front(), kvc::kBosToken);
    EXPECT_EQ(decode_all(*tokenizer_, tokens), text);
    // Greedy merging stops only when no adjacent pair forms a vocabulary piece.
    for (std::size_t i = 0; i + 1 < tokens.size(); ++i) {
      const std::string pair = tokenizer_->piece(tokens[i]) + tokenizer_->piece(tokens[i + 1]);
      EXPECT_EQ(tokenizer_->lookup(pair), -1) << "'" << pair << "' could still merge in " << text;
    }
  }
}

// Random texts drawn from the vocabulary's own pieces, spaces, UTF-8 and raw
// bytes: the fast encode gives exactly llama2.c's tokens on the real vocabularies.
TEST_P(RealTokenizer, FastEncodeMatchesLlama2cOnRandomTexts) {
  std::mt19937 rng(11);
  const std::vector<std::string> extras = {
      " ",    "  ",   "\n", ".", ",", "\xC3\xA9", "\xE2\x80\x9C", "\xF0\x9F\x98\x80",
      "\x80", "\xFF", "\t"};
  for (int t = 0; t < 150; ++t) {
    std::string text;
    const int parts = std::uniform_int_distribution<int>(0, 60)(rng);
    for (int p = 0; p < parts; ++p) {
      if (rng() % 3 == 0) {
        text += extras[rng() % extras.size()];
      } else {
        const int id = std::uniform_int_distribution<int>(259, tokenizer_->vocab_size() - 1)(rng);
        text += tokenizer_->piece(id);
      }
    }
    ASSERT_EQ(tokenizer_->encode(text, true, false),
              kvc::testing::reference_encode(*tokenizer_, text, true, false))
        << "text '" << text << "'";
  }
}

TEST_P(RealTokenizer, OneWordBecomesItsSpacedPiece) {
  // " a" and " the" are pieces of both vocabularies: the dummy space merges in.
  EXPECT_EQ(tokenizer_->encode("a", true, false),
            std::vector<int>({kvc::kBosToken, tokenizer_->lookup(" a")}));
  EXPECT_EQ(tokenizer_->encode("the", true, true),
            std::vector<int>({kvc::kBosToken, tokenizer_->lookup(" the"), kvc::kEosToken}));
}

INSTANTIATE_TEST_SUITE_P(Vocabularies, RealTokenizer,
                         ::testing::Values(std::pair<const char*, int>{"tok512.bin", 512},
                                           std::pair<const char*, int>{"tokenizer.bin", 32000}),
                         [](const auto& info) { return std::to_string(info.param.second); });

TEST(RealTokenizerTok512, EmojiFallsBackToBytes) {
  const Tokenizer tokenizer(kvc::testing::model_file("tok512.bin"), 512);
  const std::string emoji = "\xF0\x9F\x98\x80";  // 😀
  ASSERT_EQ(tokenizer.lookup(emoji), -1);
  std::vector<int> expected = {kvc::kBosToken, tokenizer.lookup(" ")};
  for (const char byte : emoji) expected.push_back(byte_token(byte));
  EXPECT_EQ(tokenizer.encode(emoji, true, false), expected);
}

TEST(RealTokenizerLlama, HelloWorldMatchesSentencePiece) {
  // Llama 2's SentencePiece model encodes "Hello world" as [1, 15043, 3186].
  const Tokenizer tokenizer(kvc::testing::model_file("tokenizer.bin"), 32000);
  EXPECT_EQ(tokenizer.encode("Hello world", true, false), std::vector<int>({1, 15043, 3186}));
}

}  // namespace
