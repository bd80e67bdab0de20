#include "dataplane/events/alert.h"

#include <arpa/inet.h>

#include <ctime>
#include <nlohmann/json.hpp>

namespace wardgate::events {
namespace {

std::string Address(const std::array<uint8_t, 16>& a, bool v6) {
  char buf[INET6_ADDRSTRLEN] = {};
  inet_ntop(v6 ? AF_INET6 : AF_INET, a.data(), buf, sizeof(buf));
  return buf;
}

std::string ProtoName(uint8_t p) {
  switch (p) {
    case 6: return "TCP";
    case 17: return "UDP";
    case 1: return "ICMP";
    case 58: return "IPv6-ICMP";
    default: return std::to_string(p);
  }
}

std::string Base64(const uint8_t* data, size_t len) {
  static constexpr char kAlphabet[] = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/";
  std::string out;
  out.reserve((len + 2) / 3 * 4);
  for (size_t i = 0; i < len; i += 3) {
    const uint32_t n = uint32_t(data[i]) << 16 | (i + 1 < len ? uint32_t(data[i + 1]) << 8 : 0) |
                       (i + 2 < len ? data[i + 2] : 0);
    out += kAlphabet[(n >> 18) & 63];
    out += kAlphabet[(n >> 12) & 63];
    out += i + 1 < len ? kAlphabet[(n >> 6) & 63] : '=';
    out += i + 2 < len ? kAlphabet[n & 63] : '=';
  }
  return out;
}

// Suricata's payload_printable: printable ASCII kept, everything else '.'.
std::string Printable(const uint8_t* data, size_t len) {
  std::string out(len, '.');
  for (size_t i = 0; i < len; ++i) {
    if (data[i] >= 0x20 && data[i] < 0x7f) out[i] = char(data[i]);
    else if (data[i] == '\n' || data[i] == '\r' || data[i] == '\t') out[i] = char(data[i]);
  }
  return out;
}

const char* SourceName(PacketSource s) {
  switch (s) {
    case PacketSource::kWire: return "wire/pcap";
    case PacketSource::kStream: return "stream";
    case PacketSource::kStreamFlowTimeout: return "stream (flow timeout)";
  }
  return "wire/pcap";
}

nlohmann::ordered_json Common(const AlertRecord& r, const char* event_type) {
  nlohmann::ordered_json j;
  j["timestamp"] = EveTimestamp(r.ts_ns);
  if (r.flow_id) j["flow_id"] = r.flow_id;
  if (r.pcap_cnt) j["pcap_cnt"] = r.pcap_cnt;
  j["event_type"] = event_type;
  j["src_ip"] = Address(r.src_addr, r.v6);
  if (r.ip_proto == 6 || r.ip_proto == 17) j["src_port"] = r.src_port;
  j["dest_ip"] = Address(r.dst_addr, r.v6);
  if (r.ip_proto == 6 || r.ip_proto == 17) j["dest_port"] = r.dst_port;
  j["proto"] = ProtoName(r.ip_proto);
  j["pkt_src"] = SourceName(r.source);
  return j;
}

}  // namespace

std::string EveTimestamp(uint64_t ts_ns) {
  const time_t secs = static_cast<time_t>(ts_ns / 1000000000ull);
  const unsigned micros = unsigned((ts_ns % 1000000000ull) / 1000);
  std::tm tm{};
  gmtime_r(&secs, &tm);
  char buf[64];
  const size_t n = std::strftime(buf, sizeof(buf), "%Y-%m-%dT%H:%M:%S", &tm);
  std::snprintf(buf + n, sizeof(buf) - n, ".%06u+0000", micros);
  return buf;
}

std::string AlertJson(const AlertRecord& r, bool with_payload, bool with_packet) {
  auto j = Common(r, "alert");
  const auto& rule = *r.rule;
  nlohmann::ordered_json a;
  a["action"] = r.blocked ? "blocked" : "allowed";
  a["gid"] = rule.gid;
  a["signature_id"] = rule.sid;
  a["rev"] = rule.rev;
  a["signature"] = rule.msg;
  a["category"] = rule.category;
  a["severity"] = rule.priority;
  j["alert"] = a;
  if (with_payload && r.payload_len) {
    j["payload"] = Base64(r.payload.data(), r.payload_len);
    j["payload_printable"] = Printable(r.payload.data(), r.payload_len);
  }
  if (with_packet && r.packet_len) j["packet"] = Base64(r.packet.data(), r.packet_len);
  return j.dump(-1, ' ', false, nlohmann::json::error_handler_t::replace);
}

std::string AnomalyJson(const AlertRecord& r) {
  auto j = Common(r, "anomaly");
  const std::string name = r.anomaly ? r.anomaly : "unknown";
  const auto dot = name.find('.');
  nlohmann::ordered_json a;
  a["type"] = dot == std::string::npos ? "stream" : name.substr(0, dot);
  a["event"] = dot == std::string::npos ? name : name.substr(dot + 1);
  // The clinical default: the flow keeps flowing, only its inspection stops.
  a["action"] = "inspection_stopped";
  j["anomaly"] = a;
  return j.dump(-1, ' ', false, nlohmann::json::error_handler_t::replace);
}

std::string PolicyJson(const AlertRecord& r) {
  auto j = Common(r, "policy");
  j.erase("pkt_src");
  static constexpr const char* kActions[] = {"allow", "deny", "alert"};
  nlohmann::ordered_json p;
  p["action"] = kActions[r.policy_action < 3 ? r.policy_action : 1];
  // Not enforced: a monitor-mode zone, the flow is forwarded and only reported.
  p["enforced"] = r.policy_enforced;
  p["rule"] = r.policy_rule >= 0 ? std::string(r.policy_where) : std::string("default");
  p["from_zone"] = r.from_zone;
  p["to_zone"] = r.to_zone;
  if (r.app && *r.app) p["app"] = r.app;
  j["policy"] = p;
  return j.dump(-1, ' ', false, nlohmann::json::error_handler_t::replace);
}

std::string DropJson(const AlertRecord& r) {
  auto j = Common(r, "drop");
  nlohmann::ordered_json d;
  d["reason"] = "rules";
  d["signature_id"] = r.rule ? r.rule->sid : 0;
  j["drop"] = d;
  return j.dump(-1, ' ', false, nlohmann::json::error_handler_t::replace);
}

}  // namespace wardgate::events
