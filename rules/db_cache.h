// A disk cache of compiled Hyperscan databases, so a restart or a reload of an
// unchanged rule set does not compile again (ET Open takes about a second).
//
// The matcher wraps each compile: key = Key(inputs); db = Load(key); if null, compile
// and Store(key, db). Every failure of the cache is a miss or a failed store, never an
// error for the caller: the cache only saves time.
//
// Files: <dir>/<64 hex key>.hsdb, 0600, in a 0700 directory. Each holds a header
// (magic, the key, the payload length and SHA-256) and the output of
// hs_serialize_database. A file whose header, length, checksum or Hyperscan check
// fails is removed and counted in bad_files. Stores go to a temporary file that is
// fsynced and renamed into place, so a reader sees a whole file or none, and
// concurrent writers of one key (threads or processes) leave one valid file. The
// checksum detects corruption, not tampering: the directory must be writable by the
// dataplane's user only, and a directory writable by group or others, or owned by
// another user, is refused (ok() false).
//
// Threads: Load, Store and Prune may run concurrently on one object (stats are
// updated atomically); read stats() once those calls are done.
#pragma once

#include <hs.h>

#include <cstddef>
#include <cstdint>
#include <string>
#include <vector>

namespace wardgate::rules {

class DatabaseCache {
 public:
  // Creates `dir` (and missing parents) with mode 0700 if it does not exist. ok()
  // false, with error(), if it cannot be created or used; then Load misses and Store
  // fails, and callers simply compile.
  explicit DatabaseCache(std::string dir);

  bool ok() const { return ok_; }
  const std::string& error() const { return error_; }
  const std::string& dir() const { return dir_; }

  // SHA-256 (hex) over every compile input, each length-prefixed so ("ab","c") and
  // ("a","bc") differ, plus hs_version() and the host platform from
  // hs_populate_platform(), so another CPU or Hyperscan version misses. `patterns`
  // are the exact bytes given to Hyperscan (NUL-terminated expressions without the
  // NUL for the regex API). Compiles with hs_expr_ext or a non-host platform need
  // more inputs here. "" if the platform cannot be read (then nothing is cached).
  static std::string Key(bool literal_api, unsigned mode, const std::vector<std::string>& patterns,
                         const std::vector<unsigned>& flags, const std::vector<unsigned>& ids);
  // Key() for a given Hyperscan version and platform (Key() passes the host's).
  static std::string KeyForTarget(bool literal_api, unsigned mode, const std::vector<std::string>& patterns,
                                  const std::vector<unsigned>& flags, const std::vector<unsigned>& ids,
                                  const std::string& hs_version_text, const hs_platform_info_t& platform);

  // The database stored under `key` (the caller frees it with hs_free_database), or
  // nullptr on a miss. A corrupt, truncated or foreign file is a miss, counted in
  // bad_files, and removed. A hit sets the file's mtime to now (for Prune).
  hs_database_t* Load(const std::string& key);

  // Serializes `db` under `key`. False (counted in store_errors) if anything fails;
  // nothing partial is left behind.
  bool Store(const std::string& key, const hs_database_t* db);

  // Deletes the least recently used cache files (oldest mtime first) until the cache
  // files total at most `max_bytes`, and temporary files left by a crashed writer
  // (older than an hour). Returns the number of cache files deleted.
  size_t Prune(size_t max_bytes);

  struct Stats {
    uint64_t hits = 0;
    uint64_t misses = 0;     // including bad files
    uint64_t stores = 0;     // successful
    uint64_t bad_files = 0;  // corrupt/truncated/foreign files found (and removed)
    uint64_t store_errors = 0;
  };
  const Stats& stats() const { return stats_; }

  // The file Load/Store use for `key` (for tests and diagnostics).
  std::string PathFor(const std::string& key) const;

 private:
  bool ValidKey(const std::string& key) const;
  void BadFile(const std::string& path, int fd);

  std::string dir_;
  bool ok_ = false;
  std::string error_;
  Stats stats_;
};

}  // namespace wardgate::rules
