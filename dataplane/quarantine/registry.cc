#include "dataplane/quarantine/registry.h"

#include <arpa/inet.h>

#include <algorithm>
#include <limits>

namespace wardgate::quarantine {
namespace {

bool IsDigit(char c) { return c >= '0' && c <= '9'; }
bool IsLower(char c) { return c >= 'a' && c <= 'z'; }

int HexValue(char c) {
  if (c >= '0' && c <= '9') return c - '0';
  if (c >= 'a' && c <= 'f') return c - 'a' + 10;
  if (c >= 'A' && c <= 'F') return c - 'A' + 10;
  return -1;
}

bool IsHost(const config::Prefix& p) { return p.len == (p.v6 ? 128 : 32); }

std::string Quoted(std::string_view text) { return "'" + std::string(text) + "'"; }

struct Unit {
  const char* name;
  uint64_t ns;
};
// Largest first: ParseDuration wants them in this order, DurationText writes them so.
constexpr Unit kUnits[] = {
    {"d", 86400ull * 1000000000}, {"h", 3600ull * 1000000000}, {"m", 60ull * 1000000000}, {"s", 1000000000},
    {"ms", 1000000},              {"us", 1000},                {"ns", 1},
};
constexpr size_t kUnitCount = sizeof(kUnits) / sizeof(kUnits[0]);

// Decimal digits into *out; false if it does not fit in 64 bits.
bool ParseUint(std::string_view digits, uint64_t* out) {
  uint64_t v = 0;
  for (const char c : digits) {
    const uint64_t d = static_cast<uint64_t>(c - '0');
    if (v > (std::numeric_limits<uint64_t>::max() - d) / 10) return false;
    v = v * 10 + d;
  }
  *out = v;
  return true;
}

bool ParseId(std::string_view whole, std::string_view digits, Selector* out, std::string* why) {
  if (digits.empty() || !std::all_of(digits.begin(), digits.end(), IsDigit)) {
    if (why) *why = Quoted(whole) + " is not a device id (a whole number, e.g. id:17)";
    return false;
  }
  uint64_t id = 0;
  if (!ParseUint(digits, &id)) {
    if (why) *why = Quoted(whole) + " is not a device id: the number is too large";
    return false;
  }
  if (id == 0) {
    if (why) *why = Quoted(whole) + " is not a device id: ids start at 1";
    return false;
  }
  *out = Selector::Id(id);
  return true;
}

// Six groups of two hex digits separated by one kind of separator (':' or '-').
bool ParseMac(std::string_view text, std::array<uint8_t, 6>* mac) {
  if (text.size() != 17) return false;
  const char sep = text[2];
  if (sep != ':' && sep != '-') return false;
  for (size_t i = 0; i < 6; ++i) {
    const int hi = HexValue(text[i * 3]), lo = HexValue(text[i * 3 + 1]);
    if (hi < 0 || lo < 0) return false;
    if (i < 5 && text[i * 3 + 2] != sep) return false;
    (*mac)[i] = static_cast<uint8_t>(hi << 4 | lo);
  }
  return true;
}

// Groups of exactly two hex digits separated by ':' or '-' (one kind): something meant
// as a MAC address. Returns the number of groups, 0 if it does not look like one.
size_t MacLikeGroups(std::string_view text) {
  if (text.size() < 5 || (text.size() + 1) % 3 != 0) return 0;
  const char sep = text[2];
  if (sep != ':' && sep != '-') return 0;
  const size_t groups = (text.size() + 1) / 3;
  for (size_t i = 0; i < groups; ++i) {
    if (HexValue(text[i * 3]) < 0 || HexValue(text[i * 3 + 1]) < 0) return 0;
    if (i + 1 < groups && text[i * 3 + 2] != sep) return 0;
  }
  return groups;
}

bool SameEffect(const Entry& a, Level level, const std::string& reason, const std::string& actor, uint64_t expires) {
  return a.level == level && a.reason == reason && a.actor == actor && a.expires_ns == expires;
}

}  // namespace

const char* LevelName(Level level) {
  switch (level) {
    case Level::kIsolate: return "isolate";
    case Level::kContain: return "contain";
  }
  return "isolate";
}

bool ParseLevel(std::string_view text, Level* out, std::string* why) {
  if (text == "isolate") {
    *out = Level::kIsolate;
    return true;
  }
  if (text == "contain") {
    *out = Level::kContain;
    return true;
  }
  if (why) *why = "quarantine level " + Quoted(text) + " is not isolate or contain";
  return false;
}

bool ParseDuration(std::string_view text, uint64_t* ns, std::string* why) {
  auto fail = [&](const std::string& reason) {
    if (why) *why = "time-to-live " + Quoted(text) + ": " + reason;
    return false;
  };
  if (text.empty() || text == "0") {
    *ns = 0;
    return true;
  }
  uint64_t total = 0;
  size_t next_unit = 0;  // index into kUnits of the largest unit still allowed
  size_t pos = 0;
  while (pos < text.size()) {
    const char c = text[pos];
    if (c == '-') return fail("must not be negative");
    if (c == '+') return fail("write it without a sign (e.g. 15m)");
    if (!IsDigit(c)) {
      return fail(pos == 0 ? "must start with a number (e.g. 90s, 15m, 2h, 1d, 1h30m)"
                           : "unexpected " + Quoted(text.substr(pos)) + " (e.g. 90s, 15m, 2h, 1d, 1h30m)");
    }
    const size_t digits_start = pos;
    while (pos < text.size() && IsDigit(text[pos])) ++pos;
    const std::string_view digits = text.substr(digits_start, pos - digits_start);
    if (pos < text.size() && (text[pos] == '.' || text[pos] == ',')) {
      return fail("whole numbers only (write 1h30m, not 1.5h)");
    }
    const size_t unit_start = pos;
    while (pos < text.size() && IsLower(text[pos])) ++pos;
    const std::string_view unit = text.substr(unit_start, pos - unit_start);
    if (unit.empty()) {
      if (pos < text.size()) return fail("unexpected " + Quoted(text.substr(pos)) + " after " + Quoted(digits));
      if (digits_start == 0) {
        return fail("a number needs a unit: seconds or minutes? write " + std::string(digits) + "s or " +
                    std::string(digits) + "m");
      }
      return fail("the last number, " + Quoted(digits) + ", has no unit");
    }
    size_t u = 0;
    while (u < kUnitCount && unit != kUnits[u].name) ++u;
    if (u == kUnitCount) return fail("unknown unit " + Quoted(unit) + " (use d, h, m, s or ms)");
    if (u < next_unit) return fail("units go from the largest to the smallest, each once (e.g. 1h30m)");
    next_unit = u + 1;
    uint64_t n = 0;
    if (!ParseUint(digits, &n) || n > kMaxDurationNs / kUnits[u].ns) return fail("too long (at most 36500d)");
    total += n * kUnits[u].ns;
    if (total > kMaxDurationNs) return fail("too long (at most 36500d)");
  }
  *ns = total;
  return true;
}

std::string DurationText(uint64_t ns) {
  if (ns == 0) return "0";
  std::string out;
  for (const Unit& u : kUnits) {
    if (ns >= u.ns) {
      out += std::to_string(ns / u.ns) + u.name;
      ns %= u.ns;
    }
  }
  return out;
}

Selector Selector::Mac(const std::array<uint8_t, 6>& mac) {
  Selector s;
  s.kind = Kind::kMac;
  s.mac = mac;
  return s;
}

Selector Selector::Ip(const config::Prefix& host) {
  Selector s;
  s.kind = Kind::kIp;
  s.ip = host;
  return s;
}

Selector Selector::Id(uint64_t id) {
  Selector s;
  s.kind = Kind::kId;
  s.id = id;
  return s;
}

std::string Selector::Text() const {
  switch (kind) {
    case Kind::kMac: {
      static constexpr char kHex[] = "0123456789abcdef";
      std::string t;
      for (size_t i = 0; i < mac.size(); ++i) {
        if (i) t += ':';
        t += kHex[mac[i] >> 4];
        t += kHex[mac[i] & 0xf];
      }
      return t;
    }
    case Kind::kIp: {
      char buf[INET6_ADDRSTRLEN] = {};
      if (!inet_ntop(ip.v6 ? AF_INET6 : AF_INET, ip.addr.data(), buf, sizeof(buf))) return "?";
      std::string t = buf;
      if (!IsHost(ip)) t += "/" + std::to_string(ip.len);  // not a device; shown as is in messages
      return t;
    }
    case Kind::kId: return "id:" + std::to_string(id);
  }
  return "?";
}

bool Selector::operator==(const Selector& o) const {
  if (kind != o.kind) return false;
  switch (kind) {
    case Kind::kMac: return mac == o.mac;
    case Kind::kIp: return ip == o.ip;
    case Kind::kId: return id == o.id;
  }
  return false;
}

bool ParseSelector(std::string_view text, Selector* out, std::string* why) {
  if (text.empty()) {
    if (why) *why = "no device given: name it by MAC, IP address or device id (e.g. 02:77:00:00:00:11, 10.77.0.11, id:17)";
    return false;
  }
  if (text.substr(0, 3) == "id:") return ParseId(text, text.substr(3), out, why);
  if (std::all_of(text.begin(), text.end(), IsDigit)) return ParseId(text, text, out, why);
  std::array<uint8_t, 6> mac{};
  if (ParseMac(text, &mac)) {
    *out = Selector::Mac(mac);
    return true;
  }
  if (text.find('/') != std::string_view::npos) {
    if (why) {
      *why = Quoted(text) + " is a prefix, not one device: give a host address (e.g. 10.77.0.11), a MAC or a device id";
    }
    return false;
  }
  config::Prefix p;
  if (config::ParsePrefix(std::string(text), &p, nullptr) && IsHost(p)) {
    *out = Selector::Ip(p);
    return true;
  }
  if (const size_t groups = MacLikeGroups(text); groups != 0) {
    if (why) {
      *why = Quoted(text) + " is not a MAC address: it has " + std::to_string(groups) +
             " bytes, a MAC has 6 (e.g. 02:77:00:00:00:11)";
    }
    return false;
  }
  if (why) {
    *why = Quoted(text) + " is not a MAC, an IP address or a device id (e.g. 02:77:00:00:00:11, 10.77.0.11, fd77::11, id:17)";
  }
  return false;
}

std::string EntryProblem(const Entry& e) {
  switch (e.device.kind) {
    case Selector::Kind::kMac: break;
    case Selector::Kind::kIp:
      if (!IsHost(e.device.ip)) return "device " + e.device.Text() + " is a prefix, not a host address";
      break;
    case Selector::Kind::kId:
      return "device " + e.device.Text() + " is an inventory id: resolve it to the device's MAC first";
    default: return "device of an unknown kind";
  }
  if (e.level != Level::kIsolate && e.level != Level::kContain) return "unknown quarantine level";
  if (e.expires_ns != 0 && e.expires_ns < e.since_ns) return "expires before it started (expires_ns < since_ns)";
  return "";
}

Registry::Registry(size_t capacity) : capacity_(std::min(capacity, kMaxEntries)) {}

Registry::AddResult Registry::Add(const Selector& device, Level level, std::string reason, std::string actor,
                                  uint64_t now_ns, uint64_t ttl_ns) {
  AddResult r;
  const uint64_t expires =
      ttl_ns == 0 ? 0 : (ttl_ns > std::numeric_limits<uint64_t>::max() - now_ns ? std::numeric_limits<uint64_t>::max()
                                                                                 : now_ns + ttl_ns);
  Entry probe;
  probe.device = device;
  probe.level = level;
  probe.since_ns = now_ns;
  probe.expires_ns = expires;
  if (std::string problem = EntryProblem(probe); !problem.empty()) {
    r.error = std::move(problem);
    return r;
  }
  const std::string key = device.Text();
  auto it = entries_.find(key);
  if (it == entries_.end()) {
    if (entries_.size() >= capacity_) {
      r.error = "quarantine registry full (" + std::to_string(capacity_) + " devices): " + key + " not quarantined";
      return r;
    }
    probe.reason = std::move(reason);
    probe.actor = std::move(actor);
    probe.seq = ++seq_;
    it = entries_.emplace(key, std::move(probe)).first;
    if (expires) expiries_.emplace(expires, key);
    r.entry = it->second;
    r.changed = r.created = true;
    return r;
  }
  Entry& e = it->second;
  if (!SameEffect(e, level, reason, actor, expires)) {
    if (e.expires_ns) expiries_.erase({e.expires_ns, key});
    e.level = level;
    e.reason = std::move(reason);
    e.actor = std::move(actor);
    e.expires_ns = expires;
    e.seq = ++seq_;
    if (expires) expiries_.emplace(expires, key);
    r.changed = true;
  }
  r.entry = e;
  return r;
}

void Registry::Erase(std::map<std::string, Entry>::iterator it) {
  if (it->second.expires_ns) expiries_.erase({it->second.expires_ns, it->first});
  entries_.erase(it);
}

std::optional<Entry> Registry::Remove(const Selector& device) {
  const auto it = entries_.find(device.Text());
  if (it == entries_.end() || device.kind == Selector::Kind::kId) return std::nullopt;
  Entry e = std::move(it->second);
  Erase(it);
  ++seq_;
  return e;
}

std::vector<Entry> Registry::Expire(uint64_t now_ns) {
  std::vector<Entry> out;
  while (!expiries_.empty() && expiries_.begin()->first <= now_ns) {
    const auto it = entries_.find(expiries_.begin()->second);
    if (it == entries_.end()) {  // cannot happen: the index follows the entries
      expiries_.erase(expiries_.begin());
      continue;
    }
    out.push_back(std::move(it->second));
    Erase(it);
    ++seq_;
  }
  return out;
}

std::optional<uint64_t> Registry::NextExpiry() const {
  if (expiries_.empty()) return std::nullopt;
  return expiries_.begin()->first;
}

std::vector<Entry> Registry::List() const {
  std::vector<std::pair<const std::string*, const Entry*>> order;
  order.reserve(entries_.size());
  for (const auto& [key, e] : entries_) order.emplace_back(&key, &e);
  std::stable_sort(order.begin(), order.end(), [](const auto& a, const auto& b) {
    if (a.second->since_ns != b.second->since_ns) return a.second->since_ns < b.second->since_ns;
    return *a.first < *b.first;
  });
  std::vector<Entry> out;
  out.reserve(order.size());
  for (const auto& [key, e] : order) out.push_back(*e);
  return out;
}

const Entry* Registry::Find(const Selector& device) const {
  if (device.kind == Selector::Kind::kId) return nullptr;
  const auto it = entries_.find(device.Text());
  return it == entries_.end() ? nullptr : &it->second;
}

size_t Registry::Restore(std::vector<Entry> entries) {
  entries_.clear();
  expiries_.clear();
  ++seq_;
  size_t skipped = 0;
  for (Entry& e : entries) {
    if (!EntryProblem(e).empty()) {
      ++skipped;
      continue;
    }
    std::string key = e.device.Text();
    if (const auto it = entries_.find(key); it != entries_.end()) {
      Erase(it);
      ++skipped;
    } else if (entries_.size() >= capacity_) {
      ++skipped;
      continue;
    }
    e.seq = seq_;
    if (e.expires_ns) expiries_.emplace(e.expires_ns, key);
    entries_.emplace(std::move(key), std::move(e));
  }
  return skipped;
}

}  // namespace wardgate::quarantine
