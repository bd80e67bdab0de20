// Fan-out of EVE events from the control thread to WatchEvents streams.
// Threads: Publish() from the control thread; Subscribe()/Next() from gRPC threads.
// A slow subscriber loses its oldest events (counted), it never blocks the publisher.
#pragma once

#include <condition_variable>
#include <cstdint>
#include <deque>
#include <list>
#include <memory>
#include <mutex>
#include <optional>
#include <string>

namespace wardgate::control {

class EventHub {
 public:
  class Subscription;

  explicit EventHub(size_t per_subscriber_backlog = 4096) : backlog_(per_subscriber_backlog) {}

  void Publish(const std::string& eve_json);
  std::shared_ptr<Subscription> Subscribe();
  void Unsubscribe(const std::shared_ptr<Subscription>& s);
  // Wakes every waiting subscriber for good (shutdown).
  void Close();

  class Subscription {
   public:
    // Waits up to timeout_ms for the next event; nullopt on timeout or close.
    std::optional<std::string> Next(int timeout_ms);
    bool closed() const;
    uint64_t lost() const;

   private:
    friend class EventHub;
    mutable std::mutex mu_;
    std::condition_variable cv_;
    std::deque<std::string> queue_;
    bool closed_ = false;
    uint64_t lost_ = 0;
  };

 private:
  size_t backlog_;
  std::mutex mu_;
  std::list<std::shared_ptr<Subscription>> subs_;
  bool closed_ = false;
};

}  // namespace wardgate::control
