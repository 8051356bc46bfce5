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
        sequences_.push_back({Sampler(engine.config().vocab_size, sampling), 0,
                              i == 0 && request.num_completions > 1});
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
  }

  ServeResult run() {
    const auto start = std::chrono::steady_clock::now();
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
    result_.wall_ms = ms_since(start);
    return std::move(result_);
  }

 private:
  int to_feed(int id) const {
    return static_cast<int>(result_.completions[id].tokens.size()) - sequences_[id].num_cached;
  }
  int blocks_for_next_step(int id) const { return kv_.blocks().blocks_to_append(id, to_feed(id)); }
  int blocks_running_need() const {
    int need = 0;
    for (int id : running_) need += blocks_for_next_step(id);
    return need;
  }
  int free_blocks() const { return kv_.blocks().allocator().num_free(); }
  const Request& request_of(int id) const { return requests_[result_.completions[id].request]; }

  void take_arrivals() {
    while (next_arrival_ < arrival_order_.size() &&
           requests_[arrival_order_[next_arrival_]].arrival_step <= step_) {
      waiting_.push_back(head_of_[arrival_order_[next_arrival_++]]);
    }
  }

  // The running sequences' next tokens must fit: preempt the newest until they do.
  void make_room(StepRecord& record) {
    while (blocks_running_need() > free_blocks()) {
      KVC_CHECK(running_.size() > 1, "scheduler: one sequence alone needs ", blocks_running_need(),
                " blocks but only ", free_blocks(), " are free");
      const int victim = running_.back();
      running_.pop_back();
      kv_.release(victim);  // recompute, not swap: its tokens are kept, its K, V dropped
      sequences_[victim].num_cached = 0;
      ++result_.completions[victim].preemptions;
      ++result_.preemptions;
      waiting_.push_front(victim);
      record.preempted.push_back(victim);
    }
  }

  // Oldest first, and no overtaking: the head of the queue waits until
  // can_admit (the watermark policy) lets it in. validate() made sure every
  // sequence fits an empty pool alone.
  void admit(StepRecord& record) {
    int spare = free_blocks() - blocks_running_need();
    int sequences = static_cast<int>(running_.size());  // forks to come included
    while (!waiting_.empty()) {
      const int id = waiting_.front();
      const int need = blocks_for_next_step(id);
      // A group's head brings its forks along after its first step.
      const int joining = sequences_[id].forks_siblings ? request_of(id).num_completions : 1;
      if (sequences + joining > options_.max_running) break;
      if (!can_admit(need, joining, sequences, spare)) break;
      spare -= need;
      sequences += joining;
      waiting_.pop_front();
      running_.push_back(id);
      record.joined.push_back(id);
      if (result_.completions[id].preemptions == 0) result_.completions[id].first_step = step_;
    }
  }

  void run_step(StepRecord& record) {
    batch_.clear();
    for (int id : running_) {
      const std::vector<int>& tokens = result_.completions[id].tokens;
      const int n = static_cast<int>(tokens.size());
      for (int p = sequences_[id].num_cached; p < n; ++p) batch_.add(tokens[p], id, p, p == n - 1);
      sequences_[id].num_cached = n;
    }
    float* logits = engine_.forward(batch_, kv_);
    const std::size_t vocab = engine_.config().vocab_size;

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
        if (sample(sibling, sibling_logits.data(), record)) still_running.push_back(sibling);
      }
    }
    record.running = static_cast<int>(running_.size());
    record.batch_tokens = batch_.size();
    record.blocks_used = kv_.blocks().allocator().num_used();
    result_.tokens_fed += batch_.size();
    result_.peak_running = std::max(result_.peak_running, record.running);
    result_.peak_blocks_used = std::max(result_.peak_blocks_used, record.blocks_used);

    running_ = std::move(still_running);
    for (int id : record.finished) kv_.release(id);
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
      siblings.push_back(sibling);
    }
    return siblings;
  }

  // Samples the next token; false when the completion has ended.
  bool sample(int id, float* logits, StepRecord& record) {
    Completion& c = result_.completions[id];
    const int next = sequences_[id].sampler.sample(logits);
    ++result_.tokens_sampled;
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
  std::size_t next_arrival_ = 0;
  std::deque<int> waiting_;   // completions waiting to (re)join, the next one first
  std::vector<int> running_;  // completions in the batch, oldest first
  Batch batch_;
  ServeResult result_;
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
