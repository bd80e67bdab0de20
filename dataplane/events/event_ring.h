// A single-producer single-consumer ring of fixed-size event slots: a worker pushes,
// the control thread pops. Push never blocks and never allocates: a full ring drops
// the event and counts it (DESIGN.md: a full ring never stalls a worker).
#pragma once

#include <atomic>
#include <cstddef>
#include <cstdint>
#include <memory>

namespace wardgate::events {

template <typename T>
class EventRing {
 public:
  // capacity: rounded up to a power of two.
  explicit EventRing(size_t capacity) {
    size_t c = 1;
    while (c < capacity) c <<= 1;
    mask_ = c - 1;
    slots_ = std::make_unique<T[]>(c);
  }

  // Producer (the owning worker): a slot to fill, or nullptr when full (counted).
  // Call Commit() after filling it. keep_free: refuse while fewer slots than that would
  // stay free (less important events leave room for the ones that must get through).
  T* Reserve(size_t keep_free = 0) {
    const uint64_t head = head_.load(std::memory_order_relaxed);
    if (head - tail_.load(std::memory_order_acquire) + keep_free > mask_) {
      lost_.store(lost_.load(std::memory_order_relaxed) + 1, std::memory_order_relaxed);
      return nullptr;
    }
    return &slots_[head & mask_];
  }
  void Commit() { head_.store(head_.load(std::memory_order_relaxed) + 1, std::memory_order_release); }

  // Consumer (the control thread): the oldest event, or nullptr; Release() after use.
  const T* Peek() const {
    const uint64_t tail = tail_.load(std::memory_order_relaxed);
    if (tail == head_.load(std::memory_order_acquire)) return nullptr;
    return &slots_[tail & mask_];
  }
  void Release() { tail_.store(tail_.load(std::memory_order_relaxed) + 1, std::memory_order_release); }

  uint64_t lost() const { return lost_.load(std::memory_order_relaxed); }
  uint64_t pushed() const { return head_.load(std::memory_order_relaxed); }
  size_t capacity() const { return mask_ + 1; }

 private:
  std::unique_ptr<T[]> slots_;
  size_t mask_ = 0;
  alignas(64) std::atomic<uint64_t> head_{0};  // written by the producer
  alignas(64) std::atomic<uint64_t> tail_{0};  // written by the consumer
  alignas(64) std::atomic<uint64_t> lost_{0};  // written by the producer
};

}  // namespace wardgate::events
