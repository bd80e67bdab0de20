#include "dataplane/config/segmentation.h"

#include <cstdio>
#include <cstdlib>
#include <cstring>

#include <arpa/inet.h>

#include <algorithm>
#include <map>
#include <set>

#include "dataplane/config/yaml_util.h"

namespace wardgate::config {
namespace {

using yaml::Bool;
using yaml::CheckKeys;
using yaml::Join;
using yaml::String;
using yaml::Uint;

std::string Idx(const std::string& path, size_t i) { return path + "[" + std::to_string(i) + "]"; }


// A scalar or a list of scalars, as strings.
std::vector<std::string> Strings(const YAML::Node& node, const std::string& path) {
  std::vector<std::string> out;
  if (node.IsScalar()) {
    out.push_back(node.Scalar());
  } else if (node.IsSequence()) {
    for (size_t i = 0; i < node.size(); ++i) out.push_back(String(node[i], Idx(path, i)));
  } else {
    throw ConfigError(path, "must be a value or a list");
  }
  return out;
}

std::vector<Prefix> Prefixes(const YAML::Node& node, const std::string& path) {
  std::vector<Prefix> out;
  const auto items = Strings(node, path);
  for (size_t i = 0; i < items.size(); ++i) {
    Prefix p;
    std::string why;
    if (!ParsePrefix(items[i], &p, &why)) {
      throw ConfigError(items.size() > 1 || node.IsSequence() ? Idx(path, i) : path,
                        "'" + items[i] + "' is not an address or prefix (" + why + "; e.g. 10.77.0.0/24, fd77::/64)");
    }
    out.push_back(p);
  }
  return out;
}

PolicyAction Action(const YAML::Node& node, const std::string& path) {
  const auto t = String(node, path);
  if (t == "allow") return PolicyAction::kAllow;
  if (t == "deny") return PolicyAction::kDeny;
  if (t == "alert") return PolicyAction::kAlert;
  throw ConfigError(path, "must be allow, deny or alert, got '" + t + "'");
}

uint8_t Proto(const YAML::Node& node, const std::string& path) {
  const auto t = String(node, path);
  if (t == "any") return 0;
  if (t == "tcp") return 6;
  if (t == "udp") return 17;
  if (t == "icmp") return 1;
  if (t == "icmpv6") return 58;
  return Uint<uint8_t>(node, path, 1, 255);
}

std::vector<PortSpan> Ports(const YAML::Node& node, const std::string& path) {
  std::vector<PortSpan> out;
  const auto items = Strings(node, path);
  for (size_t i = 0; i < items.size(); ++i) {
    const std::string& t = items[i];
    const std::string where = node.IsSequence() ? Idx(path, i) : path;
    auto num = [&](const std::string& s) {
      if (s.empty() || s.size() > 5 || !std::all_of(s.begin(), s.end(), ::isdigit) || std::stoul(s) > 65535) {
        throw ConfigError(where, "'" + t + "' is not a port or a range N-M");
      }
      return static_cast<uint16_t>(std::stoul(s));
    };
    const size_t dash = t.find('-');
    PortSpan span;
    span.lo = num(t.substr(0, dash));
    span.hi = dash == std::string::npos ? span.lo : num(t.substr(dash + 1));
    if (span.lo > span.hi) throw ConfigError(where, "range '" + t + "' is empty");
    out.push_back(span);
  }
  return out;
}

// Does `outer` match everything `inner` matches? (empty = any)
bool PrefixesCover(const std::vector<Prefix>& outer, const std::vector<Prefix>& inner) {
  if (outer.empty()) return true;
  if (inner.empty()) return false;
  return std::all_of(inner.begin(), inner.end(), [&](const Prefix& p) {
    return std::any_of(outer.begin(), outer.end(), [&](const Prefix& o) { return o.Covers(p); });
  });
}
bool PortsCover(const std::vector<PortSpan>& outer, const std::vector<PortSpan>& inner) {
  if (outer.empty()) return true;
  if (inner.empty()) return false;
  return std::all_of(inner.begin(), inner.end(), [&](const PortSpan& p) {
    return std::any_of(outer.begin(), outer.end(), [&](const PortSpan& o) { return o.lo <= p.lo && p.hi <= o.hi; });
  });
}
bool Covers(const PolicyRuleConfig& a, const PolicyRuleConfig& b) {
  return (a.from_zone.empty() || a.from_zone == b.from_zone) && (a.to_zone.empty() || a.to_zone == b.to_zone) &&
         PrefixesCover(a.from_cidrs, b.from_cidrs) && PrefixesCover(a.to_cidrs, b.to_cidrs) &&
         (a.proto == 0 || a.proto == b.proto) && PortsCover(a.ports, b.ports) && (a.app.empty() || a.app == b.app);
}

// Rules apply first match wins: a later rule covered by an earlier one never applies.
// With another action that is a contradiction; with the same action, dead weight.
void CheckOverlaps(const std::vector<PolicyRuleConfig>& rules) {
  for (size_t j = 0; j < rules.size(); ++j) {
    for (size_t i = 0; i < j; ++i) {
      if (!Covers(rules[i], rules[j])) continue;
      const bool same = rules[i].action == rules[j].action;
      throw ConfigError(rules[j].where, same ? "never applies: " + rules[i].where + " already matches all of its traffic"
                                             : std::string("contradicts ") + rules[i].where + ", which matches all of its traffic first (" +
                                                   PolicyActionName(rules[i].action) + " vs " +
                                                   PolicyActionName(rules[j].action) + ")");
    }
  }
}

std::string Mac(const YAML::Node& node, const std::string& path) {
  std::string t = String(node, path);
  std::transform(t.begin(), t.end(), t.begin(), [](unsigned char c) { return char(std::tolower(c)); });
  bool ok = t.size() == 17;
  for (size_t i = 0; ok && i < t.size(); ++i) {
    ok = i % 3 == 2 ? t[i] == ':' : std::isxdigit(static_cast<unsigned char>(t[i])) != 0;
  }
  if (!ok) throw ConfigError(path, "'" + node.Scalar() + "' is not a MAC address (aa:bb:cc:dd:ee:ff)");
  return t;
}

QuarantineLevel Level(const YAML::Node& node, const std::string& path) {
  const auto t = String(node, path);
  if (t == "isolate") return QuarantineLevel::kIsolate;
  if (t == "contain") return QuarantineLevel::kContain;
  throw ConfigError(path, "must be isolate or contain, got '" + t + "'");
}

}  // namespace

bool ParsePrefix(const std::string& text, Prefix* out, std::string* why) {
  auto fail = [&](const char* reason) {
    if (why) *why = reason;
    return false;
  };
  const size_t slash = text.find('/');
  const std::string addr = text.substr(0, slash);
  Prefix p;
  p.v6 = addr.find(':') != std::string::npos;
  if (inet_pton(p.v6 ? AF_INET6 : AF_INET, addr.c_str(), p.addr.data()) != 1) {
    return fail("not an IPv4 or IPv6 address");
  }
  const int max = p.v6 ? 128 : 32;
  int len = max;
  if (slash != std::string::npos) {
    const std::string l = text.substr(slash + 1);
    if (l.empty() || l.size() > 3 || !std::all_of(l.begin(), l.end(), ::isdigit)) {
      return fail("prefix length is not a number");
    }
    len = std::stoi(l);
    if (len > max) {
      if (why) *why = "prefix length " + std::to_string(len) + " exceeds " + std::to_string(max);
      return false;
    }
  }
  p.len = static_cast<uint8_t>(len);
  for (int bit = len; bit < max; ++bit) {
    if (p.addr[bit / 8] & (0x80 >> (bit % 8))) return fail("host bits set beyond the prefix length");
  }
  *out = p;
  return true;
}

bool ValidName(const std::string& n) {
  if (n.empty() || n.size() > 64) return false;
  return std::all_of(n.begin(), n.end(), [](char c) {
    return (c >= 'a' && c <= 'z') || (c >= '0' && c <= '9') || c == '-' || c == '_';
  });
}

bool Prefix::Contains(const uint8_t* a, bool is_v6) const {
  if (v6 != is_v6) return false;
  const int full = len / 8, rest = len % 8;
  if (std::memcmp(addr.data(), a, full) != 0) return false;
  if (rest == 0) return true;
  const uint8_t mask = uint8_t(0xff << (8 - rest));
  return (addr[full] & mask) == (a[full] & mask);
}

bool Prefix::Covers(const Prefix& inner) const { return len <= inner.len && Contains(inner.addr.data(), inner.v6); }

const char* PolicyActionName(PolicyAction a) {
  switch (a) {
    case PolicyAction::kAllow: return "allow";
    case PolicyAction::kDeny: return "deny";
    case PolicyAction::kAlert: return "alert";
  }
  return "allow";
}

SegmentationConfig LoadSegmentation(const YAML::Node& root, const std::vector<std::string>& pair_names) {
  SegmentationConfig s;
  {
    // The policy's version: FNV-1a of its zones and rules as written (stable across
    // builds), so the snapshot and status say which policy was applied.
    std::string text;
    for (const char* k : {"zones", "policy", "devices"}) {
      if (root[k]) text += YAML::Dump(root[k]) + "\n";
    }
    uint64_t h = 1469598103934665603ull;
    for (unsigned char c : text) h = (h ^ c) * 1099511628211ull;
    char buf[32];
    std::snprintf(buf, sizeof(buf), "config-%016llx", static_cast<unsigned long long>(h));
    s.policy_version = buf;
  }
  if (const auto inv = root["inventory"]) {
    CheckKeys(inv, "inventory", {"capacity"});
    if (inv["capacity"]) {
      const std::string t = inv["capacity"].IsScalar() ? inv["capacity"].Scalar() : "";
      char* end = nullptr;
      const unsigned long long v = std::strtoull(t.c_str(), &end, 10);
      if (t.empty() || *end || v < 16 || v > (1u << 20)) {
        throw ConfigError("inventory.capacity", "must be a number of devices from 16 to 1048576, got '" + t + "'");
      }
      s.device_capacity = uint32_t(v);
    }
  }
  std::set<std::string> zone_names;
  if (const auto zones = root["zones"]) {
    if (!zones.IsSequence()) throw ConfigError("zones", "must be a list");
    for (size_t i = 0; i < zones.size(); ++i) {
      const std::string path = Idx("zones", i);
      const YAML::Node z = zones[i];
      CheckKeys(z, path, {"name", "pairs", "vlans", "cidrs", "classes", "default", "mode"});
      ZoneConfig zc;
      if (!z["name"]) throw ConfigError(Join(path, "name"), "missing");
      zc.name = String(z["name"], Join(path, "name"));
      if (!ValidName(zc.name)) throw ConfigError(Join(path, "name"), "'" + zc.name + "': use a-z, 0-9, - and _");
      if (zc.name == "any") throw ConfigError(Join(path, "name"), "'any' is reserved (it means every zone)");
      if (!zone_names.insert(zc.name).second) throw ConfigError(Join(path, "name"), "zone '" + zc.name + "' defined twice");
      if (z["pairs"]) {
        zc.pairs = Strings(z["pairs"], Join(path, "pairs"));
        for (const auto& p : zc.pairs) {
          if (std::find(pair_names.begin(), pair_names.end(), p) == pair_names.end()) {
            throw ConfigError(Join(path, "pairs"), "no port pair named '" + p + "'");
          }
        }
      }
      if (z["vlans"]) {
        const auto v = z["vlans"];
        if (!v.IsSequence()) throw ConfigError(Join(path, "vlans"), "must be a list of VLAN ids");
        for (size_t k = 0; k < v.size(); ++k) zc.vlans.push_back(Uint<uint16_t>(v[k], Idx(Join(path, "vlans"), k), 1, 4094));
      }
      if (z["cidrs"]) zc.cidrs = Prefixes(z["cidrs"], Join(path, "cidrs"));
      if (z["classes"]) zc.classes = Strings(z["classes"], Join(path, "classes"));
      for (const auto& c : zc.classes) {
        if (!ValidName(c)) throw ConfigError(Join(path, "classes"), "'" + c + "' is not a device class name");
      }
      if (z["default"]) zc.default_action = Action(z["default"], Join(path, "default"));
      if (z["mode"]) {
        const auto m = String(z["mode"], Join(path, "mode"));
        if (m != "enforce" && m != "monitor") throw ConfigError(Join(path, "mode"), "must be enforce or monitor");
        zc.monitor = m == "monitor";
      }
      if (zc.pairs.empty() && zc.vlans.empty() && zc.cidrs.empty() && zc.classes.empty()) {
        throw ConfigError(path, "zone '" + zc.name + "' matches nothing: give pairs, vlans, cidrs or classes");
      }
      s.zones.push_back(std::move(zc));
    }
  }
  auto zone_ref = [&](const YAML::Node& n, const std::string& path) -> std::string {
    const auto name = String(n, path);
    if (name == "any") return "";
    if (!zone_names.count(name)) throw ConfigError(path, "no zone named '" + name + "'");
    return name;
  };
  if (const auto policy = root["policy"]) {
    if (!policy.IsSequence()) throw ConfigError("policy", "must be a list of rules");
    for (size_t i = 0; i < policy.size(); ++i) {
      const std::string path = Idx("policy", i);
      const YAML::Node r = policy[i];
      CheckKeys(r, path, {"from", "to", "from_cidrs", "to_cidrs", "proto", "ports", "app", "action"});
      PolicyRuleConfig pr;
      pr.where = path;
      if (r["from"]) pr.from_zone = zone_ref(r["from"], Join(path, "from"));
      if (r["to"]) pr.to_zone = zone_ref(r["to"], Join(path, "to"));
      if (r["from_cidrs"]) pr.from_cidrs = Prefixes(r["from_cidrs"], Join(path, "from_cidrs"));
      if (r["to_cidrs"]) pr.to_cidrs = Prefixes(r["to_cidrs"], Join(path, "to_cidrs"));
      if (r["proto"]) pr.proto = Proto(r["proto"], Join(path, "proto"));
      if (r["ports"]) {
        if (pr.proto != 6 && pr.proto != 17) throw ConfigError(Join(path, "ports"), "ports need proto tcp or udp");
        pr.ports = Ports(r["ports"], Join(path, "ports"));
      }
      if (r["app"]) {
        pr.app = String(r["app"], Join(path, "app"));
        // Only what the dataplane recognises on a flow's first bytes (dataplane/segment).
        if (pr.app != "hl7" && pr.app != "dicom") {
          throw ConfigError(Join(path, "app"), "'" + pr.app + "' is not an application wardgate recognises (hl7, dicom)");
        }
        if (pr.proto != 6) throw ConfigError(Join(path, "app"), "an application needs proto tcp");
      }
      if (!r["action"]) throw ConfigError(Join(path, "action"), "missing (allow, deny or alert)");
      pr.action = Action(r["action"], Join(path, "action"));
      s.policy.push_back(std::move(pr));
    }
    CheckOverlaps(s.policy);
  }
  if (const auto devices = root["devices"]) {
    if (!devices.IsSequence()) throw ConfigError("devices", "must be a list");
    std::set<std::string> macs;
    for (size_t i = 0; i < devices.size(); ++i) {
      const std::string path = Idx("devices", i);
      const YAML::Node d = devices[i];
      CheckKeys(d, path, {"mac", "name", "class", "criticality", "zone", "ips"});
      DeviceConfig dc;
      if (!d["mac"]) throw ConfigError(Join(path, "mac"), "missing");
      dc.mac = Mac(d["mac"], Join(path, "mac"));
      if (!macs.insert(dc.mac).second) throw ConfigError(Join(path, "mac"), dc.mac + " listed twice");
      if (d["name"]) dc.name = String(d["name"], Join(path, "name"));
      if (d["class"]) {
        dc.device_class = String(d["class"], Join(path, "class"));
        if (!ValidName(dc.device_class)) throw ConfigError(Join(path, "class"), "'" + dc.device_class + "' is not a device class name");
      }
      if (d["criticality"]) {
        const auto c = String(d["criticality"], Join(path, "criticality"));
        if (c == "life-critical") dc.criticality = Criticality::kLifeCritical;
        else if (c == "clinical") dc.criticality = Criticality::kClinical;
        else if (c == "general") dc.criticality = Criticality::kGeneral;
        else throw ConfigError(Join(path, "criticality"), "must be life-critical, clinical or general");
      }
      if (d["zone"]) dc.zone = zone_ref(d["zone"], Join(path, "zone"));
      if (d["ips"]) {
        dc.ips = Prefixes(d["ips"], Join(path, "ips"));
        for (const auto& p : dc.ips) {
          if (p.len != (p.v6 ? 128 : 32)) throw ConfigError(Join(path, "ips"), "a device's addresses are hosts, not prefixes");
        }
      }
      s.devices.push_back(std::move(dc));
    }
  }
  if (const auto h = root["hygiene"]) {
    CheckKeys(h, "hygiene", {"ip_options", "bad_tcp_options", "tunnels", "treck_icmp", "overlapping_fragments"});
    const std::pair<const char*, bool*> keys[] = {{"ip_options", &s.hygiene.ip_options},
                                                  {"bad_tcp_options", &s.hygiene.bad_tcp_options},
                                                  {"tunnels", &s.hygiene.tunnels},
                                                  {"treck_icmp", &s.hygiene.treck_icmp},
                                                  {"overlapping_fragments", &s.hygiene.overlapping_fragments}};
    for (const auto& [k, v] : keys) {
      if (h[k]) *v = Bool(h[k], Join("hygiene", k));
    }
  }
  if (const auto q = root["quarantine"]) {
    CheckKeys(q, "quarantine", {"remediation", "remediation_dhcp", "remediation_dns", "default_level",
                                "life_critical_level", "snapshot", "rule_response"});
    if (q["remediation"]) s.quarantine.remediation = Prefixes(q["remediation"], "quarantine.remediation");
    if (q["remediation_dhcp"]) s.quarantine.remediation_dhcp = Bool(q["remediation_dhcp"], "quarantine.remediation_dhcp");
    if (q["remediation_dns"]) s.quarantine.remediation_dns = Bool(q["remediation_dns"], "quarantine.remediation_dns");
    if (q["default_level"]) s.quarantine.default_level = Level(q["default_level"], "quarantine.default_level");
    if (q["life_critical_level"]) {
      s.quarantine.life_critical_default = Level(q["life_critical_level"], "quarantine.life_critical_level");
    }
    if (q["snapshot"]) s.quarantine.snapshot = String(q["snapshot"], "quarantine.snapshot");
    if (const auto rr = q["rule_response"]) {
      if (!rr.IsMap()) throw ConfigError("quarantine.rule_response", "must map device classes to alert, contain or isolate");
      for (const auto& kv : rr) {
        const std::string cls = kv.first.Scalar();
        const std::string path = Join("quarantine.rule_response", cls);
        if (!ValidName(cls)) throw ConfigError(path, "'" + cls + "' is not a device class name");
        const std::string v = kv.second.IsScalar() ? kv.second.Scalar() : "";
        RuleResponse r;
        if (v == "alert") r = RuleResponse::kAlert;
        else if (v == "contain") r = RuleResponse::kContain;
        else if (v == "isolate") r = RuleResponse::kIsolate;
        else throw ConfigError(path, "must be alert, contain or isolate, got '" + v + "'");
        s.quarantine.rule_response[cls] = r;
      }
    }
  }
  return s;
}

}  // namespace wardgate::config
