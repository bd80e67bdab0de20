// libFuzzer target for what operators and the disk hand the quarantine code: device
// selectors, levels and durations (the API's strings) and the applied-state snapshot
// (read at start). Arbitrary bytes must be refused or accepted, never crash, and what
// is accepted must survive a round trip.
#include <cstddef>
#include <cstdint>
#include <string>
#include <string_view>

#include "dataplane/quarantine/registry.h"
#include "dataplane/quarantine/snapshot.h"

#define FUZZ_CHECK(cond)           \
  do {                             \
    if (!(cond)) __builtin_trap(); \
  } while (0)

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  namespace q = wardgate::quarantine;
  const std::string_view text(reinterpret_cast<const char*>(data), size);
  std::string why;

  q::Selector sel;
  if (q::ParseSelector(text, &sel, &why)) {
    q::Selector again;
    FUZZ_CHECK(q::ParseSelector(sel.Text(), &again, &why));  // canonical text reads back
    FUZZ_CHECK(again == sel);
  }
  uint64_t ns = 0;
  if (q::ParseDuration(text, &ns, &why)) {
    uint64_t again = 0;
    FUZZ_CHECK(ns <= q::kMaxDurationNs);
    FUZZ_CHECK(q::ParseDuration(q::DurationText(ns), &again, &why) && again == ns);
  }
  q::Level level;
  (void)q::ParseLevel(text, &level, &why);

  q::AppliedState state;
  if (q::ParseSnapshot(text, &state, &why)) {
    for (const auto& e : state.quarantines) FUZZ_CHECK(q::EntryProblem(e).empty());
    q::Registry reg;
    FUZZ_CHECK(reg.Restore(state.quarantines) == 0);  // what loads is enforceable
  }
  return 0;
}
