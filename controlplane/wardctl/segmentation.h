// wardctl's device and quarantine commands (see segmentation.cc).
#pragma once

#include <grpcpp/grpcpp.h>

#include <string>

#include "dataplane.grpc.pb.h"

namespace wardctl {

namespace pb = ::wardgate::dataplane::v1;

struct SegmentationArgs {
  std::string socket;
  std::string command;  // quarantine | release | quarantines | devices
  std::string device;   // quarantine, release
  std::string level, reason, ttl, actor;
  bool json = false;
  int timeout_s = 10;
};

// Runs one command; returns the exit code (0 ok, 1 the dataplane refused or is
// unreachable, 2 the operator's input was refused).
int RunSegmentation(pb::Dataplane::Stub& stub, const SegmentationArgs& args);

}  // namespace wardctl
