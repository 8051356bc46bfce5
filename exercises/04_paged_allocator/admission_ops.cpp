// Exercise: chapter 04, the scheduler's admission policy.
//
// Build and test with scripts/check-exercises.sh 4 (see exercises/README.md);
// ch04_serve then admits requests with your policy.
#include "chapters/04_paged_allocator/scheduler.hpp"
#include "common/check.hpp"

namespace kvc::ch04 {

// Contract: see scheduler.hpp. true when the waiting sequence joins:
//   - never when need > spare (it does not fit);
//   - always when it fits an empty batch (running == 0);
//   - otherwise only when need + (running + joining) <= spare: after it joins,
//     one free block per sequence in the batch is left over.
// With spare 6, need 3, running 2: a single sequence joins (3 + 3 <= 6); a
// group of 2 does not (3 + 4 > 6).
// Expected time: 10 minutes.
bool can_admit(int /*need*/, int /*joining*/, int /*running*/, int /*spare*/) {
  throw NotImplemented("ch04: can_admit");
}

}  // namespace kvc::ch04
