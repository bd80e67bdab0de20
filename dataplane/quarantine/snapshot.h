// The applied-state snapshot: what the dataplane enforces (quarantines, the rules and
// policy versions), written to a local file atomically on every change and read back
// at start, so that a restart never releases a quarantined device, even when
// wardgate-cp is unreachable (DESIGN.md "Processes").
//
// The file is pretty-printed JSON, since an operator may read it during an incident:
//   {
//     "format": "wardgate-applied-state/1",
//     "saved": "2024-05-01T12:00:00.123Z",      (informational; saved_ns counts)
//     "saved_ns": 1714564800123000000,
//     "boot_id": "...",
//     "rules_version": "...",
//     "policy_version": "...",
//     "quarantines": [
//       { "device": "02:77:00:00:00:11", "level": "isolate", "reason": "...", "actor": "wardctl",
//         "since": "<RFC 3339>", "since_ns": N, "expires": "<RFC 3339>", "expires_ns": N }
//     ]
//   }
// "since" and "expires" are written for people and ignored on load ("expires" only
// when there is a TTL); expires_ns 0 means none.
#pragma once

#include <cstdint>
#include <string>
#include <string_view>
#include <vector>

#include "dataplane/quarantine/registry.h"

namespace wardgate::quarantine {

inline constexpr const char* kSnapshotFormat = "wardgate-applied-state/1";

struct AppliedState {
  std::vector<Entry> quarantines;
  std::string rules_version, policy_version;
  uint64_t saved_ns = 0;  // wall clock
  std::string boot_id;
  bool operator==(const AppliedState&) const = default;
};

// Writes `state` to `path` atomically: a temporary file in the same directory (mode
// 0600), fsync, rename over `path`, fsync of the directory. Creates the directory
// (and missing parents, mode 0700) if needed. Refuses entries that LoadSnapshot would
// refuse (an inventory id, a prefix, an expiry before its start, a device listed
// twice), since a snapshot that cannot be read back is worse than none. false with
// *why on any failure; the previous file then stays as it was.
bool SaveSnapshot(const std::string& path, const AppliedState& state, std::string* why);

// Reads the snapshot at `path` into *out. A missing file is the first start: true,
// with an empty state. An unreadable file, one that is not JSON (truncated, say), of
// another format version, or with a bad entry (bad MAC or IP, unknown level, expiry
// before its start, a device twice, more than Registry::kMaxEntries): false with *why
// naming the file and the problem, and *out untouched (nothing half-loaded). Entry
// seq values are 0.
bool LoadSnapshot(const std::string& path, AppliedState* out, std::string* why);

// "2024-05-01T12:00:00.123Z" (UTC, milliseconds), from nanoseconds since the epoch.
std::string Rfc3339(uint64_t wall_ns);

// The file's text as LoadSnapshot reads it (also the fuzz target's way in); false with
// *why (without the path) on anything LoadSnapshot refuses.
bool ParseSnapshot(std::string_view text, AppliedState* out, std::string* why);

}  // namespace wardgate::quarantine
