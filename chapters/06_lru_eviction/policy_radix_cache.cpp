// Chapter 06: the bounded radix cache (see policy_radix_cache.hpp).
#include "chapters/06_lru_eviction/policy_radix_cache.hpp"

#include <algorithm>
#include <limits>
#include <sstream>

#include "common/check.hpp"

namespace kvc::ch06 {

using ch05::InsertResult;
using ch05::PrefixHandle;
using ch05::PrefixMatch;

PolicyRadixCache::PolicyRadixCache(int block_size, EvictionPolicy policy, std::uint64_t ttl)
    : RadixCache(block_size), policy_(policy), ttl_(ttl), history_(1) {
  roots_by_key_.emplace("", kRoot);
}

int PolicyRadixCache::root_of(const std::string& isolation_key) const {
  const auto it = roots_by_key_.find(isolation_key);
  return it == roots_by_key_.end() ? -1 : it->second;
}

int PolicyRadixCache::tag_id(std::string_view tag) {
  if (tag.empty()) return kNoOwner;
  const auto [it, fresh] = tag_ids_.emplace(tag, static_cast<int>(tag_ids_.size()) + 1);
  return it->second;
}

bool PolicyRadixCache::begin_request(const RequestTags& tags, bool is_match, bool create_tree) {
  KVC_CHECK(tags.session >= 0, "prefix cache: session id ", tags.session, " is negative");
  int root = root_of(tags.isolation_key);
  if (root < 0) {
    if (!create_tree) return false;
    root = add_root();
    history_.resize(static_cast<std::size_t>(num_slots()));
    roots_by_key_.emplace(tags.isolation_key, root);
  }
  current_root_ = root;
  current_session_ = tags.session;
  current_tag_ = tag_id(tags.tag);
  current_priority_ = tags.priority;
  current_is_match_ = is_match;
  return true;
}

// A tenant's empty prefix is its root; callers see every empty prefix as {0}.
PrefixHandle PolicyRadixCache::public_handle(PrefixHandle handle) const {
  return is_root(static_cast<int>(handle.id)) ? PrefixHandle{} : handle;
}

PrefixMatch PolicyRadixCache::match_prefix(std::span<const int> tokens) {
  return match_prefix(tokens, RequestTags{});
}

int PolicyRadixCache::peek_prefix(std::span<const int> tokens) const {
  return peek_prefix(tokens, RequestTags{});
}

InsertResult PolicyRadixCache::insert(std::span<const int> tokens, std::span<const int> blocks) {
  return insert(tokens, blocks, RequestTags{});
}

PrefixMatch PolicyRadixCache::match_prefix(std::span<const int> tokens, const RequestTags& tags) {
  begin_request(tags, /*is_match=*/true, /*create_tree=*/true);
  PrefixMatch match = RadixCache::match_prefix(tokens);
  match.handle = public_handle(match.handle);
  ++(match.matched_tokens > 0 ? counters_.hits : counters_.misses);
  counters_.hit_tokens += match.matched_tokens;
  return match;
}

int PolicyRadixCache::peek_prefix(std::span<const int> tokens, const RequestTags& tags) const {
  const int root = root_of(tags.isolation_key);
  if (root < 0) return 0;
  current_root_ = root;
  return RadixCache::peek_prefix(tokens);
}

InsertResult PolicyRadixCache::insert(std::span<const int> tokens, std::span<const int> blocks,
                                      const RequestTags& tags) {
  ch05::check_insert_arguments(tokens, blocks, block_size());  // before any change
  begin_request(tags, /*is_match=*/false, /*create_tree=*/true);
  InsertResult result = RadixCache::insert(tokens, blocks);
  result.handle = public_handle(result.handle);
  return result;
}

void PolicyRadixCache::on_node_created(int id, int copied_from) {
  history_.resize(static_cast<std::size_t>(num_slots()));
  NodeHistory& h = history_[static_cast<std::size_t>(id)];
  if (copied_from >= 0) {  // a split: the upper part has lived the lower part's life
    h = history_[static_cast<std::size_t>(copied_from)];
    return;
  }
  // A new leaf, made by an insert whose touch() advances the clock next.
  h = NodeHistory{.created = clock() + 1,
                  .hits = 0,
                  .priority = current_priority_,
                  .session = current_session_,
                  .tag = current_tag_};
}

void PolicyRadixCache::on_node_used(int id) {
  if (is_root(id)) return;
  NodeHistory& h = history_[static_cast<std::size_t>(id)];
  if (current_is_match_) ++h.hits;
  h.priority = std::max(h.priority, current_priority_);
  h.session = owner_after_use(h.session, current_session_);
  h.tag = owner_after_use(h.tag, current_tag_);
}

// "Older than the time-to-live": unused for more than ttl ticks.
bool PolicyRadixCache::expired(int id) const {
  return ttl_ > 0 && clock() - node(id).last_access > ttl_;
}

EvictionKey PolicyRadixCache::key_of(int id) const {
  return eviction_key(policy_, history_[static_cast<std::size_t>(id)], node(id).last_access,
                      expired(id));
}

std::vector<int> PolicyRadixCache::evict(int num_blocks) {
  std::vector<int> freed =
      evict_leaves(num_blocks, [this](int id) -> std::optional<EvictionKey> { return key_of(id); });
  counters_.evicted_blocks += static_cast<long long>(freed.size());
  return freed;
}

std::vector<int> PolicyRadixCache::drop_where(const std::function<bool(int id)>& drop) {
  std::vector<int> freed =
      evict_leaves(std::numeric_limits<int>::max(), [&](int id) -> std::optional<EvictionKey> {
        if (!drop(id)) return std::nullopt;
        return key_of(id);
      });
  counters_.dropped_blocks += static_cast<long long>(freed.size());
  return freed;
}

std::vector<int> PolicyRadixCache::expire() {
  return drop_where([this](int id) { return expired(id); });
}

std::vector<int> PolicyRadixCache::end_session(int session) {
  KVC_CHECK(session > 0, "prefix cache: end of session ", session,
            " (sessions are numbered from 1)");
  return drop_where(
      [&](int id) { return history_[static_cast<std::size_t>(id)].session == session; });
}

std::vector<int> PolicyRadixCache::clear_tag(std::string_view tag) {
  KVC_CHECK(!tag.empty(), "prefix cache: clear of the empty namespace (use clear())");
  const auto it = tag_ids_.find(std::string(tag));
  if (it == tag_ids_.end()) return {};
  const int id_of_tag = it->second;
  return drop_where(
      [&](int id) { return history_[static_cast<std::size_t>(id)].tag == id_of_tag; });
}

std::vector<int> PolicyRadixCache::clear() {
  return drop_where([](int) { return true; });
}

void PolicyRadixCache::pin(PrefixHandle handle) {
  lock(handle);
  if (!handle.empty()) ++pins_[static_cast<int>(handle.id)];
}

void PolicyRadixCache::unpin(PrefixHandle handle) {
  if (handle.empty()) return;
  const auto it = pins_.find(static_cast<int>(handle.id));
  KVC_CHECK(it != pins_.end(), "prefix cache: unpin of handle ", handle.id,
            ", which is not pinned");
  unlock(handle);
  if (--it->second == 0) pins_.erase(it);
}

int PolicyRadixCache::num_pins() const {
  int n = 0;
  for (const auto& [id, count] : pins_) n += count;
  return n;
}

const NodeHistory& PolicyRadixCache::history(PrefixHandle handle) const {
  KVC_CHECK(handle.id > 0 && handle.id < num_slots() && node(static_cast<int>(handle.id)).live &&
                !is_root(static_cast<int>(handle.id)),
            "prefix cache: handle ", handle.id, " names no cached block");
  return history_[static_cast<std::size_t>(handle.id)];
}

void PolicyRadixCache::check_invariants() const {
  RadixCache::check_invariants();
  const auto broken = [](int id, const auto&... what) {
    KVC_FAIL("policy cache invariant broken at node ", id, ": ", what...);
  };
  if (history_.size() != static_cast<std::size_t>(num_slots())) {
    broken(kRoot, history_.size(), " histories for ", num_slots(), " node slots");
  }
  for (int id = 0; id < num_slots(); ++id) {
    const ch05::RadixNode& n = node(id);
    if (!n.live || is_root(id)) continue;
    const NodeHistory& h = history_[static_cast<std::size_t>(id)];
    if (h.created == 0 || h.created > n.last_access) {
      broken(id, "created at ", h.created, ", last used at ", n.last_access);
    }
    if (h.hits < 0) broken(id, "negative hit count");
    if (is_root(n.parent)) continue;
    const NodeHistory& up = history_[static_cast<std::size_t>(n.parent)];
    if (h.hits > up.hits) broken(id, h.hits, " hits, its parent only ", up.hits);
    if (h.priority > up.priority) broken(id, "priority above its parent's");
    if (h.created < up.created) broken(id, "created before its parent");
    if (up.session > 0 && h.session != up.session) {
      broken(id, "below session ", up.session, "'s private branch, owned by ", h.session);
    }
    if (up.tag > 0 && h.tag != up.tag) broken(id, "below namespace ", up.tag, ", tagged ", h.tag);
  }
  for (const auto& [id, count] : pins_) {
    if (count <= 0 || id <= 0 || id >= num_slots() || !node(id).live) {
      broken(id, "a pin on no cached prefix");
    }
    if (node(id).lock_ref < count) broken(id, count, " pins but ", node(id).lock_ref, " locks");
  }
}

std::string PolicyRadixCache::debug_string() const {
  std::ostringstream out;
  out << "policy " << eviction_policy_name(policy_) << ", ttl " << ttl_ << ", "
      << roots_by_key_.size() << " isolation keys, " << num_pins() << " pins\n"
      << RadixCache::debug_string();
  return out.str();
}

std::size_t PolicyRadixCache::metadata_bytes() const {
  return RadixCache::metadata_bytes() + history_.capacity() * sizeof(NodeHistory);
}

std::unique_ptr<ch05::PrefixCache> make_evicting_cache(std::string_view policy, int block_size,
                                                       std::uint64_t ttl) {
  return std::make_unique<PolicyRadixCache>(block_size, parse_eviction_policy(policy), ttl);
}

}  // namespace kvc::ch06
