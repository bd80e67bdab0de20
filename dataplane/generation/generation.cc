#include "dataplane/generation/generation.h"

#include <cstdlib>
#include <new>
#include <stdexcept>

namespace wardgate::generation {

GenerationStore::GenerationStore(uint32_t max_readers) {
  const size_t size = rte_rcu_qsbr_get_memsize(max_readers);
  // The QSBR variable only needs cache-line alignment, not EAL memory, so unit tests
  // can use the store without hugepages.
  qsbr_ = static_cast<rte_rcu_qsbr*>(std::aligned_alloc(RTE_CACHE_LINE_SIZE,
                                                        RTE_ALIGN_CEIL(size, RTE_CACHE_LINE_SIZE)));
  if (!qsbr_) throw std::bad_alloc();
  if (rte_rcu_qsbr_init(qsbr_, max_readers) != 0) {
    std::free(qsbr_);
    throw std::runtime_error("rte_rcu_qsbr_init failed");
  }
  for (uint32_t i = 0; i < max_readers; ++i) rte_rcu_qsbr_thread_register(qsbr_, i);
}

GenerationStore::~GenerationStore() {
  delete current_.load();
  std::free(qsbr_);
}

std::unique_ptr<Generation> Generation::SameTopology(const Generation& cur) {
  auto g = std::make_unique<Generation>();
  g->peer = cur.peer;
  g->max_frame_len = cur.max_frame_len;
  g->toward_devices = cur.toward_devices;
  g->hygiene = cur.hygiene;
  g->pair_of_port = cur.pair_of_port;
  g->segmentation = cur.segmentation;
  g->quarantines = cur.quarantines;
  g->policy_version = cur.policy_version;
  g->rules = cur.rules;
  g->rules_version = cur.rules_version;
  g->scratch = cur.scratch;
  g->thresholds = cur.thresholds;
  g->action_rank = cur.action_rank;
  return g;
}

void GenerationStore::ReaderOnline(uint32_t reader) { rte_rcu_qsbr_thread_online(qsbr_, reader); }

void GenerationStore::ReaderOffline(uint32_t reader) { rte_rcu_qsbr_thread_offline(qsbr_, reader); }

uint64_t GenerationStore::Publish(std::unique_ptr<Generation> next,
                                  std::unique_ptr<const Generation>* retired) {
  std::lock_guard lock(publish_mutex_);
  next->id = next_id_++;
  const uint64_t id = next->id;
  const Generation* old = current_.exchange(next.release(), std::memory_order_acq_rel);
  // Blocks until each online reader reported quiescent after the exchange; readers
  // that are offline (stopped workers) are skipped.
  rte_rcu_qsbr_synchronize(qsbr_, RTE_QSBR_THRID_INVALID);
  if (retired) retired->reset(old);
  else delete old;
  return id;
}

}  // namespace wardgate::generation
