#include "dataplane/control/controller.h"

#include <arpa/inet.h>

#include <algorithm>
#include <cctype>
#include <chrono>
#include <cstdio>
#include <nlohmann/json.hpp>

#include "dataplane/inspect/rules_loader.h"

namespace wardgate::control {

namespace {

uint64_t WallNs() {
  return uint64_t(std::chrono::duration_cast<std::chrono::nanoseconds>(
                      std::chrono::system_clock::now().time_since_epoch())
                      .count());
}

std::string AddressText(const uint8_t* a, bool v6) {
  char buf[INET6_ADDRSTRLEN] = {};
  inet_ntop(v6 ? AF_INET6 : AF_INET, a, buf, sizeof(buf));
  return buf;
}

const char* CriticalityName(config::Criticality c) {
  switch (c) {
    case config::Criticality::kLifeCritical: return "life-critical";
    case config::Criticality::kClinical: return "clinical";
    case config::Criticality::kGeneral: return "general";
  }
  return "general";
}

// The inventory's static records from the configuration's `devices:`.
std::vector<device::StaticDevice> StaticDevices(const config::SegmentationConfig& seg) {
  std::vector<device::StaticDevice> out;
  for (const auto& d : seg.devices) {
    device::StaticDevice s;
    device::ParseMac(d.mac, &s.mac);  // validated when the configuration loaded
    s.name = d.name;
    s.device_class = d.device_class;
    s.zone = d.zone;
    s.criticality = CriticalityName(d.criticality);
    for (const auto& ip : d.ips) s.ips.push_back({ip.addr, ip.v6});
    out.push_back(std::move(s));
  }
  return out;
}

constexpr uint64_t kInventoryPeriodNs = 1'000'000'000;  // merge the workers' tables once a second

// A MAC or address no single device has: quarantining it would cut everyone.
bool NotADevice(const quarantine::Selector& s) {
  if (s.kind == quarantine::Selector::Kind::kMac) {
    bool zero = true;
    for (uint8_t b : s.mac) zero &= b == 0;
    return zero || (s.mac[0] & 1);
  }
  if (s.kind == quarantine::Selector::Kind::kIp) {
    const auto& a = s.ip.addr;
    if (!s.ip.v6) {
      const bool unspecified = a[0] == 0 && a[1] == 0 && a[2] == 0 && a[3] == 0;
      const bool broadcast = a[0] == 255 && a[1] == 255 && a[2] == 255 && a[3] == 255;
      return unspecified || broadcast || (a[0] >= 224 && a[0] <= 239);
    }
    bool zero = true;
    for (uint8_t b : a) zero &= b == 0;
    return zero || a[0] == 0xff;
  }
  return false;
}

}  // namespace

// Text that goes into protobuf strings must be UTF-8: anything else becomes '?' (a
// rule's msg, a reason typed by someone).
std::string Controller::Utf8(const std::string& in) {
  std::string out;
  out.reserve(in.size());
  for (size_t i = 0; i < in.size();) {
    const unsigned char c = in[i];
    size_t n = c < 0x80 ? 1 : (c >> 5) == 6 ? 2 : (c >> 4) == 14 ? 3 : (c >> 3) == 30 ? 4 : 0;
    bool ok = n != 0 && i + n <= in.size();
    for (size_t k = 1; ok && k < n; ++k) ok = (static_cast<unsigned char>(in[i + k]) >> 6) == 2;
    if (ok && (c >= 0x20 || c == '\t')) {
      out.append(in, i, n);
      i += n;
    } else {
      out += '?';
      ++i;
    }
  }
  return out;
}

namespace {

}  // namespace

Controller::Controller(generation::GenerationStore& store,
                       std::vector<events::EventRing<events::AlertRecord>*> rings, events::EveSink& sink,
                       config::RulesConfig rules_cfg, uint32_t workers)
    : store_(store), rings_(std::move(rings)), sink_(sink), rules_cfg_(std::move(rules_cfg)), workers_(workers),
      clock_(WallNs) {
  sink_.SetRecordHook([this](const events::AlertRecord& r) {
    // Runs under mu_ (inside DrainLocked): collect, apply after the drain.
    if (r.kind != events::AlertRecord::Kind::kAlert || !r.rule ||
        r.rule->quarantine == rules::Rule::Quarantine::kNone) {
      return;
    }
    // Only the sender on the device side: a frame from the hospital side names its
    // target, which anyone could choose (and the target is the victim).
    if (!r.from_device || (r.src_mac[0] & 1)) {
      rule_refusals_.push_back({r.dst_mac, r.rule->quarantine, r.rule->sid, r.rule->msg, r.ts_ns});
      return;
    }
    rule_requests_.push_back({r.src_mac, r.rule->quarantine, r.rule->sid, r.rule->msg, r.ts_ns});
  });
}

void Controller::SetSegmentation(const config::SegmentationConfig& seg,
                                 std::vector<const device::DeviceTable*> tables, std::string boot_id,
                                 std::vector<std::string> pair_names) {
  std::lock_guard lock(mu_);
  seg_cfg_ = seg;
  pair_names_ = std::move(pair_names);
  tables_ = std::move(tables);
  boot_id_ = std::move(boot_id);
  inventory_.SetStatic(StaticDevices(seg));
}

bool Controller::Restore(std::string* why) {
  std::lock_guard lock(mu_);
  quarantine::AppliedState state;
  if (!quarantine::LoadSnapshot(seg_cfg_.quarantine.snapshot, &state, why)) return false;
  registry_.Restore(state.quarantines);
  for (const auto& e : registry_.List()) EmitQuarantineEvent("restore", e);
  return true;
}

void Controller::ReportUnreadableSnapshot(const std::string& why, const std::string& kept_as) {
  std::lock_guard lock(mu_);
  snapshot_error_ = "unreadable at start: " + why;
  nlohmann::ordered_json j;
  j["timestamp"] = events::EveTimestamp(Now());
  j["event_type"] = "quarantine";
  nlohmann::ordered_json q;
  q["action"] = "snapshot_unreadable";
  q["reason"] = Utf8(why);
  if (!kept_as.empty()) q["kept_as"] = kept_as;
  j["quarantine"] = q;
  sink_.Write(j.dump());
  sink_.Flush();
}

std::shared_ptr<const segment::QuarantineSet> Controller::QuarantineSetNow() const {
  auto set = std::make_shared<segment::QuarantineSet>();
  for (const auto& e : registry_.List()) {
    segment::Quarantined q{e.level, e.since_ns};
    if (e.device.kind == quarantine::Selector::Kind::kMac) set->AddMac(e.device.mac, q);
    else if (e.device.kind == quarantine::Selector::Kind::kIp) set->AddIp(e.device.ip.addr, q);
  }
  return set;
}

size_t Controller::quarantine_count() {
  std::lock_guard lock(mu_);
  return registry_.size();
}

void Controller::DrainLocked() {
  for (auto* ring : rings_) sink_.Drain(*ring);
  sink_.Flush();
}

void Controller::Drain() {
  std::lock_guard lock(mu_);
  DrainLocked();
  ApplyRuleRequestsLocked();
}

ApiServer::LoadRulesResult Controller::LoadRules(const std::string& source, const std::string& source_name,
                                                 const std::string& version, bool lenient) {
  ApiServer::LoadRulesResult result;
  config::RulesConfig cfg = rules_cfg_;
  cfg.lenient = lenient;
  auto loaded = inspect::LoadRuleText(source, source_name.empty() ? "api" : source_name, cfg);
  result.errors = loaded.errors;
  result.skipped_by_keyword = loaded.skipped_by_keyword;
  if (!loaded.compiled) return result;  // refused: the running set stays
  result.compile_ms = loaded.compiled->stats().compile_ms;

  std::lock_guard lock(mu_);
  auto gen = generation::Generation::SameTopology(*store_.Current());
  inspect::AttachRules(*gen, loaded, version, workers_);
  std::unique_ptr<const generation::Generation> retired;
  result.generation_id = store_.Publish(std::move(gen), &retired);
  // Every worker has left the old generation: its events are all in the rings now.
  DrainLocked();
  retired.reset();
  SaveSnapshotLocked();  // the applied rules version
  ApplyRuleRequestsLocked();
  result.accepted = true;
  result.rules_loaded = static_cast<uint32_t>(loaded.rules_loaded);
  return result;
}

uint64_t Controller::PublishQuarantinesLocked(uint64_t* enforced_ns) {
  auto gen = generation::Generation::SameTopology(*store_.Current());
  gen->quarantines = QuarantineSetNow();
  std::unique_ptr<const generation::Generation> retired;
  const uint64_t id = store_.Publish(std::move(gen), &retired);
  if (enforced_ns) *enforced_ns = Now();
  DrainLocked();  // records of the old generation point into it
  retired.reset();
  // Enforcement first (a rule's quarantine must hold within a millisecond; the file's
  // fsync takes several), then durability: the caller's return waits for both, so a
  // change it was told about is always in the snapshot.
  SaveSnapshotLocked();
  return id;
}

void Controller::SaveSnapshotLocked() {
  quarantine::AppliedState state;
  state.quarantines = registry_.List();
  const auto* cur = store_.Current();
  if (cur) {
    state.rules_version = cur->rules_version;
    state.policy_version = cur->policy_version;
  }
  state.saved_ns = Now();
  state.boot_id = boot_id_;
  std::string why;
  if (quarantine::SaveSnapshot(seg_cfg_.quarantine.snapshot, state, &why)) {
    snapshot_error_.clear();
  } else {
    snapshot_error_ = why;
    std::fprintf(stderr, "wardgate-dp: cannot write the snapshot: %s\n", why.c_str());
  }
}

std::optional<device::DeviceInfo> Controller::DeviceOf(const quarantine::Selector& s) const {
  switch (s.kind) {
    case quarantine::Selector::Kind::kMac: return inventory_.ByMac(s.mac);
    case quarantine::Selector::Kind::kIp: return inventory_.ByIp(s.ip.addr, s.ip.v6);
    case quarantine::Selector::Kind::kId: return inventory_.ById(s.id);
  }
  return std::nullopt;
}

config::Criticality Controller::CriticalityOf(const quarantine::Selector& s) const {
  const auto dev = DeviceOf(s);
  if (dev && dev->criticality == "life-critical") return config::Criticality::kLifeCritical;
  if (dev && dev->criticality == "clinical") return config::Criticality::kClinical;
  return config::Criticality::kGeneral;
}

bool Controller::Resolve(const std::string& text, quarantine::Selector* out, QuarantineOutcome* err) const {
  std::string why;
  if (!quarantine::ParseSelector(text, out, &why)) {
    err->error = QuarantineOutcome::Error::kInvalid;
    err->message = why;
    return false;
  }
  if (NotADevice(*out)) {
    err->error = QuarantineOutcome::Error::kInvalid;
    err->message = "'" + text + "' is a broadcast, multicast or unspecified address, not a device";
    return false;
  }
  if (out->kind == quarantine::Selector::Kind::kId) {
    const auto dev = inventory_.ById(out->id);
    if (!dev) {
      err->error = QuarantineOutcome::Error::kNotFound;
      err->message = "no device with inventory id " + std::to_string(out->id) + " (wardctl devices lists them)";
      return false;
    }
    *out = quarantine::Selector::Mac(dev->learned.mac);
  } else if (out->kind == quarantine::Selector::Kind::kIp) {
    // A known device is quarantined as the device (its MAC: every address it uses,
    // IPv6 and non-IP included), not as one of its addresses. An address not seen yet
    // is quarantined as such, in advance.
    if (const auto dev = inventory_.ByIp(out->ip.addr, out->ip.v6); dev && dev->seen) {
      *out = quarantine::Selector::Mac(dev->learned.mac);
    }
  }
  return true;
}

QuarantineView Controller::ViewOf(const quarantine::Entry& e) const {
  QuarantineView v;
  v.device = e.device.Text();
  v.level = quarantine::LevelName(e.level);
  v.reason = e.reason;
  v.actor = e.actor;
  v.since_ns = e.since_ns;
  v.expires_ns = e.expires_ns;
  if (const auto dev = DeviceOf(e.device)) {
    v.device_id = dev->id;
    v.device_name = dev->name;
    v.device_class = dev->device_class;
    v.criticality = dev->criticality;
  }
  return v;
}

void Controller::EmitQuarantineEvent(const char* action, const quarantine::Entry& e, const std::string& extra_key,
                                     uint64_t extra_value) {
  nlohmann::ordered_json j;
  j["timestamp"] = events::EveTimestamp(Now());
  j["event_type"] = "quarantine";
  const QuarantineView v = ViewOf(e);
  nlohmann::ordered_json q;
  q["action"] = action;  // quarantine, update, release, expire, restore, not_applied
  q["device"] = v.device;
  q["level"] = v.level;
  q["reason"] = v.reason;
  q["actor"] = v.actor;
  q["since"] = events::EveTimestamp(e.since_ns);
  if (e.expires_ns) q["expires"] = events::EveTimestamp(e.expires_ns);
  if (!extra_key.empty()) q[extra_key] = extra_value;
  j["quarantine"] = q;
  if (v.device_id) {
    nlohmann::ordered_json d;
    d["id"] = v.device_id;
    if (!v.device_name.empty()) d["name"] = v.device_name;
    if (!v.device_class.empty()) d["class"] = v.device_class;
    if (!v.criticality.empty()) d["criticality"] = v.criticality;
    j["device"] = d;
  }
  sink_.Write(j.dump(-1, ' ', false, nlohmann::json::error_handler_t::replace));
  sink_.Flush();
}

QuarantineOutcome Controller::Quarantine(const QuarantineCommand& cmd) {
  QuarantineOutcome out;
  std::lock_guard lock(mu_);
  quarantine::Selector sel;
  if (!Resolve(cmd.device, &sel, &out)) return out;
  quarantine::Level level;
  std::string why;
  if (cmd.level.empty()) {
    // Asked again without a level (to change the TTL or the reason): the level stays.
    const auto* cur = registry_.Find(sel);
    level = cur ? cur->level
                : CriticalityOf(sel) == config::Criticality::kLifeCritical ? seg_cfg_.quarantine.life_critical_default
                                                                           : seg_cfg_.quarantine.default_level;
  } else if (!quarantine::ParseLevel(cmd.level, &level, &why)) {
    out.error = QuarantineOutcome::Error::kInvalid;
    out.message = why;
    return out;
  }
  uint64_t ttl = 0;
  if (!quarantine::ParseDuration(cmd.ttl, &ttl, &why)) {
    out.error = QuarantineOutcome::Error::kInvalid;
    out.message = "ttl: " + why;
    return out;
  }
  const auto r = registry_.Add(sel, level, Utf8(cmd.reason), Utf8(cmd.actor.empty() ? "api" : cmd.actor), Now(), ttl);
  if (!r.ok()) {
    out.error = QuarantineOutcome::Error::kInvalid;
    out.message = r.error;
    return out;
  }
  out.changed = r.changed;
  if (r.changed) {
    out.generation_id = PublishQuarantinesLocked();
    EmitQuarantineEvent(r.created ? "quarantine" : "update", r.entry);
  } else {
    out.generation_id = store_.CurrentId();
  }
  out.entry = ViewOf(r.entry);
  out.message = snapshot_error_.empty() ? "" : "not durable: the snapshot could not be written: " + snapshot_error_;
  return out;
}

QuarantineOutcome Controller::Release(const std::string& device, const std::string& reason,
                                      const std::string& actor) {
  QuarantineOutcome out;
  std::lock_guard lock(mu_);
  quarantine::Selector sel;
  if (!Resolve(device, &sel, &out)) return out;
  auto removed = registry_.Remove(sel);
  if (!removed) {
    // Named differently from how it was quarantined: by its MAC or one of its addresses.
    if (const auto dev = DeviceOf(sel)) {
      removed = registry_.Remove(quarantine::Selector::Mac(dev->learned.mac));
      for (int i = 0; !removed && i < dev->learned.n_ipv4; ++i) {
        config::Prefix p;
        std::copy(dev->learned.ipv4[i].begin(), dev->learned.ipv4[i].end(), p.addr.begin());
        p.len = 32;
        removed = registry_.Remove(quarantine::Selector::Ip(p));
      }
      for (int i = 0; !removed && i < dev->learned.n_ipv6; ++i) {
        config::Prefix p;
        p.v6 = true;
        p.addr = dev->learned.ipv6[i];
        p.len = 128;
        removed = registry_.Remove(quarantine::Selector::Ip(p));
      }
    }
  }
  if (!removed) {
    out.error = QuarantineOutcome::Error::kNotFound;
    out.message = sel.Text() + " is not quarantined (wardctl quarantines lists what is)";
    return out;
  }
  out.changed = true;
  out.generation_id = PublishQuarantinesLocked();
  removed->actor = Utf8(actor.empty() ? "api" : actor);
  if (!reason.empty()) removed->reason = Utf8(reason);
  EmitQuarantineEvent("release", *removed);
  out.entry = ViewOf(*removed);
  out.message = snapshot_error_.empty() ? "" : "not durable: the snapshot could not be written: " + snapshot_error_;
  return out;
}

std::vector<QuarantineView> Controller::Quarantines() {
  std::lock_guard lock(mu_);
  std::vector<QuarantineView> out;
  for (const auto& e : registry_.List()) out.push_back(ViewOf(e));
  return out;
}

std::vector<DeviceView> Controller::Devices() {
  std::lock_guard lock(mu_);
  return DevicesLocked();
}

QuarantineOutcome Controller::SetDevice(const DeviceRecordCommand& cmd) {
  QuarantineOutcome out;
  auto invalid = [&](const std::string& why) {
    out.error = QuarantineOutcome::Error::kInvalid;
    out.message = why;
    return out;
  };
  device::Mac mac;
  if (!device::ParseMac(cmd.mac, &mac) || (mac[0] & 1)) return invalid("'" + cmd.mac + "' is not a device's MAC address");
  if (!cmd.device_class.empty() && !config::ValidName(cmd.device_class)) {
    return invalid("class '" + cmd.device_class + "': use a-z, 0-9, - and _");
  }
  config::DeviceConfig d;
  d.mac = device::MacText(mac);
  d.name = Utf8(cmd.name);
  d.device_class = cmd.device_class;
  if (cmd.criticality == "life-critical") d.criticality = config::Criticality::kLifeCritical;
  else if (cmd.criticality == "clinical") d.criticality = config::Criticality::kClinical;
  else if (cmd.criticality.empty() || cmd.criticality == "general") d.criticality = config::Criticality::kGeneral;
  else return invalid("criticality '" + cmd.criticality + "': life-critical, clinical or general");
  std::lock_guard lock(mu_);
  if (!cmd.zone.empty() && std::none_of(seg_cfg_.zones.begin(), seg_cfg_.zones.end(),
                                        [&](const config::ZoneConfig& z) { return z.name == cmd.zone; })) {
    return invalid("no zone named '" + cmd.zone + "'");
  }
  d.zone = cmd.zone;
  config::SegmentationConfig next = seg_cfg_;
  auto it = std::find_if(next.devices.begin(), next.devices.end(), [&](const auto& x) { return x.mac == d.mac; });
  if (it != next.devices.end()) {
    d.ips = it->ips;
    *it = d;
  } else {
    next.devices.push_back(d);
  }
  // A new segmentation for the workers (zone resolution reads the static records);
  // flows already decided keep their decision.
  const auto* cur = store_.Current();
  std::string why;
  auto seg = segment::Segmentation::Build(next, pair_names_, &why);
  if (!seg) return invalid(why);
  auto gen = generation::Generation::SameTopology(*cur);
  gen->segmentation = std::move(seg);
  std::unique_ptr<const generation::Generation> retired;
  out.generation_id = store_.Publish(std::move(gen), &retired);
  DrainLocked();  // policy records of the old segmentation point into it
  retired.reset();
  seg_cfg_ = std::move(next);
  inventory_.SetStatic(StaticDevices(seg_cfg_));
  out.entry.device = d.mac;
  out.changed = true;
  return out;
}

std::vector<DeviceView> Controller::DevicesLocked() {
  inventory_.Update(tables_);
  std::vector<DeviceView> out;
  for (const auto& d : inventory_.List()) {
    DeviceView v;
    v.id = d.id;
    v.mac = device::MacText(d.learned.mac);
    v.vlan = d.learned.vlan;
    for (int i = 0; i < d.learned.n_ipv4; ++i) v.ips.push_back(AddressText(d.learned.ipv4[i].data(), false));
    for (int i = 0; i < d.learned.n_ipv6; ++i) v.ips.push_back(AddressText(d.learned.ipv6[i].data(), true));
    for (int i = 0; i < d.learned.n_services; ++i) {
      const auto& s = d.learned.services[i];
      v.services.push_back((s.proto == 6 ? "tcp/" : s.proto == 17 ? "udp/" : std::to_string(s.proto) + "/") +
                           std::to_string(s.port));
    }
    for (int i = 0; i < d.learned.n_peers; ++i) {
      v.peers.push_back(AddressText(d.learned.peers[i].addr.data(), d.learned.peers[i].v6));
    }
    if (d.learned.apps & device::kAppHl7) v.apps.push_back("hl7");
    if (d.learned.apps & device::kAppDicom) v.apps.push_back("dicom");
    v.first_seen_ns = d.learned.first_seen_ns;
    v.last_seen_ns = d.learned.last_seen_ns;
    v.packets_from = d.learned.packets_from;
    v.bytes_from = d.learned.bytes_from;
    v.packets_to = d.learned.packets_to;
    v.bytes_to = d.learned.bytes_to;
    v.name = d.name;
    v.device_class = d.device_class;
    v.criticality = d.criticality;
    v.zone = d.zone;
    if (v.ips.empty()) {  // not seen yet: the addresses its static record declares
      for (const auto& sd : seg_cfg_.devices) {
        if (sd.mac != v.mac) continue;
        for (const auto& ip : sd.ips) v.ips.push_back(AddressText(ip.addr.data(), ip.v6));
      }
    }
    if (v.zone.empty()) v.zone = ZoneOf(d);
    v.incomplete = d.learned.overflow != 0;
    if (const auto* e = registry_.Find(quarantine::Selector::Mac(d.learned.mac))) {
      v.quarantine_level = quarantine::LevelName(e->level);
    }
    out.push_back(std::move(v));
  }
  return out;
}

std::string Controller::ZoneOf(const device::DeviceInfo& d) const {
  const auto* gen = store_.Current();
  if (!gen || !gen->segmentation) return "";
  std::array<uint8_t, 16> addr{};
  bool v6 = false;
  if (d.learned.n_ipv4) {
    std::copy(d.learned.ipv4[0].begin(), d.learned.ipv4[0].end(), addr.begin());
  } else if (d.learned.n_ipv6) {
    addr = d.learned.ipv6[0];
    v6 = true;
  }
  const segment::End end{d.learned.mac.data(), addr.data(), v6, d.learned.vlan, segment::kNoPair};
  return gen->segmentation->ZoneName(gen->segmentation->ZoneOf(end));
}

void Controller::ApplyRuleRequestsLocked() {
  for (const auto& rq : rule_refusals_) {
    quarantine::Entry e;
    e.device = quarantine::Selector::Mac(rq.mac);
    e.level = rq.level == rules::Rule::Quarantine::kContain ? quarantine::Level::kContain : quarantine::Level::kIsolate;
    e.reason = Utf8("rule sid " + std::to_string(rq.sid) + ": " + rq.msg +
                    " (the packet came from the hospital side: its target is not quarantined)");
    e.actor = "rule:" + std::to_string(rq.sid);
    e.since_ns = Now();
    EmitQuarantineEvent("not_applied", e);
  }
  rule_refusals_.clear();
  if (rule_requests_.empty()) return;
  auto requests = std::move(rule_requests_);
  rule_requests_.clear();
  bool changed = false;
  std::vector<std::pair<quarantine::Entry, uint64_t>> applied;  // entry, latency
  for (const auto& rq : requests) {
    const auto sel = quarantine::Selector::Mac(rq.mac);
    quarantine::Level level = rq.level == rules::Rule::Quarantine::kContain ? quarantine::Level::kContain
                                                                             : quarantine::Level::kIsolate;
    // The device class caps what a rule may do; life-critical devices never beyond
    // their configured level (contain by default).
    const auto dev = DeviceOf(sel);
    bool alert_only = false;
    if (dev) {
      const auto it = seg_cfg_.quarantine.rule_response.find(dev->device_class);
      if (it != seg_cfg_.quarantine.rule_response.end()) {
        if (it->second == config::RuleResponse::kAlert) alert_only = true;
        else if (it->second == config::RuleResponse::kContain) level = quarantine::Level::kContain;
      }
      if (dev->criticality == "life-critical" &&
          seg_cfg_.quarantine.life_critical_default == quarantine::Level::kContain) {
        level = quarantine::Level::kContain;
      }
    }
    const std::string reason = Utf8("rule sid " + std::to_string(rq.sid) + ": " + rq.msg);
    const std::string actor = "rule:" + std::to_string(rq.sid);
    if (alert_only) {
      quarantine::Entry e;
      e.device = sel;
      e.level = level;
      e.reason = reason + " (class " + dev->device_class + ": alert only)";
      e.actor = actor;
      e.since_ns = Now();
      EmitQuarantineEvent("not_applied", e);
      continue;
    }
    // A quarantine already in force is never weakened by a rule.
    if (const auto* cur = registry_.Find(sel); cur && (cur->level == quarantine::Level::kIsolate || cur->level == level)) {
      continue;
    }
    const auto r = registry_.Add(sel, level, reason, actor, Now(), 0);
    if (!r.ok() || !r.changed) continue;
    changed = true;
    applied.emplace_back(r.entry, rq.match_ts_ns);
  }
  if (!changed) return;
  uint64_t enforced = 0;
  PublishQuarantinesLocked(&enforced);
  for (const auto& [e, match_ts] : applied) {
    // From the packet that matched to every worker enforcing the quarantine.
    EmitQuarantineEvent("quarantine", e, "latency_us", enforced > match_ts ? (enforced - match_ts) / 1000 : 0);
  }
}

void Controller::Tick() {
  std::lock_guard lock(mu_);
  const uint64_t now = Now();
  if (const auto next = registry_.NextExpiry(); next && *next <= now) {
    auto expired = registry_.Expire(now);
    if (!expired.empty()) {
      PublishQuarantinesLocked();
      for (const auto& e : expired) EmitQuarantineEvent("expire", e);
    }
  }
  if (!tables_.empty() && now - last_inventory_ns_ >= kInventoryPeriodNs) {
    last_inventory_ns_ = now;
    for (const auto& c : inventory_.Update(tables_)) {
      nlohmann::ordered_json j;
      j["timestamp"] = events::EveTimestamp(c.ts_ns ? c.ts_ns : now);
      j["event_type"] = "device";
      nlohmann::ordered_json d;
      d["event"] = "ip_conflict";
      d["ip"] = AddressText(c.addr.data(), c.v6);
      d["owner"] = device::MacText(c.owner);
      d["claimant"] = device::MacText(c.claimant);
      j["device"] = d;
      sink_.Write(j.dump());
    }
    sink_.Flush();
  }
}

}  // namespace wardgate::control
