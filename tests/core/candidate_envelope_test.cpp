#include "candidate_envelope.hpp"

#include <gtest/gtest.h>

#include <string>

namespace p2pmesh {
namespace {

TEST(CandidateEnvelope, RoundTripsTheBrowserFormat) {
  const std::string inner =
      R"({"candidate":"candidate:1 1 udp 2122260223 127.0.0.1 5000 typ host","sdpMid":"0","sdpMLineIndex":0,"usernameFragment":"ab\"c"})";
  const std::string json = wrap_candidate(inner, 17);
  const auto envelope = unwrap_candidate(json);
  ASSERT_TRUE(envelope);
  EXPECT_EQ(envelope->candidate_json, inner);
  EXPECT_EQ(envelope->initiator, 17u);
}

TEST(CandidateEnvelope, AcceptsAnyMemberOrderAndWhitespace) {
  const auto envelope =
      unwrap_candidate(" { \"initiator\" : 5 , \"extra\": [1, {\"a\": null}], \"candidate\" : {} } ");
  ASSERT_TRUE(envelope);
  EXPECT_EQ(envelope->initiator, 5u);
  EXPECT_EQ(envelope->candidate_json, "{}");
}

TEST(CandidateEnvelope, RejectsMalformedOrIncompleteJsonWithoutCrashing) {
  for (const char* bad :
       {"", "{", "}", "[]", "{\"candidate\":{}}", "{\"initiator\":3}", "{\"candidate\":{},\"initiator\":-1}",
        "{\"candidate\":{},\"initiator\":\"3\"}", "{\"candidate\":{,\"initiator\":3}",
        "{\"candidate\":{}\"initiator\":3}", "{\"candidate\":{},\"initiator\":3} x",
        "{\"candidate\":\"unterminated,\"initiator\":3}", "{\"candidate\":{},\"initiator\":99999999999}"}) {
    EXPECT_FALSE(unwrap_candidate(bad)) << bad;
  }
  std::string deep(100000, '[');  // hostile nesting is bounded, not recursed
  EXPECT_FALSE(unwrap_candidate("{\"candidate\":" + deep + ",\"initiator\":1}"));
}

}  // namespace
}  // namespace p2pmesh
