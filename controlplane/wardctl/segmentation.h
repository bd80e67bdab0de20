// wardctl's device and quarantine commands (see segmentation.cc).
#pragma once

#include <grpcpp/grpcpp.h>

#include <string>

#include "dataplane.grpc.pb.h"

namespace wardctl {

namespace pb = ::wardgate::dataplane::v1;

struct SegmentationArgs {
  std::string socket;
  std::string command;  // quarantine | release | quarantines | devices | device-set
  std::string device;   // quarantine, release
  std::string level, reason, ttl, actor;
  std::string name, device_class, criticality, zone;  // device set
  bool json = false;
  int timeout_s = 10;
};

// A response as one JSON line (field names as in the proto, zero values included).
void PrintJson(const google::protobuf::Message& m);

// Runs one command; returns the exit code (0 ok, 1 the dataplane refused or is
// unreachable, 2 the operator's input was refused).
int RunSegmentation(pb::Dataplane::Stub& stub, const SegmentationArgs& args);

}  // namespace wardctl
