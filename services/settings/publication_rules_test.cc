#include "publication_rules.h"

#include <gtest/gtest.h>

namespace dims::settings {
namespace {

using std::chrono::seconds;
using Error = PublishOutcome::Error;

class PublicationRules : public ::testing::Test {
 protected:
  PublishOutcome Publish(std::string if_match, std::optional<seconds> expires,
                         std::optional<ImSettingsValues> document) {
    return ApplyPublish(state_, {"poc-settings", std::move(if_match), expires, document}, now_,
                        limits_, [this] { return "etag-" + std::to_string(++etags_); });
  }
  static ImSettingsValues Offline(bool active) {
    ImSettingsValues v;
    v.offline_delivery_active = active;
    return v;
  }

  UserSettings state_;
  Clock::time_point now_ = Clock::time_point(seconds(1'800'000'000));
  PublishLimits limits_{seconds(60), seconds(7200), seconds(3600), 2};
  int etags_ = 0;
};

TEST_F(PublicationRules, InitialRefreshModifyRemove) {
  auto initial = Publish("", seconds(600), Offline(true));
  EXPECT_EQ(initial.error, Error::kNone);
  EXPECT_EQ(initial.kind, PublishKind::kInitial);
  EXPECT_EQ(initial.etag, "etag-1");
  EXPECT_EQ(initial.granted, seconds(600));
  EXPECT_EQ(Resolve(state_, now_).values, Offline(true));
  EXPECT_EQ(Resolve(state_, now_).source, Source::kPublished);

  now_ += seconds(100);
  auto refresh = Publish("etag-1", seconds(600), std::nullopt);
  EXPECT_EQ(refresh.kind, PublishKind::kRefresh);
  EXPECT_EQ(refresh.etag, "etag-2");  // a new entity-tag every time (RFC 3903 4.4)
  EXPECT_EQ(refresh.expires_at, now_ + seconds(600));
  EXPECT_EQ(Publish("etag-1", seconds(600), std::nullopt).error, Error::kUnknownEtag);

  auto modify = Publish("etag-2", std::nullopt, Offline(false));
  EXPECT_EQ(modify.kind, PublishKind::kModify);
  EXPECT_EQ(modify.granted, seconds(3600));  // no Expires: the default
  EXPECT_EQ(Resolve(state_, now_).values, Offline(false));

  auto remove = Publish(modify.etag, seconds(0), std::nullopt);
  EXPECT_EQ(remove.kind, PublishKind::kRemove);
  EXPECT_TRUE(remove.etag.empty());
  EXPECT_TRUE(state_.publications.empty());
  EXPECT_EQ(Resolve(state_, now_).source, Source::kDefault);
}

TEST_F(PublicationRules, RefusalsChangeNothing) {
  EXPECT_EQ(Publish("", std::nullopt, std::nullopt).error, Error::kMissingBody);
  EXPECT_EQ(Publish("", seconds(0), std::nullopt).error, Error::kRemoveWithoutEtag);
  EXPECT_EQ(Publish("", seconds(59), Offline(true)).error, Error::kTooBrief);
  EXPECT_EQ(Publish("nope", seconds(600), std::nullopt).error, Error::kUnknownEtag);
  EXPECT_TRUE(state_.publications.empty());
  Publish("", seconds(600), Offline(true));
  Publish("", seconds(600), Offline(true));
  EXPECT_EQ(Publish("", seconds(600), Offline(true)).error, Error::kTooMany);
  EXPECT_EQ(state_.publications.size(), 2u);
}

TEST_F(PublicationRules, LongIntervalsAreLoweredToTheMaximum) {
  EXPECT_EQ(Publish("", seconds(100000), Offline(true)).granted, seconds(7200));
}

TEST_F(PublicationRules, ExpiredPublicationsFallBackToTheBackendLayer) {
  state_.backend = Offline(true);
  EXPECT_EQ(Resolve(state_, now_).source, Source::kBackend);
  auto p = Publish("", seconds(60), Offline(false));
  EXPECT_EQ(Resolve(state_, now_).source, Source::kPublished);
  now_ += seconds(60);
  EXPECT_EQ(Resolve(state_, now_).source, Source::kBackend);
  EXPECT_EQ(Publish(p.etag, seconds(60), std::nullopt).error, Error::kUnknownEtag);
}

TEST_F(PublicationRules, TheMostRecentlySetDocumentWins) {
  limits_.max_publications = 8;
  auto first = Publish("", seconds(600), Offline(true));
  now_ += seconds(1);
  Publish("", seconds(600), Offline(false));
  EXPECT_EQ(Resolve(state_, now_).values, Offline(false));
  now_ += seconds(1);
  Publish(first.etag, seconds(600), Offline(true));  // modify makes it the newest again
  EXPECT_EQ(Resolve(state_, now_).values, Offline(true));
  now_ += seconds(1);
  auto refreshed = Publish("", seconds(600), Offline(false));
  Publish(refreshed.etag, seconds(600), std::nullopt);  // a refresh does not reorder
  EXPECT_EQ(Resolve(state_, now_).values, Offline(false));
  EXPECT_EQ(NewestFirst(state_, now_).front().etag, "etag-5");
}

}  // namespace
}  // namespace dims::settings
