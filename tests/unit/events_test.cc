// EventHub: WatchEvents subscribers get events in order; a slow one loses the oldest
// (counted) rather than blocking the control thread; Close() ends every stream.
#include <gtest/gtest.h>

#include <thread>

#include "dataplane/control/events.h"

namespace wardgate::control {
namespace {

TEST(EventHub, DeliversInOrderToEverySubscriber) {
  EventHub hub;
  auto a = hub.Subscribe();
  auto b = hub.Subscribe();
  hub.Publish("1");
  hub.Publish("2");
  for (auto& s : {a, b}) {
    EXPECT_EQ(s->Next(100), "1");
    EXPECT_EQ(s->Next(100), "2");
    EXPECT_EQ(s->Next(10), std::nullopt);
  }
}

TEST(EventHub, SlowSubscriberLosesOldestAndCounts) {
  EventHub hub(3);
  auto s = hub.Subscribe();
  for (int i = 0; i < 5; ++i) hub.Publish(std::to_string(i));
  EXPECT_EQ(s->lost(), 2u);
  EXPECT_EQ(s->Next(10), "2");
}

TEST(EventHub, UnsubscribedGetsNothing) {
  EventHub hub;
  auto s = hub.Subscribe();
  hub.Unsubscribe(s);
  hub.Publish("x");
  EXPECT_EQ(s->Next(10), std::nullopt);
}

TEST(EventHub, CloseWakesWaiter) {
  EventHub hub;
  auto s = hub.Subscribe();
  std::thread t([&] { EXPECT_EQ(s->Next(10000), std::nullopt); });
  hub.Close();
  t.join();
  EXPECT_TRUE(s->closed());
  EXPECT_TRUE(hub.Subscribe()->closed());
}

}  // namespace
}  // namespace wardgate::control
