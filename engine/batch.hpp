// The unit of work of the forward pass: a flat list of tokens from one or more
// sequences, prefill chunks and single decode tokens mixed.
#pragma once

#include <vector>

namespace kvc {

struct Batch {
  std::vector<int> tokens;      // [n] token ids
  std::vector<int> seq_ids;     // [n] the sequence each token belongs to
  std::vector<int> positions;   // [n] each token's position in its sequence
  std::vector<int> logit_rows;  // indices into tokens whose logits the caller wants

  int size() const { return static_cast<int>(tokens.size()); }

  void add(int token, int seq_id, int position, bool wants_logits) {
    if (wants_logits) logit_rows.push_back(size());
    tokens.push_back(token);
    seq_ids.push_back(seq_id);
    positions.push_back(position);
  }

  void clear() {
    tokens.clear();
    seq_ids.clear();
    positions.clear();
    logit_rows.clear();
  }
};

// [begin, end) of each run of consecutive tokens that share a sequence id.
struct SequenceSpan {
  int seq_id;
  int begin;
  int end;
};
std::vector<SequenceSpan> sequence_spans(const Batch& batch);

}  // namespace kvc
