#include "engine/batch.hpp"

namespace kvc {

std::vector<SequenceSpan> sequence_spans(const Batch& batch) {
  std::vector<SequenceSpan> spans;
  for (int i = 0; i < batch.size(); ++i) {
    if (spans.empty() || spans.back().seq_id != batch.seq_ids[i]) {
      spans.push_back({batch.seq_ids[i], i, i});
    }
    spans.back().end = i + 1;
  }
  return spans;
}

}  // namespace kvc
