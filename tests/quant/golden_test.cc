// Byte-exact conformance against ggml's own quantizer output (../shared/golden/ggml-quants.gguf,
// written by ggml commit d99724f2; see ../shared/golden/README.md).
//
// For every case (gauss, outlier, mixed) and every type the file holds:
//   <c>.<type>      == quantize(<c>.src, no imatrix)
//   <c>.<type>.imat == quantize(<c>.src, <c>.imatrix)
//   <c>.<type>.deq  == dequantize(<c>.<type>) (of .imat where no plain tensor exists), bit for bit
//   <c>.q8_K, <c>.q8_1 == the activation quantizers applied row by row.
// The type list comes from the file, so a type added to the golden data is tested automatically;
// a type whose quantizer or dequantizer is missing from the table fails (it is never skipped).
#include <gtest/gtest.h>

#include <cctype>
#include <cstring>
#include <memory>
#include <set>
#include <sstream>
#include <string>
#include <vector>

#include "io/gguf.h"
#include "quant/type_traits.h"
#include "test_paths.h"

namespace insitu {
namespace {

const char* const kCases[] = {"gauss", "outlier", "mixed"};

std::string golden_path() { return test::shared_dir() + "/golden/ggml-quants.gguf"; }

std::shared_ptr<const gguf::GgufFile> golden() {
  static std::shared_ptr<const gguf::GgufFile> file = gguf::GgufFile::open(golden_path());
  return file;
}

// The ggml type names found in the file: every "<case>.<type>[.imat|.deq]" except the inputs and
// the activation outputs. Empty (and the parametrised tests report why) if the file cannot be read.
std::vector<std::string> golden_types() {
  std::set<std::string> names;
  try {
    for (const gguf::TensorInfo& t : golden()->tensors()) {
      const size_t dot = t.name.find('.');
      if (dot == std::string::npos) continue;
      std::string rest = t.name.substr(dot + 1);
      const size_t dot2 = rest.find('.');
      if (dot2 != std::string::npos) rest = rest.substr(0, dot2);
      if (rest == "src" || rest == "imatrix") continue;
      // q8_K and q8_1 appear only as activation outputs, tested separately.
      if (rest == "q8_K" || rest == "q8_1") {
        if (t.name.find('.', dot + 1) == std::string::npos) continue;
      }
      names.insert(rest);
    }
  } catch (const std::exception& e) {
    return {std::string("<golden file unreadable: ") + e.what() + ">"};
  }
  return {names.begin(), names.end()};
}

const gguf::TensorInfo* find(const std::string& name) { return golden()->find_tensor(name); }

std::vector<float> read_f32(const gguf::TensorInfo& t) {
  EXPECT_EQ(t.type, QuantType::kF32) << t.name;
  std::vector<float> v(static_cast<size_t>(t.n_elements()));
  EXPECT_EQ(t.nbytes, v.size() * sizeof(float)) << t.name;
  std::memcpy(v.data(), t.data, v.size() * sizeof(float));
  return v;
}

// Describes the first byte where `got` differs from `want`, in block terms.
std::string first_difference(const TypeTraits& tt, const uint8_t* got, const uint8_t* want,
                             size_t n, int64_t n_per_row) {
  size_t i = 0;
  while (i < n && got[i] == want[i]) ++i;
  if (i == n) return "";
  const size_t row_bytes = static_cast<size_t>(n_per_row / tt.block_size) * tt.type_size;
  size_t n_diff = 0;
  for (size_t k = i; k < n; ++k) n_diff += got[k] != want[k];
  std::ostringstream os;
  os << tt.ggml_name << ": first difference at byte " << i << " (row " << i / row_bytes
     << ", block " << (i % row_bytes) / tt.type_size << ", byte " << (i % row_bytes) % tt.type_size
     << " of " << tt.type_size << "): got 0x" << std::hex << int{got[i]} << ", ggml wrote 0x"
     << int{want[i]} << std::dec << "; " << n_diff << " of " << n << " bytes differ";
  return os.str();
}

class GoldenType : public ::testing::TestWithParam<std::string> {
 protected:
  // The table row for the parameter, or a test failure.
  const TypeTraits* traits() {
    const std::string& name = GetParam();
    const auto type = parse_quant_type(name);
    if (!type) {
      ADD_FAILURE() << "golden type '" << name << "' is not a known quant type";
      return nullptr;
    }
    return &type_traits(*type);
  }
};

TEST_P(GoldenType, QuantizeMatchesGgmlBytes) {
  const TypeTraits* tt = traits();
  if (tt == nullptr) return;
  ASSERT_NE(tt->quantize, nullptr) << tt->ggml_name << ": no quantizer registered in the type table";
  int compared = 0;
  for (const char* c : kCases) {
    const auto src = read_f32(golden()->tensor(std::string(c) + ".src"));
    const auto imatrix = read_f32(golden()->tensor(std::string(c) + ".imatrix"));
    const gguf::TensorInfo& src_info = golden()->tensor(std::string(c) + ".src");
    const int64_t n_per_row = src_info.ne[0];
    const int64_t nrows = src_info.n_rows();
    ASSERT_EQ(static_cast<int64_t>(imatrix.size()), n_per_row);
    for (const bool with_imatrix : {false, true}) {
      const std::string name = std::string(c) + "." + tt->ggml_name + (with_imatrix ? ".imat" : "");
      const gguf::TensorInfo* want = find(name);
      if (want == nullptr) continue;
      SCOPED_TRACE(name);
      EXPECT_EQ(want->type, tt->type);
      std::vector<uint8_t> got(want->nbytes + 64, 0xA5);  // slack catches overruns
      const size_t n = tt->quantize(src.data(), got.data(), nrows, n_per_row,
                                    with_imatrix ? imatrix.data() : nullptr);
      ASSERT_EQ(n, want->nbytes);
      for (size_t k = n; k < got.size(); ++k) ASSERT_EQ(got[k], 0xA5) << "wrote past the end";
      EXPECT_EQ(first_difference(*tt, got.data(), want->data, n, n_per_row), "");
      ++compared;
    }
  }
  EXPECT_GT(compared, 0) << "no quantized tensors for " << tt->ggml_name;
}

TEST_P(GoldenType, DequantizeMatchesGgmlFloats) {
  const TypeTraits* tt = traits();
  if (tt == nullptr) return;
  ASSERT_NE(tt->dequantize_row, nullptr)
      << tt->ggml_name << ": no dequantizer registered in the type table";
  for (const char* c : kCases) {
    const std::string base = std::string(c) + "." + tt->ggml_name;
    const gguf::TensorInfo* q = find(base);
    if (q == nullptr) q = find(base + ".imat");
    ASSERT_NE(q, nullptr) << base;
    SCOPED_TRACE(q->name);
    const auto want = read_f32(golden()->tensor(base + ".deq"));
    ASSERT_EQ(static_cast<int64_t>(want.size()), q->n_elements());
    std::vector<float> got(want.size());
    const size_t row_bytes = quant_row_size(tt->type, q->ne[0]);
    for (int64_t r = 0; r < q->n_rows(); ++r) {
      tt->dequantize_row(q->data + r * row_bytes, got.data() + r * q->ne[0], q->ne[0]);
    }
    size_t first = got.size();
    for (size_t i = 0; i < got.size(); ++i) {
      if (std::memcmp(&got[i], &want[i], sizeof(float)) != 0) {
        first = i;
        break;
      }
    }
    EXPECT_EQ(first, got.size()) << "first differing element " << first << " (block "
                                 << first / tt->block_size << "): got "
                                 << (first < got.size() ? got[first] : 0.f) << ", ggml "
                                 << (first < got.size() ? want[first] : 0.f);
  }
}

INSTANTIATE_TEST_SUITE_P(Ggml, GoldenType, ::testing::ValuesIn(golden_types()),
                         [](const ::testing::TestParamInfo<std::string>& info) {
                           std::string s;
                           for (char ch : info.param) s += std::isalnum(ch) ? ch : '_';
                           return s;
                         });

TEST(GoldenFile, HoldsTheDocumentedCasesAndTypes) {
  const auto types = golden_types();
  // The README lists 24 weight types; a shrinking list would silently drop coverage.
  EXPECT_GE(types.size(), 24u);
  for (const char* c : kCases) {
    EXPECT_NE(find(std::string(c) + ".src"), nullptr) << c;
    EXPECT_NE(find(std::string(c) + ".imatrix"), nullptr) << c;
  }
}

// The activation quantizers (ggml's quantize_row_q8_K_ref / quantize_row_q8_1_ref), row by row.
class GoldenActivation : public ::testing::TestWithParam<QuantType> {};

TEST_P(GoldenActivation, MatchesGgmlBytes) {
  const TypeTraits& tt = type_traits(GetParam());
  ASSERT_NE(tt.quantize_row_ref, nullptr) << tt.ggml_name << ": no activation quantizer";
  for (const char* c : kCases) {
    const std::string name = std::string(c) + "." + tt.ggml_name;
    SCOPED_TRACE(name);
    const gguf::TensorInfo& info = golden()->tensor(name);
    const gguf::TensorInfo& src_info = golden()->tensor(std::string(c) + ".src");
    const auto src = read_f32(src_info);
    const int64_t n_per_row = src_info.ne[0];
    const size_t row_bytes = quant_row_size(tt.type, n_per_row);
    ASSERT_EQ(info.nbytes, row_bytes * static_cast<size_t>(src_info.n_rows()));
    std::vector<uint8_t> got(info.nbytes);
    for (int64_t r = 0; r < src_info.n_rows(); ++r) {
      tt.quantize_row_ref(src.data() + r * n_per_row, got.data() + r * row_bytes, n_per_row);
    }
    EXPECT_EQ(first_difference(tt, got.data(), info.data, got.size(), n_per_row), "");
  }
}

INSTANTIATE_TEST_SUITE_P(Ggml, GoldenActivation,
                         ::testing::Values(QuantType::kQ8K, QuantType::kQ8_1),
                         [](const ::testing::TestParamInfo<QuantType>& info) {
                           return quant_type_name(info.param);
                         });

}  // namespace
}  // namespace insitu
