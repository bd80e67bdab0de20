#include "dataplane/segment/segmentation.h"

#include <algorithm>
#include <cstring>

namespace wardgate::segment {

namespace {

policy::Action ToAction(config::PolicyAction a) {
  switch (a) {
    case config::PolicyAction::kAllow: return policy::Action::kAllow;
    case config::PolicyAction::kDeny: return policy::Action::kDeny;
    case config::PolicyAction::kAlert: return policy::Action::kAlert;
  }
  return policy::Action::kDeny;
}

policy::Prefix ToPrefix(const config::Prefix& p) {
  policy::Prefix out;
  out.family = p.v6 ? policy::Family::kIpv6 : policy::Family::kIpv4;
  out.len = p.len;
  out.addr = p.addr;
  return out;
}

// Most restrictive first: a flow between a deny zone and an allow zone is denied.
int Severity(policy::Action a) {
  switch (a) {
    case policy::Action::kDeny: return 2;
    case policy::Action::kAlert: return 1;
    case policy::Action::kAllow: return 0;
  }
  return 2;
}

}  // namespace

App DetectApp(const uint8_t* d, size_t len) {
  // HL7 v2 over MLLP: <VT> then a message (MSH) or a batch/file header (BHS, FHS).
  if (len >= 4 && d[0] == 0x0b &&
      (std::memcmp(d + 1, "MSH", 3) == 0 || std::memcmp(d + 1, "BHS", 3) == 0 || std::memcmp(d + 1, "FHS", 3) == 0)) {
    return App::kHl7;
  }
  // DICOM upper layer: A-ASSOCIATE-RQ PDU (type 1, reserved 0, 4-byte length,
  // protocol version 0x0001). PS3.8 9.3.2.
  if (len >= 8 && d[0] == 0x01 && d[1] == 0x00 && d[6] == 0x00 && d[7] == 0x01) return App::kDicom;
  return App::kUnknown;
}

const char* AppName(App a) {
  switch (a) {
    case App::kHl7: return "hl7";
    case App::kDicom: return "dicom";
    case App::kUnknown: break;
  }
  return "unknown";
}

bool ParseApp(const std::string& name, App* out) {
  if (name == "hl7") *out = App::kHl7;
  else if (name == "dicom") *out = App::kDicom;
  else return false;
  return true;
}

std::unique_ptr<Segmentation> Segmentation::Build(const config::SegmentationConfig& cfg,
                                                  const std::vector<std::string>& pair_names, std::string* error,
                                                  const policy::BuildOptions& options) {
  std::unique_ptr<Segmentation> s(new Segmentation());
  s->active_ = !cfg.zones.empty() || !cfg.policy.empty();
  s->zones_.emplace_back();  // id 0: no zone (allows; no monitor)
  s->zone_cfg_.emplace_back();
  s->zone_pair_ids_.emplace_back();
  std::unordered_map<std::string, uint16_t> zone_id;
  for (const auto& z : cfg.zones) {
    Zone zone;
    zone.name = z.name;
    zone.default_action = ToAction(z.default_action);
    zone.monitor = z.monitor;
    zone_id[z.name] = uint16_t(s->zones_.size());
    s->zones_.push_back(zone);
    s->zone_cfg_.push_back(z);
    std::vector<int16_t> pairs;
    for (const auto& p : z.pairs) {
      auto it = std::find(pair_names.begin(), pair_names.end(), p);
      if (it != pair_names.end()) pairs.push_back(int16_t(it - pair_names.begin()));
    }
    s->zone_pair_ids_.push_back(std::move(pairs));
  }
  for (const auto& d : cfg.devices) {
    StaticDevice dev;
    unsigned b[6];
    if (std::sscanf(d.mac.c_str(), "%2x:%2x:%2x:%2x:%2x:%2x", &b[0], &b[1], &b[2], &b[3], &b[4], &b[5]) != 6) {
      if (error) *error = "device " + d.mac + ": not a MAC address";
      return nullptr;
    }
    for (int i = 0; i < 6; ++i) dev.mac[i] = uint8_t(b[i]);
    dev.name = d.name;
    dev.device_class = d.device_class;
    dev.criticality = d.criticality;
    if (!d.zone.empty()) dev.zone = zone_id.at(d.zone);
    const uint32_t idx = uint32_t(s->devices_.size());
    s->device_by_mac_[MacKey(dev.mac.data())] = idx;
    for (const auto& ip : d.ips) s->device_by_ip_[AddrKey::Of(ip.addr.data())] = idx;
    s->devices_.push_back(std::move(dev));
  }

  // Each written rule expands into one classifier rule per (from, to, ports)
  // combination; its id is the written rule's index and its priority too, so the
  // first written rule that matches wins.
  std::vector<policy::PolicyRule> all;
  for (uint32_t i = 0; i < cfg.policy.size(); ++i) {
    const auto& r = cfg.policy[i];
    App app = App::kUnknown;
    if (!r.app.empty() && !ParseApp(r.app, &app)) {
      if (error) *error = r.where + ".app: '" + r.app + "' is not an application wardgate recognises (hl7, dicom)";
      return nullptr;
    }
    s->rules_.push_back(r);
    s->rule_app_.push_back(app);
    s->rule_zones_.push_back({r.from_zone.empty() ? kNoZone : zone_id.at(r.from_zone),
                              r.to_zone.empty() ? kNoZone : zone_id.at(r.to_zone)});
    policy::PolicyRule base;
    base.id = i;
    base.priority = i;
    base.proto = r.proto;
    base.action = ToAction(r.action);
    if (!r.from_zone.empty()) base.src_zone = policy::ZoneRange::Only(zone_id.at(r.from_zone));
    if (!r.to_zone.empty()) base.dst_zone = policy::ZoneRange::Only(zone_id.at(r.to_zone));
    const std::vector<config::Prefix> any_prefix(1);
    const auto& froms = r.from_cidrs.empty() ? any_prefix : r.from_cidrs;
    const auto& tos = r.to_cidrs.empty() ? any_prefix : r.to_cidrs;
    const std::vector<config::PortSpan> any_port(1);
    const auto& ports = r.ports.empty() ? any_port : r.ports;
    for (size_t fi = 0; fi < froms.size(); ++fi) {
      for (size_t ti = 0; ti < tos.size(); ++ti) {
        policy::PolicyRule pr = base;
        if (!r.from_cidrs.empty()) pr.src = ToPrefix(froms[fi]);
        if (!r.to_cidrs.empty()) pr.dst = ToPrefix(tos[ti]);
        if (pr.src.family != policy::Family::kAny && pr.dst.family != policy::Family::kAny &&
            pr.src.family != pr.dst.family) {
          continue;  // an IPv4 source never talks to an IPv6 destination
        }
        for (const auto& p : ports) {
          pr.dport = {p.lo, p.hi};
          all.push_back(pr);
        }
      }
    }
  }
  // The classifier of every rule decides a new flow provisionally; once the client's
  // first bytes name the application, the classifier of the rules without `app:` plus
  // those naming that application decides for good.
  auto build = [&](const std::vector<policy::PolicyRule>& rules, std::unique_ptr<policy::PolicyClassifier>* out) {
    if (rules.empty()) return true;
    std::string why;
    *out = policy::PolicyClassifier::Build(rules, options, &why);
    if (!*out && error) *error = "policy: " + why;
    return bool(*out);
  };
  if (!build(all, &s->classifier_)) return nullptr;
  for (App app : {App::kUnknown, App::kHl7, App::kDicom}) {
    std::vector<policy::PolicyRule> subset;
    for (const auto& r : all) {
      if (s->rule_app_[r.id] == App::kUnknown || s->rule_app_[r.id] == app) subset.push_back(r);
    }
    if (subset.size() == all.size()) continue;  // the same as classifier_
    if (!build(subset, &s->by_app_[size_t(app)])) return nullptr;
  }
  s->remediation_ = cfg.quarantine.remediation;
  s->remediation_dhcp_ = cfg.quarantine.remediation_dhcp;
  s->remediation_dns_ = cfg.quarantine.remediation_dns;
  return s;
}

const policy::ClassifierStats& Segmentation::classifier_stats() const {
  static const policy::ClassifierStats kNone;
  return classifier_ ? classifier_->stats() : kNone;
}

const StaticDevice* Segmentation::DeviceByMac(const uint8_t* mac) const {
  if (device_by_mac_.empty()) return nullptr;
  auto it = device_by_mac_.find(MacKey(mac));
  return it == device_by_mac_.end() ? nullptr : &devices_[it->second];
}

const StaticDevice* Segmentation::DeviceByIp(const std::array<uint8_t, 16>& addr) const {
  if (device_by_ip_.empty()) return nullptr;
  auto it = device_by_ip_.find(AddrKey::Of(addr.data()));
  return it == device_by_ip_.end() ? nullptr : &devices_[it->second];
}

uint16_t Segmentation::ZoneOf(const End& e) const {
  const StaticDevice* dev = e.mac ? DeviceByMac(e.mac) : nullptr;
  if (dev && dev->zone != kNoZone) return dev->zone;
  for (uint16_t z = 1; z < zone_cfg_.size(); ++z) {
    const auto& zc = zone_cfg_[z];
    const auto& pairs = zone_pair_ids_[z];
    if (e.pair != kNoPair && std::find(pairs.begin(), pairs.end(), e.pair) != pairs.end()) return z;
    if (e.vlan != 0 && std::find(zc.vlans.begin(), zc.vlans.end(), e.vlan) != zc.vlans.end()) return z;
    if (e.addr) {
      for (const auto& p : zc.cidrs) {
        if (p.Contains(e.addr, e.v6)) return z;
      }
    }
    if (dev && !dev->device_class.empty() &&
        std::find(zc.classes.begin(), zc.classes.end(), dev->device_class) != zc.classes.end()) {
      return z;
    }
  }
  return kNoZone;
}

std::optional<uint32_t> Segmentation::ClassifyWith(const policy::PolicyClassifier* c,
                                                   const policy::FlowTuple& t) const {
  if (!c) return std::nullopt;
  auto idx = c->Classify(t);
  if (!idx) return std::nullopt;
  return c->rule(*idx).id;
}

Decision Segmentation::Decide(const End& client, const End& server, uint8_t proto, uint16_t sport, uint16_t dport,
                              std::optional<App> app) const {
  Decision d;
  d.src_zone = ZoneOf(client);
  d.dst_zone = ZoneOf(server);
  policy::FlowTuple t;
  std::memcpy(t.src.data(), client.addr, 16);
  std::memcpy(t.dst.data(), server.addr, 16);
  t.v6 = client.v6;
  t.src_zone = d.src_zone;
  t.dst_zone = d.dst_zone;
  t.proto = proto;
  t.sport = sport;
  t.dport = dport;
  std::optional<uint32_t> rule;
  if (!app) {
    rule = ClassifyWith(classifier_.get(), t);
    if (rule && rule_app_[*rule] != App::kUnknown) {
      // A rule naming an application: the handshake passes, the client's first bytes
      // decide (a deny rule for hl7 must not deny the flow before it shows hl7).
      d.app_check = true;
      d.rule = int32_t(*rule);
      d.action = policy::Action::kAllow;
      d.explicit_allow = rules_[*rule].action != config::PolicyAction::kDeny;  // pending confirmation
      return d;
    }
  } else {
    const auto* c = by_app_[size_t(*app)].get();
    rule = ClassifyWith(c ? c : classifier_.get(), t);
  }
  if (rule) {
    d.rule = int32_t(*rule);
    d.action = ToAction(rules_[*rule].action);
    d.explicit_allow = d.action != policy::Action::kDeny;
    // Monitor mode belongs to the zones that deny: the rule's own zones (both ends'
    // when it names none).
    const auto [from, to] = rule_zones_[*rule];
    if (from == kNoZone && to == kNoZone) {
      d.monitor = zones_[d.src_zone].monitor && zones_[d.dst_zone].monitor;
    } else {
      d.monitor = (from == kNoZone || zones_[from].monitor) && (to == kNoZone || zones_[to].monitor);
    }
    return d;
  }
  const Zone& a = zones_[d.src_zone];
  const Zone& b = zones_[d.dst_zone];
  d.action = Severity(a.default_action) >= Severity(b.default_action) ? a.default_action : b.default_action;
  // A zone in monitor mode reports what its default would deny; an enforcing zone's
  // default still holds when the other end is in monitor mode.
  d.monitor = (a.default_action != policy::Action::kDeny || a.monitor) &&
              (b.default_action != policy::Action::kDeny || b.monitor);
  return d;
}

bool Segmentation::Remediation(const parse::PacketView& v, const uint8_t* peer_addr, bool device_sent) const {
  const bool v6 = v.l3 == parse::L3::kIpv6;
  for (const auto& p : remediation_) {
    if (p.Contains(peer_addr, v6)) return true;
  }
  if (v.ip_proto != parse::kProtoUdp) return false;
  // DHCP and DNS in their own direction only (client port to server port and back), UDP
  // only: not a way to any server on any port pair.
  const uint16_t dev_port = device_sent ? v.src_port : v.dst_port;
  const uint16_t peer_port = device_sent ? v.dst_port : v.src_port;
  if (remediation_dhcp_ && ((dev_port == 68 && peer_port == 67) || (dev_port == 546 && peer_port == 547))) return true;
  if (remediation_dns_ && peer_port == 53) return true;
  return false;
}

void QuarantineSet::AddMac(const Mac& mac, Quarantined q) {
  if (2 * (n_macs_ + 1) > slots_.size()) {  // grow (control thread, while building)
    std::vector<Entry> old = std::move(slots_);
    slots_.assign(std::max<size_t>(16, old.size() * 2), Entry{});
    mask_ = slots_.size() - 1;
    n_macs_ = 0;
    for (const auto& e : old) {
      if (e.key) {
        size_t i = Slot(e.key);
        while (slots_[i].key) i = (i + 1) & mask_;
        slots_[i] = e;
        ++n_macs_;
      }
    }
  }
  const uint64_t key = MacKey(mac.data()) + 1;
  size_t i = Slot(key);
  while (slots_[i].key && slots_[i].key != key) i = (i + 1) & mask_;
  if (!slots_[i].key) ++n_macs_;
  slots_[i] = {key, q};
}

}  // namespace wardgate::segment
