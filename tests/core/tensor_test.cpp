#include <compress/error.h>
#include <compress/tensor.h>
#include <gtest/gtest.h>

#include <cmath>
#include <limits>

namespace compress {
namespace {

TEST(Half, RoundTripsExactValues) {
  for (float v : {0.0f, -0.0f, 1.0f, -2.5f, 65504.0f, 6.103515625e-05f, 5.960464477539063e-08f}) {
    EXPECT_EQ(half_to_float(float_to_half(v)), v) << v;
  }
}

TEST(Half, RoundsToNearestEven) {
  // 1 + 2^-11 lies exactly between 1 and 1 + 2^-10: ties go to the even mantissa (1.0).
  EXPECT_EQ(float_to_half(1.0f + std::ldexp(1.0f, -11)), 0x3c00);
  // 1 + 3 * 2^-11 lies between 1 + 2^-10 (odd) and 1 + 2^-9 (even): rounds up to even.
  EXPECT_EQ(float_to_half(1.0f + 3 * std::ldexp(1.0f, -11)), 0x3c02);
  EXPECT_EQ(float_to_half(70000.0f), 0x7c00);  // overflow to inf
  EXPECT_EQ(float_to_half(-std::numeric_limits<float>::infinity()), 0xfc00);
  EXPECT_TRUE(std::isnan(half_to_float(float_to_half(std::nanf("")))));
}

TEST(Tensor, DecodesRawAndTypedFields) {
  const std::vector<float> values = {1.5f, -2.0f, 3.25f};
  TensorProto raw = make_float_tensor("w", {3}, values);
  EXPECT_EQ(to_floats(raw), values);
  TensorProto typed;
  typed.set_name("t");
  typed.set_data_type(TensorProto::INT8);
  typed.add_dims(2);
  typed.add_int32_data(-3);
  typed.add_int32_data(7);
  EXPECT_EQ(to_floats(typed), (std::vector<float>{-3.0f, 7.0f}));
  EXPECT_EQ(to_int64s(typed), (std::vector<int64_t>{-3, 7}));
}

TEST(Tensor, AllFiniteFindsEveryInfAndNanAtAnyPosition) {
  const float kBad[] = {std::numeric_limits<float>::infinity(), -std::numeric_limits<float>::infinity(),
                        std::numeric_limits<float>::quiet_NaN(), -std::numeric_limits<float>::signaling_NaN()};
  std::vector<float> v(37);
  for (size_t i = 0; i < v.size(); ++i) v[i] = (i % 2 ? -1.0f : 1.0f) * std::ldexp(1.0f, static_cast<int>(i) * 7 - 140);
  v[5] = std::numeric_limits<float>::max();
  v[6] = -std::numeric_limits<float>::max();
  v[7] = std::numeric_limits<float>::denorm_min();
  v[8] = -0.0f;
  EXPECT_TRUE(all_finite(v));
  EXPECT_TRUE(all_finite({}));
  for (const float bad : kBad)
    for (size_t at : {size_t{0}, size_t{16}, v.size() - 1}) {
      std::vector<float> w = v;
      w[at] = bad;
      EXPECT_FALSE(all_finite(w)) << bad << " at " << at;
    }
}

TEST(Tensor, RejectsRawDataOfWrongLength) {
  TensorProto t = make_float_tensor("w", {3}, std::vector<float>{1, 2, 3});
  t.mutable_raw_data()->resize(8);
  try {
    validate_tensor(t);
    FAIL() << "expected an error";
  } catch (const Error& e) {
    EXPECT_EQ(e.code(), ExitCode::kBadInput);
    EXPECT_STREQ(e.what(), "tensor 'w': raw_data holds 8 bytes but dims and type need 12");
  }
}

TEST(Error, OneLineFoldsLineBreaks) {
  EXPECT_EQ(one_line("bad node\n  at graph g\r\n"), "bad node   at graph g");
  EXPECT_EQ(one_line("plain"), "plain");
}

TEST(Tensor, PackedBytesCountsInt4AsHalfBytes) {
  TensorProto t;
  t.set_data_type(22);  // INT4
  t.add_dims(3);
  EXPECT_EQ(packed_bytes(t), 2);
  EXPECT_EQ(dtype_name(22), "int4");
}

}  // namespace
}  // namespace compress
