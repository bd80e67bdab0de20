// The internal gRPC API (wardgate.dataplane.v1.Dataplane) on a unix socket.
// Threads: gRPC's own threads call the handlers; they only read counters (relaxed
// atomics) and the generation id, so they never stall a worker.
#pragma once

#include <functional>
#include <map>
#include <vector>
#include <memory>
#include <string>

#include "dataplane/control/events.h"
#include "dataplane/control/segmentation_ops.h"
#include "dataplane/control/status.h"

namespace grpc {
class Server;
}

namespace wardgate::control {

class ApiServer {
 public:
  using StatusFn = std::function<Status()>;

  struct LoadRulesResult {
    bool accepted = false;
    std::vector<std::string> errors;
    uint32_t rules_loaded = 0;
    uint64_t generation_id = 0;
    double compile_ms = 0;
    std::map<std::string, int> skipped_by_keyword;
  };
  using LoadRulesFn = std::function<LoadRulesResult(const std::string& source, const std::string& source_name,
                                                    const std::string& version, bool lenient)>;

  // segmentation: quarantine and inventory calls (null: UNIMPLEMENTED, offline tools).
  ApiServer(StatusFn status, LoadRulesFn load_rules, EventHub* events, SegmentationOps* segmentation = nullptr);
  ~ApiServer();

  // Listens on `socket_path` (created mode 0600; a stale socket file is replaced).
  // Throws std::runtime_error if it cannot.
  void Start(const std::string& socket_path);
  // Ends open streams and stops serving; removes the socket file.
  void Stop();

 private:
  class Service;
  std::unique_ptr<Service> service_;
  std::unique_ptr<grpc::Server> server_;
  EventHub* events_;
  std::string socket_path_;
};

}  // namespace wardgate::control
