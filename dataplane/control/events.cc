#include "dataplane/control/events.h"

#include <chrono>

namespace wardgate::control {

void EventHub::Publish(const std::string& eve_json) {
  std::lock_guard lock(mu_);
  for (const auto& s : subs_) {
    std::lock_guard sl(s->mu_);
    if (s->queue_.size() >= backlog_) {
      s->queue_.pop_front();
      ++s->lost_;
    }
    s->queue_.push_back(eve_json);
    s->cv_.notify_one();
  }
}

std::shared_ptr<EventHub::Subscription> EventHub::Subscribe() {
  auto s = std::make_shared<Subscription>();
  std::lock_guard lock(mu_);
  s->closed_ = closed_;
  subs_.push_back(s);
  return s;
}

void EventHub::Unsubscribe(const std::shared_ptr<Subscription>& s) {
  std::lock_guard lock(mu_);
  subs_.remove(s);
}

void EventHub::Close() {
  std::lock_guard lock(mu_);
  closed_ = true;
  for (const auto& s : subs_) {
    std::lock_guard sl(s->mu_);
    s->closed_ = true;
    s->cv_.notify_all();
  }
}

std::optional<std::string> EventHub::Subscription::Next(int timeout_ms) {
  std::unique_lock lock(mu_);
  cv_.wait_for(lock, std::chrono::milliseconds(timeout_ms), [&] { return closed_ || !queue_.empty(); });
  if (queue_.empty()) return std::nullopt;
  auto e = std::move(queue_.front());
  queue_.pop_front();
  return e;
}

bool EventHub::Subscription::closed() const {
  std::lock_guard lock(mu_);
  return closed_ && queue_.empty();
}

uint64_t EventHub::Subscription::lost() const {
  std::lock_guard lock(mu_);
  return lost_;
}

}  // namespace wardgate::control
