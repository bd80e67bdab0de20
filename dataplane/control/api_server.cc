#include "dataplane/control/api_server.h"

#include <grpcpp/grpcpp.h>
#include <sys/stat.h>
#include <unistd.h>

#include <cerrno>
#include <cstring>
#include <filesystem>
#include <stdexcept>

#include "dataplane.grpc.pb.h"  // generated from api/wardgate/dataplane/v1/dataplane.proto

namespace wardgate::control {
namespace pb = ::wardgate::dataplane::v1;

namespace {

void FillReasons(const ReasonCounts& in, google::protobuf::RepeatedPtrField<pb::ReasonCount>* out) {
  for (const auto& [reason, count] : in) {
    auto* r = out->Add();
    r->set_reason(reason);
    r->set_count(count);
  }
}

// Protobuf stops at the API edge: the plain Status becomes a GetStatusResponse here.
void ToProto(const Status& s, pb::GetStatusResponse* out) {
  out->set_version(s.version);
  out->set_boot_id(s.boot_id);
  out->set_uptime_ms(s.uptime_ms);
  out->set_generation_id(s.generation_id);
  for (const auto& p : s.ports) {
    auto* port = out->add_ports();
    port->set_port_id(p.info.port_id);
    port->set_name(p.info.name);
    port->set_driver(p.info.driver);
    port->set_role(p.info.role == port::Role::kDevice ? pb::PORT_ROLE_DEVICE : pb::PORT_ROLE_NETWORK);
    port->set_pair(p.info.pair);
    port->set_link_up(p.link_up);
    port->set_link_speed_mbps(p.link_speed_mbps);
    port->set_queues(p.info.queues);
    port->set_mac(p.info.mac);
    auto* c = port->mutable_counters();
    c->set_rx_packets(p.rx_packets);
    c->set_rx_bytes(p.rx_bytes);
    c->set_tx_packets(p.tx_packets);
    c->set_tx_bytes(p.tx_bytes);
    c->set_rx_missed(p.rx_missed);
    c->set_rx_nombuf(p.rx_nombuf);
    c->set_rx_errors(p.rx_errors);
    c->set_tx_errors(p.tx_errors);
    c->set_tx_full(p.tx_full);
    if (p.info.role == port::Role::kDevice) {
      auto* pair = out->add_pairs();
      pair->set_name(p.info.pair);
      pair->set_device_port(p.info.port_id);
      pair->set_network_port(p.info.peer_id);
    }
  }
  for (const auto& w : s.workers) {
    auto* wk = out->add_workers();
    wk->set_worker_id(w.worker_id);
    wk->set_lcore(w.lcore);
    for (const auto& q : w.rx_queues) wk->add_rx_queues(q);
    wk->set_rx_packets(w.rx_packets);
    wk->set_tx_packets(w.tx_packets);
    wk->set_busy_polls(w.busy_polls);
    wk->set_idle_polls(w.idle_polls);
    wk->set_sleeps(w.sleeps);
    wk->set_tx_full(w.tx_full);
    wk->set_malformed(w.malformed);
  }
  FillReasons(s.malformed, out->mutable_malformed());
  FillReasons(s.drops, out->mutable_drops());
  out->set_rules_version(s.rules_version);
  out->set_rules_loaded(s.rules_loaded);
  out->set_alerts(s.alerts);
  out->set_events_lost(s.events_lost);
  FillReasons(s.flows, out->mutable_flows());
  FillReasons(s.segmentation, out->mutable_segmentation());
  out->set_policy_version(s.policy_version);
  out->set_snapshot_path(s.snapshot_path);
  out->set_snapshot_error(s.snapshot_error);
}

void ToProto(const QuarantineView& v, pb::QuarantineEntry* out) {
  out->set_device(v.device);
  out->set_device_id(v.device_id);
  out->set_level(v.level);
  out->set_reason(v.reason);
  out->set_actor(v.actor);
  out->set_since_unix_ns(v.since_ns);
  out->set_expires_unix_ns(v.expires_ns);
  out->set_device_name(v.device_name);
  out->set_device_class(v.device_class);
  out->set_criticality(v.criticality);
}

void ToProto(const DeviceView& v, pb::Device* out) {
  out->set_id(v.id);
  out->set_mac(v.mac);
  out->set_vlan(v.vlan);
  for (const auto& x : v.ips) out->add_ips(x);
  out->set_first_seen_unix_ns(v.first_seen_ns);
  out->set_last_seen_unix_ns(v.last_seen_ns);
  out->set_packets_from(v.packets_from);
  out->set_bytes_from(v.bytes_from);
  out->set_packets_to(v.packets_to);
  out->set_bytes_to(v.bytes_to);
  for (const auto& x : v.services) out->add_services(x);
  for (const auto& x : v.peers) out->add_peers(x);
  for (const auto& x : v.apps) out->add_apps(x);
  out->set_name(v.name);
  out->set_device_class(v.device_class);
  out->set_criticality(v.criticality);
  out->set_zone(v.zone);
  out->set_quarantine_level(v.quarantine_level);
  out->set_incomplete(v.incomplete);
}

grpc::Status ErrorOf(const QuarantineOutcome& r) {
  switch (r.error) {
    case QuarantineOutcome::Error::kNone: return grpc::Status::OK;
    case QuarantineOutcome::Error::kInvalid: return grpc::Status(grpc::StatusCode::INVALID_ARGUMENT, r.message);
    case QuarantineOutcome::Error::kNotFound: return grpc::Status(grpc::StatusCode::NOT_FOUND, r.message);
    case QuarantineOutcome::Error::kUnavailable: return grpc::Status(grpc::StatusCode::UNAVAILABLE, r.message);
  }
  return grpc::Status(grpc::StatusCode::INTERNAL, r.message);
}

}  // namespace

class ApiServer::Service final : public pb::Dataplane::Service {
 public:
  Service(StatusFn status, LoadRulesFn load_rules, EventHub* events, SegmentationOps* seg)
      : status_(std::move(status)), load_rules_(std::move(load_rules)), events_(events), seg_(seg) {}

  grpc::Status Quarantine(grpc::ServerContext*, const pb::QuarantineRequest* request,
                          pb::QuarantineResponse* response) override {
    if (!seg_) return grpc::Status(grpc::StatusCode::UNIMPLEMENTED, "no segmentation here");
    QuarantineCommand cmd{request->device(), request->level(), request->reason(), request->ttl(), request->actor()};
    const auto r = seg_->Quarantine(cmd);
    if (r.error != QuarantineOutcome::Error::kNone) return ErrorOf(r);
    ToProto(r.entry, response->mutable_quarantine());
    response->set_changed(r.changed);
    response->set_generation_id(r.generation_id);
    response->set_warning(r.message);
    return grpc::Status::OK;
  }

  grpc::Status Release(grpc::ServerContext*, const pb::ReleaseRequest* request,
                       pb::ReleaseResponse* response) override {
    if (!seg_) return grpc::Status(grpc::StatusCode::UNIMPLEMENTED, "no segmentation here");
    const auto r = seg_->Release(request->device(), request->reason(), request->actor());
    if (r.error != QuarantineOutcome::Error::kNone) return ErrorOf(r);
    ToProto(r.entry, response->mutable_released());
    response->set_generation_id(r.generation_id);
    response->set_warning(r.message);
    return grpc::Status::OK;
  }

  grpc::Status ListQuarantines(grpc::ServerContext*, const pb::ListQuarantinesRequest*,
                               pb::ListQuarantinesResponse* response) override {
    if (!seg_) return grpc::Status(grpc::StatusCode::UNIMPLEMENTED, "no segmentation here");
    for (const auto& q : seg_->Quarantines()) ToProto(q, response->add_quarantines());
    return grpc::Status::OK;
  }

  grpc::Status SetDevice(grpc::ServerContext*, const pb::SetDeviceRequest* request,
                         pb::SetDeviceResponse* response) override {
    if (!seg_) return grpc::Status(grpc::StatusCode::UNIMPLEMENTED, "no segmentation here");
    const auto r = seg_->SetDevice(
        {request->mac(), request->name(), request->device_class(), request->criticality(), request->zone()});
    if (r.error != QuarantineOutcome::Error::kNone) return ErrorOf(r);
    response->set_generation_id(r.generation_id);
    for (const auto& d : seg_->Devices()) {
      if (d.mac == r.entry.device) ToProto(d, response->mutable_device());
    }
    return grpc::Status::OK;
  }

  grpc::Status ListDevices(grpc::ServerContext*, const pb::ListDevicesRequest*,
                           pb::ListDevicesResponse* response) override {
    if (!seg_) return grpc::Status(grpc::StatusCode::UNIMPLEMENTED, "no segmentation here");
    for (const auto& d : seg_->Devices()) ToProto(d, response->add_devices());
    return grpc::Status::OK;
  }

  grpc::Status LoadRules(grpc::ServerContext*, const pb::LoadRulesRequest* request,
                         pb::LoadRulesResponse* response) override {
    if (!load_rules_) return grpc::Status(grpc::StatusCode::UNIMPLEMENTED, "rules are not supported here");
    const auto r = load_rules_(request->source(), request->source_name(), request->version(), request->lenient());
    response->set_accepted(r.accepted);
    for (const auto& e : r.errors) response->add_errors(e);
    response->set_rules_loaded(r.rules_loaded);
    response->set_generation_id(r.generation_id);
    response->set_compile_ms(r.compile_ms);
    for (const auto& [k, n] : r.skipped_by_keyword) (*response->mutable_skipped_by_keyword())[k] = n;
    return grpc::Status::OK;
  }

  grpc::Status GetStatus(grpc::ServerContext*, const pb::GetStatusRequest*,
                         pb::GetStatusResponse* response) override {
    ToProto(status_(), response);
    return grpc::Status::OK;
  }

  grpc::Status WatchEvents(grpc::ServerContext* ctx, const pb::WatchEventsRequest*,
                           grpc::ServerWriter<pb::Event>* writer) override {
    auto sub = events_->Subscribe();
    // Poll in short waits so a cancelled client or a shutdown ends the stream promptly.
    while (!ctx->IsCancelled() && !sub->closed()) {
      auto eve = sub->Next(200);
      if (!eve) continue;
      pb::Event e;
      e.set_eve_json(std::move(*eve));
      if (!writer->Write(e)) break;
    }
    events_->Unsubscribe(sub);
    return grpc::Status::OK;
  }

 private:
  StatusFn status_;
  LoadRulesFn load_rules_;
  EventHub* events_;
  SegmentationOps* seg_;
};

ApiServer::ApiServer(StatusFn status, LoadRulesFn load_rules, EventHub* events, SegmentationOps* segmentation)
    : service_(std::make_unique<Service>(std::move(status), std::move(load_rules), events, segmentation)),
      events_(events) {}

ApiServer::~ApiServer() { Stop(); }

void ApiServer::Start(const std::string& socket_path) {
  namespace fs = std::filesystem;
  std::error_code ec;
  const auto dir = fs::path(socket_path).parent_path();
  if (!dir.empty()) fs::create_directories(dir, ec);
  // A socket left by a killed process would make bind() fail; refuse to delete
  // anything that is not a socket.
  struct stat st {};
  if (lstat(socket_path.c_str(), &st) == 0) {
    if (!S_ISSOCK(st.st_mode)) {
      throw std::runtime_error("control socket path " + socket_path + " exists and is not a socket");
    }
    ::unlink(socket_path.c_str());
  }
  grpc::ServerBuilder builder;
  builder.AddListeningPort("unix:" + socket_path, grpc::InsecureServerCredentials());
  builder.RegisterService(service_.get());
  // The socket is created by bind() inside BuildAndStart: the umask makes it 0600
  // from the first instant (only root, the control plane's user, may connect).
  const mode_t old_mask = ::umask(0177);
  server_ = builder.BuildAndStart();
  ::umask(old_mask);
  if (!server_) throw std::runtime_error("cannot serve the control API on unix:" + socket_path);
  ::chmod(socket_path.c_str(), 0600);
  socket_path_ = socket_path;
}

void ApiServer::Stop() {
  if (!server_) return;
  events_->Close();
  server_->Shutdown(std::chrono::system_clock::now() + std::chrono::seconds(2));
  server_.reset();
  ::unlink(socket_path_.c_str());
}

}  // namespace wardgate::control
