// The two workloads the memory-pressure experiment adds to chapter 05's:
// zipf (a few hot documents, many rare ones) and idle-chat (sessions that go
// quiet and come back). Both are seeded: the same options give the same requests.
#include <gtest/gtest.h>

#include <algorithm>
#include <map>
#include <set>
#include <vector>

#include "chapters/05_radix_cache/workloads.hpp"
#include "tests/support/test_support.hpp"

namespace kvc::ch05 {
namespace {

Tokenizer tok512() {
  return Tokenizer(testing::model_file("tok512.bin"), 512);
}

WorkloadOptions zipf(int requests, double s, std::uint64_t seed = 7) {
  WorkloadOptions w;
  w.workload = Workload::kZipf;
  w.requests = requests;
  w.documents = 24;
  w.zipf_s = s;
  w.workload_seed = seed;
  return w;
}

// How many requests ask about each document, keyed by the prompt's first
// block of 16 tokens (each document has its own: its number comes first).
std::map<std::vector<int>, int> document_counts(const std::vector<ch04::Request>& requests) {
  std::map<std::vector<int>, int> counts;
  for (const ch04::Request& r : requests) {
    EXPECT_GE(r.prompt.size(), 16u);
    ++counts[std::vector<int>(r.prompt.begin(), r.prompt.begin() + 16)];
  }
  return counts;
}

TEST(Ch06Workloads, ZipfAsksForAFewDocumentsOftenAndManyRarely) {
  const Tokenizer tokenizer = tok512();
  const std::vector<ch04::Request> requests = first_round(zipf(400, 1.0), tokenizer);
  ASSERT_EQ(requests.size(), 400u);
  const std::map<std::vector<int>, int> counts = document_counts(requests);
  EXPECT_LE(counts.size(), 24u);
  EXPECT_GE(counts.size(), 20u);
  std::vector<int> sorted;
  for (const auto& [block, n] : counts) sorted.push_back(n);
  std::sort(sorted.rbegin(), sorted.rend());
  // Zipf(1) over 24 documents: the top one is asked ~1/H(24) = 27% of the
  // time, the 24th ~1.1%.
  EXPECT_GT(sorted[0], 80);
  EXPECT_LT(sorted[0], 140);
  EXPECT_GT(sorted[0], 4 * sorted[sorted.size() / 2]);
  // Every prompt is its own (the question differs), and each starts with BOS.
  for (const ch04::Request& r : requests) EXPECT_EQ(r.prompt.front(), 1);
}

TEST(Ch06Workloads, ZipfWithExponentZeroIsUniformAndTheSeedDecides) {
  const Tokenizer tokenizer = tok512();
  const std::map<std::vector<int>, int> counts =
      document_counts(first_round(zipf(2400, 0.0), tokenizer));
  ASSERT_EQ(counts.size(), 24u);
  for (const auto& [block, n] : counts) {
    EXPECT_GT(n, 60);  // 100 expected each
    EXPECT_LT(n, 140);
  }
  auto prompts = [&](std::uint64_t seed) {
    std::vector<std::vector<int>> p;
    for (const ch04::Request& r : first_round(zipf(50, 1.0, seed), tokenizer))
      p.push_back(r.prompt);
    return p;
  };
  EXPECT_EQ(prompts(7), prompts(7));
  EXPECT_NE(prompts(7), prompts(8));
}

TEST(Ch06Workloads, IdleChatSessionsGoQuietAndComeBack) {
  WorkloadOptions w;
  w.workload = Workload::kIdleChat;
  w.requests = 48;  // 12 sessions x 4 turns
  w.turns = 4;
  const std::vector<std::vector<int>> rounds = speaking_sessions(w);
  std::vector<int> spoke(12, 0);
  bool someone_idle = false;
  bool came_back = false;
  std::vector<int> last_round(12, -1);
  for (std::size_t r = 0; r < rounds.size(); ++r) {
    ASSERT_FALSE(rounds[r].empty());
    EXPECT_TRUE(std::is_sorted(rounds[r].begin(), rounds[r].end()));
    someone_idle = someone_idle || rounds[r].size() < 12;
    for (int s : rounds[r]) {
      ASSERT_GE(s, 0);
      ASSERT_LT(s, 12);
      ++spoke[static_cast<std::size_t>(s)];
      const int gap = static_cast<int>(r) - last_round[static_cast<std::size_t>(s)];
      came_back = came_back || (last_round[static_cast<std::size_t>(s)] >= 0 && gap > 2);
      last_round[static_cast<std::size_t>(s)] = static_cast<int>(r);
    }
  }
  for (int n : spoke) EXPECT_EQ(n, 4);
  EXPECT_TRUE(someone_idle);
  EXPECT_TRUE(came_back);
  EXPECT_GT(rounds.size(), 4u);
  EXPECT_EQ(speaking_sessions(w), rounds);
  w.workload_seed = 8;
  EXPECT_NE(speaking_sessions(w), rounds);

  // Chat: every session every round; the rest: one round of every request.
  w.workload = Workload::kChat;
  EXPECT_EQ(speaking_sessions(w),
            std::vector<std::vector<int>>(4, {0, 1, 2, 3, 4, 5, 6, 7, 8, 9, 10, 11}));
  w.workload = Workload::kZipf;
  w.requests = 3;
  const std::vector<std::vector<int>> one_round = {{0, 1, 2}};
  EXPECT_EQ(speaking_sessions(w), one_round);
}

TEST(Ch06Workloads, NoTwoChatSessionsAreAlike) {
  WorkloadOptions w;
  w.workload = Workload::kIdleChat;
  w.requests = 110 * 4;
  w.turns = 4;
  const std::vector<ch04::Request> sessions = first_round(w, tok512());
  ASSERT_EQ(sessions.size(), 110u);
  std::set<std::vector<int>> prompts;
  for (const ch04::Request& r : sessions) prompts.insert(r.prompt);
  EXPECT_EQ(prompts.size(), sessions.size());
}

TEST(Ch06Workloads, NamesRoundTrip) {
  for (const std::string& name : workload_names()) {
    EXPECT_EQ(workload_name(parse_workload(name)), name);
  }
  EXPECT_EQ(workload_names().size(), 6u);
  EXPECT_THROW(parse_workload("zipf2"), Error);
}

}  // namespace
}  // namespace kvc::ch05
