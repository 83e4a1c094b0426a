#include "settings_document.h"

#include <gtest/gtest.h>

namespace dims::settings {
namespace {

constexpr const char* kFull = R"(<?xml version="1.0" encoding="UTF-8"?>
<poc-settings xmlns="urn:oma:params:xml:ns:poc:poc-settings"
    xmlns:im="urn:oma:xml:im:service-settings"
    xmlns:x="urn:dims:params:xml:ns:im-settings-ext">
  <entity id="do39s8zksn2d98x">
    <isb-settings><incoming-session-barring active="true"/></isb-settings>
    <am-settings><answer-mode>automatic</answer-mode></am-settings>
    <im:deferred-settings><im:offline-delivery active="1"/></im:deferred-settings>
    <im:vis-settings><im:vis-status active="false"/></im:vis-settings>
    <im:hist-settings>
      <im:hist-activation type="session-mode" active="true"/>
      <im:hist-activation type="pager-large-mode" active="false"/>
    </im:hist-settings>
    <x:pager-large-barring active="true"/>
  </entity>
</poc-settings>)";

TEST(SettingsDocument, ReadsEverySettingByNamespaceAndLocalName) {
  auto r = ParseSettingsDocument(kFull);
  ASSERT_TRUE(r.settings) << r.error;
  EXPECT_TRUE(r.settings->incoming_session_barring);
  EXPECT_TRUE(r.settings->offline_delivery_active);
  EXPECT_FALSE(r.settings->invisibility);
  EXPECT_TRUE(r.settings->store_session_conversations);
  EXPECT_FALSE(r.settings->store_pager_large_conversations);
  EXPECT_TRUE(r.settings->incoming_pager_large_barring);
}

TEST(SettingsDocument, AcceptsBareImElementsAndLeavesTheRestFalse) {
  auto r = ParseSettingsDocument(
      R"(<s:im-settings xmlns:s="urn:oma:xml:im:service-settings"><s:deferred-settings>)"
      R"(<s:offline-delivery active="true"/></s:deferred-settings></s:im-settings>)");
  ASSERT_TRUE(r.settings) << r.error;
  ImSettingsValues expected;
  expected.offline_delivery_active = true;
  EXPECT_EQ(*r.settings, expected);
}

TEST(SettingsDocument, IgnoresKnownNamesInForeignNamespaces) {
  auto r = ParseSettingsDocument(
      R"(<im-settings xmlns="urn:oma:xml:im:service-settings" xmlns:o="urn:other">)"
      R"(<o:offline-delivery active="true"/><o:unknown/></im-settings>)");
  ASSERT_TRUE(r.settings) << r.error;
  EXPECT_FALSE(r.settings->offline_delivery_active);
}

TEST(SettingsDocument, RefusesWhatIsNotWellFormed) {
  auto r = ParseSettingsDocument("<poc-settings><entity></poc-settings>");
  EXPECT_FALSE(r.settings);
  EXPECT_EQ(r.reason, "INVALID_XML");
  EXPECT_FALSE(ParseSettingsDocument("").settings);
  for (const char* body : {
           R"(<im-settings xmlns="urn:oma:xml:im:service-settings"/><im-settings/>)",
           R"(<im-settings xmlns="urn:oma:xml:im:service-settings">&nbsp;</im-settings>)",
           R"(<im-settings xmlns="urn:oma:xml:im:service-settings">a & b</im-settings>)",
           R"(<im-settings xmlns="urn:oma:xml:im:service-settings" a="1" a="2"/>)",
           "<im-settings xmlns=\"urn:oma:xml:im:service-settings\">\xff</im-settings>",
           R"(<x:im-settings xmlns="urn:oma:xml:im:service-settings"/>)",
       }) {
    auto bad = ParseSettingsDocument(body);
    EXPECT_FALSE(bad.settings) << body;
    EXPECT_EQ(bad.reason, "INVALID_XML") << body << ": " << bad.error;
  }
}

TEST(SettingsDocument, RefusesWrongShapesAndValues) {
  struct Case {
    const char* body;
    const char* error_part;
  };
  for (const Case& c : {
           Case{R"(<presence xmlns="urn:ietf:params:xml:ns:pidf"/>)", "root element <presence>"},
           Case{R"(<im-settings xmlns="urn:oma:xml:im:service-settings"><offline-delivery/>)"
                R"(</im-settings>)",
                "lacks the active attribute"},
           Case{R"(<im-settings xmlns="urn:oma:xml:im:service-settings">)"
                R"(<offline-delivery active="yes"/></im-settings>)",
                "active=\"yes\""},
           Case{R"(<im-settings xmlns="urn:oma:xml:im:service-settings">)"
                R"(<hist-activation type="always" active="true"/></im-settings>)",
                "type=\"always\""},
           Case{R"(<!DOCTYPE x [<!ENTITY a "aaaa">]>)"
                R"(<im-settings xmlns="urn:oma:xml:im:service-settings">&a;</im-settings>)",
                "document type declaration"},
       }) {
    auto r = ParseSettingsDocument(c.body);
    EXPECT_FALSE(r.settings) << c.body;
    EXPECT_EQ(r.reason, "SCHEMA_VIOLATION") << c.body;
    EXPECT_NE(r.error.find(c.error_part), std::string::npos) << r.error;
  }
}

TEST(SettingsDocument, ContentTypes) {
  EXPECT_TRUE(IsSettingsContentType("application/poc-settings+xml"));
  EXPECT_TRUE(IsSettingsContentType("Application/POC-Settings+XML; charset=UTF-8"));
  EXPECT_TRUE(IsSettingsContentType("application/xml"));
  EXPECT_FALSE(IsSettingsContentType("application/pidf+xml"));
  EXPECT_FALSE(IsSettingsContentType(""));
}

}  // namespace
}  // namespace dims::settings
