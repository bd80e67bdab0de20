#include "dataplane/config/config.h"

#include "dataplane/config/yaml_util.h"

#include <algorithm>
#include <yaml-cpp/yaml.h>

#include <cctype>
#include <limits>
#include <set>

namespace wardgate::config {
namespace {

using yaml::Bool;
using yaml::CheckKeys;
using yaml::Join;
using yaml::String;
using yaml::Uint;


PortConfig LoadPort(const YAML::Node& node, const std::string& path) {
  if (!node) throw ConfigError(path, "missing (give `vdev: DEVARGS` or `pci: ADDRESS`)");
  CheckKeys(node, path, {"vdev", "pci"});
  PortConfig port;
  if (node["vdev"]) port.vdev = String(node["vdev"], Join(path, "vdev"));
  if (node["pci"]) port.pci = String(node["pci"], Join(path, "pci"));
  if (port.vdev.empty() == port.pci.empty()) {
    throw ConfigError(path, "give exactly one of `vdev` or `pci`");
  }
  if (!port.vdev.empty() && port.vdev.rfind("net_", 0) != 0) {
    throw ConfigError(Join(path, "vdev"),
                      "'" + port.vdev + "' is not a DPDK net vdev (e.g. net_af_packet0,iface=eth1)");
  }
  return port;
}

Hugepages LoadHugepages(const YAML::Node& node, const std::string& path) {
  const auto text = String(node, path);
  if (text == "auto") return Hugepages::kAuto;
  if (text == "true" || text == "yes" || text == "on") return Hugepages::kOn;
  if (text == "false" || text == "no" || text == "off") return Hugepages::kOff;
  throw ConfigError(path, "must be auto, true or false, got '" + text + "'");
}

void LoadDetection(const YAML::Node& root, Config& c) {
  if (const auto r = root["rules"]) {
    CheckKeys(r, "rules", {"files", "lenient", "variables", "overrides", "threshold_file", "threshold_capacity",
                           "cache_dir", "action_order"});
    if (const auto ov = r["overrides"]) {
      if (!ov.IsSequence()) throw ConfigError("rules.overrides", "must be a list of paths");
      for (size_t i = 0; i < ov.size(); ++i) {
        c.rules.overrides.push_back(String(ov[i], "rules.overrides[" + std::to_string(i) + "]"));
      }
    }
    if (r["threshold_file"]) c.rules.threshold_file = String(r["threshold_file"], "rules.threshold_file");
    if (r["threshold_capacity"]) {
      c.rules.threshold_capacity = Uint<uint32_t>(r["threshold_capacity"], "rules.threshold_capacity", 1, 1u << 24);
    }
    if (r["cache_dir"]) c.rules.cache_dir = String(r["cache_dir"], "rules.cache_dir");
    if (const auto order = r["action_order"]) {
      if (!order.IsSequence() || order.size() != 4) {
        throw ConfigError("rules.action_order", "must list pass, drop, reject and alert, each once");
      }
      std::vector<std::string> names;
      for (size_t i = 0; i < 4; ++i) names.push_back(String(order[i], "rules.action_order"));
      for (const char* want : {"pass", "drop", "reject", "alert"}) {
        if (std::count(names.begin(), names.end(), want) != 1) {
          throw ConfigError("rules.action_order", std::string("must list pass, drop, reject and alert, each once (") +
                                                      want + " missing or repeated)");
        }
      }
      c.rules.action_order = names;
    }
    if (const auto files = r["files"]) {
      if (!files.IsSequence()) throw ConfigError("rules.files", "must be a list of paths");
      for (size_t i = 0; i < files.size(); ++i) {
        c.rules.files.push_back(String(files[i], "rules.files[" + std::to_string(i) + "]"));
      }
    }
    if (r["lenient"]) c.rules.lenient = Bool(r["lenient"], "rules.lenient");
    if (const auto vars = r["variables"]) {
      if (!vars.IsMap()) throw ConfigError("rules.variables", "must be a mapping NAME: value");
      for (const auto& kv : vars) {
        if (!kv.first.IsScalar()) throw ConfigError("rules.variables", "names must be plain");
        const auto name = kv.first.Scalar();
        c.rules.variables[name] = String(kv.second, "rules.variables." + name);
      }
    }
  }
  if (const auto st = root["stream"]) {
    CheckKeys(st, "stream", {"midstream", "window_bytes", "depth", "max_held_per_stream", "segment_pool",
                             "window_pool", "on_limit"});
    if (st["on_limit"]) {
      const auto v = String(st["on_limit"], "stream.on_limit");
      if (v == "bypass") c.stream.on_limit = LimitAction::kBypass;
      else if (v == "drop") c.stream.on_limit = LimitAction::kDrop;
      else throw ConfigError("stream.on_limit", "must be bypass or drop, got '" + v + "'");
    }
    if (st["midstream"]) c.stream.midstream = Bool(st["midstream"], "stream.midstream");
    if (st["window_bytes"]) c.stream.window_bytes = Uint<uint32_t>(st["window_bytes"], "stream.window_bytes", 0, 65535);
    if (st["depth"]) c.stream.depth = Uint<uint32_t>(st["depth"], "stream.depth", 0, 1u << 31);
    if (st["max_held_per_stream"]) {
      c.stream.max_held_per_stream = Uint<uint32_t>(st["max_held_per_stream"], "stream.max_held_per_stream", 1, 4096);
    }
    if (st["segment_pool"]) c.stream.segment_pool = Uint<uint32_t>(st["segment_pool"], "stream.segment_pool", 16, 1u << 24);
    if (st["window_pool"]) c.stream.window_pool = Uint<uint32_t>(st["window_pool"], "stream.window_pool", 16, 1u << 24);
  }
  if (const auto fl = root["flows"]) {
    CheckKeys(fl, "flows", {"capacity", "flowbits_capacity", "timeouts"});
    if (fl["capacity"]) c.flows.capacity = Uint<uint32_t>(fl["capacity"], "flows.capacity", 1024, 1u << 26);
    if (fl["flowbits_capacity"]) {
      c.flows.flowbits_capacity = Uint<uint32_t>(fl["flowbits_capacity"], "flows.flowbits_capacity", 1, 1u << 26);
    }
    if (const auto t = fl["timeouts"]) {
      CheckKeys(t, "flows.timeouts", {"new", "established", "closed", "udp", "icmp", "other"});
      const std::pair<const char*, uint32_t*> keys[] = {
          {"new", &c.flows.timeout_new_s},     {"established", &c.flows.timeout_established_s},
          {"closed", &c.flows.timeout_closed_s}, {"udp", &c.flows.timeout_udp_s},
          {"icmp", &c.flows.timeout_icmp_s},   {"other", &c.flows.timeout_other_s}};
      for (const auto& [k, dst] : keys) {
        if (t[k]) *dst = Uint<uint32_t>(t[k], std::string("flows.timeouts.") + k, 1, 86400 * 7);
      }
    }
  }
  if (const auto eve = root["eve"]) {
    CheckKeys(eve, "eve", {"file", "payload", "packet"});
    if (eve["file"]) c.eve.file = String(eve["file"], "eve.file");
    if (eve["payload"]) c.eve.payload = Bool(eve["payload"], "eve.payload");
    if (eve["packet"]) c.eve.packet = Bool(eve["packet"], "eve.packet");
  }
}

Config Load(const YAML::Node& root, bool offline) {
  Config c;
  if (!root || root.IsNull()) {
    if (offline) return OfflineDefaults();
    throw ConfigError("(top level)", "the file is empty");
  }
  CheckKeys(root, "", {"eal", "workers", "mtu", "pairs", "mempool", "queues", "idle", "link",
                       "control", "rules", "flows", "stream", "eve", "zones", "policy", "devices", "hygiene",
                       "quarantine", "inventory"});
  LoadDetection(root, c);
  if (offline && !root["pairs"]) {
    // A capture needs no ports: keep the offline defaults for everything port-related.
    Config o = OfflineDefaults();
    o.rules = c.rules;
    o.flows = c.flows;
    o.stream = c.stream;
    o.eve = c.eve;
    o.segmentation = LoadSegmentation(root, {});
    if (root["mtu"]) o.mtu = Uint<uint32_t>(root["mtu"], "mtu", 68, 9600);
    return o;
  }

  if (const auto eal = root["eal"]) {
    CheckKeys(eal, "eal", {"lcores", "hugepages", "memory_mb", "file_prefix", "args"});
    if (eal["lcores"]) c.eal.lcores = String(eal["lcores"], "eal.lcores");
    if (eal["hugepages"]) c.eal.hugepages = LoadHugepages(eal["hugepages"], "eal.hugepages");
    if (eal["memory_mb"]) c.eal.memory_mb = Uint<uint32_t>(eal["memory_mb"], "eal.memory_mb", 64, 1 << 20);
    if (eal["file_prefix"]) c.eal.file_prefix = String(eal["file_prefix"], "eal.file_prefix");
    if (const auto args = eal["args"]) {
      if (!args.IsSequence()) throw ConfigError("eal.args", "must be a list of strings");
      for (size_t i = 0; i < args.size(); ++i) {
        c.eal.args.push_back(String(args[i], "eal.args[" + std::to_string(i) + "]"));
      }
    }
  }
  if (root["workers"]) c.workers = Uint<uint32_t>(root["workers"], "workers", 1, 64);
  // 68: IPv4 minimum MTU (RFC 791); 9600: jumbo frames of common NICs.
  if (root["mtu"]) c.mtu = Uint<uint32_t>(root["mtu"], "mtu", 68, 9600);

  const auto pairs = root["pairs"];
  if (!pairs) throw ConfigError("pairs", "missing: at least one device/network port pair is needed");
  if (!pairs.IsSequence() || pairs.size() == 0) {
    throw ConfigError("pairs", "must be a non-empty list of {name, device, network}");
  }
  std::set<std::string> names, ethdevs;
  for (size_t i = 0; i < pairs.size(); ++i) {
    const std::string path = "pairs[" + std::to_string(i) + "]";
    CheckKeys(pairs[i], path, {"name", "device", "network"});
    PairConfig pair;
    pair.name = pairs[i]["name"] ? String(pairs[i]["name"], Join(path, "name"))
                                 : "pair" + std::to_string(i);
    if (!names.insert(pair.name).second) throw ConfigError(Join(path, "name"), "duplicate pair name '" + pair.name + "'");
    pair.device = LoadPort(pairs[i]["device"], Join(path, "device"));
    pair.network = LoadPort(pairs[i]["network"], Join(path, "network"));
    for (const auto* side : {&pair.device, &pair.network}) {
      const auto ethdev = side->EthdevName();
      const auto key = Join(path, side == &pair.device ? "device" : "network");
      if (!ethdevs.insert(ethdev).second) {
        throw ConfigError(key, "port '" + ethdev + "' is already used by another pair");
      }
    }
    c.pairs.push_back(std::move(pair));
  }

  if (const auto mp = root["mempool"]) {
    CheckKeys(mp, "mempool", {"mbufs", "cache"});
    if (mp["mbufs"]) c.mbufs = Uint<uint32_t>(mp["mbufs"], "mempool.mbufs", 1023, 1u << 24);
    // RTE_MEMPOOL_CACHE_MAX_SIZE is 512.
    if (mp["cache"]) c.mbuf_cache = Uint<uint32_t>(mp["cache"], "mempool.cache", 0, 512);
  }
  if (const auto q = root["queues"]) {
    CheckKeys(q, "queues", {"rx_descriptors", "tx_descriptors", "burst"});
    if (q["rx_descriptors"]) c.rx_descriptors = Uint<uint16_t>(q["rx_descriptors"], "queues.rx_descriptors", 64, 32768);
    if (q["tx_descriptors"]) c.tx_descriptors = Uint<uint16_t>(q["tx_descriptors"], "queues.tx_descriptors", 64, 32768);
    if (q["burst"]) c.burst = Uint<uint16_t>(q["burst"], "queues.burst", 1, 64);
  }
  if (const auto idle = root["idle"]) {
    CheckKeys(idle, "idle", {"spin_polls", "min_sleep_us", "max_sleep_us"});
    if (idle["spin_polls"]) c.idle.spin_polls = Uint<uint32_t>(idle["spin_polls"], "idle.spin_polls", 0, 1u << 30);
    if (idle["min_sleep_us"]) c.idle.min_sleep_us = Uint<uint32_t>(idle["min_sleep_us"], "idle.min_sleep_us", 0, 10000);
    if (idle["max_sleep_us"]) c.idle.max_sleep_us = Uint<uint32_t>(idle["max_sleep_us"], "idle.max_sleep_us", 0, 10000);
    if (c.idle.max_sleep_us < c.idle.min_sleep_us) {
      throw ConfigError("idle.max_sleep_us", "must be >= idle.min_sleep_us");
    }
  }
  if (const auto link = root["link"]) {
    CheckKeys(link, "link", {"wait_ms"});
    if (link["wait_ms"]) c.link_wait_ms = Uint<uint32_t>(link["wait_ms"], "link.wait_ms", 0, 600000);
  }
  if (const auto control = root["control"]) {
    CheckKeys(control, "control", {"socket"});
    if (control["socket"]) c.control_socket = String(control["socket"], "control.socket");
    // sun_path holds 108 bytes including the terminating NUL.
    if (c.control_socket.empty() || c.control_socket.size() > 107) {
      throw ConfigError("control.socket", "must be a path of 1 to 107 characters");
    }
  }
  const auto lcores = ParseLcoreList(c.eal.lcores);
  if (lcores.size() < c.workers + 1) {
    throw ConfigError("workers", std::to_string(c.workers) + " worker(s) need " +
                                     std::to_string(c.workers + 1) +
                                     " lcores (one for the control thread) but eal.lcores '" +
                                     c.eal.lcores + "' gives " + std::to_string(lcores.size()));
  }
  // Every port queue needs its descriptors filled plus a burst per worker in flight.
  const uint64_t needed = uint64_t(c.pairs.size()) * 2 * c.workers *
                              (c.rx_descriptors + c.tx_descriptors) +
                          uint64_t(c.workers) * (c.burst + c.mbuf_cache);
  if (c.mbufs < needed) {
    throw ConfigError("mempool.mbufs", "too small: " + std::to_string(c.mbufs) +
                                           " mbufs cannot fill the rx/tx rings of all ports (need at least " +
                                           std::to_string(needed) + ")");
  }
  std::vector<std::string> pair_names;
  for (const auto& p : c.pairs) pair_names.push_back(p.name);
  c.segmentation = LoadSegmentation(root, pair_names);
  return c;
}

// yaml-cpp may still throw on shapes the checks above did not foresee; report them as
// configuration errors rather than let them escape as something else.
Config LoadChecked(const YAML::Node& root, const std::string& where, bool offline) {
  try {
    return Load(root, offline);
  } catch (const YAML::Exception& e) {
    throw ConfigError(where.empty() ? "line " + std::to_string(e.mark.line + 1)
                                    : where + ":" + std::to_string(e.mark.line + 1),
                      e.msg);
  }
}

}  // namespace

std::string PortConfig::EthdevName() const {
  if (!pci.empty()) return pci;
  return vdev.substr(0, vdev.find(','));
}

std::vector<unsigned> ParseLcoreList(const std::string& list) {
  std::set<unsigned> cores;
  size_t pos = 0;
  auto bad = [&] { return ConfigError("eal.lcores", "'" + list + "' is not a core list like 0-3 or 0,2,4"); };
  auto number = [&](size_t& p) {
    size_t start = p;
    unsigned v = 0;
    while (p < list.size() && std::isdigit(static_cast<unsigned char>(list[p]))) {
      v = v * 10 + unsigned(list[p++] - '0');
      if (v > 1023) throw bad();
    }
    if (p == start) throw bad();
    return v;
  };
  if (list.empty()) throw bad();
  while (pos < list.size()) {
    const unsigned lo = number(pos);
    unsigned hi = lo;
    if (pos < list.size() && list[pos] == '-') hi = number(++pos);
    if (hi < lo) throw bad();
    for (unsigned v = lo; v <= hi; ++v) cores.insert(v);
    if (pos < list.size()) {
      if (list[pos] != ',') throw bad();
      if (++pos == list.size()) throw bad();
    }
  }
  return {cores.begin(), cores.end()};
}

Config LoadString(const std::string& yaml_text, bool offline) {
  YAML::Node root;
  try {
    root = YAML::Load(yaml_text);
  } catch (const YAML::Exception& e) {
    throw ConfigError("line " + std::to_string(e.mark.line + 1), "YAML syntax: " + e.msg);
  }
  return LoadChecked(root, "", offline);
}

Config LoadFile(const std::string& path, bool offline) {
  YAML::Node root;
  try {
    root = YAML::LoadFile(path);
  } catch (const YAML::BadFile&) {
    throw ConfigError(path, "cannot read the file");
  } catch (const YAML::Exception& e) {
    throw ConfigError(path + ":" + std::to_string(e.mark.line + 1), "YAML syntax: " + e.msg);
  }
  return LoadChecked(root, path, offline);
}

Config OfflineDefaults() {
  Config c;
  c.pairs.push_back({"offline", {"net_null0", ""}, {"net_null1", ""}});
  c.eal.hugepages = Hugepages::kOff;
  c.eal.memory_mb = 256;
  c.eal.lcores = "0";
  return c;
}

}  // namespace wardgate::config
