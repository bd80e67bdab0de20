// Disk cache of serialized Hyperscan databases (see db_cache.h).
#include "rules/db_cache.h"

#include <dirent.h>
#include <fcntl.h>
#include <openssl/evp.h>
#include <sys/stat.h>
#include <unistd.h>

#include <algorithm>
#include <atomic>
#include <cerrno>
#include <cstdlib>
#include <cstring>
#include <ctime>
#include <memory>
#include <new>
#include <string_view>
#include <utility>

namespace wardgate::rules {
namespace {

// File layout: magic, key (64 hex), payload length (u64 LE), payload SHA-256, payload.
constexpr char kMagic[8] = {'W', 'G', 'H', 'S', 'D', 'B', '0', '1'};
constexpr size_t kKeyLen = 64;
constexpr size_t kDigestLen = 32;
constexpr size_t kHeaderLen = sizeof(kMagic) + kKeyLen + 8 + kDigestLen;
constexpr off_t kMaxFileBytes = off_t{1} << 30;  // far above any rule set; bigger is garbage
constexpr char kSuffix[] = ".hsdb";
constexpr char kTempPrefix[] = ".tmp-";
constexpr time_t kStaleTempSeconds = 3600;  // a writer never takes this long

static_assert(std::atomic_ref<uint64_t>::required_alignment <= alignof(uint64_t));

void Bump(uint64_t& counter) { std::atomic_ref<uint64_t>(counter).fetch_add(1, std::memory_order_relaxed); }

std::string Errno(const std::string& what) { return what + ": " + std::strerror(errno); }

// SHA-256 with OpenSSL's EVP API; Feed() calls after a failure are ignored and
// Finish() then returns false.
class Sha256 {
 public:
  Sha256() : ctx_(EVP_MD_CTX_new()) { good_ = ctx_ && EVP_DigestInit_ex(ctx_, EVP_sha256(), nullptr) == 1; }
  ~Sha256() { EVP_MD_CTX_free(ctx_); }
  Sha256(const Sha256&) = delete;
  Sha256& operator=(const Sha256&) = delete;

  void Feed(const void* p, size_t n) {
    if (good_ && n > 0) good_ = EVP_DigestUpdate(ctx_, p, n) == 1;
  }
  void U8(uint8_t v) { Feed(&v, 1); }
  void U32(uint32_t v) {
    uint8_t b[4];
    for (int i = 0; i < 4; ++i) b[i] = static_cast<uint8_t>(v >> (8 * i));
    Feed(b, 4);
  }
  void U64(uint64_t v) {
    uint8_t b[8];
    for (int i = 0; i < 8; ++i) b[i] = static_cast<uint8_t>(v >> (8 * i));
    Feed(b, 8);
  }
  // Length first, so adjacent fields cannot trade bytes.
  void Bytes(std::string_view s) {
    U64(s.size());
    Feed(s.data(), s.size());
  }
  bool Finish(uint8_t out[kDigestLen]) {
    unsigned n = 0;
    if (good_) good_ = EVP_DigestFinal_ex(ctx_, out, &n) == 1 && n == kDigestLen;
    return good_;
  }

 private:
  EVP_MD_CTX* ctx_;
  bool good_ = false;
};

std::string Hex(const uint8_t* p, size_t n) {
  static const char kHex[] = "0123456789abcdef";
  std::string out;
  out.reserve(n * 2);
  for (size_t i = 0; i < n; ++i) {
    out += kHex[p[i] >> 4];
    out += kHex[p[i] & 15];
  }
  return out;
}

void PutU64(uint8_t* p, uint64_t v) {
  for (int i = 0; i < 8; ++i) p[i] = static_cast<uint8_t>(v >> (8 * i));
}
uint64_t GetU64(const uint8_t* p) {
  uint64_t v = 0;
  for (int i = 7; i >= 0; --i) v = (v << 8) | p[i];
  return v;
}

bool WriteAll(int fd, const void* data, size_t n) {
  const auto* p = static_cast<const uint8_t*>(data);
  while (n > 0) {
    const ssize_t w = ::write(fd, p, n);
    if (w < 0 && errno == EINTR) continue;
    if (w <= 0) return false;
    p += w;
    n -= static_cast<size_t>(w);
  }
  return true;
}

bool ReadAll(int fd, uint8_t* p, size_t n) {
  while (n > 0) {
    const ssize_t r = ::read(fd, p, n);
    if (r < 0 && errno == EINTR) continue;
    if (r <= 0) return false;  // error, or the file shrank under us
    p += r;
    n -= static_cast<size_t>(r);
  }
  return true;
}

struct Fd {
  int fd = -1;
  explicit Fd(int f) : fd(f) {}
  ~Fd() {
    if (fd >= 0) ::close(fd);
  }
  Fd(const Fd&) = delete;
  Fd& operator=(const Fd&) = delete;
};

// mkdir -p with 0700 for what it creates.
bool MakeDirs(const std::string& dir, std::string* error) {
  for (size_t pos = 1; pos <= dir.size(); ++pos) {
    if (pos != dir.size() && dir[pos] != '/') continue;
    const std::string prefix = dir.substr(0, pos);
    if (::mkdir(prefix.c_str(), 0700) != 0 && errno != EEXIST) {
      *error = Errno("cannot create " + prefix);
      return false;
    }
  }
  return true;
}

}  // namespace

DatabaseCache::DatabaseCache(std::string dir) : dir_(std::move(dir)) {
  while (dir_.size() > 1 && dir_.back() == '/') dir_.pop_back();
  if (dir_.empty()) {
    error_ = "no cache directory given";
    return;
  }
  if (!MakeDirs(dir_, &error_)) return;
  struct stat st {};
  if (::stat(dir_.c_str(), &st) != 0) {
    error_ = Errno("cannot stat " + dir_);
    return;
  }
  if (!S_ISDIR(st.st_mode)) {
    error_ = dir_ + " is not a directory";
    return;
  }
  // The dataplane loads what is in here: nobody else may be able to put files in it.
  if (st.st_uid != ::geteuid()) {
    error_ = dir_ + " is owned by uid " + std::to_string(st.st_uid) + ", not by this process's user";
    return;
  }
  if ((st.st_mode & (S_IWGRP | S_IWOTH)) != 0) {
    error_ = dir_ + " is writable by group or others (chmod go-w it)";
    return;
  }
  if (::access(dir_.c_str(), R_OK | W_OK | X_OK) != 0) {
    error_ = Errno("cannot use " + dir_);
    return;
  }
  ok_ = true;
}

std::string DatabaseCache::Key(bool literal_api, unsigned mode, const std::vector<std::string>& patterns,
                               const std::vector<unsigned>& flags, const std::vector<unsigned>& ids) {
  hs_platform_info_t plat{};
  if (hs_populate_platform(&plat) != HS_SUCCESS) return "";  // cannot tell CPUs apart: no caching
  return KeyForTarget(literal_api, mode, patterns, flags, ids, hs_version(), plat);
}

std::string DatabaseCache::KeyForTarget(bool literal_api, unsigned mode, const std::vector<std::string>& patterns,
                                        const std::vector<unsigned>& flags, const std::vector<unsigned>& ids,
                                        const std::string& hs_version_text, const hs_platform_info_t& plat) {
  Sha256 h;
  h.Bytes("wardgate-hsdb-key-v1");  // changes with this function's layout
  h.U8(literal_api ? 1 : 0);
  h.U32(mode);
  h.U64(patterns.size());
  for (const std::string& p : patterns) h.Bytes(p);
  h.U64(flags.size());
  for (unsigned f : flags) h.U32(f);
  h.U64(ids.size());
  for (unsigned id : ids) h.U32(id);
  h.Bytes(hs_version_text);
  h.U32(plat.tune);
  h.U64(plat.cpu_features);
  h.U64(plat.reserved1);
  h.U64(plat.reserved2);
  uint8_t digest[kDigestLen];
  if (!h.Finish(digest)) return "";
  return Hex(digest, kDigestLen);
}

bool DatabaseCache::ValidKey(const std::string& key) const {
  // Also keeps a key from naming a path outside the directory.
  return key.size() == kKeyLen &&
         std::all_of(key.begin(), key.end(), [](char c) { return (c >= '0' && c <= '9') || (c >= 'a' && c <= 'f'); });
}

std::string DatabaseCache::PathFor(const std::string& key) const { return dir_ + "/" + key + kSuffix; }

void DatabaseCache::BadFile(const std::string& path, int fd) {
  Bump(stats_.bad_files);
  Bump(stats_.misses);
  // Remove it only if it is still the file we read: a writer may have renamed a good
  // one into place since.
  struct stat ours {}, now {};
  if (::fstat(fd, &ours) == 0 && ::stat(path.c_str(), &now) == 0 && ours.st_dev == now.st_dev &&
      ours.st_ino == now.st_ino) {
    ::unlink(path.c_str());
  }
}

hs_database_t* DatabaseCache::Load(const std::string& key) {
  if (!ok_ || !ValidKey(key)) {
    Bump(stats_.misses);
    return nullptr;
  }
  const std::string path = PathFor(key);
  const Fd f(::open(path.c_str(), O_RDONLY | O_CLOEXEC | O_NOFOLLOW));
  if (f.fd < 0) {
    Bump(stats_.misses);
    return nullptr;
  }
  struct stat st {};
  if (::fstat(f.fd, &st) != 0 || !S_ISREG(st.st_mode) || st.st_size < static_cast<off_t>(kHeaderLen) ||
      st.st_size > kMaxFileBytes) {
    BadFile(path, f.fd);
    return nullptr;
  }
  const auto size = static_cast<size_t>(st.st_size);
  std::unique_ptr<uint8_t[]> buf(new (std::nothrow) uint8_t[size]);
  if (!buf) {
    Bump(stats_.misses);
    return nullptr;
  }
  if (!ReadAll(f.fd, buf.get(), size)) {
    BadFile(path, f.fd);
    return nullptr;
  }
  const uint8_t* p = buf.get();
  const uint8_t* payload = p + kHeaderLen;
  const size_t payload_len = size - kHeaderLen;
  uint8_t digest[kDigestLen];
  Sha256 h;
  h.Feed(payload, payload_len);
  const bool header_ok = std::memcmp(p, kMagic, sizeof(kMagic)) == 0 &&
                         std::memcmp(p + sizeof(kMagic), key.data(), kKeyLen) == 0 &&
                         GetU64(p + sizeof(kMagic) + kKeyLen) == payload_len;
  if (!header_ok || !h.Finish(digest) || std::memcmp(p + sizeof(kMagic) + kKeyLen + 8, digest, kDigestLen) != 0) {
    BadFile(path, f.fd);
    return nullptr;
  }
  hs_database_t* db = nullptr;
  if (hs_deserialize_database(reinterpret_cast<const char*>(payload), payload_len, &db) != HS_SUCCESS) {
    BadFile(path, f.fd);
    return nullptr;
  }
  ::futimens(f.fd, nullptr);  // recently used, for Prune; failing that only ages it
  Bump(stats_.hits);
  return db;
}

bool DatabaseCache::Store(const std::string& key, const hs_database_t* db) {
  if (!ok_ || !ValidKey(key) || !db) {
    Bump(stats_.store_errors);
    return false;
  }
  char* bytes = nullptr;
  size_t len = 0;
  if (hs_serialize_database(db, &bytes, &len) != HS_SUCCESS || !bytes) {
    Bump(stats_.store_errors);
    return false;
  }
  // Hyperscan's default allocator is malloc: its buffer is freed with free().
  const std::unique_ptr<char, decltype(&std::free)> owned(bytes, &std::free);
  uint8_t header[kHeaderLen];
  std::memcpy(header, kMagic, sizeof(kMagic));
  std::memcpy(header + sizeof(kMagic), key.data(), kKeyLen);
  PutU64(header + sizeof(kMagic) + kKeyLen, len);
  Sha256 h;
  h.Feed(bytes, len);
  if (!h.Finish(header + sizeof(kMagic) + kKeyLen + 8)) {
    Bump(stats_.store_errors);
    return false;
  }

  // A private temporary name per writer, renamed over the final name: rename is
  // atomic, so readers and other writers only ever see complete files.
  std::string tmp = dir_ + "/" + kTempPrefix + key + ".XXXXXX";
  const int fd = ::mkostemp(tmp.data(), O_CLOEXEC);  // mode 0600
  if (fd < 0) {
    Bump(stats_.store_errors);
    return false;
  }
  bool good = WriteAll(fd, header, kHeaderLen) && WriteAll(fd, bytes, len) && ::fsync(fd) == 0;
  good = (::close(fd) == 0) && good;
  good = good && ::rename(tmp.c_str(), PathFor(key).c_str()) == 0;
  if (!good) {
    ::unlink(tmp.c_str());
    Bump(stats_.store_errors);
    return false;
  }
  // Make the rename itself durable; a failure here only risks losing the entry.
  const Fd d(::open(dir_.c_str(), O_RDONLY | O_DIRECTORY | O_CLOEXEC));
  if (d.fd >= 0) ::fsync(d.fd);
  Bump(stats_.stores);
  return true;
}

size_t DatabaseCache::Prune(size_t max_bytes) {
  if (!ok_) return 0;
  DIR* d = ::opendir(dir_.c_str());
  if (!d) return 0;
  struct Entry {
    timespec mtime;
    uint64_t size;
    std::string path;
  };
  std::vector<Entry> files;
  const time_t now = ::time(nullptr);
  while (const dirent* de = ::readdir(d)) {
    const std::string_view name(de->d_name);
    const std::string path = dir_ + "/" + std::string(name);
    struct stat st {};
    if (::lstat(path.c_str(), &st) != 0 || !S_ISREG(st.st_mode)) continue;
    if (name.starts_with(kTempPrefix)) {
      if (now - st.st_mtim.tv_sec > kStaleTempSeconds) ::unlink(path.c_str());
      continue;
    }
    // Only our own files: `<64 hex>.hsdb`.
    if (name.size() != kKeyLen + sizeof(kSuffix) - 1 || !name.ends_with(kSuffix) ||
        !ValidKey(std::string(name.substr(0, kKeyLen)))) {
      continue;
    }
    files.push_back({st.st_mtim, static_cast<uint64_t>(st.st_size), path});
  }
  ::closedir(d);
  std::sort(files.begin(), files.end(), [](const Entry& a, const Entry& b) {
    if (a.mtime.tv_sec != b.mtime.tv_sec) return a.mtime.tv_sec < b.mtime.tv_sec;
    if (a.mtime.tv_nsec != b.mtime.tv_nsec) return a.mtime.tv_nsec < b.mtime.tv_nsec;
    return a.path < b.path;
  });
  uint64_t total = 0;
  for (const Entry& e : files) total += e.size;
  size_t removed = 0;
  for (const Entry& e : files) {
    if (total <= max_bytes) break;
    if (::unlink(e.path.c_str()) == 0) {
      total -= e.size;
      ++removed;
    } else if (errno == ENOENT) {
      total -= e.size;  // another process pruned it
    }
  }
  return removed;
}

}  // namespace wardgate::rules
