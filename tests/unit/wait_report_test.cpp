// util::WaitReport: the one wording of every wait (advisory locks, the migration lock).
#include <gtest/gtest.h>

#include "util/wait_report.hpp"

using previewdb::util::WaitReport;

TEST(WaitReport, FirstLineThenStillWaitingWithTheHolder) {
  EXPECT_EQ(WaitReport::line("the migration lock on database \"x\"", "held by pid 7",
                             std::chrono::seconds(0)),
            "waiting for the migration lock on database \"x\" (held by pid 7)");
  EXPECT_EQ(WaitReport::line("another previewdb working on database \"pr_1\"", "",
                             std::chrono::seconds(20)),
            "still waiting after 20s for another previewdb working on database \"pr_1\"");
}

TEST(WaitReport, AsksWhoOnlyWhenALineIsDue) {
  WaitReport report(std::chrono::seconds(10));
  int asked = 0;
  auto who = [&] {
    ++asked;
    return std::string("someone");
  };
  report.tick("x", who);  // the first line
  report.tick("x", who);  // not due yet
  report.tick("x", who);
  EXPECT_EQ(asked, 1);
}
