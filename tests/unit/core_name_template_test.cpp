// Preview names from --name-template: {pr}, {repo}, {owner}, validated like every name.
#include <gmock/gmock.h>
#include <gtest/gtest.h>

#include "core/naming.hpp"
#include "util/error.hpp"

using namespace previewdb;
using ::testing::HasSubstr;

namespace {

std::string usage_message(const std::string& tmpl, const std::string& repo = "acme/shop") {
  try {
    core::preview_database_name(tmpl, 12, repo);
  } catch (const Error& e) {
    EXPECT_EQ(e.code(), ExitCode::usage);
    std::string all = e.what();
    for (const auto& h : e.hints()) all += "\nhint: " + h;
    return all;
  }
  ADD_FAILURE() << "no error for " << tmpl;
  return {};
}

}  // namespace

TEST(NameTemplate, NoTemplateIsPrN) {
  EXPECT_EQ(core::preview_database_name("", 12, ""), "pr_12");
  EXPECT_EQ(core::preview_database_name("", 12, "acme/shop"), "pr_12");
}

TEST(NameTemplate, PlaceholdersExpandToValidNames) {
  EXPECT_EQ(core::preview_database_name("pr_{repo}_{pr}", 12, "acme/shop"), "pr_shop_12");
  EXPECT_EQ(core::preview_database_name("{owner}_{repo}_{pr}", 7, "Acme-Corp/My.Site"),
            "acme-corp_my_site_7");
  EXPECT_EQ(core::preview_database_name("preview-{pr}", 3, ""), "preview-3");
}

TEST(NameTemplate, BadTemplatesSayWhatToFix) {
  EXPECT_THAT(usage_message("preview"), HasSubstr("it has no {pr}"));
  EXPECT_THAT(usage_message("pr_{branch}_{pr}"), HasSubstr("unknown placeholder \"{branch}\""));
  EXPECT_THAT(usage_message("pr_{repo}_{pr}", ""), HasSubstr("the repository is not known"));
  EXPECT_THAT(usage_message("PR_{pr}"), HasSubstr("uppercase letter 'P'"));
  EXPECT_THAT(usage_message(std::string(62, 'x') + "_{pr}"), HasSubstr("at most 63"));
  EXPECT_THAT(usage_message("pr_{pr}_{x"), HasSubstr("unknown placeholder \"{x\""));
}
