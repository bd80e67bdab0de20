// The control thread's end of the event rings: turns alert records into EVE JSON
// lines, appends them to the EVE file and hands them to WatchEvents subscribers.
// Threads: control thread only (or the offline runner).
#pragma once

#include <cstdio>
#include <functional>
#include <string>

#include "dataplane/events/alert.h"
#include "dataplane/events/event_ring.h"

namespace wardgate::events {

class EveSink {
 public:
  using Publish = std::function<void(const std::string&)>;

  // path empty: no file. Throws std::runtime_error if the file cannot be opened.
  EveSink(const std::string& path, bool with_payload, bool with_packet, Publish publish = nullptr);
  ~EveSink();
  EveSink(const EveSink&) = delete;
  EveSink& operator=(const EveSink&) = delete;

  // Called with every record drained, before it is written (the controller's way to
  // see what rules asked for, e.g. a quarantine).
  using RecordHook = std::function<void(const AlertRecord&)>;
  void SetRecordHook(RecordHook hook) { hook_ = std::move(hook); }
  // One event of the control thread's own (quarantine, device) to the file and watchers.
  void Write(const std::string& json) { Line(json); }

  // Writes every record in the ring; returns how many.
  size_t Drain(EventRing<AlertRecord>& ring);
  void Flush();

  uint64_t alerts() const { return alerts_; }
  uint64_t drops() const { return drops_; }
  uint64_t anomalies() const { return anomalies_; }
  uint64_t policy_events() const { return policy_; }

 private:
  void Line(const std::string& json);

  FILE* file_ = nullptr;
  bool with_payload_, with_packet_;
  Publish publish_;
  RecordHook hook_;
  uint64_t alerts_ = 0, drops_ = 0, anomalies_ = 0, policy_ = 0;
};

}  // namespace wardgate::events
