// The configuration loader: what a network engineer gets back for each mistake.
#include <gtest/gtest.h>

#include <fstream>
#include <string>

#include "dataplane/config/config.h"

namespace wardgate::config {
namespace {

constexpr const char* kMinimal = R"(
pairs:
  - name: ward
    device: { vdev: "net_af_packet0,iface=wg-dev0" }
    network: { vdev: "net_af_packet1,iface=wg-net0" }
)";

// Loads `yaml` expecting a ConfigError; returns its key.
std::string ErrorKey(const std::string& yaml, std::string* message = nullptr) {
  try {
    LoadString(yaml);
  } catch (const ConfigError& e) {
    if (message) *message = e.what();
    return e.key();
  }
  ADD_FAILURE() << "no error for:\n" << yaml;
  return "";
}

TEST(Config, MinimalUsesDefaults) {
  const auto c = LoadString(kMinimal);
  ASSERT_EQ(c.pairs.size(), 1u);
  EXPECT_EQ(c.pairs[0].name, "ward");
  EXPECT_EQ(c.pairs[0].device.EthdevName(), "net_af_packet0");
  EXPECT_EQ(c.pairs[0].network.EthdevName(), "net_af_packet1");
  EXPECT_EQ(c.workers, 1u);
  EXPECT_EQ(c.mtu, 1500u);
  EXPECT_EQ(c.MaxFrameLen(), 1522u);
  EXPECT_EQ(c.idle.max_sleep_us, 100u);
  EXPECT_EQ(c.eal.hugepages, Hugepages::kAuto);
}

TEST(Config, ShippedExamplesLoad) {
  for (const char* path : {"deploy/examples/ward.yaml", "deploy/examples/appliance.yaml"}) {
    SCOPED_TRACE(path);
    const auto c = LoadFile(std::string(WARDGATE_SOURCE_ROOT) + "/" + path);
    EXPECT_FALSE(c.pairs.empty());
  }
  const auto appliance = LoadFile(std::string(WARDGATE_SOURCE_ROOT) + "/deploy/examples/appliance.yaml");
  EXPECT_EQ(appliance.pairs.size(), 2u);
  EXPECT_EQ(appliance.pairs[1].device.EthdevName(), "0000:04:00.0");
  EXPECT_EQ(appliance.workers, 4u);
  EXPECT_EQ(appliance.mtu, 9000u);
  EXPECT_EQ(appliance.eal.hugepages, Hugepages::kOn);
}

TEST(Config, FullFile) {
  const auto c = LoadString(R"(
eal: { lcores: "0-2", hugepages: false, memory_mb: 256, file_prefix: t, args: ["--log-level", "8"] }
workers: 2
mtu: 9000
pairs:
  - { name: a, device: { pci: "0000:03:00.0" }, network: { pci: "0000:03:00.1" } }
mempool: { mbufs: 65535, cache: 128 }
queues: { rx_descriptors: 512, tx_descriptors: 256, burst: 16 }
idle: { spin_polls: 5, min_sleep_us: 2, max_sleep_us: 50 }
link: { wait_ms: 0 }
control: { socket: /tmp/x.sock }
)");
  EXPECT_EQ(c.eal.lcores, "0-2");
  EXPECT_EQ(c.eal.hugepages, Hugepages::kOff);
  EXPECT_EQ(c.eal.args.size(), 2u);
  EXPECT_EQ(c.workers, 2u);
  EXPECT_EQ(c.MaxFrameLen(), 9022u);
  EXPECT_EQ(c.rx_descriptors, 512);
  EXPECT_EQ(c.burst, 16);
  EXPECT_EQ(c.idle.spin_polls, 5u);
  EXPECT_EQ(c.idle.min_sleep_us, 2u);
  EXPECT_EQ(c.link_wait_ms, 0u);
  EXPECT_EQ(c.control_socket, "/tmp/x.sock");
}

struct BadCase {
  const char* name;
  std::string yaml;
  std::string key;        // expected ConfigError::key()
  std::string mentions;   // expected in the message
};

class ConfigErrors : public ::testing::TestWithParam<BadCase> {};

TEST_P(ConfigErrors, NamesKeyAndProblem) {
  std::string message;
  EXPECT_EQ(ErrorKey(GetParam().yaml, &message), GetParam().key);
  EXPECT_NE(message.find(GetParam().mentions), std::string::npos) << message;
}

const std::string kPairs = std::string(kMinimal);

INSTANTIATE_TEST_SUITE_P(
    All, ConfigErrors,
    ::testing::Values(
        BadCase{"empty", "", "(top level)", "empty"},
        BadCase{"not_a_map", "- 1\n- 2\n", "(top level)", "mapping"},
        BadCase{"syntax", "pairs: [\n", "line 2", "YAML syntax"},
        BadCase{"no_pairs", "workers: 1\n", "pairs", "missing"},
        BadCase{"empty_pairs", "pairs: []\n", "pairs", "non-empty"},
        BadCase{"unknown_top", kPairs + "wrokers: 2\n", "wrokers", "unknown key"},
        BadCase{"unknown_nested", kPairs + "idle: { sleep: 3 }\n", "idle.sleep", "unknown key"},
        BadCase{"workers_zero", kPairs + "workers: 0\n", "workers", "between 1 and 64"},
        BadCase{"workers_text", kPairs + "workers: many\n", "workers", "not a non-negative integer"},
        BadCase{"workers_negative", kPairs + "workers: -1\n", "workers", "not a non-negative integer"},
        BadCase{"workers_vs_lcores", kPairs + "workers: 2\n", "workers", "lcores"},
        BadCase{"bad_lcores", kPairs + "eal: { lcores: \"0-\" }\n", "eal.lcores", "core list"},
        BadCase{"bad_lcores_order", kPairs + "eal: { lcores: \"3-1\" }\n", "eal.lcores", "core list"},
        BadCase{"mtu_small", kPairs + "mtu: 10\n", "mtu", "between 68 and 9600"},
        BadCase{"mtu_huge", kPairs + "mtu: 65000\n", "mtu", "between 68 and 9600"},
        BadCase{"hugepages", kPairs + "eal: { hugepages: maybe }\n", "eal.hugepages", "auto, true or false"},
        BadCase{"port_missing", "pairs:\n  - { name: a, device: { vdev: net_null0 } }\n", "pairs[0].network",
                "missing"},
        BadCase{"port_both", "pairs:\n  - { device: { vdev: net_null0, pci: 0000:01:00.0 }, network: { vdev: net_null1 } }\n",
                "pairs[0].device", "exactly one"},
        BadCase{"port_not_net", "pairs:\n  - { device: { vdev: crypto_null }, network: { vdev: net_null1 } }\n",
                "pairs[0].device.vdev", "not a DPDK net vdev"},
        BadCase{"port_reused",
                "pairs:\n  - { name: a, device: { vdev: net_null0 }, network: { vdev: net_null1 } }\n"
                "  - { name: b, device: { vdev: \"net_null1,x=1\" }, network: { vdev: net_null2 } }\n",
                "pairs[1].device", "already used"},
        BadCase{"dup_pair_name",
                "pairs:\n  - { name: a, device: { vdev: net_null0 }, network: { vdev: net_null1 } }\n"
                "  - { name: a, device: { vdev: net_null2 }, network: { vdev: net_null3 } }\n",
                "pairs[1].name", "duplicate"},
        BadCase{"mbufs_too_few", kPairs + "mempool: { mbufs: 2000 }\n", "mempool.mbufs", "too small"},
        BadCase{"cache_too_big", kPairs + "mempool: { cache: 1024 }\n", "mempool.cache", "between 0 and 512"},
        BadCase{"burst", kPairs + "queues: { burst: 0 }\n", "queues.burst", "between 1 and 64"},
        BadCase{"idle_order", kPairs + "idle: { min_sleep_us: 50, max_sleep_us: 10 }\n", "idle.max_sleep_us",
                ">= idle.min_sleep_us"},
        BadCase{"socket_long", kPairs + "control: { socket: /" + std::string(120, 'a') + " }\n",
                "control.socket", "1 to 107"},
        BadCase{"args_not_list", kPairs + "eal: { args: --foo }\n", "eal.args", "list"},
        BadCase{"duplicate_key", kPairs + "mtu: 1500\nmtu: 9000\n", "mtu", "appears twice"},
        BadCase{"duplicate_nested", kPairs + "idle: { spin_polls: 1, spin_polls: 2 }\n", "idle.spin_polls",
                "appears twice"},
        BadCase{"rules_lenient", kPairs + "rules: { lenient: maybe }\n", "rules.lenient", "true or false"},
        BadCase{"action_order_short", kPairs + "rules: { action_order: [drop, pass, alert] }\n",
                "rules.action_order", "each once"},
        BadCase{"action_order_repeat", kPairs + "rules: { action_order: [drop, drop, alert, pass] }\n",
                "rules.action_order", "drop missing or repeated"},
        BadCase{"overrides_not_list", kPairs + "rules: { overrides: site.yaml }\n", "rules.overrides", "list"},
        BadCase{"threshold_capacity", kPairs + "rules: { threshold_capacity: 0 }\n", "rules.threshold_capacity",
                "between"},
        BadCase{"flowbits_capacity", kPairs + "flows: { flowbits_capacity: 0 }\n", "flows.flowbits_capacity",
                "between"},
        BadCase{"flows_capacity", kPairs + "flows: { capacity: 10 }\n", "flows.capacity", "between"},
        BadCase{"flows_timeout_key", kPairs + "flows: { timeouts: { tcp: 5 } }\n", "flows.timeouts.tcp",
                "unknown key"},
        BadCase{"stream_window", kPairs + "stream: { window_bytes: 70000 }\n", "stream.window_bytes", "between"},
        BadCase{"stream_on_limit", kPairs + "stream: { on_limit: shrug }\n", "stream.on_limit", "bypass or drop"}),
    [](const auto& param_info) { return std::string(param_info.param.name); });

TEST(Config, RuleSetKeys) {
  const auto c = LoadString(kPairs + std::string(R"(rules:
  overrides: [a.yaml, b.yaml]
  threshold_file: /etc/wardgate/threshold.config
  threshold_capacity: 1000
  cache_dir: ""
  action_order: [drop, pass, reject, alert]
flows: { flowbits_capacity: 99 }
)"));
  EXPECT_EQ(c.rules.overrides, (std::vector<std::string>{"a.yaml", "b.yaml"}));
  EXPECT_EQ(c.rules.threshold_file, "/etc/wardgate/threshold.config");
  EXPECT_EQ(c.rules.threshold_capacity, 1000u);
  EXPECT_EQ(c.rules.cache_dir, "");
  EXPECT_EQ(c.rules.action_order, (std::vector<std::string>{"drop", "pass", "reject", "alert"}));
  EXPECT_EQ(c.flows.flowbits_capacity, 99u);
  const auto d = LoadString(kPairs);
  EXPECT_EQ(d.rules.cache_dir, "/var/cache/wardgate/rules");
  EXPECT_EQ(d.rules.action_order, (std::vector<std::string>{"pass", "drop", "reject", "alert"}));
}

TEST(Config, MissingFileNamesPath) {
  try {
    LoadFile("/nonexistent/wardgate.yaml");
    FAIL() << "no error";
  } catch (const ConfigError& e) {
    EXPECT_EQ(e.key(), "/nonexistent/wardgate.yaml");
    EXPECT_NE(std::string(e.what()).find("cannot read"), std::string::npos);
  }
}

TEST(Config, LcoreLists) {
  EXPECT_EQ(ParseLcoreList("0-3"), (std::vector<unsigned>{0, 1, 2, 3}));
  EXPECT_EQ(ParseLcoreList("4,1,2-3"), (std::vector<unsigned>{1, 2, 3, 4}));
  EXPECT_EQ(ParseLcoreList("7"), (std::vector<unsigned>{7}));
  for (const char* bad : {"", ",", "1,", "a", "1-", "-1", "2-1", "1;2", "99999"}) {
    EXPECT_THROW(ParseLcoreList(bad), ConfigError) << bad;
  }
}

}  // namespace
}  // namespace wardgate::config

// ------------------------------------------------------------------ segmentation

namespace wardgate::config {
namespace {

const std::string kWard = std::string(kMinimal) + R"(
zones:
  - name: pumps
    pairs: [ward]
    cidrs: [10.77.0.0/28, "fd77::/64"]
    classes: [infusion-pump]
    default: deny
  - name: clinical
    cidrs: 10.77.0.16/28
    default: allow
    mode: monitor
  - name: guests
    vlans: [200]
policy:
  - { from: pumps, to: clinical, proto: tcp, ports: [2575, "104", "11112-11113"], app: hl7, action: allow }
  - { from: pumps, to_cidrs: [10.0.0.53], proto: udp, ports: 53, action: allow }
  - { from: any, to: pumps, proto: tcp, ports: [23], action: deny }
  - { from: guests, action: alert }
devices:
  - { mac: "02:77:00:00:00:11", name: pump-1, class: infusion-pump, criticality: life-critical, zone: pumps, ips: [10.77.0.11] }
  - { mac: "02:77:00:00:00:AA", name: ws-1, class: workstation }
hygiene: { ip_options: true, tunnels: false }
quarantine:
  remediation: [10.77.0.2/32, 10.0.0.53]
  remediation_dhcp: false
  life_critical_level: contain
  default_level: isolate
  snapshot: /tmp/wg-state.json
)";

TEST(Segmentation, LoadsZonesPolicyDevicesHygieneQuarantine) {
  const Config c = LoadString(kWard);
  const SegmentationConfig& s = c.segmentation;
  ASSERT_EQ(s.zones.size(), 3u);
  EXPECT_EQ(s.zones[0].name, "pumps");
  EXPECT_EQ(s.zones[0].pairs, std::vector<std::string>{"ward"});
  ASSERT_EQ(s.zones[0].cidrs.size(), 2u);
  EXPECT_TRUE(s.zones[0].cidrs[1].v6);
  EXPECT_EQ(s.zones[0].cidrs[1].len, 64);
  EXPECT_EQ(s.zones[0].default_action, PolicyAction::kDeny);
  EXPECT_TRUE(s.zones[1].monitor);
  EXPECT_EQ(s.zones[2].vlans, std::vector<uint16_t>{200});
  ASSERT_EQ(s.policy.size(), 4u);
  EXPECT_EQ(s.policy[0].proto, 6);
  ASSERT_EQ(s.policy[0].ports.size(), 3u);
  EXPECT_EQ(s.policy[0].ports[2].lo, 11112);
  EXPECT_EQ(s.policy[0].ports[2].hi, 11113);
  EXPECT_EQ(s.policy[0].app, "hl7");
  EXPECT_EQ(s.policy[1].to_cidrs[0].len, 32) << "a bare address is a host";
  EXPECT_EQ(s.policy[2].from_zone, "") << "any zone";
  EXPECT_EQ(s.policy[3].action, PolicyAction::kAlert);
  ASSERT_EQ(s.devices.size(), 2u);
  EXPECT_EQ(s.devices[0].criticality, Criticality::kLifeCritical);
  EXPECT_EQ(s.devices[1].mac, "02:77:00:00:00:aa") << "MACs are kept in lower case";
  EXPECT_FALSE(s.hygiene.tunnels);
  EXPECT_TRUE(s.hygiene.treck_icmp) << "hygiene defaults on";
  EXPECT_FALSE(s.quarantine.remediation_dhcp);
  EXPECT_EQ(s.quarantine.remediation.size(), 2u);
  EXPECT_EQ(s.quarantine.life_critical_default, QuarantineLevel::kContain);
  EXPECT_EQ(s.quarantine.snapshot, "/tmp/wg-state.json");
}

TEST(Segmentation, PrefixesAreCanonicalAndCover) {
  Prefix a, b, c;
  std::string why;
  EXPECT_FALSE(ParsePrefix("10.77.0.9/24", &a, &why)) << "host bits set: host or network?";
  EXPECT_NE(why.find("host bits"), std::string::npos) << why;
  ASSERT_TRUE(ParsePrefix("10.77.0.0/24", &a));
  ASSERT_TRUE(ParsePrefix("10.77.0.200", &b));
  EXPECT_TRUE(a.Covers(b));
  EXPECT_FALSE(b.Covers(a));
  ASSERT_TRUE(ParsePrefix("fd77::1/128", &c));
  EXPECT_FALSE(a.Covers(c)) << "families never cover each other";
  Prefix bad;
  for (const char* t : {"10.77.0.0/33", "fd77::/129", "10.77.0/24", "pump", "10.0.0.0/", "10.0.0.0/x"}) {
    EXPECT_FALSE(ParsePrefix(t, &bad)) << t;
  }
}

struct SegCase {
  const char* name;
  std::string yaml;  // appended to kMinimal
  const char* key;
  const char* mentions;
};
std::ostream& operator<<(std::ostream& os, const SegCase& c) { return os << c.name; }
class SegmentationErrors : public ::testing::TestWithParam<SegCase> {};
TEST_P(SegmentationErrors, NameKeyAndProblemAndApplyNothing) {
  std::string message;
  EXPECT_EQ(ErrorKey(std::string(kMinimal) + GetParam().yaml, &message), GetParam().key);
  EXPECT_NE(message.find(GetParam().mentions), std::string::npos) << message;
}
const std::string kTwoZones = "zones:\n  - { name: a, cidrs: [10.1.0.0/16] }\n  - { name: b, cidrs: [10.2.0.0/16] }\n";
INSTANTIATE_TEST_SUITE_P(
    All, SegmentationErrors,
    ::testing::Values(
        SegCase{"zone_nothing", "zones:\n  - { name: a }\n", "zones[0]", "matches nothing"},
        SegCase{"zone_twice", "zones:\n  - { name: a, vlans: [1] }\n  - { name: a, vlans: [2] }\n", "zones[1].name", "twice"},
        SegCase{"zone_any", "zones:\n  - { name: any, vlans: [1] }\n", "zones[0].name", "reserved"},
        SegCase{"zone_bad_name", "zones:\n  - { name: \"Pumps!\", vlans: [1] }\n", "zones[0].name", "a-z"},
        SegCase{"zone_pair", "zones:\n  - { name: a, pairs: [nope] }\n", "zones[0].pairs", "no port pair"},
        SegCase{"zone_vlan", "zones:\n  - { name: a, vlans: [4095] }\n", "zones[0].vlans[0]", "between"},
        SegCase{"zone_cidr", "zones:\n  - { name: a, cidrs: [10.0.0.0/40] }\n", "zones[0].cidrs[0]", "not an address"},
        SegCase{"zone_default", "zones:\n  - { name: a, vlans: [1], default: block }\n", "zones[0].default", "allow, deny or alert"},
        SegCase{"zone_mode", "zones:\n  - { name: a, vlans: [1], mode: learn }\n", "zones[0].mode", "enforce or monitor"},
        SegCase{"policy_zone", kTwoZones + "policy:\n  - { from: c, action: allow }\n", "policy[0].from", "no zone named 'c'"},
        SegCase{"policy_action", kTwoZones + "policy:\n  - { from: a }\n", "policy[0].action", "missing"},
        SegCase{"policy_ports_no_proto", kTwoZones + "policy:\n  - { from: a, ports: [80], action: allow }\n",
                "policy[0].ports", "need proto"},
        SegCase{"policy_port_range", kTwoZones + "policy:\n  - { from: a, proto: tcp, ports: [\"90-80\"], action: allow }\n",
                "policy[0].ports[0]", "empty"},
        SegCase{"policy_port_value", kTwoZones + "policy:\n  - { from: a, proto: tcp, ports: [70000], action: allow }\n",
                "policy[0].ports[0]", "not a port"},
        SegCase{"policy_proto", kTwoZones + "policy:\n  - { from: a, proto: sctpx, action: allow }\n", "policy[0].proto",
                "integer"},
        SegCase{"policy_contradiction",
                kTwoZones + "policy:\n  - { from: a, to: b, proto: tcp, ports: [23], action: deny }\n"
                            "  - { from: a, to: b, proto: tcp, ports: [23], action: allow }\n",
                "policy[1]", "contradicts policy[0]"},
        SegCase{"policy_shadowed",
                kTwoZones + "policy:\n  - { from: a, action: deny }\n"
                            "  - { from: a, to: b, proto: tcp, ports: [2575], action: allow }\n",
                "policy[1]", "contradicts policy[0]"},
        SegCase{"policy_redundant",
                kTwoZones + "policy:\n  - { from: a, to_cidrs: [10.2.0.0/16], action: allow }\n"
                            "  - { from: a, to_cidrs: [10.2.3.4], proto: udp, action: allow }\n",
                "policy[1]", "never applies"},
        SegCase{"device_mac", kTwoZones + "devices:\n  - { mac: \"02:77:00:00:00\" }\n", "devices[0].mac", "not a MAC"},
        SegCase{"device_mac_twice", kTwoZones + "devices:\n  - { mac: \"02:77:00:00:00:11\" }\n  - { mac: \"02:77:00:00:00:11\" }\n",
                "devices[1].mac", "twice"},
        SegCase{"device_zone", kTwoZones + "devices:\n  - { mac: \"02:77:00:00:00:11\", zone: c }\n", "devices[0].zone", "no zone"},
        SegCase{"device_criticality", kTwoZones + "devices:\n  - { mac: \"02:77:00:00:00:11\", criticality: high }\n",
                "devices[0].criticality", "life-critical"},
        SegCase{"device_ip_prefix", kTwoZones + "devices:\n  - { mac: \"02:77:00:00:00:11\", ips: [10.1.0.0/24] }\n",
                "devices[0].ips", "hosts"},
        SegCase{"hygiene_key", "hygiene: { ip_option: true }\n", "hygiene.ip_option", "unknown key"},
        SegCase{"quarantine_level", "quarantine: { default_level: lockdown }\n", "quarantine.default_level", "isolate or contain"},
        SegCase{"rule_response", "quarantine: { rule_response: { infusion-pump: ignore } }\n",
                "quarantine.rule_response.infusion-pump", "alert, contain or isolate"},
        SegCase{"rule_response_map", "quarantine: { rule_response: [alert] }\n", "quarantine.rule_response", "device classes"},
        SegCase{"inventory_capacity", "inventory: { capacity: 3 }\n", "inventory.capacity", "16 to 1048576"},
        SegCase{"policy_app", kTwoZones + "policy:\n  - { from: a, proto: tcp, app: ftp, action: allow }\n",
                "policy[0].app", "hl7, dicom"},
        SegCase{"policy_app_proto", kTwoZones + "policy:\n  - { from: a, proto: udp, app: hl7, action: allow }\n",
                "policy[0].app", "proto tcp"},
        SegCase{"inventory_key", "inventory: { size: 3 }\n", "inventory.size", "unknown key"}),
    [](const auto& param_info) { return std::string(param_info.param.name); });

TEST(Segmentation, RuleResponseInventoryAndPolicyVersion) {
  const Config c = LoadString(std::string(kMinimal) + kTwoZones +
                              "quarantine: { rule_response: { infusion-pump: alert, imaging: contain } }\n"
                              "inventory: { capacity: 1024 }\n");
  EXPECT_EQ(c.segmentation.quarantine.rule_response.at("infusion-pump"), RuleResponse::kAlert);
  EXPECT_EQ(c.segmentation.quarantine.rule_response.at("imaging"), RuleResponse::kContain);
  EXPECT_EQ(c.segmentation.device_capacity, 1024u);
  const Config other = LoadString(std::string(kMinimal) + kTwoZones + "policy:\n  - { from: a, action: deny }\n");
  EXPECT_EQ(c.segmentation.policy_version.rfind("config-", 0), 0u);
  EXPECT_NE(c.segmentation.policy_version, other.segmentation.policy_version) << "the version follows the policy";
}

// Rules that overlap only partly are fine: first match wins, as documented.
TEST(Segmentation, PartialOverlapIsAllowed) {
  const Config c = LoadString(std::string(kMinimal) + kTwoZones +
                              "policy:\n  - { from: a, to: b, proto: tcp, ports: [23], action: deny }\n"
                              "  - { from: a, to: b, proto: tcp, action: allow }\n");
  EXPECT_EQ(c.segmentation.policy.size(), 2u);
}

}  // namespace
}  // namespace wardgate::config
