#include "chapters/06_lru_eviction/eviction_policy.hpp"

#include "common/check.hpp"

namespace kvc::ch06 {

EvictionPolicy parse_eviction_policy(std::string_view name) {
  for (const EvictionPolicy policy : kEvictionPolicies) {
    if (eviction_policy_name(policy) == name) return policy;
  }
  KVC_FAIL("unknown eviction policy '", name, "' (expected one of ", eviction_policy_names(), ")");
}

std::string_view eviction_policy_name(EvictionPolicy policy) {
  switch (policy) {
    case EvictionPolicy::kLru:
      return "lru";
    case EvictionPolicy::kLfu:
      return "lfu";
    case EvictionPolicy::kFifo:
      return "fifo";
    case EvictionPolicy::kPriority:
      return "priority";
    case EvictionPolicy::kSlru:
      return "slru";
  }
  KVC_FAIL("eviction policy ", static_cast<int>(policy), " has no name");
}

std::string eviction_policy_names() {
  std::string names;
  for (const EvictionPolicy policy : kEvictionPolicies) {
    names += (names.empty() ? "" : ", ") + std::string(eviction_policy_name(policy));
  }
  return names;
}

EvictionKey eviction_key(EvictionPolicy policy, const NodeHistory& history,
                         std::uint64_t last_access, bool expired) {
  const std::int64_t fresh = expired ? 0 : 1;
  const auto last = static_cast<std::int64_t>(last_access);
  switch (policy) {
    case EvictionPolicy::kLru:
      return {fresh, last, 0};
    case EvictionPolicy::kLfu:
      return {fresh, history.hits, last};
    case EvictionPolicy::kFifo:
      return {fresh, static_cast<std::int64_t>(history.created), last};
    case EvictionPolicy::kPriority:
      return {fresh, history.priority, last};
    case EvictionPolicy::kSlru:
      return {fresh, history.hits >= kSlruProtectedHits ? 1 : 0, last};
  }
  KVC_FAIL("eviction policy ", static_cast<int>(policy), " has no key");
}

}  // namespace kvc::ch06
