// ISQ rules for the group-affine types (HQQ, AFQ): sensitive-tensor promotion as mistral.rs,
// row-length fallbacks, and the types accepted by --isq.
#include <gtest/gtest.h>

#include "model/isq.h"
#include "quant/type_traits.h"

namespace insitu {
namespace {

using Q = QuantType;

TEST(IsqGroupAffine, AfqPromotesKeepingTheGroupAndHqqStays) {
  EXPECT_EQ(isq_promoted_type(Q::kAFQ2), Q::kAFQ6);
  EXPECT_EQ(isq_promoted_type(Q::kAFQ3), Q::kAFQ6);
  EXPECT_EQ(isq_promoted_type(Q::kAFQ4), Q::kAFQ6);
  EXPECT_EQ(isq_promoted_type(Q::kAFQ6), Q::kAFQ8);
  EXPECT_EQ(isq_promoted_type(Q::kAFQ8), Q::kAFQ8);
  EXPECT_EQ(isq_promoted_type(Q::kAFQ4_G32), Q::kAFQ6_G32);
  EXPECT_EQ(isq_promoted_type(Q::kAFQ2_G128), Q::kAFQ6_G128);
  EXPECT_EQ(isq_promoted_type(Q::kAFQ6_G128), Q::kAFQ8_G128);
  // HQQ: promoted to hqq8 at <= 4 bits (mistral.rs does not promote HQQ; see isq.h).
  for (Q t : {Q::kHQQ2, Q::kHQQ3, Q::kHQQ4, Q::kHQQ8}) EXPECT_EQ(isq_promoted_type(t), Q::kHQQ8);
}

TEST(IsqGroupAffine, RowFallbacks) {
  EXPECT_EQ(isq_row_fallback(Q::kAFQ4, 576), Q::kAFQ4);
  EXPECT_EQ(isq_row_fallback(Q::kAFQ4, 96), Q::kAFQ4_G32);
  EXPECT_EQ(isq_row_fallback(Q::kAFQ3_G128, 576), Q::kAFQ3_G32);
  EXPECT_EQ(isq_row_fallback(Q::kAFQ8_G32, 100), Q::kF16);
  EXPECT_EQ(isq_row_fallback(Q::kAFQ6, 100), Q::kF16);
  EXPECT_EQ(isq_row_fallback(Q::kHQQ4, 576), Q::kHQQ4);
  EXPECT_EQ(isq_row_fallback(Q::kHQQ4, 96), Q::kQ4_1);
  EXPECT_EQ(isq_row_fallback(Q::kHQQ2, 96), Q::kQ4_1);
  EXPECT_EQ(isq_row_fallback(Q::kHQQ8, 96), Q::kQ8_0);
  EXPECT_EQ(isq_row_fallback(Q::kHQQ3, 100), Q::kF16);
}

TEST(IsqGroupAffine, AcceptedByIsq) {
  EXPECT_EQ(parse_isq_type("hqq4"), Q::kHQQ4);
  EXPECT_EQ(parse_isq_type("AFQ8"), Q::kAFQ8);
  EXPECT_EQ(parse_isq_type("afq4_g128"), Q::kAFQ4_G128);
}

}  // namespace
}  // namespace insitu
