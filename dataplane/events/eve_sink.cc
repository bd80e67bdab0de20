#include "dataplane/events/eve_sink.h"

#include <cerrno>
#include <cstring>
#include <stdexcept>

namespace wardgate::events {

EveSink::EveSink(const std::string& path, bool with_payload, bool with_packet, Publish publish)
    : with_payload_(with_payload), with_packet_(with_packet), publish_(std::move(publish)) {
  if (path.empty()) return;
  file_ = std::fopen(path.c_str(), "a");
  if (!file_) throw std::runtime_error("cannot open EVE file " + path + ": " + std::strerror(errno));
}

EveSink::~EveSink() {
  if (file_) std::fclose(file_);
}

void EveSink::Line(const std::string& json) {
  if (file_) {
    std::fwrite(json.data(), 1, json.size(), file_);
    std::fputc('\n', file_);
  }
  if (publish_) publish_(json);
}

size_t EveSink::Drain(EventRing<AlertRecord>& ring) {
  size_t n = 0;
  while (const AlertRecord* r = ring.Peek()) {
    if (hook_) hook_(*r);
    if (r->kind != AlertRecord::Kind::kAlert) {
      if (r->kind == AlertRecord::Kind::kAnomaly) {
        Line(AnomalyJson(*r));
        ++anomalies_;
      } else {
        Line(PolicyJson(*r));
        ++policy_;
      }
      ring.Release();
      ++n;
      continue;
    }
    if (r->log_alert) {
      Line(AlertJson(*r, with_payload_, with_packet_));
      ++alerts_;
    }
    // One drop record per blocked packet, after its alert (Suricata logs both).
    if (r->blocked) {
      Line(DropJson(*r));
      ++drops_;
    }
    ring.Release();
    ++n;
  }
  return n;
}

void EveSink::Flush() {
  if (file_) std::fflush(file_);
}

}  // namespace wardgate::events
