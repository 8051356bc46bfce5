#include "chapters/04_paged_allocator/scheduler.hpp"

#include <algorithm>
#include <chrono>
#include <cstdint>
#include <deque>
#include <numeric>

#include "common/check.hpp"
#include "common/timing.hpp"
#include "common/tokenizer.hpp"

namespace kvc::ch04 {
namespace {

// One completion's life in the scheduler. Its id is its index in the
// completions, and also its sequence id in the KV pool.
struct Sequence {
  Sampler sampler;
  int num_cached = 0;           // positions whose K, V sit in the pool
  bool forks_siblings = false;  // the head of a group whose prompt is not yet shared
  bool prefilling = false;      // admitted this step: its prompt (or recompute) is fed now
  bool sampled = false;         // has sampled a token
};

// Every request fits the pool when it runs alone (validate_requests checked the rest).
void check_pool_fits(const std::vector<Request>& requests, const BlockManager& blocks) {
  for (std::size_t r = 0; r < requests.size(); ++r) {
    const int most_blocks = blocks_needed(requests[r].max_positions(), blocks.block_size());
    KVC_CHECK(most_blocks <= blocks.allocator().num_blocks(), "request ", r, " needs up to ",
              most_blocks, " blocks of ", blocks.block_size(), " tokens, but the pool has only ",
              blocks.allocator().num_blocks());
  }
}

// How many leading tokens two token lists share.
std::size_t common_prefix(const std::vector<int>& a, const std::vector<int>& b) {
  const auto [end_a, end_b] = std::mismatch(a.begin(), a.end(), b.begin(), b.end());
  return static_cast<std::size_t>(end_a - a.begin());
}

class Scheduler {
 public:
  Scheduler(Engine& engine, PagedKVStrategy& kv, const std::vector<Request>& requests,
            const SchedulerOptions& options)
      : engine_(engine), kv_(kv), requests_(requests), options_(options) {
    KVC_CHECK(options.max_running >= 1, "max running sequences must be >= 1, got ",
              options.max_running);
    validate_requests(requests, engine.config(), options.max_running);
    check_pool_fits(requests, kv.blocks());
    for (std::size_t r = 0; r < requests.size(); ++r) {
      const Request& request = requests[r];
      head_of_.push_back(static_cast<int>(sequences_.size()));
      for (int i = 0; i < request.num_completions; ++i) {
        SamplerOptions sampling = request.sampling;
        sampling.seed += i;
        Sequence sequence{Sampler(engine.config().vocab_size, sampling)};
        sequence.forks_siblings = i == 0 && request.num_completions > 1;
        sequences_.push_back(std::move(sequence));
        Completion c;
        c.request = static_cast<int>(r);
        c.index = i;
        c.num_prompt_tokens = static_cast<int>(request.prompt.size());
        if (i == 0) c.tokens = request.prompt;
        result_.completions.push_back(std::move(c));
      }
    }
    arrival_order_.resize(requests.size());
    std::iota(arrival_order_.begin(), arrival_order_.end(), 0);
    std::stable_sort(arrival_order_.begin(), arrival_order_.end(), [&](int a, int b) {
      return requests[a].arrival_step < requests[b].arrival_step;
    });
    arrived_ms_.assign(requests.size(), 0.0);
  }

  ServeResult run() {
    start_ = std::chrono::steady_clock::now();
    while (next_arrival_ < arrival_order_.size() || !waiting_.empty() || !running_.empty()) {
      if (running_.empty() && waiting_.empty()) {
        step_ = std::max(step_, requests_[arrival_order_[next_arrival_]].arrival_step);
      }
      StepRecord record;
      record.step = step_;
      take_arrivals();
      make_room(record);
      admit(record);
      run_step(record);
      ++step_;
    }
    result_.steps = step_;
    result_.wall_ms = ms_since(start_);
    return std::move(result_);
  }

 private:
  const std::vector<int>& tokens_of(int id) const { return result_.completions[id].tokens; }
  int to_feed(int id) const {
    return static_cast<int>(tokens_of(id).size()) - sequences_[id].num_cached;
  }
  // What the running sequences' next step takes from the pool, exactly (shared blocks included).
  int blocks_running_need() const {
    std::vector<SequenceAppend> appends;
    for (int id : running_) appends.push_back({id, to_feed(id)});
    return kv_.blocks().blocks_to_append(appends);
  }
  int available_blocks() const { return kv_.blocks().num_available(); }
  const Request& request_of(int id) const { return requests_[result_.completions[id].request]; }

  void take_arrivals() {
    while (next_arrival_ < arrival_order_.size() &&
           requests_[arrival_order_[next_arrival_]].arrival_step <= step_) {
      const int request = arrival_order_[next_arrival_++];
      arrived_ms_[request] = ms_since(start_);
      waiting_.push_back(head_of_[request]);
    }
  }

  // The running sequences' next tokens must fit: preempt the newest until they do.
  void make_room(StepRecord& record) {
    while (blocks_running_need() > available_blocks()) {
      KVC_CHECK(running_.size() > 1, "scheduler: one sequence alone needs ", blocks_running_need(),
                " blocks but only ", available_blocks(), " are available");
      const int victim = running_.back();
      running_.pop_back();
      // Recompute, not swap: its tokens are kept, its K, V given up (a prefix
      // cache keeps the full blocks, so the recompute may find them again).
      kv_.finish_sequence(victim, tokens_of(victim));
      sequences_[victim].num_cached = 0;
      ++result_.completions[victim].preemptions;
      ++result_.preemptions;
      waiting_.push_front(victim);
      record.preempted.push_back(victim);
    }
  }

  // Longest cached prefix first, when asked and the queue is short enough.
  void order_waiting() {
    if (options_.order != AdmissionOrder::kLongestPrefixMatch ||
        static_cast<int>(waiting_.size()) > options_.lpm_queue_limit) {
      return;
    }
    std::vector<std::pair<int, int>> keyed;  // (cached prefix, id)
    for (int id : waiting_)
      keyed.emplace_back(kv_.blocks().cached_prefix_tokens(tokens_of(id)), id);
    std::stable_sort(keyed.begin(), keyed.end(),
                     [](const auto& a, const auto& b) { return a.first > b.first; });
    for (std::size_t i = 0; i < keyed.size(); ++i) waiting_[i] = keyed[i].second;
  }

  // True when `id` would find more of its prompt cached a step later, because
  // a sequence admitted this step computes that part now.
  bool shares_uncached_prefix(int id, int cached, const std::vector<int>& admitted) const {
    const int block = kv_.blocks().block_size();
    for (int other : admitted) {
      const int shared = static_cast<int>(common_prefix(tokens_of(id), tokens_of(other)));
      if (shared / block * block > cached) return true;
    }
    return false;
  }

  // In order (first come first served, or longest prefix first), the head of
  // the queue joins while can_admit (the watermark policy) lets it in; under
  // first come first served nobody overtakes it. validate() made sure every
  // sequence fits an empty pool alone.
  void admit(StepRecord& record) {
    order_waiting();
    const bool fcfs = options_.order == AdmissionOrder::kFirstComeFirstServed;
    int sequences = static_cast<int>(running_.size());  // forks to come included
    // What the batch so far takes; an admitted sequence starts on whole cached
    // blocks (or none), so it shares no partial block and its need just adds.
    int batch_need = blocks_running_need();
    std::vector<int> admitted;
    for (auto it = waiting_.begin(); it != waiting_.end();) {
      const int id = *it;
      // A group's head brings its forks along after its first step.
      const int joining = sequences_[id].forks_siblings ? request_of(id).num_completions : 1;
      if (sequences + joining > options_.max_running) break;
      const std::vector<int>& tokens = tokens_of(id);
      // Claims the cached prefix (locking it), so what is left to count is exact.
      const int cached = kv_.begin_sequence(id, tokens);
      const bool wait_for_prefix =
          kv_.blocks().shares_prefixes() && shares_uncached_prefix(id, cached, admitted);
      const int need = kv_.blocks().blocks_to_append(id, static_cast<int>(tokens.size()) - cached);
      // Available after the claim above, less the batch's room.
      const int spare = available_blocks() - batch_need;
      if (wait_for_prefix || !can_admit(need, joining, sequences, spare)) {
        kv_.release(id);  // nothing computed: give the claim back
        if (fcfs) break;
        ++it;
        continue;
      }
      sequences_[id].num_cached = cached;
      sequences_[id].prefilling = true;
      result_.completions[id].cached_tokens = cached;
      result_.prefill_tokens_skipped += cached;
      if (result_.completions[id].preemptions == 0) result_.prompt_tokens_skipped += cached;
      sequences += joining;
      batch_need += need;
      it = waiting_.erase(it);
      running_.push_back(id);
      admitted.push_back(id);
      record.joined.push_back(id);
      record.joined_cached.push_back(cached);
      if (result_.completions[id].preemptions == 0) result_.completions[id].first_step = step_;
    }
  }

  void run_step(StepRecord& record) {
    batch_.clear();
    for (int id : running_) {
      const std::vector<int>& tokens = tokens_of(id);
      const int n = static_cast<int>(tokens.size());
      const int first = sequences_[id].num_cached;
      for (int p = first; p < n; ++p) batch_.add(tokens[p], id, p, p == n - 1);
      if (sequences_[id].prefilling) result_.prefill_tokens_computed += n - first;
      sequences_[id].num_cached = n;
    }
    float* logits = engine_.forward(batch_, kv_);
    const std::size_t vocab = engine_.config().vocab_size;
    // The prompts just computed may serve other sequences from the next step on.
    for (int id : running_) {
      if (sequences_[id].prefilling) kv_.publish(id, tokens_of(id));
      sequences_[id].prefilling = false;
    }

    std::vector<int> still_running;
    for (std::size_t row = 0; row < running_.size(); ++row) {
      const int id = running_[row];
      float* row_logits = logits + row * vocab;
      // Forks copy the logits before the head's sampler scales them in place.
      std::vector<std::pair<int, std::vector<float>>> forks;
      if (sequences_[id].forks_siblings) {
        for (int sibling : fork_siblings(id)) {
          forks.emplace_back(sibling, std::vector<float>(row_logits, row_logits + vocab));
        }
      }
      if (sample(id, row_logits, record)) still_running.push_back(id);
      for (auto& [sibling, sibling_logits] : forks) {
        record.joined.push_back(sibling);
        record.joined_cached.push_back(0);
        if (sample(sibling, sibling_logits.data(), record)) still_running.push_back(sibling);
      }
    }
    record.running = static_cast<int>(running_.size());
    record.batch_tokens = batch_.size();
    record.blocks_used = kv_.blocks().allocator().num_used();
    record.blocks_reclaimable = kv_.blocks().num_reclaimable();
    result_.tokens_fed += batch_.size();
    result_.peak_running = std::max(result_.peak_running, record.running);
    result_.peak_blocks_used = std::max(result_.peak_blocks_used, record.blocks_used);
    result_.peak_blocks_in_use =
        std::max(result_.peak_blocks_in_use, record.blocks_used - record.blocks_reclaimable);

    running_ = std::move(still_running);
    for (int id : record.finished) kv_.finish_sequence(id, tokens_of(id));
    if (options_.on_step) options_.on_step(record);
  }

  // The head's prompt is cached: every sibling starts as a fork sharing its blocks.
  std::vector<int> fork_siblings(int head) {
    sequences_[head].forks_siblings = false;
    std::vector<int> siblings;
    const int n = request_of(head).num_completions;
    for (int sibling = head + 1; sibling < head + n; ++sibling) {
      kv_.blocks().fork(head, sibling);
      sequences_[sibling].num_cached = sequences_[head].num_cached;
      result_.completions[sibling].tokens = result_.completions[head].tokens;
      result_.completions[sibling].first_step = step_;
      result_.completions[sibling].cached_tokens = result_.completions[head].cached_tokens;
      siblings.push_back(sibling);
    }
    return siblings;
  }

  // Samples the next token; false when the completion has ended.
  bool sample(int id, float* logits, StepRecord& record) {
    Completion& c = result_.completions[id];
    const int next = sequences_[id].sampler.sample(logits);
    ++result_.tokens_sampled;
    if (!sequences_[id].sampled) {
      sequences_[id].sampled = true;
      c.time_to_first_token_ms = ms_since(start_) - arrived_ms_[c.request];
    }
    bool done = false;
    if (next == kBosToken) {  // llama2.c stops at BOS without printing it
      c.finish_reason = FinishReason::kBos;
      done = true;
    } else {
      c.tokens.push_back(next);
      const int sampled = static_cast<int>(c.tokens.size()) - c.num_prompt_tokens;
      done = sampled == request_of(id).max_new_tokens;
    }
    if (done) {
      c.finish_step = step_;
      record.finished.push_back(id);
    }
    return !done;
  }

  Engine& engine_;
  PagedKVStrategy& kv_;
  const std::vector<Request>& requests_;
  SchedulerOptions options_;
  std::vector<Sequence> sequences_;  // [completion]
  std::vector<int> head_of_;         // [request] its first completion
  std::vector<int> arrival_order_;   // requests by arrival step
  std::vector<double> arrived_ms_;   // [request] when it reached the queue, from the start
  std::size_t next_arrival_ = 0;
  std::deque<int> waiting_;   // completions waiting to (re)join, the next one first
  std::vector<int> running_;  // completions in the batch, oldest first
  Batch batch_;
  ServeResult result_;
  std::chrono::steady_clock::time_point start_;
  int step_ = 0;
};

}  // namespace

void validate_requests(const std::vector<Request>& requests, const ModelConfig& config,
                       int max_running) {
  for (std::size_t r = 0; r < requests.size(); ++r) {
    const Request& q = requests[r];
    KVC_CHECK(!q.prompt.empty(), "request ", r, ": the prompt is empty (it needs at least BOS)");
    KVC_CHECK(q.num_completions >= 1, "request ", r, ": completions must be >= 1, got ",
              q.num_completions);
    KVC_CHECK(q.num_completions <= max_running, "request ", r, ": ", q.num_completions,
              " completions run together, more than the ", max_running,
              " sequences a batch may hold");
    KVC_CHECK(q.max_new_tokens >= 1, "request ", r, ": max new tokens must be >= 1, got ",
              q.max_new_tokens);
    KVC_CHECK(q.arrival_step >= 0, "request ", r, ": arrival step must be >= 0");
    for (int token : q.prompt) {
      KVC_CHECK(token >= 0 && token < config.vocab_size, "request ", r, ": token ", token,
                " is outside the model's vocabulary of ", config.vocab_size);
    }
    // In 64 bits: a huge prompt or budget must not wrap around into the context.
    const std::int64_t positions =
        static_cast<std::int64_t>(q.prompt.size()) + std::int64_t{q.max_new_tokens} - 1;
    KVC_CHECK(positions <= config.seq_len, "request ", r, ": ", q.prompt.size(),
              " prompt tokens + ", q.max_new_tokens, " new tokens need ", positions,
              " positions, more than the model's context of ", config.seq_len);
  }
}

double ServeResult::sampled_tokens_per_second() const {
  return wall_ms > 0 ? 1000.0 * tokens_sampled / wall_ms : 0.0;
}

ServeResult serve(Engine& engine, PagedKVStrategy& kv, const std::vector<Request>& requests,
                  const SchedulerOptions& options) {
  return Scheduler(engine, kv, requests, options).run();
}

const char* finish_reason_name(FinishReason reason) {
  return reason == FinishReason::kBos ? "bos" : "max_tokens";
}

}  // namespace kvc::ch04
