// AddressIndex: which rules' address lists hold an address.
//
// Why: rules without a prefilter literal are checked on every packet. In ET Open
// most of those are IP-reputation rules (`alert ip [2,000 addresses] any ->
// $HOME_NET any (threshold ...)`): checking each one's list per packet costs ~100 µs.
// Indexed by the addresses of their most specific side, a packet looks its two
// addresses up (two binary searches) and checks only the rules whose lists hold them;
// the full header check still runs afterwards, so the index only has to be a
// superset.
//
// Layout: the CIDRs cut the address line into elementary intervals; each interval
// keeps the rules whose CIDRs cover it. Very wide CIDRs would repeat a rule in many
// intervals, so the caller indexes only lists of narrow prefixes (Indexable()).
#pragma once

#include <algorithm>
#include <array>
#include <cmath>
#include <cstdint>
#include <utility>
#include <vector>

#include "rules/rule.h"

namespace wardgate::rules {

class AddressIndex {
 public:
  // The side of `set` can be indexed: explicit CIDRs (not `any`), each at least a
  // /8 (IPv4) or /16 (IPv6). Exclusions are fine (the header check applies them).
  static bool Indexable(const AddressSet& set) {
    if (set.include.empty()) return false;
    for (const Cidr& c : set.include) {
      if (c.prefix_len < (c.v6 ? 16 : 8)) return false;
    }
    return true;
  }
  // How many addresses `set` includes (IPv4 and IPv6 alike), to pick the narrower side.
  static double Width(const AddressSet& set) {
    double w = 0;
    for (const Cidr& c : set.include) w += std::ldexp(1.0, (c.v6 ? 128 : 32) - c.prefix_len);
    return w;
  }

  void Add(const AddressSet& set, uint32_t rule) {
    for (const Cidr& c : set.include) {
      if (c.v6) {
        v6_.Add(Key128(c.addr), c.prefix_len, 128, rule);
      } else {
        v4_.Add(Key32(c.addr), c.prefix_len, 32, rule);
      }
    }
  }
  void Build() {
    v4_.Build();
    v6_.Build();
  }
  bool empty() const { return v4_.empty() && v6_.empty(); }

  // Calls f(rule) for each rule with a CIDR holding `addr` (a rule at most once).
  template <class F>
  void ForEach(const std::array<uint8_t, 16>& addr, bool v6, F&& f) const {
    if (v6) {
      v6_.ForEach(Key128(addr), f);
    } else {
      v4_.ForEach(Key32(addr), f);
    }
  }

 private:
  using U128 = unsigned __int128;
  static uint32_t Key32(const std::array<uint8_t, 16>& a) {
    return uint32_t(a[0]) << 24 | uint32_t(a[1]) << 16 | uint32_t(a[2]) << 8 | a[3];
  }
  static U128 Key128(const std::array<uint8_t, 16>& a) {
    U128 v = 0;
    for (uint8_t b : a) v = v << 8 | b;
    return v;
  }

  template <typename K>
  class Table {
   public:
    void Add(K addr, int prefix, int bits, uint32_t rule) {
      const K host = prefix >= bits ? K(0) : (K(~K(0)) >> prefix);
      const K lo = addr & ~host;
      ranges_.push_back({lo, K(lo | host), rule});
    }
    bool empty() const { return starts_.empty(); }
    void Build() {
      std::vector<K> points;
      for (const Range& r : ranges_) {
        points.push_back(r.lo);
        if (r.hi != K(~K(0))) points.push_back(K(r.hi + 1));
      }
      std::sort(points.begin(), points.end());
      points.erase(std::unique(points.begin(), points.end()), points.end());
      std::sort(ranges_.begin(), ranges_.end(), [](const Range& a, const Range& b) { return a.lo < b.lo; });
      // Sweep: the ranges covering each elementary interval [points[i], points[i+1]).
      std::vector<const Range*> active;
      size_t next = 0;
      offsets_.push_back(0);
      for (size_t i = 0; i < points.size(); ++i) {
        const K at = points[i];
        active.erase(std::remove_if(active.begin(), active.end(), [at](const Range* r) { return r->hi < at; }),
                     active.end());
        while (next < ranges_.size() && ranges_[next].lo == at) active.push_back(&ranges_[next++]);
        std::vector<uint32_t> here;
        for (const Range* r : active) here.push_back(r->rule);
        std::sort(here.begin(), here.end());
        here.erase(std::unique(here.begin(), here.end()), here.end());
        ids_.insert(ids_.end(), here.begin(), here.end());
        offsets_.push_back(static_cast<uint32_t>(ids_.size()));
      }
      starts_ = std::move(points);
      ranges_.clear();
      ranges_.shrink_to_fit();
    }
    template <class F>
    void ForEach(K addr, F& f) const {
      auto it = std::upper_bound(starts_.begin(), starts_.end(), addr);
      if (it == starts_.begin()) return;  // below every range
      const size_t i = static_cast<size_t>(it - starts_.begin()) - 1;
      for (uint32_t k = offsets_[i]; k < offsets_[i + 1]; ++k) f(ids_[k]);
    }

   private:
    struct Range {
      K lo, hi;
      uint32_t rule;
    };
    std::vector<Range> ranges_;   // until Build()
    std::vector<K> starts_;       // elementary interval i is [starts_[i], starts_[i+1])
    std::vector<uint32_t> offsets_;  // rules of interval i: ids_[offsets_[i] .. offsets_[i+1])
    std::vector<uint32_t> ids_;
  };

  Table<uint32_t> v4_;
  Table<U128> v6_;
};

}  // namespace wardgate::rules
