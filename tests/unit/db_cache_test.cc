// The Hyperscan database disk cache: a stored database scans like the original, keys
// separate every input, damaged files are misses that are counted and removed, an
// unusable directory only costs the caching, Prune keeps the most recently used, and
// concurrent writers of one key leave one valid file.
#include "rules/db_cache.h"

#include <fcntl.h>
#include <gtest/gtest.h>
#include <sys/stat.h>
#include <unistd.h>

#include <algorithm>
#include <atomic>
#include <cctype>
#include <cstdlib>
#include <filesystem>
#include <functional>
#include <fstream>
#include <string>
#include <thread>
#include <utility>
#include <vector>

namespace wardgate::rules {
namespace {

namespace fs = std::filesystem;

struct Inputs {
  bool literal = true;
  unsigned mode = HS_MODE_BLOCK;
  std::vector<std::string> patterns;
  std::vector<unsigned> flags;
  std::vector<unsigned> ids;
  std::string Key() const { return DatabaseCache::Key(literal, mode, patterns, flags, ids); }
};

Inputs Literals() {
  return {true,
          HS_MODE_BLOCK,
          {"needle", std::string("a\0b", 3), "GET /", "passwd"},
          {HS_FLAG_SINGLEMATCH, HS_FLAG_SINGLEMATCH, HS_FLAG_SINGLEMATCH | HS_FLAG_CASELESS, 0},
          {10, 20, 30, 40}};
}

hs_database_t* Compile(const Inputs& in) {
  std::vector<const char*> exprs;
  std::vector<size_t> lens;
  for (const auto& p : in.patterns) {
    exprs.push_back(p.c_str());
    lens.push_back(p.size());
  }
  hs_database_t* db = nullptr;
  hs_compile_error_t* err = nullptr;
  const auto n = static_cast<unsigned>(exprs.size());
  const hs_error_t rc = in.literal ? hs_compile_lit_multi(exprs.data(), in.flags.data(), in.ids.data(), lens.data(),
                                                          n, in.mode, nullptr, &db, &err)
                                   : hs_compile_multi(exprs.data(), in.flags.data(), in.ids.data(), n, in.mode,
                                                      nullptr, &db, &err);
  if (rc != HS_SUCCESS) {
    ADD_FAILURE() << "compile: " << (err ? err->message : "?");
    hs_free_compile_error(err);
    return nullptr;
  }
  return db;
}

// (id, end offset) of every match, sorted.
std::vector<std::pair<unsigned, unsigned long long>> Scan(const hs_database_t* db, const std::string& data) {
  std::vector<std::pair<unsigned, unsigned long long>> out;
  hs_scratch_t* scratch = nullptr;
  if (hs_alloc_scratch(db, &scratch) != HS_SUCCESS) {
    ADD_FAILURE() << "hs_alloc_scratch";
    return out;
  }
  auto cb = [](unsigned id, unsigned long long, unsigned long long to, unsigned, void* ctx) -> int {
    static_cast<decltype(out)*>(ctx)->emplace_back(id, to);
    return 0;
  };
  EXPECT_EQ(hs_scan(db, data.data(), static_cast<unsigned>(data.size()), 0, scratch, cb, &out), HS_SUCCESS);
  hs_free_scratch(scratch);
  std::sort(out.begin(), out.end());
  return out;
}

using namespace std::string_literals;
// needle (single match), a\0b, "GET /" caseless, passwd twice (case-sensitive, every match).
const std::string kTraffic = "get /index.html HTTP/1.1\r\nX: a\0b\r\n\r\nneedle needle /etc/passwd Passwd passwd"s;

class DbCacheTest : public ::testing::Test {
 protected:
  void SetUp() override {
    char tmpl[] = "/tmp/wardgate-dbcache-test.XXXXXX";
    ASSERT_NE(::mkdtemp(tmpl), nullptr);
    root_ = tmpl;
    dir_ = root_ + "/cache/hs";
  }
  void TearDown() override {
    std::error_code ec;
    fs::permissions(root_, fs::perms::owner_all, ec);
    fs::remove_all(root_, ec);
  }
  static size_t CountFiles(const std::string& dir) {
    size_t n = 0;
    for (const auto& e : fs::directory_iterator(dir)) n += e.is_regular_file() ? 1 : 0;
    return n;
  }
  std::string root_, dir_;
};

TEST_F(DbCacheTest, StoreThenLoadScansIdentically) {
  DatabaseCache cache(dir_);
  ASSERT_TRUE(cache.ok()) << cache.error();
  struct stat st {};
  ASSERT_EQ(::stat(dir_.c_str(), &st), 0);
  EXPECT_EQ(st.st_mode & 0777, 0700u) << "created private";

  const Inputs in = Literals();
  hs_database_t* db = Compile(in);
  ASSERT_NE(db, nullptr);
  const std::string key = in.Key();
  EXPECT_EQ(cache.Load(key), nullptr) << "empty cache";
  EXPECT_EQ(cache.stats().misses, 1u);
  ASSERT_TRUE(cache.Store(key, db));
  ASSERT_EQ(::stat(cache.PathFor(key).c_str(), &st), 0);
  EXPECT_EQ(st.st_mode & 0777, 0600u);
  EXPECT_EQ(CountFiles(dir_), 1u) << "no temporary file left";

  hs_database_t* loaded = cache.Load(key);
  ASSERT_NE(loaded, nullptr);
  const auto want = Scan(db, kTraffic);
  // The original finds what the patterns say (so the comparison below means something).
  std::vector<unsigned> ids;
  for (const auto& m : want) ids.push_back(m.first);
  EXPECT_EQ(ids, (std::vector<unsigned>{10, 20, 30, 40, 40}));
  EXPECT_EQ(Scan(loaded, kTraffic), want);
  EXPECT_TRUE(Scan(loaded, "nothing here").empty());

  // A second cache object (a restart) finds it too.
  DatabaseCache again(dir_);
  hs_database_t* loaded2 = again.Load(key);
  ASSERT_NE(loaded2, nullptr);
  EXPECT_EQ(Scan(loaded2, kTraffic), want);

  EXPECT_EQ(cache.stats().hits, 1u);
  EXPECT_EQ(cache.stats().stores, 1u);
  EXPECT_EQ(cache.stats().bad_files, 0u);
  hs_free_database(db);
  hs_free_database(loaded);
  hs_free_database(loaded2);
}

TEST_F(DbCacheTest, RegexDatabaseRoundTrips) {
  DatabaseCache cache(dir_);
  Inputs in{false,
            HS_MODE_BLOCK,
            {"ab+c", "^GET\\s", "x[0-9]{3}"},
            {0, HS_FLAG_CASELESS, HS_FLAG_SINGLEMATCH},
            {1, 2, 3}};
  hs_database_t* db = Compile(in);
  ASSERT_NE(db, nullptr);
  ASSERT_TRUE(cache.Store(in.Key(), db));
  hs_database_t* loaded = cache.Load(in.Key());
  ASSERT_NE(loaded, nullptr);
  const std::string data = "get abbbc x123 x12 abc";
  EXPECT_EQ(Scan(db, data).size(), 4u);
  EXPECT_EQ(Scan(loaded, data), Scan(db, data));
  hs_free_database(db);
  hs_free_database(loaded);
}

TEST(DbCacheKey, EveryInputChangesTheKey) {
  const Inputs base = Literals();
  const std::string k = base.Key();
  ASSERT_EQ(k.size(), 64u);
  EXPECT_TRUE(std::all_of(k.begin(), k.end(), [](char c) { return std::isxdigit(c) && !std::isupper(c); }));
  EXPECT_EQ(base.Key(), k) << "deterministic";

  std::vector<std::pair<std::string, Inputs>> variants;
  auto add = [&](const char* what, auto change) {
    Inputs v = base;
    change(v);
    variants.emplace_back(what, v);
  };
  add("api", [](Inputs& v) { v.literal = false; });
  add("mode", [](Inputs& v) { v.mode = HS_MODE_STREAM; });
  add("pattern byte", [](Inputs& v) { v.patterns[0] = "needlf"; });
  add("pattern NUL", [](Inputs& v) { v.patterns[1] = std::string("a\0c", 3); });
  add("pattern order", [](Inputs& v) { std::swap(v.patterns[0], v.patterns[3]); });
  add("pattern split", [](Inputs& v) {  // same concatenation, other boundary
    v.patterns[2] = "GET";
    v.patterns[3] = " /passwd";
  });
  add("pattern added", [](Inputs& v) {
    v.patterns.push_back("");
    v.flags.push_back(0);
    v.ids.push_back(0);
  });
  add("flag", [](Inputs& v) { v.flags[3] = HS_FLAG_CASELESS; });
  add("id", [](Inputs& v) { v.ids[0] = 11; });
  add("ids swapped", [](Inputs& v) { std::swap(v.ids[0], v.ids[1]); });
  add("flags moved to ids", [](Inputs& v) {
    v.flags.pop_back();
    v.ids.insert(v.ids.begin(), 0);
  });
  std::vector<std::string> keys{k};
  for (const auto& [what, v] : variants) {
    const std::string vk = v.Key();
    EXPECT_NE(vk, k) << what;
    keys.push_back(vk);
  }
  std::sort(keys.begin(), keys.end());
  EXPECT_EQ(std::adjacent_find(keys.begin(), keys.end()), keys.end()) << "variants collide with each other";

  // ("ab","c") != ("a","bc") with everything else equal.
  EXPECT_NE(DatabaseCache::Key(true, 0, {"ab", "c"}, {0, 0}, {1, 2}),
            DatabaseCache::Key(true, 0, {"a", "bc"}, {0, 0}, {1, 2}));
  EXPECT_NE(DatabaseCache::Key(true, 0, {"abc"}, {}, {}), DatabaseCache::Key(true, 0, {"ab", "c"}, {}, {}));
}

TEST(DbCacheKey, HyperscanVersionAndPlatformChangeTheKey) {
  const Inputs in = Literals();
  hs_platform_info_t host{};
  ASSERT_EQ(hs_populate_platform(&host), HS_SUCCESS);
  const std::string version = hs_version();
  auto key = [&](const std::string& v, const hs_platform_info_t& p) {
    return DatabaseCache::KeyForTarget(in.literal, in.mode, in.patterns, in.flags, in.ids, v, p);
  };
  const std::string k = key(version, host);
  EXPECT_EQ(k, in.Key()) << "Key() is the host's version and platform";
  EXPECT_NE(key(version + ".1", host), k);
  hs_platform_info_t other = host;
  other.tune = host.tune == HS_TUNE_FAMILY_ICX ? HS_TUNE_FAMILY_SKL : HS_TUNE_FAMILY_ICX;
  EXPECT_NE(key(version, other), k) << "another microarchitecture";
  other = host;
  other.cpu_features = host.cpu_features ^ HS_CPU_FEATURES_AVX2;
  EXPECT_NE(key(version, other), k) << "AVX2 present on one side only";
  other = host;
  other.cpu_features = host.cpu_features ^ HS_CPU_FEATURES_AVX512;
  EXPECT_NE(key(version, other), k);
}

// Damages the stored file with `damage`, then expects a counted miss and the file gone.
class DbCacheCorruptTest : public DbCacheTest {
 protected:
  void Check(const char* what, const std::function<void(const std::string& path, const std::string& bytes)>& damage) {
    SCOPED_TRACE(what);
    DatabaseCache cache(dir_);
    ASSERT_TRUE(cache.ok()) << cache.error();
    const Inputs in = Literals();
    hs_database_t* db = Compile(in);
    ASSERT_NE(db, nullptr);
    const std::string key = in.Key();
    ASSERT_TRUE(cache.Store(key, db));
    const std::string path = cache.PathFor(key);
    std::string bytes;
    {
      std::ifstream f(path, std::ios::binary);
      bytes.assign(std::istreambuf_iterator<char>(f), {});
    }
    ASSERT_GT(bytes.size(), 200u);
    damage(path, bytes);
    EXPECT_EQ(cache.Load(key), nullptr);
    EXPECT_EQ(cache.stats().bad_files, 1u);
    EXPECT_EQ(cache.stats().misses, 1u);
    EXPECT_EQ(cache.stats().hits, 0u);
    EXPECT_FALSE(fs::exists(path)) << "a bad file is removed";
    // The next store repairs it.
    ASSERT_TRUE(cache.Store(key, db));
    hs_database_t* loaded = cache.Load(key);
    ASSERT_NE(loaded, nullptr);
    EXPECT_EQ(Scan(loaded, kTraffic), Scan(db, kTraffic));
    hs_free_database(loaded);
    hs_free_database(db);
    fs::remove(path);
  }
  static void Write(const std::string& path, const std::string& bytes) {
    std::ofstream f(path, std::ios::binary | std::ios::trunc);
    f.write(bytes.data(), static_cast<std::streamsize>(bytes.size()));
  }
};

TEST_F(DbCacheCorruptTest, DamagedFilesAreCountedMisses) {
  Check("truncated to half", [](const std::string& p, const std::string&) {
    ASSERT_EQ(::truncate(p.c_str(), static_cast<off_t>(fs::file_size(p) / 2)), 0);
  });
  Check("truncated by one byte",
        [](const std::string& p, const std::string& b) { Write(p, b.substr(0, b.size() - 1)); });
  Check("truncated inside the header", [](const std::string& p, const std::string& b) { Write(p, b.substr(0, 50)); });
  Check("empty", [](const std::string& p, const std::string&) { Write(p, ""); });
  Check("byte appended", [](const std::string& p, const std::string& b) { Write(p, b + "x"); });
  Check("magic flipped", [](const std::string& p, const std::string& b) {
    std::string c = b;
    c[0] ^= 0x20;
    Write(p, c);
  });
  Check("length field flipped", [](const std::string& p, const std::string& b) {
    std::string c = b;
    c[8 + 64] ^= 1;
    Write(p, c);
  });
  for (size_t frac : {3, 2}) {  // payload bytes in the middle, and near the start
    Check("payload byte flipped", [frac](const std::string& p, const std::string& b) {
      std::string c = b;
      c[c.size() / frac] ^= 0x01;
      Write(p, c);
    });
  }
  Check("last byte flipped", [](const std::string& p, const std::string& b) {
    std::string c = b;
    c.back() ^= static_cast<char>(0x80);
    Write(p, c);
  });
  Check("garbage", [](const std::string& p, const std::string& b) {
    std::string g(b.size(), '\0');
    for (size_t i = 0; i < g.size(); ++i) g[i] = static_cast<char>((i * 131 + 7) & 0xff);
    Write(p, g);
  });
}

TEST_F(DbCacheTest, AnotherKeysFileIsForeign) {
  DatabaseCache cache(dir_);
  const Inputs a = Literals();
  Inputs b = a;
  b.ids[0] = 99;
  hs_database_t* db = Compile(a);
  ASSERT_NE(db, nullptr);
  ASSERT_TRUE(cache.Store(a.Key(), db));
  fs::copy_file(cache.PathFor(a.Key()), cache.PathFor(b.Key()));
  EXPECT_EQ(cache.Load(b.Key()), nullptr) << "a database stored for other inputs";
  EXPECT_EQ(cache.stats().bad_files, 1u);
  EXPECT_FALSE(fs::exists(cache.PathFor(b.Key())));
  hs_database_t* ok = cache.Load(a.Key());
  EXPECT_NE(ok, nullptr) << "the original is untouched";
  hs_free_database(ok);
  hs_free_database(db);
}

TEST_F(DbCacheTest, KeysThatAreNotKeysAreRefused) {
  DatabaseCache cache(dir_);
  hs_database_t* db = Compile(Literals());
  ASSERT_NE(db, nullptr);
  const std::string escape = "../../" + std::string(58, 'a');
  for (const std::string& k : {std::string(), escape, std::string(64, 'A'), std::string(63, 'a')}) {
    EXPECT_FALSE(cache.Store(k, db)) << k;
    EXPECT_EQ(cache.Load(k), nullptr) << k;
  }
  EXPECT_EQ(cache.stats().store_errors, 4u);
  EXPECT_EQ(cache.stats().misses, 4u);
  EXPECT_FALSE(cache.Store(Literals().Key(), nullptr));
  EXPECT_EQ(CountFiles(dir_), 0u);
  EXPECT_FALSE(fs::exists(root_ + "/" + std::string(58, 'a') + ".hsdb"));
  hs_free_database(db);
}

TEST_F(DbCacheTest, UnusableDirectoriesOnlyCostTheCaching) {
  const Inputs in = Literals();
  hs_database_t* db = Compile(in);
  ASSERT_NE(db, nullptr);
  {  // a path through a regular file
    std::ofstream(root_ + "/file") << "x";
    DatabaseCache cache(root_ + "/file/cache");
    EXPECT_FALSE(cache.ok());
    EXPECT_NE(cache.error().find("file"), std::string::npos) << cache.error();
    EXPECT_FALSE(cache.Store(in.Key(), db));
    EXPECT_EQ(cache.Load(in.Key()), nullptr);
    EXPECT_EQ(cache.stats().store_errors, 1u);
    EXPECT_EQ(cache.stats().misses, 1u);
    EXPECT_EQ(cache.Prune(0), 0u);
  }
  {  // a directory under /proc (not even root can write there)
    DatabaseCache cache("/proc/wardgate-cache-test");
    EXPECT_FALSE(cache.ok());
    EXPECT_FALSE(cache.Store(in.Key(), db));
    EXPECT_EQ(cache.stats().store_errors, 1u);
  }
  {  // writable by others: someone else could plant a database
    const std::string open_dir = root_ + "/open";
    fs::create_directory(open_dir);
    fs::permissions(open_dir, fs::perms::all);
    DatabaseCache cache(open_dir);
    EXPECT_FALSE(cache.ok());
    EXPECT_NE(cache.error().find("writable by group or others"), std::string::npos) << cache.error();
  }
  {  // the directory disappears after the cache was opened
    DatabaseCache cache(dir_);
    ASSERT_TRUE(cache.ok());
    fs::remove_all(dir_);
    EXPECT_FALSE(cache.Store(in.Key(), db));
    EXPECT_EQ(cache.stats().store_errors, 1u);
    EXPECT_EQ(cache.Load(in.Key()), nullptr);
  }
  if (::geteuid() != 0) {  // read-only for its owner (root ignores the mode)
    DatabaseCache cache(dir_);
    ASSERT_TRUE(cache.ok());
    fs::permissions(dir_, fs::perms::owner_read | fs::perms::owner_exec);
    EXPECT_FALSE(cache.Store(in.Key(), db));
    EXPECT_EQ(cache.stats().store_errors, 1u);
    EXPECT_EQ(CountFiles(dir_), 0u);
    fs::permissions(dir_, fs::perms::owner_all);
  }
  hs_free_database(db);
}

TEST_F(DbCacheTest, PruneKeepsTheMostRecentlyUsed) {
  DatabaseCache cache(dir_);
  ASSERT_TRUE(cache.ok());
  std::vector<std::string> keys;
  std::vector<hs_database_t*> dbs;
  for (unsigned i = 0; i < 4; ++i) {
    Inputs in = Literals();
    in.ids[0] = 100 + i;
    dbs.push_back(Compile(in));
    ASSERT_NE(dbs.back(), nullptr);
    keys.push_back(in.Key());
    ASSERT_TRUE(cache.Store(keys.back(), dbs.back()));
  }
  // Ages: keys[0] oldest ... keys[3] newest, an hour apart.
  const time_t now = ::time(nullptr);
  for (size_t i = 0; i < keys.size(); ++i) {
    const time_t t = now - 3600 * static_cast<time_t>(10 - i);
    const timespec ts[2] = {{t, 0}, {t, 0}};
    ASSERT_EQ(::utimensat(AT_FDCWD, cache.PathFor(keys[i]).c_str(), ts, 0), 0);
  }
  std::vector<uint64_t> size;
  for (const auto& k : keys) size.push_back(fs::file_size(cache.PathFor(k)));
  // Files that are not ours stay, whatever their age; a stale temporary goes, a fresh one stays.
  std::ofstream(dir_ + "/README") << "operator notes";
  std::ofstream(dir_ + "/.tmp-stale") << "x";
  std::ofstream(dir_ + "/.tmp-fresh") << "x";
  const timespec old[2] = {{now - 7200, 0}, {now - 7200, 0}};
  ASSERT_EQ(::utimensat(AT_FDCWD, (dir_ + "/.tmp-stale").c_str(), old, 0), 0);
  ASSERT_EQ(::utimensat(AT_FDCWD, (dir_ + "/README").c_str(), old, 0), 0);

  // Using the oldest makes it the most recent.
  hs_database_t* used = cache.Load(keys[0]);
  ASSERT_NE(used, nullptr);
  hs_free_database(used);

  EXPECT_EQ(cache.Prune(size[0] + size[1] + size[2] + size[3]), 0u) << "at the limit";
  // Room for two and a half: the two least recently used go (keys[1], then keys[2]).
  EXPECT_EQ(cache.Prune(size[0] + size[3] + std::min(size[1], size[2]) / 2), 2u);
  EXPECT_TRUE(fs::exists(cache.PathFor(keys[0]))) << "just used";
  EXPECT_FALSE(fs::exists(cache.PathFor(keys[1])));
  EXPECT_FALSE(fs::exists(cache.PathFor(keys[2])));
  EXPECT_TRUE(fs::exists(cache.PathFor(keys[3])));
  EXPECT_TRUE(fs::exists(dir_ + "/README"));
  EXPECT_FALSE(fs::exists(dir_ + "/.tmp-stale"));
  EXPECT_TRUE(fs::exists(dir_ + "/.tmp-fresh"));
  // The survivors still load.
  for (size_t i : {0, 3}) {
    hs_database_t* db = cache.Load(keys[i]);
    EXPECT_NE(db, nullptr) << i;
    hs_free_database(db);
  }
  // Room for one: the most recent (made keys[3] here) survives.
  const timespec later[2] = {{now + 10, 0}, {now + 10, 0}};
  ASSERT_EQ(::utimensat(AT_FDCWD, cache.PathFor(keys[3]).c_str(), later, 0), 0);
  EXPECT_EQ(cache.Prune(size[3]), 1u);
  EXPECT_FALSE(fs::exists(cache.PathFor(keys[0])));
  EXPECT_TRUE(fs::exists(cache.PathFor(keys[3])));
  EXPECT_EQ(cache.Prune(0), 1u);
  EXPECT_FALSE(fs::exists(cache.PathFor(keys[3])));
  for (auto* db : dbs) hs_free_database(db);
}

TEST_F(DbCacheTest, ConcurrentStoresOfOneKeyLeaveOneValidFile) {
  DatabaseCache shared(dir_);
  ASSERT_TRUE(shared.ok());
  const Inputs in = Literals();
  const std::string key = in.Key();
  hs_database_t* db = Compile(in);
  ASSERT_NE(db, nullptr);
  const auto want = Scan(db, kTraffic);
  constexpr int kThreads = 6, kRounds = 20;
  std::atomic<int> bad_loads{0}, own_ok{0};
  std::vector<std::thread> threads;
  for (int t = 0; t < kThreads; ++t) {
    threads.emplace_back([&, t] {
      // Half share one object, half have their own (as separate processes would).
      DatabaseCache own(dir_);
      DatabaseCache& c = (t % 2 == 0) ? shared : own;
      for (int i = 0; i < kRounds; ++i) {
        if (c.Store(key, db) && &c == &own) own_ok.fetch_add(1);
        // A reader racing the writers sees a whole database or nothing.
        if (hs_database_t* got = c.Load(key)) {
          if (Scan(got, kTraffic) != want) bad_loads.fetch_add(1);
          hs_free_database(got);
        }
      }
    });
  }
  for (auto& th : threads) th.join();
  EXPECT_EQ(bad_loads.load(), 0);
  EXPECT_EQ(shared.stats().stores, static_cast<uint64_t>(kThreads / 2 * kRounds));
  EXPECT_EQ(own_ok.load(), kThreads / 2 * kRounds);
  EXPECT_EQ(shared.stats().store_errors, 0u);
  EXPECT_EQ(shared.stats().bad_files, 0u);
  EXPECT_EQ(shared.stats().hits, static_cast<uint64_t>(kThreads / 2 * kRounds)) << "each load follows a store";
  EXPECT_EQ(CountFiles(dir_), 1u) << "one file, no temporaries";
  DatabaseCache fresh(dir_);
  hs_database_t* loaded = fresh.Load(key);
  ASSERT_NE(loaded, nullptr);
  EXPECT_EQ(Scan(loaded, kTraffic), want);
  hs_free_database(loaded);
  hs_free_database(db);
}

}  // namespace
}  // namespace wardgate::rules
