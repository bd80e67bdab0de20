#include "dataplane/quarantine/snapshot.h"

#include <fcntl.h>
#include <sys/stat.h>
#include <unistd.h>

#include <cerrno>
#include <cstdio>
#include <cstring>
#include <ctime>
#include <nlohmann/json.hpp>
#include <set>

namespace wardgate::quarantine {
namespace {

using OrderedJson = nlohmann::ordered_json;
using Json = nlohmann::json;

// A snapshot of Registry::kMaxEntries entries with long reasons stays well below this.
constexpr size_t kMaxFileBytes = 64u << 20;

struct Fd {
  int fd = -1;
  explicit Fd(int f) : fd(f) {}
  ~Fd() {
    if (fd >= 0) ::close(fd);
  }
  Fd(const Fd&) = delete;
  Fd& operator=(const Fd&) = delete;
};

std::string Errno(const std::string& what) { return what + ": " + std::strerror(errno); }

bool WriteAll(int fd, const char* p, size_t n) {
  while (n > 0) {
    const ssize_t w = ::write(fd, p, n);
    if (w < 0) {
      if (errno == EINTR) continue;
      return false;
    }
    p += w;
    n -= static_cast<size_t>(w);
  }
  return true;
}

std::string DirName(const std::string& path) {
  const size_t slash = path.find_last_of('/');
  if (slash == std::string::npos) return ".";
  if (slash == 0) return "/";
  return path.substr(0, slash);
}

// mkdir -p, new directories mode 0700.
bool MakeDirs(const std::string& dir, std::string* why) {
  struct stat st {};
  if (::stat(dir.c_str(), &st) == 0) {
    if (S_ISDIR(st.st_mode)) return true;
    *why = dir + " is not a directory";
    return false;
  }
  if (errno != ENOENT) {
    *why = Errno(dir);
    return false;
  }
  const std::string parent = DirName(dir);
  if (parent != dir && !MakeDirs(parent, why)) return false;
  if (::mkdir(dir.c_str(), 0700) != 0 && errno != EEXIST) {
    *why = Errno("creating directory " + dir);
    return false;
  }
  return true;
}

// Checks what LoadSnapshot checks, so that what is saved can be read back.
std::string StateProblem(const AppliedState& state) {
  if (state.quarantines.size() > Registry::kMaxEntries) {
    return std::to_string(state.quarantines.size()) + " quarantines, more than the " +
           std::to_string(Registry::kMaxEntries) + " a registry holds";
  }
  std::set<std::string> seen;
  for (size_t i = 0; i < state.quarantines.size(); ++i) {
    const Entry& e = state.quarantines[i];
    const std::string where = "quarantines[" + std::to_string(i) + "]";
    if (const std::string p = EntryProblem(e); !p.empty()) return where + ": " + p;
    if (!seen.insert(e.device.Text()).second) return where + ": device " + e.device.Text() + " listed twice";
  }
  return "";
}

OrderedJson ToJson(const AppliedState& state) {
  OrderedJson j;
  j["format"] = kSnapshotFormat;
  j["saved"] = Rfc3339(state.saved_ns);
  j["saved_ns"] = state.saved_ns;
  j["boot_id"] = state.boot_id;
  j["rules_version"] = state.rules_version;
  j["policy_version"] = state.policy_version;
  OrderedJson list = OrderedJson::array();
  for (const Entry& e : state.quarantines) {
    OrderedJson q;
    q["device"] = e.device.Text();
    q["level"] = LevelName(e.level);
    q["reason"] = e.reason;
    q["actor"] = e.actor;
    q["since"] = Rfc3339(e.since_ns);
    q["since_ns"] = e.since_ns;
    if (e.expires_ns) q["expires"] = Rfc3339(e.expires_ns);
    q["expires_ns"] = e.expires_ns;
    list.push_back(std::move(q));
  }
  j["quarantines"] = std::move(list);
  return j;
}

// Field readers for LoadSnapshot: throw a message naming the field.
struct BadField {
  std::string message;
};

std::string Str(const Json& obj, const std::string& key, const std::string& where, bool required) {
  const auto it = obj.find(key);
  if (it == obj.end()) {
    if (required) throw BadField{where + key + ": missing"};
    return "";
  }
  if (!it->is_string()) throw BadField{where + key + ": must be a string, got " + it->dump()};
  return it->get<std::string>();
}

uint64_t U64(const Json& obj, const std::string& key, const std::string& where, bool required) {
  const auto it = obj.find(key);
  if (it == obj.end()) {
    if (required) throw BadField{where + key + ": missing"};
    return 0;
  }
  if (!it->is_number_unsigned()) {
    throw BadField{where + key + ": must be a whole number of nanoseconds >= 0, got " + it->dump()};
  }
  return it->get<uint64_t>();
}

AppliedState FromJson(const Json& j) {
  if (!j.is_object()) throw BadField{"not a JSON object"};
  const auto format = j.find("format");
  if (format == j.end()) throw BadField{"no \"format\" field: not a wardgate applied-state file"};
  if (!format->is_string() || format->get<std::string>() != kSnapshotFormat) {
    throw BadField{"format " + format->dump() + " is not \"" + kSnapshotFormat +
                   "\" (written by another wardgate version?)"};
  }
  AppliedState s;
  s.saved_ns = U64(j, "saved_ns", "", false);
  s.boot_id = Str(j, "boot_id", "", false);
  s.rules_version = Str(j, "rules_version", "", false);
  s.policy_version = Str(j, "policy_version", "", false);
  const auto list = j.find("quarantines");
  if (list == j.end()) throw BadField{"quarantines: missing"};
  if (!list->is_array()) throw BadField{"quarantines: must be a list"};
  if (list->size() > Registry::kMaxEntries) {
    throw BadField{"quarantines: " + std::to_string(list->size()) + " entries, more than the " +
                   std::to_string(Registry::kMaxEntries) + " a registry holds"};
  }
  std::set<std::string> seen;
  for (size_t i = 0; i < list->size(); ++i) {
    const Json& q = (*list)[i];
    const std::string where = "quarantines[" + std::to_string(i) + "].";
    if (!q.is_object()) throw BadField{"quarantines[" + std::to_string(i) + "]: must be an object"};
    Entry e;
    std::string why;
    const std::string device = Str(q, "device", where, true);
    if (!ParseSelector(device, &e.device, &why)) throw BadField{where + "device: " + why};
    if (!ParseLevel(Str(q, "level", where, true), &e.level, &why)) throw BadField{where + "level: " + why};
    e.reason = Str(q, "reason", where, false);
    e.actor = Str(q, "actor", where, false);
    e.since_ns = U64(q, "since_ns", where, true);
    e.expires_ns = U64(q, "expires_ns", where, false);
    if (const std::string p = EntryProblem(e); !p.empty()) throw BadField{where.substr(0, where.size() - 1) + ": " + p};
    if (!seen.insert(e.device.Text()).second) {
      throw BadField{where + "device: " + e.device.Text() + " listed twice"};
    }
    s.quarantines.push_back(std::move(e));
  }
  return s;
}

}  // namespace

std::string Rfc3339(uint64_t wall_ns) {
  const time_t secs = static_cast<time_t>(wall_ns / 1000000000);
  struct tm tm {};
  if (!gmtime_r(&secs, &tm)) return "";
  char buf[64];
  const size_t n = std::strftime(buf, sizeof(buf), "%Y-%m-%dT%H:%M:%S", &tm);
  std::snprintf(buf + n, sizeof(buf) - n, ".%03uZ", static_cast<unsigned>(wall_ns % 1000000000 / 1000000));
  return buf;
}

bool SaveSnapshot(const std::string& path, const AppliedState& state, std::string* why) {
  std::string local;
  std::string& err = why ? *why : local;
  auto fail = [&](const std::string& reason) {
    err = "cannot save applied state to " + path + ": " + reason;
    return false;
  };
  if (path.empty() || path.back() == '/') return fail("not a file name");
  if (const std::string p = StateProblem(state); !p.empty()) return fail(p);
  std::string text;
  try {
    // Invalid UTF-8 in a reason (it may come from a packet) is replaced, not fatal.
    text = ToJson(state).dump(2, ' ', false, OrderedJson::error_handler_t::replace) + "\n";
  } catch (const std::exception& e) {
    return fail(e.what());
  }

  const std::string dir = DirName(path);
  std::string reason;
  if (!MakeDirs(dir, &reason)) return fail(reason);
  const size_t slash = path.find_last_of('/');
  const std::string base = slash == std::string::npos ? path : path.substr(slash + 1);
  std::string tmp = dir + "/." + base + ".tmp.XXXXXX";
  const int fd = ::mkostemp(tmp.data(), O_CLOEXEC);  // mode 0600
  if (fd < 0) return fail(Errno("creating a temporary file in " + dir));
  bool good = WriteAll(fd, text.data(), text.size());
  if (!good) reason = Errno("writing " + tmp);
  if (good && ::fsync(fd) != 0) {
    good = false;
    reason = Errno("syncing " + tmp);
  }
  if (::close(fd) != 0 && good) {
    good = false;
    reason = Errno("closing " + tmp);
  }
  if (good && ::rename(tmp.c_str(), path.c_str()) != 0) {
    good = false;
    reason = Errno("renaming " + tmp + " to " + path);
  }
  if (!good) {
    ::unlink(tmp.c_str());
    return fail(reason);
  }
  // Make the rename itself durable.
  const Fd d(::open(dir.c_str(), O_RDONLY | O_DIRECTORY | O_CLOEXEC));
  if (d.fd < 0 || ::fsync(d.fd) != 0) return fail(Errno("written, but syncing directory " + dir));
  return true;
}

bool LoadSnapshot(const std::string& path, AppliedState* out, std::string* why) {
  std::string local;
  std::string& err = why ? *why : local;
  auto fail = [&](const std::string& reason) {
    err = "applied-state snapshot " + path + ": " + reason;
    return false;
  };
  const Fd f(::open(path.c_str(), O_RDONLY | O_CLOEXEC));
  if (f.fd < 0) {
    if (errno == ENOENT) {  // first start
      *out = AppliedState{};
      return true;
    }
    return fail(Errno("cannot open"));
  }
  struct stat st {};
  if (::fstat(f.fd, &st) != 0) return fail(Errno("cannot stat"));
  if (S_ISDIR(st.st_mode)) return fail("is a directory, not a file");
  if (!S_ISREG(st.st_mode)) return fail("is not a regular file");
  if (static_cast<uint64_t>(st.st_size) > kMaxFileBytes) {
    return fail("too large (" + std::to_string(st.st_size) + " bytes; at most " + std::to_string(kMaxFileBytes) + ")");
  }
  std::string text;
  char buf[65536];
  for (;;) {
    const ssize_t n = ::read(f.fd, buf, sizeof(buf));
    if (n < 0) {
      if (errno == EINTR) continue;
      return fail(Errno("cannot read"));
    }
    if (n == 0) break;
    text.append(buf, static_cast<size_t>(n));
    if (text.size() > kMaxFileBytes) return fail("too large");
  }
  if (!ParseSnapshot(text, out, &err)) return fail(err);
  return true;
}

bool ParseSnapshot(std::string_view text, AppliedState* out, std::string* why) {
  std::string local;
  std::string& err = why ? *why : local;
  if (text.find_first_not_of(" \t\r\n") == std::string_view::npos) {
    err = "is empty (truncated?)";
    return false;
  }
  Json j;
  try {
    j = Json::parse(text);
  } catch (const Json::exception& e) {  // parse_error, and out_of_range for numbers too large
    err = std::string("not valid JSON (truncated or corrupt?): ") + e.what();
    return false;
  }
  try {
    AppliedState s = FromJson(j);
    *out = std::move(s);
  } catch (const BadField& e) {
    err = e.message;
    return false;
  } catch (const std::exception& e) {  // a type error we did not foresee: refuse, do not crash
    err = e.what();
    return false;
  }
  return true;
}

}  // namespace wardgate::quarantine
