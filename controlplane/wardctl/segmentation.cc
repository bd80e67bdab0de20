// wardctl quarantine | release | quarantines | devices: the operator's commands for
// devices and quarantine, against a dataplane's internal API.
#include "controlplane/wardctl/segmentation.h"

#include <google/protobuf/util/json_util.h>

#include <chrono>
#include <cstdio>
#include <ctime>
#include <iostream>

namespace wardctl {

namespace {

std::string Time(uint64_t unix_ns) {
  if (unix_ns == 0) return "-";
  const time_t s = time_t(unix_ns / 1000000000ull);
  std::tm tm{};
  gmtime_r(&s, &tm);
  char buf[32];
  std::strftime(buf, sizeof(buf), "%Y-%m-%dT%H:%M:%SZ", &tm);
  return buf;
}

std::string Join(const google::protobuf::RepeatedPtrField<std::string>& v, size_t max = 6) {
  std::string out;
  for (int i = 0; i < v.size(); ++i) {
    if (size_t(i) == max) return out + ",+" + std::to_string(v.size() - i);
    if (i) out += ",";
    out += v[i];
  }
  return out.empty() ? "-" : out;
}

void PrintEntry(const pb::QuarantineEntry& q) {
  std::printf("%-20s %-4llu %-8s %-20s %-20s %-16s %s\n", q.device().c_str(),
              static_cast<unsigned long long>(q.device_id()), q.level().c_str(), Time(q.since_unix_ns()).c_str(),
              Time(q.expires_unix_ns()).c_str(), q.actor().c_str(), q.reason().c_str());
}

void PrintEntryHeader() {
  std::printf("%-20s %-4s %-8s %-20s %-20s %-16s %s\n", "DEVICE", "ID", "LEVEL", "SINCE", "EXPIRES", "ACTOR",
              "REASON");
}

// A failed call: INVALID_ARGUMENT is the operator's input (exit 2), the rest exit 1.
int Failed(const std::string& socket, const grpc::Status& rc) {
  std::fprintf(stderr, "wardctl: %s\n",
               rc.error_code() == grpc::StatusCode::UNAVAILABLE || rc.error_code() == grpc::StatusCode::DEADLINE_EXCEEDED
                   ? ("dataplane at " + socket + ": " + rc.error_message()).c_str()
                   : rc.error_message().c_str());
  return rc.error_code() == grpc::StatusCode::INVALID_ARGUMENT ? 2 : 1;
}

}  // namespace

void PrintJson(const google::protobuf::Message& m) {
  std::string out;
  google::protobuf::util::JsonPrintOptions opts;
  opts.always_print_primitive_fields = true;
  opts.preserve_proto_field_names = true;
  (void)google::protobuf::util::MessageToJsonString(m, &out, opts);
  std::cout << out << std::endl;
}

int RunSegmentation(pb::Dataplane::Stub& stub, const SegmentationArgs& a) {
  grpc::ClientContext ctx;
  // A quarantine waits for every worker; a loaded dataplane may take a moment.
  ctx.set_deadline(std::chrono::system_clock::now() + std::chrono::seconds(a.timeout_s));
  if (a.command == "quarantine") {
    pb::QuarantineRequest req;
    req.set_device(a.device);
    req.set_level(a.level);
    req.set_reason(a.reason);
    req.set_ttl(a.ttl);
    req.set_actor(a.actor.empty() ? "wardctl" : a.actor);
    pb::QuarantineResponse resp;
    const auto rc = stub.Quarantine(&ctx, req, &resp);
    if (!rc.ok()) return Failed(a.socket, rc);
    if (a.json) {
      PrintJson(resp);
    } else {
      const auto& q = resp.quarantine();
      std::printf("%s %s: %s%s (generation %llu)\n", resp.changed() ? "quarantined" : "already quarantined",
                  q.device().c_str(), q.level().c_str(),
                  q.expires_unix_ns() ? (" until " + Time(q.expires_unix_ns())).c_str() : "",
                  static_cast<unsigned long long>(resp.generation_id()));
    }
    if (!resp.warning().empty()) std::fprintf(stderr, "wardctl: warning: %s\n", resp.warning().c_str());
    return 0;
  }
  if (a.command == "release") {
    pb::ReleaseRequest req;
    req.set_device(a.device);
    req.set_reason(a.reason);
    req.set_actor(a.actor.empty() ? "wardctl" : a.actor);
    pb::ReleaseResponse resp;
    const auto rc = stub.Release(&ctx, req, &resp);
    if (!rc.ok()) return Failed(a.socket, rc);
    if (a.json) PrintJson(resp);
    else std::printf("released %s (generation %llu)\n", resp.released().device().c_str(),
                     static_cast<unsigned long long>(resp.generation_id()));
    if (!resp.warning().empty()) std::fprintf(stderr, "wardctl: warning: %s\n", resp.warning().c_str());
    return 0;
  }
  if (a.command == "device-set") {
    pb::SetDeviceRequest req;
    req.set_mac(a.device);
    req.set_name(a.name);
    req.set_device_class(a.device_class);
    req.set_criticality(a.criticality);
    req.set_zone(a.zone);
    pb::SetDeviceResponse resp;
    const auto rc = stub.SetDevice(&ctx, req, &resp);
    if (!rc.ok()) return Failed(a.socket, rc);
    if (a.json) PrintJson(resp);
    else std::printf("device %s (id %llu): %s, class %s, %s, zone %s (generation %llu)\n", resp.device().mac().c_str(),
                     static_cast<unsigned long long>(resp.device().id()), resp.device().name().c_str(),
                     resp.device().device_class().c_str(), resp.device().criticality().c_str(),
                     resp.device().zone().empty() ? "-" : resp.device().zone().c_str(),
                     static_cast<unsigned long long>(resp.generation_id()));
    return 0;
  }
  if (a.command == "quarantines") {
    pb::ListQuarantinesResponse resp;
    const auto rc = stub.ListQuarantines(&ctx, pb::ListQuarantinesRequest(), &resp);
    if (!rc.ok()) return Failed(a.socket, rc);
    if (a.json) {
      PrintJson(resp);
      return 0;
    }
    PrintEntryHeader();
    for (const auto& q : resp.quarantines()) PrintEntry(q);
    return 0;
  }
  // devices
  pb::ListDevicesResponse resp;
  const auto rc = stub.ListDevices(&ctx, pb::ListDevicesRequest(), &resp);
  if (!rc.ok()) return Failed(a.socket, rc);
  if (a.json) {
    PrintJson(resp);
    return 0;
  }
  std::printf("%-4s %-17s %-4s %-28s %-16s %-13s %-14s %-10s %-10s %-8s %s\n", "ID", "MAC", "VLAN", "ADDRESSES", "NAME",
              "CLASS", "CRITICALITY", "PKTS_FROM", "PKTS_TO", "QUAR.", "SERVICES");
  for (const auto& d : resp.devices()) {
    std::printf("%-4llu %-17s %-4u %-28s %-16s %-13s %-14s %-10llu %-10llu %-8s %s%s\n",
                static_cast<unsigned long long>(d.id()), d.mac().c_str(), d.vlan(), Join(d.ips(), 2).c_str(),
                d.name().empty() ? "-" : d.name().c_str(), d.device_class().empty() ? "-" : d.device_class().c_str(),
                d.criticality().empty() ? "-" : d.criticality().c_str(),
                static_cast<unsigned long long>(d.packets_from()), static_cast<unsigned long long>(d.packets_to()),
                d.quarantine_level().empty() ? "-" : d.quarantine_level().c_str(), Join(d.services()).c_str(),
                d.incomplete() ? " (incomplete)" : "");
  }
  return 0;
}

}  // namespace wardctl
