// Solution: chapter 04, the scheduler's admission policy.
#include "chapters/04_paged_allocator/scheduler.hpp"

namespace kvc::ch04 {

bool can_admit(int need, int joining, int running, int spare) {
  if (need > spare) return false;
  if (running == 0) return true;            // an empty batch takes whatever fits
  const int watermark = running + joining;  // one free block per sequence in the batch
  return need + watermark <= spare;
}

}  // namespace kvc::ch04
