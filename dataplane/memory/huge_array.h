// HugeArray: a fixed-size array for the large per-worker tables (flows, flow index
// buckets, stream pools).
//
// Why: those tables are touched at random, about one cache line per packet; on 4 KiB
// pages each touch is also a TLB miss (100k flows span 5k pages of flows alone). The
// array is mapped 2 MiB-aligned and marked MADV_HUGEPAGE, so the kernel backs it with
// transparent huge pages (Debian's default THP mode is "madvise"); where THP is off
// it is ordinary memory. Every element is value-initialised here, which also faults
// every page in before the worker starts.
#pragma once

#include <sys/mman.h>

#include <cstddef>
#include <cstdint>
#include <new>
#include <type_traits>
#include <utility>

namespace wardgate::memory {

template <typename T>
class HugeArray {
 public:
  static constexpr size_t kHugePage = size_t(2) << 20;

  HugeArray() = default;
  explicit HugeArray(size_t n) : n_(n) {
    if (n == 0) return;
    if (n > (SIZE_MAX - kHugePage) / sizeof(T)) throw std::bad_alloc();
    // Round up to whole huge pages and over-map one more to align the start to one.
    map_bytes_ = (n * sizeof(T) + kHugePage - 1) / kHugePage * kHugePage + kHugePage;
    void* p = mmap(nullptr, map_bytes_, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
    if (p == MAP_FAILED) throw std::bad_alloc();
    map_ = p;
    const uintptr_t aligned = (reinterpret_cast<uintptr_t>(p) + kHugePage - 1) & ~(kHugePage - 1);
    data_ = reinterpret_cast<T*>(aligned);
    madvise(data_, map_bytes_ - (aligned - reinterpret_cast<uintptr_t>(p)), MADV_HUGEPAGE);  // advice only
    for (size_t i = 0; i < n; ++i) new (data_ + i) T();
  }
  ~HugeArray() { Release(); }

  HugeArray(const HugeArray&) = delete;
  HugeArray& operator=(const HugeArray&) = delete;
  HugeArray(HugeArray&& o) noexcept { Take(o); }
  HugeArray& operator=(HugeArray&& o) noexcept {
    if (this != &o) {
      Release();
      Take(o);
    }
    return *this;
  }

  T& operator[](size_t i) { return data_[i]; }
  const T& operator[](size_t i) const { return data_[i]; }
  T* get() { return data_; }
  const T* get() const { return data_; }
  size_t size() const { return n_; }

 private:
  void Release() {
    if (!map_) return;
    if constexpr (!std::is_trivially_destructible_v<T>) {
      for (size_t i = 0; i < n_; ++i) data_[i].~T();
    }
    munmap(map_, map_bytes_);
    map_ = nullptr;
    data_ = nullptr;
    n_ = 0;
  }
  void Take(HugeArray& o) {
    map_ = std::exchange(o.map_, nullptr);
    map_bytes_ = std::exchange(o.map_bytes_, 0);
    data_ = std::exchange(o.data_, nullptr);
    n_ = std::exchange(o.n_, 0);
  }

  void* map_ = nullptr;
  size_t map_bytes_ = 0;
  T* data_ = nullptr;
  size_t n_ = 0;
};

}  // namespace wardgate::memory
