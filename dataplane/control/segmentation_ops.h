// What the internal API may ask of the segmentation (quarantine, release, the
// inventory), as plain structs: protobuf stops at api_server.cc. Implemented by the
// Controller, which owns the quarantine registry and publishes generations.
#pragma once

#include <cstdint>
#include <string>
#include <vector>

namespace wardgate::control {

struct QuarantineCommand {
  std::string device;  // MAC, IP or inventory id ("id:3" / "3")
  std::string level;   // "isolate" | "contain" | "" (the device's default)
  std::string reason;
  std::string ttl;     // "15m", "" none
  std::string actor;   // "" -> "api"
};

struct QuarantineView {
  std::string device;  // as enforced: MAC or IP
  uint64_t device_id = 0;
  std::string level, reason, actor;
  uint64_t since_ns = 0, expires_ns = 0;
  std::string device_name, device_class, criticality;
};

struct DeviceView {
  uint64_t id = 0;
  std::string mac;
  uint16_t vlan = 0;
  std::vector<std::string> ips, services, peers, apps;
  uint64_t first_seen_ns = 0, last_seen_ns = 0;
  uint64_t packets_from = 0, bytes_from = 0, packets_to = 0, bytes_to = 0;
  std::string name, device_class, criticality, zone, quarantine_level;
  bool incomplete = false;
};

// The result of a quarantine or release: an error (kind + message) or the entry.
struct QuarantineOutcome {
  enum class Error { kNone, kInvalid, kNotFound, kUnavailable } error = Error::kNone;
  std::string message;  // the error, or a warning when it succeeded
  QuarantineView entry;
  bool changed = false;
  uint64_t generation_id = 0;
};

struct DeviceRecordCommand {
  std::string mac, name, device_class, criticality, zone;
};

class SegmentationOps {
 public:
  virtual ~SegmentationOps() = default;
  virtual QuarantineOutcome Quarantine(const QuarantineCommand& cmd) = 0;
  virtual QuarantineOutcome Release(const std::string& device, const std::string& reason,
                                    const std::string& actor) = 0;
  virtual std::vector<QuarantineView> Quarantines() = 0;
  virtual std::vector<DeviceView> Devices() = 0;
  // entry.device: the MAC; the device itself is in Devices().
  virtual QuarantineOutcome SetDevice(const DeviceRecordCommand& cmd) = 0;
};

}  // namespace wardgate::control
